"""Real SMTP clients driven by tests: Python's smtplib and swaks (a subprocess).

Both return the reply that decided the transaction (the DATA reply, or the first refusal), so
tests assert reply codes the same way whichever client sent the mail.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from helpers.messages import RECIPIENT, SENDER, wire_bytes
from helpers.net import LOCALHOST
from helpers.smtp import Reply

SWAKS = "swaks"


def _reply(code: int, text: bytes | str) -> Reply:
    return Reply(code, text.decode("utf-8", "replace") if isinstance(text, bytes) else text)


def smtplib_send(
    port: int,
    message: EmailMessage | bytes,
    sender: str = SENDER,
    recipients: Sequence[str] = (RECIPIENT,),
    timeout: float = 60.0,
) -> Reply:
    """One transaction with smtplib; returns the DATA reply or the first refusal."""
    data = wire_bytes(message) if isinstance(message, EmailMessage) else message
    with smtplib.SMTP(LOCALHOST, port, timeout=timeout) as client:
        code, text = client.ehlo("smtplib.e2e.test")
        if code != 250:
            return _reply(code, text)
        code, text = client.mail(sender)
        if code != 250:
            return _reply(code, text)
        accepted = 0
        first_refusal: Reply | None = None
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            if code in (250, 251):
                accepted += 1
            elif first_refusal is None:
                first_refusal = _reply(code, text)
        if accepted == 0:
            assert first_refusal is not None
            client.rset()
            return first_refusal
        code, text = client.data(data)
        return _reply(code, text)


def swaks_available() -> bool:
    return shutil.which(SWAKS) is not None


# swaks marks server lines "<-" (plain), "<~" (TLS), "<**" / "<~*" (error replies).
_SWAKS_REPLY = re.compile(r"^<(?:-|~|\*\*|~\*)\s+(\d{3})[ -](.*)$")


def swaks_send(
    port: int,
    data_file: Path,
    sender: str = SENDER,
    recipient: str = RECIPIENT,
    timeout: float = 60.0,
    extra: Sequence[str] = (),
) -> tuple[Reply, subprocess.CompletedProcess[str]]:
    """Send `data_file` (a complete message) with swaks; return the last server reply before
    QUIT (the DATA reply, or the refusal that ended the transaction) and the process result."""
    done = subprocess.run(
        [
            SWAKS,
            "--server",
            LOCALHOST,
            "--port",
            str(port),
            "--helo",
            "swaks.e2e.test",
            "--from",
            sender,
            "--to",
            recipient,
            "--data",
            str(data_file),
            "--timeout",
            str(int(timeout)),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=False,
    )
    replies: list[Reply] = []
    for line in done.stdout.splitlines():
        m = _SWAKS_REPLY.match(line)
        if m:
            replies.append(Reply(int(m.group(1)), m.group(2)))
    # Drop the 221 answer to QUIT; what decided the transaction is the reply before it.
    while replies and replies[-1].code == 221:
        replies.pop()
    if not replies:
        raise AssertionError(f"swaks got no reply:\n{done.stdout}\n{done.stderr}")
    return replies[-1], done
