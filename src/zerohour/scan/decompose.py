"""One layer's children: the dispatch from a detected file type to its decomposer.

The engine calls `children(data, detect(data), ctx, name)` for every layer, inside
`ctx.descend()`, and scans each child it gets (recursing the same way). This module and the
decomposers it calls charge every yielded child to `ctx` (files, bytes, file size, time), so the
engine only manages depth. The iterator may raise `ScanLimitExceeded` (a limit was hit: the
engine reports `Heuristics.Limits.Exceeded.<which>`) or `EncryptedContent` (after yielding every
readable member: `Heuristics.Encrypted.<format>`); any other exception is a bug.
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.scan import archive, encodings, mime
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType

_TEXTUAL = frozenset({FileType.TEXT, FileType.HTML, FileType.SCRIPT})


def children(
    data: bytes, filetype: FileType, ctx: ScanContext, name: str | None = None
) -> Iterator[Child]:
    """The children of one layer of type `filetype` (nothing for leaves)."""
    if filetype is FileType.MAIL:
        yield from mime.children(data, ctx)
    elif filetype in (FileType.ZIP, FileType.OOXML):
        yield from archive.zip_children(data, ctx)
    elif filetype is FileType.TAR:
        yield from archive.tar_children(data, ctx)
    elif filetype in (FileType.GZIP, FileType.BZIP2, FileType.XZ):
        yield from archive.stream_children(data, filetype, ctx, name)
    elif filetype in _TEXTUAL:
        yield from _embedded(data, ctx)


def _embedded(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """uuencode / yEnc blocks inside plain text (mail bodies saved as .txt, news articles)."""
    seen: set[bytes] = set()
    for emb in encodings.embedded_files(data):
        if emb.data and emb.data not in seen:
            seen.add(emb.data)
            ctx.charge_child(len(emb.data))
            yield Child(data=emb.data, name=emb.name, origin=emb.encoding, is_attachment=True)
