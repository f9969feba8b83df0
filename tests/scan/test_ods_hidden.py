"""OpenDocument spreadsheets whose decoys the reader does not see (round 20): clam.exe's base64
in cells, with decoy cells in rows and columns whose `table:visibility` is `collapse` or
`filter`, and a decoy sheet whose table style says `table:display="false"`. The whole text
(what the csv export and the old reading hold) runs the decoys into the base64; what the
reader sees does not. LibreOffice is the oracle: its PDF of the workbook (`pdftotext`) shows
the base64 of clam.exe alone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_office_text import (  # type: ignore[import-not-found]
    _ODS,
    NAME,
    _chunks,
    _decodes,
    _odf,
)

from helpers.tools import tool
from zerohour.scan import Engine
from zerohour.scan.spreadsheet import ods_visible

_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
       'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
       'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
       'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2"')
_STYLES = ('<office:automatic-styles><style:style style:name="ta1" style:family="table">'
           '<style:table-properties table:display="true"/></style:style>'
           '<style:style style:name="ta2" style:family="table">'
           '<style:table-properties table:display="false"/></style:style>'
           "</office:automatic-styles>")


def _cell(text: str) -> str:
    return (f'<table:table-cell office:value-type="string"><text:p>{text}</text:p>'
            "</table:table-cell>")


def _decoy(i: int) -> str:
    return "".join("QRSTUVWXYZqrstuvwxyz"[(i * 7 + k * 3) % 20] for k in range(8))


def _sheet(how: str) -> str:
    """Rows of four 8-character chunks (B..E); each hiding place holds decoys."""
    if how == "covered-cells":  # round 5: a cell merged over two rows covers the decoys
        rows = "".join(
            '<table:table-row><table:table-cell table:number-rows-spanned="2" '
            f'table:number-columns-spanned="4" office:value-type="string"><text:p>{chunk}'
            "</text:p></table:table-cell></table:table-row><table:table-row>"
            f'<table:covered-table-cell office:value-type="string"><text:p>{_decoy(i)}'
            "</text:p></table:covered-table-cell></table:table-row>"
            for i, chunk in enumerate(_chunks(32)))
        return f'<table:table table:name="Data" table:style-name="ta1">{rows}</table:table>'
    if how.startswith("repeated-"):  # round 5: "2.0" and "+2" are 2 to LibreOffice
        count = how.removeprefix("repeated-")
        columns = ('<table:table-column/><table:table-column table:visibility="collapse" '
                   f'table:number-columns-repeated="{count}"/><table:table-column/>')
        rows = "".join(f"<table:table-row>{_cell(chunk)}<table:table-cell/>{_cell(_decoy(i))}"
                       "</table:table-row>" for i, chunk in enumerate(_chunks(8)))
        return (f'<table:table table:name="Data" table:style-name="ta1">{columns}{rows}'
                "</table:table>")
    chunks = _chunks(8)
    rows = [chunks[i : i + 4] for i in range(0, len(chunks), 4)]
    visibility = "filter" if how == "filtered-rows" else "collapse"
    columns = ('<table:table-column table:visibility="collapse"/>'  # A: decoys
               '<table:table-column table:number-columns-repeated="4"/>')
    out = []
    for r, row in enumerate(rows):
        cells = "".join(_cell(c) for c in row)
        if how == "hidden-columns":
            out.append(f"<table:table-row>{_cell(_decoy(r))}{cells}</table:table-row>")
        else:
            out.append(f"<table:table-row>{_cell('')}{cells}</table:table-row>")
            if how in ("hidden-rows", "filtered-rows"):
                out.append(f'<table:table-row table:visibility="{visibility}">'
                           + "".join(_cell(_decoy(r * 5 + k)) for k in range(5))
                           + "</table:table-row>")
    return (f'<table:table table:name="Data" table:style-name="ta1">{columns}{"".join(out)}'
            "</table:table>")


def _workbook(how: str) -> bytes:
    tables = _sheet(how)
    if how == "hidden-sheet":  # the rows cut in two sheets, a hidden one of decoys between
        rows = tables.split("<table:table-row>")
        half = len(rows) // 2
        decoys = "".join(f"<table:table-row>{_cell('')}{_cell(_decoy(r))}</table:table-row>"
                         for r in range(8))
        tables = ("<table:table-row>".join(rows[:half]) + "</table:table>"
                  f'<table:table table:name="Notes" table:style-name="ta2">{decoys}'
                  '</table:table><table:table table:name="More" table:style-name="ta1">'
                  + "<table:table-row>" + "<table:table-row>".join(rows[half:]))
    return _odf(f"<office:spreadsheet>{tables}</office:spreadsheet>", _ODS, styles=_STYLES,
                ns=_NS)


def _printed(path: Path) -> bytes:
    """The text of LibreOffice's PDF of the workbook (what it shows and prints)."""
    out = path.parent / "lo"
    subprocess.run([tool("soffice"),
                    f"-env:UserInstallation=file://{path.parent}/profile", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=300)
    text = subprocess.run([tool("pdftotext"), "-layout", str(out / (path.stem + ".pdf")), "-"],
                          check=True, capture_output=True).stdout
    # (without the page header and footer: the sheet's name, the page number)
    return re.sub(rb"(?m)^\s*(?:Data|More|Page \d+)\s*$", b"", text)


HOW = ["hidden-rows", "filtered-rows", "hidden-columns", "hidden-sheet", "covered-cells",
       "repeated-2.0", "repeated-+2"]


@pytest.mark.parametrize("how", HOW)
def test_decoys_the_reader_does_not_see(clam_engine: Engine, tmp_path: Path, how: str) -> None:
    data = _workbook(how)
    path = tmp_path / "book.ods"
    path.write_bytes(data)
    printed = _printed(path)
    assert _decodes(printed), printed[:300]  # the reader sees clam.exe's base64
    assert clam_engine.scan_bytes(data, "book.ods").names == (NAME,)


def test_a_workbook_with_nothing_hidden_is_left_as_it_is() -> None:
    from zerohour.scan.textual import parsed_xml

    content = (f'<office:document-content {_NS}><office:body><office:spreadsheet>'
               f'<table:table table:name="A"><table:table-row>{_cell("x")}</table:table-row>'
               "</table:table></office:spreadsheet></office:body></office:document-content>")
    assert ods_visible(parsed_xml(content.encode())) is None
