"""Parsed signature values shared by the format parsers, the database, matcher and engine."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from zerohour.scan.signatures.hexsig import (
    NO_MODIFIERS,
    HexPattern,
    Modifiers,
    Prefilter,
    compile_pattern,
    prefilter,
)
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
                               Target.GRAPHICS, Target.ELF, Target.ASCII, Target.MACHO,
                               Target.PDF})


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

    __slots__ = ("_patterns", "_prefilters", "hexsig", "mods", "name", "offset", "target")

    def __init__(self, name: str, target: Target, offset: Offset, hexsig: str,
                 mods: Modifiers = NO_MODIFIERS, prefilters: tuple[Prefilter, ...] | None = None
                 ) -> None:
        self.name = name
        self.target = target
        self.offset = offset
        self.hexsig = hexsig
        self.mods = mods
        self._patterns: list[HexPattern] | None = None
        #: Known without compiling (`hexsig.quick_prefilter`): what the matcher needs.
        self._prefilters = prefilters

    @property
    def patterns(self) -> list[HexPattern]:
        """One pattern, or two for `::wa` (wide and ASCII variants)."""
        pats = self._patterns
        if pats is None:
            pats = self._patterns = compile_pattern(self.hexsig, self.mods)
        return pats

    @property
    def prefilters(self) -> tuple[Prefilter, ...]:
        """Per pattern, the anchor the matcher looks for (`hexsig.prefilter`)."""
        pre = self._prefilters
        if pre is None:
            pre = self._prefilters = tuple(prefilter(p) for p in self.patterns)
        return pre

    def forget(self) -> None:
        """Drop the compiled patterns (the matcher keeps only anchors until a hit)."""
        self._patterns = None
        self._prefilters = None

    def __getstate__(self) -> tuple[str, Target, Offset, str, Modifiers]:
        return (self.name, self.target, self.offset, self.hexsig, self.mods)

    def __setstate__(self, st: tuple[str, Target, Offset, str, Modifiers]) -> None:
        self.name, self.target, self.offset, self.hexsig, self.mods = st
        self._patterns = None
        self._prefilters = None

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


_TableState = tuple[list[str], list[str], bytes, bytes, list[Offset], "array[int]"]
_MOD_BITS = (("nocase", 1), ("wide", 2), ("ascii", 4), ("fullword", 8))


class SigTable:
    """Body signatures stored by column; `BodySig` objects are made (and kept) on demand.

    100k signatures pickle as a few lists and arrays instead of 100k objects, which is what
    keeps a cached database load under a second; only signatures whose anchors are hit ever
    become objects.
    """

    def __init__(self, sigs: Iterable[BodySig] = ()) -> None:
        self.names: list[str] = []
        self.hexsigs: list[str] = []
        self.targets = bytearray()
        self.mods = bytearray()
        self.offset_pool: list[Offset] = []
        self.offset_idx = array("I")
        pool: dict[Offset, int] = {}
        for sig in sigs:
            self.names.append(sig.name)
            self.hexsigs.append(sig.hexsig)
            self.targets.append(int(sig.target))
            mods = sig.mods
            self.mods.append(0 if mods == NO_MODIFIERS else
                             sum(bit for attr, bit in _MOD_BITS if getattr(mods, attr)))
            oi = pool.get(sig.offset)
            if oi is None:
                oi = pool[sig.offset] = len(self.offset_pool)
                self.offset_pool.append(sig.offset)
            self.offset_idx.append(oi)
        self._made: dict[int, BodySig] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> BodySig:
        sig = self._made.get(i)
        if sig is None:
            m = self.mods[i]
            mods = Modifiers(**{attr: True for attr, bit in _MOD_BITS if m & bit}) if m \
                else NO_MODIFIERS
            sig = BodySig(self.names[i], Target(self.targets[i]),
                          self.offset_pool[self.offset_idx[i]], self.hexsigs[i], mods)
            sig = self._made.setdefault(i, sig)
        return sig

    def name(self, i: int) -> str:
        return self.names[i]

    def target(self, i: int) -> Target:
        return Target(self.targets[i])

    def __getstate__(self) -> _TableState:
        return (self.names, self.hexsigs, bytes(self.targets), bytes(self.mods),
                self.offset_pool, self.offset_idx)

    def __setstate__(self, st: _TableState) -> None:
        self.names, self.hexsigs, targets, mods, self.offset_pool, self.offset_idx = st
        self.targets = bytearray(targets)
        self.mods = bytearray(mods)
        self._made = {}
