"""Attachment-only holding (`hold.mode = "attachments"`).

During an outbreak whose scope is about attachments (not `all`), the original message is held as
usual and a copy goes out at once with each in-scope attachment replaced by a short text part
that names the held file, the outbreak and the held message's id. When the outbreak is released
the original is delivered in full (so the recipient then has the attachment too).

An attachment is in scope when it has a file name or `Content-Disposition: attachment` and, if
any holding outbreak lists file types, its true type (by content, `zerohour.scan.filetype`)
falls in one of them; an outbreak without file types (e.g. `has_attachment`) takes them all.
"""

from __future__ import annotations

import email
from collections.abc import Sequence
from email.message import Message
from email.policy import compat32

from zerohour.notices.model import OutbreakSpec
from zerohour.scan.filetype import category, detect

_POLICY = compat32.clone(linesep="\r\n")


def _is_attachment(part: Message) -> bool:
    if part.is_multipart():
        return False
    disposition = (part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
    return disposition == "attachment" or part.get_filename() is not None


def _in_scope(part: Message, specs: Sequence[OutbreakSpec]) -> bool:
    wanted: set[str] = set()
    for spec in specs:
        if not spec.scope.file_types:
            return True
        wanted.update(spec.scope.file_types)
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return bool(category(detect(data), data) & wanted)


def strip_attachments(
    data: bytes, specs: Sequence[OutbreakSpec], held_id: str
) -> tuple[bytes, list[str]] | None:
    """The message with in-scope attachments replaced, and their names; None if none were."""
    msg = email.message_from_bytes(data, policy=compat32)
    replaced: list[str] = []
    ids = ", ".join(s.outbreak_id for s in specs)
    for part in msg.walk():
        if not _is_attachment(part) or not _in_scope(part, specs):
            continue
        name = part.get_filename() or "attachment"
        safe = "".join(ch if ch.isprintable() and ch.isascii() else "?" for ch in name)[:200]
        text = (
            f"The attachment \"{safe}\" is held by the mail gateway during a virus outbreak "
            f"({ids}).\r\nIt will be delivered, in the original message, once it is cleared.\r\n"
            f"Held message: {held_id}\r\n"
        )
        for header in ("Content-Transfer-Encoding", "Content-Disposition", "Content-Type"):
            del part[header]
        part["Content-Type"] = 'text/plain; charset="us-ascii"'
        part["Content-Transfer-Encoding"] = "7bit"
        part["Content-Disposition"] = "inline"
        part.set_payload(text)
        replaced.append(safe)
    if not replaced:
        return None
    msg["X-Zerohour-Held-Attachments"] = f"{len(replaced)}; held message {held_id}"
    return msg.as_bytes(policy=_POLICY), replaced
