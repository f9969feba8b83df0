"""Spreadsheet formulas computed as the reader computes them, for the cells whose stored file
keeps no value, or a cached string the reader recomputes (round 19).

A cell holding a formula and no cached value (`<c><f>CONCATENATE("TVq","QAA")</f></c>`, an
OpenDocument `table:formula` with no `office:value`) shows what the reader computes when it
opens the file, and LibreOffice computes it; a sender built the base64 of a file so, from
literals, `&`, `CHAR`/`DEC2HEX` of numbers and references to other cells and sheets, and the
stored XML held only formula text. So this module evaluates the text-building subset of the
formula language: literals, references (`A1`, `$A$1`, `Sheet2!A1`, `'My Sheet'!A1`, ODF's
`[.A1]` and `[Sheet2.A1]`), ranges, simple defined names, the operators, and the text and
number functions in `_FUNCTIONS` (`_xlfn.` and ODF's `COM.MICROSOFT.` prefixes dropped).
Anything else is an error value, which a reading shows as empty text; nothing raises out of
it but the scan's limits. Where Excel and LibreOffice differ, LibreOffice's csv is the
oracle (a truth joined into text is 1 or 0 there, TRUE in Excel), and functions Excel
stores with `_xlfn.` are read without it too (LibreOffice shows `#NAME?` for those).

It is written here, not taken from a library: the Python evaluators of Excel formulas on
PyPI (`formulas` 1.3, `pycel` 1.0b30, last released 2021; neither is installed here nor a
dependency) compile whole workbooks read by openpyxl, with no bound we could set on the
work or the text a hostile file asks for, and read no OpenDocument formulas. Here every
bound is explicit: a formula's length (`MAX_FORMULA`) and nesting (`MAX_NESTING`), cell
references followed on an explicit stack (chains of any length, cycles read as errors),
and two work counters for the whole book (`MAX_STEPS` cells visited and nodes evaluated,
`MAX_CHARS` characters made) that raise `ScanLimitExceeded` past their ends, so a file
whose shown text cannot be computed is never called clean. The scan's clock is checked as
the counter runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.limits import MAX_SCAN_SIZE

MAX_FORMULA = 8192  # characters (Excel's own limit)
MAX_NESTING = 64  # nested parentheses, calls and unary operators
MAX_RANGE = 1 << 16  # cells of a range read with its empty ones (a bigger one: without)
MAX_STEPS = 4 << 20  # cells visited and nodes evaluated, per book
MAX_CHARS = 64 << 20  # characters made, per book
_CHECK_EVERY = 1 << 14


class Error:
    """An error value (`#VALUE!`, `#NAME?`, a cycle...): shown as empty text."""

    __slots__ = ("code",)

    def __init__(self, code: str) -> None:
        self.code = code


ERROR = Error("#VALUE!")
Value = str | float | bool | Error | None  # None: an empty cell


class Range:
    """The values of a rectangle of cells, row by row; `width` 0 when only its stored cells
    are kept (a range too big to read whole)."""

    __slots__ = ("values", "width")

    def __init__(self, values: list[Value], width: int = 0) -> None:
        self.values, self.width = values, width


Arg = Value | Range


# --- parsing -------------------------------------------------------------------------------

class Ref:
    """A cell or a range: rows and columns 1-based, `fixed` for each `$` of r1, c1, r2, c2."""

    __slots__ = ("c1", "c2", "fixed", "r1", "r2", "sheet")

    def __init__(self, sheet: str | None, r1: int, c1: int, r2: int, c2: int,
                 fixed: tuple[bool, bool, bool, bool]) -> None:
        self.sheet, self.r1, self.c1, self.r2, self.c2, self.fixed = sheet, r1, c1, r2, c2, fixed


class Call:
    __slots__ = ("args", "name")

    def __init__(self, name: str, args: list[Node]) -> None:
        self.name, self.args = name, args


class Ops:
    """A chain of binary operators of one precedence, left to right (never deep)."""

    __slots__ = ("first", "rest")

    def __init__(self, first: Node, rest: list[tuple[str, Node]]) -> None:
        self.first, self.rest = first, rest


class Unary:
    __slots__ = ("arg", "op")

    def __init__(self, op: str, arg: Node) -> None:
        self.op, self.arg = op, arg


class Name:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Lit:
    __slots__ = ("value",)

    def __init__(self, value: Value) -> None:
        self.value = value


Node = Lit | Ref | Call | Ops | Unary | Name

_CELL = r"(\$?)([A-Za-z]{0,3})(\$?)([0-9]{0,7})"  # (a whole column or row: one part)
MAX_ROW, MAX_COLUMN = 1 << 20, 16384
_SHEET = r"(?:'(?:[^']|'')+'|[A-Za-z_\u00c0-\uffff][\w.\u00c0-\uffff]*)"
_TOKEN = re.compile(
    r"\s*(?:"
    r'(?P<str>"(?:[^"]|"")*")'
    r"|\[(?P<odf>[^\]]*)\]"
    rf"|(?P<ref>(?:{_SHEET}!)?(?:\$?[A-Za-z]{{1,3}}\$?[0-9]{{1,7}}"
    r"(?::\$?[A-Za-z]{1,3}\$?[0-9]{1,7})?|\$?[A-Za-z]{1,3}:\$?[A-Za-z]{1,3}"
    r"|\$?[0-9]{1,7}:\$?[0-9]{1,7}))(?![\w(.!])"
    r"|(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<fn>[A-Za-z_][\w.]*)\s*\("
    r"|(?P<name>[A-Za-z_\\][\w.]*)"
    r"|(?P<op><>|<=|>=|[-+*/^&=<>%(),;]))")
_CELL_RE = re.compile(_CELL)
_LEVELS = (("=", "<>", "<", ">", "<=", ">="), ("&",), ("+", "-"), ("*", "/"), ("^",))
_LEVEL = {op: n for n, ops in enumerate(_LEVELS) for op in ops}


class _Syntax(Exception):
    """A formula this module does not read (shown as an error value)."""


def _column(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _cell(text: str, last: bool) -> tuple[int, int, bool, bool]:
    """A cell's row, column and `$`s; of a whole column (`A`) or row (`7`), its first cell,
    or its `last`."""
    m = _CELL_RE.fullmatch(text.strip())
    if not m or not (m.group(2) or m.group(4)):
        raise _Syntax(text)
    row = int(m.group(4)) if m.group(4) else MAX_ROW if last else 1
    col = _column(m.group(2)) if m.group(2) else MAX_COLUMN if last else 1
    return row, col, bool(m.group(3)), bool(m.group(1))


def _sheet_name(text: str) -> str:
    text = text.lstrip("$")
    if text.startswith("'") and text.endswith("'") and len(text) > 1:
        return text[1:-1].replace("''", "'")
    return text


def _ref(text: str, odf: bool) -> Ref:
    """`A1`, `Sheet!A1:B2`, or ODF's `.A1`, `Sheet.A1:.B2`, `$'My Sheet'.$A$1` as a `Ref`."""
    sheet: str | None = None
    parts = text.split(":")
    if len(parts) > 2:
        raise _Syntax(text)
    cells = []
    for i, part in enumerate(parts):
        if odf:
            where, _, cell = part.rpartition(".")
        else:
            where, _, cell = part.rpartition("!")
        if where and i == 0:
            sheet = _sheet_name(where)
        cells.append(_cell(cell, i == 1))
    (r1, c1, fr1, fc1) = cells[0]
    (r2, c2, fr2, fc2) = cells[-1]
    return Ref(sheet, r1, c1, r2, c2, (fr1, fc1, fr2, fc2))


class _Parser:
    """A recursive-descent parser over `_TOKEN`s, its nesting bounded by `MAX_NESTING`."""

    def __init__(self, text: str, odf: bool) -> None:
        self.odf = odf
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise _Syntax(text[pos:])
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.tokens.append(("end", ""))
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i]  # (the last is ("end", ""))

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1 if tok[0] != "end" else 0
        return tok

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Syntax("too deep")

    def whole(self) -> Node:
        node = self.level(0)
        if self.peek()[0] != "end":
            raise _Syntax(self.peek()[1])
        return node

    def op_level(self) -> int:
        kind, text = self.tokens[self.i]
        return _LEVEL.get(text, -1) if kind == "op" else -1

    def level(self, n: int, first: Node | None = None) -> Node:
        """An expression of operators of level `n` or tighter (`_LEVELS`), by precedence
        climbing: each run of one level's operators is one flat `Ops`."""
        left = self.unary() if first is None else first
        while (op := self.op_level()) >= n:
            rest: list[tuple[str, Node]] = []
            while self.op_level() == op:
                text = self.take()[1]
                right = self.unary()
                if self.op_level() > op:
                    right = self.level(op + 1, right)
                rest.append((text, right))
            left = Ops(left, rest)
        return left

    def unary(self) -> Node:
        kind, text = self.peek()
        if kind == "op" and text in "+-":
            self.take()
            self.nest()
            node: Node = Unary(text, self.unary())
            self.depth -= 1
            return node
        node = self.atom()
        while self.peek() == ("op", "%"):
            self.take()
            node = Unary("%", node)
        return node

    def atom(self) -> Node:
        kind, text = self.take()
        if kind == "str":
            return Lit(text[1:-1].replace('""', '"'))
        if kind == "num":
            return Lit(float(text))
        if kind == "ref":
            return _ref(text, False)
        if kind == "odf":
            return _ref(text, True)
        if kind == "name":
            upper = text.upper()
            return Lit(upper == "TRUE") if upper in ("TRUE", "FALSE") else Name(text)
        if kind == "fn":
            return self.call(text)
        if (kind, text) == ("op", "("):
            self.nest()
            node = self.level(0)
            if self.take() != ("op", ")"):
                raise _Syntax("(")
            self.depth -= 1
            return node
        raise _Syntax(text)

    def call(self, name: str) -> Node:
        self.nest()
        args: list[Node] = []
        separators = (",", ";") if not self.odf else (";",)
        if self.peek() == ("op", ")"):
            self.take()
        else:
            while True:
                if self.peek()[0] == "op" and self.peek()[1] in (*separators, ")"):
                    args.append(Lit(None))  # an empty argument
                else:
                    args.append(self.level(0))
                kind, text = self.take()
                if (kind, text) == ("op", ")"):
                    break
                if kind != "op" or text not in separators:
                    raise _Syntax(text)
        self.depth -= 1
        upper = name.upper()
        for prefix in ("_XLFN._XLWS.", "_XLFN.", "_XLWS.", "COM.MICROSOFT.", "ORG.OPENOFFICE."):
            if upper.startswith(prefix):
                upper = upper[len(prefix):]
        return Call(upper, args)


def parse(text: str, odf: bool = False) -> Node | None:
    """A formula's tree (`=` or ODF's `of:=` before it dropped), or None if it is not read."""
    if len(text) > MAX_FORMULA:
        return None
    text = text.strip()
    if odf:
        prefix, colon, rest = text.partition(":")
        if colon and prefix.isalpha() and rest.startswith("="):
            text = rest
    text = text.removeprefix("=")
    try:
        return _Parser(text, odf).whole() if text else None
    except (_Syntax, ValueError, OverflowError):
        return None


# --- values ----------------------------------------------------------------------------------

def text(v: Value) -> str:
    """A value as a cell shows it (General format); errors as empty text."""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.15g}".upper()
    if isinstance(v, str):
        return v
    return ""


def _joined(v: Value) -> str:
    """A value as text inside a formula (`&`, a text argument): a truth is its number,
    1 or 0, as LibreOffice makes it (Excel writes TRUE; a cell shows TRUE in both)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    return text(v)


def _number(v: Value) -> float | Error:
    if isinstance(v, Error):
        return v
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, float):
        return v
    if v is None or v == "":
        return 0.0 if v is None else ERROR
    try:
        n = float(v.strip().replace(",", ""))
    except ValueError:
        return ERROR
    return n if math.isfinite(n) else ERROR


def _truth(v: Value) -> bool | Error:
    if isinstance(v, Error):
        return v
    if isinstance(v, str):
        upper = v.upper()
        return upper == "TRUE" if upper in ("TRUE", "FALSE") else ERROR
    return bool(v)


def _compare(a: Value, b: Value, op: str) -> Value:
    def key(v: Value) -> tuple[int, float | str]:
        if isinstance(v, bool):
            return 2, float(v)
        if isinstance(v, str):
            return 1, v.lower()
        return 0, v if isinstance(v, float) else 0.0

    if isinstance(a, Error) or isinstance(b, Error):
        return a if isinstance(a, Error) else b
    if a is None:
        a = "" if isinstance(b, str) else 0.0
    if b is None:
        b = "" if isinstance(a, str) else 0.0
    ka, kb = key(a), key(b)
    return {"=": ka == kb, "<>": ka != kb, "<": ka < kb, ">": ka > kb,
            "<=": ka <= kb, ">=": ka >= kb}[op]


def _arith(a: Value, b: Value, op: str) -> Value:
    x, y = _number(a), _number(b)
    if isinstance(x, Error):
        return x
    if isinstance(y, Error):
        return y
    try:
        if op == "+":
            r = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op == "/":
            r = x / y
        else:
            r = float(x ** y)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return ERROR
    return r if isinstance(r, float) and math.isfinite(r) else ERROR


# --- the book ----------------------------------------------------------------------------------

class Formula:
    """A formula cell: its text, and where it was written (a shared formula is written once
    and used in other cells, its relative references moved by the distance)."""

    __slots__ = ("col", "odf", "row", "text")

    def __init__(self, text: str, row: int, col: int, odf: bool = False) -> None:
        self.text, self.row, self.col, self.odf = text, row, col, odf


Cell = Value | Formula
_Key = tuple[int, int, int]  # sheet, row, column


class Book:
    """The cells of a workbook's sheets (values and formulas), its sheet names and simple
    defined names; `value` computes a formula cell on demand, once."""

    def __init__(self, check: Callable[[], None] | None = None) -> None:
        self.sheets: list[dict[tuple[int, int], Cell]] = []
        self.index: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.check = check
        self.steps = 0
        self.chars = 0
        self._ticks = 0
        self._trees: dict[tuple[str, bool], Node | None] = {}
        self._done: dict[_Key, Value] = {}
        self._expanded: set[_Key] = set()

    def add_sheet(self, name: str) -> dict[tuple[int, int], Cell]:
        self.index.setdefault(name.lower(), len(self.sheets))
        self.sheets.append({})
        return self.sheets[-1]

    def charge(self, n: int) -> None:
        """`n` steps of work (cells visited, nodes evaluated)."""
        before = self.steps
        self.steps += n
        if self.steps > MAX_STEPS:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"formulas over {MAX_STEPS} steps")
        if self.check is not None and before // _CHECK_EVERY != self.steps // _CHECK_EVERY:
            self.check()

    def tick(self, n: int) -> None:
        """`n` steps of reading a part already parsed (bounded by its size): the clock is
        checked, the steps are not counted."""
        self._ticks += n
        if self._ticks >= _CHECK_EVERY:
            self._ticks = 0
            if self.check is not None:
                self.check()

    def made(self, n: int) -> None:
        """`n` characters of text made (charged before a long text is made)."""
        self.chars += n
        if self.chars > MAX_CHARS:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"formulas made over {MAX_CHARS} characters")

    def tree(self, f: Formula) -> Node | None:
        key = (f.text, f.odf)
        if key not in self._trees:
            self.charge(1 + len(f.text) // 64)
            self._trees[key] = parse(f.text, f.odf)
        return self._trees[key]

    def value(self, sheet: int, row: int, col: int) -> Value:
        """Cell (`sheet`, `row`, `col`)'s value, its formula computed with every formula it
        refers to first, depth first on an explicit stack (chains of any length): a cell
        met again while its own references are computed is a cycle, read as an error."""
        key = (sheet, row, col)
        stack = [key]
        while stack:
            k = stack[-1]
            if k in self._done:
                stack.pop()
            elif k not in self._expanded:  # (expanded, not done: on the path from `key`)
                self._expanded.add(k)
                stack.extend(d for d in self._deps(k)
                             if d not in self._done and d not in self._expanded)
            else:
                stack.pop()
                self._done[k] = self._computed(k)
        return self._done[key]

    def _cell(self, k: _Key) -> Cell:
        s, r, c = k
        return self.sheets[s].get((r, c)) if 0 <= s < len(self.sheets) else None

    def _deps(self, k: _Key) -> Iterator[_Key]:
        """The formula cells cell `k`'s formula refers to."""
        f = self._cell(k)
        if not isinstance(f, Formula):
            return
        tree = self.tree(f)
        if tree is None:
            return
        ev = _Eval(self, k, f)
        todo: list[Node] = [tree]
        while todo:
            node = todo.pop()
            self.charge(1)
            if isinstance(node, Name):
                named = ev.named(node.name)
                if named is not None:
                    todo.append(named)
            elif isinstance(node, Ref):
                for key, cell in ev.cells(node):
                    if isinstance(cell, Formula):
                        yield key
            elif isinstance(node, Call):
                todo.extend(node.args)
            elif isinstance(node, Ops):
                todo.append(node.first)
                todo.extend(n for _, n in node.rest)
            elif isinstance(node, Unary):
                todo.append(node.arg)

    def _computed(self, k: _Key) -> Value:
        f = self._cell(k)
        if not isinstance(f, Formula):
            return f
        tree = self.tree(f)
        if tree is None:
            return Error("#NAME?")
        got = _Eval(self, k, f).scalar(tree)
        return got

    def known(self, k: _Key) -> Value:
        """A cell's value as far as computed (a formula not yet computed: a cycle)."""
        cell = self._cell(k)
        if isinstance(cell, Formula):
            return self._done.get(k, Error("#CYCLE"))
        return cell


class _Eval:
    """One formula's evaluation in cell `k` (its relative references moved by the distance
    from where a shared formula was written)."""

    def __init__(self, book: Book, k: _Key, f: Formula) -> None:
        self.book, self.sheet, self.row, self.col = book, k[0], k[1], k[2]
        self.dr, self.dc = k[1] - f.row, k[2] - f.col
        self.odf = f.odf

    def named(self, name: str) -> Node | None:
        """A defined name's reference (a name defined otherwise is not read)."""
        text = self.book.names.get(name.lower())
        if text is None:
            return None
        tree = self.book.tree(Formula(text, 1, 1, self.odf))
        return tree if isinstance(tree, Ref) else None

    def area(self, ref: Ref) -> tuple[int, int, int, int, int] | None:
        sheet = self.sheet if ref.sheet is None else self.book.index.get(ref.sheet.lower())
        if sheet is None:
            return None
        fr1, fc1, fr2, fc2 = ref.fixed
        r1 = ref.r1 + (0 if fr1 else self.dr)
        c1 = ref.c1 + (0 if fc1 else self.dc)
        r2 = ref.r2 + (0 if fr2 else self.dr)
        c2 = ref.c2 + (0 if fc2 else self.dc)
        if min(r1, c1, r2, c2) < 1:
            return None
        return sheet, min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)

    def cells(self, ref: Ref) -> Iterator[tuple[_Key, Cell]]:
        """The stored cells of a reference's area, row by row (the empty ones left out)."""
        area = self.area(ref)
        if area is None:
            return
        s, r1, c1, r2, c2 = area
        stored = self.book.sheets[s]
        size = (r2 - r1 + 1) * (c2 - c1 + 1)
        if size <= len(stored):
            self.book.charge(size)
            found = [(r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)
                     if (r, c) in stored]
        else:
            self.book.charge(len(stored))
            found = sorted(p for p in stored if r1 <= p[0] <= r2 and c1 <= p[1] <= c2)
        self.book.charge(len(found))
        for r, c in found:
            yield (s, r, c), stored[(r, c)]

    def arg(self, node: Node) -> Arg:
        """A node's value; a range's cells (for the functions that take ranges)."""
        if isinstance(node, Name):
            named = self.named(node.name)
            return self.arg(named) if named is not None else Error("#NAME?")
        if isinstance(node, Ref):
            area = self.area(node)
            if area is None:
                return Error("#REF!")
            s, r1, c1, r2, c2 = area
            if (r1, c1) == (r2, c2):
                return self.book.known((s, r1, c1))
            size = (r2 - r1 + 1) * (c2 - c1 + 1)
            if size > MAX_RANGE:  # (its empty cells left out)
                return Range([self.book.known(key) for key, _ in self.cells(node)])
            self.book.charge(size)
            return Range([self.book.known((s, r, c)) for r in range(r1, r2 + 1)
                          for c in range(c1, c2 + 1)], c2 - c1 + 1)
        return self.scalar(node)

    def scalar(self, node: Node) -> Value:
        self.book.charge(1)
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, (Ref, Name)):
            got = self.arg(node)
            return ERROR if isinstance(got, Range) else got
        if isinstance(node, Unary):
            v = self.scalar(node.arg)
            if node.op == "+":
                return v
            return _arith(v, 100.0 if node.op == "%" else -1.0, "/" if node.op == "%" else "*")
        if isinstance(node, Ops):
            return self.ops(node)
        return self.call(node)

    def ops(self, node: Ops) -> Value:
        acc = self.scalar(node.first)
        for op, right in node.rest:
            b = self.scalar(right)
            if op == "&":
                if isinstance(acc, Error) or isinstance(b, Error):
                    acc = acc if isinstance(acc, Error) else b
                else:
                    joined = _joined(acc) + _joined(b)
                    self.book.made(len(joined))
                    acc = joined
            elif op in ("+", "-", "*", "/", "^"):
                acc = _arith(acc, b, op)
            else:
                acc = _compare(acc, b, op)
        return acc

    def call(self, node: Call) -> Value:
        name = node.name
        if name in _LAZY:
            return _LAZY[name](self, node.args)
        fn = _FUNCTIONS.get(name)
        if fn is None:
            return Error("#NAME?")
        args = [self.arg(a) for a in node.args]
        if name not in _RANGES:
            for a in args:
                if isinstance(a, Error):
                    return a
                if isinstance(a, Range):
                    return ERROR
        try:
            got = fn(self.book, args)
        except (ValueError, OverflowError, IndexError, TypeError):
            return ERROR
        if isinstance(got, str):
            self.book.made(len(got))
        elif isinstance(got, float) and not math.isfinite(got):
            return ERROR
        return got


# --- functions ---------------------------------------------------------------------------------

Fn = Callable[[Book, list[Arg]], Value]


def _flat(args: list[Arg]) -> Iterator[Value]:
    for a in args:
        if isinstance(a, Range):
            yield from a.values
        else:
            yield a


def _s(v: Arg) -> str:
    if isinstance(v, (Range, Error)):
        raise ValueError
    return _joined(v)


def _n(v: Arg) -> float:
    n = _number(v) if not isinstance(v, Range) else ERROR
    if isinstance(n, Error):
        raise ValueError
    return n


def _i(v: Arg) -> int:
    n = _n(v)
    if abs(n) > 1e15:
        raise ValueError
    return int(n)  # (Excel truncates counts and positions)


def _opt(args: list[Arg], i: int, default: float) -> float:
    return _n(args[i]) if len(args) > i and args[i] is not None else default


def _join(book: Book, sep: str, values: Iterator[Value], skip_empty: bool) -> Value:
    out: list[str] = []
    for v in values:
        if isinstance(v, Error):
            return v
        shown = _joined(v)
        if skip_empty and not shown:
            continue
        book.made(len(shown) + len(sep))
        out.append(shown)
    return sep.join(out)


def _concat(book: Book, args: list[Arg]) -> Value:
    return _join(book, "", _flat(args), False)


def _textjoin(book: Book, args: list[Arg]) -> Value:
    if len(args) < 3:
        return ERROR
    sep = _join(book, "", _flat(args[:1]), False)
    skip = _truth(args[1]) if not isinstance(args[1], Range) else ERROR
    if isinstance(sep, Error) or isinstance(skip, Error):
        return ERROR
    return _join(book, str(sep), _flat(args[2:]), bool(skip))


def _char(book: Book, args: list[Arg]) -> Value:
    n = _i(args[0])
    if not 1 <= n <= 255:
        return ERROR
    return bytes([n]).decode("cp1252", "replace") if n >= 128 else chr(n)


def _unichar(book: Book, args: list[Arg]) -> Value:
    n = _i(args[0])
    if not 1 <= n <= 0x10FFFF or 0xD800 <= n <= 0xDFFF:
        return ERROR
    return chr(n)


def _code(book: Book, args: list[Arg]) -> Value:
    s = _s(args[0])
    if not s:
        return ERROR
    return float(s[0].encode("cp1252", "replace")[0])


def _unicode(book: Book, args: list[Arg]) -> Value:
    s = _s(args[0])
    return float(ord(s[0])) if s else ERROR


_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _in_base(n: int, radix: int) -> str:
    out = ""
    while True:
        n, d = divmod(n, radix)
        out = _DIGITS[d] + out
        if not n:
            return out


def _dec2(radix: int, bits: int) -> Fn:
    """DEC2HEX, DEC2BIN, DEC2OCT: negatives as 10-digit two's complement, `places` padding."""
    def fn(book: Book, args: list[Arg]) -> Value:
        n, places = _i(args[0]), int(_opt(args, 1, 0))
        if not -(1 << (bits - 1)) <= n < 1 << (bits - 1):
            return ERROR
        if n < 0:
            return _in_base(n + (1 << bits), radix)
        out = _in_base(n, radix)
        if places and (places < len(out) or places > 10):
            return ERROR
        return out.rjust(places, "0")
    return fn


def _to_dec(radix: int, bits: int) -> Fn:
    """HEX2DEC, BIN2DEC, OCT2DEC: at most 10 digits, the top bit set for a negative."""
    def fn(book: Book, args: list[Arg]) -> Value:
        s = _s(args[0]).strip()
        if len(s) > 10:
            return ERROR
        n = int(s or "0", radix)
        return float(n - (1 << bits) if n >= 1 << (bits - 1) else n)
    return fn


def _base(book: Book, args: list[Arg]) -> Value:
    n, radix = _i(args[0]), _i(args[1])
    if n < 0 or not 2 <= radix <= 36 or n >= 1 << 53:
        return ERROR
    size = int(_opt(args, 2, 0))
    if not 0 <= size <= 255:
        return ERROR
    return _in_base(n, radix).rjust(size, "0")


def _decimal(book: Book, args: list[Arg]) -> Value:
    s, radix = _s(args[0]).strip(), _i(args[1])
    if not 2 <= radix <= 36 or len(s) > 255:
        return ERROR
    return float(int(s, radix))


def _count(args: list[Arg], i: int) -> int:
    n = int(_opt(args, i, 1))
    if n < 0:
        raise ValueError
    return n


def _left(book: Book, args: list[Arg]) -> Value:
    return _s(args[0])[: _count(args, 1)]


def _right(book: Book, args: list[Arg]) -> Value:
    s, n = _s(args[0]), _count(args, 1)
    return s[max(0, len(s) - n):] if n else ""


def _mid(book: Book, args: list[Arg]) -> Value:
    s, start, n = _s(args[0]), _i(args[1]), _i(args[2])
    if start < 1 or n < 0:
        return ERROR
    return s[start - 1 : start - 1 + n]


def _rept(book: Book, args: list[Arg]) -> Value:
    s, n = _s(args[0]), _i(args[1])
    if n < 0:
        return ERROR
    book.made(len(s) * n)  # (before the text is made)
    return s * n


def _substitute(book: Book, args: list[Arg]) -> Value:
    s, old, new = _s(args[0]), _s(args[1]), _s(args[2])
    if not old:
        return s
    if len(args) > 3:
        nth = _i(args[3])
        if nth < 1:
            return ERROR
        at = -1
        for _ in range(min(nth, len(s) + 1)):
            at = s.find(old, at + 1)
            if at < 0:
                return s
        return s[:at] + new + s[at + len(old):]
    book.made(len(s) + s.count(old) * len(new))
    return s.replace(old, new)


def _replace(book: Book, args: list[Arg]) -> Value:
    s, start, n, new = _s(args[0]), _i(args[1]), _i(args[2]), _s(args[3])
    if start < 1 or n < 0:
        return ERROR
    return s[: start - 1] + new + s[start - 1 + n:]


def _proper(book: Book, args: list[Arg]) -> Value:
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0).capitalize(), _s(args[0]).lower())


_PLAIN_FORMAT = re.compile(r"([0#,]*)(?:\.([0#]*))?")


def _text_fn(book: Book, args: list[Arg]) -> Value:
    """TEXT: digit-only codes padded and rounded; others as `spreadsheet.formatted` shows."""
    from zerohour.scan.spreadsheet import formatted

    v, code = args[0], _s(args[1])
    if code == "@" or (isinstance(v, str) and isinstance(_number(v), Error)):
        return _s(v)
    n = _n(v)
    m = _PLAIN_FORMAT.fullmatch(code)
    if m and code:
        decimals = len(m.group(2) or "")
        shown = f"{abs(n):.{decimals}f}"
        whole, _, frac = shown.partition(".")
        whole = whole.rjust(m.group(1).count("0"), "0")
        if whole.strip("0") == "" and "0" not in m.group(1):
            whole = ""
        return ("-" if n < 0 and float(shown) else "") + whole + ("." + frac if frac else "")
    return formatted(text(n), code)


def _if_lazy(ev: _Eval, args: list[Node]) -> Value:
    if not 1 <= len(args) <= 3:
        return ERROR
    cond = _truth(ev.scalar(args[0]))
    if isinstance(cond, Error):
        return cond
    if cond:
        return ev.scalar(args[1]) if len(args) > 1 else True
    return ev.scalar(args[2]) if len(args) > 2 else False


def _choose_lazy(ev: _Eval, args: list[Node]) -> Value:
    """CHOOSE(n, a, b, ...): only the chosen argument is computed."""
    if len(args) < 2:
        return ERROR
    n = _number(ev.scalar(args[0]))
    if isinstance(n, Error):
        return n
    return ev.scalar(args[int(n)]) if 1 <= n < len(args) else ERROR


def _index(book: Book, args: list[Arg]) -> Value:
    """INDEX(range, row, [column]) of a range read whole (`Range.width`); with one index,
    of a range of one row or one column."""
    area = args[0]
    if not isinstance(area, Range) or not area.width:
        return ERROR
    height = len(area.values) // area.width
    row, col = _i(args[1]), int(_opt(args, 2, 1))
    if len(args) < 3 or args[2] is None:  # (one index: along a single row or column)
        if height == 1:
            row, col = 1, row
        elif area.width != 1:
            return ERROR
    if not (1 <= row <= height and 1 <= col <= area.width):
        return ERROR
    return area.values[(row - 1) * area.width + col - 1]


def _iferror_lazy(ev: _Eval, args: list[Node]) -> Value:
    if len(args) != 2:
        return ERROR
    v = ev.scalar(args[0])
    return ev.scalar(args[1]) if isinstance(v, Error) else v


def _place(which: int) -> Callable[[_Eval, list[Node]], Value]:
    """ROW and COLUMN: of a reference (its first cell), or of the formula's own cell."""
    def fn(ev: _Eval, args: list[Node]) -> Value:
        if not args:
            return float(ev.row if which == 0 else ev.col)
        node = args[0]
        if isinstance(node, Name):
            node = ev.named(node.name) or node
        if not isinstance(node, Ref):
            return ERROR
        area = ev.area(node)
        if area is None:
            return Error("#REF!")
        return float(area[1 + which])
    return fn


def _number_fn(f: Callable[[float], float]) -> Fn:
    def fn(book: Book, args: list[Arg]) -> Value:
        return float(f(_n(args[0])))
    return fn


def _value(book: Book, args: list[Arg]) -> Value:
    v = args[0]
    return v if isinstance(v, float) else _number(_s(v).strip() or "x")


def _t(book: Book, args: list[Arg]) -> Value:
    return args[0] if isinstance(args[0], str) else ""


def _n_fn(book: Book, args: list[Arg]) -> Value:
    v = args[0]
    return float(v) if isinstance(v, (bool, float)) else 0.0


def _mod(book: Book, args: list[Arg]) -> Value:
    a, b = _n(args[0]), _n(args[1])
    return ERROR if b == 0 else a - b * math.floor(a / b)


def _round(book: Book, args: list[Arg]) -> Value:
    n, places = _n(args[0]), int(_opt(args, 1, 0))
    scale = 10.0 ** max(-15, min(15, places))
    return math.floor(abs(n) * scale + 0.5) / scale * (1 if n >= 0 else -1)


def _sum(book: Book, args: list[Arg]) -> Value:
    total = 0.0
    for v in _flat(args):
        if isinstance(v, Error):
            return v
        if isinstance(v, (float, bool)):
            total += float(v)
    return total


def _logic(all_: bool) -> Fn:
    def fn(book: Book, args: list[Arg]) -> Value:
        got = [_truth(v) for v in _flat(args) if v is not None]
        for g in got:
            if isinstance(g, Error):
                return g
        return all(got) if all_ else any(got)
    return fn


def _clean(book: Book, args: list[Arg]) -> Value:
    return "".join(c for c in _s(args[0]) if ord(c) >= 32)


def _not(book: Book, args: list[Arg]) -> Value:
    got = _truth(args[0]) if not isinstance(args[0], Range) else ERROR
    return got if isinstance(got, Error) else not got


def _fixed_arity(fn: Fn, low: int, high: int) -> Fn:
    def checked(book: Book, args: list[Arg]) -> Value:
        return fn(book, args) if low <= len(args) <= high else ERROR
    return checked


_FUNCTIONS: dict[str, Fn] = {
    name: _fixed_arity(fn, low, high) for name, (fn, low, high) in {
        "CONCATENATE": (_concat, 1, 255), "CONCAT": (_concat, 1, 255),
        "TEXTJOIN": (_textjoin, 3, 255),
        "CHAR": (_char, 1, 1), "UNICHAR": (_unichar, 1, 1), "CODE": (_code, 1, 1),
        "UNICODE": (_unicode, 1, 1),
        "DEC2HEX": (_dec2(16, 40), 1, 2), "DEC2BIN": (_dec2(2, 10), 1, 2),
        "DEC2OCT": (_dec2(8, 30), 1, 2), "HEX2DEC": (_to_dec(16, 40), 1, 1),
        "BIN2DEC": (_to_dec(2, 10), 1, 1), "OCT2DEC": (_to_dec(8, 30), 1, 1),
        "BASE": (_base, 2, 3), "DECIMAL": (_decimal, 2, 2),
        "LEFT": (_left, 1, 2), "RIGHT": (_right, 1, 2), "MID": (_mid, 3, 3),
        "LEN": (lambda b, a: float(len(_s(a[0]))), 1, 1), "REPT": (_rept, 2, 2),
        "UPPER": (lambda b, a: _s(a[0]).upper(), 1, 1),
        "LOWER": (lambda b, a: _s(a[0]).lower(), 1, 1), "PROPER": (_proper, 1, 1),
        "TRIM": (lambda b, a: re.sub(" +", " ", _s(a[0]).strip(" ")), 1, 1),
        "SUBSTITUTE": (_substitute, 3, 4), "REPLACE": (_replace, 4, 4),
        "TEXT": (_text_fn, 2, 2), "VALUE": (_value, 1, 1), "T": (_t, 1, 1), "N": (_n_fn, 1, 1),
        "INDEX": (_index, 2, 3), "CLEAN": (_clean, 1, 1),
        "EXACT": (lambda b, a: _s(a[0]) == _s(a[1]), 2, 2),
        "INT": (_number_fn(math.floor), 1, 1), "ABS": (_number_fn(abs), 1, 1),
        "MOD": (_mod, 2, 2), "ROUND": (_round, 1, 2), "SUM": (_sum, 1, 255),
        "AND": (_logic(True), 1, 255), "OR": (_logic(False), 1, 255),
        "NOT": (_not, 1, 1),
    }.items()}
#: Functions that take ranges (the others: a range argument is an error).
_RANGES = {"CONCAT", "CONCATENATE", "TEXTJOIN", "SUM", "AND", "OR"}
_LAZY: dict[str, Callable[[_Eval, list[Node]], Value]] = {
    "IF": _if_lazy, "IFERROR": _iferror_lazy, "ROW": _place(0), "COLUMN": _place(1),
    "CHOOSE": _choose_lazy}
_RANGES |= {"INDEX"}
