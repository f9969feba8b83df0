"""Executables carried whole in a section of an executable or object file (a dropper's payload).

7-Zip opens PE, ELF and COFF object files and writes each section out as a file, and
`objcopy --only-section` does the same; a payload kept whole in a section is then the exact
file (round 18: clam.exe in an added section of an ELF tool, a COFF `.obj` and a PE launcher
was delivered; clamscan misses the three too). The PE-in-PE search (`unpack.embedded`) finds
such a PE but cuts it by its own headers, which overshoot a small file, so its hashes differ.
Here each section whose bytes are themselves an executable (PE, ELF, Mach-O) or an archive
(round 19: a cpio or `ar` archive in a section) is a layer,
cut as 7-Zip cuts it (a PE section to its virtual size when that is smaller than its raw
size; an ELF or COFF section to its size). Sections of other contents are left to the
embedded searches (archives at any offset) and to the executable's own scan: a section of
code or data is no file of its own, and making every one a layer would scan each executable
twice.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zerohour.scan import filetype, pe
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType

#: Sections read per file (ELF files have a few dozen; the COFF limit is 96).
_MAX_SECTIONS = 256
#: COFF machine types of object files (x86, x86-64, ARM, ARM64, Itanium).
_COFF_MACHINES = frozenset({0x14C, 0x8664, 0x1C0, 0x1C4, 0xAA64, 0x200})
_SHT_NOBITS = 8


def children(data: bytes, ft: FileType, ctx: ScanContext) -> Iterator[Child]:
    """The sections of a PE, ELF or COFF object layer that are executables or archives."""
    if ft is FileType.PE:
        spans = _pe_sections(data)
    elif ft is FileType.ELF:
        spans = _elf_sections(data)
    elif ft is FileType.BINARY:
        spans = _coff_sections(data)
    else:
        return
    seen: set[tuple[int, int]] = set()
    for off, size in spans[:_MAX_SECTIONS]:
        if size < 64 or off <= 0 or off + size > len(data) or (off, size) in seen:
            continue
        seen.add((off, size))
        section = data[off : off + size]
        ft = filetype.detect(section)
        if filetype.type_category(ft) not in ("executable", "archive"):
            continue  # (round 19: a cpio or ar archive kept in a section, as 7-Zip writes it)
        ctx.check_time()
        ctx.charge_child(size)
        yield Child(data=section, name=None, origin="section")


def _pe_sections(data: bytes) -> list[tuple[int, int]]:
    info = pe.parse(data)
    if info is None:
        return []
    return [(s.raw_offset, min(s.virtual_size, s.raw_size) if s.virtual_size else s.raw_size)
            for s in info.sections]


def _elf_sections(data: bytes) -> list[tuple[int, int]]:
    if len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    wide, end = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            (shoff,) = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
            entry = end + "IIQQQQ"  # name, type, flags, addr, offset, size
        else:
            (shoff,) = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
            entry = end + "IIIIII"
        if shentsize < struct.calcsize(entry) or shoff <= 0:
            return []
        out = []
        for i in range(min(shnum, _MAX_SECTIONS)):
            at = shoff + i * shentsize
            if at + shentsize > len(data):
                break
            _name, kind, _flags, _addr, off, size = struct.unpack_from(entry, data, at)
            if kind != _SHT_NOBITS:
                out.append((off, size))
        return out
    except struct.error:  # (a table cut short: what was read stands)
        return []


def _coff_sections(data: bytes) -> list[tuple[int, int]]:
    """Sections of a COFF object file (no optional header; `.obj` as compilers write it)."""
    if len(data) < 20:
        return []
    machine, nsections, _ts, _symptr, _nsyms, opt_size, _chars = struct.unpack_from(
        "<HHIIIHH", data, 0)
    if machine not in _COFF_MACHINES or not 0 < nsections <= 96 or opt_size != 0:
        return []
    out = []
    for i in range(nsections):
        at = 20 + 40 * i
        if at + 40 > len(data):
            break
        size, off = struct.unpack_from("<II", data, at + 16)
        out.append((off, size))
    return out
