"""Attachment stripping for `hold.mode = "attachments"`: the copy that goes out while the
original is held.

During an outbreak whose scope is about attachments (not `all`), the original message is held as
usual and a copy goes out at once with each in-scope attachment replaced by a short text part
that names the held file, the outbreak and the held message's id. When the outbreak is released
the original is delivered in full (so the recipient then has the attachment too).

What counts as an attachment is what a mail client offers as one: a named part, a part with
`Content-Disposition: attachment`, or any part whose true type (by content,
`zerohour.scan.filetype`) is not text. A part is stripped when its true type is in a holding
outbreak's file types, or when it is a container (archive, office document, PDF, message): its
members' types are not looked at here, so when unsure, strip. The copy is then scanned and
decided again by `gateway.act` before it leaves: if anything in it is still held, the whole
message stays held and no copy is sent.
"""

from __future__ import annotations

import email
from collections.abc import Sequence
from email.message import Message
from email.policy import compat32

from zerohour.notices.model import OutbreakSpec
from zerohour.scan.filetype import category, detect
from zerohour.scan.types import FileType

_POLICY = compat32.clone(linesep="\r\n")
_INLINE = frozenset({FileType.TEXT, FileType.HTML})
#: Types whose members could be of any type: always stripped while an attachment outbreak holds.
_CONTAINERS = frozenset({
    FileType.ZIP, FileType.TAR, FileType.GZIP, FileType.BZIP2, FileType.XZ, FileType.SEVENZIP,
    FileType.RAR, FileType.OLE2, FileType.OOXML, FileType.PDF, FileType.MAIL,
})


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, UnicodeError, LookupError):
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("latin-1", "replace") if isinstance(raw, str) else b""


def _filename(part: Message) -> str | None:
    try:
        return part.get_filename()
    except (ValueError, UnicodeError, LookupError):
        return "attachment"


def _is_attachment(part: Message, ft: FileType) -> bool:
    disposition = str(part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
    return disposition == "attachment" or _filename(part) is not None or ft not in _INLINE


def _in_scope(data: bytes, ft: FileType, specs: Sequence[OutbreakSpec]) -> bool:
    wanted: set[str] = set()
    for spec in specs:
        if not spec.scope.file_types:
            return True
        wanted.update(spec.scope.file_types)
    return ft in _CONTAINERS or bool(category(ft, data) & wanted)


def strip_attachments(
    data: bytes, specs: Sequence[OutbreakSpec], held_id: str
) -> tuple[bytes, list[str]] | None:
    """The message with in-scope attachments replaced, and their names; None if none were."""
    msg = email.message_from_bytes(data, policy=compat32)
    replaced: list[str] = []
    ids = ", ".join(s.outbreak_id for s in specs)
    for part in msg.walk():
        if part.is_multipart() or part is msg:
            continue
        body = _payload(part)
        ft = detect(body)
        if not _is_attachment(part, ft) or not _in_scope(body, ft, specs):
            continue
        name = _filename(part) or "attachment"
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
