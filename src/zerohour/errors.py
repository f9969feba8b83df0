"""One exception tree for all of zerohour.

    ZerohourError                    base; carries an optional message id and stage
    ├── ConfigError                  bad settings (file, env, flags): CLI exit 2
    ├── ScanError                    the engine could not scan (not a finding: findings are data)
    │   ├── DatabaseError            signature database unreadable or, with --strict, invalid
    │   │   └── SignatureSyntaxError one bad signature line (file:line in the message)
    │   ├── ScanLimitExceeded        a limit hit mid-scan; the engine turns it into a finding
    │   └── EncryptedContent         an encrypted container; the engine turns it into a finding
    ├── SpoolError                   the spool or store could not keep a message durably
    │   └── SpoolFullError           free space below the configured minimum (SMTP 452 4.3.1)
    ├── StoreError                   a store operation failed
    │   └── NotFoundError            no such message, outbreak, token, ...
    ├── DeliveryError                next hop refused or unreachable
    │   ├── TemporaryDeliveryError   4xx / connection failure: retry later
    │   └── PermanentDeliveryError   5xx: bounce (DSN), never for viruses
    ├── NoticeError                  a notice was refused; `reason` is the counted label
    ├── BundleError                  a signature bundle failed verification or install
    └── AuthError                    admin API / CLI authentication or authorisation failure

Errors become SMTP replies in one place only (gateway.receive), HTTP replies in admin.api, and
CLI messages with exit codes in cli.main.
"""

from __future__ import annotations


class ZerohourError(Exception):
    """Base of every zerohour error."""

    def __init__(self, message: str, *, message_id: str | None = None, stage: str | None = None):
        super().__init__(message)
        self.message_id = message_id
        self.stage = stage


class ConfigError(ZerohourError):
    """Invalid configuration."""


class ScanError(ZerohourError):
    """The engine failed to scan an object (an I/O or internal error, not a finding)."""


class DatabaseError(ScanError):
    """The signature database could not be loaded."""


class SignatureSyntaxError(DatabaseError):
    """A signature line could not be parsed."""

    def __init__(self, message: str, *, path: str = "", line: int = 0):
        where = f"{path}:{line}: " if path else ""
        super().__init__(f"{where}{message}", stage="db")
        self.path = path
        self.line = line


class SpoolError(ZerohourError):
    """A message could not be made durable."""


class SpoolFullError(SpoolError):
    """Free space on the spool is below the configured minimum."""


class StoreError(ZerohourError):
    """A store operation failed."""


class NotFoundError(StoreError):
    """The requested object does not exist."""


class DeliveryError(ZerohourError):
    """Delivery to the next hop failed."""


class TemporaryDeliveryError(DeliveryError):
    """A transient failure: the message stays queued and is retried with backoff."""


class PermanentDeliveryError(DeliveryError):
    """A permanent failure: the sender gets a DSN (never for a virus)."""


class NoticeError(ZerohourError):
    """A notice was refused. `reason` is a short label used in logs and metrics."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason, stage="notice")
        self.reason = reason


class BundleError(ZerohourError):
    """A signature bundle failed verification or could not be installed."""


class QueryError(ZerohourError):
    """An administrator's search or filter text that cannot be used (HTTP 400)."""


class AuthError(ZerohourError):
    """Authentication or authorisation failed."""


class ScanLimitExceeded(ScanError):
    """A scan limit was hit. The engine turns this into `Heuristics.Limits.Exceeded.<which>`."""

    def __init__(self, which: str, detail: str = ""):
        super().__init__(f"scan limit exceeded: {which}{': ' + detail if detail else ''}")
        self.which = which


class EncryptedContent(ScanError):
    """An encrypted container. The engine turns this into `Heuristics.Encrypted.<format>`."""

    def __init__(self, format: str, detail: str = ""):
        super().__init__(f"encrypted {format}{': ' + detail if detail else ''}")
        self.format = format
