"""A tight, defensive PE (Portable Executable) header parser.

Only what matching needs: the section table (for `.mdb`/`.msb` section hashes, `Sx+n` offsets
and outbreak `pe-section:<name>` checksums) and the entry point's file offset (`EP+n`). Every
read is bounds-checked so that garbage, truncated or hostile files return None or a partial
table, never an exception. Sections follow ClamAV's rule (libclamav/pe.c): offsets aligned down
and sizes up to FileAlignment (0x200 as its fallback), raw sizes clipped to the end of the file.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from zerohour.scan.types import SectionDigest

_MAX_SECTIONS = 96  # the loader's own limit on Windows


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    raw_offset: int
    raw_size: int
    virtual_address: int
    virtual_size: int
    characteristics: int = 0  # IMAGE_SCN_* flags (0x20000000 execute, 0x80000000 write)


@dataclass(frozen=True, slots=True)
class PEInfo:
    machine: int
    is_pe32_plus: bool
    sections: tuple[Section, ...]
    entry_point_rva: int
    entry_point_offset: int | None
    image_base: int
    file_alignment: int


def _align_down(value: int, alignment: int) -> int:
    return value - (value % alignment) if alignment else value


def _align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment if alignment else value


def _section_name(raw: bytes) -> str:
    name = raw.split(b"\x00", 1)[0]
    return name.decode("latin-1")


def parse(data: bytes) -> PEInfo | None:
    """Parse the PE headers of `data`, or None if it is not a PE file."""
    n = len(data)
    if n < 0x40 or data[:2] != b"MZ":
        return None
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if lfanew + 24 > n or data[lfanew : lfanew + 4] != b"PE\x00\x00":
        return None
    coff = lfanew + 4
    machine, nsections, _ts, _symptr, _nsyms, opt_size, _chars = struct.unpack_from(
        "<HHIIIHH", data, coff
    )
    opt = coff + 20
    if opt + 2 > n:
        return None
    (magic,) = struct.unpack_from("<H", data, opt)
    is_plus = magic == 0x20B
    entry_rva = 0
    image_base = 0
    file_align = 0x200
    if opt + 40 <= n:
        (entry_rva,) = struct.unpack_from("<I", data, opt + 16)
        if is_plus and opt + 32 <= n:
            (image_base,) = struct.unpack_from("<Q", data, opt + 24)
        elif opt + 32 <= n:
            (image_base,) = struct.unpack_from("<I", data, opt + 28)
        (file_align,) = struct.unpack_from("<I", data, opt + 36)
    table = opt + opt_size
    headers: list[tuple[bytes, int, int, int, int, int]] = []
    for i in range(min(nsections, _MAX_SECTIONS)):
        off = table + 40 * i
        if off + 40 > n:
            break
        vsize, vaddr, rsize, rptr = struct.unpack_from("<IIII", data, off + 8)
        (flags,) = struct.unpack_from("<I", data, off + 36)
        headers.append((data[off : off + 8], vsize, vaddr, rsize, rptr, flags))
    # ClamAV's rule (libclamav/pe.c): sections are aligned to FileAlignment, falling back to
    # 0x200 when a section's offset is 0x200-aligned but not FileAlignment-aligned.
    falign = file_align
    if falign != 0x200 and any(
        falign and rsize and rptr % falign and not rptr % 0x200
        for _name, _vs, _va, rsize, rptr, _flags in headers
    ):
        falign = 0x200
    sections: list[Section] = []
    for name_raw, vsize, vaddr, rsize, rptr, flags in headers:
        raw = _align_down(rptr, falign)
        size = 0 if raw >= n else min(_align_up(rsize, falign), n - raw)
        sections.append(
            Section(
                name=_section_name(name_raw),
                raw_offset=raw,
                raw_size=size,
                virtual_address=vaddr,
                virtual_size=vsize,
                characteristics=flags,
            )
        )
    return PEInfo(
        machine=machine,
        is_pe32_plus=is_plus,
        sections=tuple(sections),
        entry_point_rva=entry_rva,
        entry_point_offset=rva_to_offset(sections, entry_rva, n),
        image_base=image_base,
        file_alignment=file_align,
    )


def rva_to_offset(sections: list[Section] | tuple[Section, ...], rva: int, size: int) -> int | None:
    """File offset of a relative virtual address, or None if no section maps it."""
    for s in sections:
        span = max(s.virtual_size, s.raw_size)
        if s.virtual_address <= rva < s.virtual_address + span:
            off = s.raw_offset + (rva - s.virtual_address)
            return off if off < size else None
    # Before the first section, RVAs map onto the headers one to one.
    first = min((s.virtual_address for s in sections), default=0)
    if rva < first and rva < size:
        return rva
    return None


def section_digests(data: bytes, info: PEInfo | None = None) -> tuple[SectionDigest, ...]:
    """MD5 and SHA-256 of each section's raw data (what ClamAV's .mdb/.msb hash)."""
    info = info if info is not None else parse(data)
    if info is None:
        return ()
    out: list[SectionDigest] = []
    for s in info.sections:
        if s.raw_size <= 0:
            continue
        chunk = data[s.raw_offset : s.raw_offset + s.raw_size]
        out.append(
            SectionDigest(
                name=s.name,
                size=len(chunk),
                md5=hashlib.md5(chunk, usedforsecurity=False).hexdigest(),
                sha256=hashlib.sha256(chunk).hexdigest(),
            )
        )
    return tuple(out)


#: `prefix_span`: at most this many bytes past the section table are looked at.
MAX_PREFIX_SPAN = 16 * 1024 * 1024


def prefix_span(data: bytes) -> tuple[int, int] | None:
    """Where a PE that may end before `data` does could end, as [lo, hi), or None.

    A file cut out of other bytes (`dd skip=100 count=544`) ends where its sender says, not
    where its headers do: clam.exe's headers claim 1 KiB (SizeOfHeaders 0x400, its one
    section at raw offset 1, inside the headers), the file is 544 bytes, the end of its section
    table. So when the headers claim more than `data` holds, or a section's raw data lies
    inside the headers (no well-formed PE does either), the file may end anywhere from its
    section table's end (a loader reads no less) to its claimed extent, at most `len(data)`
    and `MAX_PREFIX_SPAN` past the table; the engine hashes those prefixes whose sizes
    signatures name. A well-formed, whole PE gives None (its end is its headers' word)."""
    n = len(data)
    if n < 0x40 or data[:2] != b"MZ":
        return None
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if lfanew + 24 > n or data[lfanew : lfanew + 4] != b"PE\x00\x00":
        return None
    nsections, = struct.unpack_from("<H", data, lfanew + 6)
    opt_size, = struct.unpack_from("<H", data, lfanew + 20)
    opt = lfanew + 24
    table = opt + opt_size
    lo = table + 40 * min(nsections, _MAX_SECTIONS)
    if not 0 < nsections <= _MAX_SECTIONS or opt + 64 > n or lo > n:
        return None
    file_align, = struct.unpack_from("<I", data, opt + 36)
    headers_size, = struct.unpack_from("<I", data, opt + 60)
    claimed = headers_size
    inside = False
    for i in range(nsections):
        rsize, rptr = struct.unpack_from("<II", data, table + 40 * i + 16)
        if rsize:
            claimed = max(claimed, rptr + rsize, _align_down(rptr, file_align or 0x200)
                          + _align_up(rsize, file_align or 0x200))
            inside = inside or _align_down(rptr, file_align or 0x200) < headers_size
    if claimed <= n and not inside:
        return None
    hi = min(n, claimed + 1, lo + MAX_PREFIX_SPAN)
    return (lo, hi) if lo < hi else None
