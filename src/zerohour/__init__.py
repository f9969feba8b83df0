"""zerohour: an e-mail gateway with zero-hour outbreak protection.

A message flows: receive (gateway.receive) -> spool (gateway.spool, store) -> scan (scan.engine)
-> decide (gateway.decide) -> deliver | hold | quarantine (gateway.*), and held mail is rescanned
and released when the provider (provider.*) publishes a signature (notices.*).
"""

__version__ = "0.1.0"
