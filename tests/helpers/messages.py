"""Test messages: clean ones, and EICAR in the shapes a gateway must see through."""

from __future__ import annotations

import io
import uuid
import zipfile
from email.message import EmailMessage
from email.utils import formatdate

# The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/),
# assembled from two halves so that no scanner on a developer's machine quarantines this file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

SENDER = "alice@sender.test"
RECIPIENT = "bob@example.test"


def new_message_id(tag: str = "e2e") -> str:
    return f"<{tag}.{uuid.uuid4().hex}@e2e.test>"


def clean_message(
    subject: str = "clean",
    body: str = "Hello, nothing to see here.\n",
    message_id: str | None = None,
    sender: str = SENDER,
    recipient: str = RECIPIENT,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = message_id or new_message_id()
    msg.set_content(body)
    return msg


def eicar_plain(message_id: str | None = None) -> EmailMessage:
    """EICAR as the whole text body (7bit)."""
    msg = clean_message(subject="eicar plain", message_id=message_id)
    msg.set_content(EICAR.decode("ascii") + "\n", cte="7bit")
    return msg


def eicar_attachment(message_id: str | None = None) -> EmailMessage:
    """EICAR as a base64-encoded attachment."""
    msg = clean_message(subject="eicar attachment", message_id=message_id)
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
    return msg


def eicar_zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("eicar.com", EICAR)
    return buf.getvalue()


def eicar_in_zip(message_id: str | None = None) -> EmailMessage:
    """EICAR deflated inside a zip attachment."""
    msg = clean_message(subject="eicar zip", message_id=message_id)
    msg.add_attachment(
        eicar_zip_bytes(), maintype="application", subtype="zip", filename="invoice.zip"
    )
    return msg


def raw_lines(*lines: str) -> bytes:
    """CRLF-joined raw message text, for the raw SMTP client."""
    return "".join(f"{line}\r\n" for line in lines).encode()


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message with CRLF line ends, as it must travel in SMTP DATA (smtplib's `data()`
    sends bytes as given: LF-only bytes would be bare LFs, which a strict server refuses)."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
