"""CSS values the layout reading (`htmllayout`) computes with, as Chromium reads them.

Lengths in pixels (`calc()` too), font sizes, the offsets `transform: translate*()` and the
`translate` property give a box, shorthands split into the longhands the cascade compares
(`inset`, `margin`, `grid-area`, `grid-template`...), and a grid: its track lists with their
line names and named areas, an item's line, and the auto-placement that puts the items
without a definite place (round 17). Rough where a browser needs fonts: the page is taken to
be in a monospace font (1ch = 0.6em), as pages that spell a file in pieces are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.limits import MAX_SCAN_TIME

#: A page's width when it says none (an A4/Letter page less margins, in CSS px).
PAGE_WIDTH = 700.0
CH = 0.6  # 1ch in em (monospace)
_ABSOLUTE = {b"px": 1.0, b"pt": 4 / 3, b"pc": 16.0, b"in": 96.0, b"cm": 96 / 2.54,
             b"mm": 96 / 25.4, b"q": 96 / 101.6, b"vw": 8.0, b"vh": 10.5, b"vmin": 8.0,
             b"vmax": 10.5, b"rem": 16.0, b"rlh": 19.2}
_FONT_KEYWORDS = {b"xx-small": 9.0, b"x-small": 10.0, b"small": 13.0, b"medium": 16.0,
                  b"large": 18.0, b"x-large": 24.0, b"xx-large": 32.0, b"xxx-large": 48.0}
_NUMBER = re.compile(rb"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)([a-z%]*)", re.I)
_OPERATOR = re.compile(rb"\s*([-+*/(),])")
_FUNCTION = re.compile(rb"\s*(calc|min|max|clamp|-webkit-calc|abs|sign|round|mod|rem|pow|sqrt|"
                       rb"hypot|exp|log|sin|cos|tan|asin|acos|atan|atan2)\(", re.I)
#: calc()'s constants
_CONSTANT = re.compile(rb"\s*(pi|e|infinity|-infinity)(?![\w-])", re.I)
_CONSTANTS = {b"pi": math.pi, b"e": math.e, b"infinity": math.inf, b"-infinity": -math.inf}
_ROUNDING = re.compile(rb"\s*(nearest|up|down|to-zero)\s*,", re.I)
#: Explicit tracks of a grid axis at most; more is a limit finding (bound 4: a `repeat()`
#: of more counted as this many, `grid-column: -2` of 20,000 columns read at 10,000: base64
#: pieces placed from both ends read out of order, clean).
_MAX_TRACKS = 10_000
_TOO_MANY_TRACKS = f"a grid of more than {_MAX_TRACKS} tracks"
#: Grid lines an item names at most; farther is a limit finding (they were clamped here,
#: Chromium places items past a million lines apart: two past it were read in one cell).
_MAX_LINE = 100_000
_TOO_FAR_LINE = f"a grid line past {_MAX_LINE}"


def length(value: bytes | None, font: float, percent_of: float = PAGE_WIDTH) -> float | None:
    """A length in px (`em`/`ch` of an element of font size `font`, `%` of `percent_of`,
    `calc()`, `min()`, `max()`, `clamp()`); None for `auto`, keywords, anything else."""
    if not value:
        return None
    key = (value, font, percent_of)
    if key in _KNOWN:
        return _KNOWN[key]
    if len(_KNOWN) > 8192:
        _KNOWN.clear()
    text = value.strip().lower()
    simple = _SIMPLE.match(text)
    if simple is not None:  # (most values: one number and its unit)
        try:
            found: float | None = _Calc(text, font, percent_of).factor_of(
                float(simple.group(1)), simple.group(2))[0]
        except ValueError:
            found = None
    elif not text or (text[:1].isalpha() and _FUNCTION.match(text) is None):
        found = None
    else:
        parser = _Calc(text, font, percent_of)
        try:
            result = parser.sum()
        except (ValueError, IndexError, ZeroDivisionError, OverflowError):
            result = None
        # (a plain number: px, as a page in quirks mode reads it)
        found = None if result is None or parser.at != len(text) else result[0]
    _KNOWN[key] = found
    return found


_KNOWN: dict[tuple[bytes, float, float], float | None] = {}
_SIMPLE = re.compile(rb"([-+]?(?:\d++(?:\.\d*+)?+|\.\d++))([a-z%]*)$")  # (possessive: a
# run of digits split two ways at every place was quadratic)


class _Calc:
    """`calc()` arithmetic over lengths: (value, is a plain number) pairs."""

    def __init__(self, text: bytes, font: float, percent_of: float) -> None:
        self.text = text
        self.at = 0
        self.font = font
        self.percent_of = percent_of
        self.depth = 0

    def _op(self, ops: bytes) -> bytes | None:
        m = _OPERATOR.match(self.text, self.at)
        if m is not None and m.group(1) in ops:
            self.at = m.end()
            return m.group(1)
        return None

    def sum(self) -> tuple[float, bool] | None:
        left = self.product()
        while left is not None:
            if self.depth == 0:  # (a sum only inside calc(): `1px -2px` is two values)
                return left
            m = _OPERATOR.match(self.text, self.at)
            if m is None or m.group(1) not in b"+-":
                return left
            self.at = m.end()
            right = self.product()
            if right is None or right[1] != left[1]:
                return None
            left = (left[0] + right[0] if m.group(1) == b"+" else left[0] - right[0], left[1])
        return left

    def product(self) -> tuple[float, bool] | None:
        left = self.factor()
        while left is not None:
            op = self._op(b"*/")
            if op is None:
                return left
            right = self.factor()
            if right is None:
                return None
            if op == b"*" and (left[1] or right[1]):
                left = (left[0] * right[0], left[1] and right[1])
            elif op == b"/" and right[1] and right[0]:
                left = (left[0] / right[0], left[1])
            else:
                return None
        return left

    def factor(self) -> tuple[float, bool] | None:
        function = _FUNCTION.match(self.text, self.at)
        if function is not None or self._op(b"("):
            if self.depth > 32:
                return None
            name = function.group(1).lower() if function is not None else b"calc"
            if function is not None:
                self.at = function.end()
            strategy = _ROUNDING.match(self.text, self.at) if name == b"round" else None
            if strategy is not None:
                self.at = strategy.end()
            self.depth += 1
            args = [self.sum()]
            while self._op(b","):
                args.append(self.sum())
            self.depth -= 1
            if not self._op(b")") or any(a is None for a in args):
                return None
            values = [a for a in args if a is not None]
            if len({a[1] for a in values}) != 1:
                return None
            if name in (b"calc", b"-webkit-calc") and len(values) == 1:
                return values[0]
            if name == b"min":
                return min(values)
            if name == b"max":
                return max(values)
            if name == b"clamp" and len(values) == 3:
                return (max(values[0][0], min(values[1][0], values[2][0])), values[0][1])
            return _math(name, strategy.group(1).lower() if strategy else b"nearest", values)
        m = _NUMBER.match(self.text, self.at)
        if m is None:
            constant = _CONSTANT.match(self.text, self.at) if self.depth else None
            if constant is None:
                return None
            self.at = constant.end()
            return (_CONSTANTS[constant.group(1).lower()], True)
        self.at = m.end()
        return self.factor_of(float(m.group(1)), m.group(2).lower())

    def factor_of(self, number: float, unit: bytes) -> tuple[float, bool]:
        """A number and its unit, in px (True: a plain number)."""
        if not unit:
            return (number, True)
        if unit == b"em":
            return (number * self.font, False)
        if unit in (b"ch", b"ic"):
            return (number * self.font * (CH if unit == b"ch" else 1.0), False)
        if unit == b"ex":
            return (number * self.font * 0.5, False)
        if unit == b"lh":
            return (number * self.font * 1.2, False)
        if unit == b"%":
            return (number * self.percent_of / 100, False)
        if unit in _ABSOLUTE:
            return (number * _ABSOLUTE[unit], False)
        raise ValueError(unit)


def _math(name: bytes, strategy: bytes, values: list[tuple[float, bool]]
          ) -> tuple[float, bool] | None:
    """CSS Values 4's `abs()`, `sign()`, `round()`, `mod()`, `rem()`, `hypot()`, and of
    numbers `pow()`, `sqrt()`, `exp()`, `log()` and the trigonometric functions (round 21: a
    flex item's `order: round(2.4)`, `pow(3, 1)`)."""
    first, plain = values[0]
    if name == b"abs" and len(values) == 1:
        return (abs(first), plain)
    if name == b"sign" and len(values) == 1:
        return (float((first > 0) - (first < 0)), True)
    if name == b"round" and len(values) in (1, 2):
        step = values[1][0] if len(values) == 2 else 1.0
        if not step or (len(values) == 1 and not plain):
            return None
        q = first / step
        turned = {b"up": math.ceil(q), b"down": math.floor(q), b"to-zero": math.trunc(q)}.get(
            strategy, math.floor(q + 0.5))
        return (turned * step, plain)
    if name in (b"mod", b"rem") and len(values) == 2 and values[1][0]:
        step = values[1][0]
        return (first % step if name == b"mod" else math.fmod(first, step), plain)
    if name == b"hypot":
        return (math.hypot(*(v for v, _ in values)), plain)
    if not plain:
        return None
    try:
        if name == b"pow" and len(values) == 2:
            return (math.pow(first, values[1][0]), True)
        if name == b"atan2" and len(values) == 2:
            return (math.atan2(first, values[1][0]), True)
        if name == b"log" and len(values) in (1, 2):
            return (math.log(first, values[1][0]) if len(values) == 2 else math.log(first),
                    True)
        one = _ONE_ARGUMENT.get(name)
        if one is not None and len(values) == 1:
            return (one(first), True)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return None


_ONE_ARGUMENT: dict[bytes, Callable[[float], float]] = {
    b"sqrt": math.sqrt, b"exp": math.exp, b"sin": math.sin, b"cos": math.cos,
    b"tan": math.tan, b"asin": math.asin, b"acos": math.acos, b"atan": math.atan}


def font_size(value: bytes | None, parent: float) -> float:
    """The font size in px a `font-size` value gives, the parent's being `parent`."""
    if not value:
        return parent
    text = value.strip().lower()
    if text in _FONT_KEYWORDS:
        return _FONT_KEYWORDS[text]
    if text == b"smaller":
        return parent / 1.2
    if text == b"larger":
        return parent * 1.2
    px = length(text, parent, parent)
    return parent if px is None or px < 0 else px


_FONT_SIZE = re.compile(rb"(?:^|\s)((?:[-+]?(?:\d++(?:\.\d*+)?+|\.\d++)[a-z%]*|"
                        rb"(?:xx?x?-)?(?:small|large)|medium|smaller|larger))\s*(?:/\s*[^\s]+\s*)?"
                        rb"\s(?=\S)", re.I)


def split(value: bytes) -> list[bytes]:
    """A value's blank-separated parts, a function's parentheses and a `[name]` kept whole."""
    out: list[bytes] = []
    depth = 0
    start = -1
    for i, c in enumerate(value):
        if c in b"([":
            depth += 1
        elif c in b")]" and depth:
            depth -= 1
        if c in b" \t\r\n\f" and not depth:
            if start >= 0:
                out.append(value[start:i])
                start = -1
        elif start < 0:
            start = i
    if start >= 0:
        out.append(value[start:])
    return out


def _sides(value: bytes, names: tuple[bytes, bytes, bytes, bytes]) -> dict[bytes, bytes]:
    """`inset`/`margin`/`padding`: one to four values (top, right, bottom, left)."""
    parts = split(value)
    if not 1 <= len(parts) <= 4:
        return {}
    top = parts[0]
    right = parts[1] if len(parts) > 1 else top
    bottom = parts[2] if len(parts) > 2 else top
    left = parts[3] if len(parts) > 3 else right
    return dict(zip(names, (top, right, bottom, left), strict=True))


def _pair(value: bytes, names: tuple[bytes, bytes]) -> dict[bytes, bytes]:
    parts = split(value)
    if not 1 <= len(parts) <= 2:
        return {}
    return {names[0]: parts[0], names[1]: parts[-1]}


_INSET = (b"top", b"right", b"bottom", b"left")
_MARGIN = (b"margin-top", b"margin-right", b"margin-bottom", b"margin-left")
_PADDING = (b"padding-top", b"padding-right", b"padding-bottom", b"padding-left")
_CUSTOM_IDENT = re.compile(rb"-?[A-Za-z_\x80-\xff][\w\x80-\xff-]*$")
_STRINGS = re.compile(rb"\"([^\"]*)\"|'([^']*)'")


def _grid_lines(value: bytes, start: bytes, end: bytes) -> dict[bytes, bytes]:
    """`grid-row`/`grid-column`: `start / end`; a lone custom ident is both ends."""
    first, _slash, second = value.partition(b"/")
    first = first.strip()
    if not second.strip() and _CUSTOM_IDENT.match(first) and first.lower() not in (
            b"auto", b"span"):
        second = first
    return {start: first, end: second.strip() or b"auto"}


def _grid_area(value: bytes) -> dict[bytes, bytes]:
    parts = [p.strip() for p in value.split(b"/")]
    ident = _CUSTOM_IDENT.match(parts[0]) is not None and parts[0].lower() not in (
        b"auto", b"span")
    row_start = parts[0]
    col_start = parts[1] if len(parts) > 1 else row_start if ident else b"auto"
    row_end = parts[2] if len(parts) > 2 else row_start if ident else b"auto"
    col_end = parts[3] if len(parts) > 3 else col_start if _CUSTOM_IDENT.match(
        col_start) and col_start.lower() not in (b"auto", b"span") else b"auto"
    return {b"grid-row-start": row_start, b"grid-column-start": col_start,
            b"grid-row-end": row_end, b"grid-column-end": col_end}


def _grid_template(value: bytes) -> dict[bytes, bytes]:
    """`grid-template`: `none`, `rows / columns`, or area strings with their row sizes."""
    text = value.strip()
    if text.lower() == b"none":
        return {b"grid-template-areas": b"none", b"grid-template-rows": b"none",
                b"grid-template-columns": b"none"}
    rows, _slash, columns = text.partition(b"/")
    if _STRINGS.search(rows):
        if b"repeat(" in columns.lower():  # (no repeat() beside areas: not a grid-template)
            return {}
        areas = b" ".join(m.group() for m in _STRINGS.finditer(rows))
        return {b"grid-template-areas": areas,
                b"grid-template-rows": _STRINGS.sub(b" ", rows).strip() or b"none",
                b"grid-template-columns": columns.strip() or b"none"}
    return {b"grid-template-areas": b"none", b"grid-template-rows": rows.strip(),
            b"grid-template-columns": columns.strip() or b"none"}


def _grid(value: bytes) -> dict[bytes, bytes]:
    """`grid`: a `grid-template`, or `auto-flow` on one side of the slash."""
    rows, slash, columns = value.partition(b"/")
    if b"auto-flow" in rows.lower():
        return {b"grid-auto-flow": b"row dense" if b"dense" in rows.lower() else b"row",
                b"grid-template-areas": b"none", b"grid-template-rows": b"none",
                b"grid-template-columns": columns.strip() or b"none"}
    if b"auto-flow" in columns.lower():
        return {b"grid-auto-flow": b"column dense" if b"dense" in columns.lower()
                else b"column", b"grid-template-areas": b"none",
                b"grid-template-rows": rows.strip() or b"none",
                b"grid-template-columns": b"none"}
    return {b"grid-auto-flow": b"row", **_grid_template(value)} if slash or _STRINGS.search(
        value) or value.strip().lower() == b"none" else {}


def _flex_flow(value: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for part in split(value.lower()):
        if part.startswith((b"row", b"column")):
            out[b"flex-direction"] = part
        elif part.startswith((b"wrap", b"nowrap")):
            out[b"flex-wrap"] = part
    return out


def _font(value: bytes) -> dict[bytes, bytes]:
    m = _FONT_SIZE.search(value + b" ")
    return {b"font-size": m.group(1)} if m is not None else {}


#: Shorthands (and logical properties of the block axis, taken top to bottom) as the
#: longhands they set; the later declaration wins, as in the cascade. (The inline axis's
#: stay logical: which side is the start depends on the direction.)
SHORTHANDS = {
    b"inset": lambda v: _sides(v, _INSET),
    b"inset-block": lambda v: _pair(v, (b"top", b"bottom")),
    b"inset-inline": lambda v: _pair(v, (b"inset-inline-start", b"inset-inline-end")),
    b"inset-block-start": lambda v: {b"top": v},
    b"inset-block-end": lambda v: {b"bottom": v},
    b"margin": lambda v: _sides(v, _MARGIN),
    b"padding": lambda v: _sides(v, _PADDING),
    b"margin-inline": lambda v: _pair(v, (b"margin-inline-start", b"margin-inline-end")),
    b"inline-size": lambda v: {b"width": v},
    b"grid-area": _grid_area,
    b"grid-row": lambda v: _grid_lines(v, b"grid-row-start", b"grid-row-end"),
    b"grid-column": lambda v: _grid_lines(v, b"grid-column-start", b"grid-column-end"),
    b"grid-template": _grid_template,
    b"grid": _grid,
    b"flex-flow": _flex_flow,
    b"font": _font,
}

_TRANSFORM_FUNCTION = re.compile(rb"(?<![a-z0-9])([a-z0-9]++)\(([^()]*(?:\([^()]*\)[^()]*)*)\)",
                                 re.I)  # (a name from its start, read once: linear)


def offset(transform: bytes | None, translate: bytes | None, font: float, width: float,
           height: float) -> tuple[float, float]:
    """How far (x, y) in px a box's `transform` translations and `translate` move it (`%` of
    its own width and height); scales, rotations and skews are left out."""
    dx = dy = 0.0
    if transform:
        for m in _TRANSFORM_FUNCTION.finditer(transform):
            name = m.group(1).lower()
            args = [a.strip() for a in m.group(2).split(b",")]
            if name in (b"translate", b"translate3d"):
                dx += length(args[0], font, width) or 0.0
                if len(args) > 1:
                    dy += length(args[1], font, height) or 0.0
            elif name == b"translatex":
                dx += length(args[0], font, width) or 0.0
            elif name == b"translatey":
                dy += length(args[0], font, height) or 0.0
            elif name in (b"matrix", b"matrix3d"):
                if len(args) == 6:
                    dx += length(args[4], font) or 0.0
                    dy += length(args[5], font) or 0.0
                elif len(args) == 16:
                    dx += length(args[12], font) or 0.0
                    dy += length(args[13], font) or 0.0
    if translate and translate.strip().lower() != b"none":
        parts = split(translate.strip())
        dx += length(parts[0], font, width) or 0.0
        if len(parts) > 1:
            dy += length(parts[1], font, height) or 0.0
    return dx, dy


# -- grid --------------------------------------------------------------------------------------

#: A grid axis: its explicit track count and line names (name -> line numbers, from 1).
Axis = tuple[int, dict[bytes, list[int]]]


def tracks(value: bytes | None, font: float, room: float) -> Axis:
    """A `grid-template-rows`/`-columns` track list's track count and named lines
    (`[c1] auto [c2] auto`, `repeat(4, [a] 1fr)`; `repeat(auto-fill, 8ch)` as many tracks as
    `room` px holds)."""
    names: dict[bytes, list[int]] = {}
    count = _track_list(value or b"", font, room, names, 0, 0)
    return count, names


_REPEAT = re.compile(rb"repeat\(\s*([^,]+),(.*)\)\s*$", re.I | re.S)


def _track_list(value: bytes, font: float, room: float, names: dict[bytes, list[int]],
                count: int, depth: int) -> int:
    text = value.strip()
    # (`auto` is one track, of `repeat(20, auto)` too: it was read as no track at all)
    if not text or text.lower() in (b"none", b"subgrid", b"masonry") or depth > 4:
        return count
    for part in split(text):
        if count > _MAX_TRACKS:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_TRACKS)
        if part.startswith(b"["):
            for name in part.strip(b"[]").split():
                names.setdefault(name, []).append(count + 1)
            continue
        repeat = _REPEAT.match(part)
        if repeat is None:
            count += 1
            continue
        times_text, inner = repeat.group(1).strip().lower(), repeat.group(2)
        if times_text in (b"auto-fill", b"auto-fit"):
            sizes = [length(p, font, room) for p in split(inner.strip())
                     if not p.startswith(b"[")]
            each = sum(s or 0.0 for s in sizes)
            times = max(1, int(room // each)) if each > 0 and all(
                s is not None for s in sizes) else 1
        else:
            try:
                times = max(0, int(times_text))
            except ValueError:
                times = 1
        # One repetition read once, then laid down `times` times (read again for each, a
        # `repeat(9999, ...)` of 80 KB of names cost 50 s), its line names up to a budget.
        own: dict[bytes, list[int]] = {}
        delta = _track_list(inner, font, room, own, 0, depth + 1)
        room_left = _MAX_NAMED_LINES - sum(len(lines) for lines in names.values())
        if delta <= 0:
            continue
        if count + times * delta > _MAX_TRACKS:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_TRACKS)
        for _ in range(times):
            for name, lines in own.items():
                if room_left < len(lines):  # (bound 4: names past it were dropped)
                    raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_NAMES)
                names.setdefault(name, []).extend(count + line for line in lines)
                room_left -= len(lines)
            count += delta
    if count > _MAX_TRACKS:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_TRACKS)
    return count


_MAX_NAMED_LINES = 65536
_TOO_MANY_NAMES = f"a grid of more than {_MAX_NAMED_LINES} named lines"


def areas(value: bytes | None) -> list[list[bytes]]:
    """`grid-template-areas`: its rows of cell names."""
    if not value or value.strip().lower() == b"none":
        return []
    return [(m.group(1) if m.group(1) is not None else m.group(2) or b"").split()
            for m in _STRINGS.finditer(value)]


def area_lines(rows: list[list[bytes]], row_names: dict[bytes, list[int]],
               column_names: dict[bytes, list[int]]) -> None:
    """Add the lines a named area makes (`a-start`, `a-end` in both axes) to the names."""
    seen: dict[bytes, list[int]] = {}
    for r, row in enumerate(rows, 1):
        for c, name in enumerate(row, 1):
            if name.strip(b".") == b"":
                continue
            box = seen.setdefault(name, [r, r, c, c])
            box[0], box[1] = min(box[0], r), max(box[1], r)
            box[2], box[3] = min(box[2], c), max(box[3], c)
    for name, (r0, r1, c0, c1) in seen.items():
        row_names.setdefault(name + b"-start", []).append(r0)
        row_names.setdefault(name + b"-end", []).append(r1 + 1)
        column_names.setdefault(name + b"-start", []).append(c0)
        column_names.setdefault(name + b"-end", []).append(c1 + 1)
    for names in (row_names, column_names):
        for lines in names.values():
            lines.sort()


def line(value: bytes | None, axis: Axis, end: bool) -> int | None:
    """The grid line a `grid-*-start` (or `-end`) value names; None for `auto` and spans."""
    if not value:
        return None
    parts = value.strip().split()
    if not parts or any(p.lower() in (b"auto", b"span") for p in parts):
        return None
    number: int | None = None
    ident: bytes | None = None
    for part in parts:
        try:
            number = int(part)
        except ValueError:
            ident = part
    count, names = axis
    if ident is None:
        if not number:
            return None
        found = number if number > 0 else count + 2 + number
    else:
        lines = names.get(ident + (b"-end" if end else b"-start")) or names.get(ident) or []
        n = number or 1
        if n > 0:
            found = lines[n - 1] if n <= len(lines) else count + 1 + n - len(lines)
        else:
            found = lines[n] if -n <= len(lines) else 1
    if abs(found) > _MAX_LINE:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_FAR_LINE)
    return found


def span(value: bytes | None) -> int:
    """The `span N` of a `grid-*-start`/`-end` value (0 without one)."""
    parts = (value or b"").strip().lower().split()
    if b"span" not in parts:
        return 0
    for part in parts:
        if part.isdigit():
            return max(1, min(_MAX_LINE, int(part)))
    return 1


def start_line(start: bytes | None, end: bytes | None, axis: Axis) -> int | None:
    """Where an item starts on one axis (`span 2 / 5` starts at 3), None: placed by flow."""
    first = line(start, axis, False)
    if first is not None:
        return first
    last = line(end, axis, True)
    if last is None:
        return None
    return max(1, last - (span(start) or 1))


def extent(start: bytes | None, end: bytes | None, axis: Axis) -> int:
    """How many tracks an item spans on one axis (`span 2`, or `2 / 5`), at least 1."""
    n = span(start) or span(end)
    if n:
        return n
    first, last = line(start, axis, False), line(end, axis, True)
    if first is not None and last is not None and last > first:
        return min(last - first, _MAX_LINE)
    return 1


#: Cells looked at by one grid's auto-placement (a hostile grid of many spanning items
#: places densely in quadratic time): past it, the items left go below the others in order.
MAX_PLACEMENT_STEPS = 400_000
#: An item's spans are placed as written (round 36: an item across 80 tracks was taken to
#: cover 64, `dense` placed the next pieces in the 16 it covers, in another order than
#: Chromium's): one covering more cells than the placement may look at is a limit finding.
_TOO_LARGE_ITEM = f"a grid item covering more than {MAX_PLACEMENT_STEPS} cells"


def auto_place(items: list[tuple[int | None, int | None]], minor_count: int,
               sizes: list[tuple[int, int]] | None = None, dense: bool = False
               ) -> list[tuple[int, int]]:
    """CSS grid auto-placement (CSS Grid 1, 8.5), sparse or `dense`: (major, minor) of each
    item's first cell (major: the row in `grid-auto-flow: row`), given where each is
    definite (None where not), the explicit grid's minor track count and each item's span
    on both axes (`sizes`: (major, minor); one cell each without it). Items that span
    leave holes a sparse placement never goes back to, and a dense one fills (round 18:
    `grid-auto-flow: dense` put base64 pieces in the holes)."""
    spans = [(max(1, min(a, _MAX_LINE)), max(1, min(b, _MAX_LINE)))
             for a, b in (sizes or [(1, 1)] * len(items))]
    if any(a * b > MAX_PLACEMENT_STEPS for a, b in spans):
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_LARGE_ITEM)
    occupied: set[tuple[int, int]] = set()
    out: list[tuple[int, int] | None] = [None] * len(items)
    steps = 0

    def fits(major: int, minor: int, i: int) -> bool:
        nonlocal steps
        h, w = spans[i]
        steps += h * w
        return all((major + a, minor + b) not in occupied for a in range(h) for b in range(w))

    def take(i: int, major: int, minor: int) -> None:
        nonlocal steps
        out[i] = (major, minor)
        h, w = spans[i] if steps < MAX_PLACEMENT_STEPS else (1, 1)
        steps += h * w
        occupied.update((major + a, minor + b) for a in range(h) for b in range(w))

    for i, (major, minor) in enumerate(items):
        if major is not None and minor is not None:
            take(i, major, minor)
    cursors: dict[int, int] = {}
    for i, (major, minor) in enumerate(items):  # locked to a row: the first cell free in it
        if major is not None and minor is None:
            at = 1 if dense else cursors.get(major, 1)
            while not fits(major, at, i) and steps < MAX_PLACEMENT_STEPS:
                at += 1
            take(i, major, at)
            cursors[major] = at + spans[i][1]
    width = max([minor_count, 1] + [p[1] + spans[i][1] - 1 for i, p in enumerate(out)
                                    if p is not None] + [w for _, w in spans])
    row, col = 1, 1
    last = max([p[0] + spans[i][0] for i, p in enumerate(out) if p is not None] + [1])
    for i, (_major, minor) in enumerate(items):
        if out[i] is not None:
            continue
        if steps >= MAX_PLACEMENT_STEPS:  # (out of steps: below all the others, in order)
            take(i, last, minor or 1)
            last += spans[i][0]
            continue
        if dense:
            row, col = 1, 1
        if minor is not None:
            if minor < col:
                row += 1
            col = minor
            while not fits(row, col, i) and steps < MAX_PLACEMENT_STEPS:
                row += 1
        else:
            while steps < MAX_PLACEMENT_STEPS:
                if col + spans[i][1] - 1 > width:
                    row, col = row + 1, 1
                if fits(row, col, i):
                    break
                col += 1
        take(i, row, col)
        last = max(last, row + spans[i][0])
        col += spans[i][1]
    return [p if p is not None else (1, 1) for p in out]
