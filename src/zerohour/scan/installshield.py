"""InstallShield setups: the files a `setup.exe` carries in its overlay, and the files inside
its InstallShield cabinets (`data1.hdr` + `data1.cab`, signature `ISc(`), as ClamAV's
`ishield.c` reads them (`clam_IScab_*.exe` in ClamAV's test corpus hide clam.exe there).
No maintained Python library reads either (unshield is a C tool), so this is a small
bounded reader.

Overlay, two layouts (as ISx documents them): plain records of `name NUL path NUL version NUL
size NUL` then `size` bytes, found by their `version NUL size NUL` part (one regex pass, at
most `_MAX_RECORDS`); or an `InstallShield\0` header (file count at 14) followed per file by a
312-byte record (name[260], flags at 260, length at 268, "inflate" flag at 280) and its data,
obfuscated with a key made from the file name (`name[i] ^ 13 35 86 07`; each byte's nibbles
swapped, XORed with the key, inverted) over 1024-byte blocks (flag 4) or the whole file (flag
2), then zlib-inflated when flagged (the MSI-based setups in ClamAV's corpus). Each file is a
child.

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
from zerohour.scan.containers import count_entry
from zerohour.scan.dedup import Dedup
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


_IS_HEADER = b"InstallShield\x00"
_IS_RECORD = 312
_KEY_MAGIC = b"\x13\x35\x86\x07"
_MAX_HEADERS = 8
#: decode_byte for every (byte, key byte): ~(key ^ swap_nibbles(byte)), as a table per key.
_SWAPPED = bytes(((b << 4) | (b >> 4)) & 0xFF for b in range(256))


def _deobfuscate(raw: bytes, name: bytes, block: int, ctx: ScanContext) -> bytes:
    """Undo the name-keyed byte obfuscation, restarting the key every `block` bytes."""
    key = bytes(c ^ _KEY_MAGIC[i % 4] for i, c in enumerate(name))
    if not key:
        return raw
    swapped = raw.translate(_SWAPPED)
    out = bytearray(len(raw))
    for start in range(0, len(raw), block):
        if not start % (block << 10):
            ctx.check_time()
        chunk = swapped[start : start + block]
        stream = (key * (len(chunk) // len(key) + 1))[: len(chunk)]
        mixed = int.from_bytes(chunk, "little") ^ int.from_bytes(stream, "little")
        out[start : start + len(chunk)] = (~mixed & ((1 << (8 * len(chunk))) - 1)).to_bytes(
            len(chunk), "little")
    return bytes(out)


def encrypted_files(data: bytes, ctx: ScanContext) -> Iterator[tuple[str, bytes, bool]]:
    """(name, content, complete) of the files after each `InstallShield\0` header."""
    at = data.find(_IS_HEADER)
    headers = 0
    while at >= 0 and headers < _MAX_HEADERS:
        headers += 1
        ctx.check_time()
        count = int.from_bytes(data[at + 14 : at + 16], "little")
        kind = int.from_bytes(data[at + 16 : at + 20], "little")
        pos = at + 46
        # The string "InstallShield" is in many binaries: a header counts only when its type
        # is one ISx knows and its records hold together; anything else ends it silently.
        for _ in range(min(count, _MAX_RECORDS) if kind <= 4 else 0):
            ctx.check_time()
            record = data[pos : pos + _IS_RECORD]
            raw_name = record[:260].split(b"\x00", 1)[0]
            if len(record) < _IS_RECORD or not raw_name or not _PRINTABLE.match(raw_name):
                break
            flags, _x3, length = struct.unpack_from("<III", record, 260)
            inflate = int.from_bytes(record[280:282], "little")
            if record[len(raw_name) : 260].strip(b"\x00") or length > len(data) - pos - _IS_RECORD:
                break
            raw = data[pos + _IS_RECORD : pos + _IS_RECORD + length]
            pos += _IS_RECORD + length
            if flags & 4 and flags & 6:
                raw = _deobfuscate(raw, raw_name, 1024, ctx)
            elif flags & 2:
                raw = _deobfuscate(raw, raw_name, max(1, len(raw)), ctx)
            complete = True
            if inflate:
                raw, _end, ok = archive.zlib_bounded(raw, 15, ctx)
                complete = complete and ok
            yield raw_name.decode("latin-1"), raw, complete
        at = data.find(_IS_HEADER, at + 14)


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Overlay records as children, then the files of the InstallShield cabinets among them."""
    dedup_setup = Dedup()
    for name, content, complete in encrypted_files(data, ctx):
        if not complete:
            ctx.broken("InstallShield")
        if content and dedup_setup.fresh(content):
            ctx.charge_child(len(content))
            yield Child(data=content, name=name, origin="installshield")
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
        if content and dedup.fresh(content, path):
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
        if content and dedup.fresh(content, name):
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
