"""InstallShield setups: the files a `setup.exe` carries in its overlay, and the files inside
its InstallShield cabinets (`data1.hdr` + `data1.cab`, signature `ISc(`), as ClamAV's
`ishield.c` reads them (`clam_IScab_*.exe` in ClamAV's test corpus hide clam.exe there).
No maintained Python library reads either (unshield is a C tool), so this is a small
bounded reader.

Overlay: records of `name NUL path NUL version NUL size NUL` then `size` bytes; found by their
`version NUL size NUL` part (one regex pass, at most `_MAX_RECORDS`), each yielded as a child.

Cabinet (layout of unshield's `libunshield.c`, InstallShield 6 and later): a 20-byte common
header (`ISc(`, version, volume info, cab descriptor offset and size) in `data1.hdr`; the
descriptor points at the file table; each 0x57-byte file descriptor gives flags, sizes, the
data offset in `data<volume>.cab` and a name (a cabinet shipped beside setup.exe, not in
the overlay, is simply not there to scan). Compressed files are chunks of `u16 size` + raw
deflate, each inflated on its own (bounded). Obfuscated, split or older-layout (version 5 and
before) files are `Heuristics.Unsupported.InstallShield.<why>`; damage is
`Heuristics.Broken.InstallShield`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from zerohour.scan import archive
from zerohour.scan.containers import Dedup, count_entry
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

_RECORD_TAIL = re.compile(rb"\x00(\d{1,3}\.\d{1,5}\.\d{1,5}\.\d{1,5})\x00(\d{1,10})\x00")
_PRINTABLE = re.compile(rb"[\x20-\x7e]{1,260}\Z")
_MAX_RECORDS = 1024
_ISC = b"ISc("
_FILE_SPLIT = 0x1
_FILE_OBFUSCATED = 0x2
_FILE_COMPRESSED = 0x4
_FILE_INVALID = 0x8
_DESCRIPTOR = 0x57
_MAX_FILES = 65_535


def _string_before(data: bytes, end: int) -> tuple[bytes, int] | None:
    """The NUL-terminated printable string ending at `end` (exclusive): (it, its start)."""
    start = data.rfind(b"\x00", max(0, end - 261), end) + 1
    if start == 0 and end > 260:
        return None
    m = _PRINTABLE.search(data, start, end)
    if m is None or m.start() != start:
        return None
    return data[start:end], start


def overlay_records(data: bytes, ctx: ScanContext) -> list[tuple[str, bytes]]:
    """(path, content) of each InstallShield overlay record in `data`."""
    out: list[tuple[str, bytes]] = []
    pos = 0
    while len(out) < _MAX_RECORDS:
        ctx.check_time()
        m = _RECORD_TAIL.search(data, pos)
        if m is None:
            break
        pos = m.end()
        path = _string_before(data, m.start())
        name = _string_before(data, path[1] - 1) if path and path[1] > 0 else None
        if path is None or name is None:
            continue
        size = int(m.group(2))
        content = data[m.end() : m.end() + size]
        if len(content) != size:
            continue
        out.append((path[0].decode("latin-1"), content))
        pos = m.end() + size
    return out


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Overlay records as children, then the files of the InstallShield cabinets among them."""
    records = overlay_records(data, ctx)
    if not records:
        return
    dedup = Dedup()
    volumes: dict[int, bytes] = {}
    headers: list[bytes] = []
    for path, content in records:
        base = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
        if content.startswith(_ISC):
            m = re.fullmatch(r"data(\d+)\.(cab|hdr)", base)
            if m and m.group(2) == "hdr":
                headers.append(content)
            elif m:
                volumes[int(m.group(1))] = content
        if content and dedup.fresh(content):
            ctx.charge_child(len(content))
            yield Child(data=content, name=path, origin="installshield")
    for header in headers:
        yield from cabinet_files(header, volumes, ctx, dedup)


def cabinet_files(header: bytes, volumes: dict[int, bytes], ctx: ScanContext,
                  dedup: Dedup | None = None) -> Iterator[Child]:
    """The files an InstallShield `data1.hdr` lists, read from `volumes` (number -> cab)."""
    dedup = dedup or Dedup()
    try:
        version, _vol, desc, _desc_size = struct.unpack_from("<IIII", header, 4)
        # unshield's rule: 0x01xxxxxx keeps the major in bits 12-15, others as major * 100.
        major = (version >> 12) & 0xF if version >> 24 == 1 else (version & 0xFFFF) // 100
        if major <= 5:
            ctx.unsupported("InstallShield", "Version5")
            return
        (table_off,) = struct.unpack_from("<I", header, desc + 0x0C)
        (file_count,) = struct.unpack_from("<I", header, desc + 0x28)
        (table2,) = struct.unpack_from("<I", header, desc + 0x2C)
    except struct.error:
        ctx.broken("InstallShield")
        return
    base = desc + table_off
    for index in range(min(file_count, _MAX_FILES)):
        ctx.check_time()
        at = base + table2 + index * _DESCRIPTOR
        if at + _DESCRIPTOR > len(header):
            ctx.broken("InstallShield")
            return
        flags, size, csize, offset = struct.unpack_from("<HQQQ", header, at)
        (name_off,) = struct.unpack_from("<I", header, at + 0x3A)
        (volume,) = struct.unpack_from("<H", header, at + 0x55)
        if flags & _FILE_INVALID:
            continue
        name_end = header.find(b"\x00", base + name_off, base + name_off + 1024)
        name = header[base + name_off : name_end].decode("latin-1") if name_end > 0 else None
        count_entry(ctx, index)
        ctx.note_member(MemberMeta(FileType.BINARY, name, size, csize, None, False, index))
        if flags & (_FILE_OBFUSCATED | _FILE_SPLIT):
            ctx.unsupported("InstallShield", "Obfuscated" if flags & _FILE_OBFUSCATED else "Split")
            continue
        cab = volumes.get(volume)
        if cab is None:
            continue  # an external cabinet, shipped beside setup.exe: not in what we scan
        if ctx.skip_oversized(size):
            continue
        raw = cab[offset : offset + csize]
        content, complete = (_inflate_chunks(raw, ctx) if flags & _FILE_COMPRESSED
                             else (raw, True))
        if not complete or len(raw) < csize or len(content) != size:
            ctx.broken("InstallShield")
        if content and dedup.fresh(content):
            ctx.charge_child(len(content))
            yield Child(data=content, name=name, origin="installshield-cab")


def _inflate_chunks(raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    out: list[bytes] = []
    total = 0
    pos = 0
    while pos + 2 <= len(raw):
        ctx.check_time()
        (n,) = struct.unpack_from("<H", raw, pos)
        chunk = raw[pos + 2 : pos + 2 + n]
        pos += 2 + n
        piece, _end, complete = archive.zlib_bounded(chunk + b"\x00\x00", -15, ctx,
                                                     already=total)
        out.append(piece)
        total += len(piece)
        if not piece and not complete:
            return b"".join(out), False
    return b"".join(out), pos == len(raw)
