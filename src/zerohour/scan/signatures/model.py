"""Parsed signature values shared by the format parsers, the database, matcher and engine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from zerohour.scan.signatures.hexsig import HexPattern
from zerohour.scan.signatures.offset import Offset

#: ClamAV functionality level this engine claims (ClamAV 1.4.x reports 220).
FLEVEL = 220


class Target(IntEnum):
    """ClamAV target types (the `Target` field of .ndb and .ldb)."""

    ANY = 0
    PE = 1
    OLE2 = 2
    HTML = 3
    MAIL = 4
    GRAPHICS = 5
    ELF = 6
    ASCII = 7
    UNUSED = 8
    MACHO = 9
    PDF = 10
    FLASH = 11
    JAVA = 12


#: Targets this engine can honour; others are loaded with a warning and never match.
SUPPORTED_TARGETS = frozenset({Target.ANY, Target.PE, Target.HTML, Target.MAIL, Target.ELF,
                               Target.ASCII, Target.MACHO, Target.PDF})


@dataclass(frozen=True, slots=True)
class DbWarning:
    """A line the loader skipped or only partly understood, with where it came from."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class BodySig:
    """A body pattern with its placement: an .ndb signature or one .ldb subsignature."""

    name: str
    target: Target
    offset: Offset
    patterns: tuple[HexPattern, ...]  # more than one for `::wa` (wide and ASCII variants)


@dataclass(frozen=True, slots=True)
class PcreSub:
    """An .ldb PCRE subsignature: evaluated only when its trigger expression holds."""

    trigger: object  # an ldb `Expr`; typed loosely here to keep this module dependency-free
    regex: str
    flags: int
    offset: Offset
    global_: bool = False
