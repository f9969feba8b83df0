"""Table columns a browser collapses away (round 18, v128).

`<col style="visibility:collapse">` (or a `<colgroup>`, or a style sheet's rule naming
either) removes its column from the table: Chromium neither paints nor prints the cells of
that column, and the other columns close up. Round 18 put base64 pieces in one column and
decoys in a collapsed one: the page's readings, which know nothing of columns, read the
decoys between the pieces.

`collapsed_page` writes the page again with the cells of collapsed columns emptied (their
columns counted through `span`, `colspan` and `rowspan`, tables nested in cells kept apart);
that page is one more HTML layer, whose readings (what shows, the layout) see the pieces
alone. A rule collapses a column when its selector's subject could name the column (its
tag, classes and id; other conditions of the subject are taken as met) and the ancestors
and siblings its selector names are there (`textual._Page.inside`): a decoy `.none col`
that collapsed every column emptied the pieces' cells too (session 24).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from zerohour.scan.textual import (
    _ancestor_steps,
    _Compound,
    _css_text,
    _Page,
    _unescape,
    css_readable,
)

_SHEET = re.compile(rb"<style\b[^>]*+(?:>(.*?)(?:</style|\Z)|\Z)", re.I | re.S)  # (1 or none)
_RULE = re.compile(rb"(?<![^{}])([^{}]*)\{([^{}]*)\}")
_COLLAPSE = re.compile(rb"(?<![\w-])visibility\s*:\s*collapse", re.I)
_TAG = re.compile(rb"<(/?)(table|colgroup|col|tr|td|th)(?=[\s/>])([^>]*)>", re.I)
_SPAN = re.compile(rb"(?<![\w-])(col|row)?span\s*=\s*[\"']?\s*(\d+)", re.I)
_CLASS = re.compile(rb"(?<![\w-])class\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.I)
_ID = re.compile(rb"(?<![\w-])id\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.I)
_SIMPLE = re.compile(rb"([.#]?)([\w-]+)")
#: Columns and rows followed per table (a sender writes the spans).
MAX_COLUMNS = 1000
MAX_ROWSPAN = 65534


def collapsed_page(data: bytes, check: Callable[[], None] | None = None) -> bytes | None:
    """The page with the cells of collapsed table columns emptied; None if no column is."""
    lower = data.lower()
    if b"<col" not in lower or not _COLLAPSE.search(css_readable(data)):
        return None  # (`border-collapse` is common in mail; `visibility: collapse` is not)
    subjects = _collapsing_subjects(data)
    page = _Page(data, [], (), (), {})  # (for rules with a context: `_Page.inside`)
    cuts: list[tuple[int, int]] = []
    tables: list[_Table] = []
    for n, m in enumerate(_TAG.finditer(data)):
        if check is not None and not n % 4096:
            check()
        closing, name, attrs = m.group(1), m.group(2).lower(), m.group(3)
        if name == b"table":
            if closing:
                if tables:
                    tables.pop().end_cell(m.start(), cuts)
            else:
                tables.append(_Table())
            continue
        if not tables:
            continue
        table = tables[-1]
        if name in (b"col", b"colgroup"):
            if not closing:
                table.column(name, attrs, _collapses(name, attrs, subjects, page, m.start()))
            elif name == b"colgroup":
                table.close_group()
        elif name == b"tr":
            table.end_cell(m.start(), cuts)
            if not closing:
                table.new_row()
        elif closing:  # </td>, </th>
            table.end_cell(m.start(), cuts)
        else:
            table.end_cell(m.start(), cuts)
            table.cell(m.end(), attrs)
    if not cuts:
        return None
    out, at = [], 0
    for start, end in sorted(cuts):
        if start >= at:
            out.append(data[at:start])
            at = end
    out.append(data[at:])
    return b"".join(out)


def _collapsing_subjects(data: bytes) -> list[tuple[list[tuple[bytes, bytes]], _Compound]]:
    """The subject compounds (as simple selectors: tag, `.class`, `#id`) of the style
    sheets' rules that collapse, each with what its selector asks of the element's
    ancestors and siblings (`_Page.inside`: session 24, a decoy `.none col` collapsed every
    column, the payload's with the junk's)."""
    sheets = b"".join(_css_text(m.group(1)) + b"}" for m in _SHEET.finditer(data)
                      if m.group(1) is not None)
    out = []
    for m in _RULE.finditer(sheets):
        if not _COLLAPSE.search(m.group(2)):
            continue
        for selector in m.group(1).split(b","):
            words = selector.strip().split()
            if not words:
                continue
            subject = re.split(rb"[>+~]", words[-1])[-1]
            subject = re.sub(rb"\[[^\[\]]*+\]|::?[\w-]+(\([^()]*+\))?", b"", subject)
            out.append(([(k, v.lower()) for k, v in _SIMPLE.findall(subject)], replace(
                _ANY, ancestors=_ancestor_steps(selector))))
    return out


_ANY = _Compound(None, frozenset(), frozenset(), ())


def _collapses(tag: bytes, attrs: bytes,
               subjects: list[tuple[list[tuple[bytes, bytes]], _Compound]], page: _Page,
               start: int) -> bool:
    if b"&" in attrs:  # (`visibility&#58;collapse`: the HTML parser decodes it first)
        attrs = _unescape(attrs)
    if b"\\" in attrs or b"/*" in attrs:
        attrs = _css_text(attrs)
    if _COLLAPSE.search(attrs):
        return True
    if not subjects:
        return False
    classes = set(_value(_CLASS, attrs).lower().split())
    ident = _value(_ID, attrs).lower()
    for simples, context in subjects:
        if all((kind == b"" and value in (tag, b"*")) or (kind == b"." and value in classes)
               or (kind == b"#" and value == ident) for kind, value in simples) and (
                not context.ancestors or page.inside(context, start)):
            return True
    return False


def _value(pattern: re.Pattern[bytes], attrs: bytes) -> bytes:
    m = pattern.search(attrs)
    return next((g for g in m.groups() if g is not None), b"") if m else b""


def _spans(attrs: bytes) -> tuple[int, int, int]:
    """(span, colspan, rowspan) written in a tag's attributes, each at least 1."""
    found = {b"": 1, b"col": 1, b"row": 1}
    for kind, n in _SPAN.findall(attrs):
        found.setdefault(kind.lower(), 1)
        found[kind.lower()] = max(1, min(int(n[:6]), MAX_ROWSPAN))
    return found[b""], min(found[b"col"], MAX_COLUMNS), found[b"row"]


class _Table:
    """One table's columns (collapsed or not) and where its cells stand."""

    def __init__(self) -> None:
        self.collapsed: list[bool] = []
        self.group: tuple[int, int, bool] | None = None  # (first column, span, collapsed)
        self.taken: dict[int, int] = {}  # column -> rows still taken by a cell above
        self.x = 0
        self.open: tuple[int, bool] | None = None  # (content start, collapsed) of a cell

    def column(self, tag: bytes, attrs: bytes, collapsed: bool) -> None:
        span = min(_spans(attrs)[0], MAX_COLUMNS)
        if tag == b"colgroup":
            self.close_group()
            self.group = (len(self.collapsed), span, collapsed)
            return
        inherited = self.group is not None and self.group[2]
        if self.group is not None:
            self.group = (self.group[0], 0, self.group[2])  # (its cols give the columns)
        room = MAX_COLUMNS - len(self.collapsed)
        self.collapsed.extend([collapsed or inherited] * min(span, room))

    def close_group(self) -> None:
        if self.group is not None:
            first, span, collapsed = self.group
            if len(self.collapsed) == first and span:  # a colgroup without cols: its span
                self.collapsed.extend([collapsed] * min(span, MAX_COLUMNS - first))
            self.group = None

    def new_row(self) -> None:
        self.close_group()
        self.taken = {c: n - 1 for c, n in self.taken.items() if n > 1}
        self.x = 0

    def cell(self, start: int, attrs: bytes) -> None:
        self.close_group()
        while self.x in self.taken and self.x < MAX_COLUMNS:
            self.x += 1
        _, colspan, rowspan = _spans(attrs)
        columns = range(self.x, min(self.x + colspan, MAX_COLUMNS))
        hidden = bool(columns) and all(c < len(self.collapsed) and self.collapsed[c]
                                       for c in columns)
        if rowspan > 1:
            for c in columns:
                self.taken[c] = rowspan
        self.x += colspan
        self.open = (start, hidden)

    def end_cell(self, end: int, cuts: list[tuple[int, int]]) -> None:
        if self.open is not None:
            start, hidden = self.open
            if hidden:
                cuts.append((start, end))
            self.open = None
