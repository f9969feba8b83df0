"""Parsed signature values shared by the format parsers, the database, matcher and engine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from zerohour.scan.signatures.hexsig import NO_MODIFIERS, HexPattern, Modifiers, compile_pattern
from zerohour.scan.signatures.offset import Offset

if TYPE_CHECKING:
    from zerohour.scan.signatures.ldb import Expr

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
SUPPORTED_TARGETS = frozenset({Target.ANY, Target.PE, Target.OLE2, Target.HTML, Target.MAIL,
                               Target.ELF, Target.ASCII, Target.MACHO, Target.PDF})


@dataclass(frozen=True, slots=True)
class DbWarning:
    """A line the loader skipped or only partly understood, with where it came from."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class BodySig:
    """A body pattern with its placement: an .ndb signature or one .ldb subsignature.

    Only the signature text is kept (and pickled); the compiled patterns are rebuilt on demand,
    so 100k signatures cost 100k small objects, not millions of tokens.
    """

    __slots__ = ("_patterns", "hexsig", "mods", "name", "offset", "target")

    def __init__(self, name: str, target: Target, offset: Offset, hexsig: str,
                 mods: Modifiers = NO_MODIFIERS) -> None:
        self.name = name
        self.target = target
        self.offset = offset
        self.hexsig = hexsig
        self.mods = mods
        self._patterns: list[HexPattern] | None = None

    @property
    def patterns(self) -> list[HexPattern]:
        """One pattern, or two for `::wa` (wide and ASCII variants)."""
        pats = self._patterns
        if pats is None:
            pats = self._patterns = compile_pattern(self.hexsig, self.mods)
        return pats

    def forget(self) -> None:
        """Drop the compiled patterns (the matcher keeps only anchors until a hit)."""
        self._patterns = None

    def __getstate__(self) -> tuple[str, Target, Offset, str, Modifiers]:
        return (self.name, self.target, self.offset, self.hexsig, self.mods)

    def __setstate__(self, st: tuple[str, Target, Offset, str, Modifiers]) -> None:
        self.name, self.target, self.offset, self.hexsig, self.mods = st
        self._patterns = None

    def __repr__(self) -> str:
        return f"BodySig({self.name!r}, {self.target!r}, {self.offset!r}, {self.hexsig!r})"


@dataclass(frozen=True, slots=True)
class PcreSub:
    """An .ldb PCRE subsignature: evaluated only when its trigger expression holds."""

    trigger: Expr
    regex: str
    flags: int
    offset: Offset
    global_: bool = False
