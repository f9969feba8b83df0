"""Extended body signatures: .ndb lines `Name:Target:Offset:HexSig[:MinFL[:MaxFL]]`."""

from __future__ import annotations

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures.hexsig import quick_prefilter
from zerohour.scan.signatures.model import FLEVEL, BodySig, Target
from zerohour.scan.signatures.offset import parse_offset

#: The targets by their usual spelling: an enum call per signature costs more than the rest
#: of the field (300k signatures in a ClamAV-sized database).
_TARGETS = {str(int(t)): t for t in Target}


def parse_target(text: str) -> Target:
    known = _TARGETS.get(text)
    if known is not None:
        return known
    if not text.isdigit():
        raise SignatureSyntaxError(f"bad target {text!r}")
    try:
        return Target(int(text))
    except ValueError:
        raise SignatureSyntaxError(f"unknown target {text}") from None


def flevel_ok(min_s: str, max_s: str) -> bool:
    """Whether this engine's functionality level lies in [MinFL, MaxFL] (empty means open)."""
    for s in (min_s, max_s):
        if s and not s.isdigit():
            raise SignatureSyntaxError(f"bad functionality level {s!r}")
    return (not min_s or int(min_s) <= FLEVEL) and (not max_s or int(max_s) >= FLEVEL)


def parse_ndb_line(line: str) -> BodySig | None:
    """The signature, or None when its functionality-level range excludes this engine."""
    fields = line.split(":")
    if len(fields) < 4:
        raise SignatureSyntaxError("expected Name:Target:Offset:HexSig")
    if len(fields) > 6:
        raise SignatureSyntaxError("too many fields")
    name, target_s, offset_s, hexsig = fields[:4]
    if not name:
        raise SignatureSyntaxError("empty signature name")
    min_fl = fields[4] if len(fields) > 4 else ""
    max_fl = fields[5] if len(fields) > 5 else ""
    target = parse_target(target_s)
    offset = parse_offset(offset_s)
    # A plain signature's anchor is read from its text; anything else compiles now (syntax
    # errors belong to load time).
    quick = quick_prefilter(hexsig)
    sig = BodySig(name, target, offset, hexsig, prefilters=None if quick is None else (quick,))
    if quick is None:
        sig.patterns  # noqa: B018
    if not flevel_ok(min_fl, max_fl):
        return None
    return sig
