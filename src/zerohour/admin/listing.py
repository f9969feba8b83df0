"""What the held, quarantine and queue lists show of a message besides its envelope, and the
search over it.

Everything comes from the scan summary stored with the message (`gateway.decide.ScanSummary`:
`subject`, `attachments`, `finding_paths`), written once when the message was scanned: a list
page or a search never opens a spooled body. Messages scanned before those keys existed show
none of them (their part tree is still on the message page, read from the body).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zerohour.errors import QueryError

MAX_QUERY = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def search_text(raw: str | None) -> str | None:
    """The validated search text, None for no search; `QueryError` when unusable."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if len(text) > MAX_QUERY:
        raise QueryError(f"q: at most {MAX_QUERY} characters")
    if _CONTROL.search(text):
        raise QueryError("q: control characters are not allowed")
    return text


def attachments(summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Attachment layers (outermost first): path, declared name, true type, size, and the
    nesting depth below the message (an archive member is one deeper than its archive)."""
    out: list[dict[str, Any]] = []
    for item in (summary or {}).get("attachments", ()):
        try:
            path, name, true_type, size = str(item[0]), str(item[1]), str(item[2]), int(item[3])
        except (IndexError, TypeError, ValueError):
            continue
        out.append({"path": path, "name": name or path.rsplit("/", 1)[-1], "true_type": true_type,
                    "size": size, "depth": max(0, path.count("/") - 1)})
    if out:
        top = min(a["depth"] for a in out)
        for a in out:
            a["depth"] -= top
    return out


def matches(summary: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Where each signature finding matched: the layer path the engine gave it."""
    out = []
    for item in (summary or {}).get("finding_paths", ()):
        try:
            out.append({"name": str(item[0]), "path": str(item[1])})
        except (IndexError, TypeError):
            continue
    return out


def subject(summary: Mapping[str, Any] | None) -> str:
    return str((summary or {}).get("subject", ""))
