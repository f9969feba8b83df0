"""True file type from content (never from a name), and its outbreak-scope categories.

`detect` decides how a layer is decomposed and which signature targets apply; `category` maps a
type onto `zerohour.notices.model.FILE_TYPE_CATEGORIES` for hold scopes. Both only look at a
bounded prefix (and, for office files, a bounded search), so they stay cheap on large inputs.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from zerohour.scan import flv
from zerohour.scan.types import FileType

_SNIFF = 4096
_MAIL_SNIFF = 256 * 1024
_MIME_MARKERS = (
    b"Content-Type:",
    b"Content-type:",
    b"content-type:",
    b"CONTENT-TYPE:",
    b"Content-Transfer-Encoding:",
    b"Content-transfer-encoding:",
    b"content-transfer-encoding:",
    b"CONTENT-TRANSFER-ENCODING:",
)

_MACHO_MAGICS = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SEVENZIP = b"7z\xbc\xaf\x27\x1c"
_XZ = b"\xfd7zXZ\x00"

_HTML_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*"
    rb"<(?:!doctype[\s>]|html|head|body|meta|title|iframe|frameset|script|style|a\s|div|table|p[\s>]|br|img)",
    re.I | re.S,
)
_HTML_ANYWHERE = re.compile(rb"<html[\s>]|<body[\s>]|<!doctype\s+html", re.I)

_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_MAIL_HEADERS = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"received",
        b"return-path",
        b"message-id",
        b"mime-version",
        b"content-type",
        b"content-transfer-encoding",
        b"delivered-to",
        b"reply-to",
        b"sender",
        b"x-mailer",
        b"dkim-signature",
        b"authentication-results",
        b"x-original-to",
        b"in-reply-to",
        b"references",
    }
)

_SCRIPT_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:#!|<\?php|@echo\s+off|<job[\s>]|<package[\s>]|<\?xml[^>]*>\s*<job|"
    rb"option\s+explicit|on\s+error\s+resume\s+next)",
    re.I,
)
# Markers of script content anywhere in the head, matched on a lowercased copy as plain
# substrings (a case-insensitive regex alternation cost ~1 ms per 4 KB here).
_SCRIPT_STRONG = (
    b"wscript.shell",
    b'createobject("wscript',
    b'createobject("shell',
    b"new activexobject",
    b"shell.application",
    b"powershell -e",
    b"powershell.exe -",
    b"powershell -nop",
    b"powershell -w",
    b"invoke-expression",
    b"iex(",
    b"frombase64string(",
    b"document.write(unescape",
    b"eval(function(p,a,c,k,e",
)
_SCRIPT_PREFILTER = (b"(", b"shell", b"activex", b"invoke-")

_VBA_OLE_MARKERS = (
    "_VBA_PROJECT".encode("utf-16-le"),
    "VBA".encode("utf-16-le") + b"\x00\x00",
    "Macros".encode("utf-16-le"),
    "_VBA_PROJECT_CUR".encode("utf-16-le"),
)
_OFFICE_SEARCH = 8 * 1024 * 1024
_VBA_OOXML_MARKERS = (b"vbaProject.bin", b"vbaproject.bin", b"VBAPROJECT.BIN", b"VbaProject.bin")


def _is_pe(data: bytes) -> bool:
    if len(data) < 0x40 or data[:2] != b"MZ":
        return False
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    return 0 < lfanew <= len(data) - 24 and data[lfanew : lfanew + 4] == b"PE\x00\x00"


_ONENOTE = bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3")
_CPIO_MAGICS = (b"070707", b"070701", b"070702")
_LZH_METHODS = re.compile(rb"-(?:lh[0-7d]|lz[s45]|pm[0-2])-")


def _is_iso(data: bytes) -> bool:
    """ISO 9660 / UDF: a volume descriptor ("CD001", or UDF's "BEA01"/"NSR0x") at 32 KiB."""
    for off in (0x8001, 0x8801, 0x9001):
        tag = data[off : off + 5]
        if tag in (b"CD001", b"BEA01", b"NSR02", b"NSR03"):
            return True
    return False


def _is_arj(head: bytes) -> bool:
    # Main header: 0x60 0xEA, then a basic header size of at most 2600 bytes.
    return (
        head[:2] == b"\x60\xea"
        and len(head) >= 11
        and 0 < int.from_bytes(head[2:4], "little") <= 2600
    )


def _is_lzma_alone(head: bytes) -> bool:
    """A strongly valid "LZMA alone" (.lzma) header, since the format has no magic number.

    Accepted only as the tools write it (xz/liblzma, 7-Zip's LZMA SDK): properties 0x5D (lc=3
    lp=0 pb=2), a dictionary of 2^n or 2^n + 2^(n-1) bytes (at least 4 KiB, liblzma's rounding),
    an uncompressed size unknown (all ones) or below 256 GiB (xz's own plausibility bound), and
    the range coder's first byte, which is always 0. Random data starting with 0x5D passes with
    a probability of about 2^-60 (tested), so a detected stream that fails to decode is damaged
    (`Heuristics.Broken.LZMA`), not a look-alike.
    """
    if len(head) < 14 or head[0] != 0x5D or head[13] != 0:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    if dict_size < 4096:
        return False
    top = 1 << (dict_size.bit_length() - 1)
    if dict_size not in (top, top | top >> 1):
        return False
    size = int.from_bytes(head[5:13], "little")
    return size == (1 << 64) - 1 or size < (1 << 38)


def _is_lzma86(head: bytes) -> bool:
    """An .lzma86 header (7-Zip's LZMA SDK): filter byte 0 or 1 (x86 branch converter), then
    a strongly valid LZMA alone header (lzma86 writes the size, but 7-Zip also extracts one
    whose size is unknown, as Python's `lzma.FORMAT_ALONE` writes it)."""
    return head[:1] in (b"\x00", b"\x01") and _is_lzma_alone(head[1:])


_SIS_UID2 = (b"\x6d\x00\x00\x10", b"\x12\x3a\x00\x10")


def _sniff_container(head: bytes, data: bytes) -> FileType | None:
    """Containers and streams with a magic number (checked before the text tests)."""
    if head[:8] == b"MSCF\x00\x00\x00\x00":
        return FileType.CAB
    if head[:4] == b"ALZ\x01":
        return FileType.ALZ
    if (head[4:8] in _SIS_UID2 and head[8:12] == b"\x19\x04\x00\x10") or (
            head[:4] == b"\x7a\x1a\x20\x10"):
        return FileType.SIS  # EPOC SIS by its 2nd and 3rd UIDs, Symbian 9 SISX by its 1st
    if head[:4] == b"xar!":
        return FileType.XAR
    if head[:8] == b"!<arch>\n":
        return FileType.AR
    if flv.is_flv(head):
        return FileType.FLV
    if head[:6] == b"WARC/1" or head[:7] == b"WARC/0.":
        return FileType.WARC  # (text: its records hold crawled files whole; bsdtar reads it)
    if head[:6] in _CPIO_MAGICS or head[:2] in (b"\xc7\x71", b"\x71\xc7"):
        return FileType.CPIO
    if head[:4] == b"ITSF":
        return FileType.CHM
    if head[:16] == _ONENOTE:
        return FileType.ONENOTE
    if head[:8] in (b"SZDD\x88\xf0\x27\x33", b"KWAJ\x88\xf0\x27\xd1"):
        return FileType.SZDD
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return FileType.ZSTD
    if head[:4] in (b"\x04\x22\x4d\x18", b"\x02\x21\x4c\x18"):
        return FileType.LZ4
    if is_skippable_frame(data, 0):
        return _after_skippable(data)
    if _is_arj(head):
        return FileType.ARJ
    if len(head) >= 7 and _LZH_METHODS.match(head, 2):
        return FileType.LZH
    if head[:4] == b"{\\rt":
        return FileType.RTF
    if _is_iso(data):
        return FileType.ISO
    if _is_lzma_alone(head) or _is_lzma86(head):
        return FileType.LZMA
    return _unopened(data, head)


#: Magic numbers at offset 0 of the containers `decompose` does not open (`UNOPENED`).
_UNOPENED_MAGICS: tuple[tuple[bytes, FileType], ...] = (
    (b"MSWIM\x00\x00\x00", FileType.WIM),
    (b"conectix", FileType.VHD),  # a dynamic VHD's footer copy
    (b"vhdxfile", FileType.VHD),
    (b"QFI\xfb", FileType.VMDISK),  # QEMU qcow/qcow2
    (b"KDMV", FileType.VMDISK),  # VMware sparse extent
    (b"<<< Oracle VM VirtualBox Disk Image >>>", FileType.VMDISK),
    (b"\x3a\xff\x26\xed\x01\x00", FileType.VMDISK),  # Android sparse image (7zz -tSparse)
    (b"\xed\xab\xee\xdb", FileType.RPM),
    (b"LZIP\x01", FileType.LZIP),
    (b"\x89LZO\x00\r\n\x1a\n", FileType.LZOP),
    (b"BZ3v1", FileType.BZIP3),
    (b"LRZI", FileType.LRZIP),
    (b"7kSt", FileType.ZPAQ),  # a journaling archive's first block
    (b"zPQ", FileType.ZPAQ),  # a streaming one
)
UNOPENED = frozenset({ft for _, ft in _UNOPENED_MAGICS}
                     | {FileType.DMG, FileType.FSIMAGE, FileType.SQUASHFS,
                        FileType.SWF})


def _unopened(data: bytes, head: bytes) -> FileType | None:
    """Containers recognised so that they are never "clean binary data", though nothing here
    opens them yet (`Heuristics.Unsupported.<TYPE>`). Trailers (a fixed VHD's footer, a DMG's
    koly block) are read from the end; a volume by its boot sector's file-system name."""
    for magic, ft in _UNOPENED_MAGICS:
        if head.startswith(magic):
            return ft
    if head[:2] == b"\x1f\x9d" and len(head) > 2 and 9 <= head[2] & 0x1F <= 16:
        return FileType.COMPRESS  # flags: 9-16 maximum code bits (gzip -d ignores the rest)
    if head[:4] == b"hsqs" and len(head) >= 32:  # squashfs 4 (little-endian superblock)
        block, = struct.unpack_from("<I", head, 12)
        (block_log,) = struct.unpack_from("<H", head, 22)
        (major,) = struct.unpack_from("<H", head, 28)
        if 4096 <= block <= 1 << 20 and block == 1 << block_log and major == 4:
            return FileType.SQUASHFS
    if len(data) >= 1024:
        tail = data[-512:]
        if tail[:8] == b"conectix":
            return FileType.VHD
        if tail[:4] == b"koly":
            return FileType.DMG
    if _is_volume(data):
        return FileType.FSIMAGE
    if data[1024:1026] in (b"H+", b"HX") and data[1026:1028] in (b"\x00\x04", b"\x00\x05"):
        return FileType.FSIMAGE  # HFS+ / HFSX volume header (version 4 or 5)
    if head[:2] == b"ER" and data[512:514] == b"PM":
        return FileType.DMG  # an Apple partition map (driver descriptor + first map entry)
    if _is_swf(data):
        return FileType.SWF
    if head[:4] == b"\x45\x3d\xcd\x28" or head[:4] == b"\x28\xcd\x3d\x45":
        return FileType.FSIMAGE  # CramFS (either byte order)
    if partitions(data):
        return FileType.DISKIMAGE
    return None


def _is_swf(data: bytes) -> bool:
    """Flash: FWS (plain, its length field is the file's), CWS (zlib), ZWS (LZMA)."""
    if len(data) < 16 or data[:3] not in (b"FWS", b"CWS", b"ZWS") or not 1 <= data[3] <= 60:
        return False
    (length,) = struct.unpack_from("<I", data, 4)
    if data[:3] == b"FWS":
        return bool(length == len(data))
    if data[:3] == b"CWS":
        return data[8] == 0x78 and length >= 8
    return length >= 8 and data[12] < 225  # ZWS: LZMA properties byte (lc/lp/pb < 9*5*5)


def _is_volume(data: bytes) -> bool:
    """A FAT, exFAT, NTFS or ext2/3/4 volume. FAT by its BIOS parameter block, as mount and
    mtools read it (the 55AA signature and the "FAT16" label are optional to them)."""
    if len(data) < 512:
        return False
    if data[3:11] in (b"NTFS    ", b"EXFAT   "):
        return True
    if len(data) >= 2048 and data[1080:1082] == b"\x53\xef":  # ext superblock magic
        (log_block, ) = struct.unpack_from("<I", data, 1024 + 24)
        (rev,) = struct.unpack_from("<I", data, 1024 + 76)
        if log_block <= 6 and rev <= 1:
            return True
    if data[0] not in (0xEB, 0xE9):
        return False
    sector, cluster, reserved, fats = struct.unpack_from("<HBHB", data, 11)
    media = data[21]
    return (sector in (512, 1024, 2048, 4096) and cluster in (1, 2, 4, 8, 16, 32, 64, 128)
            and reserved >= 1 and fats in (1, 2) and (media == 0xF0 or media >= 0xF8))


_SECTOR = 512
_MAX_PARTITIONS = 128


def partitions(data: bytes) -> list[tuple[int, int]]:
    """The (offset, length) of each partition of a disk image, from its GPT or MBR partition
    table (empty: not a partitioned disk). Partitions starting at sector 0 (a hybrid ISO's
    self-reference) and ones outside the file are left out; one cut short by the file's end
    ends there."""
    n = len(data)
    if n < 2 * _SECTOR or data[510:512] != b"\x55\xaa":
        return []
    found: list[tuple[int, int]] = []
    if data[512:520] == b"EFI PART":
        entries_lba, count, size = struct.unpack_from("<QII", data, 512 + 72)
        if 128 <= size <= 4096 and count <= 4096:
            base = entries_lba * _SECTOR
            for i in range(min(count, _MAX_PARTITIONS)):
                at = base + i * size
                if at + 48 > n:
                    break
                if data[at : at + 16] == bytes(16):
                    continue  # an unused entry
                first, last = struct.unpack_from("<QQ", data, at + 32)
                found.append((first, last - first + 1))
    else:
        for i in range(4):
            at = 446 + 16 * i
            status, kind = data[at], data[at + 4]
            start, count = struct.unpack_from("<II", data, at + 8)
            if status not in (0, 0x80):
                return []  # not a partition table (a FAT boot sector's code lives here)
            if kind and kind != 0xEE and count:
                found.append((start, count))
    out = []
    for first, count in found:
        off = first * _SECTOR
        if first == 0 or count <= 0 or off >= n:
            continue
        out.append((off, min(count * _SECTOR, n - off)))
    return out


def _is_tar(data: bytes) -> bool:
    if len(data) < 512:
        return False
    if data[257:262] == b"ustar":
        return True
    # Old (v7) tar: no magic, so verify the header checksum.
    field = data[148:156].strip(b" \x00")
    if not field or field.translate(None, b"01234567"):  # octal digits only
        return False
    stored = int(field, 8)
    header = data[:148] + b" " * 8 + data[156:512]
    if data[0] == 0:
        return False
    unsigned = sum(header)
    # Some old tars summed signed chars; GNU tar and Python's tarfile accept either sum.
    signed = unsigned - 256 * len(header.translate(None, _HIGH_DELETE))
    return stored in (unsigned, signed)


_CONTROL_DELETE = bytes(c for c in range(256) if c >= 32 or c in (9, 10, 12, 13, 27))
_HIGH_DELETE = bytes(range(128))


def is_html(head: bytes) -> bool:
    """Whether text (a file's first bytes) is a page: it starts as one, or writes one."""
    return bool(_looks_text(head) and (_HTML_START.match(head) or (
        _HTML_ANYWHERE.search(head) and b"</" in head)))


def nul_page(data: bytes) -> bool:
    """Whether binary data is a page but for its NULs (which a browser drops from text)."""
    head = data[:_SNIFF]
    return b"\x00" in head and is_html(head.replace(b"\x00", b""))


def _looks_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head:
        # UTF-16 text with a BOM is text; other NULs mean binary.
        return head[:2] in (b"\xff\xfe", b"\xfe\xff")
    controls = len(head.translate(None, _CONTROL_DELETE))
    if controls * 100 > len(head) * 2:
        return False
    if head.isascii():  # no high bytes (word-at-a-time check, no copy)
        return True
    high = len(head.translate(None, _HIGH_DELETE))
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a multibyte char cut by our sniff window
            return True
    return high * 100 <= len(head) * 30


#: Hex bytes cut by colons ("4d:5a:90:00:..."): a dump, whose "cc:..." line is no Cc header.
_HEX_BYTES_LINE = re.compile(rb"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){3}")


def looks_like_mail(data: bytes) -> bool:
    """An RFC 5322 header block at the start (optionally after an mbox `From ` line).

    Needs one known mail header among the header lines, so that `Key: value` text files are not
    taken for mail. The whole header block counts (up to 256 KiB), so that kilobytes of
    unknown `X-` headers cannot push the known ones out of sight and turn a mail into "text".
    """
    start = 0
    if data.startswith(b"From "):
        nl = data.find(b"\n", 0, _SNIFF)
        if nl < 0:
            return False
        start = nl + 1
    if not _HEADER_LINE.match(data, start) or _HEX_BYTES_LINE.match(data, start):
        return False
    # Line by line up to the first that decides (no search for the end of the header block
    # first: most text that starts like a header line, `body{margin:0}` of a page's text,
    # is decided on its second line). The header block ends at an empty line: the answer
    # is then no, as it is at the end of the window.
    for line in _lines(data, start, min(len(data), _MAIL_SNIFF)):
        if not line:
            return False
        if line[:1] in (b" ", b"\t"):
            continue
        if _HEADER_LINE.match(line) is None:
            return False
        if line[: line.index(b":")].strip().lower() in _MAIL_HEADERS:
            return True
    return False


def _lines(data: bytes, start: int, end: int) -> Iterator[bytes]:
    """`data[start:end].splitlines()`, one line at a time, without copying what follows."""
    cr = lf = -1
    while start < end:
        if cr < start:  # (each line end is looked for once: no search runs to `end` twice)
            cr = data.find(b"\r", start, end) % (end + 1)  # (none: `end`)
        if lf < start:
            lf = data.find(b"\n", start, end) % (end + 1)
        stop = min(cr, lf)
        yield data[start:stop]
        start = stop + (2 if data[stop : stop + 2] == b"\r\n" and stop + 1 < end else 1)


def has_mime_markers(data: bytes) -> bool:
    """Whether text carries MIME structure (a header a mail client would act on)."""
    # Every marker holds "ontent-" or "ONTENT-": two C searches rule most text out.
    if b"ontent-" not in data and b"ONTENT-" not in data:
        return False
    return any(m in data for m in _MIME_MARKERS)


_MAX_SKIPPABLE = 1024


def is_skippable_frame(data: bytes, pos: int) -> bool:
    """A zstd/lz4 skippable frame (magic 0x184D2A50-5F, le32 size, that many bytes) at `pos`:
    both formats' decoders pass over it, so a stream may start with any number of them."""
    return (len(data) >= pos + 8 and data[pos + 1 : pos + 4] == b"\x2a\x4d\x18"
            and data[pos] & 0xF0 == 0x50)


def skip_skippable(data: bytes, pos: int) -> int:
    """The offset past the skippable frames at `pos` (at most `_MAX_SKIPPABLE` of them)."""
    for _ in range(_MAX_SKIPPABLE):
        if not is_skippable_frame(data, pos):
            break
        pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
    return pos


def _after_skippable(data: bytes) -> FileType:
    """A stream that opens with skippable frames is the format of the first real frame: `zstd
    -d` and `lz4 -d` decode what follows (an attacker's way past a magic-only sniffer). Only
    skippable frames (or anything else behind them): ZSTD, whose reader says what it found."""
    pos = skip_skippable(data, 0)
    if data[pos : pos + 4] == b"\x04\x22\x4d\x18":
        return FileType.LZ4
    return FileType.ZSTD


#: ClamAV 1.4's built-in magic for the image types (filetypes_int.h, functionality level 220):
#: CL_TYPE_GRAPHICS (BMP, JPEG 2000), CL_TYPE_PNG, CL_TYPE_GIF, CL_TYPE_JPEG, CL_TYPE_TIFF. They
#: are what signature target 5 (graphics) applies to and what ClamAV computes the image fuzzy
#: hash of. ClamAV types by these prefixes alone (a text file starting "BM" is graphics to it).
_GRAPHICS_MAGICS = (b"BM", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\x89PNG", b"GIF",
                    b"\xff\xd8\xff", b"II*\x00", b"MM")


def is_graphics(data: bytes) -> bool:
    """Whether ClamAV types this layer as an image (see `_GRAPHICS_MAGICS`)."""
    return data.startswith(_GRAPHICS_MAGICS)


def detect(data: bytes) -> FileType:
    """The true type of `data` from its magic bytes and structure."""
    head = data[:_SNIFF]
    if head[:2] == b"MZ" and _is_pe(data):
        return FileType.PE
    if head[:4] == b"\x7fELF":
        return FileType.ELF
    if head[:4] in _MACHO_MAGICS:
        return FileType.MACHO
    if head[:4] == b"\xca\xfe\xba\xbe" and len(head) >= 8:
        # Fat Mach-O; Java class files share the magic but have a large version number here.
        (narch,) = struct.unpack_from(">I", head, 4)
        if 0 < narch < 20:
            return FileType.MACHO
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        if data.find(b"[Content_Types].xml", 0, _OFFICE_SEARCH) >= 0:
            return FileType.OOXML
        return FileType.ZIP
    if head[:3] == b"\x1f\x8b\x08":  # (deflate: no reader decodes another method)
        return FileType.GZIP
    if (
        head[:3] == b"BZh"
        and len(head) >= 10
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    ):
        return FileType.BZIP2
    if head[:6] == _XZ:
        return FileType.XZ
    if head[:6] == _SEVENZIP:
        return FileType.SEVENZIP
    if head[:6] == b"Rar!\x1a\x07":
        return FileType.RAR
    if head[:8] == _OLE2:
        return FileType.OLE2
    container = _sniff_container(head, data)
    if container is not None:
        return container
    if b"%PDF-" in head[:1024]:
        return FileType.PDF
    if _is_tar(data):
        return FileType.TAR
    if not _looks_text(head):
        return FileType.BINARY
    if looks_like_mail(data):
        return FileType.MAIL
    if is_html(head):
        return FileType.HTML
    if _SCRIPT_START.match(head):
        return FileType.SCRIPT
    low = head.lower()
    # Every strong marker holds one of these: a few C searches rule most text out.
    if any(p in low for p in _SCRIPT_PREFILTER) and any(m in low for m in _SCRIPT_STRONG):
        return FileType.SCRIPT
    return FileType.TEXT


_ARCHIVES = frozenset(
    {
        FileType.ZIP,
        FileType.TAR,
        FileType.GZIP,
        FileType.BZIP2,
        FileType.XZ,
        FileType.SEVENZIP,
        FileType.RAR,
        FileType.CAB,
        FileType.ARJ,
        FileType.LZH,
        FileType.ALZ,
        FileType.SIS,
        FileType.CPIO,
        FileType.XAR,
        FileType.AR,
        FileType.ISO,
        FileType.SZDD,
        FileType.ZSTD,
        FileType.LZ4,
        FileType.LZMA,
        FileType.CHM,
        FileType.WIM,
        FileType.VHD,
        FileType.DMG,
        FileType.SQUASHFS,
        FileType.FSIMAGE,
        FileType.COMPRESS,
        FileType.RPM,
        FileType.LZIP,
        FileType.LZOP,
        FileType.BZIP3,
        FileType.LRZIP,
        FileType.ZPAQ,
        FileType.DISKIMAGE,
        FileType.VMDISK,
        FileType.SWF,
        FileType.WARC,  # (a crawl's fetched files, whole)
        FileType.FLV,  # (its streams: files cut into tags, round 18)
    }
)
_EXECUTABLES = frozenset({FileType.PE, FileType.ELF, FileType.MACHO})


def has_vba(ft: FileType, data: bytes) -> bool:
    """Whether an office file carries a VBA project (macros)."""
    # Bounded find() calls: no copy of a window, no lowercased copy of the file.
    if ft is FileType.OOXML:
        return any(data.find(m, 0, _OFFICE_SEARCH) >= 0 for m in _VBA_OOXML_MARKERS)
    if ft is FileType.OLE2:
        return any(data.find(m, 0, _OFFICE_SEARCH) >= 0 for m in _VBA_OLE_MARKERS)
    return False


#: Documents that carry objects or macros of their own (RTF \\objdata, OneNote's file store):
#: `office-macro` with or without a VBA project.
_OBJECT_CARRIERS = frozenset({FileType.RTF, FileType.ONENOTE})
_OFFICE = frozenset({FileType.OLE2, FileType.OOXML})


def type_category(ft: FileType) -> str | None:
    """The outbreak-scope category (`FILE_TYPE_CATEGORIES`) of a true type, from the type
    alone: what the gateway's decision reads (the summary keeps no bytes), so every OLE2/OOXML
    document counts as `office-macro` (holding a harmless document is the safe error). The one
    table: a container the engine learns to open is in its scope category at once."""
    if ft in _EXECUTABLES:
        return "executable"
    if ft in _ARCHIVES:
        return "archive"
    if ft in _OFFICE or ft in _OBJECT_CARRIERS:
        return "office-macro"
    return {FileType.SCRIPT: "script", FileType.PDF: "pdf", FileType.HTML: "html"}.get(ft)


def category(ft: FileType, data: bytes) -> frozenset[str]:
    """Outbreak-scope categories a layer of type `ft` with these bytes belongs to: as
    `type_category`, but an OLE2/OOXML document is `office-macro` only with a VBA project."""
    if ft in _OFFICE and not has_vba(ft, data):
        return frozenset()
    cat = type_category(ft)
    return frozenset({cat}) if cat else frozenset()
