"""Spreadsheet cells shown as their formulas compute (round 19): the base64 of clam.exe built
by formulas with no cached value (CONCATENATE of literals, `&` of CHAR/DEC2HEX of numbers,
references to cells of other sheets, defined names, shared formulas), behind cached decoys
a reader recomputes, and in an .ods. LibreOffice is the oracle (`soffice --convert-to csv`
shows what it computes when it opens the file; the csv holds the first sheet), where it is
installed. Then the evaluator's functions against LibreOffice's results, its bounds (a
100k-cell chain, a cycle, REPT of a billion, ranges over everything), and that a workbook
whose formulas all keep their values never reaches it."""

from __future__ import annotations

import contextlib
import csv
import io
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from test_office_text import (  # type: ignore[import-not-found]
    _CT,
    _ODS,
    _R,
    _RELS,
    _SML,
    NAME,
    _chunks,
    _decodes,
    _lines,
    _odf,
    _zip,
)

from helpers import cpu
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_LO_UTF8 = "csv:Text - txt - csv (StarCalc):44,34,76"


def _book(sheets: dict[str, str], names: dict[str, str] | None = None,
          app: str | None = None) -> bytes:
    """An .xlsx of sheets (name -> `<row>` elements), defined names (name -> reference) and
    an `Application` in docProps/app.xml (none: no such part)."""
    overrides = f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}sheet.main+xml"/>'
    rels, listed, files = "", "", {}
    for i, (name, rows) in enumerate(sheets.items(), 1):
        overrides += (f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                      f'ContentType="{_SML}worksheet+xml"/>')
        rels += (f'<Relationship Id="rId{i}" Type="{_R}worksheet" '
                 f'Target="worksheets/sheet{i}.xml"/>')
        listed += f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>'
        files[f"xl/worksheets/sheet{i}.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?>'
                                               f"<worksheet {_NS}><sheetData>{rows}"
                                               "</sheetData></worksheet>")
    defined = "".join(f'<definedName name="{n}">{ref}</definedName>'
                      for n, ref in (names or {}).items())
    root_rels = f'<Relationship Id="rId1" Type="{_R}officeDocument" Target="xl/workbook.xml"/>'
    if app is not None:
        root_rels += (f'<Relationship Id="rId2" Type="{_R}extended-properties" '
                      'Target="docProps/app.xml"/>')
        files["docProps/app.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?><Properties xmlns="http://schemas.'
            'openxmlformats.org/officeDocument/2006/extended-properties"><Application>'
            f"{app}</Application></Properties>")
    files.update({
        "[Content_Types].xml": _CT.format(overrides),
        "_rels/.rels": _RELS.format(root_rels),
        "xl/workbook.xml": (f'<?xml version="1.0" encoding="UTF-8"?><workbook {_NS} '
                            f'xmlns:r="{_R[:-1]}"><sheets>{listed}</sheets>'
                            + (f"<definedNames>{defined}</definedNames>" if defined else "")
                            + "</workbook>"),
        "xl/_rels/workbook.xml.rels": _RELS.format(rels),
    })
    return _zip(files)


def _package_reading(data: bytes) -> bytes:
    """The workbook's reading as the cells show (the first; where formulas were computed,
    each sheet of several follows alone)."""
    from zerohour.scan import officepkg
    from zerohour.scan.limits import ScanContext

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    return next(iter(officepkg.package_readings(data, members, ScanContext()))).data


def _esc(formula: str) -> str:
    return formula.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _col(n: int) -> str:
    out = ""
    while n:
        n, d = divmod(n - 1, 26)
        out = chr(65 + d) + out
    return out


def _f(ref: str, formula: str, extra: str = "") -> str:
    """A formula cell with no cached value (what openpyxl writes)."""
    return f'<c r="{ref}"{extra}><f>{_esc(formula)}</f></c>'


def _str(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _junk(i: int, n: int) -> str:
    return "".join("QRSTUVWXYZqrstuvwxyz"[(i * 7 + k * 3) % 20] for k in range(n))


# --- the attack's variants -------------------------------------------------------------------

def xlsx_concatenated() -> bytes:
    """CONCATENATE of 8-character literals, a line of base64 a cell, no cached values."""
    rows = "".join(f'<row r="{r}">' + _f(f"A{r}", "CONCATENATE(" + ",".join(
        f'"{line[i : i + 8]}"' for i in range(0, len(line), 8)) + ")") + "</row>"
        for r, line in enumerate(_lines(), 1))
    return _book({"S": rows})


def _char_term(c: str, i: int) -> str:
    """One character as a formula of numbers: CHAR, UNICHAR, HEX2DEC, DEC2HEX, LOWER."""
    if c in "0123456789ABCDEF" and i % 2:
        return f"DEC2HEX({int(c, 16)})"
    if c.islower() and i % 3 == 0:
        return f"LOWER(CHAR({ord(c.upper())}))"
    return (f"CHAR({ord(c)})", f"_xlfn.UNICHAR({ord(c)})",
            f'CHAR(HEX2DEC("{ord(c):X}"))')[i % 3]


def xlsx_char_codes() -> bytes:
    """Every character made of its code (`&` of CHAR/UNICHAR/HEX2DEC/DEC2HEX)."""
    rows = "".join(f'<row r="{r}">' + _f(f"A{r}", "&".join(
        _char_term(c, i) for i, c in enumerate(line))) + "</row>"
        for r, line in enumerate(_lines(), 1))
    return _book({"S": rows})


def xlsx_other_sheet() -> bytes:
    """Lines joined from the cells of another sheet ('Data Sheet', rows shuffled): CONCAT and
    TEXTJOIN of its ranges, `&` of single references and defined names."""
    lines = _lines()
    order = list(range(len(lines)))
    random.Random(19).shuffle(order)
    data = "".join(f'<row r="{k + 1}">' + "".join(
        _str(f"{_col(j + 1)}{k + 1}", lines[i][j * 8 : j * 8 + 8]) for j in range(8))
        + "</row>" for k, i in enumerate(sorted(range(len(lines)), key=order.index)))
    # line i is in data row order.index(i) + 1
    names = {f"piece{j}": f"'Data Sheet'!${_col(j + 1)}${order.index(0) + 1}" for j in range(8)}
    rows = '<row r="1">' + _f("A1", "&".join(f"piece{j}" for j in range(8))) + "</row>"
    for i in range(1, len(lines)):
        k = order.index(i) + 1
        formula = (f"_xlfn.CONCAT('Data Sheet'!A{k}:H{k})" if i % 3 == 0 else
                   f'_xlfn.TEXTJOIN("",TRUE,\'Data Sheet\'!$A${k}:$H${k})' if i % 3 == 1 else
                   "&".join(f"'Data Sheet'!{_col(j + 1)}{k}" for j in range(8)))
        rows += f'<row r="{i + 1}">' + _f(f"A{i + 1}", formula) + "</row>"
    return _book({"S": rows, "Data Sheet": data}, names)


def xlsx_chunk_a_row() -> bytes:
    """A reference a row, each to an 8-character piece on another sheet (a piece a row, in
    another order): the whole workbook's reading runs the base64 block on into pieces of
    the same width, so each sheet is read alone too."""
    chunks = _chunks(8)
    order = list(range(len(chunks)))
    random.Random(8).shuffle(order)
    data = "".join(f'<row r="{k + 1}">' + _str(f"A{k + 1}", chunks[i]) + "</row>"
                   for k, i in enumerate(order))
    rows = "".join(f'<row r="{i + 1}">' + _f(f"A{i + 1}", f"Pieces!A{order.index(i) + 1}")
                   + "</row>" for i in range(len(chunks)))
    return _book({"S": rows, "Pieces": data})


def xlsx_cached_decoys() -> bytes:
    """Cached string values that are junk, from a writer LibreOffice does not trust (no
    docProps/app.xml): it recomputes them, and the formulas make the base64."""
    rows = ""
    for r, line in enumerate(_lines(), 1):
        formula = " & ".join(f'"{line[i : i + 16]}"' for i in range(0, len(line), 16))
        rows += (f'<row r="{r}"><c r="A{r}" t="str"><f>{_esc(formula)}</f>'
                 f"<v>{_junk(r, len(line))}</v></c></row>")
    return _book({"S": rows})


def xlsx_shared_formula() -> bytes:
    """One shared formula, `CHAR(Codes!A1)` written once for 64 columns by 12 rows (empty
    cached strings), the codes on another sheet; written by "Microsoft Excel"."""
    lines = _lines()
    ref = f"A1:{_col(64)}{len(lines)}"
    rows, codes = "", ""
    for r, line in enumerate(lines, 1):
        cells = ""
        for j in range(1, len(line) + 1):
            f = (f'<f t="shared" ref="{ref}" si="0">CHAR(Codes!A1)</f>' if (r, j) == (1, 1)
                 else '<f t="shared" si="0"/>')
            cells += f'<c r="{_col(j)}{r}" t="str">{f}<v></v></c>'
        rows += f'<row r="{r}">{cells}</row>'
        codes += f'<row r="{r}">' + "".join(
            f'<c r="{_col(j)}{r}"><v>{ord(c)}</v></c>' for j, c in enumerate(line, 1)) + "</row>"
    return _book({"S": rows, "Codes": codes}, app="Microsoft Excel")


_OF_NS = 'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"'


def ods_formulas() -> bytes:
    """OpenDocument formula cells with no stored value (decoy paragraphs left in them):
    `CONCATENATE` with `;`, `&`, `[.B1]` and `[Data.A1]` references, MID of a longer text."""
    chunks = _chunks(8)
    order = list(range(len(chunks)))
    random.Random(7).shuffle(order)
    data = "".join(f'<table:table-row><table:table-cell office:value-type="string"><text:p>'
                   f"{chunks[i]}</text:p></table:table-cell></table:table-row>" for i in order)
    cells = []
    for i, chunk in enumerate(chunks):
        row = order.index(i) + 1
        formula = ([f"of:=CONCATENATE(&quot;{chunk[:4]}&quot;;&quot;{chunk[4:]}&quot;)",
                    f"of:=[Data.A{row}]", f"of:=[$Data.$A${row}]&amp;&quot;&quot;",
                    f"of:=MID(&quot;xx{chunk}yy&quot;;3;8)"])[i % 4]
        cells.append(f'<table:table-cell table:formula="{formula}"><text:p>{_junk(i, 8)}'
                     "</text:p></table:table-cell>")
    rows = "".join("<table:table-row>" + "".join(cells[r : r + 8]) + "</table:table-row>"
                   for r in range(0, len(cells), 8))
    body = (f'<office:spreadsheet><table:table table:name="S">{rows}</table:table>'
            f'<table:table table:name="Data">{data}</table:table></office:spreadsheet>')
    return _with_of(_odf(body, _ODS))


def _with_of(ods: bytes) -> bytes:
    """`ods` with the formula namespace declared (LibreOffice reads `of:` formulas by it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(ods)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "content.xml":
                body = body.replace(b'office:version="1.2"', b'office:version="1.2" '
                                    + _OF_NS.encode(), 1)
            dst.writestr(info, body)
    return out.getvalue()


VARIANTS = {
    "concatenate": (xlsx_concatenated, "c.xlsx"),
    "char-codes": (xlsx_char_codes, "k.xlsx"),
    "other-sheet": (xlsx_other_sheet, "o.xlsx"),
    "chunk-a-row": (xlsx_chunk_a_row, "r.xlsx"),
    "cached-decoys": (xlsx_cached_decoys, "d.xlsx"),
    "shared-formula": (xlsx_shared_formula, "s.xlsx"),
    "ods": (ods_formulas, "f.ods"),
}


def _soffice_csv(path: Path) -> bytes:
    """LibreOffice's csv of the first sheet of `path` (UTF-8), in a profile of its own."""
    out = path.parent / "lo"
    subprocess.run([shutil.which("soffice") or "soffice",
                    f"-env:UserInstallation=file://{path.parent}/profile", "--headless",
                    "--convert-to", _LO_UTF8, "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=300)
    return (out / (path.stem + ".csv")).read_bytes()


_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="soffice not installed")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_engine_finds_what_the_formulas_make(clam_engine: Engine, tmp_path: Path,
                                                 variant: str) -> None:
    """LibreOffice shows the base64 of clam.exe (the oracle; left out where it is not
    installed), and the engine finds clam.exe in the workbook."""
    make, name = VARIANTS[variant]
    data = make()
    if shutil.which("soffice") is not None:
        path = tmp_path / name
        path.write_bytes(data)
        assert _decodes(_soffice_csv(path).replace(b",", b"").replace(b'"', b""))
    assert clam_engine.scan_bytes(data, name).names == (NAME,)


# --- the evaluator, against LibreOffice -------------------------------------------------------

#: Formulas and what LibreOffice shows them computing (the `Data` sheet: A1 "S2", B1 7,
#: C1 empty, D1 "q"; a defined name `named` for Data!$A$1).
COMPUTED = [
    ('CONCATENATE("TVq","QAA")', "TVqQAA"),
    ('"a""b"&"c"', 'a"bc'),
    ("_xlfn.CONCAT(Data!A1:D1)", "S27q"),
    ('_xlfn.TEXTJOIN("-",TRUE,Data!A1:D1)', "S2-7-q"),
    ('_xlfn.TEXTJOIN("-",FALSE,Data!A1:D1)', "S2-7--q"),
    ("CHAR(65)&_xlfn.UNICHAR(946)&CODE(\"A\")", "Aβ65"),
    ("DEC2HEX(255)&DEC2HEX(-1)&DEC2HEX(10,4)", "FFFFFFFFFFFF000A"),
    ('HEX2DEC("FF")+HEX2DEC("FFFFFFFFFF")', "254"),
    ('DEC2BIN(5)&BIN2DEC("1111111111")&DEC2OCT(64)', "101-1100"),
    ("_xlfn.BASE(255,2,10)", "0011111111"),
    ('LEFT("hello",2)&RIGHT("hello",3)&MID("hello",2,2)&LEN("hello")&LEFT("hi")', "helloel5h"),
    ('RIGHT("ab",5)&LEFT("ab",9)&MID("ab",5,1)', "abab"),
    ('CHOOSE(2,"a","b",1/0)&INDEX(Data!A1:D1,1,4)&INDEX(Data!A1:D1,2)&CLEAN("a"&CHAR(9)&"b")',
     "bq7ab"),
    ('REPT("ab",3)', "ababab"),
    ('UPPER("aB")&LOWER("aB")&PROPER("hELLO wORLD")', "ABabHello World"),
    ('TRIM("  a   b  ")', "a b"),
    ('SUBSTITUTE("aXbXc","X","-")&SUBSTITUTE("aXbXc","X","+",2)', "a-b-caXb+c"),
    ('REPLACE("abcdef",2,3,"Z")', "aZef"),
    ('TEXT(5,"000")&TEXT(3.14159,"0.00")', "0053.14"),
    ('VALUE("12")+1', "13"),
    ('IF(2>1,"y","n")&IF("a"="A","eq","ne")&IF(1<>1,"x")', "yeq0"),  # (Excel: yeqFALSE)
    ('CONCATENATE(TRUE,"|")&(1=1)&UPPER(FALSE)', "1|10"),
    ("1=1", "TRUE"),
    ("ROW(C7)&COLUMN(C7)&ROW()", "731"),
    ('T("t")&T(5)&N(5)&N("x")', "t50"),
    ('10/4&"|"&-2*3&"|"&2^3&"|"&(1+2)*3&"|"&50%', "2.5|-6|8|9|0.5"),
    ('"x"&1/3', "x0.333333333333333"),
    ('named&"n"&Data!$B$1&\'Data\'!D1', "S2n7q"),
    ('_xlfn.TEXTJOIN("",TRUE,Data!A:A,Data!$2:$3)&_xlfn.CONCAT(Data!1:1)', "S2S27q"),
    ('IFERROR(1/0,"e")&MOD(7,3)&INT(2.7)&ABS(-3)&ROUND(2.5,0)&SUM(Data!A1:D1)', "e12337"),
]
#: Formulas LibreOffice shows as an error (the reading shows nothing).
ERRORS = ['FOO(1)&"x"', '1/0&"x"', 'MID("abc",0,1)', 'CHAR(256)', 'DEC2HEX(-1,"x")',
          '"a"+1', 'B2&"x"']


def _computed_book() -> bytes:
    cells = "".join(_f(f"{_col(j)}1", formula) for j, (formula, _) in enumerate(COMPUTED, 1))
    errors = "".join(_f(f"{_col(j)}2", formula) for j, formula in enumerate(ERRORS, 1))
    cycle = _f("A3", 'B3&"back"') + _f("B3", 'A3&"forth"')
    data = ('<row r="1">' + _str("A1", "S2") + '<c r="B1"><v>7</v></c>' + _str("D1", "q")
            + "</row>")
    rows = f'<row r="1">{cells}</row><row r="2">{errors}</row><row r="3">{cycle}</row>'
    return _book({"S": rows, "Data": data}, {"named": "Data!$A$1"})


def test_formulas_compute_as_libreoffice_computes_them(tmp_path: Path) -> None:
    data = _computed_book()
    if shutil.which("soffice") is not None:
        path = tmp_path / "e.xlsx"
        path.write_bytes(data)
        shown = list(csv.reader(io.StringIO(_soffice_csv(path).decode("utf-8"))))
        assert shown[0] == [want for _, want in COMPUTED]
        assert all(v.startswith(("#", "Err:")) for v in shown[1][: len(ERRORS)])
        assert all(v.startswith("Err:") for v in shown[2][:2])  # a cycle
    reading = _package_reading(data).decode()
    assert reading == "".join(want for _, want in COMPUTED) + "\nS27q"


def test_cached_values_are_shown_where_libreoffice_shows_them(tmp_path: Path) -> None:
    """A cached value is shown as it is when Microsoft's or LibreOffice's application wrote
    the file; else LibreOffice recomputes the formulas whose cached value is not a number
    (a string can be a decoy), and so does the reading."""
    rows = ('<row r="1"><c r="A1" t="str"><f>"real"</f><v>decoy</v></c>'
            '<c r="B1" t="str"><f>"two"</f><v></v></c><c r="C1"><f>1+1</f><v>5</v></c></row>')
    for i, (app, want) in enumerate((("Microsoft Excel", "decoytwo5"),
                                     ("LibreOffice/7.3", "decoytwo5"),
                                     ("openpyxl", "realtwo5"), (None, "realtwo5"))):
        data = _book({"S": rows}, app=app)
        if shutil.which("soffice") is not None:
            path = tmp_path / f"{i}.xlsx"
            path.write_bytes(data)
            assert _soffice_csv(path).replace(b",", b"").strip() == want.encode()
        assert _package_reading(data) == want.encode()


def test_cached_formulas_never_reach_the_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A workbook whose formulas all keep their values (from Excel) is read as before,
    without the evaluator."""
    from zerohour.scan import formulas

    def refused(*args: object) -> None:
        raise AssertionError("evaluator used")

    monkeypatch.setattr(formulas.Book, "__init__", refused)
    rows = ('<row r="1"><c r="A1"><f>1+1</f><v>2</v></c><c r="B1" t="str"><f>"a"&amp;"b"</f>'
            '<v>ab</v></c><c r="C1" t="s"><v>0</v></c></row>')
    assert _package_reading(_book({"S": rows}, app="Microsoft Excel")) == b"2ab"


def test_parse_is_bounded_and_never_raises() -> None:
    from zerohour.scan.formulas import parse

    assert parse("(" * 5000 + "1" + ")" * 5000) is None  # longer than a formula may be
    assert parse("(" * 100 + "1" + ")" * 100) is None  # nested deeper than MAX_NESTING
    assert parse("-" * 8000 + "1") is None
    assert parse('"a"&' * 1500 + '"b"') is not None  # a long chain is flat, not deep
    for bad in ('"open', "SUM(1,", "1+", "{1,2}", "A1:B2:C3", "@", ")", "A1:1"):
        assert parse(bad) is None


# --- bounds --------------------------------------------------------------------------------------

BOUND = 15.0  # CPU seconds (a bound on growth, not a speed: about 1-4 s alone)


def _timed(data: bytes) -> tuple[bytes | None, float]:
    t0 = cpu.process_time()
    try:
        got: bytes | None = _package_reading(data)
    except ScanLimitExceeded:
        got = None
    return got, cpu.process_time() - t0


def test_a_chain_of_100k_references_is_followed_in_bounded_time() -> None:
    """A1 refers to A2, ..., A99999 to A100000: the first cell needs the whole chain,
    followed on an explicit stack (no recursion); every cell shows the last one's text."""
    n = 100_000
    rows = "".join(f'<row r="{r}">' + _f(f"A{r}", f'A{r + 1}&""') + "</row>"
                   for r in range(1, n)) + f'<row r="{n}">' + _str(f"A{n}", "TVqQ") + "</row>"
    got, spent = _timed(_book({"S": rows}))
    assert spent < 2 * BOUND  # (about 4 s here: 100k formulas parsed, 100k cells computed)
    assert got == b"\n".join([b"TVqQ"] * n)


def test_a_chain_that_grows_its_text_is_a_limit() -> None:
    """A1 = A2&"xyz", ..., over 100k cells: the texts made grow with the square of the
    chain (15 billion characters), and the characters made are bounded."""
    n = 100_000
    rows = "".join(f'<row r="{r}">' + _f(f"A{r}", f'A{r + 1}&"xyz"') + "</row>"
                   for r in range(1, n)) + f'<row r="{n}">' + _str(f"A{n}", "T") + "</row>"
    got, spent = _timed(_book({"S": rows}))
    assert spent < BOUND
    assert got is None


def test_reference_cycles_show_nothing() -> None:
    """A1 -> B1 -> C1 -> A1, and a cell that refers to itself: LibreOffice shows Err:522,
    the reading shows nothing for them and the rest as usual."""
    rows = ('<row r="1">' + _f("A1", 'B1&"a"') + _f("B1", 'C1&"b"') + _f("C1", 'A1&"c"')
            + _f("D1", 'D1&"d"') + _f("E1", '"ok"') + "</row>")
    got, spent = _timed(_book({"S": rows}))
    assert spent < BOUND
    assert got == b"ok"


def test_huge_texts_are_a_limit_not_a_crash(clam_engine: Engine) -> None:
    """REPT of a billion, REPT of REPT, and `&` doubling a text through 40 cells: the work
    is charged before the text is made, and past the bound the scan says so."""
    doubling = '<row r="1">' + _str("A1", "ab") + "".join(
        _f(f"{_col(j)}1", f"{_col(j - 1)}1&{_col(j - 1)}1") for j in range(2, 42)) + "</row>"
    for rows in ('<row r="1">' + _f("A1", 'REPT("A",1000000000)') + "</row>",
                 '<row r="1">' + _f("A1", 'REPT(REPT("AB",30000),30000)') + "</row>",
                 doubling):
        data = _book({"S": rows})
        got, spent = _timed(data)
        assert spent < BOUND
        assert got is None  # (a limit)
        t0 = cpu.process_time()
        report = clam_engine.scan_bytes(data, "h.xlsx")
        assert cpu.process_time() - t0 < 2 * BOUND
        assert report.names == ("Heuristics.Limits.Exceeded.MaxScanSize",)


def test_ranges_over_everything_are_bounded() -> None:
    """20000 cells, each CONCAT of the whole sheet: the cells visited are counted, and the
    reading stops at its bound in bounded time."""
    rows = "".join(f'<row r="{r}">' + _f(f"A{r}", "_xlfn.CONCAT($A$1:$XFD$1048576)")
                   + "</row>" for r in range(1, 20001))
    got, spent = _timed(_book({"S": rows}))
    assert spent < BOUND
    assert got is None  # (a limit: the steps ran out)


def test_ods_repeated_formula_cells_are_bounded() -> None:
    """A formula cell repeated over a whole sheet of rows and columns, referring to a
    range of everything."""
    from zerohour.scan import textual

    cell = ('<table:table-cell table:number-columns-repeated="16384" table:formula='
            '"of:=CONCATENATE([.A1:.XFD1048576];[.A1])"><text:p>x</text:p></table:table-cell>')
    content = (f'<?xml version="1.0"?><office:document-content {_ODF_NS_ALL}><office:body>'
               '<office:spreadsheet><table:table table:name="S"><table:table-row '
               f'table:number-rows-repeated="1048576">{cell * 20}</table:table-row>'
               "</table:table></office:spreadsheet></office:body></office:document-content>")
    t0 = cpu.process_time()
    with contextlib.suppress(ScanLimitExceeded):
        textual.office_xml_readings(content.encode())
    assert cpu.process_time() - t0 < 2 * BOUND


_ODF_NS_ALL = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               f'office:version="1.2" {_OF_NS}')


def test_random_formulas_never_raise() -> None:
    """1500 random formulas of every function, operator and kind of reference (and of
    wrong argument counts and types): each computes to a value or stops at a limit."""
    from zerohour.scan import formulas

    rnd = random.Random(19)
    atoms = ['"a"', '""', '"x""y"', "1", "0", "-1", "2.5", "1e300", "TRUE", "A1", "B2", "$A$1",
             "S!A1", "'S'!B1", "A1:B2", "A:A", "1:1", "nm", "zz", '"12"', '"FF"', "300",
             "-300", "1114112", "55296", "9.99e14", "1e16"]
    names = [*formulas._FUNCTIONS, *formulas._LAZY, "FOO"]

    def expr(depth: int) -> str:
        r = rnd.random()
        if depth > 4 or r < 0.35:
            return rnd.choice(atoms)
        if r < 0.7:
            args = ",".join(expr(depth + 1) for _ in range(rnd.randint(0, 4)))
            return f"{rnd.choice(names)}({args})"
        if r < 0.85:
            return f"-({expr(depth + 1)})"
        return expr(depth + 1) + rnd.choice("&+-*/^=<>") + expr(depth + 1)

    t0 = cpu.process_time()
    for _ in range(1500):
        book = formulas.Book()
        cells = book.add_sheet("S")
        cells.update({(1, 1): formulas.Formula(expr(0), 1, 1), (1, 2): "v", (3, 3): 5.0,
                      (2, 2): formulas.Formula(expr(0), 2, 2)})
        book.names["nm"] = "S!$B$1"
        with contextlib.suppress(ScanLimitExceeded):
            formulas.text(book.value(0, 1, 1))
    assert cpu.process_time() - t0 < 4 * BOUND
