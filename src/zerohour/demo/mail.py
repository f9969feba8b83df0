"""The mail of the story: clean messages, EICAR, and a freshly generated "new virus" sample.

Senders say what a message is (`clean-N@...`, `infected-N@...`) so the gateway's store can be
counted per kind without reading bodies, and a marker in the body lets the sink count deliveries.
"""

from __future__ import annotations

import base64
import os
from email.utils import formatdate, make_msgid

# The EICAR test file, split so this source file is not itself a detection.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLEAN_MARK = b"ZH-DEMO-CLEAN"
INFECTED_MARK = b"ZH-DEMO-INFECTED"


def new_virus_sample() -> bytes:
    """Bytes no database has seen: a tiny DOS/PE-looking stub with a random body, unique per
    run, so only the outbreak (and then the signature published for it) can catch it."""
    return b"MZ" + b"\x90" * 58 + b"\x40\x00\x00\x00" + b"zerohour-demo-worm " + os.urandom(2048)


def build(kind: str, n: int, attachment: bytes | None, filename: str = "file.bin") -> bytes:
    """A MIME message with a marker in the text part and an optional base64 attachment."""
    mark = (CLEAN_MARK if kind == "clean" else INFECTED_MARK).decode()
    head = (
        f"From: {kind}-{n}@outside.test\r\nTo: user@example.test\r\n"
        f"Subject: demo {kind} message {n}\r\nDate: {formatdate()}\r\n"
        f"Message-ID: {make_msgid('demo')}\r\nMIME-Version: 1.0\r\n"
    )
    text = f"{mark}-{n}: hello from the zerohour demo\r\n"
    if attachment is None:
        return (head + "Content-Type: text/plain\r\n\r\n" + text).encode()
    b64 = base64.encodebytes(attachment).decode().replace("\n", "\r\n")
    return (
        head + "Content-Type: multipart/mixed; boundary=ZHB\r\n\r\n--ZHB\r\n"
        "Content-Type: text/plain\r\n\r\n" + text + "--ZHB\r\n"
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
        f"{b64}--ZHB--\r\n"
    ).encode()


def sender(kind: str, n: int) -> str:
    return f"{kind}-{n}@outside.test"
