"""Side-by-side boxes read row by row, as a printed page's text is (round 17).

A browser shows two table cells, a flex row of two boxes, inline-blocks or left floats side by
side, and a `column-count` box's lines in columns; `pdftotext -layout` (and any reading of the
page's lines top to bottom) then takes the first line of every column, then the second, and so
on. A base64 file whose even pieces sit in the left cell and odd ones in the right is whole
only in that order (w028-w032, w120). One more text of the page: each group of side-by-side
boxes with lines replaced by its lines interleaved. Lines are what `<br>` and block elements
end; `column-count` columns are balanced as a browser fills them (the first columns get the
extra line). No element tree (most mail is tables, and a tree of a 140 KB newsletter costs
more than its whole scan): table rows by their tags, CSS boxes from the tags a style names
(`textual`'s rule matching), their extent as `htmlshadow` finds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.cssvalues import PAGE_WIDTH, length
from zerohour.scan.gates import Gate
from zerohour.scan.htmllayout import _attr
from zerohour.scan.limits import MAX_SCAN_TIME
from zerohour.scan.textual import (
    _ELEMENT,
    _RAW_TEXT,
    _VOID,
    _Compound,
    _compound,
    _css_text,
    _matches,
    _selector_text,
    _selectors,
    _sheet_rules,
    _tags_with,
    css_readable,
    html_rendered,
)

#: Pages whose CSS may put boxes side by side (one hyperscan pass); tables are read apart.
_SIDE_BY_SIDE = Gate(rb"column-count|column-width|columns\s*:|display\s*:\s*(?:inline-block|"
                     rb"(?:inline-)?flex|table-cell)|float\s*:\s*left")
_CELL = re.compile(rb"<t[dh]\b[^>]*>", re.I)
_LINE_BREAK = re.compile(rb"<br\b[^>]*>|</?(?:" + b"|".join(sorted(
    {b"address", b"article", b"blockquote", b"dd", b"div", b"dl", b"dt", b"figure", b"h[1-6]",
     b"hr", b"li", b"ol", b"p", b"pre", b"section", b"ul"})) + rb")\b[^>]*>", re.I)
#: A `column-count` (or widths) past this is taken as this: a count only says how the box's
#: lines are dealt out (past their number, each line is a column), the bound is the
#: arithmetic's. There is no bound on groups, cells or boxes: each is read once, and
#: `_Budget` bounds what boxes nested read (the 4097th group and the 65th flex item were
#: left unread, and with them the pieces they held side by side).
_MAX_COLUMNS = 1 << 20
#: What puts an element's children side by side, or the element beside its siblings.
_ROW_OF = re.compile(rb"display\s*:\s*(?:inline-)?flex\b", re.I)
_COLUMN_WISE = re.compile(rb"flex-(?:direction|flow)\s*:\s*column", re.I)
_BESIDE = re.compile(rb"display\s*:\s*(?:inline-block|table-cell|inline-flex|inline-grid)\b|"
                     rb"float\s*:\s*left", re.I)
_SIDE_WORDS = re.compile(rb"column-count|column-width|columns\s*:|flex|inline-block|table-cell|"
                         rb"inline-grid|float", re.I)
#: A group: (start, end, columns), the span it replaces and its columns' lines.
_Group = tuple[int, int, list[list[bytes]]]


def _plain(markup: bytes) -> bytes:
    """A line's text (tags dropped, references decoded)."""
    if b"<" not in markup and b"&" not in markup:
        return markup
    return html_rendered(b"<b></b>" + markup) or markup


def _span_lines(data: bytes, lo: int, hi: int) -> list[bytes]:
    """The text between `lo` and `hi`, split where the page breaks lines."""
    return [t for t in (_plain(x) for x in _LINE_BREAK.split(data[lo:hi])) if t.strip()]


def _interleaved(columns: list[list[bytes]]) -> bytes:
    rows = max(len(c) for c in columns)
    return b"\n".join(b"".join(c[i].strip() for c in columns if i < len(c)) for i in range(rows))


class _Budget:
    """Bytes read into lines, at most a few times the page (boxes nest: each would read the
    rest of the page again); past it, a limit finding, never a silent stop."""

    def __init__(self, size: int) -> None:
        self.left = 8 * size + (1 << 20)

    def lines(self, data: bytes, lo: int, hi: int) -> list[bytes]:
        self.left -= hi - lo
        if self.left < 0:
            raise ScanLimitExceeded(MAX_SCAN_TIME, "side-by-side boxes nested past reading")
        return _span_lines(data, lo, hi)


def _worth(columns: list[list[bytes]]) -> bool:
    return sum(1 for c in columns if c) >= 2 and max(len(c) for c in columns) >= 2


_COUNT = re.compile(rb"(?<![\w-])(?:column-count|columns)\s*:\s*(?:[^;:\d]*?\s)?(\d+)(?![\w.])",
                    re.I)


def _table_groups(data: bytes, check: Callable[[], None] | None) -> list[_Group]:
    """Each table row whose cells hold several lines (no tree: a row ends at the next row or
    table tag; a row holding a table is left to its rows). Rows are found with `bytes.find`
    on the lower-cased page: most rows of most mail hold no line break, and are passed over
    at C speed."""
    lower = data.lower()
    if b"<td" not in lower and b"<th" not in lower:
        return []
    groups: list[_Group] = []
    at = lower.find(b"<tr")
    n = 0
    while at >= 0:
        n += 1
        if check is not None and not n % 1024:
            check()
        nxt = lower.find(b"<tr", at + 3)
        limit = len(data) if nxt < 0 else nxt
        end = min((i for i in (lower.find(b"</tr", at, limit), lower.find(b"<table", at, limit),
                               lower.find(b"</table", at, limit)) if i >= 0), default=limit)
        row = lower[at:end]
        if (row.count(b"<td") + row.count(b"<th") >= 2 and (
                b"<br" in row or b"<p" in row or b"<div" in row or b"<li" in row
                or b"<h" in row or b"<dd" in row or b"<dt" in row)):
            opened = _ELEMENT.match(data, at)
            start = at if opened is None else opened.end()
            cells = [m.end() for m in _CELL.finditer(data, start, end)]
            if len(cells) >= 2:
                bounds = [*cells[1:], end]
                columns = [_span_lines(data, a, _cell_end(data, a, b))
                           for a, b in zip(cells, bounds, strict=True)]
                if _worth(columns):
                    groups.append((start, end, columns))
        at = nxt
    return groups


def _cell_end(data: bytes, start: int, limit: int) -> int:
    """Where a cell's content ends: its next cell's tag (`limit`), less its closing tag."""
    close = data.rfind(b"</t", start, limit)
    return close if close >= 0 else limit


_WIDTHS = re.compile(rb"(?<![\w-])(column-width|columns|column-gap|width)\s*:\s*([^;]*)", re.I)
_EM = 16.0  # (a font size for `em` lengths: the box's own is not looked up)


def _column_count(declarations: bytes, normal_gap: float = _EM) -> int:
    """How many columns a multi-column box has: its `column-count`, or as many columns of
    its `column-width` as fit its width with the gaps between them (CSS Multi-column 3.4;
    round 18 v033: `columns: 8em` made the columns), the smaller of the two if both. A gap
    not written is `normal`, 1em of a font size not looked up: `normal_gap` px."""
    counts = _COUNT.findall(declarations)
    count = min(int(counts[-1][:8]), _MAX_COLUMNS) if counts else 0
    values: dict[bytes, bytes] = {}
    for name, value in _WIDTHS.findall(declarations):
        values[name.lower()] = value.strip()
    wide = None
    for token in (values.get(b"columns", b"") + b" " + values.get(b"column-width", b"")).split():
        if not token.isdigit():
            wide = length(token, _EM) or wide
    if not wide or wide <= 0:
        return count
    room = length(values.get(b"width"), _EM) or PAGE_WIDTH
    gap = length(values.get(b"column-gap"), _EM)
    gap = normal_gap if gap is None or gap < 0 else gap
    fit = max(1, min(int((room + gap) // (wide + gap)), _MAX_COLUMNS))
    return min(count, fit) if count else fit


def _side_rules(data: bytes) -> list[tuple[_Compound, bytes]]:
    """The style sheets' rules about side-by-side layout: (subject, declarations)."""
    rules: list[tuple[_Compound, bytes]] = []
    lower = data.lower()
    if b"<style" in lower or b"text/css" in lower:
        for rule in _sheet_rules(data):
            if not _SIDE_WORDS.search(rule.declarations):
                continue
            for selector in _selectors(_selector_text(rule.selectors)):
                subject = _compound(selector)
                if subject is not None and not subject.children:
                    rules.append((subject, rule.declarations))
    return rules


def _styled_tags(data: bytes, rules: list[tuple[_Compound, bytes]]
                 ) -> dict[int, tuple[re.Match[bytes], bytes]]:
    """Opening tags styled (inline or by a rule) with side-by-side layout, by offset, with
    their declarations (the rules' first, the inline style's last)."""
    lower = data.lower()
    words = {b"column", b"flex", b"inline-block", b"table-cell", b"inline-grid", b"float",
             *(c.word() for c, _d in rules)}
    if css_readable(data) is not data:  # (a style attribute's words may be encoded)
        words |= {b"&", b"\\", b"/*"}
    out: dict[int, tuple[re.Match[bytes], bytes]] = {}
    for at in _tags_with(data, lower, words):
        m = _ELEMENT.match(data, at)
        if m is None or m.group(2) is None or m.group(1):
            continue
        tag, attrs = m.group(2).lower(), m.group(3)
        found = [d for c, d in rules if _matches(c, tag, attrs)]
        style = _attr(attrs, b"style") if b"style" in attrs.lower() else None
        if style:
            found.append(_css_text(style))
        decl = b";".join(found)
        if _SIDE_WORDS.search(decl) and tag not in _VOID:
            out[at] = (m, decl)
    return out


def _extents(data: bytes, check: Callable[[], None] | None) -> dict[int, tuple[int, int]]:
    """(end of the content, end of the element) of every element, by the offset of its
    opening tag, in one pass (a closing tag closes what was opened since its own opening tag,
    found by its tag however deep: round 36, a flex row's first box holding 300 unclosed
    spans ran to the page's end, its `</div>` passed over where only the 256 innermost were
    looked at, and the row's boxes were never read side by side): asking `_hidden_end` per
    element walked to the page's end for each of many unclosed elements."""
    out: dict[int, tuple[int, int]] = {}
    stack: list[tuple[bytes, int]] = []  # (tag, opening offset)
    where: dict[bytes, list[int]] = {}  # the open elements of a tag, by index in `stack`
    skip_to = 0
    for n, m in enumerate(_ELEMENT.finditer(data), 1):
        if check is not None and not n % 4096:
            check()
        if m.start() < skip_to or m.group(2) is None:
            continue
        tag = m.group(2).lower()
        if m.group(1):
            if where.get(tag):
                i = where[tag][-1]
                for inner_tag, inner in stack[i + 1 :]:
                    out[inner] = (m.start(), m.start())
                    where[inner_tag].pop()
                out[stack[i][1]] = (m.start(), m.end())
                where[tag].pop()
                del stack[i:]
        elif tag in _RAW_TEXT:
            close = _raw_close(data, tag, m.end())
            out[m.start()] = close
            skip_to = close[1]
        elif tag in _VOID or m.group(3).rstrip().endswith(b"/"):
            out[m.start()] = (m.end(), m.end())
        else:
            where.setdefault(tag, []).append(len(stack))
            stack.append((tag, m.start()))
    for _tag, inner in stack:
        out[inner] = (len(data), len(data))
    return out


def _raw_close(data: bytes, tag: bytes, content: int) -> tuple[int, int]:
    m = re.compile(rb"</" + re.escape(tag) + rb"\b[^>]*>", re.I).search(data, content)
    return (len(data), len(data)) if m is None else (m.start(), m.end())


def _kids(data: bytes, lo: int, hi: int, extents: dict[int, tuple[int, int]]
          ) -> list[tuple[int, int]]:
    """The content spans of the elements straight inside `lo`..`hi`."""
    out: list[tuple[int, int]] = []
    at = lo
    while (m := _ELEMENT.search(data, at, hi)) is not None:
        at = m.end()
        if m.group(2) is None or m.group(1):
            continue
        close, end = extents.get(m.start(), (m.end(), m.end()))
        out.append((m.end(), min(close, hi)))
        at = max(at, min(end, hi))
    return out


def _css_groups(data: bytes, check: Callable[[], None] | None, normal_gap: float = _EM
                ) -> list[_Group]:
    """Each group of side-by-side boxes the page's CSS makes: a `column-count` box, a flex
    row's children, and runs of inline-blocks, table cells or left floats."""
    styled = _styled_tags(data, _side_rules(data))
    if not styled:
        return []
    extents = _extents(data, check)
    budget = _Budget(len(data))
    groups: list[_Group] = []
    done = 0  # grouped up to here
    for n, start in enumerate(sorted(styled), 1):
        if check is not None and not n % 256:
            check()
        if start < done:
            continue
        m, decl = styled[start]
        close, end = extents.get(start, (m.end(), m.end()))
        count = _column_count(decl, normal_gap)
        if count >= 2:  # its lines flow into columns, balanced (the first get the extra)
            lines = budget.lines(data, m.end(), close)
            per = -(-len(lines) // count)
            if len(lines) >= 2:
                groups.append((m.end(), close, [lines[i : i + per]
                                                for i in range(0, len(lines), per)]))
                done = close
        elif _ROW_OF.search(decl) and not _COLUMN_WISE.search(decl):
            kids = _kids(data, m.end(), close, extents)
            columns = [budget.lines(data, a, b) for a, b in kids] if len(kids) >= 2 else []
            if _worth(columns):
                groups.append((m.end(), close, columns))
                done = close
        elif _BESIDE.search(decl):  # this box and the boxes right after it
            boxes, at = [(m.end(), close)], end
            while True:
                skip = len(data[at : at + 4096]) - len(data[at : at + 4096].lstrip())
                nxt = styled.get(at + skip)
                if nxt is None or not _BESIDE.search(nxt[1]):
                    break
                nclose, at = extents.get(at + skip, (nxt[0].end(), nxt[0].end()))
                boxes.append((nxt[0].end(), nclose))
            columns = [budget.lines(data, a, b) for a, b in boxes] if len(boxes) >= 2 else []
            if _worth(columns):
                groups.append((start, at, columns))
                done = at
    return groups


def columns_text(data: bytes, check: Callable[[], None] | None = None,
                 normal_gap: float = _EM) -> bytes | None:
    """The page's text with side-by-side boxes read row by row; None when none are.
    `normal_gap`: the gap between columns where none is written (1em: 16 px by default; a
    box of small type fits more columns of a width, so `width_columns` asks for 0 too)."""
    if b"<" not in data:
        return None
    groups = _table_groups(data, check)
    if _SIDE_BY_SIDE(data) or ((view := css_readable(data)) is not data and _SIDE_BY_SIDE(view)):
        taken = [(a, b) for a, b, _c in groups]
        groups += [g for g in _css_groups(data, check, normal_gap)
                   if not any(a <= g[0] < b or g[0] <= a < g[1] for a, b in taken)]
    if not groups:
        return None
    out: list[bytes] = []
    at = 0
    for start, end, columns in sorted(groups, key=lambda g: g[0]):
        if start < at:
            continue
        out += [data[at:start], b"\n", _interleaved(columns), b"\n"]
        at = end
    page = b"".join(out) + data[at:]
    return html_rendered(page) or page


#: (no `:`; a hyperscan gate: `re` steps through a page byte by byte for it, 0.3 ms per
#: 100 KB newsletter)
_BY_WIDTH = Gate(rb"column-width|columns\s*:[^;:{}]*\d(?:\.\d*)?[a-z%]")


def width_columns(data: bytes) -> bool:
    """Whether the page may have multi-column boxes counted by their columns' width (whose
    count `columns_text` takes with a gap of 1em at 16 px; a reader's font may fit more)."""
    return _BY_WIDTH(data) or ((view := css_readable(data)) is not data and _BY_WIDTH(view))
