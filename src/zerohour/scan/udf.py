"""UDF file systems in disk images (ECMA-167 / OSTA UDF): a small bounded reader.

Why: libarchive 3.6 reads only the ISO 9660 side of an image, and Windows mounts the UDF side
when there is one, so a file present only in the UDF tree of a bridge image (or an image with
no ISO 9660 tree at all) would otherwise go unscanned. No maintained Python library reads UDF
without writing support we do not need (pycdlib builds images), so this walks the structures
itself: the Anchor Volume Descriptor Pointer (sector 256), the main Volume Descriptor Sequence
(Partition and Logical Volume Descriptors), the File Set Descriptor, then File Entries / Extended
File Entries and File Identifier Descriptors, recursively, with every file's extents
(short_ad / long_ad, or data inside its ICB). Type 1 partition maps only: images with sparable,
virtual or metadata partitions (UDF 2.5+ on optical media) are
`Heuristics.Unsupported.ISO.UDFPartition`. Bounded: entries count against `max_files`,
directories are visited once (no cycles), nesting is limited, output against the scan budget.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from zerohour.scan.containers import count_entry
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

SECTOR = 2048
_MAX_DEPTH = 64
_MAX_VDS = 64
_MAX_EXTENTS = 4096
_TAG_AVDP, _TAG_PD, _TAG_LVD, _TAG_TD = 2, 5, 6, 8
_TAG_FSD, _TAG_FID, _TAG_FE, _TAG_EFE = 256, 257, 261, 266


class UdfError(Exception):
    """The UDF structures do not hold together."""


class UdfUnsupported(Exception):
    """A UDF feature this reader does not implement."""


def has_udf(data: bytes) -> bool:
    """An NSR02/NSR03 descriptor in the volume recognition sequence (from sector 16)."""
    return any(data[off : off + 5] in (b"NSR02", b"NSR03")
               for off in range(16 * SECTOR + 1, min(len(data), 32 * SECTOR), SECTOR))


@dataclass(frozen=True, slots=True)
class _Volume:
    data: bytes
    block: int
    partition_start: int  # in blocks

    def at(self, lbn: int) -> int:
        return (self.partition_start + lbn) * self.block


def _tag(data: bytes, off: int, expected: int | tuple[int, ...]) -> None:
    if off < 0 or off + 16 > len(data):
        raise UdfError("descriptor past the end")
    ident = struct.unpack_from("<H", data, off)[0]
    wanted = expected if isinstance(expected, tuple) else (expected,)
    if ident not in wanted:
        raise UdfError(f"tag {ident} where {wanted} was expected")
    checksum = sum(data[off : off + 4]) + sum(data[off + 5 : off + 16])
    if checksum & 0xFF != data[off + 4]:
        raise UdfError("descriptor tag checksum")


def _volume(data: bytes) -> tuple[_Volume, int, int]:
    """The partition and the File Set Descriptor's (lbn, partition reference)."""
    avdp = 256 * SECTOR
    _tag(data, avdp, _TAG_AVDP)
    length, location = struct.unpack_from("<II", data, avdp + 16)
    partition_start = block = None
    fsd: tuple[int, int] | None = None
    maps_ok = True
    for i in range(min(length // SECTOR, _MAX_VDS)):
        off = (location + i) * SECTOR
        if off + SECTOR > len(data):
            raise UdfError("volume descriptor sequence past the end")
        ident = struct.unpack_from("<H", data, off)[0]
        if ident == _TAG_TD:
            break
        if ident == _TAG_PD:
            _tag(data, off, _TAG_PD)
            partition_start = struct.unpack_from("<I", data, off + 188)[0]
        elif ident == _TAG_LVD:
            _tag(data, off, _TAG_LVD)
            block = struct.unpack_from("<I", data, off + 212)[0]
            _len, lbn, ref = struct.unpack_from("<IIH", data, off + 248)
            fsd = (lbn, ref)
            nmaps = struct.unpack_from("<I", data, off + 268)[0]
            maps_ok = nmaps == 1 and data[off + 440] == 1  # one type-1 partition map
    if partition_start is None or block is None or fsd is None:
        raise UdfError("no partition or logical volume descriptor")
    if not maps_ok:
        raise UdfUnsupported("UDFPartition")
    if block != SECTOR:
        raise UdfUnsupported("UDFBlockSize")
    return _Volume(data, block, partition_start), fsd[0], fsd[1]


def children(data: bytes, ctx: ScanContext, dedup: Dedup | None = None) -> Iterator[Child]:
    """Every file of the image's UDF tree (noted for .cdb, content yielded once)."""
    dedup = dedup or Dedup()
    try:
        vol, fsd_lbn, _ref = _volume(data)
        fsd = vol.at(fsd_lbn)
        _tag(data, fsd, _TAG_FSD)
        _len, root_lbn = struct.unpack_from("<II", data, fsd + 400)
    except UdfUnsupported as exc:
        ctx.unsupported("ISO", str(exc))
        return
    except (UdfError, struct.error):
        ctx.broken("ISO", "UDF")
        return
    walker = _Walker(vol, ctx, dedup)
    try:
        yield from walker.directory(root_lbn, "", 0)
    except UdfUnsupported as exc:
        ctx.unsupported("ISO", str(exc))
    except (UdfError, struct.error):
        ctx.broken("ISO", "UDF")


class _Walker:
    def __init__(self, vol: _Volume, ctx: ScanContext, dedup: Dedup) -> None:
        self.vol = vol
        self.ctx = ctx
        self.dedup = dedup
        self.seen: set[int] = set()
        self.index = 0

    def _entry(self, lbn: int) -> tuple[int, int, bytes]:
        """(file type, information length, content or directory bytes) of the ICB at `lbn`."""
        data = self.vol.data
        off = self.vol.at(lbn)
        _tag(data, off, (_TAG_FE, _TAG_EFE))
        extended = struct.unpack_from("<H", data, off)[0] == _TAG_EFE
        file_type = data[off + 27]
        flags = struct.unpack_from("<H", data, off + 34)[0]
        size = struct.unpack_from("<Q", data, off + 56)[0]
        ea_at, ad_at = (208, 216) if extended else (168, 176)
        ea_len, ad_len = struct.unpack_from("<II", data, off + ea_at)
        ads = off + ad_at + ea_len
        if ads + ad_len > len(data):
            raise UdfError("allocation descriptors past the end")
        kind = flags & 7
        if kind == 3:  # the data is inside the ICB
            return file_type, size, data[ads : ads + min(ad_len, size)]
        if kind not in (0, 1):
            raise UdfUnsupported("UDFExtents")
        step = 8 if kind == 0 else 16
        bound = self.ctx.output_bound()
        chunks: list[bytes] = []
        total = 0
        for n, at in enumerate(range(ads, ads + ad_len - step + 1, step)):
            if n >= _MAX_EXTENTS or total >= size:
                break
            self.ctx.check_time()
            raw_len, pos = struct.unpack_from("<II", data, at)
            length, extent_type = raw_len & 0x3FFFFFFF, raw_len >> 30
            if extent_type == 3:
                raise UdfUnsupported("UDFExtents")  # a continuation of the descriptors
            length = min(length, size - total)
            if total + length > bound:
                self.ctx.check_output(total + length)
            if extent_type == 0:
                start = self.vol.at(pos)
                piece = data[start : start + length]
                if len(piece) < length:
                    raise UdfError("extent past the end")
            else:  # allocated or not, but not recorded: reads as zeros
                piece = bytes(length)
            chunks.append(piece)
            total += len(piece)
            self.ctx.check_ratio(len(data), total)  # unrecorded extents cost no input
        return file_type, size, b"".join(chunks)

    def directory(self, lbn: int, path: str, depth: int) -> Iterator[Child]:
        if depth > _MAX_DEPTH or lbn in self.seen:
            return
        self.seen.add(lbn)
        file_type, _size, body = self._entry(lbn)
        if file_type != 4:
            raise UdfError("the root is not a directory")
        pos = 0
        while pos + 38 <= len(body):
            self.ctx.check_time()
            if struct.unpack_from("<H", body, pos)[0] != _TAG_FID:
                raise UdfError("not a file identifier descriptor")
            characteristics = body[pos + 18]
            name_len = body[pos + 19]
            _l, icb = struct.unpack_from("<II", body, pos + 20)
            iu_len = struct.unpack_from("<H", body, pos + 36)[0]
            raw_name = body[pos + 38 + iu_len : pos + 38 + iu_len + name_len]
            pos += (38 + iu_len + name_len + 3) & ~3
            if characteristics & 0x0C:  # parent entry or deleted
                continue
            name = f"{path}{_name(raw_name)}"
            if characteristics & 0x02:
                yield from self.directory(icb, name + "/", depth + 1)
                continue
            yield from self._file(icb, name)

    def _file(self, lbn: int, name: str) -> Iterator[Child]:
        count_entry(self.ctx, self.index)
        _file_type, size, content = self._entry(lbn)
        self.ctx.note_member(MemberMeta(FileType.ISO, name, size, None, None, False, self.index))
        self.index += 1
        if len(content) < size:
            self.ctx.broken("ISO", "UDF")
        if content and self.dedup.fresh(content, name):
            self.ctx.charge_child(len(content))
            yield Child(data=content, name=name, origin="udf")


def _name(raw: bytes) -> str:
    """An OSTA compressed-unicode file identifier (8: one byte per char, 16: UTF-16BE)."""
    if not raw:
        return ""
    if raw[0] == 16:
        return raw[1:].decode("utf-16-be", "replace")
    return raw[1:].decode("latin-1")
