"""What an Office reader does not show, left out (round 20): the base64 of clam.exe in the
shown rows of a workbook with base64-like decoys between them, in rows or columns marked
hidden, in a hidden sheet, in cells whose number format shows nothing (`;;;`). The first
reading keeps them (LibreOffice's csv holds hidden rows), one more leaves them out.
And an RTF document whose stylesheet hides decoys (`\\v` in a character or paragraph
style) or puts lower-case base64 in capitals (`\\caps` in a paragraph style, `\\scaps`).
And an OpenDocument text laid out as LibreOffice prints it: decoy paragraphs hidden by a
`text:hidden-paragraph` whose condition is true, `text:user-defined` fields showing the
document's properties (meta.xml) over cached decoys, footnotes drawn at the page's foot,
ruby drawn above its base. And a Word table drawn right to left (`w:bidiVisual`), its
rows' pieces written last first.
LibreOffice's print (PDF, read by pdftotext) is the oracle where it is installed: it shows
the payload and none of the decoys."""

from __future__ import annotations

import base64
import io
import random
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from test_office_text import (  # type: ignore[import-not-found]
    _CT,
    _R,
    _RELS,
    _SML,
    NAME,
    _b64,
    _chunks,
    _decodes,
    _docx,
    _lines,
    _lo_printed,
    _zip,
)

from helpers import cpu
from zerohour.scan import Engine

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_STYLES = (f'<?xml version="1.0" encoding="UTF-8"?><styleSheet {_NS}><numFmts count="1">'
           '<numFmt numFmtId="164" formatCode=";;;"/></numFmts><fonts count="1"><font>'
           '<sz val="8"/><name val="Courier New"/></font></fonts><fills count="1"><fill>'
           '<patternFill patternType="none"/></fill></fills><borders count="1"><border/>'
           '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
           'borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" '
           'fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" '
           'borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>')


_WIDE = '<col min="1" max="1" width="80" customWidth="1"/>'
_HIDING = ' s="1"'


def _decoy(i: int) -> str:
    """64 base64 characters that are not clam.exe's."""
    rng = random.Random(i)
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(48))).decode()


def _cell(ref: str, text: str, style: str = "") -> str:
    return f'<c r="{ref}"{style} t="inlineStr"><is><t>{text}</t></is></c>'


def _book(sheets: list[tuple[str, str, str]]) -> bytes:
    """An .xlsx of sheets (state, `<cols>`, `<row>` elements), with a `;;;` style (s="1")."""
    overrides = (f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}sheet.main+xml"/>'
                 f'<Override PartName="/xl/styles.xml" ContentType="{_SML}styles+xml"/>')
    rels = f'<Relationship Id="rS" Type="{_R}styles" Target="styles.xml"/>'
    listed, files = "", {}
    for i, (state, cols, rows) in enumerate(sheets, 1):
        overrides += (f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                      f'ContentType="{_SML}worksheet+xml"/>')
        rels += (f'<Relationship Id="rId{i}" Type="{_R}worksheet" '
                 f'Target="worksheets/sheet{i}.xml"/>')
        listed += (f'<sheet name="S{i}" sheetId="{i}"'
                   + (f' state="{state}"' if state else "") + f' r:id="rId{i}"/>')
        files[f"xl/worksheets/sheet{i}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}>'
            f"<cols>{cols or _WIDE}</cols>"
            f"<sheetData>{rows}</sheetData></worksheet>")
    files.update({
        "[Content_Types].xml": _CT.format(overrides),
        "_rels/.rels": _RELS.format(f'<Relationship Id="rId1" Type="{_R}officeDocument" '
                                    'Target="xl/workbook.xml"/>'),
        "xl/workbook.xml": (f'<?xml version="1.0" encoding="UTF-8"?><workbook {_NS} '
                            f'xmlns:r="{_R[:-1]}"><sheets>{listed}</sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": _RELS.format(rels),
        "xl/styles.xml": _STYLES,
    })
    return _zip(files)


def _interleaved(hide: str) -> str:
    """The payload's lines in rows 1, 3, 5, ...; a decoy after each, hidden by `hide`:
    a row attribute, or a cell style."""
    rows = []
    for i, line in enumerate(_lines()):
        rows.append(f'<row r="{2 * i + 1}">{_cell(f"A{2 * i + 1}", line)}</row>')
        r = 2 * i + 2
        if hide == "row":
            rows.append(f'<row r="{r}" hidden="1">{_cell(f"A{r}", _decoy(i))}</row>')
        else:
            rows.append(f'<row r="{r}">{_cell(f"A{r}", _decoy(i), _HIDING)}</row>')
    return "".join(rows)


def xlsx_hidden_rows() -> bytes:
    return _book([("", "", _interleaved("row"))])


def xlsx_empty_format() -> bytes:
    return _book([("", "", _interleaved("format"))])


def xlsx_hidden_column() -> bytes:
    """Decoys in hidden column A, the payload in B."""
    cols = ('<col min="1" max="1" width="80" hidden="1" customWidth="1"/>'
            '<col min="2" max="2" width="80" customWidth="1"/>')
    rows = "".join(f'<row r="{i + 1}">{_cell(f"A{i + 1}", _decoy(i))}'
                   f'{_cell(f"B{i + 1}", line)}</row>' for i, line in enumerate(_lines()))
    return _book([("", cols, rows)])


def xlsx_hidden_sheet() -> bytes:
    """The payload's first half in sheet 1, its second in sheet 3, decoys in sheet 2
    (hidden) and in a very hidden sheet 4."""
    lines = _lines()
    half = len(lines) // 2

    def rows(part: list[str]) -> str:
        return "".join(f'<row r="{i + 1}">{_cell(f"A{i + 1}", t)}</row>'
                       for i, t in enumerate(part))

    decoys = rows([_decoy(i) for i in range(8)])
    return _book([("", "", rows(lines[:half])), ("hidden", "", decoys),
                  ("", "", rows(lines[half:])), ("veryHidden", "", decoys)])


VARIANTS = {
    "hidden-rows": xlsx_hidden_rows,
    "hidden-column": xlsx_hidden_column,
    "hidden-sheets": xlsx_hidden_sheet,
    "empty-format": xlsx_empty_format,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_engine_finds_what_the_sheet_shows(clam_engine: Engine, tmp_path: Path,
                                               variant: str) -> None:
    """LibreOffice prints the base64 of clam.exe and none of the decoys (the oracle, where
    it is installed); the engine finds clam.exe."""
    data = VARIANTS[variant]()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / "data.xlsx"
        path.write_bytes(data)
        printed = _lo_printed(path)
        assert _decodes(printed)
        assert _decoy(0).encode() not in printed
    assert clam_engine.scan_bytes(data, "data.xlsx").names == (NAME,)


def test_hidden_rows_and_columns_are_bounded() -> None:
    """100k rows, every other hidden, and 20k hidden column ranges over all columns but
    the first: the readings take about what the first alone takes."""
    from zerohour.scan import officepkg
    from zerohour.scan.limits import ScanContext

    cols = '<col min="2" max="16384" hidden="1"/>' * 20_000
    rows = "".join(f'<row r="{r}"' + (' hidden="1">' if r % 2 else ">")
                   + _cell(f"A{r}", "QUJD") + _cell(f"B{r}", "QUJD") + "</row>"
                   for r in range(1, 100_001))
    data = _book([("", cols, rows)])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    t0 = cpu.process_time()
    got = [c.data for c in officepkg.package_readings(data, members, ScanContext())]
    assert cpu.process_time() - t0 < 15.0  # (about 2 s here)
    assert got[1] == b"\n".join([b"QUJD"] * 50_000)


# --- RTF: styles of the stylesheet ---------------------------------------------------------

_RTF_HEAD = "{\\rtf1\\ansi{\\fonttbl{\\f0 Courier New;}}"


def _pieces(text: str) -> list[tuple[str, bool]]:
    """Base64 `text` cut into runs: (run, whether it holds capitals), alternating."""
    return [(m.group(), m.group()[0].isupper()) for m in re.finditer(r"[A-Z]+|[^A-Z]+", text)]


def rtf_char_style_hidden() -> bytes:
    """Decoys in runs of character style 10, defined with `\\v`, between 8-character runs."""
    body = "".join(f"{c}{{\\cs10 {_decoy(i)[:8]}}}" for i, c in enumerate(_chunks()))
    return (_RTF_HEAD + "{\\stylesheet{\\s0 Normal;}{\\*\\cs10\\additive\\v Hidden;}}"
            f"\\f0\\fs16 {body}}}").encode()


def rtf_para_style_hidden() -> bytes:
    """Decoy paragraphs of paragraph style 3, based on style 2 which has `\\v`."""
    body = "".join(f"\\pard\\s0 {line}\\par \\pard\\s3 {_decoy(i)}\\par "
                   for i, line in enumerate(_lines()))
    return (_RTF_HEAD + "{\\stylesheet{\\s0 Normal;}{\\s2\\v Hidden;}"
            "{\\s3\\sbasedon2 Decoy;}}" f"\\f0\\fs16 {body}}}").encode()


def rtf_para_style_caps() -> bytes:
    """The base64 in lower case; its capitals' paragraphs of style 1, defined with `\\caps`."""
    body = "".join(f"\\pard\\s{1 if up else 2} {run.lower()}\\par "
                   for run, up in _pieces(_b64()))
    return (_RTF_HEAD + "{\\stylesheet{\\s0 Normal;}{\\s1\\caps\\f0\\fs16 Caps;}"
            "{\\s2\\f0\\fs16 Plain;}}" f"{body}}}").encode()


def rtf_small_caps() -> bytes:
    """The base64 in lower case, its capitals in `{\\scaps ...}` groups."""
    body = "".join(f"{{\\scaps {run.lower()}}}" if up else run for run, up in _pieces(_b64()))
    return (_RTF_HEAD + f"\\f0\\fs16 {body}}}").encode()


RTF_VARIANTS = {
    "char-style-hidden": rtf_char_style_hidden,
    "para-style-hidden": rtf_para_style_hidden,
    "para-style-caps": rtf_para_style_caps,
    "small-caps": rtf_small_caps,
}


@pytest.mark.parametrize("variant", list(RTF_VARIANTS))
def test_the_engine_finds_what_the_rtf_styles_show(clam_engine: Engine, tmp_path: Path,
                                                   variant: str) -> None:
    """LibreOffice prints the base64 of clam.exe (the oracle, where it is installed); the
    engine finds clam.exe."""
    data = RTF_VARIANTS[variant]()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / "note.rtf"
        path.write_bytes(data)
        printed = _lo_printed(path)
        assert _decodes(printed)
        assert _decoy(0)[:8].encode() not in printed
    assert clam_engine.scan_bytes(data, "note.rtf").names == (NAME,)


def test_rtf_styles_are_bounded() -> None:
    """100k styles each based on the one before (the first hidden), and 200k runs
    switching styles: bounded, every chain followed to its end."""
    from zerohour.scan.documents import rtf
    from zerohour.scan.limits import ScanContext

    sheet = "".join(f"{{\\s{i}\\sbasedon{i - 1} S{i};}}" for i in range(1, 100_001))
    body = "".join(f"\\pard\\s{i % 100_000}{{\\cs{i} x}}" for i in range(200_000))
    doc = (_RTF_HEAD + "{\\stylesheet{\\s0\\v Normal;}" + sheet + "}" + body + "}").encode()
    t0 = cpu.process_time()
    shown = rtf.rtf_text(doc, ScanContext(), shown_only=True)
    assert cpu.process_time() - t0 < 15.0  # (about 2 s here)
    assert shown is None  # every style is based on a hidden one


# --- OpenDocument: what the layout shows ---------------------------------------------------

_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
           'xmlns:ooow="http://openoffice.org/2004/writer" office:version="1.3"')


def _odt(body: str, meta: str = "") -> bytes:
    """An .odt of `body` (office:text's content) and user-defined properties `meta`."""
    mimetype = "application/vnd.oasis.opendocument.text"
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:'
                'oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
                + "".join(f'<manifest:file-entry manifest:full-path="{n}" '
                          'manifest:media-type="text/xml"/>' for n in ("content.xml", "meta.xml"))
                + "</manifest:manifest>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", '<?xml version="1.0" encoding="UTF-8"?><office:document-'
                   f"content {_ODF_NS}><office:body><office:text>{body}</office:text>"
                   "</office:body></office:document-content>")
        z.writestr("meta.xml", f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta '
                   f"{_ODF_NS}><office:meta>{meta}</office:meta></office:document-meta>")
    return out.getvalue()


def odt_hidden_paragraphs() -> bytes:
    """Decoy paragraphs whose hidden-paragraph condition is true (cached as false), the
    payload's in paragraphs whose condition is false (cached as true)."""
    body = "".join(
        '<text:p><text:hidden-paragraph text:condition="ooow:1==2" text:is-hidden="true"/>'
        f"{line}</text:p><text:p><text:hidden-paragraph text:condition="
        f'"ooow:{i} &lt; {i + 1}" text:is-hidden="false"/>{_decoy(i)}</text:p>'
        for i, line in enumerate(_lines()))
    return _odt(body)


def odt_user_defined() -> bytes:
    """8-character pieces as user-defined properties (shuffled in meta.xml) shown by
    fields whose cached text is a decoy, and a field naming no property."""
    pieces = _chunks()
    order = list(range(len(pieces)))
    random.Random(5).shuffle(order)
    meta = "".join(f'<meta:user-defined meta:name="p{k}">{pieces[k]}</meta:user-defined>'
                   for k in order)
    body = "".join(f'<text:user-defined text:name="p{k}">{_decoy(k)[:8]}</text:user-defined>'
                   for k in range(len(pieces)))
    missing = f'<text:user-defined text:name="none">{_decoy(0)}</text:user-defined>'
    return _odt(f"<text:p>{body[: len(body) // 2]}{missing}{body[len(body) // 2 :]}</text:p>",
                meta)


def odt_footnotes() -> bytes:
    """The payload's first half in the text, its second in footnotes (at the page's foot)
    written between the first half's pieces."""
    pieces = _chunks(16)
    half = (len(pieces) + 1) // 2
    def note(i: int) -> str:
        return (f'<text:note text:id="n{i}" text:note-class="footnote"><text:note-citation '
                'text:label="*">*</text:note-citation><text:note-body><text:p>'
                f"{pieces[half + i]}</text:p></text:note-body></text:note>")

    body = "".join(piece + (note(i) if half + i < len(pieces) else "")
                   for i, piece in enumerate(pieces[:half]))
    return _odt(f"<text:p>{body}</text:p>")


def odt_ruby() -> bytes:
    """A paragraph of each two pieces: the second the base, the first its ruby (above)."""
    pieces = _chunks()
    body = "".join(f"<text:p><text:ruby><text:ruby-base>{pieces[i + 1]}</text:ruby-base>"
                   f"<text:ruby-text>{pieces[i]}</text:ruby-text></text:ruby></text:p>"
                   if i + 1 < len(pieces) else f"<text:p>{pieces[i]}</text:p>"
                   for i in range(0, len(pieces), 2))
    return _odt(body)


ODT_VARIANTS = {
    "hidden-paragraphs": odt_hidden_paragraphs,
    "user-defined": odt_user_defined,
    "footnotes": odt_footnotes,
    "ruby": odt_ruby,
}


@pytest.mark.parametrize("variant", list(ODT_VARIANTS))
def test_the_engine_finds_what_the_layout_shows(clam_engine: Engine, tmp_path: Path,
                                               variant: str) -> None:
    """LibreOffice prints the base64 of clam.exe (the oracle, where it is installed); the
    engine finds clam.exe."""
    data = ODT_VARIANTS[variant]()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / "report.odt"
        path.write_bytes(data)
        printed = _lo_printed(path)
        assert _decodes(printed)
        assert _decoy(0)[:8].encode() not in printed
    assert clam_engine.scan_bytes(data, "report.odt").names == (NAME,)


def _flat(odt: bytes) -> bytes:
    """The .fodt of an .odt of `_odt`: its meta and body in one XML document."""
    with zipfile.ZipFile(io.BytesIO(odt)) as z:
        content, meta = z.read("content.xml").decode(), z.read("meta.xml").decode()
    body = content.split("<office:body>")[1].split("</office:body>")[0]
    props = meta.split("<office:meta>")[1].split("</office:meta>")[0]
    return ('<?xml version="1.0" encoding="UTF-8"?><office:document '
            f'{_ODF_NS} office:mimetype="application/vnd.oasis.opendocument.text">'
            f"<office:meta>{props}</office:meta><office:body>{body}</office:body>"
            "</office:document>").encode()


@pytest.mark.parametrize("variant", list(ODT_VARIANTS))
def test_a_flat_file_is_laid_out_too(clam_engine: Engine, tmp_path: Path,
                                     variant: str) -> None:
    """The same documents as flat files (.fodt): LibreOffice prints the base64 of clam.exe
    (the oracle), the engine finds clam.exe."""
    data = _flat(ODT_VARIANTS[variant]())
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / "report.fodt"
        path.write_bytes(data)
        printed = _lo_printed(path)
        assert _decodes(printed)
        assert _decoy(0)[:8].encode() not in printed
    assert clam_engine.scan_bytes(data, "report.fodt").names == (NAME,)


def test_odt_layout_is_bounded() -> None:
    """50k paragraphs each with a hidden-paragraph condition (false), a ruby, a note and a
    user-defined field: bounded."""
    from zerohour.scan import officepkg
    from zerohour.scan.limits import ScanContext

    para = ('<text:p><text:hidden-paragraph text:condition="ooow:0"/><text:ruby>'
            "<text:ruby-base>b</text:ruby-base><text:ruby-text>r</text:ruby-text></text:ruby>"
            '<text:note text:note-class="footnote"><text:note-body><text:p>n</text:p>'
            '</text:note-body></text:note><text:user-defined text:name="x">d'
            "</text:user-defined></text:p>")
    data = _odt(para * 50_000, '<meta:user-defined meta:name="x">u</meta:user-defined>')
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    t0 = cpu.process_time()
    got = [c.data for c in officepkg.package_readings(data, members, ScanContext())]
    spent = cpu.process_time() - t0
    assert spent < 15.0, spent  # (about 2 s here)
    assert [g.strip() for g in got] == [b"\n".join([b"r", b"bu"] * 50_000 + [b"n"] * 50_000)]


# --- Word: tables drawn right to left ------------------------------------------------------

def docx_rtl_table() -> bytes:
    """The base64 in rows of 6 pieces of 8, each row's cells written last first in a table
    drawn right to left."""
    pieces = _chunks()
    rows = []
    for i in range(0, len(pieces), 6):
        cells = "".join('<w:tc><w:tcPr><w:tcW w:w="1500" w:type="dxa"/></w:tcPr><w:p><w:pPr>'
                        '<w:bidi w:val="0"/><w:jc w:val="left"/></w:pPr><w:r><w:rPr><w:sz '
                        f'w:val="16"/></w:rPr><w:t>{piece}</w:t></w:r></w:p></w:tc>'
                        for piece in reversed(pieces[i : i + 6]))
        rows.append(f"<w:tr>{cells}</w:tr>")
    grid = '<w:gridCol w:w="1500"/>' * 6
    return _docx('<w:tbl><w:tblPr><w:bidiVisual/><w:tblW w:w="0" w:type="auto"/></w:tblPr>'
                 f"<w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl><w:p/>")


def test_the_engine_finds_a_right_to_left_table(clam_engine: Engine, tmp_path: Path) -> None:
    """LibreOffice prints the base64 of clam.exe, each row's cells right to left (the
    oracle: pdftotext -layout, where installed); the engine finds clam.exe."""
    data = docx_rtl_table()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / "report.docx"
        path.write_bytes(data)
        _lo_printed(path)
        pdf = path.parent / "lo" / "report.pdf"
        printed = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                                 check=True).stdout
        assert _decodes(printed)
    assert clam_engine.scan_bytes(data, "report.docx").names == (NAME,)


def test_right_to_left_tables_are_bounded() -> None:
    """8k right-to-left tables of 5 rows of 6 cells (12 MB of XML), and a row of 20k
    cells: bounded (the part parsed, and its text walked once more)."""
    from zerohour.scan import officepkg
    from zerohour.scan.limits import ScanContext

    row = "<w:tr>" + "".join(f"<w:tc><w:p><w:r><w:t>{k}</w:t></w:r></w:p></w:tc>"
                             for k in range(6)) + "</w:tr>"
    table = "<w:tbl><w:tblPr><w:bidiVisual/></w:tblPr>" + row * 5 + "</w:tbl>"
    wide = ("<w:tbl><w:tblPr><w:bidiVisual/></w:tblPr><w:tr>"
            + "<w:tc><w:p><w:r><w:t>y</w:t></w:r></w:p></w:tc>" * 20_000 + "</w:tr></w:tbl>")
    data = _docx(table * 8_000 + wide)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    t0 = cpu.process_time()
    got = list(officepkg.package_readings(data, members, ScanContext()))
    spent = cpu.process_time() - t0
    assert spent < 30.0, spent  # (about 4 s here, 1.6 s without the reading)
    laid = next(c.data for c in got if c.origin == "office-layout")
    assert laid.startswith(b"5\n4\n3\n2\n1\n0\n")
