"""OneNote sections (.one, MS-ONESTORE): the files embedded in them.

OneNote keeps every attached file as a FileDataStoreObject (MS-ONESTORE 2.6.13): the header
GUID {BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC}, cbLength (u64), 4 unused and 8 reserved bytes,
then the file's bytes, padded to 8, and a footer GUID. The 2023 OneNote campaigns hid HTA, BAT
and executables there behind a "double click to view" picture. As ClamAV's fallback and the
common extractors do, every header GUID in the file is taken (the revision store's object graph
is not walked: a block the graph no longer references is still in the file, and still opens in
a hex editor or an older OneNote). A block whose length runs past the end of the file gives
what is there and is `Heuristics.Broken.OneNote`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

FILE_DATA_HEADER = bytes.fromhex("e716e3bd65261145a4c48d4d0b7a9eac")
FILE_DATA_FOOTER = bytes.fromhex("22a7fb71790f0b4abb13899256426b24")
_PREFIX = 16 + 8 + 4 + 8
_MAX_BLOCKS = 10_000


def onenote_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Each embedded file of a OneNote section (see the module docstring)."""
    dedup = Dedup()
    pos = data.find(FILE_DATA_HEADER)
    index = 0
    broken = False
    while pos >= 0:
        ctx.check_time()
        if index >= _MAX_BLOCKS:
            ctx.unsupported("OneNote", "Blocks")
            break
        if pos + _PREFIX > len(data):
            broken = True
            break
        (length,) = struct.unpack_from("<Q", data, pos + 16)
        start = pos + _PREFIX
        end = start + length
        if end > len(data):
            broken = True  # cut short: scan what is there
        ctx.note_member(MemberMeta(container=FileType.ONENOTE, name=None, size=length,
                                   compressed_size=length, crc32=None, encrypted=False,
                                   index=index))
        index += 1
        oversized = ctx.skip_oversized(min(length, len(data) - start))
        content = b"" if oversized else data[start:end]
        if content and dedup.fresh(content):
            ctx.charge_child(len(content))
            yield Child(data=content, name=None, origin="onenote", is_attachment=True)
        # Every header GUID, even one inside another block's data (as ClamAV's fallback does):
        # a block hidden in a block is still a file an editor can cut out.
        pos = data.find(FILE_DATA_HEADER, pos + 16)
    if broken:
        ctx.broken("OneNote")
