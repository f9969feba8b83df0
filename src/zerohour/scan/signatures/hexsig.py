"""ClamAV hex body signatures: parsing into tokens, segments, anchors and verification regexes.

A signature such as `4142??43{2-4}(44|45)*464748` is split at unbounded gaps (`*`, `{n-}`) into
segments. Each segment has a bounded length, so it can be verified with a small regex around a hit
of its *anchor*: its longest run of fixed bytes, which is what the multi-pattern automaton looks
for. The whole-signature regex (`full_regex`) is the naive reference the property tests compare
the automaton path against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from zerohour.errors import SignatureSyntaxError

#: Shortest fixed-byte run worth giving to the automaton; shorter segments are regex-scanned.
MIN_ANCHOR = 2


class TokKind(Enum):
    LIT = "lit"  # one fixed byte
    NIBBLE = "nibble"  # one byte, half of it fixed: `a?` or `?a`
    ANY = "any"  # one arbitrary byte: `??`
    ALT = "alt"  # `(aa|bb)`, alternatives of any length; negated: `!(aa|bb)`
    GAP = "gap"  # `{n}`, `{-n}`, `{n-m}`, bounded; unbounded gaps split segments


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokKind
    value: int = 0
    mask: int = 0xFF
    alts: tuple[bytes, ...] = ()
    negated: bool = False
    lo: int = 0
    hi: int = 0

    def width(self) -> tuple[int, int]:
        """Bytes this token consumes: (min, max)."""
        if self.kind is TokKind.GAP:
            return self.lo, self.hi
        if self.kind is TokKind.ALT:
            lens = [len(a) for a in self.alts]
            return min(lens), max(lens)
        return 1, 1


@dataclass(frozen=True, slots=True)
class Modifiers:
    """Subsignature modifiers of logical signatures: `::i`, `::w`, `::a`, `::f`."""

    nocase: bool = False
    wide: bool = False
    ascii: bool = False
    fullword: bool = False


def _byte_re(b: int) -> str:
    return f"\\x{b:02x}"


def _token_re(t: Token) -> str:
    if t.kind is TokKind.LIT:
        return _byte_re(t.value)
    if t.kind is TokKind.ANY:
        return "."
    if t.kind is TokKind.NIBBLE:
        members = [b for b in range(256) if b & t.mask == t.value]
        return "[" + "".join(_byte_re(b) for b in members) + "]"
    if t.kind is TokKind.GAP:
        return f".{{{t.lo},{t.hi}}}?"
    ordered = sorted(t.alts, key=len)  # shortest first: the earliest end is found first
    alts = "|".join("".join(_byte_re(b) for b in a) for a in ordered)
    if t.negated:
        width = len(t.alts[0])
        return f"(?!{alts}).{{{width}}}"
    return f"(?:{alts})"


@dataclass(slots=True)
class Segment:
    """A bounded-length piece of a signature, verified by regex around its anchor."""

    tokens: tuple[Token, ...]
    nocase: bool
    fullword: bool
    anchor: bytes = b""
    #: Range of the anchor's distance from the segment start: (min, max).
    anchor_pre: tuple[int, int] = (0, 0)
    min_len: int = 0
    max_len: int = 0
    _regex: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)
    _scan_rx: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._choose_anchor()
        lo = sum(t.width()[0] for t in self.tokens)
        hi = sum(t.width()[1] for t in self.tokens)
        self.min_len, self.max_len = lo, hi

    def _choose_anchor(self) -> None:
        best: tuple[int, int, int, bytes] = (0, 0, 0, b"")  # (len, -prefix-variance, pre_lo, bytes)
        pre_lo = pre_hi = 0
        run = bytearray()
        run_lo = run_hi = 0
        for t in (*self.tokens, None):
            if t is not None and t.kind is TokKind.LIT:
                if not run:
                    run_lo, run_hi = pre_lo, pre_hi
                run.append(t.value)
            else:
                if run:
                    cand = (len(run), -(run_hi - run_lo), run_lo, bytes(run))
                    if cand[:2] > best[:2]:
                        best = cand
                        self.anchor_pre = (run_lo, run_hi)
                    run = bytearray()
            if t is not None:
                w = t.width()
                pre_lo += w[0]
                pre_hi += w[1]
        if best[0] >= MIN_ANCHOR:
            self.anchor = best[3]
        else:
            self.anchor = b""
            self.anchor_pre = (0, 0)

    @property
    def source(self) -> str:
        body = "".join(_token_re(t) for t in self.tokens)
        if self.fullword:
            body = f"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"
        return body

    @property
    def regex(self) -> re.Pattern[bytes]:
        """Compiled lazily: a 100k-signature database only compiles what actually gets hit."""
        rx = self._regex
        if rx is None:
            flags = re.DOTALL | (re.IGNORECASE if self.nocase else 0)
            rx = re.compile(self.source.encode("ascii"), flags)
            self._regex = rx
        return rx

    @property
    def scan_regex(self) -> re.Pattern[bytes]:
        """Finds every start (overlapping too): for segments without an anchor."""
        rx = self._scan_rx
        if rx is None:
            flags = re.DOTALL | (re.IGNORECASE if self.nocase else 0)
            rx = re.compile(b"(?=(" + self.source.encode("ascii") + b"))", flags)
            self._scan_rx = rx
        return rx

    def __getstate__(
        self,
    ) -> tuple[tuple[Token, ...], bool, bool, bytes, tuple[int, int], int, int]:
        return (self.tokens, self.nocase, self.fullword, self.anchor, self.anchor_pre,
                self.min_len, self.max_len)

    def __setstate__(
        self, state: tuple[tuple[Token, ...], bool, bool, bytes, tuple[int, int], int, int]
    ) -> None:
        (self.tokens, self.nocase, self.fullword, self.anchor, self.anchor_pre,
         self.min_len, self.max_len) = state
        self._regex = None
        self._scan_rx = None


@dataclass(frozen=True, slots=True)
class Gap:
    """An unbounded gap between segments: at least `lo` bytes."""

    lo: int


@dataclass(slots=True)
class HexPattern:
    """One body pattern: segments separated by unbounded gaps (`gaps[i]` follows `segments[i]`)."""

    segments: tuple[Segment, ...]
    gaps: tuple[Gap, ...]
    text: str

    def full_regex(self) -> re.Pattern[bytes]:
        """The whole pattern as one regex: the naive reference used by tests and fallbacks."""
        parts = [self.segments[0].source]
        for gap, seg in zip(self.gaps, self.segments[1:], strict=True):
            parts.append(f".{{{gap.lo},}}?" if gap.lo else ".*?")
            parts.append(seg.source)
        flags = re.DOTALL | (re.IGNORECASE if self.segments[0].nocase else 0)
        return re.compile("".join(parts).encode("ascii"), flags)


_HEX = frozenset("0123456789abcdefABCDEF")


def _err(msg: str) -> SignatureSyntaxError:
    return SignatureSyntaxError(msg)


def _parse_int(s: str, what: str) -> int:
    if not s.isdigit():
        raise _err(f"bad {what} {s!r}")
    return int(s)


def tokenize(text: str) -> list[Token | Gap]:
    """Parse ClamAV hex signature syntax into tokens; unbounded gaps become `Gap`."""
    out: list[Token | Gap] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "*":
            out.append(Gap(0))
            i += 1
        elif c == "{":
            j = text.find("}", i)
            if j < 0:
                raise _err("unterminated '{'")
            body = text[i + 1 : j]
            i = j + 1
            if "-" not in body:
                k = _parse_int(body, "gap")
                out.append(Token(TokKind.GAP, lo=k, hi=k))
            else:
                a, b = body.split("-", 1)
                if a == "":
                    out.append(Token(TokKind.GAP, lo=0, hi=_parse_int(b, "gap")))
                elif b == "":
                    out.append(Gap(_parse_int(a, "gap")))
                else:
                    lo, hi = _parse_int(a, "gap"), _parse_int(b, "gap")
                    if lo > hi:
                        raise _err(f"bad gap {{{body}}}")
                    out.append(Token(TokKind.GAP, lo=lo, hi=hi))
        elif c == "!" or c == "(":
            negated = c == "!"
            if negated:
                if i + 1 >= n or text[i + 1] != "(":
                    raise _err("'!' must precede '('")
                i += 1
            j = text.find(")", i)
            if j < 0:
                raise _err("unterminated '('")
            body = text[i + 1 : j]
            i = j + 1
            if "B" in body or "L" in body or "W" in body:
                raise _err(f"unsupported special alternative ({body})")
            alts = []
            for alt in body.split("|"):
                if not alt or len(alt) % 2 or not set(alt) <= _HEX:
                    raise _err(f"unsupported alternative ({body})")
                alts.append(bytes.fromhex(alt))
            if len(alts) < 2 and not negated:
                raise _err(f"alternative needs two choices: ({body})")
            if negated and len({len(a) for a in alts}) != 1:
                raise _err(f"negated alternatives must have one length: !({body})")
            out.append(Token(TokKind.ALT, alts=tuple(alts), negated=negated))
        elif c == "[":
            raise _err("unsupported '[n-m]' byte range jump")
        else:
            pair = text[i : i + 2]
            if len(pair) < 2:
                raise _err("odd number of hex digits")
            hi_c, lo_c = pair[0], pair[1]
            i += 2
            if pair == "??":
                out.append(Token(TokKind.ANY))
            elif hi_c == "?" and lo_c in _HEX:
                out.append(Token(TokKind.NIBBLE, value=int(lo_c, 16), mask=0x0F))
            elif lo_c == "?" and hi_c in _HEX:
                out.append(Token(TokKind.NIBBLE, value=int(hi_c, 16) << 4, mask=0xF0))
            elif hi_c in _HEX and lo_c in _HEX:
                out.append(Token(TokKind.LIT, value=int(pair, 16)))
            else:
                raise _err(f"bad hex {pair!r}")
    return out


def _widen(tokens: list[Token | Gap]) -> list[Token | Gap]:
    """`::w`: every byte followed by a NUL (UTF-16LE of ASCII)."""
    out: list[Token | Gap] = []
    zero = Token(TokKind.LIT, value=0)
    for t in tokens:
        if isinstance(t, Gap) or t.kind is TokKind.GAP:
            out.append(t)
        elif t.kind is TokKind.ALT:
            alts = tuple(b"".join(bytes([b, 0]) for b in a) for a in t.alts)
            out.append(Token(TokKind.ALT, alts=alts, negated=t.negated))
        else:
            out.extend((t, zero))
    return out


def compile_pattern(text: str, mods: Modifiers = Modifiers()) -> list[HexPattern]:
    """Parse one hex signature into its pattern(s): `::wa` yields a wide and an ASCII variant."""
    tokens = tokenize(text)
    if not any(isinstance(t, Token) and t.kind is not TokKind.GAP for t in tokens):
        raise _err("signature has no bytes")
    variants = [tokens]
    if mods.wide:
        variants = [_widen(tokens)] + ([tokens] if mods.ascii else [])
    patterns = []
    for toks in variants:
        segs: list[Segment] = []
        gaps: list[Gap] = []
        cur: list[Token] = []
        for t in toks:
            if isinstance(t, Gap):
                if not cur:
                    raise _err("signature starts with, or doubles, an unbounded gap")
                segs.append(Segment(tuple(cur), mods.nocase, mods.fullword))
                gaps.append(t)
                cur = []
            else:
                cur.append(t)
        if not cur:
            raise _err("signature ends with an unbounded gap")
        segs.append(Segment(tuple(cur), mods.nocase, mods.fullword))
        for s in segs:
            if s.tokens[0].kind is TokKind.GAP or s.tokens[-1].kind is TokKind.GAP:
                raise _err("a gap must sit between bytes")
        patterns.append(HexPattern(tuple(segs), tuple(gaps), text))
    return patterns
