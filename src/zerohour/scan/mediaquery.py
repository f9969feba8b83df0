"""Media queries and `@supports` conditions, and the clients they tell apart (round 36).

A page's readings took every `@media` condition for true, or none, or decided them for a
printed page. A sender hid the pieces under `@media screen` and showed them under
`print`, or split them across `(max-width: 600px)` and `(min-width: 601px)`, or light and
dark: every phone, or every dark-mode client, saw the payload whole, and no reading did.

A client is one point in the space the page's queries test: a medium, a width and a
height, a resolution, and a value for each feature (`prefers-color-scheme`, `pointer`...).
`readings` takes one client per cell of that space the page's own breakpoints and values
cut out, so that every combination of conditions a real client can be in has one. What
this module cannot read (an unknown feature, a value or syntax it does not parse) is a
free condition that both holds and fails: more readings, never fewer. `@supports` is
Chromium's answer where this module knows it (`display`'s keywords, custom properties),
free elsewhere (round 35: `(foo-bar: 1)` read as false kept no reading of its drop). Past
`_MAX_CLIENTS` cells, or queries nested past `_MAX_NESTING`, the page is a limit finding.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.limits import MAX_RECURSION, MAX_SCAN_TIME

_MAX_NESTING = 64  # brackets and `not`s in one condition (Python's recursion)
_MAX_CLIENTS = 4096  # cells of the page's space: each decides every condition once
_TOO_DEEP = f"a media or supports condition nested more than {_MAX_NESTING} deep"
_MAX_DECISIONS = 200_000  # conditions decided for every client, in all
_TOO_MANY = f"style sheets whose conditions tell apart more than {_MAX_CLIENTS} clients"
MAX_WAYS = 4096  # ways to decide a page's conditions, all groups together
_TOO_MANY_WAYS = f"style sheets whose conditions are decided more than {MAX_WAYS} ways"

#: Features with a size: their breakpoints cut the axis (px; dppx for resolution).
_AXES = {b"width": b"width", b"device-width": b"width", b"height": b"height",
         b"device-height": b"height", b"resolution": b"resolution",
         b"-webkit-device-pixel-ratio": b"resolution"}
#: Features with a set of values, the first the printed page's.
_KINDS: dict[bytes, tuple[bytes, ...]] = {
    b"prefers-color-scheme": (b"light", b"dark"),
    b"orientation": (b"portrait", b"landscape"),
    b"hover": (b"none", b"hover"), b"any-hover": (b"none", b"hover"),
    b"pointer": (b"none", b"coarse", b"fine"), b"any-pointer": (b"none", b"coarse", b"fine"),
    b"prefers-reduced-motion": (b"no-preference", b"reduce"),
    b"prefers-reduced-transparency": (b"no-preference", b"reduce"),
    b"prefers-contrast": (b"no-preference", b"more", b"less", b"custom"),
    b"forced-colors": (b"none", b"active"),
    b"display-mode": (b"browser", b"fullscreen", b"standalone", b"minimal-ui",
                      b"picture-in-picture", b"window-controls-overlay"),
    b"scripting": (b"enabled", b"none", b"initial-only"),
    b"dynamic-range": (b"standard", b"high"),
    b"overflow-block": (b"paged", b"none", b"scroll"), b"overflow-inline": (b"none", b"scroll"),
    b"update": (b"none", b"slow", b"fast"),
}  # (features Chromium does not have, `scan`, `inverted-colors`...: free, round 37)
_NO = (b"none", b"no-preference", b"0")  # (a feature alone, `(hover)`: true unless these)
#: The printed page (Letter, portrait, Chromium's default margins), as `htmlprint` took it.
_PRINT: dict[bytes, bytes | float] = {b"medium": b"print", b"width": 740.0, b"height": 980.0,
                                      b"resolution": 1.0}

_LENGTH = re.compile(rb"([+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)([a-z%]*)$")  # (`0 px`,
# `0.px`: a number, then a word: invalid, round 37)
_UNITS = {b"": 1.0, b"px": 1.0, b"em": 16.0, b"rem": 16.0, b"in": 96.0, b"cm": 96 / 2.54,
          b"mm": 96 / 25.4, b"q": 96 / 101.6, b"pt": 4 / 3, b"pc": 16.0, b"dppx": 1.0,
          b"x": 1.0, b"dpi": 1 / 96, b"dpcm": 2.54 / 96}
_RANGE = re.compile(rb"\s*(<=|>=|<|>|=)\s*")
_OPS = {b"<": float.__lt__, b"<=": float.__le__, b">": float.__gt__, b">=": float.__ge__,
        b"=": float.__eq__}
_FLIP = {b"<": b">", b"<=": b">=", b">": b"<", b">=": b"<=", b"=": b"="}
_TYPES = (b"all", b"screen", b"print", b"tv", b"speech", b"handheld", b"projection", b"tty",
          b"braille", b"embossed", b"aural")

@dataclass(frozen=True, slots=True)
class Type:
    """`screen`, `print`, `all`: a medium."""

    medium: bytes


@dataclass(frozen=True, slots=True)
class Size:
    """A size on an axis against a breakpoint (`min-width: 600px` is `width >= 600`)."""

    axis: bytes
    op: bytes
    value: float


@dataclass(frozen=True, slots=True)
class Kind:
    """A feature with a value (`prefers-color-scheme: dark`); alone (`(hover)`) if None."""

    name: bytes
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Free:
    """What this module cannot read: holds for some clients and fails for others."""

    text: bytes


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


@dataclass(frozen=True, slots=True)
class AllOf:
    """`and` of the nodes (an empty one always holds)."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """`or` of the nodes: a media query list, or `(a) or (b)`."""

    nodes: tuple[Node, ...]


Node = Type | Size | Kind | Free | Not | AllOf | AnyOf


#: The printed page's values (every condition this module cannot read taken as holding).
PRINTED: dict[bytes, bytes | float] = {**_PRINT, **{k: v[0] for k, v in _KINDS.items()}}
EVERY = frozenset({b"*"})


def holds(query: bytes) -> bool:
    """Whether a media query list holds on the printed page."""
    return evaluate(parse(query), PRINTED, EVERY)


def parse(query: bytes) -> Node:
    """A media query list as a condition (`Node`)."""
    return _parse_media(query) if len(query) <= _CACHED else _parse_media.__wrapped__(query)


_CACHED = 256  # (conditions longer are parsed again: a sender's may be megabytes)


@functools.lru_cache(maxsize=4096)
def _parse_media(query: bytes) -> Node:
    parts = _split(query.lower().strip(), 0x2C)
    if len(parts) == 1:
        return _query(parts[0].strip())
    return AnyOf(tuple(_query(p.strip()) for p in parts))


def readings(nodes: list[Node]) -> list[tuple[bool, ...]]:
    """Each distinct way the clients of the space `nodes` cut out (see the module's
    docstring) decide them: one truth per node, in order. Nodes that test no axis or
    feature in common are decided apart (a framework's width, dark, motion and hover rules:
    thousands of cells together, a few each), and their ways combined."""
    keys = [_keys(node) for node in nodes]
    group = list(range(len(nodes)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i
    owner: dict[bytes, int] = {}
    for i, mine in enumerate(keys):
        for key in mine:
            if key in owner:
                group[root(i)] = root(owner[key])
            else:
                owner[key] = i
    members: dict[int, list[int]] = {}
    for i in range(len(nodes)):
        members.setdefault(root(i), []).append(i)
    budget = [_MAX_DECISIONS]  # (for all groups together: 40 groups of 12 free conditions)
    parts = [(ids, _ways([nodes[i] for i in ids], budget)) for ids in members.values()]
    count = 1
    for _, ways in parts:
        count *= len(ways)
    if count > MAX_WAYS:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_WAYS)
    out: list[tuple[bool, ...]] = []
    for combo in itertools.product(*(ways for _, ways in parts)):
        way = [False] * len(nodes)
        for (ids, _), truths in zip(parts, combo, strict=True):
            for i, truth in zip(ids, truths, strict=True):
                way[i] = truth
        out.append(tuple(way))
    return out


def _keys(node: Node) -> set[bytes]:
    """What `node` tests: axes, features, free conditions (the medium, for a type)."""
    cuts: dict[bytes, set[float]] = {}
    kinds: dict[bytes, set[bytes]] = {}
    free: set[bytes] = set()
    _atoms(node, cuts, kinds, free)
    return {*cuts, *kinds, *(b"?" + f for f in free)} | ({b"medium"} if _typed(node) else set())


def _typed(node: Node) -> bool:
    if isinstance(node, Type):
        return True
    if isinstance(node, Not):
        return _typed(node.node)
    if isinstance(node, (AllOf, AnyOf)):
        return any(_typed(c) for c in node.nodes)
    return False


def _ways(nodes: list[Node], budget: list[int]) -> list[tuple[bool, ...]]:
    """The distinct ways the cells of one group's space decide its nodes."""
    cuts: dict[bytes, set[float]] = {}
    kinds: dict[bytes, set[bytes]] = {}
    free: set[bytes] = set()
    for node in nodes:
        _atoms(node, cuts, kinds, free)
    choices: list[tuple[bytes, tuple[bytes | float, ...]]] = [
        (b"medium", (b"screen", b"print"))] if any(map(_typed, nodes)) else []
    choices += [(axis, tuple(_points(points))) for axis, points in sorted(cuts.items())]
    choices += [(name, tuple(dict.fromkeys((*_KINDS.get(name, ()), *sorted(values)))))
                for name, values in sorted(kinds.items())]
    frees = sorted(free)
    count = 2 ** min(len(frees), 64)
    for _, values in choices:
        count *= len(values)
    budget[0] -= count * len(nodes)
    if count > _MAX_CLIENTS or budget[0] < 0:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY)
    names = [name for name, _ in choices]
    seen: dict[tuple[bool, ...], None] = {}
    for combo in itertools.product(*(values for _, values in choices)):
        client = dict(zip(names, combo, strict=True))
        for bits in itertools.product((False, True), repeat=len(frees)):
            held = frozenset(f for f, b in zip(frees, bits, strict=True) if b)
            seen[tuple(evaluate(node, client, held) for node in nodes)] = None
    return list(seen)


def _points(cuts: set[float]) -> list[float]:
    """A value in each interval the breakpoints `cuts` make, and each breakpoint."""
    ordered = sorted(cuts)
    out = [ordered[0] - 1.0]
    for a, b in itertools.pairwise(ordered):
        out += [a, (a + b) / 2]
    return [*out, ordered[-1], ordered[-1] + 1.0]


def _atoms(node: Node, cuts: dict[bytes, set[float]], kinds: dict[bytes, set[bytes]],
           free: set[bytes]) -> None:
    if isinstance(node, Size):
        cuts.setdefault(node.axis, set()).add(node.value)
    elif isinstance(node, Kind):
        kinds.setdefault(node.name, set()).update(() if node.value is None else (node.value,))
    elif isinstance(node, Free):
        free.add(node.text)
    elif isinstance(node, Not):
        _atoms(node.node, cuts, kinds, free)
    elif isinstance(node, (AllOf, AnyOf)):
        for child in node.nodes:
            _atoms(child, cuts, kinds, free)


def evaluate(node: Node, values: dict[bytes, bytes | float], free: frozenset[bytes]) -> bool:
    """Whether `node` holds for a client of these `values` and `free` conditions."""
    if isinstance(node, Type):
        return node.medium == b"all" or node.medium == values.get(b"medium")
    if isinstance(node, Size):
        value = values.get(node.axis, _PRINT[node.axis])  # (an axis not cut: the printed page's)
        return _OPS[node.op](float(value), node.value)
    if isinstance(node, Kind):
        kind = values.get(node.name, _KINDS.get(node.name, (b"",))[0])
        return kind not in _NO if node.value is None else kind == node.value
    if isinstance(node, Free):
        return b"*" in free or node.text in free
    if isinstance(node, Not):
        return not evaluate(node.node, values, free)
    if isinstance(node, AllOf):
        return all(evaluate(c, values, free) for c in node.nodes)
    return any(evaluate(c, values, free) for c in node.nodes)


def _query(text: bytes) -> Node:
    """One media query: `[not|only] type [and condition]`, or a condition."""
    if text.startswith(b"(") or (text.startswith(b"not") and text[3:4] in _BLANK and
                                 text[3:].lstrip()[:1] == b"("):
        return _condition(text, 0)
    words = text.split(None, 1)
    negated = words[:1] == [b"not"]
    if negated or words[:1] == [b"only"]:
        words = words[1].split(None, 1) if len(words) > 1 else []
    if not words or words[0] not in _TYPES:
        return Free(text)  # (an empty query, a word this module does not read as a type)
    node: Node = Type(words[0])
    rest = words[1].strip() if len(words) > 1 else b""
    if rest:
        if not rest.startswith(b"and") or rest[3:4] not in _BLANK:
            return Free(text)
        if len(split_words(rest[3:].strip(), b"or")) > 1:
            return Free(text)  # (`screen and (a) or (b)`: no `or` after a type; round 36)
        node = AllOf((node, _condition(rest[3:], 0)))
    return Not(node) if negated else node


def _condition(text: bytes, depth: int, leaf: Callable[[bytes], Node] | None = None) -> Node:
    """`not C`, or `(..)` joined by `and` or by `or` (Media Queries 4, CSS Conditional 3);
    `leaf` reads what a bracket holds (a media feature by default)."""
    if depth > _MAX_NESTING:
        raise ScanLimitExceeded(MAX_RECURSION, _TOO_DEEP)
    text = text.strip()
    ands, ors = split_words(text, b"and"), split_words(text, b"or")
    if len(ands) > 1 and len(ors) > 1:
        return Free(text)  # (`a and b or c`: invalid, Chromium's "not all"; round 36)
    if text.startswith(b"not") and text[3:4] in _BLANK:
        if len(ands) > 1 or len(ors) > 1:
            return Free(text)  # (`not a and b`: invalid too)
        return Not(_condition(text[3:], depth + 1, leaf))
    for word, parts in ((b"and", ands), (b"or", ors)):
        if len(parts) > 1:
            nodes = tuple(_condition(p, depth + 1, leaf) for p in parts)
            return AllOf(nodes) if word == b"and" else AnyOf(nodes)
    if not (text.startswith(b"(") and text.endswith(b")")) or len(_split(text, None)) != 1:
        return Free(text)  # (`selector(..)`, `font-tech(..)`, what this module does not read)
    inner = text[1:-1].strip()
    if inner.startswith(b"(") or (inner.startswith(b"not") and inner[3:4] in _BLANK):
        return _condition(inner, depth + 1, leaf)
    return (leaf or _feature)(inner)


_BLANK = (b" ", b"\t", b"\n", b"\r", b"\f")


def parse_supports(condition: bytes) -> Node:
    """A `@supports` condition as a `Node`: a custom property, or `display` with keywords
    Chromium has, holds; what else a declaration tests (a property, its value's syntax) is
    free (Chromium's answer differs by property and value: `(width: banana)` fails)."""
    if len(condition) > _CACHED:
        return _condition(condition.lower(), 0, _declaration)
    return _parse_supports(condition)


@functools.lru_cache(maxsize=4096)
def _parse_supports(condition: bytes) -> Node:
    return _condition(condition.lower(), 0, _declaration)


def _declaration(text: bytes) -> Node:
    prop, colon, value = text.partition(b":")
    prop, value = prop.strip(), value.strip()
    if colon and _CUSTOM.fullmatch(prop) and _PLAIN_VALUE.fullmatch(value):
        return AllOf(())  # (`--: a`, `url(a b)`, `!important !important`: free, round 37)
    if colon and prop == b"display" and value in _DISPLAYS:  # (one keyword: `flex flex` fails)
        return AllOf(())
    return Free(b"@supports " + text)


_CUSTOM = re.compile(rb"--[\w-]+")
_PLAIN_VALUE = re.compile(rb"[\w\s.,#%+-]*")
_DISPLAYS = frozenset(
    b"""none block inline inline-block flex inline-flex grid inline-grid contents table
    table-row table-cell table-caption table-column table-row-group table-header-group
    table-footer-group table-column-group inline-table list-item flow-root flow ruby math
    inherit initial unset revert revert-layer -webkit-box -webkit-inline-box""".split())


def _feature(text: bytes) -> Node:
    """`(name)`, `(name: value)` or a range `(400px <= width < 800px)`."""
    name, colon, value = text.partition(b":")
    name, value = name.strip(), value.strip()
    if colon:
        prefix, base = b"", name
        if name.startswith((b"min-", b"max-")):
            prefix, base = name[:4], name[4:]
        elif name.startswith((b"-webkit-min-", b"-webkit-max-")):
            prefix, base = name[8:12], b"-webkit-" + name[12:]
        if base in _AXES:
            px = _size(value, base)
            op = {b"min-": b">=", b"max-": b"<="}.get(prefix, b"=")
            return Free(text) if px is None else Size(_AXES[base], op, px)
        if name in _KINDS and value in _KINDS[name]:
            return Kind(name, value)
        return Free(text)  # (`prefers-color-scheme: banana`: unknown, not a client; round 37)
    pieces = [p.strip() for p in _RANGE.split(text)]
    if len(pieces) == 1:
        return Kind(name, None) if name in _KINDS else Free(text)
    if len(pieces) == 3:  # name op value, or value op name
        left, op, right = pieces
        if left in _AXES and (px := _size(right, left)) is not None:
            return Size(_AXES[left], op, px)
        if right in _AXES and (px := _size(left, right)) is not None:
            return Size(_AXES[right], _FLIP[op], px)
    elif len(pieces) == 5 and pieces[2] in _AXES and (pieces[1][:1] == pieces[3][:1] != b"="):
        # (value op name op value, both ops one way: `800px > width < 300px` is invalid)
        low, high = _size(pieces[0], pieces[2]), _size(pieces[4], pieces[2])
        if low is not None and high is not None:
            axis = _AXES[pieces[2]]
            return AllOf((Size(axis, _FLIP[pieces[1]], low), Size(axis, pieces[3], high)))
    return Free(text)


def _size(value: bytes, feature: bytes) -> float | None:
    """A breakpoint in px (dppx for a resolution), None if Chromium would not read it for
    `feature` (round 36: a unitless `max-width: 99999` is invalid, not 99999 px)."""
    m = _LENGTH.match(value.strip())
    if m is None:
        return None
    number, unit = float(m.group(1)), m.group(2)
    if not math.isfinite(number) or abs(number) > 1e12:
        return None  # (`1e400px`: read as infinite, held by every width; Chromium: none)
    if feature == b"-webkit-device-pixel-ratio":
        return number if not unit else None
    if feature == b"resolution":
        return number * _UNITS[unit] if unit in _RESOLUTIONS else None
    if unit in _LENGTHS or (not unit and number == 0):
        return number * _UNITS[unit]
    return None


_LENGTHS = frozenset((b"px", b"em", b"rem", b"in", b"cm", b"mm", b"q", b"pt", b"pc"))
_RESOLUTIONS = frozenset((b"dppx", b"x", b"dpi", b"dpcm"))


_BRACKET_OR_COMMA = re.compile(rb"[(),]")
_BRACKET_OR_WORD = re.compile(rb"[()]|(?<=[\s)])(and|or)(?=\s)")


def _split(text: bytes, sep: int | None) -> list[bytes]:
    """`text` split at `sep` (a comma) outside brackets; None: into its top-level bracket
    groups and what lies between them. (A search for brackets, not a loop over bytes: a
    sender's condition may be a megabyte long.)"""
    parts, depth, start = [], 0, 0
    for m in _BRACKET_OR_COMMA.finditer(text):
        c, i = text[m.start()], m.start()
        if c == 0x28:
            if depth == 0 and sep is None and text[start:i].strip():
                parts.append(text[start:i])
                start = i
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0 and sep is None:
                parts.append(text[start : i + 1])
                start = i + 1
        elif depth == 0 and sep is not None:
            parts.append(text[start:i])
            start = i + 1
    if sep is not None or text[start:].strip():
        parts.append(text[start:])
    return parts or [text]


def split_words(text: bytes, word: bytes) -> list[bytes]:
    """`text` split at the word `word` (`and`, `or`) outside brackets."""
    parts, depth, start = [], 0, 0
    for m in _BRACKET_OR_WORD.finditer(text):
        c = text[m.start()]
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
        elif depth == 0 and m.group(1) == word:
            parts.append(text[start : m.start()])
            start = m.end()
    return [*parts, text[start:]] if parts else [text]
