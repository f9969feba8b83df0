"""File type magic (.ftm): `MagicType:Offset:HexMagic:Name:RequiredType:Type[:MinFL[:MaxFL]]`.

ClamAV (readdb.c `cli_loadftm`) uses these to recognise file types. Magic type 0 (the bytes at
a fixed offset, filetypes.c `cli_filetype`) is loaded when ClamAV's type maps to one of ours: a
layer we could only call binary data then takes that type for matching (targets, `Container`),
so signatures written for it apply as they do in clamscan. Magic types 1 (a body pattern found
while scanning) and 4 (partition types), and types we have no layer type for, are counted as
skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures import cltypes
from zerohour.scan.signatures.model import FLEVEL
from zerohour.scan.types import FileType


@dataclass(frozen=True, slots=True)
class FtmSig:
    offset: int
    magic: bytes
    name: str
    required: FileType | None  # None: CL_TYPE_ANY
    type: FileType

    def applies(self, data: bytes, current: FileType) -> bool:
        if self.required is not None and self.required is not current:
            return False
        return data[self.offset : self.offset + len(self.magic)] == self.magic


class SkippedFtm(Exception):
    """A valid record this engine cannot use (its reason is the message)."""


def _type(name: str) -> FileType | None:
    if name not in cltypes.CL_TYPES:
        raise SignatureSyntaxError(f"unknown file type {name!r}")
    return cltypes.lookup(name)


def parse_ftm_line(line: str) -> FtmSig | None:
    """The record; None when its functionality levels exclude this engine; `SkippedFtm` for a
    valid record we do not use."""
    fields = line.split(":")
    if not 6 <= len(fields) <= 8:
        raise SignatureSyntaxError("expected 6 to 8 ':'-separated fields")
    kind, offset, magic, name, rtype, ftype = fields[:6]
    for i, extra in enumerate(fields[6:]):
        if not extra.isdigit():
            raise SignatureSyntaxError(f"bad functionality level {extra!r}")
        if (int(extra) > FLEVEL) if i == 0 else (int(extra) < FLEVEL):
            return None
    if kind not in ("0", "1", "4"):
        raise SignatureSyntaxError(f"unknown magic type {kind!r}")
    required = None if rtype == "CL_TYPE_ANY" else _type(rtype)
    target = _type(ftype)
    if kind != "0":
        raise SkippedFtm("body or partition magic")
    if not offset.isdigit():
        raise SignatureSyntaxError(f"bad offset {offset!r}")
    try:
        raw = bytes.fromhex(magic)
    except ValueError:
        raise SignatureSyntaxError(f"bad magic bytes {magic!r}") from None
    if target is None or (required is None and rtype != "CL_TYPE_ANY"):
        raise SkippedFtm("type without an equivalent here")
    return FtmSig(int(offset), raw, name, required, target)
