"""A held message as an administrator may see it: headers and a part tree, never rendered.

The tree follows the MIME structure (`email` with the cheap compat32 policy) and, inside each
attachment, the scan engine's own decomposition (`zerohour.scan.decompose`: archives, compressed
streams, embedded uuencode) with true types from `zerohour.scan.filetype`. Sizes are decoded
sizes. Bodies never leave this module: only names, types, sizes and digests.
Bounded (`MAX_NODES`, the engine's limits), and run in a thread by the caller.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from zerohour.errors import ZerohourError
from zerohour.scan import filetype
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.types import FileType

MAX_NODES = 500
MAX_HEADERS = 200
_CONTAINERS = frozenset(
    {FileType.ZIP, FileType.OOXML, FileType.TAR, FileType.GZIP, FileType.BZIP2, FileType.XZ}
)


@dataclass
class PartNode:
    path: str
    content_type: str
    filename: str
    size: int
    true_type: str
    sha256: str
    is_attachment: bool
    note: str = ""
    children: list[PartNode] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "content_type": self.content_type,
            "filename": self.filename,
            "size": self.size,
            "true_type": self.true_type,
            "sha256": self.sha256,
            "is_attachment": self.is_attachment,
            "note": self.note,
            "children": [c.to_json() for c in self.children],
        }

    def flat(self, depth: int = 0) -> list[tuple[int, PartNode]]:
        out = [(depth, self)]
        for c in self.children:
            out.extend(c.flat(depth + 1))
        return out


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0

    def take(self) -> bool:
        self.nodes += 1
        return self.nodes <= MAX_NODES


def _clean(text: str, limit: int = 2000) -> str:
    """Control characters out (a header is shown as text, never interpreted)."""
    out = "".join(ch if ch >= " " or ch == "\t" else " " for ch in text)
    return out if len(out) <= limit else out[:limit] + "…"


def headers(raw: bytes) -> list[tuple[str, str]]:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(_clean(k, 200), _clean(str(v))) for k, v in msg.items()[:MAX_HEADERS]]


def _leaf(data: bytes, path: str, budget: _Budget, ctx: ScanContext, depth: int) -> list[PartNode]:
    """Children of a decoded attachment by the engine's decomposition (archives etc.)."""
    ft = filetype.detect(data)
    if ft not in _CONTAINERS or depth > 8:
        return []
    out: list[PartNode] = []
    try:
        from zerohour.scan import decompose  # (the engine loads with the first part view)

        for i, child in enumerate(decompose.children(data, ft, ctx, None), 1):
            if not budget.take():
                break
            cft = filetype.detect(child.data)
            name = child.name or child.origin or f"member{i}"
            node = PartNode(
                path=f"{path}/{name}",
                content_type="",
                filename=_clean(child.name or "", 300),
                size=len(child.data),
                true_type=cft.value,
                sha256=hashlib.sha256(child.data).hexdigest(),
                is_attachment=True,
                note=child.origin,
            )
            node.children = _leaf(child.data, node.path, budget, ctx, depth + 1)
            out.append(node)
    except ZerohourError as exc:  # a limit, an encrypted archive: say so, do not fail
        out.append(PartNode(f"{path}/!", "", "", 0, "", "", False, _clean(str(exc), 300)))
    return out


def _entity(
    msg: Message, path: str, budget: _Budget, ctx: ScanContext, depth: int
) -> PartNode:
    ctype = msg.get_content_type()
    fname = _clean(str(msg.get_filename() or ""), 300)
    disp = str(msg.get("Content-Disposition", "")).lower()
    is_att = bool(fname) or disp.startswith("attachment")
    if msg.is_multipart() and depth < 20:
        node = PartNode(path, ctype, fname, 0, "multipart", "", is_att)
        parts = msg.get_payload()
        if isinstance(parts, list):
            for i, sub in enumerate(parts, 1):
                if not budget.take():
                    node.note = "part list truncated"
                    break
                if isinstance(sub, Message):
                    node.children.append(_entity(sub, f"{path}/{i}", budget, ctx, depth + 1))
        node.size = sum(c.size for c in node.children)
        return node
    payload = msg.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    if ctype == "message/rfc822" and data and depth < 20:
        inner = email.message_from_bytes(data, policy=email.policy.compat32)
        node = PartNode(path, ctype, fname, len(data), FileType.MAIL.value,
                        hashlib.sha256(data).hexdigest(), is_att)
        node.children.append(_entity(inner, f"{path}/1", budget, ctx, depth + 1))
        return node
    node = PartNode(
        path, ctype, fname, len(data), filetype.detect(data).value if data else "empty",
        hashlib.sha256(data).hexdigest(), is_att,
    )
    node.children = _leaf(data, path, budget, ctx, 0)
    return node


def part_tree(raw: bytes) -> PartNode:
    """The message's part tree (blocking: call it in a thread)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    ctx = ScanContext(Limits(max_scan_time=10.0))
    return _entity(msg, "message", _Budget(), ctx, 0)
