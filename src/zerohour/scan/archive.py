"""Archive and compressed-stream members: zip (stored, deflate, bzip2, lzma, xz, zip64; Implode,
Deflate64, Zstandard and PPMd through `scan.zipmethods`), tar, gzip, bzip2, xz. Other archives
are `scan.containers`.

Every decompression is incremental with its output bounded by the scan budget
(`ScanContext.output_bound`) and checked against the compression-ratio bound while it runs, so a
bomb is stopped after a few MiB of output instead of after the allocation. Zips are read through
the central directory (what most clients show) *and* through local headers that the directory
does not cover (what stream extractors see), so hidden entries are not missed. Overlapping zip
entries (the "better zip bomb") raise `OverlappingFiles`; encrypted entries raise
`EncryptedContent("Zip")` after every readable member has been yielded.
"""

from __future__ import annotations

import bisect
import bz2
import hashlib
import io
import itertools
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol, cast

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import lzw, zipmethods
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import OVERLAPPING_FILES, ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

_CHUNK = 1 << 20
_IN_CHUNK = 256 * 1024
_LOCAL = b"PK\x03\x04"
_MAX_LOCAL_SCAN = 20_000
_ZIP_METHODS = frozenset({0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 96, 97, 98, 99})
_NEXT_RECORD = (b"PK\x07\x08", _LOCAL, b"PK\x01\x02")


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _zlib_bounded(
    data: bytes | memoryview,
    wbits: int,
    ctx: ScanContext,
    compressed: int | None = None,
    start: int = 0,
    already: int = 0,
    zdict: bytes | None = None,
) -> tuple[bytes, int, bool]:
    """Inflate one zlib/deflate/gzip stream starting at `start`: (output, offset after it,
    whether the stream was complete and undamaged).

    Input is fed in bounded memoryview slices, so a stream that ends early in a large buffer
    (zip data descriptors, gzip members) never copies the rest of the buffer. `already` is
    output produced earlier for the same member (counted against the bounds). Truncated or
    corrupt input yields what decoded before the damage (complete is then False); the offset is
    then `len(data)`. `zdict`: the preset dictionary (`zlibdict`).
    """
    bound = max(0, ctx.output_bound() - already)
    n = len(data)
    comp = compressed if compressed is not None else n - start
    mv = memoryview(data)
    d = zlib.decompressobj(wbits) if zdict is None else zlib.decompressobj(wbits, zdict=zdict)
    out: list[bytes] = []
    total = 0
    pos = start
    pending: bytes | memoryview = b""
    stalls = 0
    while True:
        ctx.check_time()
        if not pending:
            if pos >= n:
                try:
                    rest = d.flush()
                except zlib.error:
                    rest = b""
                out.append(rest)
                total += len(rest)
                if total > bound:
                    ctx.check_output(already + total)
                return b"".join(out), n, False  # input ended before the stream did
            pending = mv[pos : pos + _IN_CHUNK]
            pos += len(pending)
        want = min(_CHUNK, bound + 1 - total)
        try:
            piece = d.decompress(pending, want)
        except zlib.error:
            return b"".join(out), n, False
        out.append(piece)
        total += len(piece)
        if total > bound:
            ctx.check_output(already + total)
        ctx.check_ratio(comp, already + total)
        if d.eof:
            return b"".join(out), pos - len(d.unused_data), True
        pending = d.unconsumed_tail
        stalls = stalls + 1 if not piece and pending else 0
        if stalls > 2:
            return b"".join(out), n, False


def inflate(data: bytes | memoryview, ctx: ScanContext) -> tuple[bytes, int]:
    """Inflate zlib-wrapped data, or raw deflate when the zlib header is missing (bounded)."""
    wbits = 15 if len(data) >= 2 and (data[0] & 0x0F) == 8 and (
        (data[0] << 8) | data[1]) % 31 == 0 else -15
    out, end, _complete = _zlib_bounded(data, wbits, ctx)
    return out, end


def zlib_header(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (RFC 1950: deflate, a window of 32 KiB at
    most, the header's check)."""
    return (len(data) >= 8 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7
            and not ((data[0] << 8) | data[1]) % 31)


def zlib_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """A raw zlib stream (RFC 1950: `.zz`, `pigz -z`, `zlib-flate -compress`, `openssl zlib`):
    no magic number, only a two-byte header whose check holds one time in 31 for random
    bytes, so only a stream that inflates to its end counts (nothing is said of one that
    does not: it was not zlib). One with a preset dictionary: `zlibdict`."""
    if not zlib_header(data) or data[1] & 0x20:
        return  # not zlib, or a preset dictionary
    out, _end, complete = _zlib_bounded(data, 15, ctx)
    if complete and out:
        ctx.charge_child(len(out))
        yield Child(data=out, name=None, origin="zlib")
        return
    # Cut before its Adler-32 (round 21): `decompressobj().decompress()` still gives what the
    # last block ends, so do we, as a guess (the header holds for random bytes).
    out, _end, complete = _zlib_bounded(data, -15, ctx, start=2)
    if complete and len(out) >= 16:
        ctx.charge_child(len(out))
        yield Child(data=out, name=None, origin="zlib", speculative=True)


_XZ_MAGIC = b"\xfd7zXZ\x00"
_NULS = re.compile(rb"\x00+")


def _stream_bounded(
    factory: Callable[[], bz2.BZ2Decompressor | lzma.LZMADecompressor],
    data: bytes,
    ctx: ScanContext,
    magic: bytes = b"",
) -> tuple[bytes, bool]:
    """Decompress a (possibly multi-stream) bzip2/xz input with bounded output: (output,
    whether every stream was complete and undamaged).

    Input goes in bounded memoryview slices (no copies of the rest of the buffer per stream).
    """
    bound = ctx.output_bound()
    n = len(data)
    mv = memoryview(data)
    out: list[bytes] = []
    total = 0
    pos = 0
    d = factory()
    stalls = 0
    complete = False
    while True:
        ctx.check_time()
        if d.eof:
            pos -= len(d.unused_data)
            complete = True
            if magic == _XZ_MAGIC:
                # xz allows stream padding (NUL bytes, a multiple of four) between streams;
                # `xz -d` decodes the stream after it (a hiding place clamscan does not miss).
                m = _NULS.match(data, pos)
                pad = m.end() if m else pos
                if (pad - pos) % 4 == 0 and data.startswith(magic, pad):
                    pos = pad
            if pos >= n or not data.startswith(magic, pos):
                break  # the end, or padding / trailing junk after the last stream (ignored,
                # as bzip2 and xz do)
            d = factory()  # the next concatenated stream
            complete = False
            continue
        feed: bytes | memoryview = b""
        if d.needs_input:
            if pos >= n:
                break  # truncated stream
            feed = mv[pos : pos + _IN_CHUNK]
            pos += len(feed)
        want = min(_CHUNK, bound + 1 - total)
        try:
            piece = d.decompress(feed, want)
        except (OSError, EOFError, lzma.LZMAError, ValueError):
            break
        out.append(piece)
        total += len(piece)
        if total > bound:
            ctx.check_output(total)
        ctx.check_ratio(n, total)
        stalls = stalls + 1 if not piece and not feed else 0
        if stalls > 2:
            break
    return b"".join(out), complete


#: The bounded inflater, for the other archive readers (ALZ, InstallShield).
zlib_bounded = _zlib_bounded


def bzip2_bounded(data: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """A bzip2 stream (no magic check: OpenPGP's compressed packets), bounded."""
    return _stream_bounded(bz2.BZ2Decompressor, data, ctx)


def gunzip(data: bytes, ctx: ScanContext) -> tuple[bytes, str | None, bool]:
    """All members of a gzip file, concatenated, the stored file name if any, and whether
    every member was complete and undamaged."""
    name = _gzip_name(data)
    out: list[bytes] = []
    total = 0
    pos = 0
    n = len(data)
    complete = True
    while data[pos : pos + 2] == b"\x1f\x8b":
        ctx.check_time()
        piece, end, ok = _zlib_bounded(data, 31, ctx, compressed=n, start=pos, already=total)
        complete = complete and ok
        out.append(piece)
        total += len(piece)
        if end <= pos:
            break
        pos = end
        while pos < n and data[pos] == 0:  # zero padding between members (tape blocks)
            pos += 1
    magic = data[pos : pos + 2]
    if magic == lzw.COMPRESS_MAGIC and pos:
        # `gzip -d` also decodes a compress or pack member after a gzip one (round 10: an
        # empty gzip member, then clam.exe in `.Z`): so do we (`scan.lzw`, since round 20)
        piece, ok, _codes = lzw.uncompress(data[pos:], ctx)
        out.append(piece)
        complete = complete and ok
    elif magic == lzw.PACK_MAGIC and pos:
        unpacked = lzw.unpack(data[pos:], ctx)
        if unpacked is None:
            ctx.broken("GZip")  # gzip -d refuses it: what it wrote before is scanned
        else:
            out.append(unpacked[0])
            complete = complete and unpacked[1]
    elif magic in _GZIP_DECODES_TOO:
        # an LZH member (`gzip -d` reads those too): we do not, so it is no "junk"
        ctx.unsupported("GZip", _GZIP_DECODES_TOO[magic])
    return b"".join(out), name, complete


#: The other formats `gzip -d` decodes, by their magic numbers (compress and pack: `lzw`).
_GZIP_DECODES_TOO = {b"\x1f\x9d": "Compress", b"\x1f\x1e": "Pack", b"\x1f\xa0": "LZH"}


def _gzip_name(data: bytes) -> str | None:
    if len(data) < 10 or not data[3] & 0x08:
        return None
    pos = 10
    if data[3] & 0x04 and len(data) >= 12:
        (xlen,) = struct.unpack_from("<H", data, 10)
        pos = 12 + xlen
    end = data.find(b"\x00", pos, pos + 1024)
    if end < 0:
        return None
    return data[pos:end].decode("latin-1") or None


def stream_children(
    data: bytes, ft: FileType, ctx: ScanContext, name: str | None
) -> Iterator[Child]:
    """The decompressed content of a gzip, bzip2 or xz layer (one child)."""
    if ft is FileType.GZIP:
        out, inner, complete = gunzip(data, ctx)
        origin, fmt = "gzip", "GZip"
    elif ft is FileType.BZIP2:
        out, complete = _stream_bounded(bz2.BZ2Decompressor, data, ctx, b"BZh")
        inner, origin, fmt = None, "bzip2", "BZip2"
    elif ft is FileType.XZ:
        out, complete = _stream_bounded(
            lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO), data, ctx, b"\xfd7zXZ\x00"
        )
        inner, origin, fmt = None, "xz", "XZ"
    else:
        return
    if not complete:
        ctx.broken(fmt)  # truncated or corrupt: what decoded before the damage is still scanned
    if inner is None and name:
        for suffix in (".gz", ".tgz", ".bz2", ".xz", ".txz", ".tbz2"):
            if name.lower().endswith(suffix):
                inner = name[: -len(suffix)] + (".tar" if suffix.startswith(".t") else "")
                break
    if out:
        ctx.charge_child(len(out))
        yield Child(data=out, name=inner, origin=origin)


# --- tar --------------------------------------------------------------------------------------


_TAR_ERRORS = (tarfile.TarError, EOFError, ValueError, OSError, UnicodeError)


def tar_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Regular-file members of a tar archive. A damaged or truncated archive yields what came
    before the damage (a truncated member: what is there) and is `Heuristics.Broken.Tar`."""
    dedup = Dedup()
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115 - closed below
    except _TAR_ERRORS:
        ctx.broken("Tar")
        return
    with tf:
        while True:
            ctx.check_time()
            try:
                member = tf.next()
            except _TAR_ERRORS:
                ctx.broken("Tar")
                return
            if member is None:
                # tarfile ends quietly at a bad header after the first: only zero blocks (and
                # record padding) may follow the last member of a whole archive.
                if data[tf.offset :].strip(b"\x00"):
                    ctx.broken("Tar")
                return
            unknown = member.type not in tarfile.SUPPORTED_TYPES
            if not (member.isfile() or unknown):
                continue
            if not member.issparse() and member.offset_data + member.size > len(data):
                ctx.broken("Tar")  # the member's data runs past the end: truncated
            if ctx.skip_oversized(member.size):
                continue
            readings: list[bytes] = []
            if unknown:  # GNU tar extracts a type it does not know as a regular file
                readings.append(data[member.offset_data : member.offset_data + member.size])
            else:
                try:
                    f = tf.extractfile(member)
                    readings.append(f.read(ctx.output_bound() + 1) if f is not None else b"")
                except _TAR_ERRORS:
                    ctx.broken("Tar")
                    readings.append(data[member.offset_data : member.offset_data + member.size])
                if member.issparse():
                    readings.append(_sparse_blocks(data, member, ctx.output_bound() + 1))
            for content in readings:
                if content and dedup.fresh(content, member.name):
                    ctx.charge_child(len(content))
                    yield Child(data=content, name=member.name, origin="tar")


def _octal(field: bytes) -> int | None:
    digits = field.strip(b" \x00")
    try:
        return int(digits, 8) if digits else None
    except ValueError:
        return None


def _old_gnu_map(data: bytes, header: int) -> list[tuple[int, int]]:
    """An old GNU sparse member's map as GNU tar reads it: 4 entries in the header, 21 in each
    extension block, up to the first empty field. Python's tarfile drops every region at
    offset 0 (`if offset and numbytes`), so the first bytes of the file went missing (round
    10: clam.exe's MZ header, with the map in reverse order)."""
    regions: list[tuple[int, int]] = []

    def entries(block: int, count: int) -> bool:
        for k in range(count):
            at = block + k * 24
            offset, length = _octal(data[at : at + 12]), _octal(data[at + 12 : at + 24])
            if offset is None or length is None:
                return False
            regions.append((offset, length))
        return True

    entries(header + 386, 4)
    extended, block = data[header + 482 : header + 483] not in (b"", b"\x00"), header + 512
    while extended and block + 512 <= len(data) and len(regions) < 100_000:
        entries(block, 21)
        extended = data[block + 504 : block + 505] not in (b"", b"\x00")
        block += 512
    return regions


def _sparse_blocks(data: bytes, member: tarfile.TarInfo, bound: int) -> bytes:
    """A sparse member as GNU tar extracts it: each region's data starts a 512-byte block of
    its own. Python's tarfile reads the regions back to back; a real sparse file's regions are
    block-aligned and both readings agree, a crafted map's are not (round 9: clam.exe came
    out of `tar -xf` whole and out of tarfile scrambled)."""
    size = min(member.size, bound)
    out = bytearray(size)
    at = member.offset_data
    regions = cast("list[tuple[int, int]]", member.sparse or [])  # typeshed: "int"
    if member.type == tarfile.GNUTYPE_SPARSE:
        regions = _old_gnu_map(data, member.offset)
    for offset, length in regions:
        if offset < size:
            piece = data[at : at + min(length, size - offset)]
            out[offset : offset + len(piece)] = piece
        at += -(-length // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return bytes(out)


# --- zip --------------------------------------------------------------------------------------

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    EOFError,
    ValueError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    UnicodeError,
    struct.error,
    KeyError,
    IndexError,
)


#: Methods we decode (stored, deflate, bzip2, LZMA, XZ here; Implode, Deflate64, Zstandard and
#: PPMd in `scan.zipmethods`). 99 is WinZip AES: encryption.
ZIP_SUPPORTED = frozenset({0, 8, 12, 14, 95}) | zipmethods.METHODS
#: Methods Python's zipfile reads itself (the others go through the local header).
_ZIPFILE_METHODS = frozenset({0, 8, 12, 14})
ZIP_AES = 99
#: Names of the methods we cannot decode, for `Heuristics.Unsupported.Zip.<name>`.
ZIP_METHOD_NAMES = {
    1: "Shrink", 2: "Reduce", 3: "Reduce", 4: "Reduce", 5: "Reduce", 6: "Implode",
    9: "Deflate64", 10: "PKImplode", 16: "IBMCMPSC", 18: "IBMTerse", 19: "LZ77", 20: "Zstd",
    93: "Zstd", 94: "MP3", 96: "JPEG", 97: "WavPack", 98: "PPMd",
}


def zip_method_name(method: int) -> str:
    return ZIP_METHOD_NAMES.get(method, f"Method{method}")


def _decode_member(
    method: int, raw: bytes, ctx: ScanContext, flags: int = 0, size: int = 0, crc: int = 0
) -> tuple[bytes | None, bool]:
    """Decode one member's compressed bytes, bounded: (content or None for a method we
    cannot decode, whether it decoded completely). `flags`, `size` and `crc` come from the
    member's header (Implode's trees and end, PPMd's check)."""
    if method in zipmethods.METHODS:
        return zipmethods.decode(method, raw, ctx, flags, size, crc)
    if method == 0:
        ctx.check_output(len(raw))
        return raw, True
    if method == 8:
        out, _, complete = _zlib_bounded(raw, -15, ctx)
        return out, complete
    if method == 12:
        return _stream_bounded(bz2.BZ2Decompressor, raw, ctx)
    if method == 95:
        return _stream_bounded(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), raw, ctx)
    if method == 14:
        if len(raw) <= 4:
            return b"", False
        # zip's LZMA: 2-byte version, 2-byte props size, props, then raw LZMA1 data.
        (psize,) = struct.unpack_from("<H", raw, 2)
        props = raw[4 : 4 + psize]
        try:
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        except (lzma.LZMAError, ValueError):
            return b"", False
        out, complete = _stream_bounded(
            lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt]), raw[4 + psize :], ctx
        )
        # Raw LZMA1 without an end marker never reports eof: complete when output exists.
        return out, complete or bool(out)
    return None, False


def _local_header(data: bytes, off: int) -> tuple[int, int, int, int, int] | None:
    """(flags, method, csize, data_start, name_len) of the local header at `off`."""
    if off < 0 or off + 30 > len(data) or data[off : off + 4] != _LOCAL:
        return None
    ver, flags, method, _t, _d, _crc, csize, _usize, nlen, elen = struct.unpack_from(
        "<HHHHHIIIHH", data, off + 4
    )
    # Plausibility: random bytes after "PK\3\4" must not pass for an (encrypted) entry.
    if (ver & 0xFF) > 100 or method not in _ZIP_METHODS or not 0 < nlen <= 4096:
        return None
    return flags, method, csize, off + 30 + nlen + elen, nlen


class _Local:
    """What reading one member through its local header found."""

    __slots__ = ("complete", "content", "encrypted", "end", "method", "name")

    def __init__(self, content: bytes | None, name: str | None, encrypted: bool, end: int,
                 method: int = 0, complete: bool = True) -> None:
        self.content = content
        self.name = name
        self.encrypted = encrypted
        self.end = end
        self.method = method
        self.complete = complete

    @property
    def unsupported(self) -> bool:
        return not self.encrypted and self.method not in ZIP_SUPPORTED


def _read_local(
    data: bytes, off: int, ctx: ScanContext, csize_hint: int | None = None,
    sizes: tuple[int, int] | None = None,
) -> _Local | None:
    """Decode the member whose local header is at `off` (None: no plausible header there)."""
    hdr = _local_header(data, off)
    if hdr is None:
        return None
    flags, method, csize, start, nlen = hdr
    (crc,) = struct.unpack_from("<I", data, off + 14)
    (usize,) = struct.unpack_from("<I", data, off + 22)
    name = data[off + 30 : off + 30 + nlen].decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if flags & 0x1 or method == ZIP_AES:
        return _Local(None, name, True, start, method)
    if csize_hint is not None and csize_hint > csize:
        csize = csize_hint
    if sizes is not None:
        usize, crc = sizes
    if csize in (0, 0xFFFFFFFF) and (flags & 0x8 or csize == 0xFFFFFFFF):
        # Size only in a data descriptor: deflate finds its own end; stored runs to the next header.
        if method == 8:
            out, _, complete = _zlib_bounded(data, -15, ctx, start=start)
            return _Local(out, name, False, start + 1, method, complete)
        nxt = min(
            (p for p in (data.find(s, start) for s in _NEXT_RECORD) if p >= 0),
            default=len(data),
        )
        csize = nxt - start
    raw = data[start : start + csize]
    complete = len(raw) == csize
    try:
        content, ok = _decode_member(method, raw, ctx, flags, usize, crc)
    except ScanLimitExceeded:
        raise
    except _ZIP_ERRORS:
        content, ok = None, False
    return _Local(content, name, False, start + csize, method, complete and ok)


def zip_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Members of a zip: central-directory entries, then local entries it does not cover."""
    dedup = Dedup()
    encrypted = False
    covered: list[tuple[int, int]] = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except _ZIP_ERRORS:
        zf = None
        infos = []
        if is_split_zip(data):
            # One segment of a split archive (zip -s): the members whose data is here are
            # scanned from their local headers; the rest is in segments we do not have.
            ctx.unsupported("Zip", "Split")
        else:
            # No readable central directory (truncated, corrupt): extractors refuse it or
            # guess; we scan what the local headers give and say the archive is broken.
            ctx.broken("Zip")
    if zf is not None and is_split_zip(data):
        # The last segment of a split archive: its directory points into segments we do not
        # have. Its entries are noted; what the local headers here hold is scanned below.
        for index, info in enumerate(infos):
            ctx.note_member(MemberMeta(FileType.ZIP, info.filename, info.file_size,
                                       info.compress_size, info.CRC,
                                       bool(info.flag_bits & 0x1), index))
        ctx.unsupported("Zip", "Split")
        zf.close()
        zf = None
    if zf is not None:
        _check_overlap(infos)
        with zf:
            for index, info in enumerate(infos):
                ctx.check_time()
                hdr = _local_header(data, info.header_offset)
                if hdr is not None:
                    covered.append((info.header_offset, hdr[3] + info.compress_size))
                flagged = bool(info.flag_bits & 0x1 or (hdr is not None and hdr[0] & 0x1))
                ctx.note_member(MemberMeta(FileType.ZIP, info.filename, info.file_size,
                                           info.compress_size, info.CRC, flagged, index))
                if _is_dir(info):
                    continue
                if flagged or ZIP_AES in (info.compress_type, hdr[1] if hdr else None):
                    encrypted = True  # either directory says so: fail closed
                    continue
                if info.compress_type not in ZIP_SUPPORTED:
                    # Deflate64, PPMd, ...: Explorer or 7-Zip open it, we cannot: fail closed.
                    ctx.unsupported("Zip", zip_method_name(info.compress_type))
                if ctx.skip_oversized(info.file_size):
                    continue
                content: bytes | None = None
                if info.compress_type in ZIP_SUPPORTED:
                    try:
                        if info.compress_type in _ZIPFILE_METHODS:
                            content = _read_zipinfo(zf, info, data, ctx)
                        else:
                            content = _read_other_method(data, info, ctx)
                    except ScanLimitExceeded as exc:
                        if ctx.tolerate(exc):
                            continue
                        raise
                    except Exception as exc:  # one member's bug must not hide its siblings
                        ctx.error(f"zip:{info.filename}", exc)
                        continue
                if content and dedup.fresh(content, info.filename):
                    ctx.charge_child(len(content))
                    yield Child(data=content, name=info.filename, origin="zip")
                if hdr is not None and _local_disagrees(hdr, info):
                    # Extractors that trust the local header (method, size) see other bytes.
                    alt = _read_local(data, info.header_offset, ctx)
                    if alt is not None and alt.unsupported:
                        ctx.unsupported("Zip", zip_method_name(alt.method))
                    elif alt is not None and not alt.complete:
                        ctx.broken("Zip")  # what a local-header extractor gets won't decode
                    if alt is not None and alt.content and dedup.fresh(alt.content, info.filename):
                        ctx.charge_child(len(alt.content))
                        yield Child(data=alt.content, name=info.filename,
                                    origin="zip-local-header")
    if zf is not None:
        # The archive's comment and its members' (what `unzip -z` / `zipinfo` print, and
        # `ZipFile.comment` gives a script): up to 64 KiB each, a file of their own (z04).
        for comment in (zf.comment, *(info.comment for info in infos)):
            if comment and dedup.fresh(comment):
                ctx.charge_child(len(comment))
                yield Child(data=comment, name=None, origin="zip-comment")
    # Local headers outside every central-directory entry: hidden or orphaned members.
    covered.sort()
    starts = [a for a, _ in covered]
    pos = data.find(_LOCAL)
    scanned = 0
    hidden = 0
    while pos >= 0 and scanned < _MAX_LOCAL_SCAN:
        ctx.check_time()
        scanned += 1
        i = bisect.bisect_right(starts, pos) - 1
        if i >= 0 and pos < covered[i][1]:
            pos = data.find(_LOCAL, max(pos + 4, covered[i][1]))
            continue
        try:
            local = _read_local(data, pos, ctx)
        except ScanLimitExceeded:
            raise
        except Exception as exc:  # one hidden member's bug must not hide the others
            ctx.error(f"zip-local@{pos}", exc)
            local = None
        if local is None:
            pos = data.find(_LOCAL, pos + 4)
            continue
        crc, csize, usize = struct.unpack_from("<III", data, pos + 14)
        ctx.note_member(MemberMeta(FileType.ZIP, local.name, usize, csize, crc, local.encrypted,
                                   len(infos) + hidden))  # what stream extractors list too
        hidden += 1
        encrypted = encrypted or local.encrypted
        if local.unsupported:
            ctx.unsupported("Zip", zip_method_name(local.method))
        elif not local.complete and zf is not None:
            ctx.broken("Zip")  # a hidden member that does not even decode
        if local.content and dedup.fresh(local.content, local.name):
            ctx.charge_child(len(local.content))
            yield Child(data=local.content, name=local.name, origin="zip-local")
        pos = data.find(_LOCAL, max(local.end, pos + 4))
    if encrypted:
        raise EncryptedContent("Zip")


def zip_names(data: bytes, limit: int = 65536) -> list[str]:
    """The names in the central directory of the zip `data` (at most `limit`; [] if none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [info.filename for info in zf.infolist()[:limit]]
    except _ZIP_ERRORS:
        return []


def named_members(data: bytes, names: set[str], ctx: ScanContext, max_size: int
                  ) -> dict[str, bytes]:
    """The members of the zip `data` called `names` (central directory; unencrypted, at most
    `max_size` bytes, read with the same bounds as `zip_children`): for a reading that needs
    parts `zip_children` did not yield again (one whose bytes equal an earlier member's)."""
    out: dict[str, bytes] = {}
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS:
        return out
    with zf:
        for info in zf.infolist():
            ctx.check_time()
            if (info.filename not in names or info.filename in out or info.flag_bits & 0x1
                    or info.compress_type not in _ZIPFILE_METHODS or info.file_size > max_size):
                continue
            try:
                content = _read_zipinfo(zf, info, data, ctx)
            except ScanLimitExceeded:
                raise
            except Exception as exc:  # zip_children noted it too; the others are still read
                ctx.error(f"zip:{info.filename}", exc)
                continue
            if content is not None:
                out[info.filename] = content
    return out


def is_split_zip(data: bytes) -> bool:
    """A segment of a split (spanned) zip: the first starts with the spanning marker
    `PK\x07\x08` (`PK00` when it is the only one); the last has an end record naming a disk
    other than 0."""
    if data.startswith(b"PK\x07\x08PK\x03\x04") or data.startswith(b"PK00PK\x03\x04"):
        return True
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if pos < 0 or pos + 22 > len(data):
        return False
    disk, cd_disk = struct.unpack_from("<HH", data, pos + 4)
    return bool(disk or cd_disk)


def _read_other_method(data: bytes, info: zipfile.ZipInfo, ctx: ScanContext) -> bytes | None:
    """A central-directory member in a method zipfile does not read (Implode, Deflate64,
    Zstandard, PPMd): decoded from its local header with the directory's sizes and CRC."""
    local = _read_local(data, info.header_offset, ctx, info.compress_size,
                        (info.file_size, info.CRC))
    if local is None:
        ctx.broken("Zip")
        return None
    if not local.complete or local.content is None or zlib.crc32(local.content) != info.CRC:
        ctx.broken("Zip")
    return local.content


def _local_disagrees(hdr: tuple[int, int, int, int, int], info: zipfile.ZipInfo) -> bool:
    """Whether the local header names another method or size than the central directory."""
    flags, method, csize, _start, _nlen = hdr
    if method != info.compress_type:
        return True
    return not flags & 0x8 and csize not in (0xFFFFFFFF, info.compress_size)


def _read_zipinfo(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes, ctx: ScanContext
) -> bytes | None:
    """Read one central-directory member with bounded output; fall back to its local header."""
    bound = ctx.output_bound()
    chunks: list[bytes] = []
    total = 0
    try:
        with zf.open(info) as f:
            while True:
                ctx.check_time()
                piece = f.read(min(_CHUNK, bound + 1 - total))
                if not piece:
                    break
                chunks.append(piece)
                total += len(piece)
                if total > bound:
                    ctx.check_output(total)
                ctx.check_ratio(info.compress_size, total)
    except ScanLimitExceeded:
        raise
    except _ZIP_ERRORS:
        # Truncated data, a corrupt stream or a CRC mismatch: what a client gets is undefined.
        ctx.broken("Zip")
        if not chunks:
            local = _read_local(data, info.header_offset, ctx, info.compress_size)
            return local.content if local is not None else None
    return b"".join(chunks)


def _is_dir(info: zipfile.ZipInfo) -> bool:
    """A folder entry that holds nothing. Not `ZipInfo.is_dir()`, which raises IndexError on a
    member with an empty name (round 27: one in front of clam.exe made the scan an error). A
    "folder" with data is read as a file, as clamscan reads it (round 28: clam.exe in a member
    named `dir/`)."""
    return info.filename.endswith("/") and not info.compress_size


def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
    """Raise OverlappingFiles when one entry's data covers another entry's local header."""
    spans = sorted((i.header_offset, i.compress_size) for i in infos if not _is_dir(i))
    for (off, csize), (nxt, _) in itertools.pairwise(spans):
        # An entry's data starts at least 30 bytes after its header, so this never misfires.
        if nxt == off or nxt < off + csize:
            raise ScanLimitExceeded(OVERLAPPING_FILES, f"entry at {nxt} inside entry at {off}")


# --- TNEF (winmail.dat) -------------------------------------------------------------------------

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
_ATT_ATTACH_REND_DATA = 0x9002
_ATT_ATTACH_TITLE = 0x8010
_ATT_ATTACH_DATA = 0x800F
_MAX_TNEF_ATTRIBUTES = 100_000


def tnef_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Attachments inside an Outlook TNEF blob (winmail.dat): files hide there from scanners
    that only walk MIME. A damaged attribute ends the walk; what came before is yielded."""
    if data[:4] != TNEF_SIGNATURE:
        return
    dedup = Dedup()
    pos = 6
    title: str | None = None
    n = len(data)
    for i in range(_MAX_TNEF_ATTRIBUTES):
        if not i % 4096:
            ctx.check_time()
        if pos + 9 > n:
            return
        _level, attr_id, length = struct.unpack_from("<BII", data, pos)
        body_at = pos + 9
        if length > n - body_at:
            length = n - body_at  # truncated: scan what is there
        body = data[body_at : body_at + length]
        kind = attr_id & 0xFFFF
        if kind == _ATT_ATTACH_REND_DATA:
            title = None
        elif kind == _ATT_ATTACH_TITLE:
            title = body.split(b"\x00", 1)[0].decode("latin-1") or None
        elif kind == _ATT_ATTACH_DATA and body:
            ctx.check_time()
            if not ctx.skip_oversized(len(body)) and dedup.fresh(body, title):
                ctx.charge_child(len(body))
                yield Child(data=body, name=title, origin="tnef", is_attachment=True)
        pos = body_at + length + 2


# --- RAR and 7z encryption, told from their headers: `scan.containers` opens both through
# libarchive, which only says it cannot read an archive whose headers are encrypted -----------

_RAR4 = b"Rar!\x1a\x07\x00"
_RAR5 = b"Rar!\x1a\x07\x01\x00"
_7Z = b"7z\xbc\xaf\x27\x1c"
_7Z_AES = b"\x06\xf1\x07\x01"
_MAX_BLOCKS = 100_000


def _vint(data: bytes, pos: int) -> tuple[int, int]:
    """A RAR5 variable-length integer at `pos`: (value, position after it)."""
    value = shift = 0
    while pos < len(data) and shift < 70:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
    raise ValueError("truncated vint")


def rar_is_encrypted(data: bytes) -> bool:
    """Whether a RAR 4 or 5 archive has encrypted headers or any encrypted file."""
    try:
        if data.startswith(_RAR5):
            return _rar5_encrypted(data)
        if data.startswith(_RAR4):
            return _rar4_encrypted(data)
    except (ValueError, struct.error, IndexError):
        return False
    return False


def _rar4_encrypted(data: bytes) -> bool:
    pos = len(_RAR4)
    for _ in range(_MAX_BLOCKS):
        if pos + 7 > len(data):
            return False
        _crc, htype, flags, hsize = struct.unpack_from("<HBHH", data, pos)
        if hsize < 7:
            return False
        if htype == 0x73 and flags & 0x0080:  # main header: block headers encrypted
            return True
        add = 0
        if htype == 0x74:  # file header
            if flags & 0x0004:
                return True
            (add,) = struct.unpack_from("<I", data, pos + 7)
        elif flags & 0x8000:
            (add,) = struct.unpack_from("<I", data, pos + 7)
        pos += hsize + add
    return False


def _rar5_encrypted(data: bytes) -> bool:
    pos = len(_RAR5)
    for _ in range(_MAX_BLOCKS):
        if pos + 5 > len(data):
            return False
        hsize, p = _vint(data, pos + 4)
        hstart = p
        hend = hstart + hsize
        htype, p = _vint(data, p)
        hflags, p = _vint(data, p)
        extra = dsize = 0
        if hflags & 0x1:
            extra, p = _vint(data, p)
        if hflags & 0x2:
            dsize, p = _vint(data, p)
        if htype == 4:  # archive encryption header: everything after it is encrypted
            return True
        if htype in (2, 3) and extra:  # file or service header: look for an encryption record
            rec = hend - extra
            while 0 <= rec < hend:
                rsize, q = _vint(data, rec)
                rtype, _ = _vint(data, q)
                if rtype == 1:
                    return True
                if rsize == 0:
                    break
                rec = q + rsize
        if htype == 5:  # end of archive
            return False
        pos = hend + dsize
    return False


_7Z_MAX_HEADER = 16 << 20


def sevenzip_is_encrypted(data: bytes) -> bool:
    """Whether a 7z archive uses the AES coder in its plain or encoded header.

    7-Zip compresses the header by default (`kEncodedHeader`, LZMA): with `-p` but without
    `-mhe`, the AES coder of the file data is named only inside that compressed header, so it
    is decompressed (bounded) and searched too.
    """
    if not data.startswith(_7Z) or len(data) < 32:
        return False
    offset, size = struct.unpack_from("<QQ", data, 12)
    start = 32 + offset
    if start >= len(data) or size == 0:
        return False
    header = data[start : start + min(size, 1 << 20)]
    if _7Z_AES in header:
        return True
    if header[:1] == b"\x17":  # kEncodedHeader
        try:
            decoded = _7z_encoded_header(data, header)
        except (ValueError, IndexError, struct.error, lzma.LZMAError, EOFError):
            return False
        return decoded is not None and _7Z_AES in decoded
    return False


def _7z_number(buf: bytes, pos: int) -> tuple[int, int]:
    """A 7z NUMBER at `pos`: (value, position after it)."""
    first = buf[pos]
    pos += 1
    mask = 0x80
    value = 0
    for i in range(8):
        if not first & mask:
            high = first & (mask - 1)
            return value | (high << (8 * i)), pos
        value |= buf[pos] << (8 * i)
        pos += 1
        mask >>= 1
    return value, pos


def _7z_encoded_header(data: bytes, header: bytes) -> bytes | None:
    """Decompress a kEncodedHeader whose one folder is a single LZMA or LZMA2 coder."""
    pos = 1
    if header[pos] != 0x06:  # kPackInfo
        return None
    pack_pos, pos = _7z_number(header, pos + 1)
    npack, pos = _7z_number(header, pos)
    if header[pos] != 0x09 or npack != 1:  # kSize
        return None
    pack_size, pos = _7z_number(header, pos + 1)
    while header[pos] != 0x00:  # skip kCRC of the packed stream
        if header[pos] != 0x0A:
            return None
        pos += 1 + 1 + 4
    pos += 1
    if header[pos : pos + 2] != b"\x07\x0b":  # kUnPackInfo, kFolder
        return None
    nfolders, pos = _7z_number(header, pos + 2)
    if nfolders != 1 or header[pos] != 0:  # one folder, not external
        return None
    ncoders, pos = _7z_number(header, pos + 1)
    if ncoders != 1:
        return None
    flags = header[pos]
    pos += 1
    coder_id = header[pos : pos + (flags & 0x0F)]
    pos += flags & 0x0F
    if flags & 0x10:  # complex coder (several streams): not a plain LZMA header
        return None
    props = b""
    if flags & 0x20:
        psize, pos = _7z_number(header, pos)
        props = header[pos : pos + psize]
        pos += psize
    if header[pos] != 0x0C:  # kCodersUnPackSize
        return None
    unpack_size, pos = _7z_number(header, pos + 1)
    unpack_size = min(unpack_size, _7Z_MAX_HEADER)
    packed = data[32 + pack_pos : 32 + pack_pos + pack_size]
    if coder_id == b"\x03\x01\x01":
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    elif coder_id == b"\x21":
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA2, props)  # type: ignore[attr-defined]
    else:
        return None
    dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
    return dec.decompress(packed, unpack_size)


def unopened_children(data: bytes, ft: FileType, ctx: ScanContext) -> Iterator[Child]:
    """A detected type no decomposer opens (the fail-closed fallback of `decompose`): no
    children, `Heuristics.Unsupported.<TYPE>`; for RAR and 7z (opened by `scan.containers`
    now) `EncryptedContent` when their headers say they are encrypted."""
    if ft is FileType.RAR:
        if rar_is_encrypted(data):
            raise EncryptedContent("RAR")
        ctx.unsupported("RAR")
    elif ft is FileType.SEVENZIP:
        if sevenzip_is_encrypted(data):
            raise EncryptedContent("7Zip")
        ctx.unsupported("7z")
    else:
        ctx.unsupported(ft.value.upper())
    return
    yield  # pragma: no cover - makes this a generator
