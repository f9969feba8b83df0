"""An .xlsx read as its cells show (round 16): a row per line, its cells in column order.

A part's text runs in the order they are stored (`textual.office_xml_readings`) are not what a
spreadsheet shows, and a sender put the base64 of a file in the difference: a cell holding a
shared string names it by index (`xl/sharedStrings.xml`, stored in any order); a numeric cell
shows its style's number format (`xl/styles.xml`), whose literal text (`"TVqQ"`) is all a cell
holding 0 shows; cells are placed by their reference (`r="B1"`), not by where they are
written; phonetic runs (`<rPh>`) of a string are not shown. `xlsx2csv` and LibreOffice's csv
export show the sheet so. The reading needs several parts: `officepkg.package_readings` makes
it. Cells of a row are joined with nothing (what `tr -d ,` makes of the csv), rows by
newlines; the text is bounded by `officepkg.MAX_TEXT`, and the work per cell by what it
shows (number formats are compiled once per format, `_compiled`).

A cell holding a formula and no cached value shows what the reader computes (round 19), and
so does one whose cached string LibreOffice recomputes (`_recalculated`): those cells are
left pending in the first reading (`_Cells`) and only when a workbook has one are its
cells and formulas handed to `formulas.Book` (`_compute`).

What a reader does not show is left out of one more reading (round 20), where the first
(what the csv export holds) differs: a row or column marked `hidden`, a sheet whose `state`
is `hidden` or `veryHidden`, a cell whose number format shows nothing for it (`;;;`) or shows
a string through the format's text section. A sender put base64-like decoys there between
the lines of the payload; LibreOffice's print (pdf) leaves them out.

(An OpenDocument sheet is one part, `content.xml`: its repeated cells are shown by
`textual._shown_text`, its formula cells with no stored value by `ods_computed`.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from zerohour.scan.officepkg import Budget, Package, attr, local

MAX_COLUMNS = 16384
MAX_ROWS = 1 << 20

_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})?")


def workbook_readings(pkg: Package, workbook: str) -> list[str]:
    """Every worksheet of the workbook, in its order, as the cells show (none if no cells);
    where formulas were computed, each sheet of several alone too, as LibreOffice's csv
    shows one (a block of base64 the finders read is not run on into the next sheet's
    cells)."""
    ctx = pkg.ctx
    shared_part = pkg.related(workbook, "sharedStrings", _beside(workbook, "sharedStrings.xml"))
    shared = _shared_strings(pkg.xml(shared_part) if shared_part else None, ctx.check_time)
    styles_part = pkg.related(workbook, "styles", _beside(workbook, "styles.xml"))
    formats = _cell_formats(pkg.xml(styles_part) if styles_part else None)
    rels = {rid: target for rid, typ, target in pkg.rels(workbook) if typ == "worksheet"}
    sheets: dict[str, str] = {}  # part -> sheet name
    hidden: set[str] = set()
    root = pkg.xml(workbook)
    if root is not None:
        for el in root.iter():
            if local(el.tag) == "sheet":
                target = rels.get(attr(el, "id") or "")
                if target and target not in sheets:
                    sheets[target] = attr(el, "name") or ""
                    if (attr(el, "state") or "").strip() in ("hidden", "veryHidden"):
                        hidden.add(target)
    for target in rels.values():  # sheets the workbook does not list
        sheets.setdefault(target, "")
    budget = Budget(ctx.check_time)
    recalc = _recalculated(pkg)
    read = [(name, sheet, _sheet_cells(sheet, shared, formats, budget, recalc,
                                       target in hidden))
            for target, name, sheet in ((target, name, pkg.xml(target)) for target, name in
                                        list(sheets.items())[:4096]) if sheet is not None]
    computed = any(cells.pending for _, _, cells in read)
    if computed:
        _compute(read, shared, root, budget, ctx.check_time)
    texts = [t for t in (cells.text() for _, _, cells in read) if t]
    whole = "\n".join(texts)
    if not whole.strip():
        return []
    out = [whole]
    if any(cells.hides() for _, _, cells in read):
        shown = "\n".join(t for t in (cells.text(shown=True) for _, _, cells in read) if t)
        if shown.strip() and shown != whole:
            out.append(budget.take(shown))
    return [*out, *texts[:256]] if computed and len(texts) > 1 else out


def _recalculated(pkg: Package) -> bool:
    """Whether LibreOffice recomputes the formulas of the package whose cached value is not
    a number (a string, a truth, an error) when it opens it: unless its `docProps/app.xml`
    names Microsoft's or LibreOffice's own application as its writer (a cached string can
    be a decoy)."""
    app = pkg.related("", "extended-properties", "docProps/app.xml")
    root = pkg.xml(app) if app else None
    writer = ""
    if root is not None:
        writer = next((el.text or "" for el in root if local(el.tag) == "Application"), "")
    return not writer.strip().lower().startswith(("microsoft", "libreoffice"))


def _beside(part: str, name: str) -> str:
    return part.rsplit("/", 1)[0] + "/" + name if "/" in part else name


def _string_item(si: Any) -> str:
    """A shared or inline string's shown text: its `<t>` and its runs' `<t>`, not `<rPh>`."""
    out = []
    for el in si:
        name = local(el.tag)
        if name == "t":
            out.append(el.text or "")
        elif name == "r":
            out.extend(t.text or "" for t in el if local(t.tag) == "t")
    return "".join(out)


def _shared_strings(root: Any, check: Callable[[], None]) -> list[str]:
    out: list[str] = []
    if root is None:
        return out
    for i, si in enumerate(root):
        if not i % 4096:
            check()
        if local(si.tag) == "si":
            out.append(_string_item(si))
    return out


class _Formats:
    """The number format of each cell style index (`cellXfs`), custom codes only, compiled
    once each."""

    def __init__(self, codes: dict[str, str], xfs: list[str]) -> None:
        self.codes = codes
        self.xfs = xfs
        self._compiled: dict[str, list[_Section] | None] = {}

    def code(self, style: str | None) -> list[_Section] | None:
        if not style or not (style.isascii() and style.isdigit()) or len(style) > 9:
            return None
        i = int(style)
        fmt_id = self.xfs[i] if i < len(self.xfs) else None
        if fmt_id is None or fmt_id not in self.codes:
            return None
        if fmt_id not in self._compiled:
            self._compiled[fmt_id] = compiled(self.codes[fmt_id])
        return self._compiled[fmt_id]


def _cell_formats(root: Any) -> _Formats:
    codes: dict[str, str] = {}
    xfs: list[str] = []
    if root is None:
        return _Formats(codes, xfs)
    for el in root:
        if local(el.tag) == "numFmts":
            for f in el:
                if local(f.tag) == "numFmt":
                    codes.setdefault(attr(f, "numFmtId") or "", attr(f, "formatCode") or "")
        elif local(el.tag) == "cellXfs":
            xfs = [attr(xf, "numFmtId") or "0" for xf in el if local(xf.tag) == "xf"]
    return _Formats(codes, xfs)


def _column(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


class _Cells:
    """A worksheet's shown cells by row: (column, order written, text); `pending`: the
    cells shown as their formula computes (row, column, index in their row's list, the
    cached text shown if the formula is not read). What a reader does not show: the sheet
    (`hidden`), rows, columns (flags by column number), and cells whose format shows
    other text (`formatted`: (row, order written) -> the text shown)."""

    def __init__(self, hidden: bool = False) -> None:
        self.rows: dict[int, list[tuple[int, int, str]]] = {}
        self.pending: list[tuple[int, int, int, str]] = []
        self.hidden = hidden
        self.hidden_rows: set[int] = set()
        self.hidden_cols: bytearray | None = None  # (made at the first hidden column)
        self.formatted: dict[tuple[int, int], str] = {}

    def hides(self) -> bool:
        return bool(self.hidden or self.hidden_rows or self.formatted
                    or (self.hidden_cols is not None and any(self.hidden_cols)))

    def text(self, shown: bool = False) -> str:
        """The cells' text; `shown`: only what a reader shows."""
        if shown and self.hidden:
            return ""
        lines = []
        for r in sorted(self.rows):
            if shown and r in self.hidden_rows:
                continue
            cells = self.rows[r]
            if shown:
                cols = self.hidden_cols
                cells = [(c, o, self.formatted.get((r, o), t)) for c, o, t in cells
                         if cols is None or not cols[min(c, MAX_COLUMNS)]]
            if any(t for _, _, t in cells):
                lines.append("".join(t for _, _, t in sorted(cells)))
        return "\n".join(lines)


def _sheet_cells(sheet: Any, shared: list[str], formats: _Formats, budget: Budget,
                 recalc: bool, hidden: bool = False) -> _Cells:
    """A worksheet's cells as they show (`_Cells`), formulas to compute left pending."""
    out = _Cells(hidden)
    row_no = 0
    order = 0
    for row in sheet.iter():
        name = local(row.tag)
        if name == "col":
            if _true(attr(row, "hidden")):
                lo, hi = _number(attr(row, "min")), _number(attr(row, "max"))
                lo, hi = max(1, min(lo, MAX_COLUMNS)), max(1, min(hi or lo, MAX_COLUMNS))
                if lo <= hi:
                    if out.hidden_cols is None:
                        out.hidden_cols = bytearray(MAX_COLUMNS + 1)
                    out.hidden_cols[lo : hi + 1] = b"\x01" * (hi - lo + 1)
            continue
        if name != "row":
            continue
        budget.check()
        ref = attr(row, "r")
        row_no = (int(ref) if ref and ref.isascii() and ref.isdigit() and len(ref) <= 7
                  else row_no + 1)
        if _true(attr(row, "hidden")):
            out.hidden_rows.add(row_no)
        col = 0
        cells = out.rows.setdefault(row_no, [])
        for c in row:
            if local(c.tag) != "c":
                continue
            m = _CELL_REF.fullmatch(attr(c, "r") or "")
            col = _column(m.group(1)) if m else col + 1
            text = _cell_text(c, shared, formats)
            order += 1
            pending = _computed_here(c, recalc)
            if pending:
                out.pending.append((row_no, col, len(cells), text))
                cells.append((col, order, ""))
            elif text:
                cells.append((col, order, budget.take(text)))
            else:
                continue
            shown = _format_shows(c, formats, text, pending)
            if shown is not None and (pending or shown != text):
                out.formatted[(row_no, order)] = budget.take(shown)
    return out


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true")


def _number(value: str | None) -> int:
    value = (value or "").strip()
    return int(value[:7]) if value.isascii() and value.isdigit() else 0


def _format_shows(c: Any, formats: _Formats, text: str, pending: bool) -> str | None:
    """What a cell's number format shows of a string, where the first reading shows the
    string as it is: its text section (the fourth, or a lone section with `@`); None where
    there is none. (A number is formatted in the first reading already; of a formula left
    to compute, only a section that does not show the value.)"""
    if (attr(c, "t") or "n") not in ("s", "str", "inlineStr"):
        return None
    sections = formats.code(attr(c, "s"))
    if not sections:
        return None
    if len(sections) >= 4:
        section = sections[3]
    elif len(sections) == 1 and _VALUE in sections[0]:
        section = sections[0]
    else:
        return None
    if pending and _VALUE in section:
        return None
    return "".join(text if t == _VALUE else "" if t == _NUMBER else str(t) for t in section)


def _computed_here(c: Any, recalc: bool) -> bool:
    """Whether cell `c` shows its formula computed: it has one, and no cached value (or an
    empty string), or a cached value other than a number that the reader recomputes
    (`_recalculated`: LibreOffice keeps cached numbers from any writer)."""
    formula = value = None
    for el in c:
        name = local(el.tag)
        if name == "f":
            formula = el
        elif name == "v":
            value = el.text or ""
    if formula is None:
        return False
    kind = attr(c, "t") or "n"
    return (recalc and kind != "n") or value is None or (value == "" and kind == "str")


def _compute(read: list[tuple[str, Any, _Cells]], shared: list[str], workbook: Any,
             budget: Budget, check: Callable[[], None]) -> None:
    """The pending cells' text computed (`formulas`), put in their places; a formula not
    read (an error value) shows its cached text, if any."""
    from zerohour.scan import formulas

    book = formulas.Book(check)
    for name, sheet, cells in read:
        _book_sheet(book, name, sheet, shared, {(r, c) for r, c, _, _ in cells.pending})
    if workbook is not None:
        for el in workbook.iter():
            if local(el.tag) == "definedName" and el.text:
                book.names.setdefault((attr(el, "name") or "").lower(), el.text)
    for i, (_, _, cells) in enumerate(read):
        for r, c, at, cached in cells.pending:
            value = book.value(i, r, c)
            shown = cached if isinstance(value, formulas.Error) else formulas.text(value)
            col, order, _ = cells.rows[r][at]
            cells.rows[r][at] = (col, order, budget.take(shown))


def _book_sheet(book: Any, name: str, sheet: Any, shared: list[str],
                computed: set[tuple[int, int]]) -> None:
    """A worksheet's cells as `formulas.Book` values: the computed ones as their formulas
    (a shared formula's other cells as the text written in its first), the others as their
    stored (cached) values."""
    from zerohour.scan import formulas

    cells = book.add_sheet(name)
    masters: dict[str, Any] = {}
    followers: list[tuple[int, int, str]] = []
    row_no = 0
    for row in sheet.iter():
        if local(row.tag) != "row":
            continue
        book.tick(1)
        ref = attr(row, "r")
        row_no = (int(ref) if ref and ref.isascii() and ref.isdigit() and len(ref) <= 7
                  else row_no + 1)
        col = 0
        for c in row:
            if local(c.tag) != "c":
                continue
            book.tick(1)
            m = _CELL_REF.fullmatch(attr(c, "r") or "")
            col = _column(m.group(1)) if m else col + 1
            f = next((el for el in c if local(el.tag) == "f"), None)
            if f is not None and attr(f, "t") == "shared" and f.text:
                masters.setdefault(attr(f, "si") or "", formulas.Formula(f.text, row_no, col))
            if f is not None and (row_no, col) in computed:
                if f.text:
                    cells[(row_no, col)] = formulas.Formula(f.text, row_no, col)
                elif attr(f, "t") == "shared":
                    followers.append((row_no, col, attr(f, "si") or ""))
            else:
                cells[(row_no, col)] = _cell_value(c, shared)
    for r, c, si in followers:
        if si in masters:
            cells[(r, c)] = masters[si]


def _cell_value(c: Any, shared: list[str]) -> Any:
    """A stored cell's value as a formula reads it (text, number, truth, error or empty)."""
    from zerohour.scan import formulas

    kind = attr(c, "t") or "n"
    value: str | None = None
    for el in c:
        name = local(el.tag)
        if name == "v":
            value = el.text or ""
        elif name == "is":
            return _string_item(el)
    if value is None:
        return None
    if kind == "s":
        return _cell_text(c, shared, _Formats({}, []))
    if kind == "b":
        return value.strip() == "1"
    if kind == "e":
        return formulas.Error(value)
    if kind in ("str", "inlineStr"):
        return value
    try:
        return float(value)
    except ValueError:
        return value


def _cell_text(c: Any, shared: list[str], formats: _Formats) -> str:
    kind = attr(c, "t") or "n"
    value: str | None = None
    for el in c:
        name = local(el.tag)
        if name == "v":
            value = el.text or ""
        elif name == "is":
            return _string_item(el)
    if value is None:
        return ""
    if kind == "s":
        v = value.strip()
        if v.isascii() and v.isdigit() and len(v) <= 9 and int(v) < len(shared):
            return shared[int(v)]
        return ""
    if kind == "b":
        return "TRUE" if value.strip() == "1" else "FALSE"
    if kind in ("str", "e", "inlineStr"):
        return value
    return formatted(value, formats.code(attr(c, "s")))


# --- OpenDocument -------------------------------------------------------------------------

_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_TEXT_P = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}p"
_ODF_VALUES = tuple(_OFFICE + n for n in (
    "value-type", "value", "string-value", "boolean-value", "date-value", "time-value"))
_ODF_CELLS = (_TABLE + "table-cell", _TABLE + "covered-table-cell")
#: Repeated cells placed for formulas to refer to (the rest are only counted).
_ODF_PLACED = 1024


def _odf_uncached(cell: Any) -> bool:
    return _TABLE + "formula" in cell.attrib and not any(a in cell.attrib for a in _ODF_VALUES)


def ods_computed(root: Any) -> Any:
    """A copy of an OpenDocument spreadsheet body whose formula cells with no stored value
    show their formula computed, as LibreOffice shows them when it opens the file (the text
    left in such a cell is not shown); None when it has no such cell."""
    import copy

    from zerohour.scan import formulas

    if not any(_odf_uncached(c) for c in root.iter(_TABLE + "table-cell")):
        return None
    root = copy.deepcopy(root)
    book = formulas.Book()
    computed: list[tuple[int, int, int, Any]] = []
    for table in root.iter(_TABLE + "table"):
        sheet = len(book.sheets)
        cells = book.add_sheet(table.get(_TABLE + "name", ""))
        row_no = 0
        for row in table.iter(_TABLE + "table-row"):
            book.tick(1)
            rows = _odf_repeats(row, "number-rows-repeated", 1 << 20)
            col = 0
            for cell in row:
                if cell.tag not in _ODF_CELLS:
                    continue
                book.tick(1)
                times = _odf_repeats(cell, "number-columns-repeated", 16384)
                value = _odf_cell(cell, row_no + 1, col + 1)
                if value is not None:
                    if isinstance(value, formulas.Formula):
                        computed.append((sheet, row_no + 1, col + 1, cell))
                    for dr in range(min(rows, _ODF_PLACED)):
                        book.charge(min(times, _ODF_PLACED))
                        for dc in range(min(times, _ODF_PLACED)):
                            cells[(row_no + 1 + dr, col + 1 + dc)] = value
                col += times
            row_no += rows
    for sheet, r, c, cell in computed:
        shown = formulas.text(book.value(sheet, r, c))
        for child in list(cell):
            cell.remove(child)
        p = cell.makeelement(_TEXT_P, {})
        p.text = shown
        cell.append(p)
    return root


_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
#: `table:visibility` values a reader does not see: hidden (collapsed) and filtered out
_NOT_SHOWN = frozenset({"collapse", "filter"})
_ROW_GROUPS = frozenset(_TABLE + n for n in ("table-row-group", "table-header-rows",
                                             "table-rows"))
_COVERED = _TABLE + "covered-table-cell"  # (merged over: LibreOffice shows none of its text)
_ROWS_COLUMNS = frozenset({_TABLE + "table-row", _TABLE + "table-column", _COVERED})
_MAX_COLUMNS = 16384


def _unseen(el: Any) -> bool:
    return (el.get(_TABLE + "visibility") or "visible").strip().lower() in _NOT_SHOWN


def ods_visible(root: Any) -> Any:
    """A copy of an OpenDocument spreadsheet body without what its reader does not see (round
    20: decoys there cut the base64 of the cells around): sheets whose table style says
    `table:display="false"`, rows and columns whose `table:visibility` is `collapse` or
    `filter` (LibreOffice neither shows nor prints them), and the text of cells merged over
    (covered cells, round 5); None when nothing is hidden."""
    import copy

    hidden_styles = {s.get(_STYLE + "name") for s in root.iter(_STYLE + "style")
                     if s.get(_STYLE + "family") == "table"
                     and any((t.get(_TABLE + "display") or "").strip().lower() == "false"
                             for t in s.iter(_STYLE + "table-properties"))}
    hidden_styles.discard(None)
    if not any(t.get(_TABLE + "style-name") in hidden_styles
               for t in root.iter(_TABLE + "table")) and not any(
            _unseen(el) or (el.tag == _COVERED and len(el))
            for el in root.iter() if el.tag in _ROWS_COLUMNS):
        return None
    root = copy.deepcopy(root)
    for book in root.iter(_OFFICE + "spreadsheet"):
        for table in [t for t in book if t.tag == _TABLE + "table"]:
            if table.get(_TABLE + "style-name") in hidden_styles:
                book.remove(table)
            else:
                _drop_unseen(table)
    return root


def _drop_unseen(table: Any) -> None:
    """Rows, and cells of columns, the reader does not see, out of one sheet."""
    columns = bytearray()  # 1: that column is not shown
    for col in table.iter(_TABLE + "table-column"):
        times = min(_odf_repeats(col, "number-columns-repeated", _MAX_COLUMNS),
                    _MAX_COLUMNS - len(columns))
        columns += (b"\x01" if _unseen(col) else b"\x00") * times
    any_column = any(columns)
    for parent in [table, *(el for el in table.iter() if el.tag in _ROW_GROUPS)]:
        for row in [r for r in parent if r.tag == _TABLE + "table-row"]:
            if _unseen(row):
                parent.remove(row)
                continue
            for covered in (c for c in row if c.tag == _COVERED):
                for child in list(covered):  # (the cell keeps its column, not its text)
                    covered.remove(child)
            if not any_column:
                continue
            at = 0
            for cell in [c for c in row if c.tag in _ODF_CELLS]:
                times = _odf_repeats(cell, "number-columns-repeated", _MAX_COLUMNS)
                span = columns[at : at + times]
                if len(span) == times and span.count(1) == times:
                    row.remove(cell)
                at += times


def _odf_repeats(el: Any, name: str, cap: int) -> int:
    from zerohour.scan.textual import repeat_count

    return repeat_count(el.get(_TABLE + name) or "1", cap)


def _odf_cell(cell: Any, row: int, col: int) -> Any:
    """An OpenDocument cell's value as a formula reads it; a `Formula` if it is computed."""
    from zerohour.scan import formulas

    if _odf_uncached(cell):
        return formulas.Formula(cell.get(_TABLE + "formula"), row, col, odf=True)
    kind = cell.get(_OFFICE + "value-type")
    shown = "\n".join("".join(p.itertext()) for p in cell if p.tag == _TEXT_P)
    if kind in ("float", "percentage", "currency"):
        try:
            return float(cell.get(_OFFICE + "value") or "")
        except ValueError:
            return shown
    if kind == "boolean":
        return (cell.get(_OFFICE + "boolean-value") or "").strip().lower() == "true"
    if kind == "string":
        return cell.get(_OFFICE + "string-value", shown)
    return shown or None


# --- number formats -----------------------------------------------------------------------

#: Date and time codes: a number shown as a date shows digits, not these letters.
_DATE_CODES = frozenset("dDmMyYhHsSeEgGbBaApPnNqQwW")
_DIGITS = frozenset("0#?")
_MAX_CODE = 4096


def _sections(code: str) -> list[str]:
    """A format code's `;`-separated sections (not inside quotes, brackets or escapes)."""
    out, cur, i = [], [], 0
    quoted = bracket = False
    while i < len(code):
        ch = code[i]
        if ch == "\\" and not quoted and i + 1 < len(code):
            cur.append(code[i : i + 2])
            i += 2
            continue
        if ch == '"' and not bracket:
            quoted = not quoted
        elif ch == "[" and not quoted:
            bracket = True
        elif ch == "]" and not quoted:
            bracket = False
        elif ch == ";" and not quoted and not bracket:
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


_NUMBER = 0  # a token: the number, in place of its digit placeholders
_VALUE = 1  # a token: the cell's value (`@`)
_Section = list[str | int]


def _compiled_section(section: str) -> _Section:
    """A section's tokens: literal text (merged), `_NUMBER` once, `_VALUE` for each `@`."""
    out: _Section = []
    placed = False
    i = 0

    def literal(text: str) -> None:
        if not text:
            return
        if out and isinstance(out[-1], str):
            out[-1] += text
        else:
            out.append(text)

    while i < len(section):
        ch = section[i]
        if ch == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            literal(section[i + 1 : end])
            i = end + 1
            continue
        if ch == "\\" and i + 1 < len(section):
            literal(section[i + 1])
            i += 2
            continue
        if ch in "_*":
            literal(" " if ch == "_" else "")
            i += 2
            continue
        if ch == "[":
            end = section.find("]", i + 1)
            i = len(section) if end < 0 else end + 1
            continue
        if ch in _DIGITS or (ch in ".," and i + 1 < len(section) and section[i + 1] in _DIGITS):
            if not placed:
                out.append(_NUMBER)
                placed = True
        elif ch == "@":
            out.append(_VALUE)
        elif ch not in _DATE_CODES:
            literal(ch)
        i += 1
    return out


def compiled(code: str) -> list[_Section] | None:
    """A number format code's sections as tokens (`_compiled_section`); None for General."""
    sections = _sections(code[:_MAX_CODE])
    first = sections[0].strip().lower()
    if first == "general" or (not first and len(sections) == 1):
        return None  # (an empty first section of several shows nothing: `;;;`)
    return [_compiled_section(section) for section in sections[:4]]


def formatted(value: str, code: str | list[_Section] | None) -> str:
    """A numeric cell's value as custom number format `code` shows it: the section for its
    sign, literal text (quoted, escaped, or plain punctuation) as written, the number once in
    place of its digit placeholders, `@` as the value; colours, conditions and locales
    (`[...]`), padding (`_x`: a space) and fills (`*x`) left out, date and time codes too. An
    approximation of the spreadsheet's rendering that keeps every character a reader sees of
    the code itself. The work is what it shows (a compiled code is a few tokens)."""
    sections = compiled(code) if isinstance(code, str) else code
    if not sections:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if number == 0 and len(sections) >= 3:
        section = sections[2]
    elif number < 0 and len(sections) >= 2:
        section, number = sections[1], -number
    else:
        section = sections[0]
    if number != number or number in (float("inf"), float("-inf")):
        shown = value
    else:
        shown = str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return "".join(shown if t == _NUMBER else value if t == _VALUE else str(t) for t in section)
