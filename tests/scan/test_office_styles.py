"""Office documents whose STYLES show the base64 of clam.exe (round 19): a Word document's
capitals written lower-case in runs its defaults, a paragraph, character or table style
(through `basedOn`) show in capitals, with runs that turn the capitals off again; small
capitals (by style and direct); decoys in runs, paragraphs or tables a style hides, or
pieces in runs `<w:vanish w:val="0"/>` shows; a style id defined twice; a page header; list
labels in capitals; an OpenDocument text's common styles (`styles.xml`, and a flat .fodt)
upper-casing a paragraph (also its default style), keeping spans as written or lower-casing
them, hiding decoy spans. LibreOffice's print (PDF, read by pdftotext) is the oracle that
the reader shows the base64 (left out where soffice is not installed); the old readings, of
direct formatting only, did not find it. Then the bounds: 100,000 styles in `basedOn` chains
and cycles; a styles part too big to parse is a limit."""

from __future__ import annotations

import io
import random
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import cpu
from scan.test_office_text import (
    _ODF_NS,
    _ODT,
    _W,
    BOUND,
    NAME,
    _b64,
    _capitals_hidden,
    _chunks,
    _decodes,
    _docx,
    _junk8,
    _lo_printed,
    _odf,
)
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine

_PLAIN_RUN = "<w:r><w:t>{}</w:t></w:r>"


def _styles(styles: str, defaults: str = "") -> dict[str, tuple[str, str, str]]:
    """A styles part for `_docx`: `styles` (`w:style` elements), `defaults` (the run
    properties of `w:docDefaults`)."""
    doc_defaults = (f"<w:docDefaults><w:rPrDefault><w:rPr>{defaults}</w:rPr></w:rPrDefault>"
                    "</w:docDefaults>" if defaults else "")
    return {"styles.xml": ("styles", "styles",
                           f"<w:styles {_W}>{doc_defaults}{styles}</w:styles>")}


def _style(sid: str, rpr: str, kind: str = "paragraph", based: str | None = None) -> str:
    based_on = f'<w:basedOn w:val="{based}"/>' if based else ""
    return (f'<w:style w:type="{kind}" w:styleId="{sid}"><w:name w:val="{sid}"/>{based_on}'
            f"<w:rPr>{rpr}</w:rPr></w:style>")


def _run(text: str, rpr: str) -> str:
    return f"<w:r><w:rPr>{rpr}</w:rPr><w:t>{text}</w:t></w:r>"


def _word_capitals(rpr: str) -> str:
    """The base64 a run a character, its capitals written lower-case in runs of `rpr`."""
    return "".join(_run(c.lower(), rpr) if c.isupper() else _PLAIN_RUN.format(c)
                   for c in _b64())


def docx_default_caps() -> bytes:
    """d1: `w:docDefaults` make every run all caps; the base64's capitals written lower-case
    in plain runs, its lower-case letters in runs that turn caps off (`w:caps w:val="0"`)."""
    off = '<w:caps w:val="0"/>'
    body = "".join(_PLAIN_RUN.format(c.lower()) if c.isupper() else _run(c, off)
                   for c in _b64())
    return _docx(f"<w:p>{body}</w:p>", _styles("", "<w:caps/>"))


def docx_character_style_caps() -> bytes:
    """d2: capitals in runs of a character style based on one that sets caps."""
    styles = (_style("Loud", "<w:caps/>", "character")
              + _style("Louder", "", "character", based="Loud"))
    body = _word_capitals('<w:rStyle w:val="Louder"/>')
    return _docx(f"<w:p>{body}</w:p>", _styles(styles))


def docx_paragraph_style_caps() -> bytes:
    """d3: paragraphs of a style (based on one with caps) in capitals; the lower-case letters
    in runs of a character style turning caps off (closer than the paragraph's style)."""
    styles = (_style("Shout", "<w:caps/>") + _style("Heading", "", based="Shout")
              + _style("Quiet", '<w:caps w:val="false"/>', "character"))
    quiet = _run("{}", '<w:rStyle w:val="Quiet"/>')
    paragraphs = []
    for line in (_b64()[i : i + 64] for i in range(0, len(_b64()), 64)):
        runs = "".join(quiet.format(c) if c.islower() else _PLAIN_RUN.format(c.lower())
                       for c in line)
        paragraphs.append(f'<w:p><w:pPr><w:pStyle w:val="Heading"/></w:pPr>{runs}</w:p>')
    return _docx("".join(paragraphs), _styles(styles))


def docx_small_caps() -> bytes:
    """Capitals in runs of a character style with small caps (printed as capitals)."""
    body = _word_capitals('<w:rStyle w:val="Small"/>')
    return _docx(f"<w:p>{body}</w:p>",
                 _styles(_style("Small", "<w:smallCaps/>", "character")))


def docx_direct_small_caps() -> bytes:
    """Capitals in runs formatted `<w:smallCaps/>` directly (no styles part)."""
    return _docx(f"<w:p>{_word_capitals('<w:smallCaps/>')}</w:p>")


def docx_direct_vanish_off() -> bytes:
    """The pieces in runs formatted `<w:vanish w:val="0"/>` (shown), decoys in runs with
    `<w:vanish/>` between them (no styles part)."""
    shown, gone = '<w:vanish w:val="0"/>', "<w:vanish/>"
    body = "".join(_run(_junk8(i), gone) + _run(piece, shown)
                   for i, piece in enumerate(_chunks()))
    return _docx(f"<w:p>{body}</w:p>")


def docx_duplicate_style_ids() -> bytes:
    """Capitals in runs of a character style defined twice, as written, then with caps
    (LibreOffice applies the last definition; a reading of the first misses the caps)."""
    styles = _style("Twice", "", "character") + _style("Twice", "<w:caps/>", "character")
    body = _word_capitals('<w:rStyle w:val="Twice"/>')
    return _docx(f"<w:p>{body}</w:p>", _styles(styles))


def docx_header_caps(fillers: dict[str, tuple[str, str, str]] | None = None) -> bytes:
    """The base64 in the page header, capitals in its paragraphs of a caps style (written
    lower-case), the lower-case letters in runs turning caps off; `fillers`: parts whose
    relationships are listed before the header's."""
    off = _run("{}", '<w:caps w:val="0"/>')
    runs = "".join(off.format(c) if c.islower() else _PLAIN_RUN.format(c.lower())
                   for c in _b64())
    header = (f'<w:hdr {_W}><w:p><w:pPr><w:pStyle w:val="Shout"/></w:pPr>{runs}</w:p>'
              "</w:hdr>")
    parts = _styles(_style("Shout", "<w:caps/>"))
    parts.update(fillers or {})
    parts["header1.xml"] = ("header", "header", header)
    docx = _docx("<w:p><w:r><w:t>body</w:t></w:r></w:p>", parts)
    rid = b"rId%d" % (len(parts) + 4)  # (the last part's: rId5 is the first's)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                data = data.replace(b"<w:sectPr/>", b'<w:sectPr><w:headerReference w:type='
                                    b'"default" r:id="' + rid + b'"/></w:sectPr>')
            dst.writestr(info, data)
    return out.getvalue()


def docx_table_style_decoys() -> bytes:
    """The base64 a paragraph a line, a decoy after each in a table whose style (based on
    one) sets vanish. (A table style's caps: LibreOffice upper-cases a cell's paragraph whole
    unless each of its runs turns caps off, so no mixed-case base64 shows from it.)"""
    styles = (_style("Grid", "<w:vanish/>", "table")
              + _style("GridMore", "", "table", based="Grid"))
    table = ('<w:tbl><w:tblPr><w:tblStyle w:val="GridMore"/><w:tblW w:w="0" w:type="auto"/>'
             '</w:tblPr><w:tblGrid><w:gridCol w:w="2000"/></w:tblGrid><w:tr><w:tc><w:tcPr>'
             '<w:tcW w:w="2000" w:type="dxa"/></w:tcPr><w:p>{}</w:p></w:tc></w:tr></w:tbl>')
    b64 = _b64()
    body = "".join(f"<w:p>{_PLAIN_RUN.format(b64[i : i + 64])}</w:p>"
                   + table.format(_PLAIN_RUN.format(_junk8(i)))
                   for i in range(0, len(b64), 64))
    return _docx(body, _styles(styles))


_FONT = '<w:rFonts w:ascii="Liberation Sans" w:hAnsi="Liberation Sans"/>'


def docx_list_label_caps() -> bytes:
    """The base64 cut where its case changes: the capitals (and digits) as list labels
    written lower-case, in paragraphs of a caps style (LibreOffice shows a label with its
    paragraph's caps), half of them through their level's own caps; the lower-case
    letters as the paragraphs' runs, caps turned off."""
    pieces = re.findall(r"[a-z]+|[^a-z]+", _b64())
    if pieces[0].islower():
        pieces.insert(0, "")
    pairs = []
    for i in range(0, len(pieces), 2):  # (a label is one line: LibreOffice clips a longer one)
        label, text = pieces[i], pieces[i + 1] if i + 1 < len(pieces) else ""
        pairs += [(label[k : k + 32], "") for k in range(0, len(label) - 32, 32)]
        pairs.append((label[(max(len(label) - 1, 0) // 32) * 32 :], text))
    levels = [f'<w:abstractNum w:abstractNumId="{n}"><w:lvl w:ilvl="0"><w:start w:val="1"/>'
              f'<w:numFmt w:val="decimal"/><w:suff w:val="nothing"/><w:lvlText w:val='
              f'"{label.lower()}"/><w:rPr>{_FONT}{"<w:caps/>" if n % 2 else ""}</w:rPr></w:lvl>'
              "</w:abstractNum>" for n, (label, _) in enumerate(pairs, 1)]
    nums = [f'<w:num w:numId="{n}"><w:abstractNumId w:val="{n}"/></w:num>'
            for n in range(1, len(pairs) + 1)]
    numbering = f"<w:numbering {_W}>{''.join(levels)}{''.join(nums)}</w:numbering>"
    body = "".join(f'<w:p><w:pPr><w:pStyle w:val="Shout"/><w:numPr><w:ilvl w:val="0"/>'
                   f'<w:numId w:val="{n}"/></w:numPr></w:pPr>'
                   + (_run(text, '<w:caps w:val="0"/>') if text else "") + "</w:p>"
                   for n, (_, text) in enumerate(pairs, 1))
    parts = _styles(_style("Shout", "<w:caps/>"))
    parts["numbering.xml"] = ("numbering", "numbering", numbering)
    return _docx(body, parts)


def docx_style_hidden_decoys() -> bytes:
    """Decoys (base64 letters) between the pieces, in runs of a character style with
    `w:vanish` and in paragraphs of a paragraph style based on one with it; one decoy run
    turns vanish off again and shows its piece."""
    styles = (_style("Gone", "<w:vanish/>", "character") + _style("Away", "<w:vanish/>")
              + _style("Aside", "", based="Away"))
    hidden = _run("{}", '<w:rStyle w:val="Gone"/>')
    pieces = _chunks()
    body = [_run(pieces[0], '<w:rStyle w:val="Gone"/><w:vanish w:val="false"/>')]
    for i, piece in enumerate(pieces[1:]):
        body.append(hidden.format(_junk8(i)) + _PLAIN_RUN.format(piece))
    aside = f'<w:p><w:pPr><w:pStyle w:val="Aside"/></w:pPr>{_PLAIN_RUN.format("QUJD")}</w:p>'
    half = len(body) // 2
    return _docx(f"<w:p>{''.join(body[:half])}</w:p>{aside}<w:p>{''.join(body[half:])}</w:p>",
                 _styles(styles))


_ODF_STYLE_NS = ('xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
                 'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"')


def _odt_styled(body: str, styles: str) -> bytes:
    """An .odt of `body` with the common `styles` (`style:style` elements) in styles.xml."""
    odf = _odf(f"<office:text>{body}</office:text>", _ODT)
    part = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-styles {_ODF_NS} '
            f"{_ODF_STYLE_NS}><office:styles>{styles}</office:styles>"
            "</office:document-styles>")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(odf)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "META-INF/manifest.xml":
                data = data.replace(b"</manifest:manifest>", b'<manifest:file-entry manifest:'
                                    b'full-path="styles.xml" manifest:media-type="text/xml"/>'
                                    b"</manifest:manifest>")
            dst.writestr(info, data)
        dst.writestr("styles.xml", part)
    return out.getvalue()


def _odf_style(name: str, family: str, props: str) -> str:
    return (f'<style:style style:name="{name}" style:family="{family}">'
            f"<style:text-properties {props}/></style:style>")


def odt_common_style_caps() -> bytes:
    """Paragraphs of a common style with `fo:text-transform="uppercase"` (the capitals written
    lower-case), lower-case letters in spans of one with `none`, decoys in spans of one
    with `text:display="none"`."""
    return _odt_styled(*_common_style_caps())


def fodt_common_style_caps() -> bytes:
    """`odt_common_style_caps` as a flat file (.fodt: styles and body in one XML document)."""
    body, styles = _common_style_caps()
    return (f'<?xml version="1.0" encoding="UTF-8"?><office:document {_ODF_NS} '
            f'{_ODF_STYLE_NS} office:mimetype="{_ODT}"><office:styles>{styles}'
            f"</office:styles><office:body><office:text>{body}</office:text></office:body>"
            "</office:document>").encode()


def _common_style_caps() -> tuple[str, str]:
    styles = (_odf_style("Shout", "paragraph", 'fo:text-transform="uppercase"')
              + _odf_style("Quiet", "text", 'fo:text-transform="none"')
              + _odf_style("Gone", "text", 'text:display="none"'))
    paragraphs = []
    for i, piece in enumerate(_chunks()):
        text = "".join(f'<text:span text:style-name="Quiet">{c}</text:span>' if c.islower()
                       else c.lower() for c in piece)
        paragraphs.append(f'<text:p text:style-name="Shout">{text}<text:span '
                          f'text:style-name="Gone">{_junk8(i)}</text:span></text:p>')
    return "".join(paragraphs), styles


def odt_default_style_caps() -> bytes:
    """The paragraphs' default style upper-cases (the capitals written lower-case); the
    lower-case letters in spans of a style defined twice, upper-casing, then as written
    (LibreOffice applies the last definition)."""
    styles = ('<style:default-style style:family="paragraph"><style:text-properties '
              'fo:text-transform="uppercase"/></style:default-style>'
              + _odf_style("Quiet", "text", 'fo:text-transform="uppercase"')
              + _odf_style("Quiet", "text", 'fo:text-transform="none"'))
    body = "".join(f'<text:span text:style-name="Quiet">{c}</text:span>' if c.islower()
                   else c.lower() for c in _b64())
    return _odt_styled(f"<text:p>{body}</text:p>", styles)


def odt_lower_in_upper() -> bytes:
    """Paragraphs of an upper-casing common style, the base64's capitals written lower-case,
    its lower-case letters written as capitals in spans of a lower-casing one."""
    styles = (_odf_style("Shout", "paragraph", 'fo:text-transform="uppercase"')
              + _odf_style("Low", "text", 'fo:text-transform="lowercase"'))
    paragraphs = "".join(
        '<text:p text:style-name="Shout">' + "".join(
            f'<text:span text:style-name="Low">{c.upper()}</text:span>' if c.islower()
            else c.lower() for c in line) + "</text:p>"
        for line in (_b64()[i : i + 64] for i in range(0, len(_b64()), 64)))
    return _odt_styled(paragraphs, styles)


def odt_common_small_caps() -> bytes:
    """Capitals in spans of a common style with `fo:font-variant="small-caps"`."""
    body = _capitals_hidden('<text:span text:style-name="Small">{}</text:span>')
    return _odt_styled(f"<text:p>{body}</text:p>",
                       _odf_style("Small", "text", 'fo:font-variant="small-caps"'))


HOLES: dict[str, tuple[Callable[[], bytes], str]] = {
    "d1-defaults": (docx_default_caps, "d1.docx"),
    "d2-character-style": (docx_character_style_caps, "d2.docx"),
    "d3-paragraph-style": (docx_paragraph_style_caps, "d3.docx"),
    "small-caps": (docx_small_caps, "sc.docx"),
    "style-vanish": (docx_style_hidden_decoys, "v.docx"),
    "duplicate-style-id": (docx_duplicate_style_ids, "dup.docx"),
    "header": (docx_header_caps, "hdr.docx"),
    "table-style": (docx_table_style_decoys, "tbl.docx"),
    "list-labels": (docx_list_label_caps, "lbl.docx"),
    "direct-small-caps": (docx_direct_small_caps, "dsc.docx"),
    "direct-vanish-off": (docx_direct_vanish_off, "dvo.docx"),
    "odf-common-caps": (odt_common_style_caps, "c.odt"),
    "odf-small-caps": (odt_common_small_caps, "sc.odt"),
    "odf-default-style": (odt_default_style_caps, "ds.odt"),
    "flat-odf": (fodt_common_style_caps, "c.fodt"),
    "odf-lower-in-upper": (odt_lower_in_upper, "low.odt"),
}


@pytest.mark.parametrize("hole", list(HOLES))
def test_the_engine_reads_styles_as_libreoffice_prints_them(clam_engine: Engine,
                                                            tmp_path: Path, hole: str) -> None:
    """LibreOffice prints the base64 of clam.exe (the oracle, where it is installed), and the
    engine finds clam.exe in the document."""
    make, name = HOLES[hole]
    data = make()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / name
        path.write_bytes(data)
        assert _decodes(_lo_printed(path))
    assert clam_engine.scan_bytes(data, name).names == (NAME,)


# --- readings -----------------------------------------------------------------------------------

def _readings(data: bytes) -> list[tuple[str, bytes]]:
    from zerohour.scan import officepkg
    from zerohour.scan.limits import ScanContext

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    return [(c.origin, c.data) for c in officepkg.package_readings(data, members,
                                                                    ScanContext())]


def test_closest_formatting_wins() -> None:
    """Direct formatting over the character style over the paragraph style over the
    defaults, as LibreOffice prints them (checked by hand: no toggling of caps set by two
    styles, which Word's ECMA-376 17.7.3 would do and LibreOffice does not)."""
    styles = (_style("Shout", "<w:caps/>") + _style("Loud", "<w:caps/>", "character")
              + _style("Quiet", '<w:caps w:val="0"/>', "character")
              + _style("Gone", "<w:vanish/>", "character"))
    para = '<w:p><w:pPr><w:pStyle w:val="Shout"/></w:pPr>{}</w:p>'
    body = "".join([
        para.format(_run("a", '<w:rStyle w:val="Loud"/>') + _run("b", '<w:caps w:val="0"/>')
                    + _run("c", '<w:rStyle w:val="Quiet"/>')
                    + _run("d", '<w:rStyle w:val="Quiet"/><w:caps/>')),
        "<w:p>" + _run("e", '<w:rStyle w:val="Gone"/>') + _PLAIN_RUN.format("f")
        + _run("g", '<w:rStyle w:val="Gone"/><w:vanish w:val="0"/>') + "</w:p>",
    ])
    assert _readings(_docx(body, _styles(styles))) == [("office-styled", b"AbcD\nfg\n")]


def test_ordinary_styles_make_no_reading() -> None:
    """Styles that set no capitals and hide nothing, or set them only in a style no run
    uses (Word's "Intense Reference" has small caps), cost no reading."""
    styles = (_style("Body", "<w:b/><w:i/>") + _style("Em", "<w:i/>", "character")
              + _style("IntenseReference", "<w:smallCaps/>", "character"))
    docx = _docx('<w:p><w:pPr><w:pStyle w:val="Body"/></w:pPr><w:r><w:rPr><w:rStyle '
                 'w:val="Em"/></w:rPr><w:t>text</w:t></w:r></w:p>', _styles(styles))
    assert _readings(docx) == []
    odt = _odt_styled('<text:p text:style-name="P">text</text:p>',
                      _odf_style("P", "paragraph", 'fo:font-weight="bold"'))
    assert _readings(odt) == []


# --- bounds --------------------------------------------------------------------------------------

CHAIN, CYCLE = 80_000, 20_000  # styles: 100,000 a document


def _hostile_docx() -> bytes:
    """80,000 paragraph styles each based on the next (the last sets caps), a cycle of 20,000
    character styles, and 20,000 paragraphs and runs naming styles along both."""
    para = "".join(f'<w:style w:type="paragraph" w:styleId="p{i}"><w:basedOn w:val="p{i + 1}"/>'
                   "</w:style>" for i in range(CHAIN - 1))
    para += f'<w:style w:type="paragraph" w:styleId="p{CHAIN - 1}"><w:rPr><w:caps/></w:rPr>' \
            "</w:style>"
    char = "".join(f'<w:style w:type="character" w:styleId="c{i}"><w:basedOn w:val='
                   f'"c{(i + 1) % CYCLE}"/></w:style>' for i in range(CYCLE))
    body = "".join(f'<w:p><w:pPr><w:pStyle w:val="p{i * 4}"/></w:pPr><w:r><w:rPr><w:rStyle '
                   f'w:val="c{i}"/></w:rPr><w:t>x</w:t></w:r></w:p>' for i in range(20_000))
    return _docx(body, _styles(para + char))


def _hostile_odt() -> bytes:
    """80,000 common paragraph styles each the parent of the next (the first upper-cases), a
    cycle of 20,000 text styles, and 20,000 paragraphs and spans naming them."""
    return _odt_styled(*_hostile_odf())


def _hostile_odf() -> tuple[str, str]:
    styles = '<style:style style:name="p0" style:family="paragraph"><style:text-properties ' \
             'fo:text-transform="uppercase"/></style:style>'
    styles += "".join(f'<style:style style:name="p{i}" style:family="paragraph" '
                      f'style:parent-style-name="p{i - 1}"/>' for i in range(1, CHAIN))
    styles += "".join(f'<style:style style:name="t{i}" style:family="text" '
                      f'style:parent-style-name="t{(i + 1) % CYCLE}"/>' for i in range(CYCLE))
    body = "".join(f'<text:p text:style-name="p{CHAIN - 1 - i * 4}"><text:span '
                   f'text:style-name="t{i}">x</text:span></text:p>' for i in range(20_000))
    return body, styles


@pytest.mark.parametrize("make", [_hostile_docx, _hostile_odt])
def test_hostile_styles_are_bounded(make: Callable[[], bytes]) -> None:
    """Long chains of styles and cycles are resolved once each: the reading is made, in
    capitals from the chain's far end, within a few CPU seconds."""
    data = make()
    t0 = cpu.process_time()
    readings = _readings(data)
    spent = cpu.process_time() - t0
    print(f"{make.__name__}: {spent:.2f} s")
    assert spent < BOUND
    assert [origin for origin, _ in readings] == ["office-styled"]
    assert readings[0][1] == b"X\n" * 20_000


def test_hostile_styles_of_a_flat_file_are_bounded() -> None:
    """The same styles in a flat OpenDocument file (read as one part)."""
    from zerohour.scan import textual

    body, styles = _hostile_odf()
    data = (f'<?xml version="1.0" encoding="UTF-8"?><office:document {_ODF_NS} '
            f"{_ODF_STYLE_NS}><office:styles>{styles}</office:styles><office:body>"
            f"<office:text>{body}</office:text></office:body></office:document>").encode()
    t0 = cpu.process_time()
    readings = textual.office_xml_readings(data)
    spent = cpu.process_time() - t0
    print(f"flat: {spent:.2f} s")
    assert spent < BOUND
    assert b"X\n" * 20_000 in readings


def test_styles_too_big_to_read_are_a_limit(clam_engine: Engine) -> None:
    """A styles part over the parsed size that sets capitals: the document is not read as
    its reader shows it, so the scan says so (a limit finding), not clean."""
    pad = "<!--" + random.Random(19).randbytes(8 << 20).hex() + "-->"  # (not a zip bomb)
    data = _docx("<w:p><w:r><w:t>text</w:t></w:r></w:p>",
                 _styles(pad + _style("Shout", "<w:caps/>")))
    with pytest.raises(ScanLimitExceeded, match="MaxScanSize"):
        _readings(data)
    assert clam_engine.scan_bytes(data, "big.docx").names == (
        "Heuristics.Limits.Exceeded.MaxScanSize",)


# --- caps a reader stopped at without saying so ---------------------------------------------------

def docx_header_after_fillers(fillers: int = 300) -> bytes:
    """`docx_header_caps` with `fillers` relationships listed before the header's (the
    styled reading looked at the first 256 only)."""
    parts = {f"media/f{i}.xml": ("customXml", "x", "<x/>") for i in range(fillers)}
    return docx_header_caps(parts)


def docx_label_after_placeholders(placeholders: int = 10) -> bytes:
    """The base64 as list labels, 16 characters each, after `placeholders` placeholders of
    a level shown as nothing (`numFmt none`): LibreOffice shows the pieces."""
    text = _b64()
    pieces = [text[i : i + 16] for i in range(0, len(text), 16)]
    levels = [f'<w:abstractNum w:abstractNumId="{n}"><w:lvl w:ilvl="0"><w:start w:val="1"/>'
              f'<w:numFmt w:val="none"/><w:suff w:val="nothing"/><w:lvlText w:val='
              f'"{"%1" * placeholders}{p}"/></w:lvl></w:abstractNum>'
              for n, p in enumerate(pieces, 1)]
    nums = [f'<w:num w:numId="{n}"><w:abstractNumId w:val="{n}"/></w:num>'
            for n in range(1, len(pieces) + 1)]
    numbering = f"<w:numbering {_W}>{''.join(levels)}{''.join(nums)}</w:numbering>"
    body = "".join(f'<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="{n}"/></w:numPr>'
                   "</w:pPr></w:p>" for n in range(1, len(pieces) + 1))
    return _docx(body, {"numbering.xml": ("numbering", "numbering", numbering)})


@pytest.mark.parametrize(("make", "name", "found"), [
    (docx_header_after_fillers, "hf.docx", NAME),
    # (a level shown as nothing: LibreOffice leaves its `%1`s out, so is the label read)
    (docx_label_after_placeholders, "lp.docx", NAME),
], ids=["header-after-256-relationships", "label-after-9-placeholders"])
def test_what_a_cap_left_unread_is_read_or_a_limit(clam_engine: Engine, tmp_path: Path,
                                                    make: Callable[[], bytes], name: str,
                                                    found: str) -> None:
    """LibreOffice prints the base64 (where installed); the engine reads it, or says the
    document was read only in part (these documents scanned clean)."""
    data = make()
    if shutil.which("soffice") is not None and shutil.which("pdftotext") is not None:
        path = tmp_path / name
        path.write_bytes(data)
        assert _decodes(_lo_printed(path))
    assert clam_engine.scan_bytes(data, name).names == (found,)


def test_ordinary_labels_and_many_relationships_are_no_finding(clam_engine: Engine) -> None:
    """Nine placeholders (`%1.%2.%3...%9.`, Word's deepest outline label) and a header
    after 300 relationships are read, no limit."""
    label = docx_label_after_placeholders(9).replace(b"%1" * 9, b"%1.%2.%3.%4.%5.%6.%7.%8.%9.")
    for data in (label, docx_header_after_fillers(300)):
        report = clam_engine.scan_bytes(data, "o.docx")
        assert not any(n.startswith("Heuristics") for n in report.names), report.names

