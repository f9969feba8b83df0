"""Archives other than zip and tar: RAR 4 and 5, 7z, CAB, LZH/LHA, cpio, xar, ar, ISO 9660
disk images (with or without Joliet, UDF bridge images, `.img` files holding them), ARJ, ALZ
and Symbian SIS.

Why libarchive: it is the maintained C reader behind bsdtar for all of these except ARJ and
ALZ (7z with LZMA/LZMA2/PPMd/BCJ/BCJ2/Delta, RAR 2.9-5 with filters and PPMd, CAB MSZIP/LZX,
LHA lh5-lh7, every cpio flavour, xar, ar, ISO with Joliet/Rock Ridge/zisofs), and pure-Python
readers either shell out to tools (rarfile) or decompress whole members in memory (py7zr).
ARJ (`scan.arj`), ALZ (`scan.alz`) and Symbian SIS (`scan.sis`) have no maintained library:
small bounded readers of ours.

How libarchive is kept bounded (`scan.libarchive_read`): its calls cannot be interrupted, so
input comes from memory, content is read in 64 KiB blocks with the clock, the output bound
and the compression ratio checked between blocks, and entries are never skipped by libarchive
(skipping a member of a solid block decodes it in one call): every entry is read or drained.
Entries are counted against `max_files`, readable or not.

Fail closed, per archive: an entry libarchive calls encrypted (or an archive whose headers are
encrypted, told by `archive.rar_is_encrypted` / `sevenzip_is_encrypted` where libarchive only
says it cannot read it) raises `EncryptedContent` after every readable entry; a method it does
not decode is `Heuristics.Unsupported.<Fmt>.<Method>`; damage is `Heuristics.Broken.<Fmt>`,
after what decoded before it. Every directory entry is recorded with `ctx.note_member`.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import archive
from zerohour.scan import libarchive_read as la
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import MAX_FILES, ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta


@dataclass(frozen=True, slots=True)
class _Spec:
    formats: tuple[str, ...]  # libarchive format readers
    label: str  # Heuristics.Broken.<label> / Heuristics.Unsupported.<label>
    encrypted: str  # Heuristics.Encrypted.<encrypted> (ClamAV's names)


_SPECS: dict[FileType, _Spec] = {
    FileType.RAR: _Spec(("rar", "rar5"), "RAR", "RAR"),
    FileType.SEVENZIP: _Spec(("7zip",), "7z", "7Zip"),
    FileType.CAB: _Spec(("cab",), "CAB", "CAB"),
    FileType.LZH: _Spec(("lha",), "LZH", "LZH"),
    FileType.CPIO: _Spec(("cpio",), "CPIO", "CPIO"),
    FileType.XAR: _Spec(("xar",), "XAR", "XAR"),
    FileType.AR: _Spec(("ar",), "AR", "AR"),
    FileType.ISO: _Spec(("iso9660",), "ISO", "ISO"),
}
#: The types `children` opens.
OPENED = frozenset({*_SPECS, FileType.ARJ, FileType.ALZ, FileType.SIS})

_MAX_FAILURES = 16  # entry-level errors tolerated before the rest of an archive is given up
_UNSUPPORTED = re.compile(r"unsupported|not supported|unknown codec|unexpected codec|"
                          r"unknown compression|unsupported compression", re.I)
_ENCRYPTED = re.compile(r"encrypt|passphrase|password", re.I)
_CODEC = re.compile(r"codec id:?\s*([0-9a-f]+)", re.I)
#: 7-Zip codec ids libarchive 3.6 does not decode, by name.
_7Z_CODECS = {"40109": "Deflate64", "A": "ARM64", "B": "RISCV", "4F71101": "Zstd",
              "4F71104": "LZ4", "4F71102": "Brotli", "30401": "PPMD", "6F10701": "AES"}
_METHOD_WORD = re.compile(r"(?:method|compression)[:\s-]+([A-Za-z][A-Za-z0-9]{1,15})", re.I)


def children(data: bytes, ft: FileType, ctx: ScanContext) -> Iterator[Child]:
    """The members of one archive layer of type `ft` (one of `OPENED`)."""
    if ft is FileType.ARJ:
        from zerohour.scan import arj

        yield from arj.children(data, ctx)
    elif ft is FileType.ALZ:
        from zerohour.scan import alz

        yield from alz.children(data, ctx)
    elif ft is FileType.SIS:
        from zerohour.scan import sis

        yield from sis.children(data, ctx)
    elif ft is FileType.ISO:
        yield from _disk_image(data, ctx)
    else:
        yield from libarchive_children(data, ft, ctx)


def count_entry(ctx: ScanContext, index: int) -> None:
    """Every directory entry costs a little (empty ones too): past `max_files` it is a limit."""
    if index >= ctx.limits.max_files:
        raise ScanLimitExceeded(MAX_FILES, f"more than {ctx.limits.max_files} entries")


def _disk_image(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Both trees of a disk image: ISO 9660 (libarchive) and UDF (`scan.udf`; Windows mounts
    that one when present, and it can list other files). A file in both is scanned once."""
    from zerohour.scan import udf

    dedup = Dedup()
    has_udf = udf.has_udf(data)
    if not has_udf or _has_iso9660(data):
        yield from libarchive_children(data, FileType.ISO, ctx, dedup=dedup)
        if _has_joliet(data):
            # libarchive reads one tree (Rock Ridge, else Joliet); a file can be hidden from
            # any one of them (`xorriso -hide`), and Windows shows the Joliet tree: read the
            # Joliet and the plain ISO 9660 trees too (clamscan reads Joliet as well).
            for options in ("iso9660:!rockridge", "iso9660:!joliet,!rockridge"):
                yield from libarchive_children(data, FileType.ISO, ctx, dedup=dedup,
                                               options=options)
    if has_udf:
        yield from udf.children(data, ctx, dedup)
    # Outside every tree: El Torito boot images and the partitions of a hybrid image
    # (`xorriso -append_partition`), which 7-Zip and a mounted USB stick show.
    from zerohour.scan.filetype import partitions

    extents = [(f"boot{i}", off, size) for i, (off, size) in enumerate(_boot_images(data), 1)]
    extents += [(f"partition{i}", off, size) for i, (off, size) in
                enumerate(partitions(data), 1)]
    for origin, off, size in extents:
        content = data[off : off + size]
        if content and dedup.fresh(content):
            ctx.charge_child(len(content))
            yield Child(data=content, name=None, origin=origin)


_BOOT_TAIL = 64 << 20  # a boot image's size is not recorded: read at most this far past it


def _boot_images(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each El Torito boot image. Their sizes are not reliable (a
    no-emulation entry counts only what the BIOS loads), so each runs to the end of the image
    (at most `_BOOT_TAIL`): what is hidden there is scanned, trailing bytes are harmless."""
    n = len(data)
    o = 0x8800  # volume descriptor 17: the boot record
    if data[o + 1 : o + 6] != b"CD001" or data[o] != 0 or \
            not data[o + 7 : o + 30].startswith(b"EL TORITO SPECIFICATION"):
        return []
    (catalog,) = struct.unpack_from("<I", data, o + 71)
    at = catalog * 2048
    if at + 64 > n or data[at] != 1 or data[at + 30 : at + 32] != b"\x55\xaa":
        return []
    out: list[tuple[int, int]] = []
    end = min(n, at + 2048)
    at += 32
    while at + 32 <= end and len(out) < 64:
        kind = data[at]
        if kind in (0x88, 0x00) and data[at + 1 : at + 32] != bytes(31):
            (rba,) = struct.unpack_from("<I", data, at + 8)
            off = rba * 2048
            if 0 < off < n:
                out.append((off, min(n - off, _BOOT_TAIL)))
        elif kind not in (0x90, 0x91, 0x44):
            break  # not an entry or a section header: the end of the catalog
        at += 32
    return out


def _has_joliet(data: bytes) -> bool:
    """A Joliet supplementary volume descriptor (type 2, UCS-2 escape sequence)."""
    for o in range(0x8000, min(len(data) - 0x800, 0x8000 + 32 * 0x800) + 1, 0x800):
        if data[o + 1 : o + 6] != b"CD001" or data[o] == 255:
            break
        if data[o] == 2 and data[o + 88 : o + 90] == b"%/" and data[o + 90] in b"@CE":
            return True
    return False


def _has_iso9660(data: bytes) -> bool:
    return any(data[o : o + 5] == b"CD001" for o in range(0x8001, min(len(data), 0xC001), 0x800))


def libarchive_children(
    data: bytes, ft: FileType, ctx: ScanContext, offset: int = 0, dedup: Dedup | None = None,
    options: str = "",
) -> Iterator[Child]:
    """Members of the archive at `data[offset:]` (offset > 0: one found by
    `scan.embedded`, where an archive that does not even open is ignored silently)."""
    spec = _SPECS[ft]
    dedup = dedup or Dedup()
    encrypted = False
    failures = 0
    index = 0
    damaged = False
    if ft is FileType.SEVENZIP and sevenzip_header_lost(data, offset):
        recovered = sevenzip_recovered(data, offset)
        if recovered is None and offset:
            return  # a stray signature with zeros behind it: 7-Zip opens nothing there either
        damaged = True  # libarchive would read an empty archive: fail closed
        if recovered is None:
            ctx.broken(spec.label)
            return
        data, offset = recovered, 0  # read what 7-Zip recovers, then report the damage
    try:
        with la.open_memory(data, spec.formats, offset, options) as reader:
            while True:
                ctx.check_time()
                code, entry = reader.next()
                if code == la.EOF:
                    break
                if entry is None:
                    message = reader.error()
                    failures += 1
                    if code == la.RETRY and failures < _MAX_FAILURES:
                        continue
                    own = data[offset:] if offset else data
                    if index or (offset == 0 and plausible(ft, data)):
                        encrypted = _header_failure(own, ft, spec, message, ctx) or encrypted
                    else:
                        encrypted = headers_encrypted(own, ft) or encrypted
                    break
                count_entry(ctx, index)
                ctx.note_member(MemberMeta(ft, entry.name, entry.size, None, None,
                                           entry.encrypted, index))
                index += 1
                if entry.encrypted:
                    encrypted = True
                    continue
                if entry.is_dir and not entry.size:
                    continue
                if entry.size is not None and ctx.skip_oversized(entry.size):
                    _drain(reader, ctx)
                    continue
                content, code, message = read_bounded(reader, ctx, len(data) - offset)
                if content and dedup.fresh(content, entry.name):
                    ctx.charge_child(len(content))
                    yield Child(data=content, name=entry.name, origin=ft.value)
                if code < 0:
                    encrypted = _data_failure(spec, message, ctx) or encrypted
                    failures += 1
                    if code == la.FATAL or failures >= _MAX_FAILURES:
                        break
    except la.LibarchiveError as exc:  # no reader bid: not this format after all, or damaged
        if offset == 0 and plausible(ft, data):
            encrypted = _header_failure(data, ft, spec, exc.message, ctx) or encrypted
        else:
            encrypted = headers_encrypted(data[offset:], ft) or encrypted
    if damaged:
        ctx.broken(spec.label)
    if encrypted:
        raise EncryptedContent(spec.encrypted)


def read_bounded(reader: la.Reader, ctx: ScanContext, compressed: int) -> tuple[bytes, int, str]:
    """Read the current entry block by block, checking the clock, the output bound and the
    ratio between blocks: (content, la.OK or libarchive's error code, its message)."""
    bound = ctx.output_bound()
    chunks: list[bytes] = []
    total = 0
    while True:
        ctx.check_time()
        code, piece = reader.read_block(bound + 1 - total)
        if code == la.EOF:
            return b"".join(chunks), la.OK, ""
        if code != la.OK:
            return b"".join(chunks), code, reader.error()
        chunks.append(piece)
        total += len(piece)
        if total > bound:
            ctx.check_output(total)
        ctx.check_ratio(compressed, total)


def _drain(reader: la.Reader, ctx: ScanContext) -> None:
    """Read past an entry we do not scan (over `max_file_size`, alerts off), block by block:
    letting libarchive skip it would decode it in one uninterruptible call."""
    while True:
        ctx.check_time()
        code, _piece = reader.read_block(0)
        if code != la.OK:
            return


def _data_failure(spec: _Spec, message: str, ctx: ScanContext) -> bool:
    """Classify an entry libarchive could not read; True when it is encryption."""
    if _ENCRYPTED.search(message):
        return True
    if _UNSUPPORTED.search(message):
        ctx.unsupported(spec.label, method_detail(message))
    else:
        ctx.broken(spec.label)
    return False


def _header_failure(data: bytes, ft: FileType, spec: _Spec, message: str,
                    ctx: ScanContext) -> bool:
    """Classify an archive (or a header) libarchive could not read; True when the headers
    are encrypted (libarchive only says it cannot read them)."""
    if (ft is FileType.RAR and archive.rar_is_encrypted(data)) or (
            ft is FileType.SEVENZIP and archive.sevenzip_is_encrypted(data)) or (
            _ENCRYPTED.search(message)):
        return True
    if _UNSUPPORTED.search(message):
        ctx.unsupported(spec.label, method_detail(message))
    else:
        ctx.broken(spec.label)
    return False


_HEX = frozenset(b"0123456789abcdefABCDEF")
_OCTAL = frozenset(b"01234567")


def plausible(ft: FileType, data: bytes) -> bool:
    """Whether `data` starts with a real header of `ft`, for the types sniffed from 2-6 bytes
    (text can start with "070701", random data with `C7 71`, any line with "-lh5-" at its
    third byte). When no reader recognises the layer at all, an implausible header means it is
    not that archive (it is still matched as it is); a plausible one is `Broken`."""
    if ft is FileType.CPIO:
        if data[:6] in (b"070701", b"070702"):
            return len(data) >= 110 and set(data[6:110]) <= _HEX
        if data[:6] == b"070707":
            return len(data) >= 76 and set(data[6:76]) <= _OCTAL
        raw = data[20:22]
        name_size = int.from_bytes(raw, "little" if data[:2] == b"\xc7\x71" else "big")
        return 0 < name_size <= 4096 and len(data) >= 26 + name_size and (
            data[26 + name_size - 1] == 0)
    if ft is FileType.LZH:
        level = data[20] if len(data) > 21 else -1
        if level in (0, 1):
            size = data[0]
            return size >= 22 and len(data) >= 2 + size and sum(data[2 : 2 + size]) & 0xFF == (
                data[1])
        if level == 2:
            return 26 <= int.from_bytes(data[:2], "little") <= len(data)
        return False
    return True


def headers_encrypted(data: bytes, ft: FileType) -> bool:
    """Whether `data` starts with a RAR or 7z whose first header is intact (its CRC holds) and
    says the archive is encrypted: the only reading of an embedded archive that libarchive
    cannot open that is more than a stray magic number (WinRAR and 7-Zip binaries hold
    their own signatures as constants)."""
    if ft is FileType.SEVENZIP:
        return (len(data) >= 32 and zlib.crc32(data[12:32]) == int.from_bytes(data[8:12], "little")
                and archive.sevenzip_is_encrypted(data))
    if ft is FileType.RAR:
        return _rar_first_header_intact(data) and archive.rar_is_encrypted(data)
    return False


def sevenzip_header_lost(data: bytes, offset: int = 0) -> bool:
    """Whether the 7z at `data[offset:]` says its next header is empty (size 0: libarchive
    then reads an empty archive without looking further) while bytes other than zeros follow
    its 32-byte start header. An unfinished 7-Zip write leaves the start header all zeros
    and 7-Zip recovers it (`sevenzip_recovered`); any other start header of size 0 with
    content behind it is damage. A real empty archive (`7zz a` of nothing) is 32 bytes."""
    head = data[offset : offset + 32]
    if len(head) < 32 or head[20:28] != bytes(8):
        return False
    rest = len(data) - offset - 32
    return rest > 0 and data.count(0, offset + 32) != rest


_7Z_RECOVERY_TAIL = 512  # 7-Zip's FORMAT_7Z_RECOVERY looks this far back from the end


def sevenzip_recovered(data: bytes, offset: int = 0) -> bytes | None:
    """A copy of the 7z at `data[offset:]` with its all-zero start header rebuilt to point
    at `sevenzip_recovery_at`'s next header; None when there is none."""
    at = sevenzip_recovery_at(data, offset)
    if at is None:
        return None
    header = data[at:]
    fixed = bytearray(data[offset:])
    struct.pack_into("<QQI", fixed, 12, at - offset - 32, len(header), zlib.crc32(header))
    struct.pack_into("<I", fixed, 8, zlib.crc32(fixed[12:32]))
    return bytes(fixed)


def sevenzip_recovery_at(data: bytes, offset: int = 0) -> int | None:
    """Where 7-Zip's recovery of an all-zero start header (`7zIn.cpp`, FORMAT_7Z_RECOVERY)
    finds the next header of the 7z at `data[offset:]`: in the last 512 bytes of the file,
    which must end in kEnd (0), the last kEncodedHeader + kPackInfo (17 06) or kHeader +
    kMainStreamsInfo (01 04); the header runs to the end of the file. None when the start
    header is not all zeros or no such header is there."""
    if data[offset + 8 : offset + 32] != bytes(24):
        return None
    size = min(len(data) - offset - 32, _7Z_RECOVERY_TAIL)
    if size < 3 or data[-1] != 0:
        return None
    base = len(data) - size
    tail = data[base:]
    for i in range(size - 2, -1, -1):
        if tail[i : i + 2] in (b"\x17\x06", b"\x01\x04"):
            return base + i
    return None


def _rar_first_header_intact(data: bytes) -> bool:
    if data.startswith(b"Rar!\x1a\x07\x00") and len(data) >= 14:
        size = int.from_bytes(data[12:14], "little")
        head = data[9 : 7 + size]
        return size >= 7 and len(head) == size - 2 and (
            zlib.crc32(head) & 0xFFFF) == int.from_bytes(data[7:9], "little")
    if data.startswith(b"Rar!\x1a\x07\x01\x00") and len(data) >= 13:
        pos, shift, size = 12, 0, 0
        while pos < len(data) and shift < 28:
            size |= (data[pos] & 0x7F) << shift
            shift += 7
            pos += 1
            if not data[pos - 1] & 0x80:
                break
        head = data[12 : pos + size]
        return len(head) == pos + size - 12 and zlib.crc32(head) == int.from_bytes(
            data[8:12], "little")
    return False


def method_detail(message: str) -> str:
    """A short name for an unsupported method from libarchive's message."""
    m = _CODEC.search(message)
    if m:
        codec = m.group(1).upper().lstrip("0") or "0"
        return _7Z_CODECS.get(codec, f"Codec{codec}")
    m = _METHOD_WORD.search(message)
    if m and m.group(1).lower() not in ("method", "for", "is", "of", "not", "unsupported"):
        return m.group(1)
    return "Method"
