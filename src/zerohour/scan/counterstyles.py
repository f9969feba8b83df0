"""CSS counters as text: the counter styles of `counter()`, `counters()` and list markers.

Round 18: a page writes base64 with counters (`content: counter(n, upper-alpha)`) or with
counter styles of its own (`@counter-style b {system: fixed; symbols: "T" "V" "q"}`, a
cyclic style whose one symbol is a piece of the file, additive symbols that add up to
pieces); a browser shows the characters, a copy of the page's text holds them. The systems
of CSS Counter Styles 3 (cyclic, fixed, symbolic, alphabetic, numeric, additive, extends),
their `range`, `pad`, `negative` and `fallback`, and the predefined styles a page names
most (decimal, the Latin and Greek letters, roman numerals, the bullets). A representation
that repeats a symbol (symbolic, additive, `pad`) past `_SYMBOLS` times is the fallback's,
as in Chromium; one that repeats symbols to more than `_MAX_TEXT` characters within that,
which Chromium writes, is a limit finding (a bound on what one counter writes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.cssvalues import split
from zerohour.scan.limits import MAX_SCAN_TIME

_MAX_TEXT = 1024
_TOO_LONG = f"a counter representation repeating symbols to more than {_MAX_TEXT} characters"
#: Symbols a symbolic or additive representation has at most in Chromium; more is the
#: fallback's (a `symbolic "-"` style writing 121 dashes where Chromium writes its fallback,
#: a fixed style whose symbol was a piece of the base64, hid the pieces). A `pad` wider
#: than this is the fallback's too (Chromium 120: `pad: 121 "-"` writes the fallback).
_SYMBOLS = 120
#: Styles of one fallback chain followed at most (Chromium follows it to its end, a loop
#: ending in `decimal`; a page's chains are a style or two): longer is a limit finding.
_MAX_FALLBACKS = 1024
_TOO_MANY_FALLBACKS = f"a counter style fallback chain longer than {_MAX_FALLBACKS}"
_MAX_VALUE = (1 << 31) - 1  # counters are 32-bit integers in browsers (values clamp)
_STRING = re.compile(rb"\"((?:[^\"\\]|\\.)*)\"?|'((?:[^'\\]|\\.)*)'?", re.S)
_DESCRIPTOR = re.compile(rb"(?<![\w-])([\w-]++)\s*:\s*"  # (a name from its start, read once)
                         rb"((?:[^;\"']|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')*)", re.S)
_INTEGER = re.compile(rb"[-+]?\d+$")


@dataclass(frozen=True, slots=True)
class Style:
    system: bytes = b"symbolic"
    symbols: tuple[bytes, ...] = ()
    additive: tuple[tuple[int, bytes], ...] = ()
    first: int = 1  # (`system: fixed N`)
    negative: tuple[bytes, bytes] = (b"-", b"")
    prefix: bytes = b""
    suffix: bytes = b". "
    pad: tuple[int, bytes] = (0, b"")
    ranges: tuple[tuple[int, int], ...] | None = None  # None: the system's own
    fallback: bytes = b"decimal"


def _letters(first: str, last: str) -> tuple[bytes, ...]:
    return tuple(chr(c).encode() for c in range(ord(first), ord(last) + 1))


_ROMAN = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
          (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
PREDEFINED: dict[bytes, Style] = {
    b"decimal": Style(b"numeric", _letters("0", "9")),
    b"decimal-leading-zero": Style(b"numeric", _letters("0", "9"), pad=(2, b"0")),
    b"lower-alpha": Style(b"alphabetic", _letters("a", "z")),
    b"upper-alpha": Style(b"alphabetic", _letters("A", "Z")),
    b"lower-greek": Style(b"alphabetic", tuple(c.encode() for c in "αβγδεζηθικλμνξοπρστυφχψω")),
    b"upper-roman": Style(b"additive", additive=tuple((w, s.encode()) for w, s in _ROMAN),
                          ranges=((1, 3999),)),
    b"lower-roman": Style(b"additive", additive=tuple((w, s.lower().encode()) for w, s in _ROMAN),
                          ranges=((1, 3999),)),
    b"disc": Style(b"cyclic", ("\u2022".encode(),), suffix=b" "),
    b"circle": Style(b"cyclic", ("\u25e6".encode(),), suffix=b" "),
    b"square": Style(b"cyclic", ("\u25aa".encode(),), suffix=b" "),
    b"disclosure-open": Style(b"cyclic", ("\u25be".encode(),), suffix=b" "),
    b"disclosure-closed": Style(b"cyclic", ("\u25b8".encode(),), suffix=b" "),
}
PREDEFINED[b"lower-latin"] = PREDEFINED[b"lower-alpha"]
PREDEFINED[b"upper-latin"] = PREDEFINED[b"upper-alpha"]


Unescape = Callable[[bytes], bytes] | None


def _symbol(token: bytes, unescape: Unescape) -> bytes | None:
    """A symbol: a string (escapes resolved) or an identifier; an image is no text."""
    m = _STRING.fullmatch(token)
    if m is not None:
        text = m.group(1) if m.group(1) is not None else m.group(2) or b""
        return unescape(text) if unescape is not None else text
    if b"(" in token:
        return b""
    return unescape(token) if unescape is not None else token


def _tokens(value: bytes) -> list[bytes]:
    """A descriptor's value as tokens: strings whole, else split at blanks."""
    out: list[bytes] = []
    at = 0
    for m in _STRING.finditer(value):
        out += split(value[at : m.start()]) if value[at : m.start()].strip() else []
        out.append(m.group())
        at = m.end()
    if value[at:].strip():
        out += split(value[at:])
    return out


def _int(token: bytes) -> int | None:
    token = token.strip()
    if token.lower() == b"infinite":
        return None
    return int(token) if _INTEGER.match(token) else None


def parse(declarations: bytes, unescape: Unescape = None,
          known: dict[bytes, Style] | None = None) -> Style | None:
    """An `@counter-style` block's descriptors as a style (None when it is not valid);
    `known`: the styles an `extends` system may name; `unescape`: CSS escapes resolved in
    strings."""
    found = {m.group(1).lower(): m.group(2).strip() for m in _DESCRIPTOR.finditer(declarations)}
    words = (found.get(b"system") or b"symbolic").split()
    system = words[0].lower() if words else b"symbolic"
    style = Style()
    if system == b"extends":
        if len(words) < 2:
            return None
        base = (known or {}).get(words[1]) or PREDEFINED.get(words[1].lower())
        style = base if base is not None else PREDEFINED[b"decimal"]
    elif system in (b"cyclic", b"fixed", b"symbolic", b"alphabetic", b"numeric", b"additive"):
        style = Style(system)
        if system == b"fixed" and len(words) > 1:
            first = _int(words[1])
            style = replace(style, first=first if first is not None else 1)
        if system == b"additive":
            pairs: list[tuple[int, bytes]] = []
            for item in (found.get(b"additive-symbols") or b"").split(b","):
                parts = _tokens(item)
                weights = [_int(p) for p in parts if _INTEGER.match(p.strip())]
                rest = [p for p in parts if not _INTEGER.match(p.strip())]
                if len(weights) == 1 and weights[0] is not None and weights[0] >= 0 and rest:
                    pairs.append((weights[0], _symbol(rest[0], unescape) or b""))
            if not pairs:
                return None
            style = replace(style, additive=tuple(pairs))
        else:
            symbols = tuple(s for s in (_symbol(t, unescape) for t in _tokens(
                found.get(b"symbols") or b"")) if s is not None)
            if not symbols or (system in (b"alphabetic", b"numeric") and len(symbols) < 2):
                return None
            style = replace(style, symbols=symbols)
    else:
        return None
    if b"negative" in found:
        sign = [_symbol(t, unescape) or b"" for t in _tokens(found[b"negative"])]
        style = replace(style, negative=(sign[0] if sign else b"-", sign[1] if len(sign) > 1
                                         else b""))
    if b"prefix" in found:
        got = [_symbol(t, unescape) or b"" for t in _tokens(found[b"prefix"])]
        style = replace(style, prefix=got[0] if got else b"")
    if b"suffix" in found:
        got = [_symbol(t, unescape) or b"" for t in _tokens(found[b"suffix"])]
        style = replace(style, suffix=got[0] if got else b"")
    if b"pad" in found:
        parts = _tokens(found[b"pad"])
        width = next((_int(p) for p in parts if _INTEGER.match(p.strip())), None)
        sym = next((_symbol(p, unescape) for p in parts if not _INTEGER.match(p.strip())), None)
        if width is not None and width >= 0 and sym is not None:
            style = replace(style, pad=(min(width, _SYMBOLS + 1), sym))
    if b"range" in found and found[b"range"].strip().lower() != b"auto":
        ranges = []
        for item in found[b"range"].split(b","):
            ends = item.split()
            if len(ends) == 2:
                low, high = (_int(e) if e.lower() != b"infinite" else None for e in ends)
                ranges.append((-_MAX_VALUE - 1 if low is None else low,
                               _MAX_VALUE if high is None else high))
        style = replace(style, ranges=tuple(ranges))
    if b"fallback" in found and found[b"fallback"].strip():
        style = replace(style, fallback=found[b"fallback"].split()[0].lower())
    return style


def _in_range(style: Style, value: int) -> bool:
    if style.ranges is not None:
        return any(low <= value <= high for low, high in style.ranges)
    if style.system in (b"symbolic", b"alphabetic"):
        return value >= 1
    if style.system == b"additive":
        return value >= 0
    return True


def _initial(style: Style, value: int) -> bytes | None:
    """The representation of `value` by the style's system alone (None: it has none)."""
    symbols, n = style.symbols, len(style.symbols)
    if style.system == b"cyclic":
        return symbols[(value - 1) % n]
    if style.system == b"fixed":
        return symbols[value - style.first] if 0 <= value - style.first < n else None
    if style.system == b"symbolic":
        if value < 1:
            return None
        times = (value - 1) // n + 1
        symbol = symbols[(value - 1) % n]
        if times > _SYMBOLS:
            return None
        if times > 1 and times * len(symbol) > _MAX_TEXT:  # (Chromium writes it: bound 5,
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_LONG)  # the fallback was read)
        return symbol * times
    if style.system == b"alphabetic":
        if value < 1:
            return None
        out: list[bytes] = []
        while value > 0 and len(out) <= _MAX_TEXT:
            value -= 1
            out.append(symbols[value % n])
            value //= n
        return b"".join(reversed(out))
    if style.system == b"numeric":
        if value == 0:
            return symbols[0]
        digits: list[bytes] = []
        while value > 0:
            digits.append(symbols[value % n])
            value //= n
        return b"".join(reversed(digits))
    if style.system == b"additive":
        if value == 0:
            zero = [s for w, s in style.additive if w == 0]
            return zero[0] if zero else None
        parts: list[bytes] = []
        size = count = 0
        for weight, symbol in style.additive:
            if weight <= 0:
                continue
            times = value // weight
            if times:
                size += times * len(symbol)
                count += times
                if count > _SYMBOLS:
                    return None
                if size > _MAX_TEXT and count > 1:  # (as symbolic's)
                    raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_LONG)
                parts.append(symbol * times)
                value -= times * weight
            if value == 0:
                return b"".join(parts)
        return None
    return None


def represent(value: int, name: bytes, styles: dict[bytes, Style]) -> bytes:
    """The text of `counter(x, name)` for a counter of `value` (no prefix or suffix): the
    first style of the fallback chain that represents it, as Chromium follows it: to its end
    however long (round 36: after 9 fallbacks, nothing was written where Chromium wrote the
    11th style's piece), `decimal` when it loops back to a style already tried or names no
    style; longer than `_MAX_FALLBACKS` is a limit finding."""
    value = max(-_MAX_VALUE - 1, min(_MAX_VALUE, value))
    tried: set[bytes] = set()
    while True:
        if name.lower() == b"none":
            return b""
        style = styles.get(name) or PREDEFINED.get(name.lower())
        if style is None or name in tried:
            style = PREDEFINED[b"decimal"]
        elif len(tried) >= _MAX_FALLBACKS:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_FALLBACKS)
        tried.add(name)
        text = _own(value, style)
        if text is not None:
            return text
        name = style.fallback


def _own(value: int, style: Style) -> bytes | None:
    """`value` in `style` itself (None: out of its range, or no representation: its
    fallback's)."""
    if not _in_range(style, value):
        return None
    negative = value < 0 and style.system in (b"symbolic", b"alphabetic", b"numeric",
                                              b"additive")
    text = _initial(style, -value if negative else value)
    if text is None:
        return None
    width, symbol = style.pad
    if width > _SYMBOLS:
        return None  # (Chromium: the fallback's)
    shown = len(text.decode("utf-8", "replace")) + (len(style.negative[0] + style.negative[1])
                                                    if negative else 0)
    if width > shown and symbol:
        if (width - shown) * len(symbol) > _MAX_TEXT:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_LONG)
        text = symbol * (width - shown) + text
    if negative:
        text = style.negative[0] + text + style.negative[1]
    return text


def marker(value: int, name: bytes, styles: dict[bytes, Style]) -> bytes:
    """A list marker in a counter style (its prefix and suffix around the counter)."""
    style = styles.get(name) or PREDEFINED.get(name.lower())
    if style is None:
        return b""
    return style.prefix + represent(value, name, styles) + style.suffix


def sheet_styles(rules: list[tuple[bytes, bytes]], unescape: Unescape = None
                 ) -> dict[bytes, Style]:
    """The page's `@counter-style NAME {...}` rules (prelude, descriptors) as styles, by
    name (the last valid rule of a name wins). `extends` is resolved as Chromium does,
    however long the chain and in whatever order its rules are written (round 36: two
    passes were made, a style extending one extending one ... defined after it read as
    decimal), a cycle of them extending `decimal`."""
    written: dict[bytes, list[bytes]] = {}
    for prelude, declarations in rules:
        words = prelude.split()
        if len(words) != 2 or words[1].lower() in (b"none", b"decimal", b"disc",
                                                    b"inherit", b"initial", b"unset"):
            continue
        written.setdefault(words[1], []).append(declarations)
    out: dict[bytes, Style] = {}
    done: set[bytes] = set()  # (resolved: in `out`, or no valid rule)

    def resolve(link: bytes, known: dict[bytes, Style]) -> None:
        done.add(link)
        style = _parsed(written[link], unescape, known)
        if style is not None:
            out[link] = style

    for name in written:
        chain = [name]  # names to resolve, each extending the next (resolved last first)
        on_chain = {name}
        while chain[-1] not in done:
            base = _extended(written[chain[-1]], unescape)
            if base is None or base in done or base not in written:
                break
            if base in on_chain:  # a cycle: its styles extend decimal
                for looped in chain[chain.index(base):]:
                    resolve(looped, {})
                break
            chain.append(base)
            on_chain.add(base)
        for link in reversed(chain):
            if link not in done:
                resolve(link, out)
    return out


def _extended(declarations: list[bytes], unescape: Unescape) -> bytes | None:
    """The name a style's rule that wins (its last valid one, as `_parsed` takes it)
    `extends`; None: another system (the review: the last rule was read even when invalid,
    and the valid one's base was resolved after it, as decimal)."""
    for text in reversed(declarations):
        if parse(text, unescape, {}) is None:
            continue
        for m in _DESCRIPTOR.finditer(text):
            if m.group(1).lower() == b"system":
                words = m.group(2).split()
                if len(words) >= 2 and words[0].lower() == b"extends":
                    return words[1]
        return None
    return None


def _parsed(declarations: list[bytes], unescape: Unescape, known: dict[bytes, Style]
            ) -> Style | None:
    """The last of a name's rules that is valid."""
    for text in reversed(declarations):
        style = parse(text, unescape, known)
        if style is not None:
            return style
    return None
