"""UPX-packed Windows executables: decompress the packed image and rebuild a PE around it.

Like clamscan (libclamav's cli_scanpe), we unpack before matching: a UPX file is an empty
section (UPX0, where the stub decompresses to) followed by the section holding the compressed
image and the stub (UPX1, the entry point's). The stub starts `pusha; mov esi, src; lea edi,
[esi + dst - src]`, which gives both addresses; otherwise the compressed data starts at UPX1
and goes to UPX0. We decode it with NRV2B, 2D or 2E (`zerohour.scan.unpack.nrv`) or LZMA
(`upx --lzma`: UPX's 2-byte header, then raw LZMA), bounded by UPX0 + UPX1's virtual size, as
clamscan is.

The rebuilt PE is what signatures see, so it follows clamscan's layout: the original headers,
which UPX keeps after its compressed import table (the stub's `lea edi, [esi + imports]; mov
eax, [edi]` points at it), with every section given raw data of its virtual size, laid out
one after the other at SectionAlignment (no E8/E9 call fix-ups are undone and imports are not
rebuilt, as in clamscan), so that body signatures, embedded files and section hashes land on
the same bytes. When the headers cannot be found the image gets a minimal PE header of its own.
"""

from __future__ import annotations

import lzma
import struct
from dataclasses import dataclass

from zerohour.scan import pe
from zerohour.scan.limits import ScanContext
from zerohour.scan.unpack import nrv
from zerohour.scan.unpack.image import forged

_METHODS = ("2b", "2d", "2e")
_MAX_SECTIONS = 96
_MAX_PE_CANDIDATES = 64
_STUB_SCAN = 0x400  # how far past the entry point the import-table `lea` is looked for


@dataclass(frozen=True, slots=True)
class Packed:
    """Where a UPX image is: compressed bytes (file offsets) and its destination RVA."""

    src_start: int
    src_end: int
    dst_rva: int
    out_limit: int
    stub_offset: int  # file offset of the entry point (the stub)
    named: bool  # UPX's own section names or marker: surely UPX, not a look-alike


def find(data: bytes, info: pe.PEInfo) -> Packed | None:
    """The packed image of a UPX file, or None if `data` does not look UPX-packed."""
    secs = info.sections
    ep = info.entry_point_rva
    idx = next(
        (i for i, s in enumerate(secs)
         if s.virtual_address <= ep < s.virtual_address + max(s.virtual_size, s.raw_size)),
        None,
    )
    if idx is None or idx == 0 or info.entry_point_offset is None:
        return None
    upx0, upx1 = secs[idx - 1], secs[idx]
    if upx0.raw_size != 0 or upx0.virtual_size == 0 or upx1.raw_size == 0:
        return None
    named = (upx0.name.startswith("UPX") and upx1.name.startswith("UPX")) or (
        b"UPX!" in data[: max(0x400, secs[0].raw_offset)]
    )
    stub = info.entry_point_offset
    src_rva, dst_rva = upx1.virtual_address, upx0.virtual_address
    if data[stub : stub + 2] == b"\x60\xbe" and data[stub + 6 : stub + 8] == b"\x8d\xbe":
        (src_va,) = struct.unpack_from("<I", data, stub + 2)
        (disp,) = struct.unpack_from("<i", data, stub + 8)
        if 0 <= src_va - info.image_base < 1 << 31:
            src_rva = src_va - info.image_base
            dst_rva = max(0, src_rva + disp)
    if not upx1.virtual_address <= src_rva < upx1.virtual_address + upx1.raw_size:
        return None
    return Packed(
        src_start=upx1.raw_offset + (src_rva - upx1.virtual_address),
        src_end=min(len(data), upx1.raw_offset + upx1.raw_size),
        dst_rva=dst_rva,
        out_limit=upx0.virtual_size + upx1.virtual_size,
        stub_offset=stub,
        named=named,
    )


def decompress(data: bytes, packed: Packed, ctx: ScanContext) -> bytes | None:
    """The decompressed image (None if neither an NRV method nor LZMA decodes it). Raises the
    scan's limit when the image would be larger than the output bound."""
    bound = ctx.output_bound()
    src = data[packed.src_start : packed.src_end]
    limit = min(packed.out_limit, bound)
    overrun = False
    for method in _METHODS:
        try:
            out, _end = nrv.decompress(method, src, limit, 0, ctx.check_time)
        except nrv.NRVError as exc:
            overrun = overrun or exc.overrun
            continue
        ctx.check_ratio(len(src), len(out))
        return out
    lz = _unlzma(src, limit)
    if lz is not None:
        if len(lz) > limit:
            overrun = True
        else:
            ctx.check_ratio(len(src), len(lz))
            return lz
    if overrun and packed.out_limit > bound:
        ctx.check_output(bound + 1)  # raises the limit the image would have exceeded
    return None


def _unlzma(src: bytes, limit: int) -> bytes | None:
    """`upx --lzma`: a 2-byte header of UPX's own (((lc + lp) << 3) | pb, (lp << 4) | lc),
    then raw LZMA without an end marker. At most `limit` + 1 bytes (one more shows the
    overrun); None when the header does not hold or the stream is corrupt."""
    if len(src) < 3:
        return None
    pb, lp, lc = src[0] & 7, src[1] >> 4, src[1] & 15
    if pb >= 5 or lp >= 5 or lc >= 9 or src[0] >> 3 != lc + lp:
        return None
    filters = [{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb,
                "dict_size": max(4096, min(limit, 1 << 28))}]
    try:
        out = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters).decompress(
            src[2:], limit + 1)
    except lzma.LZMAError:
        return None
    return out or None


def _imports_offset(data: bytes, packed: Packed) -> int | None:
    """Offset in the image of UPX's compressed import table, from the stub's
    `lea edi, [esi + imports]` / `mov eax, [edi]` (8D BE imm32 8B 07)."""
    region = data[packed.stub_offset : min(len(data), packed.stub_offset + _STUB_SCAN)]
    at = region.find(b"\x8d\xbe")
    while at >= 0:
        if region[at + 6 : at + 8] == b"\x8b\x07":
            return int.from_bytes(region[at + 2 : at + 6], "little")
        at = region.find(b"\x8d\xbe", at + 1)
    return None


def _after_imports(image: bytes, imports: int) -> int | None:
    """Offset just after UPX's import table: entries of (dll name offset, IAT offset) each
    followed by 0x01 name NUL / 0xFF ordinal16 items and a 0 byte; a zero dword ends it."""
    pos = imports
    n = len(image)
    for _ in range(4096):
        if pos + 4 > n:
            return None
        if not int.from_bytes(image[pos : pos + 4], "little"):
            return pos + 4
        pos += 8
        while pos < n and image[pos]:
            if image[pos] == 0xFF:
                pos += 3
            else:
                end = image.find(b"\x00", pos + 1)
                if end < 0:
                    return None
                pos = end + 1
        pos += 1
    return None


@dataclass(frozen=True, slots=True)
class _Header:
    offset: int  # of "PE\0\0" in the image
    opt_size: int
    salign: int
    sections: tuple[tuple[int, int, int], ...]  # (table offset, aligned RVA, aligned size)


def _header_at(image: bytes, off: int, dst_rva: int, real_end: int) -> _Header | None:
    """The original PE header at `off`, if valid and every section lies in the image."""
    if off < 0 or off + 24 > len(image) or image[off : off + 4] != b"PE\x00\x00":
        return None
    nsec, opt_size = struct.unpack_from("<H", image, off + 6)[0], struct.unpack_from(
        "<H", image, off + 20)[0]
    if not 0 < nsec <= _MAX_SECTIONS or opt_size < 0x3C:
        return None
    table = off + 24 + opt_size
    if table + 40 * nsec > len(image):
        return None
    (salign,) = struct.unpack_from("<I", image, off + 24 + 32)
    if not salign or salign & (salign - 1) or salign > 1 << 20:
        return None
    sections = []
    for i in range(nsec):
        vsize, rva = struct.unpack_from("<II", image, table + 40 * i + 8)
        size = -(-vsize // salign) * salign
        start = rva - rva % salign
        if start < dst_rva or start + size > dst_rva + real_end:
            return None
        sections.append((table + 40 * i, start, size))
    return _Header(off, opt_size, salign, tuple(sections))


def _find_header(image: bytes, imports: int | None, dst_rva: int) -> _Header | None:
    """The program's own PE header: right after the import table the stub names, else the
    last plausible one (clamscan's two ways), else None (the image gets a forged header)."""
    if imports is not None and 0 <= imports < len(image):
        after = _after_imports(image, imports)
        if after is not None:
            found = _header_at(image, after, dst_rva, imports)
            if found is not None:
                return found
    end = len(image)
    for _ in range(_MAX_PE_CANDIDATES):  # the last valid PE header, searching backwards
        off = image.rfind(b"PE\x00\x00", 0, end)
        if off <= 0:
            return None
        found = _header_at(image, off, dst_rva, off)
        # The stored header's sections cover the image before it; a header that covers less
        # than half of it is a PE file inside the program (a payload), not the program's own.
        if found is not None and 2 * sum(size for _e, _r, size in found.sections) >= off:
            return found
        end = off + 3
    return None


_DOS = b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40)


def rebuild(image: bytes, data: bytes, packed: Packed) -> bytes:
    """A PE file around the decompressed `image` (see the module docstring)."""
    hdr = _find_header(image, _imports_offset(data, packed), packed.dst_rva)
    if hdr is None:
        return forged(image, packed.dst_rva, packed.dst_rva, b"UPX-RAW")
    head = bytearray(_DOS + image[hdr.offset : hdr.offset + 24 + hdr.opt_size])
    opt = 0x40 + 24
    table_len = 40 * len(hdr.sections)
    foffset = -(-(len(head) + table_len) // hdr.salign) * hdr.salign
    struct.pack_into("<I", head, opt + 36, hdr.salign)  # FileAlignment: raw data = memory layout
    struct.pack_into("<I", head, opt + 60, foffset)  # SizeOfHeaders
    table = bytearray()
    bodies: list[bytes] = []
    for entry, rva, size in hdr.sections:
        sec = bytearray(image[entry : entry + 40])
        struct.pack_into("<IIII", sec, 8, size, rva, size, foffset)
        table += sec
        body = image[rva - packed.dst_rva : rva - packed.dst_rva + size]
        bodies.append(body + bytes(size - len(body)))
        foffset += size
    out = head + table
    out += bytes(-(-len(out) // hdr.salign) * hdr.salign - len(out))
    return bytes(out) + b"".join(bodies)
