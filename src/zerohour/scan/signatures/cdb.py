"""Container metadata signatures (.cdb): match what a container's directory says of a member.

Line (readdb.c `cli_loadcdb`): `VirusName:ContainerType:ContainerSize:FileNameREGEX:
FileSizeInContainer:FileSizeReal:IsEncrypted:FilePos:Res1:Res2[:MinFL[:MaxFL]]`.
Matching follows matcher.c `cli_matchmeta`: `*` is any; sizes and FilePos are `n` or `n-m`
(0 on either side of a range is open); IsEncrypted is 0, 1 or `*`; FilePos counts from 1 (cab
and 7z: ClamAV passes 0 for it and for the compressed size); the
name regex (POSIX extended, unanchored) must find the member's name, and a member without a
name never matches a regex. Res1 (a CRC-32 in hex) must parse but, as in clamscan 1.4, is not
compared (a wrong CRC still matches: tests/conformance/test_clamscan_kinds.py); Res2 is not
used either. These signatures are what catches a member nobody can read: an
encrypted `invoice.exe` of a known size in a zip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures import cltypes
from zerohour.scan.signatures.model import FLEVEL
from zerohour.scan.types import FileType, MemberMeta

Range = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class CdbSig:
    name: str
    container: FileType | None  # None: any container
    container_size: Range
    regex: str | None
    compressed_size: Range
    size: Range
    encrypted: bool | None
    position: Range
    crc32: int | None

    def matches(self, meta: MemberMeta, container_size: int) -> bool:
        if self.container is not None and meta.container is not self.container:
            return False
        if self.encrypted is not None and meta.encrypted != self.encrypted:
            return False
        position, compressed = _as_clamav_passes(meta)
        if not (_in(self.container_size, container_size)
                and _in(self.compressed_size, compressed)
                and _in(self.size, meta.size) and _in(self.position, position)):
            return False
        if self.regex is not None:
            return meta.name is not None and _compiled(self.regex).search(meta.name) is not None
        return True


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}

#: Containers whose reader in libclamav passes 0 for the file position and the compressed
#: size to `cli_matchmeta` (cab.c, 7z): FilePos/CompSize signatures see 0 there, as here.
_NO_POSITION = frozenset({FileType.CAB, FileType.SEVENZIP})


def _as_clamav_passes(meta: MemberMeta) -> tuple[int, int | None]:
    """(FilePos, compressed size) as ClamAV's reader for this container reports them: the
    1-based entry number and the real size for zip and ARJ (checked against clamscan), 0 and
    0 for cab and 7z; other containers as zip."""
    if meta.container in _NO_POSITION:
        return 0, 0
    return meta.index + 1, meta.compressed_size


def _compiled(regex: str) -> re.Pattern[str]:
    rx = _REGEX_CACHE.get(regex)
    if rx is None:
        rx = _REGEX_CACHE[regex] = re.compile(regex)
    return rx


def _in(bounds: Range, value: int | None) -> bool:
    """`cli_matchmeta`'s CDBRANGE: exact when both ends agree, else 0 is an open end."""
    if bounds is None:
        return True
    if value is None:
        return False
    lo, hi = bounds
    if lo == hi:
        return value == lo
    return not ((lo and lo > value) or (hi and hi < value))


def _range(text: str, what: str) -> Range:
    if text == "*":
        return None
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    if not text.isdigit():
        raise SignatureSyntaxError(f"invalid {what} {text!r}")
    return int(text), int(text)


class UnknownHere(Exception):
    """A valid signature naming a ClamAV type this engine has no layer type for."""


def parse_cdb_line(line: str) -> CdbSig | None:
    """The signature; None when its functionality levels exclude this engine. Raises
    `UnknownHere` for a container type we never produce."""
    fields = line.split(":")
    if not 10 <= len(fields) <= 12:
        raise SignatureSyntaxError("expected 10 to 12 ':'-separated fields")
    name, ctype, csize, regex, fsizec, fsizer, enc, pos, res1 = fields[:9]
    if len(fields) > 10:
        if not fields[10].isdigit():
            raise SignatureSyntaxError(f"bad functionality level {fields[10]!r}")
        if int(fields[10]) > FLEVEL:
            return None
        if len(fields) == 12:
            if not fields[11].isdigit():
                raise SignatureSyntaxError(f"bad functionality level {fields[11]!r}")
            if int(fields[11]) < FLEVEL:
                return None
    if not name:
        raise SignatureSyntaxError("empty signature name")
    container: FileType | None = None
    if ctype != "*":
        if ctype not in cltypes.CL_TYPES:
            raise SignatureSyntaxError(f"unknown container type {ctype!r}")
        container = cltypes.lookup(ctype)
        if container is None and ctype != "CL_TYPE_ANY":
            raise UnknownHere(ctype)
    if regex != "*":
        try:
            re.compile(regex)
        except re.error as exc:
            raise SignatureSyntaxError(f"can't compile regular expression {regex!r}: {exc}") \
                from None
    if enc not in ("*", "0", "1"):
        raise SignatureSyntaxError(f"invalid encryption flag {enc!r}")
    crc: int | None = None
    if res1 != "*":
        try:
            crc = int(res1, 16)
        except ValueError:
            raise SignatureSyntaxError(f"invalid CRC-32 {res1!r}") from None
        crc = crc or None  # ClamAV: a zero Res1 is not compared
    return CdbSig(
        name=name, container=container, container_size=_range(csize, "container size"),
        regex=None if regex == "*" else regex,
        compressed_size=_range(fsizec, "compressed size"), size=_range(fsizer, "file size"),
        encrypted=None if enc == "*" else enc == "1", position=_range(pos, "file position"),
        crc32=crc,
    )
