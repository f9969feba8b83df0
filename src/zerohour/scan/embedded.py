"""Archives and executables that do not start at offset 0: self-extractors (a PE stub with a 7z,
RAR, CAB or ARJ behind it, InstallShield setups: `scan.installshield`), PE overlays, polyglots
and files behind junk (ClamAV's embedded-type detection; zips are `decompose.embedded_zips`).

Cost is bounded: one `bytes.find` pass per magic number (every occurrence, under the scan's
deadline), and a cheap check of each candidate's header before anything is decoded (a 7z
start header's CRC, a CAB's folder and file counts, the ARJ reader's CRC-checked header, a
gzip's reserved flags, a tar header's checksum, a PE's header); a stray magic that fails it
costs only that check. At most `_MAX_CANDIDATES` candidates per magic that pass the check yet
open nothing are tried, and at most `_MAX_FOUND` archives or executables are taken per layer:
past either cap, with a further candidate left, the layer is `Heuristics.Limits.Exceeded.
MaxFiles`, never clean (round 31 hid a gzip behind 33 decoy headers). Legit files rarely get
there: random bytes pass a header check rarely (a gzip's about once per 128 MB, the others far
less often), and more than 16 archives glued at odd offsets into one layer that is no
container is an attacker's shape (a concatenated multi-member gzip behind junk is the one
legit shape that could: each member's header is a candidate).

False positives: a magic number inside ordinary binaries (WinRAR and 7-Zip carry their own
signatures as constants, random data holds `MZ` every 64 KiB) that does not open as an archive
is ignored silently; only an archive at offset 0 is fail-closed when it does not open. An
embedded archive that opened (it listed an entry) is reported like any other, Broken and
Unsupported included; one whose headers are encrypted counts only when its first header's
CRC holds (`containers.headers_encrypted`).
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import archive, containers, filetype, installshield, streams
from zerohour.scan.gates import Literals
from zerohour.scan.limits import MAX_FILES, ScanContext
from zerohour.scan.types import Child, FileType

_MAX_CANDIDATES = 32
_MAX_FOUND = 16
_MAGICS: tuple[tuple[bytes, FileType], ...] = (
    (b"Rar!\x1a\x07", FileType.RAR),
    (b"7z\xbc\xaf\x27\x1c", FileType.SEVENZIP),
    (b"MSCF\x00\x00\x00\x00", FileType.CAB),
    (b"\x60\xea", FileType.ARJ),
    # Compressed streams and tar archives behind a script or an executable: makeself and
    # shar installers (`tail -n +N "$0" | tar xz`), an ELF or PE with a tarball glued on
    # (7-Zip opens those). Round 9 delivered clam.exe in each.
    (b"\x1f\x8b\x08", FileType.GZIP),
    (b"BZh", FileType.BZIP2),
    (b"\xfd7zXZ\x00", FileType.XZ),
    (b"\x28\xb5\x2f\xfd", FileType.ZSTD),
    (b"ustar", FileType.TAR),  # 257 bytes into a header
)
_TAR_MAGIC_AT = 257
#: One pass says which magic numbers (and "MZ", last) occur at all: `gates.Literals`.
#: Containers nothing here opens yet, behind other bytes (an AppImage is an ELF with a
#: squashfs behind it; 7-Zip opens both): `Heuristics.Unsupported.<TYPE>`, never clean.
_UNOPENED: tuple[tuple[bytes, FileType], ...] = (
    (b"hsqs", FileType.SQUASHFS),
    (b"MSWIM\x00\x00\x00", FileType.WIM),
    (b"LZIP\x01", FileType.LZIP),  # (round 10: an ELF with an lzip stream behind it)
    (b"\x89LZO\x00\r\n\x1a\n", FileType.LZOP),  # (a script with an lzop stream behind it)
)
_PRESENT = Literals((*(magic for magic, _ in _MAGICS), b"MZ",
                     *(magic for magic, _ in _UNOPENED)))
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
        decoys = 0
        for off in _offsets(data, magic, ctx):
            start = off - _TAR_MAGIC_AT if ft is FileType.TAR else off
            if not _plausible(data, start, ft):
                continue  # (free: a stray magic whose header does not hold together)
            if decoys >= _MAX_CANDIDATES:
                # Every earlier plausible candidate opened nothing, and this one is still
                # untried: fail closed rather than stop (round 31 hid a gzip behind 33).
                raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_CANDIDATES} embedded "
                                        f"{ft.value} headers that open nothing")
            if ft is FileType.ARJ:
                opened = _probe(containers.children(data[off:], ft, ctx), ctx)
            elif ft in _STREAMS:
                opened = _unbounded(_STREAMS[ft](data[start:], ctx), ctx)
            else:
                opened = _probe(containers.libarchive_children(data, ft, ctx, off), ctx)
            produced = False
            for child in opened:
                if not produced and found >= _MAX_FOUND:
                    raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_FOUND} embedded "
                                            "archives in one layer")
                produced = True
                yield child
            found += produced
            decoys += not produced
    for j, (magic, ft) in enumerate(_UNOPENED, len(_MAGICS) + 1):
        if j in present and any(_unopened_at(data, off, ft) for off in _offsets(data, magic, ctx)):
            ctx.unsupported(ft.value.upper())
    for off in _offsets(data, b"MZ", ctx) if pes and len(_MAGICS) in present else ():
        end = pe_end(data, off)
        if end is None:
            continue
        if found >= _MAX_FOUND:
            raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_FOUND} embedded archives "
                                    "and executables in one layer")
        found += 1
        exe = data[off:end]
        ctx.charge_child(len(exe))
        yield Child(data=exe, name=None, origin="embedded-pe")


def _unopened_at(data: bytes, off: int, ft: FileType) -> bool:
    """A squashfs superblock that holds together, a WIM header of its fixed size (208)."""
    if ft is FileType.WIM:
        return data[off + 8 : off + 12] == b"\xd0\x00\x00\x00"
    return filetype.detect(data[off : off + 4096]) is ft


def _offsets(data: bytes, magic: bytes, ctx: ScanContext) -> Iterator[int]:
    """Every offset of `magic` past 0 (one `bytes.find` each; the caller's checks of a
    candidate are cheap, and the scan's deadline bounds the walk)."""
    pos = data.find(magic, 1)
    while pos >= 0:
        ctx.check_time()
        yield pos
        pos = data.find(magic, pos + 1)


def _tar(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    return archive.tar_children(data, ctx)


def _compressed(ft: FileType) -> Callable[[bytes, ScanContext], Iterator[Child]]:
    if ft is FileType.ZSTD:
        return lambda data, ctx: streams.stream_children(data, ft, ctx, None)
    return lambda data, ctx: archive.stream_children(data, ft, ctx, None)


_STREAMS: dict[FileType, Callable[[bytes, ScanContext], Iterator[Child]]] = {
    FileType.GZIP: _compressed(FileType.GZIP), FileType.BZIP2: _compressed(FileType.BZIP2),
    FileType.XZ: _compressed(FileType.XZ), FileType.ZSTD: _compressed(FileType.ZSTD),
    FileType.TAR: _tar,
}


def _plausible(data: bytes, start: int, ft: FileType) -> bool:
    """Whether the header of `ft` at `start` is worth opening: what libarchive (or our ARJ
    and stream readers) would check first anyway, so a candidate that fails it would open
    nothing. Strays that fail it cost no more than this check."""
    if ft is FileType.ARJ:
        return _arj_at(data, start)
    if ft in _STREAMS:
        return _stream_at(data, start, ft)
    if ft is FileType.SEVENZIP:  # libarchive: the start header's CRC, a next header
        head = data[start : start + 32]
        if head[8:32] == bytes(24):  # an unfinished write, which 7-Zip recovers: the reader
            return containers.sevenzip_recovery_at(data, start) is not None  # rebuilds it
        return (len(head) == 32 and zlib.crc32(head[12:32]) == int.from_bytes(head[8:12], "little")
                and head[20:28] != bytes(8))
    if ft is FileType.CAB:  # libarchive: at least one folder and one file
        head = data[start : start + 30]
        return len(head) == 30 and head[26:28] != b"\0\0" and head[28:30] != b"\0\0"
    if ft is FileType.RAR:  # RAR 4 (`Rar!\x1a\x07\x00`) or RAR 5 (`Rar!\x1a\x07\x01\x00`)
        return data[start + 6 : start + 7] == b"\0" or data[start + 6 : start + 8] == b"\x01\0"
    return True


def _stream_at(data: bytes, start: int, ft: FileType) -> bool:
    """A plausible header of `ft` at `start` (the decoder then has to produce something)."""
    if start < 1:
        return False  # at offset 0 it is the layer's own type
    if ft is FileType.GZIP:
        return not data[start + 3] & 0xE0 if start + 3 < len(data) else False  # reserved flags
    if ft is FileType.BZIP2:
        return (data[start + 3 : start + 4] in (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8",
                                                 b"9")
                and data[start + 4 : start + 10] in (b"1AY&SY", b"\x17rE8P\x90"))
    if ft is FileType.TAR:
        try:
            tarfile.TarInfo.frombuf(data[start : start + 512], "utf-8", "surrogateescape")
        except (tarfile.HeaderError, ValueError):
            return False  # the header's checksum does not hold
    return True


def _unbounded(members: Iterator[Child], ctx: ScanContext) -> Iterator[Child]:
    """An embedded stream or tar's members without the Broken notes its reader makes: where
    an embedded stream ends is not known, so the bytes after it are no damage (and what a
    truncated one decoded is scanned: it is all `tar` or `gzip -d` would give too). A
    candidate that yields nothing leaves no trace (`_probe`)."""
    start = len(ctx.events)
    for child in _probe(members, ctx):
        _drop_broken(ctx, start)  # before the engine turns them into findings
        yield child
        start = len(ctx.events)
    _drop_broken(ctx, start)


def _drop_broken(ctx: ScanContext, start: int) -> None:
    ctx.events[start:] = [e for e in ctx.events[start:] if e[0] != "Broken"]


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
