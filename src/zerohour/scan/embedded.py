"""Archives and executables that do not start at offset 0: self-extractors (a PE stub with a 7z,
RAR, CAB or ARJ behind it, InstallShield setups: `scan.installshield`), PE overlays, polyglots
and files behind junk (ClamAV's embedded-type detection; zips are `decompose.embedded_zips`).

Cost is bounded: one `bytes.find` pass per magic number, at most `_MAX_CANDIDATES` offsets per
magic and `_MAX_FOUND` archives or executables per layer; each candidate is validated before
anything is decoded (a RAR/7z/CAB/ARJ must open and list a first entry with libarchive or the
ARJ reader's CRC-checked header, a PE must have a plausible PE header).

False positives: a magic number inside ordinary binaries (WinRAR and 7-Zip carry their own
signatures as constants, random data holds `MZ` every 64 KiB) that does not open as an archive
is ignored silently; only an archive at offset 0 is fail-closed when it does not open. An
embedded archive that opened (it listed an entry) is reported like any other, Broken and
Unsupported included; one whose headers are encrypted counts only when its first header's
CRC holds (`containers.headers_encrypted`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zerohour.errors import EncryptedContent
from zerohour.scan import containers, installshield
from zerohour.scan.gates import Literals
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType

_MAX_CANDIDATES = 32
_MAX_FOUND = 16
_MAGICS: tuple[tuple[bytes, FileType], ...] = (
    (b"Rar!\x1a\x07", FileType.RAR),
    (b"7z\xbc\xaf\x27\x1c", FileType.SEVENZIP),
    (b"MSCF\x00\x00\x00\x00", FileType.CAB),
    (b"\x60\xea", FileType.ARJ),
)
#: One pass says which magic numbers (and "MZ", last) occur at all: `gates.Literals`.
_PRESENT = Literals((*(magic for magic, _ in _MAGICS), b"MZ"))
_PE_MACHINES = frozenset({0x14C, 0x8664, 0x1C0, 0x1C2, 0x1C4, 0xAA64, 0x200, 0xEBC})
#: Layers whose own members are already layers (searching their bytes again only repeats
#: work) or that are parsed otherwise.
SKIP = frozenset({
    FileType.MAIL, FileType.ZIP, FileType.OOXML, FileType.TAR, FileType.GZIP, FileType.BZIP2,
    FileType.XZ, *containers.OPENED,
})


def children(data: bytes, ctx: ScanContext, ft: FileType = FileType.BINARY) -> Iterator[Child]:
    """Members of archives, and executables, found past offset 0 of a layer of type `ft`.
    In a PE, `scan.unpack.embedded` finds the PEs, and InstallShield overlays are read."""
    pes = ft is not FileType.PE
    if not pes:
        yield from installshield.children(data, ctx)
    found = 0
    present = _PRESENT.present(data)
    for i, (magic, ft) in enumerate(_MAGICS):
        if i not in present:
            continue
        for off in _offsets(data, magic, ctx):
            if found >= _MAX_FOUND:
                return
            if ft is FileType.ARJ:
                if not _arj_at(data, off):
                    continue
                opened = _probe(containers.children(data[off:], ft, ctx), ctx)
            else:
                opened = _probe(containers.libarchive_children(data, ft, ctx, off), ctx)
            produced = False
            for child in opened:
                produced = True
                yield child
            found += produced
    for off in _offsets(data, b"MZ", ctx) if pes and len(_MAGICS) in present else ():
        if found >= _MAX_FOUND:
            return
        end = pe_end(data, off)
        if end is None:
            continue
        found += 1
        exe = data[off:end]
        ctx.charge_child(len(exe))
        yield Child(data=exe, name=None, origin="embedded-pe")


def _offsets(data: bytes, magic: bytes, ctx: ScanContext) -> Iterator[int]:
    pos = data.find(magic, 1)
    n = 0
    while pos >= 0 and n < _MAX_CANDIDATES:
        ctx.check_time()
        n += 1
        yield pos
        pos = data.find(magic, pos + 1)


def _probe(members: Iterator[Child], ctx: ScanContext) -> Iterator[Child]:
    """`members`, but a candidate that yields nothing leaves no trace: its Broken/Unsupported
    notes and directory entries are dropped (a stray magic), unless it was encrypted."""
    events = len(ctx.events)
    noted = len(ctx.members)
    keep = False
    try:
        for child in members:
            keep = True
            yield child
    except EncryptedContent:
        keep = True
        raise
    finally:
        if not keep:
            del ctx.events[events:]
            del ctx.members[noted:]


def _arj_at(data: bytes, off: int) -> bool:
    from zerohour.scan import arj

    try:
        size, _hdr = arj._header_at(data, off)
    except ValueError:
        return False
    return size > 0


def pe_end(data: bytes, off: int) -> int | None:
    """End offset of the PE image starting at `off` (headers and the furthest section's raw
    data), or None when the header is not a plausible PE."""
    if off + 0x40 > len(data):
        return None
    (lfanew,) = struct.unpack_from("<I", data, off + 0x3C)
    pe = off + lfanew
    if not 0x40 <= lfanew <= 0x10000 or pe + 24 > len(data) or data[pe : pe + 4] != b"PE\0\0":
        return None
    machine, nsections, _t, _p, _s, opt_size, _c = struct.unpack_from("<HHIIIHH", data, pe + 4)
    if machine not in _PE_MACHINES or not 0 < nsections <= 96 or opt_size < 0x60:
        return None
    opt = pe + 24
    if opt + 64 > len(data):
        return None
    (headers_size,) = struct.unpack_from("<I", data, opt + 60)
    end = off + headers_size
    table = opt + opt_size
    for i in range(nsections):
        at = table + 40 * i
        if at + 40 > len(data):
            return None
        rsize, rptr = struct.unpack_from("<II", data, at + 16)
        if rsize:
            end = max(end, off + rptr + rsize)
    return min(end, len(data)) if end > pe else None
