"""ClamAV hex body signatures: parsing into tokens, segments, anchors and verification regexes.

A signature such as `4142??43{2-4}(44|45)*464748` is split at unbounded gaps (`*`, `{n-}`) into
segments. Each segment has a bounded length, so it can be verified with a small regex around a hit
of its *anchor*: its longest run of fixed bytes, which is what the multi-pattern automaton looks
for. The whole-signature regex (`full_regex`) is the naive reference the property tests compare
the automaton path against. Tokens only live while a signature compiles: a segment keeps its
regex source and anchor, so 100k signatures stay small in memory and in the disk cache.

Speed path, and why: a cold load reads 300k .ndb signatures, and the matcher needs only each
one's anchor; `quick_prefilter` reads it from a plain signature's text (one `findall` of whole
tokens that must tile each segment) without building tokens and segments, and declines
anything unusual, which then takes the exact path (`compile_pattern`, `prefilter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from zerohour.errors import SignatureSyntaxError

#: Shortest fixed-byte run worth giving to the automaton; shorter segments are regex-scanned.
MIN_ANCHOR = 2
#: Bytes that fill real files (padding, spaces, NOP/INT3 runs): weak anchors, hit everywhere.
COMMON_BYTES = frozenset(b"\x00\xff \x90\xcc\r\n\t")


def anchor_quality(lit: bytes) -> float:
    """How selective a fixed run is as an anchor; <= 0 means "do not use" (too many hits).

    A run of common bytes or one repeated byte (`0000`, `2020`) would fire on every padded
    file and turn the automaton into a callback storm; such segments are regex-scanned instead.
    """
    if len(lit) < MIN_ANCHOR:
        return 0.0
    if len(lit) < 4 and (len(set(lit)) < 2 or set(lit) <= COMMON_BYTES):
        return 0.0
    return len(lit) - 0.75 * (len(lit) - len(lit.translate(None, _COMMON)))


_COMMON = bytes(sorted(COMMON_BYTES))


class TokKind(Enum):
    LIT = "lit"  # a run of fixed bytes
    NIBBLE = "nibble"  # one byte, half of it fixed: `a?` or `?a`
    ANY = "any"  # one arbitrary byte: `??`
    ALT = "alt"  # `(aa|bb)`, alternatives of any length; negated: `!(aa|bb)`
    GAP = "gap"  # `{n}`, `{-n}`, `{n-m}`, bounded; unbounded gaps split segments


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokKind
    lit: bytes = b""
    value: int = 0
    mask: int = 0xFF
    alts: tuple[bytes, ...] = ()
    negated: bool = False
    lo: int = 0
    hi: int = 0

    def width(self) -> tuple[int, int]:
        """Bytes this token consumes: (min, max)."""
        k = self.kind
        if k is TokKind.LIT:
            return len(self.lit), len(self.lit)
        if k is TokKind.GAP:
            return self.lo, self.hi
        if k is TokKind.ALT:
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


NO_MODIFIERS = Modifiers()


_ESC = [f"\\x{b:02x}" for b in range(256)]


def bytes_regex(bs: bytes) -> str:
    return "".join(map(_ESC.__getitem__, bs))


def _token_re(t: Token) -> str:
    if t.kind is TokKind.LIT:
        return bytes_regex(t.lit)
    if t.kind is TokKind.ANY:
        return "."
    if t.kind is TokKind.NIBBLE:
        members = bytes(b for b in range(256) if b & t.mask == t.value)
        return "[" + bytes_regex(members) + "]"
    if t.kind is TokKind.GAP:
        return f".{{{t.lo},{t.hi}}}?"
    ordered = sorted(t.alts, key=len)  # shortest first: the earliest end is found first
    alts = "|".join(bytes_regex(a) for a in ordered)
    if t.negated:
        width = len(t.alts[0])
        return f"(?!{alts}).{{{width}}}"
    return f"(?:{alts})"


@dataclass(slots=True)
class Segment:
    """A bounded-length piece of a signature, verified by regex around its anchor."""

    tokens: tuple[Token, ...]
    fullword: bool
    nocase: bool
    anchor: bytes
    #: Range of the anchor's distance from the segment start: (min, max).
    anchor_pre: tuple[int, int]
    min_len: int
    max_len: int
    _src: str | None = field(default=None, repr=False, compare=False)
    _regex: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)
    _scan_rx: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_tokens(cls, tokens: list[Token], nocase: bool, fullword: bool) -> Segment:
        best_q, best_var = 0.0, 0
        anchor, anchor_pre = b"", (0, 0)
        pre_lo = pre_hi = 0
        for t in tokens:
            if t.kind is TokKind.LIT:
                q, var = anchor_quality(t.lit), pre_hi - pre_lo
                if q > best_q or (q == best_q and q > 0 and var < best_var):
                    best_q, best_var, anchor, anchor_pre = q, var, t.lit, (pre_lo, pre_hi)
            lo, hi = t.width()
            pre_lo += lo
            pre_hi += hi
        return cls(tuple(tokens), fullword, nocase, anchor, anchor_pre, pre_lo, pre_hi)

    @property
    def src(self) -> str:
        """Regex source (for a bytes pattern; ASCII only)."""
        src = self._src
        if src is None:
            src = "".join(_token_re(t) for t in self.tokens)
            if self.fullword:
                src = f"(?<![A-Za-z0-9]){src}(?![A-Za-z0-9])"
            self._src = src
        return src

    @property
    def flags(self) -> int:
        return re.DOTALL | (re.IGNORECASE if self.nocase else 0)

    @property
    def regex(self) -> re.Pattern[bytes]:
        """Compiled lazily: a 100k-signature database only compiles what actually gets hit."""
        rx = self._regex
        if rx is None:
            rx = self._regex = re.compile(self.src.encode("ascii"), self.flags)
        return rx

    @property
    def scan_regex(self) -> re.Pattern[bytes]:
        """Finds every start (overlapping too): for segments without an anchor."""
        rx = self._scan_rx
        if rx is None:
            rx = self._scan_rx = re.compile(b"(?=(" + self.src.encode("ascii") + b"))",
                                            self.flags)
        return rx


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
        parts = [self.segments[0].src]
        for gap, seg in zip(self.gaps, self.segments[1:], strict=True):
            parts.append(f".{{{gap.lo},}}?" if gap.lo else ".*?")
            parts.append(seg.src)
        return re.compile("".join(parts).encode("ascii"), self.segments[0].flags)


_HEX = frozenset("0123456789abcdefABCDEF")
_LIT_RUN = re.compile(r"(?:[0-9a-fA-F]{2})+")


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
        m = _LIT_RUN.match(text, i)
        if m is not None:
            out.append(Token(TokKind.LIT, lit=bytes.fromhex(m.group())))
            i = m.end()
            continue
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
            # ClamAV reads a maximum of 0 as "no maximum": {0}, {-0}, {0-0} are `*` and
            # {n-0} is {n-} (checked against clamscan 1.4).
            if "-" not in body:
                k = _parse_int(body, "gap")
                out.append(Token(TokKind.GAP, lo=k, hi=k) if k else Gap(0))
            else:
                a, b = body.split("-", 1)
                if a == "":
                    k = _parse_int(b, "gap")
                    out.append(Token(TokKind.GAP, lo=0, hi=k) if k else Gap(0))
                elif b == "":
                    out.append(Gap(_parse_int(a, "gap")))
                else:
                    lo, hi = _parse_int(a, "gap"), _parse_int(b, "gap")
                    if hi == 0:
                        out.append(Gap(lo))
                    elif lo > hi:
                        raise _err(f"bad gap {{{body}}}")
                    else:
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
            else:
                raise _err(f"bad hex {pair!r}")
    return out


def _widen(tokens: list[Token | Gap]) -> list[Token | Gap]:
    """`::w`: every byte followed by a NUL (UTF-16LE of ASCII)."""
    out: list[Token | Gap] = []
    zero = Token(TokKind.LIT, lit=b"\x00")
    for t in tokens:
        if isinstance(t, Gap) or t.kind is TokKind.GAP:
            out.append(t)
        elif t.kind is TokKind.LIT:
            out.append(Token(TokKind.LIT, lit=b"".join(bytes([b, 0]) for b in t.lit)))
        elif t.kind is TokKind.ALT:
            alts = tuple(b"".join(bytes([b, 0]) for b in a) for a in t.alts)
            out.append(Token(TokKind.ALT, alts=alts, negated=t.negated))
        else:
            out.extend((t, zero))
    return _merge_literals(out)


def _merge_literals(tokens: list[Token | Gap]) -> list[Token | Gap]:
    out: list[Token | Gap] = []
    for t in tokens:
        prev = out[-1] if out else None
        if (isinstance(t, Token) and t.kind is TokKind.LIT and isinstance(prev, Token)
                and prev.kind is TokKind.LIT):
            out[-1] = Token(TokKind.LIT, lit=prev.lit + t.lit)
        else:
            out.append(t)
    return out


#: Bytes normalised text can contain (textnorm: printable ASCII, lower case, single spaces).
NORMALISED_BYTES = frozenset(range(0x20, 0x7F)) - frozenset(range(0x41, 0x5B))


def could_match_normalised(pattern: HexPattern) -> bool:
    """False when a fixed byte of the pattern can never occur in normalised text: such
    signatures are left out of the normalised pass (random binary signatures, most of them)."""
    for seg in pattern.segments:
        for t in seg.tokens:
            if t.kind is TokKind.LIT:
                lit = t.lit.lower() if seg.nocase else t.lit
                if not NORMALISED_BYTES.issuperset(lit):
                    return False
    return True


def _segment(tokens: list[Token], mods: Modifiers) -> Segment:
    if tokens[0].kind is TokKind.GAP or tokens[-1].kind is TokKind.GAP:
        raise _err("a gap must sit between bytes")
    return Segment.from_tokens(tokens, mods.nocase, mods.fullword)


def compile_pattern(text: str, mods: Modifiers = NO_MODIFIERS) -> list[HexPattern]:
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

        prev: Token | Gap | None = None
        for t in toks:
            if isinstance(t, Gap) and isinstance(prev, Gap):
                raise _err("two unbounded gaps in a row")  # clamscan refuses `**` too
            prev = t
            if isinstance(t, Gap):
                # Bounded gaps next to an unbounded one fold into it: `{3}*` is `{3-}`.
                extra = 0
                while cur and cur[-1].kind is TokKind.GAP:
                    extra += cur.pop().lo
                if cur:
                    segs.append(_segment(cur, mods))
                    gaps.append(Gap(t.lo + extra))
                    cur = []
                elif gaps:
                    gaps[-1] = Gap(gaps[-1].lo + t.lo + extra)
                else:
                    raise _err("signature starts with an unbounded gap")
            elif not cur and gaps and t.kind is TokKind.GAP:
                gaps[-1] = Gap(gaps[-1].lo + t.lo)
            else:
                cur.append(t)
        if not cur:
            raise _err("signature ends with an unbounded gap")
        segs.append(_segment(cur, mods))
        patterns.append(HexPattern(tuple(segs), tuple(gaps), text))
    return patterns


# -- what the matcher needs, without compiling --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prefilter:
    """What the matcher takes from a pattern at load time: the segment whose anchor it looks
    for (-1: none worth it, the pattern is regex-scanned), that anchor, and whether the
    pattern can match normalised text (`could_match_normalised`)."""

    segment: int
    anchor: bytes
    nocase: bool
    normalisable: bool


def prefilter(pattern: HexPattern) -> Prefilter:
    """The most selective segment anchor of a compiled pattern: a match contains every
    segment, so one anchor is enough to prefilter; the others are verified by regex."""
    best, best_q = -1, 0.0
    for s, seg in enumerate(pattern.segments):
        q = anchor_quality(seg.anchor) if seg.anchor else 0.0
        if q > best_q:
            best, best_q = s, q
    seg = pattern.segments[best]
    anchor, nocase = (seg.anchor, seg.nocase) if best >= 0 else (b"", False)
    return Prefilter(best, anchor, nocase, could_match_normalised(pattern))


#: One token of a plain signature, matched whole: a hex run, one byte (`??`, nibbles),
#: alternatives, bounded gaps `{n-m}`, `{n}`, `{-n}`. No nested repeats: a text that is not
#: made of these is declined in linear time.
_QUICK_TOKEN = re.compile(
    r"(?:[0-9a-fA-F]{2})+|\?\?|[0-9a-fA-F]\?|\?[0-9a-fA-F]"
    r"|\((?:[0-9a-fA-F]{2})+(?:\|(?:[0-9a-fA-F]{2})+)+\)"
    r"|\{[0-9]+-[0-9]+\}|\{[0-9]+\}|\{-[0-9]+\}")
_UNBOUNDED = re.compile(r"\*|\{[0-9]+-\}")
_NORMALISED = bytes(sorted(NORMALISED_BYTES))


def quick_prefilter(text: str) -> Prefilter | None:
    """`prefilter(compile_pattern(text)[0])` for a plain signature (segments of the tokens
    above between `*` or `{n-}` gaps), read straight from the text without building tokens
    and segments: the bulk of a large .ndb file. None for anything else (an error to report,
    a zero-width or folded gap, `!(...)`): `compile_pattern` decides those.

    Why it looks as it does: this runs once per body signature of a cold load (300k in a
    ClamAV-sized database). A segment is one `findall` of whole tokens (no group tuples),
    which must tile it (their lengths add up to its length) in the order atom, then gap and
    atom; a regex `fullmatch` of that grammar first, then a tokenising pass, cost twice."""
    best, best_q, best_anchor, normalisable = -1, 0.0, b"", True
    parts = _UNBOUNDED.split(text) if "*" in text or "-}" in text else (text,)
    for s, part in enumerate(parts):
        toks = _QUICK_TOKEN.findall(part)
        if not toks or sum(map(len, toks)) != len(part):
            return None
        q_seg, var_seg, anchor = 0.0, 0, b""
        pre_lo = pre_hi = 0
        gap = True  # a gap only between two atoms
        for tok in toks:
            c = tok[0]
            if c == "{":
                if gap:
                    return None
                gap = True
                inner = tok[1:-1]
                if inner[0] == "-":  # `{-n}`: up to n
                    n = int(inner[1:])
                    if n == 0:
                        return None
                    pre_hi += n
                elif "-" in inner:
                    lo, _, hi = inner.partition("-")
                    a, b = int(lo), int(hi)
                    if b == 0 or a > b:
                        return None
                    pre_lo += a
                    pre_hi += b
                else:
                    n = int(inner)
                    if n == 0:
                        return None
                    pre_lo += n
                    pre_hi += n
                continue
            gap = False
            if c == "(":
                lens = [len(a) // 2 for a in tok[1:-1].split("|")]
                pre_lo += min(lens)
                pre_hi += max(lens)
            elif "?" in tok:
                pre_lo += 1
                pre_hi += 1
            else:
                raw = bytes.fromhex(tok)
                if normalisable and raw.translate(None, _NORMALISED):
                    normalisable = False
                q, var = anchor_quality(raw), pre_hi - pre_lo
                if q > q_seg or (q == q_seg and q > 0 and var < var_seg):
                    q_seg, var_seg, anchor = q, var, raw
                pre_lo += len(raw)
                pre_hi += len(raw)
        if gap:
            return None
        if q_seg > best_q:
            best, best_q, best_anchor = s, q_seg, anchor
    return Prefilter(best, best_anchor, False, normalisable)
