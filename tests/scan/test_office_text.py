"""Office documents read as the recipient's tool shows them (round 16): the base64 of clam.exe
in a .docx as `<w:sym>` characters, as footnotes stored out of order or as list labels; in an
.xlsx as shared strings stored out of order, number-format literals, cells written out of
order or strings with phonetic runs; in an .ods as repeated cells; in an .odt between note
bodies a text export leaves out; in a plain XML file as internal entities or cut by CDATA and
processing instructions. Each document is built here; the tool the recipient used (LibreOffice,
pandoc, xlsx2csv, xmllint) is the oracle that it shows the base64, where it is installed."""

from __future__ import annotations

import base64
import binascii
import io
import random
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from helpers import cpu
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"


def _b64() -> str:
    return base64.b64encode(CLAM.read_bytes()).decode()


def _chunks(n: int = 8) -> list[str]:
    b64 = _b64()
    return [b64[i : i + n] for i in range(0, len(b64), n)]


def _lines() -> list[str]:
    b64 = _b64()
    return [b64[i : i + 64] for i in range(0, len(b64), 64)]


def _decodes(shown: bytes) -> bool:
    """Whether the base64 characters of `shown` are clam.exe (`base64 -d -i`)."""
    kept = bytes(c for c in shown if chr(c).isascii() and (chr(c).isalnum() or c in b"+/="))
    try:
        return binascii.a2b_base64(kept) == CLAM.read_bytes()
    except binascii.Error:
        return False


def _have(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} not installed")


def _soffice(path: Path, target: str, ext: str) -> bytes:
    """`soffice --headless --convert-to <target>` of `path`, in a profile of its own."""
    out = path.parent / "lo"
    subprocess.run([shutil.which("soffice") or "soffice",
                    f"-env:UserInstallation=file://{path.parent}/profile", "--headless",
                    "--convert-to", target, "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=300)
    return (out / (path.stem + "." + ext)).read_bytes()


_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
       'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
       'openxmlformats-package.relationships+xml"/><Default Extension="xml" '
       'ContentType="application/xml"/>{}</Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
         'openxmlformats.org/package/2006/relationships">{}</Relationships>')
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_W = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
      'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml."
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml."


def _zip(parts: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return out.getvalue()


def _docx(body: str, parts: dict[str, tuple[str, str, str]] | None = None) -> bytes:
    """A .docx of `body`, with more word/ parts: name -> (relationship, content type, xml)."""
    parts = parts or {}
    overrides = f'<Override PartName="/word/document.xml" ContentType="{_WML}document.main+xml"/>'
    rels = ""
    for i, (name, (rel, ctype, _)) in enumerate(parts.items()):
        overrides += f'<Override PartName="/word/{name}" ContentType="{_WML}{ctype}+xml"/>'
        rels += f'<Relationship Id="rId{i + 5}" Type="{_R}{rel}" Target="{name}"/>'
    files = {
        "[Content_Types].xml": _CT.format(overrides),
        "_rels/.rels": _RELS.format(f'<Relationship Id="rId1" Type="{_R}officeDocument" '
                                    'Target="word/document.xml"/>'),
        "word/_rels/document.xml.rels": _RELS.format(rels),
        "word/document.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                             f"<w:document {_W}><w:body>{body}<w:sectPr/></w:body></w:document>",
    }
    files.update({f"word/{name}": xml for name, (_, _, xml) in parts.items()})
    return _zip(files)


def _xlsx(rows: str, shared: str | None = None, styles: str | None = None) -> bytes:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    overrides = (f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}sheet.main+xml"/>'
                 f'<Override PartName="/xl/worksheets/sheet1.xml" '
                 f'ContentType="{_SML}worksheet+xml"/>')
    rels = f'<Relationship Id="rId1" Type="{_R}worksheet" Target="worksheets/sheet1.xml"/>'
    files = {"xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8"?><worksheet '
                                         f"{ns}><sheetData>{rows}</sheetData></worksheet>"}
    if shared is not None:
        overrides += (f'<Override PartName="/xl/sharedStrings.xml" '
                      f'ContentType="{_SML}sharedStrings+xml"/>')
        rels += f'<Relationship Id="rId2" Type="{_R}sharedStrings" Target="sharedStrings.xml"/>'
        files["xl/sharedStrings.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><sst {ns}>'
                                         f"{shared}</sst>")
    if styles is not None:
        overrides += f'<Override PartName="/xl/styles.xml" ContentType="{_SML}styles+xml"/>'
        rels += f'<Relationship Id="rId3" Type="{_R}styles" Target="styles.xml"/>'
        files["xl/styles.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><styleSheet {ns}>'
                                  f"{styles}</styleSheet>")
    files.update({
        "[Content_Types].xml": _CT.format(overrides),
        "_rels/.rels": _RELS.format(f'<Relationship Id="rId1" Type="{_R}officeDocument" '
                                    'Target="xl/workbook.xml"/>'),
        "xl/workbook.xml": (f'<?xml version="1.0" encoding="UTF-8"?><workbook {ns} '
                            f'xmlns:r="{_R[:-1]}"><sheets><sheet name="S" sheetId="1" '
                            'r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": _RELS.format(rels),
    })
    return _zip(files)


_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2"')


def _odf(body: str, mimetype: str, *, styles: str = "", ns: str = _ODF_NS) -> bytes:
    """An OpenDocument package of `body` (inside `<office:body>`), automatic `styles` ahead."""
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:'
                'oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
                '<manifest:file-entry manifest:full-path="content.xml" '
                'manifest:media-type="text/xml"/></manifest:manifest>')
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
               f"{styles}<office:body>{body}</office:body></office:document-content>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", content)
    return out.getvalue()


_ODS = "application/vnd.oasis.opendocument.spreadsheet"
_ODT = "application/vnd.oasis.opendocument.text"
_COLS = "ABCDEFGH"


# --- the documents of round 16's holes ----------------------------------------------------------

def docx_symbols() -> bytes:
    """v070: every base64 character a `<w:sym>` (no text runs)."""
    return _docx("".join("<w:p>" + "".join(
        f'<w:r><w:sym w:font="Courier New" w:char="{ord(c):04X}"/></w:r>' for c in line)
        + "</w:p>" for line in _lines()))


def docx_footnotes() -> bytes:
    """v071: a footnote per chunk, stored shuffled, referenced in order."""
    chunks = _chunks()
    ids = list(range(2, 2 + len(chunks)))
    body = "<w:p>" + "".join(f'<w:r><w:footnoteReference w:id="{i}"/></w:r>' for i in ids)
    notes = list(zip(ids, chunks, strict=True))
    random.Random(5).shuffle(notes)
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><w:footnotes {_W}>'
           '<w:footnote w:type="separator" w:id="0"><w:p><w:r><w:separator/></w:r></w:p>'
           '</w:footnote>' + "".join(
               f'<w:footnote w:id="{i}"><w:p><w:r><w:t>{c}</w:t></w:r></w:p></w:footnote>'
               for i, c in notes) + "</w:footnotes>")
    return _docx(body + "</w:p>", {"footnotes.xml": ("footnotes", "footnotes", xml)})


def docx_list_labels() -> bytes:
    """v072: a chunk as the literal label of each list (definitions shuffled)."""
    chunks = _chunks()
    nums = list(range(1, 1 + len(chunks)))
    abstract = [f'<w:abstractNum w:abstractNumId="{n}"><w:lvl w:ilvl="0"><w:start w:val="1"/>'
                f'<w:numFmt w:val="decimal"/><w:suff w:val="nothing"/><w:lvlText w:val="{c}"/>'
                f'<w:ind w:left="0" w:hanging="0"/></w:lvl></w:abstractNum>'
                for n, c in zip(nums, chunks, strict=True)]
    num = [f'<w:num w:numId="{n}"><w:abstractNumId w:val="{n}"/></w:num>' for n in nums]
    random.Random(5).shuffle(abstract)
    random.Random(6).shuffle(num)
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><w:numbering {_W}>' + "".join(abstract)
           + "".join(num) + "</w:numbering>")
    body = "".join(f'<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="{n}"/></w:numPr>'
                   "</w:pPr></w:p>" for n in nums)
    return _docx(body, {"numbering.xml": ("numbering", "numbering", xml)})


def _entities() -> tuple[list[str], list[str]]:
    chunks = _chunks()
    defs = [f'<!ENTITY e{i} "{c}">' for i, c in enumerate(chunks)]
    random.Random(5).shuffle(defs)
    return chunks, defs


def xml_entities() -> bytes:
    """v074: the chunks in internal entities, defined in shuffled order."""
    chunks, defs = _entities()
    return ('<?xml version="1.0"?>\n<!DOCTYPE d [\n' + "\n".join(defs) + "\n]>\n<d>"
            + "".join(f"&e{i};" for i in range(len(chunks))) + "</d>\n").encode()


def xml_cdata() -> bytes:
    """v075: chunks alternately in CDATA sections and text, processing instructions between."""
    return ('<?xml version="1.0"?>\n<d>' + "".join(
        f"<![CDATA[{c}]]>" if i % 2 else f"{c}<?pi Qx9?>" for i, c in enumerate(_chunks()))
        + "</d>\n").encode()


def _grid(cell: str) -> str:
    """Rows of 8 cells (A..H) of the chunks; `cell.format(ref=, i=, c=)` writes one."""
    chunks = _chunks()
    rows = []
    for r in range(0, len(chunks), 8):
        cells = [cell.format(ref=f"{_COLS[j]}{r // 8 + 1}", i=r + j, c=chunks[r + j])
                 for j in range(min(8, len(chunks) - r))]
        rows.append(f'<row r="{r // 8 + 1}">' + "".join(cells) + "</row>")
    return "".join(rows)


def xlsx_shared_shuffled() -> bytes:
    """v077: shared strings stored shuffled, cells in order."""
    order = list(enumerate(_chunks()))
    random.Random(5).shuffle(order)
    pos = {i: k for k, (i, _) in enumerate(order)}
    rows = _grid('<c r="{ref}" t="s"><v>{i}</v></c>')
    rows = re.sub(r"<v>(\d+)</v>", lambda m: f"<v>{pos[int(m.group(1))]}</v>", rows)
    return _xlsx(rows, shared="".join(f"<si><t>{c}</t></si>" for _, c in order))


def xlsx_number_formats() -> bytes:
    """v078: each chunk the literal text of a custom number format; the cells hold 0."""
    chunks = _chunks()
    formats = list(enumerate(chunks))
    random.Random(5).shuffle(formats)
    numfmts = "".join(f'<numFmt numFmtId="{200 + i}" formatCode="&quot;{c}&quot;"/>'
                      for i, c in formats)
    xfs = '<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>' + "".join(
        f'<xf numFmtId="{200 + i}" fontId="0" fillId="0" borderId="0" applyNumberFormat="1"/>'
        for i in range(len(chunks)))
    styles = (f'<numFmts count="{len(chunks)}">{numfmts}</numFmts><fonts count="1"><font>'
              '<sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill>'
              '<patternFill patternType="none"/></fill></fills><borders count="1"><border/>'
              '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
              f'borderId="0"/></cellStyleXfs><cellXfs count="{len(chunks) + 1}">{xfs}</cellXfs>')
    rows = _grid('<c r="{ref}" s="{i}"><v>0</v></c>')
    rows = re.sub(r's="(\d+)"', lambda m: f's="{int(m.group(1)) + 1}"', rows)
    return _xlsx(rows, styles=styles)


def xlsx_cells_reversed() -> bytes:
    """v079: inline strings, each row's cells written in reverse column order."""
    rows = _grid('<c r="{ref}" t="inlineStr"><is><t>{c}</t></is></c>')
    return _xlsx(re.sub(r'(<row r="\d+">)(.*?)(</row>)', lambda m: m.group(1) + "".join(
        reversed(re.findall(r"<c .*?</c>", m.group(2)))) + m.group(3), rows))


def xlsx_phonetic() -> bytes:
    """v124: shared strings with junk phonetic runs (`<rPh>`), which are not shown."""
    shared = "".join(f'<si><t>{c}</t><rPh sb="0" eb="1"><t>Qx9</t></rPh></si>'
                     for c in _chunks())
    return _xlsx(_grid('<c r="{ref}" t="s"><v>{i}</v></c>'), shared=shared)


def ods_repeated() -> bytes:
    """v114: 7-character chunks, equal neighbours stored once with number-columns-repeated."""
    chunks = _chunks(7)
    rows = ""
    for r in range(0, len(chunks), 8):
        cells, row, j = chunks[r : r + 8], "", 0
        while j < len(cells):
            n = 1
            while j + n < len(cells) and cells[j + n] == cells[j]:
                n += 1
            repeat = f' table:number-columns-repeated="{n}"' if n > 1 else ""
            row += (f'<table:table-cell office:value-type="string"{repeat}>'
                    f"<text:p>{cells[j]}</text:p></table:table-cell>")
            j += n
        rows += f"<table:table-row>{row}</table:table-row>"
    return _odf(f'<office:spreadsheet><table:table table:name="S">{rows}</table:table>'
                "</office:spreadsheet>", _ODS)


def odt_blank_notes() -> bytes:
    """v118: junk in inline footnote bodies whose custom citation label is blank."""
    note = ('<text:note text:id="ftn{}" text:note-class="footnote"><text:note-citation '
            'text:label=" "> </text:note-citation><text:note-body><text:p>Qx9</text:p>'
            "</text:note-body></text:note>")
    paras = "".join("<text:p>" + "".join(c + note.format(j * 10 + n) for n, c in enumerate(
        [line[i : i + 8] for i in range(0, len(line), 8)])) + "</text:p>"
        for j, line in enumerate(_lines()))
    return _odf(f"<office:text>{paras}</office:text>", _ODT)


def _pandoc_notes(path: Path) -> bytes:
    out = subprocess.run([shutil.which("pandoc") or "pandoc", "-t", "plain", str(path)],
                         capture_output=True, check=True, timeout=120).stdout
    return b"".join(m.group(1) for m in re.finditer(rb"(?m)^\[\d+\] +(\S*)$", out))


def _xmllint(path: Path, *args: str) -> bytes:
    return subprocess.run([shutil.which("xmllint") or "xmllint", *args, "--xpath",
                           "string(/d)", str(path)], capture_output=True, check=True,
                          timeout=60).stdout


def _xlsx2csv(path: Path) -> bytes:
    out = subprocess.run([shutil.which("xlsx2csv") or "xlsx2csv", str(path)],
                         capture_output=True, check=True, timeout=60).stdout
    return out.replace(b",", b"")


def _capitals_hidden(style: str) -> str:
    """Base64 whose capitals are written lower-case in runs shown in capitals (`style`
    formats one such run of `text`: a str.format with `{}`)."""
    out = []
    for c in _b64():
        out.append(style.format(c.lower()) if c.isupper() else c)
    return "".join(out)


def docx_caps() -> bytes:
    """Round 18 (v036): capitals in `<w:caps/>` runs, written lower-case."""
    run = '<w:r><w:rPr><w:caps/></w:rPr><w:t>{}</w:t></w:r>'
    plain = "<w:r><w:t>{}</w:t></w:r>"
    body = "".join(run.format(c.lower()) if c.isupper() else plain.format(c) for c in _b64())
    return _docx(f"<w:p>{body}</w:p>")


def odt_caps() -> bytes:
    """Round 18 (v037): capitals in spans of an automatic style with
    `fo:text-transform="uppercase"`, written lower-case."""
    styles = ('<office:automatic-styles><style:style style:name="T1" style:family="text">'
              '<style:text-properties fo:text-transform="uppercase"/></style:style>'
              "</office:automatic-styles>")
    body = _capitals_hidden('<text:span text:style-name="T1">{}</text:span>')
    return _content_edited(
        _odf(f"<office:text><text:p>{body}</text:p></office:text>", _ODT),
        (b"<office:body>", styles.encode() + b"<office:body>"),
        (b'office:version="1.2"', b'office:version="1.2" xmlns:style="urn:oasis:names:tc:'
         b'opendocument:xmlns:style:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:'
         b'xsl-fo-compatible:1.0"'))


def _content_edited(odf: bytes, *edits: tuple[bytes, bytes]) -> bytes:
    """`odf` with its content.xml edited (each `edits` pair: old, new), zipped again."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(odf)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            text = src.read(info)
            if info.filename == "content.xml":
                for old, new in edits:
                    text = text.replace(old, new)
            dst.writestr(info, text)
    return out.getvalue()


def rtf_caps() -> bytes:
    """Round 18 (v133): capitals in `{\\caps ...}` groups, written lower-case."""
    return (b"{\\rtf1\\ansi{\\fonttbl{\\f0 Courier New;}}\\f0 "
            + _capitals_hidden("{{\\caps {}}}").encode() + b"\\par}")


def _junk8(i: int) -> str:
    return "".join("QRSTUVWXYZqrstuvwxyz"[(i * 7 + k * 3) % 20] for k in range(8))


def odt_hidden_text_fields() -> bytes:
    """Round 18 (v104): hidden-text fields whose condition is false show their string value
    (the pieces); the text left inside them is a decoy."""
    odf = _odf("<office:text><text:p>" + "".join(
        f'<text:hidden-text text:condition="ooow:1==0" text:string-value="{piece}" '
        f'text:is-hidden="true">{_junk8(i)}</text:hidden-text>'
        for i, piece in enumerate(_chunks())) + "</text:p></office:text>", _ODT)
    return _content_edited(odf, (b'office:version="1.2"', b'office:version="1.2" '
                                 b'xmlns:ooow="http://openoffice.org/2004/writer"'))


def odt_user_fields() -> bytes:
    """Round 18 (v105): user fields declared (in another order) with the pieces as values,
    shown in order with decoys left as their cached text."""
    pieces = _chunks()
    order = list(range(len(pieces)))
    random.Random(105).shuffle(order)
    decls = "".join(f'<text:user-field-decl office:value-type="string" office:string-value='
                    f'"{pieces[k]}" text:name="f{k}"/>' for k in order)
    body = "".join(f'<text:user-field-get text:name="f{k}">{_junk8(k)}</text:user-field-get>'
                   for k in range(len(pieces)))
    return _odf(f"<office:text><text:user-field-decls>{decls}</text:user-field-decls>"
                f"<text:p>{body}</text:p></office:text>", _ODT)


def _lo_printed(path: Path) -> bytes:
    """The document printed by LibreOffice (PDF), read by pdftotext: capitals as shown."""
    pdf = path.parent / "lo" / (path.stem + ".pdf")
    _soffice(path, "pdf", "pdf")
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                          check=True).stdout


_LO_TXT = ("txt:Text", "txt")
_LO_CSV = ("csv", "csv")
_LO_CSV_FORMATTED = ("csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true", "csv")

HOLES = {  # hole id -> (document, file name, oracle tool, how the tool shows it)
    "v070": (docx_symbols, "a.docx", "soffice", _LO_TXT),
    "v071": (docx_footnotes, "b.docx", "pandoc", _pandoc_notes),
    "v072": (docx_list_labels, "c.docx", "soffice", _LO_TXT),
    "v074": (xml_entities, "data.xml", "xmllint", lambda p: _xmllint(p, "--noent")),
    "v075": (xml_cdata, "data.xml", "xmllint", _xmllint),
    "v077": (xlsx_shared_shuffled, "f.xlsx", "xlsx2csv", _xlsx2csv),
    "v078": (xlsx_number_formats, "g.xlsx", "soffice", _LO_CSV_FORMATTED),
    "v079": (xlsx_cells_reversed, "h.xlsx", "soffice", _LO_CSV),
    "v124": (xlsx_phonetic, "j.xlsx", "soffice", _LO_CSV),
    "v114": (ods_repeated, "s.ods", "soffice", _LO_CSV),
    "v118": (odt_blank_notes, "o.odt", "soffice", _LO_TXT),
    "r18-v036": (docx_caps, "caps.docx", "soffice", _lo_printed),
    "r18-v037": (odt_caps, "caps.odt", "soffice", _lo_printed),
    "r18-v133": (rtf_caps, "caps.rtf", "soffice", _lo_printed),
    "r18-v104": (odt_hidden_text_fields, "hidden.odt", "soffice", _LO_TXT),
    "r18-v105": (odt_user_fields, "fields.odt", "soffice", _LO_TXT),
}


def _shown(hole: str, path: Path) -> bytes:
    _, _, _, how = HOLES[hole]
    if isinstance(how, tuple):
        return _soffice(path, *how).replace(b",", b"").replace(b'"', b"")
    return how(path)


@pytest.mark.parametrize("hole", list(HOLES))
def test_the_engine_reads_it_as_the_tool_shows_it(clam_engine: Engine, tmp_path: Path,
                                                  hole: str) -> None:
    """The recipient's tool shows the base64 of clam.exe (the oracle; left out where the tool
    is not installed), and the engine finds clam.exe in the document."""
    make, name, tool, _ = HOLES[hole]
    data = make()
    if shutil.which(tool) is not None:
        path = tmp_path / name
        path.write_bytes(data)
        assert _decodes(_shown(hole, path))
    assert clam_engine.scan_bytes(data, name).names == (NAME,)


# --- readings of ordinary documents ------------------------------------------------------------

def test_number_format_literals() -> None:
    from zerohour.scan.spreadsheet import formatted

    assert formatted("0", '"TVqQ"') == "TVqQ"
    assert formatted("0", '0;-0;"zero"') == "zero"
    assert formatted("-3", '0;\\(0\\)') == "(3)"
    assert formatted("1234.5", '[Red]#,##0.00_);"x"') == "1234.5 "
    assert formatted("45000", "dd/mm/yyyy") == "//"  # date digits are not the code's letters
    assert formatted("7", "General") == "7"


def ordinary_docx() -> bytes:
    """A numbered list of two levels and a footnote."""
    numbering = (f'<w:numbering {_W}><w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0">'
                 '<w:start w:val="1"/><w:numFmt w:val="upperRoman"/><w:lvlText w:val="%1."/>'
                 '</w:lvl><w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/>'
                 '<w:lvlText w:val="%1.%2)"/></w:lvl></w:abstractNum><w:num w:numId="1">'
                 '<w:abstractNumId w:val="0"/></w:num></w:numbering>')
    footnotes = (f'<w:footnotes {_W}><w:footnote w:id="1"><w:p><w:r><w:t>a note</w:t></w:r>'
                 "</w:p></w:footnote></w:footnotes>")
    item = ('<w:p><w:pPr><w:numPr><w:ilvl w:val="{}"/><w:numId w:val="1"/></w:numPr></w:pPr>'
            "<w:r><w:t>{}</w:t></w:r></w:p>")
    body = (item.format(0, "first") + item.format(1, "inner") + item.format(1, "next")
            + '<w:p><w:r><w:t>See</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r></w:p>')
    return _docx(body, {"numbering.xml": ("numbering", "numbering", numbering),
                        "footnotes.xml": ("footnotes", "footnotes", footnotes)})


def ordinary_xlsx() -> bytes:
    """Shared strings (one with a phonetic run), a number, a date, a percentage."""
    styles = ('<numFmts count="1"><numFmt numFmtId="164" formatCode="0.0%"/></numFmts>'
              '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/>'
              "</cellXfs>")
    rows = ('<row r="1"><c r="B1" t="s"><v>1</v></c><c r="A1"><v>3.5</v></c></row>'
            '<row r="2"><c r="A2" s="1"><v>45000</v></c><c r="B2" s="2"><v>0.25</v></c></row>')
    return _xlsx(rows, shared="<si><t>zero</t></si><si><r><t>one</t></r><rPh><t>x</t></rPh>"
                              "</si>", styles=styles)


def _package_reading(data: bytes) -> bytes:
    from zerohour.scan import officepkg
    from zerohour.scan.limits import ScanContext

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    (child,) = officepkg.package_readings(data, members, ScanContext())
    return child.data


def test_the_readings_of_ordinary_documents(clam_engine: Engine) -> None:
    assert _package_reading(ordinary_docx()) == (
        b"I.\tfirst\nI.a)\tinner\nI.b)\tnext\nSee\na note\n")
    assert _package_reading(ordinary_xlsx()) == b"3.5one\n450000.25%"
    for data, name in ((ordinary_docx(), "d.docx"), (ordinary_xlsx(), "d.xlsx")):
        assert clam_engine.scan_bytes(data, name).names == ()


# --- bounds --------------------------------------------------------------------------------------

BOUND = 15.0  # CPU seconds (a bound on growth, not a speed)


def test_repeat_counts_are_capped() -> None:
    """A billion repeated cells (and rows) of text are not a billion cells: the columns of a
    sheet, then the reading's length, bound them."""
    from zerohour.scan import textual

    cell = ('<table:table-cell table:number-columns-repeated="1000000000"><text:p>TVqQ'
            "</text:p></table:table-cell>")
    content = (f'<?xml version="1.0"?><office:document-content {_ODF_NS}><office:body>'
               '<office:spreadsheet><table:table><table:table-row table:number-rows-repeated='
               f'"1000000000">{cell * 50}</table:table-row></table:table></office:spreadsheet>'
               "</office:body></office:document-content>").encode()
    t0 = cpu.process_time()
    readings = textual.office_xml_readings(content)
    assert cpu.process_time() - t0 < BOUND
    assert max(len(text) for text in readings) <= (16 << 20) + len(content)
    assert any(len(text) >= 12 << 20 for text in readings)  # repeated as far as it may be


def test_shared_string_and_label_repeats_are_bounded(clam_engine: Engine) -> None:
    """A megabyte shared string in 20000 cells, a megabyte list label on 20000 paragraphs:
    the readings stop at their bound, in bounded time, and the scan says so (a limit
    finding: a payload past 16 MB of shown text is not read, so the file is never clean)."""
    big = "A" * (1 << 20)
    rows = "".join(f'<row r="{r}"><c r="A{r}" t="s"><v>0</v></c></row>' for r in range(1, 20001))
    xlsx = _xlsx(rows, shared=f"<si><t>{big}</t></si>")
    numbering = (f'<w:numbering {_W}><w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0">'
                 f'<w:lvlText w:val="{big}"/></w:lvl></w:abstractNum><w:num w:numId="1">'
                 '<w:abstractNumId w:val="0"/></w:num></w:numbering>')
    docx = _docx('<w:p><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:p>' * 20000,
                 {"numbering.xml": ("numbering", "numbering", numbering)})
    for data, name in ((xlsx, "x.xlsx"), (docx, "x.docx")):
        t0 = cpu.process_time()
        with pytest.raises(ScanLimitExceeded, match="MaxScanSize"):
            _package_reading(data)
        report = clam_engine.scan_bytes(data, name)
        assert cpu.process_time() - t0 < 6 * BOUND
        assert report.names == ("Heuristics.Limits.Exceeded.MaxScanSize",)


def _rezipped(data: bytes, rename: dict[str, str], first: dict[str, bytes] | None = None
              ) -> bytes:
    """`data` with its members renamed (prefixes, in names and in the XML), `first` in front."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name, body in (first or {}).items():
            dst.writestr(name, body)
        for info in src.infolist():
            name, body = info.filename, src.read(info)
            for old, new in rename.items():
                name = name.replace(old, new, 1) if name.startswith(old) else name
                body = body.replace(f'"{old}'.encode(), f'"{new}'.encode()).replace(
                    f'"/{old}'.encode(), f'"/{new}'.encode())
            dst.writestr(name, body)
    return out.getvalue()


def test_parts_are_found_as_the_reader_finds_them(clam_engine: Engine, tmp_path: Path) -> None:
    """The main part where the package's relationships put it (not in word/), and a shared
    strings part whose bytes an earlier member repeats (the zip's walk yields them once)."""
    moved = _rezipped(docx_footnotes(), {"word/document.xml": "notes/document.xml",
                                         "word/_rels/": "notes/_rels/",
                                         "footnotes.xml": "../word/footnotes.xml"})
    if shutil.which("pandoc") is not None:
        (tmp_path / "m.docx").write_bytes(moved)
        assert _decodes(_pandoc_notes(tmp_path / "m.docx"))
    assert clam_engine.scan_bytes(moved, "m.docx").names == (NAME,)
    xlsx = xlsx_shared_shuffled()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        shared = z.read("xl/sharedStrings.xml")
    decoyed = _rezipped(xlsx, {}, {"a/copy.xml": shared})
    if shutil.which("xlsx2csv") is not None:
        (tmp_path / "d.xlsx").write_bytes(decoyed)
        assert _decodes(_xlsx2csv(tmp_path / "d.xlsx"))
    assert clam_engine.scan_bytes(decoyed, "d.xlsx").names == (NAME,)


def docx_start_past_16_bits() -> bytes:
    """Round 36: the EICAR string as two list labels, "54" of each the counter: a level's
    `start` of 65,590 (LibreOffice keeps 16 bits: it shows 54; 65590 was read), and a
    `startOverride` of it; a third list, in letters, starts at 1041 (41 `A`s)."""
    from xml.sax.saxutils import quoteattr

    from helpers.messages import EICAR

    e = EICAR.decode()
    label = quoteattr(e[:15] + "%1" + e[17:])
    lvl = ('<w:lvl w:ilvl="0"><w:start w:val="{}"/><w:numFmt w:val="{}"/><w:suff w:val='
           '"nothing"/><w:lvlText w:val={}/></w:lvl>')
    abstract = (f'<w:abstractNum w:abstractNumId="1">{lvl.format(65590, "decimal", label)}'
                f'</w:abstractNum><w:abstractNum w:abstractNumId="2">'
                f'{lvl.format(1, "decimal", label)}</w:abstractNum><w:abstractNum w:'
                f'abstractNumId="3">{lvl.format(1041, "upperLetter", quoteattr("%1:"))}'
                "</w:abstractNum>")
    num = ('<w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num><w:num w:numId="2">'
           '<w:abstractNumId w:val="2"/><w:lvlOverride w:ilvl="0"><w:startOverride w:val='
           '"65590"/></w:lvlOverride></w:num><w:num w:numId="3"><w:abstractNumId w:val="3"/>'
           "</w:num>")
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><w:numbering {_W}>{abstract}{num}'
           "</w:numbering>")
    body = "".join(f'<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="{n}"/>'
                   f"</w:numPr></w:pPr></w:p>" for n in (1, 2, 3))
    return _docx(body, {"numbering.xml": ("numbering", "numbering", xml)})


def test_a_start_past_16_bits_is_read_as_libreoffice_shows_it(eicar_engine: Engine,
                                                               tmp_path: Path) -> None:
    """Round 36: LibreOffice shows the two labels as the EICAR string (the oracle, where
    installed); the engine reads them so (they were read with 65590, clean)."""
    from helpers.messages import EICAR
    from scan.conftest import EICAR_NAME

    data = docx_start_past_16_bits()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        (tmp_path / "s.docx").write_bytes(data)
        shown = _lo_printed(tmp_path / "s.docx")
        assert shown.count(EICAR) == 2
        assert b"A" * 41 + b":" in shown
    reading = _package_reading(data)
    assert reading.count(EICAR) == 2
    assert b"A" * 41 + b":" in reading
    assert eicar_engine.scan_bytes(data, "s.docx").names == (EICAR_NAME,)


def docx_based_on_deep(depth: int = 12) -> bytes:
    """Round 36: the EICAR string's first half as the label of a list that a paragraph
    style sets, the paragraph (the second half) of a style based on it `depth` styles down
    (`basedOn`)."""
    from xml.sax.saxutils import quoteattr

    from helpers.messages import EICAR

    first, second = EICAR[:34].decode(), EICAR[34:].decode()

    numbering = (f'<?xml version="1.0" encoding="UTF-8"?><w:numbering {_W}><w:abstractNum '
                 'w:abstractNumId="1"><w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val='
                 f'"decimal"/><w:suff w:val="nothing"/><w:lvlText w:val={quoteattr(first)}'
                 '/></w:lvl></w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="1"/>'
                 "</w:num></w:numbering>")
    styles = "".join(f'<w:style w:type="paragraph" w:styleId="S{k}"><w:name w:val="S{k}"/>'
                     f'<w:basedOn w:val="S{k + 1}"/></w:style>' for k in range(depth))
    styles += (f'<w:style w:type="paragraph" w:styleId="S{depth}"><w:name w:val="S{depth}"/>'
               '<w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr>'
               "</w:style>")
    body = (f'<w:p><w:pPr><w:pStyle w:val="S0"/></w:pPr><w:r><w:t>{second}</w:t></w:r>'
            "</w:p>")
    return _docx(body, {
        "numbering.xml": ("numbering", "numbering", numbering),
        "styles.xml": ("styles", "styles", f'<?xml version="1.0" encoding="UTF-8"?>'
                                           f"<w:styles {_W}>{styles}</w:styles>")})


def test_a_numbering_style_based_on_deep_is_read(eicar_engine: Engine, tmp_path: Path) -> None:
    """Round 36: LibreOffice follows `basedOn` 12 styles deep to the numbering (the oracle,
    where installed); 8 were followed, the label never read, clean."""
    from helpers.messages import EICAR
    from scan.conftest import EICAR_NAME

    data = docx_based_on_deep()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        (tmp_path / "b.docx").write_bytes(data)
        assert EICAR in _lo_printed(tmp_path / "b.docx")
    assert eicar_engine.scan_bytes(data, "b.docx").names == (EICAR_NAME,)


# --- bound 6: list labels past what was modelled --------------------------------------------------

def _labelled(levels: list[tuple[str, str]], ilvl: str = "0",
              texts: list[str] | None = None) -> bytes:
    """A .docx whose paragraph i is numbered in list i, at level `ilvl`: list i's levels
    `(numFmt, lvlText)` from `levels[i]` onwards (level 0 first), `texts` its text."""
    from xml.sax.saxutils import quoteattr

    abstract = "".join(
        f'<w:abstractNum w:abstractNumId="{n}">' + "".join(
            f'<w:lvl w:ilvl="{k}"><w:start w:val="1"/><w:numFmt w:val="{fmt}"/><w:suff '
            f'w:val="nothing"/><w:lvlText w:val={quoteattr(text)}/></w:lvl>'
            for k, (fmt, text) in enumerate(lvls)) + "</w:abstractNum>"
        for n, lvls in enumerate(levels, 1))
    num = "".join(f'<w:num w:numId="{n}"><w:abstractNumId w:val="{n}"/></w:num>'
                  for n in range(1, len(levels) + 1))
    body = "".join(f'<w:p><w:pPr><w:numPr><w:ilvl w:val="{ilvl}"/><w:numId w:val="{n}"/>'
                   f"</w:numPr></w:pPr>{f'<w:r><w:t>{texts[n - 1]}</w:t></w:r>' if texts else ''}"
                   "</w:p>" for n in range(1, len(levels) + 1))
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><w:numbering {_W}>{abstract}{num}'
           "</w:numbering>")
    return _docx(body, {"numbering.xml": ("numbering", "numbering", xml)})


def _past_the_label_bounds(shape: str) -> bytes:
    chunks = _chunks()
    if shape == "ilvl-of-ten-digits":  # level 1 shows the chunk, level 0 junk
        return _labelled([[("decimal", _junk8(i)[:4]), ("decimal", c)]
                          for i, c in enumerate(chunks)], ilvl="0000000001")
    if shape == "percent-in-none":  # LibreOffice leaves the `%` out
        return _labelled([[("none", c[:4] + "%" + c[4:])] for c in chunks])
    if shape == "placeholder-of-no-level":  # `%5` of no level: LibreOffice shows `%5%`
        return _labelled([[("decimal", re.sub("([2-9])", r"%\1", c))] for c in chunks])
    # a counter in a format shown in glyphs (chicago: "*") between a chunk's halves
    return _labelled([[(shape, c[:4] + "%1" + c[4:])] for c in chunks])


@pytest.mark.parametrize("shape", ["ilvl-of-ten-digits", "percent-in-none",
                                   "placeholder-of-no-level", "chicago", "japaneseCounting"])
def test_list_labels_past_the_modelled_are_read_as_libreoffice_shows_them(
        clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Bound 6: a ten-digit `w:ilvl` was read as level 0 (`_int`), a `%` before a letter in
    a level of `numFmt` none was kept, a placeholder of a level the list does not define
    was read as 1, and number formats not modelled as decimal (LibreOffice: a glyph, no
    base64 character): clam.exe's base64 in the labels, LibreOffice shows it (printed),
    was clean."""
    data = _past_the_label_bounds(shape)
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / "labels.docx"
        path.write_bytes(data)
        assert _decodes(_lo_printed(path))
    assert clam_engine.scan_bytes(data, "labels.docx").names == (NAME,)
