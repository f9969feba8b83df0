"""ClamAV signature offsets: `*`, `n`, `n,m`, `EOF-n[,m]`, `EP±n[,m]`, `Sx+n[,m]`, `SL+n[,m]`.

An offset pins where a match may *start*. PE-relative forms are resolved per layer from the PE
parse; on a non-PE layer they never match (ClamAV behaves the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from zerohour.errors import SignatureSyntaxError


class OffsetKind(Enum):
    ANY = "any"
    ABS = "abs"
    EOF = "eof"
    EP = "ep"
    SECTION = "section"  # Sx+n: start of section x
    LAST_SECTION = "last-section"  # SL+n


@dataclass(frozen=True, slots=True)
class Offset:
    kind: OffsetKind = OffsetKind.ANY
    value: int = 0  # signed displacement (EOF-n stores -n)
    shift: int = 0  # `,m`: the start may lie anywhere in [base, base+m]
    section: int = 0

    @property
    def needs_pe(self) -> bool:
        return self.kind in (OffsetKind.EP, OffsetKind.SECTION, OffsetKind.LAST_SECTION)

    def resolve(
        self, size: int, ep: int | None = None, sections: tuple[int, ...] = ()
    ) -> tuple[int, int] | None:
        """Allowed start range (inclusive) in a layer of `size` bytes; None if it cannot match."""
        if self.kind is OffsetKind.ANY:
            return 0, size
        if self.kind is OffsetKind.ABS:
            base = self.value
        elif self.kind is OffsetKind.EOF:
            base = size + self.value
        elif self.kind is OffsetKind.EP:
            if ep is None:
                return None
            base = ep + self.value
        elif self.kind is OffsetKind.SECTION:
            if self.section >= len(sections):
                return None
            base = sections[self.section] + self.value
        else:
            if not sections:
                return None
            base = sections[-1] + self.value
        if base < 0 or base > size:
            return None
        return base, base + self.shift


ANY = Offset()


def _num(s: str) -> int:
    if not s.isdigit():
        raise SignatureSyntaxError(f"bad offset number {s!r}")
    return int(s)


def parse_offset(text: str) -> Offset:
    if text == "*":
        return ANY
    base, _, shift_s = text.partition(",")
    shift = _num(shift_s) if shift_s else 0
    if base.isdigit():
        return Offset(OffsetKind.ABS, int(base), shift)
    if base.startswith("EOF-"):
        return Offset(OffsetKind.EOF, -_num(base[4:]), shift)
    if base.startswith(("EP+", "EP-")):
        n = _num(base[3:])
        return Offset(OffsetKind.EP, n if base[2] == "+" else -n, shift)
    if base.startswith("SL+"):
        return Offset(OffsetKind.LAST_SECTION, _num(base[3:]), shift)
    if base.startswith("S") and "+" in base:
        sec, disp = base[1:].split("+", 1)
        if sec.isdigit():
            return Offset(OffsetKind.SECTION, _num(disp), shift, section=int(sec))
    raise SignatureSyntaxError(f"unsupported offset {text!r}")
