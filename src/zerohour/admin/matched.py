"""Which layer of a message matched: mark it in the part tree the message page shows.

The engine's findings carry a layer path of its own (`<queue id>/invoice.pdf/x.exe`: names or
MIME origins, as it walked), and the stored summary hashes every layer under that path. The part
tree (`admin.parts`) is read from the spooled body with the standard MIME parser and hashes the
same decoded bytes. So a finding is tied to tree nodes by content (the SHA-256 of its layer), not
by comparing two path spellings: robust to how each side names parts. An outbreak's checksum
quarantine (decided from the digests, no engine finding) is tied the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zerohour.notices.model import OutbreakSpec


def _layers(summary: Mapping[str, Any]) -> list[tuple[str, int, str, str, str]]:
    """(part, size, md5, sha256, path) rows of the stored digests."""
    out = []
    for d in summary.get("digests", ()):
        try:
            out.append((str(d[0]), int(d[1]), str(d[2]), str(d[3]), str(d[4])))
        except (IndexError, TypeError, ValueError):
            continue
    return out


def findings_by_layer(
    summary: Mapping[str, Any] | None, specs: Iterable[OutbreakSpec] = ()
) -> list[dict[str, str]]:
    """Every finding with the engine's layer path and that layer's SHA-256 ("" when unknown):
    the signature findings stored by the scan, then outbreak checksums that match a digest."""
    if not summary:
        return []
    layers = _layers(summary)
    file_sha = {path: sha for part, _s, _m, sha, path in layers if part == "file"}
    out: list[dict[str, str]] = []
    for item in summary.get("finding_paths", ()):
        try:
            name, path = str(item[0]), str(item[1])
        except (IndexError, TypeError):
            continue
        out.append({"name": name, "path": path, "sha256": file_sha.get(path, "")})
    for spec in specs:
        for c in spec.checksums:
            for part, size, md5, sha, path in layers:
                if part != c.part or (c.size is not None and c.size != size):
                    continue
                if (sha if c.algo == "sha256" else md5) == c.digest:
                    out.append(
                        {
                            "name": f"Outbreak.{spec.name}.Checksum",
                            "path": path,
                            "sha256": file_sha.get(path, ""),
                        }
                    )
    return out


def mark(tree: dict[str, Any] | None, found: list[dict[str, str]]) -> list[dict[str, str]]:
    """Set `matched` (finding names) on the tree nodes holding a matched layer and
    `contains_match` on their ancestors; returns `found` with each finding's `part_path` (the
    tree node's path, "" when no node holds those bytes)."""
    out = [dict(f, part_path="") for f in found]
    if tree is None:
        return out

    def walk(node: dict[str, Any], ancestors: list[dict[str, Any]]) -> None:
        node.setdefault("matched", [])
        node.setdefault("contains_match", False)
        for f in out:
            top = "/" not in f["path"]  # the message itself (its top layer)
            if (top and not ancestors) or (f["sha256"] and node.get("sha256") == f["sha256"]):
                if f["name"] not in node["matched"]:
                    node["matched"].append(f["name"])
                f["part_path"] = f["part_path"] or str(node.get("path", ""))
                for a in ancestors:
                    a["contains_match"] = True
        for child in node.get("children", []):
            walk(child, [*ancestors, node])

    walk(tree, [])
    return out
