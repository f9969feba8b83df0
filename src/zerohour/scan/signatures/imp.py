"""PE import-table hash signatures (.imp): `ImportHash:ImportSize:MalwareName[:MinFL[:MaxFL]]`.

The hash is libclamav pe.c's (`hash_imptbl`, `hash_impfns`): for every imported function, in
table order, `dll.function` in lower case (the DLL name cut at its first '.' when that starts
`.dll`, `.ocx` or `.sys`), joined by ','; the size is that string's length. Imports by ordinal
are named `ord<N>` (ClamAV names some oleaut32/ws2_32/wsock32 ordinals from a table we do not
carry: such a file hashes differently here, so a signature for it is missed, never misfired).
ClamAV's quirks are kept: a function name with a character outside `[0-9A-Za-z_.]` voids the
whole hash, a name within 258 bytes of the end of the file is skipped, the last descriptor of
an import directory whose size is an exact multiple of 20 is not read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from zerohour.scan import pe

_MAX_NAME = 256
_MAX_IMPORTS = 1024
_MAX_FUNCTIONS = 65536  # ClamAV has no bound here (its counter never moves); we need one


@dataclass(frozen=True, slots=True)
class Layout:
    """What the import walk needs beyond `pe.PEInfo`: header size and data directories."""

    hdr_size: int
    dirs: tuple[tuple[int, int], ...]  # (rva, size) per data directory


def layout(data: bytes, info: pe.PEInfo) -> Layout | None:
    """SizeOfHeaders (aligned to SectionAlignment, as ClamAV does) and the data directories."""
    try:
        (lfanew,) = struct.unpack_from("<I", data, 0x3C)
        opt = lfanew + 24
        (salign,) = struct.unpack_from("<I", data, opt + 32)
        (hdr,) = struct.unpack_from("<I", data, opt + 60)
        base = opt + (112 if info.is_pe32_plus else 96)
        (ndirs,) = struct.unpack_from("<I", data, base - 4)
        dirs = []
        for i in range(min(ndirs, 16)):
            if base + 8 * i + 8 > len(data):
                break
            dirs.append(struct.unpack_from("<II", data, base + 8 * i))
    except struct.error:
        return None
    if salign:
        hdr = -(-hdr // salign) * salign
    return Layout(hdr, tuple(dirs))


def rawaddr(rva: int, info: pe.PEInfo, hdr_size: int, fsize: int) -> int | None:
    """libclamav `cli_rawaddr`: headers map one to one; else the last section whose raw data
    covers the RVA."""
    if rva < hdr_size:
        return rva if rva < fsize else None
    for s in reversed(info.sections):
        if s.raw_size and s.virtual_address <= rva and s.raw_size > rva - s.virtual_address:
            return rva - s.virtual_address + s.raw_offset
    return None


def _cstr(data: bytes, off: int, limit: int) -> bytes:
    return data[off : off + limit].split(b"\0", 1)[0]


def _valid(name: bytes) -> bool:
    return all(c in b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_."
               for c in name)


def import_string(data: bytes, info: pe.PEInfo) -> bytes | None:
    """The string ClamAV hashes for .imp signatures, or None when ClamAV computes no hash."""
    lay = layout(data, info)
    if lay is None or len(lay.dirs) < 2:
        return None
    rva, size = lay.dirs[1]
    fsize = len(data)
    if rva == 0 or size == 0:
        return None
    impoff = rawaddr(rva, info, lay.hdr_size, fsize)
    if impoff is None or impoff + size > fsize:
        return None
    parts: list[bytes] = []
    left, desc, nimps = size, impoff, 0
    while left > 20 and nimps < _MAX_IMPORTS:
        oft, _ts, _fc, name_rva, first_thunk = struct.unpack_from("<IIIII", data, desc)
        if name_rva == 0:
            break
        left -= 20
        nimps += 1
        desc += 20
        off = rawaddr(name_rva, info, lay.hdr_size, fsize)
        if off is None or off > fsize:
            return None
        dll = _cstr(data, off, min(_MAX_NAME, fsize - off))
        fns = _functions(data, info, lay, dll, oft, first_thunk)
        if fns is None:
            return None
        parts.extend(fns)
    return b",".join(parts)


def _dll_stem(dll: bytes) -> bytes:
    dot = dll.find(b".")
    if dot >= 0 and dll[dot : dot + 4].lower() in (b".ocx", b".sys", b".dll"):
        return dll[:dot]
    return dll


def _functions(data: bytes, info: pe.PEInfo, lay: Layout, dll: bytes, oft: int,
               first_thunk: int) -> list[bytes] | None:
    fsize = len(data)
    thu = rawaddr(oft, info, lay.hdr_size, fsize) if oft else None
    if not thu:
        thu = rawaddr(first_thunk, info, lay.hdr_size, fsize)
    if thu is None:
        return None
    width, flag, fmt = (8, 1 << 63, "<Q") if info.is_pe32_plus else (4, 1 << 31, "<I")
    stem = _dll_stem(dll).lower()
    out: list[bytes] = []
    for _ in range(_MAX_FUNCTIONS):
        if thu + width > fsize:
            break
        (thunk,) = struct.unpack_from(fmt, data, thu)
        if thunk == 0:
            break
        thu += width
        func: bytes | None
        if thunk & flag:
            func = f"ord{thunk & 0xFFFF}".encode()
        else:
            off = rawaddr(thunk & 0xFFFFFFFF, info, lay.hdr_size, fsize)
            if off is None:
                if info.is_pe32_plus:
                    continue
                off = 0  # PE32: ClamAV reads from offset 0 (cli_rawaddr's value on error)
            n = min(_MAX_NAME, fsize - off)
            func = _cstr(data, off + 2, n) if off + 2 + n <= fsize else None
        if func is None:
            continue
        if not _valid(func):
            return None
        out.append(stem + b"." + func.lower())
    return out
