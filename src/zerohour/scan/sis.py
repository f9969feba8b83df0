"""Symbian installation files (EPOC `.sis`, releases 3-6): a small bounded reader, as ClamAV's
`sis.c` (`clam.sis` in its test corpus). No library reads them; the layout is a fixed header
with pointers, so this is short.

Header: UIDs (the second 0x1000006D or 0x10003A12, the third 0x10000419), counts of languages
and files at 0x12/0x14, options at 0x24 (bit 3: files stored, else zlib), the file-record
pointer at 0x34. A simple or multi-language file record (types 0 and 1): file type, details,
source and destination name (UTF-16 for release 6) lengths and pointers, then per language a
length and pointer, then (release 6) per language the original length. Other record types
(options, conditions) hold no file data and end the walk. Files are yielded decompressed
(bounded); damage is `Heuristics.Broken.SIS`; Symbian 9 `.sisx` (UID 0x10201A7A) is a
different format: `Heuristics.Unsupported.SIS.V9`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zerohour.scan import archive
from zerohour.scan.containers import count_entry
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

UID2_OLD = (0x1000006D, 0x10003A12)
UID3 = 0x10000419
UID1_V9 = 0x10201A7A
_NOCOMPRESS = 0x0008
_MAX_LANGUAGES = 64


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    try:
        uid1, uid2 = struct.unpack_from("<II", data)
        if uid1 == UID1_V9 and uid2 not in UID2_OLD:
            ctx.unsupported("SIS", "V9")
            return
        nlangs, nfiles = struct.unpack_from("<HH", data, 0x12)
        (options,) = struct.unpack_from("<H", data, 0x24)
        (pos,) = struct.unpack_from("<I", data, 0x34)
    except struct.error:
        ctx.broken("SIS")
        return
    release6 = uid2 == 0x10003A12
    nlangs = max(1, min(nlangs, _MAX_LANGUAGES))
    dedup = Dedup()
    for index in range(nfiles):
        ctx.check_time()
        try:
            (kind,) = struct.unpack_from("<I", data, pos)
            if kind not in (0, 1):
                return  # options / conditions: no file data follows in this walk
            langs = nlangs if kind == 1 else 1
            fields = struct.unpack_from("<IIIIII", data, pos + 4)
            _ftype, _details, src_len, src_ptr, _dst_len, _dst_ptr = fields
            at = pos + 28
            spans = [struct.unpack_from("<II", data, at + 8 * i) for i in range(langs)]
            at += 8 * langs
            if release6:  # original lengths, then the MIME type length and pointer
                originals = [struct.unpack_from("<I", data, at + 4 * i)[0] for i in range(langs)]
                at += 4 * langs + 8
            else:
                originals = [length for length, _ptr in spans]
            pos = at
        except struct.error:
            ctx.broken("SIS")
            return
        raw_name = data[src_ptr : src_ptr + src_len]
        name = (raw_name.decode("utf-16-le", "replace") if release6
                else raw_name.decode("latin-1")) or None
        for (length, ptr), original in zip(spans, originals, strict=True):
            count_entry(ctx, index)
            ctx.note_member(MemberMeta(FileType.SIS, name, original, length, None, False, index))
            raw = data[ptr : ptr + length]
            if ctx.skip_oversized(original):
                continue
            if options & _NOCOMPRESS:
                content, complete = raw, True
            else:
                content, _end, complete = archive.zlib_bounded(raw, 15, ctx)
            if len(raw) < length or not complete or (release6 and len(content) != original):
                ctx.broken("SIS")
            if content and dedup.fresh(content, name):
                ctx.charge_child(len(content))
                yield Child(data=content, name=name, origin="sis")
