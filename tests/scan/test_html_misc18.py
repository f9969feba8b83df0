"""misc18: base64 whose pieces only the bidi algorithm puts in order, a `::marker` or
`::before` rule whose selector names ancestors, and Office XML parts no parser reads.

A browser reverses adjacent right-to-left overrides (`unicode-bidi: bidi-override`, not
isolated as `<bdo dir=rtl>` is) as one run, and a nested `<bdo>` shows its text reversed
once; the bidi controls RLO/LRO/RLE/LRE...PDF and RLI/LRI/FSI...PDI in the text itself do
the same without any markup. Chromium prints each page and `pdftotext -layout` reads it (the
oracle: what the recipient sees and retypes); innerText, the logical order a copy gives, is
the page's own order, which zerohour reads as well. The engine finds the file in the mail's
body and in an attachment."""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import cpu
from scan.test_html_views import (
    B64,
    CHROMIUM,
    PROBE_TEXT,
    _found,
    chromium_dom,
    engine,
    mail,
    printed_text,
)
from zerohour.scan import Engine, bidi, htmllayout, textual

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

PIECES = [B64[i : i + 8] for i in range(0, len(B64), 8)]
LINES = [PIECES[i : i + 4] for i in range(0, len(PIECES), 4)]
OVERRIDE = b'<span style="unicode-bidi:bidi-override;direction:rtl">%s</span>'
#: The bidi controls and marks, as UTF-8 (pdftotext writes some of them out).
_CONTROLS = re.compile(rb"\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]")
RLO, LRO, PDF = "\u202e".encode(), "\u202d".encode(), "\u202c".encode()
RLM = "\u200f".encode()
RLE, RLI, PDI, FSI = ("\u202b".encode(), "\u2067".encode(), "\u2069".encode(),
                      "\u2068".encode())


def _page(body: bytes, css: bytes = b"") -> bytes:
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n" + body
            + b"\n</body></html>\n")


def _rev(piece: bytes) -> bytes:
    return piece[::-1]


def _bidi_page(shape: str) -> bytes:
    """B64 a line of four pieces, each line shown in order only by the bidi algorithm."""
    rows = []
    for cs in LINES:
        pad = b"=" if cs[-1].endswith(b"=") and shape.endswith("words") else b""
        if pad:  # (an '=' next to an RLM would take its direction: it follows the isolate)
            cs = [*cs[:-1], cs[-1].rstrip(b"=")]
        if shape == "adjacent-override-spans":  # one run at level 1: last piece first
            rows.append(b"<div>" + b"".join(OVERRIDE % _rev(c) for c in reversed(cs))
                        + b"</div>")
        elif shape == "override-spans-by-class":
            rows.append(b"<div>" + b" ".join(b'<b class="o">%s</b>' % _rev(c)
                                             for c in reversed(cs)) + b"</div>")
        elif shape == "override-spans-in-rtl-block":
            rows.append(b'<div dir=rtl style="text-align:left">' + b"".join(
                OVERRIDE % _rev(c) for c in reversed(cs)) + b"</div>")
        elif shape == "override-spans-in-inline":
            rows.append(b"<div><i>" + OVERRIDE % _rev(cs[3]) + b"<u>" + OVERRIDE % _rev(cs[2])
                        + b"</u>" + OVERRIDE % _rev(cs[1]) + b"</i>" + OVERRIDE % _rev(cs[0])
                        + b"</div>")
        elif shape == "dir-spans-not-isolated":  # (the author's unicode-bidi wins over [dir])
            rows.append(b"<div>" + b"".join(
                b'<span dir=rtl style="unicode-bidi:bidi-override">%s</span>' % _rev(c)
                for c in reversed(cs)) + b"</div>")
        elif shape == "bdos-not-isolated":
            rows.append(b"<div>" + b"".join(b"<bdo dir=rtl>%s</bdo>" % _rev(c)
                                            for c in reversed(cs)) + b"</div>")
        elif shape == "nested-bdo":  # the inner one's text reversed once, not twice
            rows.append(b"<div><bdo dir=rtl>" + _rev(cs[3]) + b"<bdo dir=rtl>" + _rev(cs[2])
                        + b"</bdo>" + _rev(cs[0] + cs[1]) + b"</bdo></div>")
        elif shape == "ltr-bdo-in-rtl-bdo":
            rows.append(b"<div><bdo dir=rtl>" + _rev(cs[3]) + b"<bdo dir=ltr>" + cs[2]
                        + b"</bdo>" + _rev(cs[0] + cs[1]) + b"</bdo></div>")
        elif shape == "hidden-junk-in-bdo":  # (the junk is left out, not mirrored in)
            line = _rev(b"".join(cs))
            rows.append(b"<div><bdo dir=rtl>" + b"".join(
                line[i : i + 5] + b'<span style="display:none">%d</span>' % i
                for i in range(0, len(line), 5)) + b"</bdo></div>")
        elif shape == "rlo-controls":  # adjacent RLO...PDF: one run
            rows.append(b"<div>" + b"".join(RLO + _rev(c) + PDF for c in reversed(cs))
                        + b"</div>")
        elif shape == "rlo-references":
            rows.append(b"<div>&#x202E;" + _rev(b"".join(cs)) + b"&#x202C;</div>")
        elif shape == "lro-in-rlo":
            rows.append(b"<div>" + RLO + _rev(cs[3]) + LRO + cs[2] + PDF + _rev(cs[0] + cs[1])
                        + PDF + b"</div>")
        elif shape == "rle-words":  # pieces cut by (invisible) RLMs: runs of an RTL embedding
            rows.append(b"<div>" + RLE + RLM.join(reversed(cs)) + PDF + pad + b"</div>")
        elif shape == "rli-words":
            rows.append(b"<div>" + RLI + RLM.join(reversed(cs)) + PDI + pad + b"</div>")
        elif shape == "fsi-words":
            rows.append(b"<div>" + FSI + RLM + RLM.join(reversed(cs)) + PDI
                        + pad + b"</div>")
    css = (b".o{unicode-bidi:bidi-override;direction:rtl}" if "class" in shape
           else b"bdo{unicode-bidi:bidi-override}" if shape == "bdos-not-isolated" else b"")
    return _page(b"\n".join(rows), css)


BIDI_SHAPES = ["adjacent-override-spans", "override-spans-by-class",
               "override-spans-in-rtl-block", "override-spans-in-inline",
               "dir-spans-not-isolated", "bdos-not-isolated", "nested-bdo",
               "ltr-bdo-in-rtl-bdo", "hidden-junk-in-bdo", "rlo-controls", "rlo-references",
               "lro-in-rlo", "rle-words", "rli-words", "fsi-words"]


def _printed(tmp_path: Path, page: bytes) -> bytes:
    """What Chromium prints, without the bidi controls pdftotext writes out."""
    return _CONTROLS.sub(b"", printed_text(tmp_path, page))


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", BIDI_SHAPES)
def test_pieces_the_bidi_algorithm_orders(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = _bidi_page(shape)
    assert _printed(tmp_path, page) == B64  # the page shows the base64 whole
    source = re.sub(rb"<[^>]*>|\s|&#x202[CE];", b"", _CONTROLS.sub(b"", page))
    assert B64 not in source  # not in the page's own order
    # innerText (what a copy gives) is the logical order, not the file: zerohour reads it too
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    shown = _CONTROLS.sub(b"", re.search(rb'data-text="([^"]*)"', dom).group(1))  # type: ignore[union-attr]
    assert B64 not in shown
    visible = textual.html_visible(page) or textual.html_rendered(page) or b""
    assert shown.replace(b"&amp;", b"&") in re.sub(rb"\s", b"", _CONTROLS.sub(b"", visible))
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_isolated_bdos_keep_their_order() -> None:
    """`<bdo dir=rtl>` is isolated: adjacent ones each show reversed, in their own order
    (Chromium: `ABCDEFGH`), unlike adjacent override spans (`EFGHABCD`)."""
    def read(body: bytes) -> bytes:
        page = htmllayout.laid_out(_page(body))
        assert page is not None
        return re.sub(rb"\s", b"", textual.html_rendered(page) or b"").split(b"}")[-1]

    assert read(b"<p><bdo dir=rtl>DCBA</bdo><bdo dir=rtl>HGFE</bdo></p>") == b"ABCDEFGH"
    assert read(b"<p>" + OVERRIDE % b"DCBA" + OVERRIDE % b"HGFE" + b"</p>") == b"EFGHABCD"
    assert read(b"<p><bdo dir=rtl>ab<bdo dir=rtl>cd</bdo>ef</bdo></p>") == b"fedcba"


def test_visual_order_of_explicit_controls() -> None:
    v = bidi.visual_paragraph
    assert v("\u202eDCBA\u202c\u202eHGFE\u202c") == "EFGHABCD"
    assert v("\u2067DCBA\u2069\u2067HGFE\u2069") == "DCBAHGFE"  # (letters of an isolate: LTR)
    assert v("\u202eab\u202dcd\u202cef\u202c") == "fecdba"
    assert v("abc \u05d0\u05d1 123 def") == "abc 123 \u05d1\u05d0 def"
    assert v("\u200fP2 \u05d0 P1", None).startswith("P1 \u05d0 P2")
    assert v("\u202e" * 300 + "ab") == "ba"  # (past the deepest level: no more embeddings)
    assert bidi.visual_text(b"plain text, no controls \xd7\x90") == []


def test_visual_reading_costs_linear_time() -> None:

    for text in ("\u2067a b" * 100_000, "\u202e\u202bx" * 100_000, "\u2068" * 50_000 + "ab",
                 "\u05d0" + "\u202b" * 124 + "a\u05d0" * 200_000, "\u2066" * 50_000 + "ab"
                 + "\u2069" * 50_000):
        started = cpu.process_time()
        bidi.visual_text(text.encode())
        assert cpu.process_time() - started < 20.0


# --- Office XML parts no parser reads: damaged, never read by the tag patterns alone --------

def _office_docx(document: str) -> bytes:
    from scan.test_office_text import _docx

    data = _docx("")
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, document.encode() if info.filename == (
                "word/document.xml") else body)
    return out.getvalue()


_W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_HIDDEN_RUNS = "".join(
    f"<w:r><w:t>{B64[i : i + 6].decode()}</w:t></w:r><w:r><w:rPr><w:vanish/></w:rPr>"
    f"<w:t>{i % 10}Q</w:t></w:r>" for i in range(0, len(B64), 6))


def _attached(data: bytes, name: str) -> bytes:
    import base64

    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain"
            b"\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=" + name.encode() + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data)
            + b"--b--\r\n")


BROKEN_PARTS = {
    # an external entity (defusedxml refuses it; the tag patterns read its reference)
    "external-entity": (f'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY x SYSTEM '
                        f'"file:///etc/hostname">]><w:document {_W_NS}><w:body><w:p>'
                        f"<w:r><w:t>&x;</w:t></w:r>{_HIDDEN_RUNS}</w:p></w:body></w:document>"),
    "undefined-entity": (f'<?xml version="1.0"?><w:document {_W_NS}><w:body><w:p>'
                         f"<w:r><w:t>&nbsp;</w:t></w:r>{_HIDDEN_RUNS}</w:p></w:body>"
                         "</w:document>"),
    "unclosed-element": (f'<?xml version="1.0"?><w:document {_W_NS}><w:body><w:p>'
                         f"{_HIDDEN_RUNS}<w:p></w:body></w:document>"),
}


@pytest.mark.parametrize("how", list(BROKEN_PARTS))
def test_an_office_part_that_does_not_parse_is_broken(engine: Engine, how: str) -> None:
    docx = _office_docx(BROKEN_PARTS[how])
    for data in (docx, _attached(docx, "letter.docx")):
        names = engine.scan_bytes(data).names
        assert names, how
        assert names[0] == "Heuristics.Broken.OOXML", (how, names)


def test_an_opendocument_body_that_does_not_parse_is_broken(engine: Engine) -> None:
    from scan.test_office_text import _ODT, _odf

    odt = _odf("<office:text><text:p>" + B64[:20].decode() + "&bad;</text:p></office:text>",
               _ODT)
    names = engine.scan_bytes(odt).names
    assert names
    assert names[0] == "Heuristics.Broken.ODF", names


def test_office_parts_that_parse_are_not_broken(engine: Engine) -> None:
    from scan.test_office_text import _ODT, _docx, _odf, _xlsx

    for data in (_docx("<w:p><w:r><w:t>Dear reader &amp; friend</w:t></w:r></w:p>"),
                 _odf("<office:text><text:p>Hello &lt;you&gt;</text:p></office:text>", _ODT),
                 _xlsx('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'),
                 _office_docx(f"<w:document {_W_NS}><w:body><w:p><w:r><w:t>plain</w:t>"
                              "</w:r></w:p></w:body></w:document>")):
        assert not engine.scan_bytes(data).names


@pytest.mark.skipif(shutil.which("soffice") is None, reason="soffice not installed")
def test_a_part_without_an_xml_declaration_is_read_as_shown(engine: Engine,
                                                            tmp_path: Path) -> None:
    """Word and LibreOffice read a `word/document.xml` without `<?xml ...?>`: its hidden
    runs are left out of the reading then too (LibreOffice's print, read by pdftotext, is
    the oracle)."""
    from scan.test_office_text import _soffice

    docx = _office_docx(f"<w:document {_W_NS}><w:body><w:p>{_HIDDEN_RUNS}</w:p></w:body>"
                        "</w:document>")
    path = tmp_path / "letter.docx"
    path.write_bytes(docx)
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(_soffice(path, "pdf", "pdf"))
    shown = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True,
                           timeout=60).stdout
    assert re.sub(rb"\s", b"", shown) == B64
    for data in (docx, _attached(docx, "letter.docx")):
        names = engine.scan_bytes(data).names
        assert names
        assert "Eicar" in names[0], names


# --- ::marker / ::before rules whose selector names ancestors -------------------------------

def _marker_page(shape: str) -> bytes:
    """B64 as the markers (or `::before` text) of empty items, each by a rule naming the
    items' list; a decoy rule, later in the sheet, names a list the page does not have."""
    css, rows = [], []
    for r, cs in enumerate(LINES):
        items = []
        for i, c in enumerate(cs):
            k = b"p%d_%d" % (r, i)
            if shape == "descendant-marker":
                css += [b'.m .%s::marker{content:"%s"}' % (k, c),
                        b'.z .%s::marker{content:"%d%d"}' % (k, r, i)]
            elif shape == "child-marker":
                css += [b'ol.x > li.%s::marker{content:"%s"}' % (k, c),
                        b'ul.x > li.%s::marker{content:"%d%d"}' % (k, r, i)]
            elif shape == "sibling-marker":  # (the decoy: a sibling the list does not follow)
                css += [b'i.a + ul .%s::marker{content:"%s"}' % (k, c),
                        b'i.b ~ ul .%s::marker{content:"%d%d"}' % (k, r, i)]
            elif shape == "nth-child-marker":
                css.append(b'ul.l%d li:nth-child(%d)::marker{content:"%s"}' % (r, i + 1, c))
            elif shape == "list-item-marker" or shape == "summary-marker":
                css.append(b'.%s::marker{content:"%s"}' % (k, c))
            elif shape == "descendant-before":
                css += [b'div.m i.%s::before{content:"%s"}' % (k, c),
                        b'div.z i.%s::before{content:"%d%d"}' % (k, r, i)]
            items.append(b'<i class="%s"></i>' % k if shape.endswith("before")
                         else b"<li></li>" if shape.startswith("nth")
                         else b'<span class="%s" style="display:inline list-item;list-style-'
                              b'position:inside"></span>' % k if shape.startswith("list-item")
                         else b'<details style="display:inline-block"><summary class="%s" '
                              b'style="list-style-position:inside"></summary></details>' % k
                         if shape.startswith("summary") else b'<li class="%s"></li>' % k)
        if shape.startswith(("list-item", "summary")):
            rows.append(b"<div>" + b"".join(items) + b"</div>")
        elif shape.endswith("before"):
            rows.append(b'<div class="m">' + b"".join(items) + b"</div>")
        else:
            tag = b"ol" if shape == "child-marker" else b"ul"
            rows.append((b'<i class="a"></i>' if shape == "sibling-marker" else b"")
                        + b'<%s class="m x l%d">' % (tag, r) + b"".join(items) + b"</%s>" % tag)
    if shape == "sibling-marker":
        rows.append(b'<i class="b"></i>')  # (after every list: no list follows it)
    if shape.startswith("nth"):
        random.Random(18).shuffle(css)
    sheet = (b"ul,ol{padding:0;margin:0}li{display:inline list-item;list-style-position:"
             b"inside}" + b"".join(css))
    return _page(b"\n".join(rows), sheet)


MARKER_SHAPES = ["descendant-marker", "child-marker", "descendant-before", "sibling-marker",
                 "nth-child-marker", "list-item-marker", "summary-marker"]


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", MARKER_SHAPES)
def test_pseudo_element_rules_apply_under_their_ancestors(engine: Engine, tmp_path: Path,
                                                          shape: str) -> None:
    page = _marker_page(shape)
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


# --- bidi controls outside HTML: a plain-text mail, a Word document ---------------------------

def _rlo_lines() -> list[bytes]:
    return [RLO + _rev(B64[i : i + 32]) + PDF for i in range(0, len(B64), 32)]


@pytest.mark.parametrize("as_attachment", [False, True])
def test_bidi_controls_in_a_plain_text_mail(engine: Engine, as_attachment: bool) -> None:
    import base64

    body = b"\r\n".join(_rlo_lines()) + b"\r\n"
    assert B64 not in _CONTROLS.sub(b"", body).replace(b"\r\n", b"")
    disp = b"Content-Disposition: attachment; filename=notes.txt\r\n" if as_attachment else b""
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n" + disp
           + b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(body))
    assert _found(engine, msg)


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                    reason="soffice or pdftotext not installed")
def test_bidi_controls_in_a_word_document(engine: Engine, tmp_path: Path) -> None:
    """RLO...PDF around each reversed line of a .docx: LibreOffice prints the base64 whole
    (the oracle), the engine reads the document's text in that order."""
    from scan.test_office_text import _docx, _soffice

    docx = _docx("".join(f"<w:p><w:r><w:t>{line.decode()}</w:t></w:r></w:p>"
                         for line in _rlo_lines()))
    path = tmp_path / "letter.docx"
    path.write_bytes(docx)
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(_soffice(path, "pdf", "pdf"))
    shown = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True,
                           timeout=60).stdout
    assert re.sub(rb"\s", b"", _CONTROLS.sub(b"", shown)) == B64
    for data in (docx, _attached(docx, "letter.docx")):
        names = engine.scan_bytes(data).names
        assert names
        assert "Eicar" in names[0], names


def test_selectors_with_ancestors_cost_bounded_time() -> None:
    """Rules of several descendant and sibling combinators on a deep, wide page: each
    (selector, step, element) answered once; past the bound of tries, a limit (a finding)."""

    from zerohour.errors import ScanLimitExceeded

    sheet = b"".join(b'.a .b%d ~ .c .d > i.q%d::before{content:"x"} ' % (k, k % 7)
                     for k in range(300))
    page = (b"<style>" + sheet + b"</style>" + b'<div class="a b1 c d">' * 200
            + b'<i class="q1"></i><b class="b2"></b>' * 3000 + b"</div>" * 200)
    started = cpu.process_time()
    with contextlib.suppress(ScanLimitExceeded):
        htmllayout.laid_out(page)
    assert cpu.process_time() - started < 15.0
