"""Test helpers shared by the end-to-end and attack tests: ports, sinks, processes, raw SMTP.

Importable as `helpers` (pytest puts `tests/` on sys.path through the root conftest).
"""
