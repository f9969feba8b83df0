"""The text a PDF's pages show (`documents.pdf.page_text`): base64 or an xxd dump drawn as page
text, which a recipient copies out of the viewer (round 9). `pdftotext` is the oracle."""

from __future__ import annotations

import base64
import subprocess
import unicodedata
import zlib
from pathlib import Path

import pytest

from helpers import cpu
from helpers.tools import tool
from zerohour.scan import Engine
from zerohour.scan.documents import pdf

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"



def _found_as_pdftotext_reads_it(engine: Engine, tmp_path: Path, doc: bytes,
                                 *option: str, junk: bytes = b"") -> None:
    """pdftotext (the oracle) gives clam.exe's base64 back from `doc`, and the engine finds
    clam.exe in it."""
    (tmp_path / "r.pdf").write_bytes(doc)
    text = subprocess.run([tool("pdftotext"), *option, str(tmp_path / "r.pdf"), "-"],
                          capture_output=True, check=True).stdout
    if junk:
        text = text.replace(junk, b"")
    assert base64.b64decode(b"".join(text.split())) == CLAM.read_bytes()
    assert engine.scan_bytes(doc, "r.pdf").names == (NAME,)


def _assemble(objs: list[bytes]) -> bytes:
    """A PDF of these objects (1 the catalog), with its cross-reference table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1, xref)


def _escape(line: bytes) -> bytes:
    return line.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def one_page(lines: list[bytes], flate: bool, kerned: bool) -> bytes:
    ops = [b"BT", b"/F1 9 Tf", b"11 TL", b"36 800 Td"]
    for line in lines:
        if kerned:  # pieces of 4 in an array with kerning (no space for a viewer)
            parts = b" -5 ".join(b"(" + _escape(line[i : i + 4]) + b")"
                                 for i in range(0, len(line), 4))
            ops.append(b"[" + parts + b"] TJ T*")
        else:
            ops.append(b"(" + _escape(line) + b") Tj T*")
    ops.append(b"ET")
    content = b"\n".join(ops)
    stream = zlib.compress(content) if flate else content
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
            b"<< /F1 5 0 R >> >> /Contents 4 0 R >>",
            b"<< /Length %d%s >>\nstream\n" % (len(stream), b" /Filter /FlateDecode" if flate
                                               else b"") + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>"]
    return _assemble(objs)


@pytest.mark.parametrize("kerned", [False, True])
@pytest.mark.parametrize("flate", [False, True])
@pytest.mark.parametrize("carrier", ["base64", "xxd"])
def test_a_file_drawn_as_page_text(clam_engine: Engine, tmp_path: Path, carrier: str, flate: bool,
                                   kerned: bool) -> None:
    clam = CLAM.read_bytes()
    if carrier == "base64":
        b64 = base64.b64encode(clam)
        lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    else:
        lines = subprocess.run(["xxd", "-"], input=clam, capture_output=True,
                               check=True).stdout.splitlines()
    doc = one_page(lines, flate, kerned)
    (tmp_path / "r.pdf").write_bytes(doc)
    shown = subprocess.run([tool("pdftotext"), "-layout", str(tmp_path / "r.pdf"), "-"],
                           capture_output=True, check=True).stdout
    if carrier == "base64":
        assert base64.b64decode(b"".join(shown.split())) == clam  # `base64 -d -i` of the text
    assert clam_engine.scan_bytes(doc, "r.pdf").names == (NAME,)


def test_page_text_reads_strings_as_a_viewer_shows_them() -> None:
    content = (b"BT /F1 9 Tf 11 TL 36 800 Td (Hello \\(x\\) (nested) \\101) Tj T* [(Wo) -20 (rld)]"
               b" TJ (next) ' <414243> Tj ET")
    assert pdf.page_text(content) == b"Hello (x) (nested) A\nWorld\nnextABC\n"
    assert pdf.page_text(b"q 1 0 0 1 0 0 cm Q") is None


def test_unclosed_strings_cost_one_pass() -> None:
    assert pdf.page_text(b"BT (x) Tj " + b"(" * 200_000) == b"x\n"


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def mapped_page(lines: list[str], cid: bool) -> bytes:
    """A page whose font's ToUnicode map decides the text: one-byte codes drawn as other
    letters (a shuffled alphabet), or a CID font with two-byte codes (Identity-H)."""
    import random

    rng = random.Random(5)
    drawn = list(_ALPHABET)
    rng.shuffle(drawn)
    if cid:
        code = {a: 0x0100 + i for i, a in enumerate(_ALPHABET)}
        pairs = "".join(f"<{code[a]:04X}> <{ord(a):04X}>\n" for a in _ALPHABET)
        space = "<0000> <FFFF>"
        shown = "".join(f"<{''.join(f'{code[c]:04X}' for c in ln)}> Tj T*\n" for ln in lines)
        font = ("<< /Type /Font /Subtype /Type0 /BaseFont /Helvetica /Encoding /Identity-H "
                "/DescendantFonts [6 0 R] /ToUnicode 5 0 R >>")
    else:
        enc = dict(zip(_ALPHABET, drawn, strict=True))
        pairs = "".join(f"<{ord(enc[a]):02X}> <{ord(a):04X}>\n" for a in _ALPHABET)
        space = "<00> <FF>"
        shown = "".join(f"({''.join(enc[c] for c in ln)}) Tj T*\n" for ln in lines)
        font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 5 0 R >>"
    cmap = (f"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
            f"1 begincodespacerange {space} endcodespacerange\n{len(_ALPHABET)} beginbfchar\n"
            f"{pairs}endbfchar endcmap CMapName currentdict /CMap defineresource pop end end")
    content = f"BT /F1 7 Tf 9 TL 20 800 Td\n{shown}ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4"
            b" 0 R >> >> /Contents 7 0 R >>", font.encode(),
            b"<< /Length %d >>\nstream\n" % len(cmap) + cmap.encode() + b"\nendstream",
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Helvetica /CIDSystemInfo << "
            b"/Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 8 0 R >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /FontDescriptor /FontName /Helvetica /Flags 32 /FontBBox [0 0 1000 1000]"
            b" /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>"]
    return _assemble(objs)


@pytest.mark.parametrize("cid", [False, True], ids=["tounicode-swap", "cid-identity-h"])
def test_page_text_through_the_fonts_tounicode_map(clam_engine: Engine, tmp_path: Path,
                                                    cid: bool) -> None:
    """Round 10: the bytes drawn are not the text shown; pdftotext reads the map (oracle)."""
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam).decode()
    doc = mapped_page([b64[i : i + 64] for i in range(0, len(b64), 64)], cid)
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


def test_tounicode_ranges() -> None:
    cmap = (b"begincmap 2 beginbfrange <0041> <0043> <0061>\n<0050> <0051> [<0078> <0079>]\n"
            b"endbfrange 1 beginbfchar <0001> <00410042> endbfchar endcmap")
    assert pdf.to_unicode(cmap) == {0x41: "a", 0x42: "b", 0x43: "c", 0x50: "x", 0x51: "y",
                                    0x01: "AB"}


def _doc(contents: list[bytes], font: bytes = b"<< /Type /Font /Subtype /Type1 /BaseFont "
         b"/Courier >>") -> bytes:
    """One page drawn by `contents` (a /Contents array when several) in font /F1."""
    n = len(contents)
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4"
            b" 0 R >> >> /Contents [" + kids + b"] >>", font]
    objs += [b"<< /Length %d >>\nstream\n" % len(c) + c + b"\nendstream" for c in contents]
    return _assemble(objs)


def _round_eleven(shape: str, lines: list[bytes]) -> bytes:
    at = [(i, ln) for i, ln in enumerate(lines)]
    def tm(i: int, x: float = 20) -> bytes:
        return b"1 0 0 1 %.2f %d Tm " % (x, 750 - 10 * i)
    if shape == "bottom-up":
        body = b"".join(tm(i) + b"(" + _escape(ln) + b") Tj\n" for i, ln in reversed(at))
    elif shape == "right-to-left":
        body = b"".join(tm(i, 20 + j * 4.8) + b"(" + _escape(ln[j : j + 1]) + b") Tj\n"
                        for i, ln in at for j in reversed(range(len(ln))))
    elif shape == "interleaved":
        order = [*range(0, len(lines), 2), *range(1, len(lines), 2)]
        body = b"".join(tm(i) + b"(" + _escape(lines[i]) + b") Tj\n" for i in order)
    elif shape == "drawn-twice":
        body = b"".join((tm(i) + b"(" + _escape(ln) + b") Tj\n") * 2 for i, ln in at)
    elif shape == "junk-off-the-page":
        body = b"".join(tm(i) + b"(" + _escape(ln) + b") Tj\n" + tm(i, 2000) + b"(" +
                        _escape(lines[(i + 3) % len(lines)]) + b") Tj\n" for i, ln in at)
    else:  # actual-text: junk glyphs, the text in /ActualText
        body = b"20 750 Td 10 TL\n" + b"".join(
            b"/Span << /ActualText (" + _escape(ln) + b") >> BDC (" + b"X" * len(ln)
            + b") Tj EMC T*\n" for ln in lines)
    return _doc([b"BT /F1 8 Tf\n" + body + b"ET"])


@pytest.mark.parametrize("shape", ["bottom-up", "right-to-left", "interleaved", "drawn-twice",
                                   "junk-off-the-page", "actual-text"])
def test_page_text_as_pdftotext_lays_it_out(clam_engine: Engine, tmp_path: Path,
                                            shape: str) -> None:
    """Round 11: the order strings are drawn in is not the order a reader sees them."""
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam)
    doc = _round_eleven(shape, [b64[i : i + 64] for i in range(0, len(b64), 64)])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


def test_a_line_split_over_two_content_streams(clam_engine: Engine, tmp_path: Path) -> None:
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    first = b"BT /F1 8 Tf 20 750 Td 10 TL\n" + b"".join(
        b"(" + _escape(ln[:30]) + b") Tj T*\n" for ln in lines) + b"ET"
    second = b"BT /F1 8 Tf\n" + b"".join(
        b"1 0 0 1 %.2f %d Tm (" % (20 + 30 * 4.8, 750 - 10 * i) + _escape(ln[30:]) + b") Tj\n"
        for i, ln in enumerate(lines)) + b"ET"
    doc = _doc([first, second])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


def _round_twelve(shape: str, lines: list[bytes]) -> bytes:
    """Lines drawn in shuffled order, placed only by what round 12 used."""
    import random

    order = list(range(len(lines)))
    random.Random(3).shuffle(order)
    if shape == "cm-translate":
        body = b"".join(b"q 1 0 0 1 0 %d cm BT /F1 8 Tf 20 750 Td (" % (-10 * i)
                        + _escape(lines[i]) + b") Tj ET Q\n" for i in order)
    elif shape == "upside-down":
        body = b"".join(b"BT /F1 8 Tf -1 0 0 -1 %d %d Tm (" % (560, 100 + 10 * i)
                        + _escape(lines[i]) + b") Tj ET\n" for i in order)
    else:
        raise ValueError(shape)
    return _doc([body])


@pytest.mark.parametrize("shape", ["cm-translate", "upside-down"])
def test_page_text_placed_by_transforms_and_named_glyphs(clam_engine: Engine, tmp_path: Path,
                                                         shape: str) -> None:
    """Round 12: lines placed only by `cm`, a page of text upside down: pdftotext reads them
    in order (the oracle), and so do we."""
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam)
    doc = _round_twelve(shape, [b64[i : i + 64] for i in range(0, len(b64), 64)])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


def test_glyph_names_by_code_point() -> None:
    assert pdf._glyph_by_code("uni0041") == "A"
    assert pdf._glyph_by_code("u1F600") == "\U0001F600"
    assert pdf._glyph_by_code("x") == "x"
    assert pdf._glyph_by_code("uniD800") == "\ufffd"


def _swapped(lines: list[bytes]) -> tuple[list[bytes], bytes]:
    """Lines drawn in a font whose ToUnicode map swaps letters: (strings to draw, the map)."""
    import random

    drawn = list(_ALPHABET)
    random.Random(13).shuffle(drawn)
    enc = dict(zip(_ALPHABET, drawn, strict=True))
    pairs = "".join(f"<{ord(enc[a]):02X}> <{ord(a):04X}>\n" for a in _ALPHABET)
    cmap = (f"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
            f"1 begincodespacerange <00> <FF> endcodespacerange\n{len(_ALPHABET)} beginbfchar\n"
            f"{pairs}endbfchar endcmap CMapName currentdict /CMap defineresource pop end end")
    return ["".join(enc[chr(c)] for c in ln).encode() for ln in lines], cmap.encode()


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra) + content + b"\nendstream"


_COURIER = b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>"


def _round_thirteen(shape: str, lines: list[bytes]) -> bytes:
    """Text where round 13 put it: drawn by the quote operators only, in an annotation's
    appearance stream, in a form nested in a form whose font differs from the page's /F1, or
    only in a form field's value."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    if shape == "quote-operators":
        body = b"BT /F1 8 Tf 20 780 Td 10 TL\n" + b"".join(
            (b"(%s) '\n" if i % 2 else b"0 0 (%s) \"\n") % _escape(ln)
            for i, ln in enumerate(lines)) + b"ET"
        return _doc([body])
    drawn, cmap = _swapped(lines)
    shown = b"BT /F1 8 Tf 20 %d Td 10 TL\n" + b"".join(
        b"(" + _escape(d) + b") Tj T*\n" for d in drawn) + b"ET"
    swap_font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /ToUnicode 5 0 R >>"
    if shape == "annotation":
        page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 6 0 R "
                b"/Annots [7 0 R] >>")
        ap = _stream(shown % 780, b"/Type /XObject /Subtype /Form /BBox [0 0 612 842] "
                     b"/Resources << /Font << /F1 4 0 R >> >> ")
        return _assemble([catalog, pages, page, swap_font, _stream(cmap),
                          _stream(b"BT /F1 8 Tf 20 820 Td (Invoice) Tj ET"),
                          b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 612 842] "
                          b"/AP << /N 8 0 R >> /DA (/F1 8 Tf) >>", ap])
    if shape == "nested-forms":
        page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font "
                b"<< /F1 9 0 R >> /XObject << /X1 7 0 R >> >> /Contents 6 0 R >>")
        outer = _stream(b"q 1 0 0 1 0 -10 cm /X1 Do Q",
                        b"/Type /XObject /Subtype /Form /BBox [0 0 612 842] "
                        b"/Resources << /XObject << /X1 8 0 R >> >> ")
        inner = _stream(shown % 790, b"/Type /XObject /Subtype /Form /BBox [0 0 612 842] "
                        b"/Resources << /Font << /F1 4 0 R >> >> ")
        return _assemble([catalog, pages, page, swap_font, _stream(cmap),
                          _stream(b"q /X1 Do Q"), outer, inner, _COURIER])
    raise ValueError(shape)


@pytest.mark.parametrize("shape", ["quote-operators", "annotation", "nested-forms"])
def test_page_text_drawn_where_round_thirteen_put_it(clam_engine: Engine, tmp_path: Path,
                                                     shape: str) -> None:
    """Round 13: text shown by `'`/`"` alone, in an annotation's appearance (a FreeText box,
    a form field) and in forms within forms, each with its own fonts: pdftotext reads each
    (the oracle)."""
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam)
    doc = _round_thirteen(shape, [b64[i : i + 64] for i in range(0, len(b64), 64)])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc, junk=b"Invoice")


def test_a_form_fields_value(clam_engine: Engine) -> None:
    """Round 13: a text field's value (on the field, its widget a kid) is what a viewer shows
    in the field when it builds the appearance itself (/NeedAppearances)."""
    b64 = base64.b64encode(CLAM.read_bytes())
    doc = _assemble([
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R] /NeedAppearances true"
        b" >> >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Annots [4 0 R] >>",
        b"<< /Type /Annot /Subtype /Widget /Rect [20 20 590 820] /Parent 5 0 R >>",
        b"<< /FT /Tx /T (notes) /Ff 4096 /V (" + b64 + b") /Kids [4 0 R] >>"])
    assert clam_engine.scan_bytes(doc, "r.pdf").names == (NAME,)


def test_a_cid_font_without_tounicode(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 13: two-byte codes in a Type0 font with no ToUnicode map; pdftotext reads each
    CID as its code point (the oracle)."""
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam).decode()
    shown = "".join(f"<{''.join(f'{ord(c):04X}' for c in b64[i : i + 64])}> Tj T*\n"
                    for i in range(0, len(b64), 64))
    content = f"BT /F1 7 Tf 9 TL 20 800 Td\n{shown}ET".encode()
    doc = _assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4 0"
        b" R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Helvetica /Encoding /Identity-H "
        b"/DescendantFonts [6 0 R] >>", _stream(content),
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Helvetica /CIDSystemInfo << "
        b"/Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>"])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


def test_a_file_copied_across_pages(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 13: half of the lines on one page, half on the next; pdftotext gives the pages
    one after the other (the oracle)."""
    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]

    def page(part: list[bytes]) -> bytes:
        return _stream(b"BT /F1 8 Tf 20 800 Td 10 TL\n" + b"".join(
            b"(" + _escape(ln) + b") Tj T*\n" for ln in part) + b"ET")

    half = len(lines) // 2
    doc = _assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        *(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 5 "
          b"0 R >> >> /Contents %d 0 R >>" % n for n in (6, 7)),
        _COURIER, page(lines[:half]), page(lines[half:])])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


@pytest.mark.parametrize("shape", ["two-columns", "drawn-order"])
def test_page_text_in_the_order_pdftotext_reads_it(clam_engine: Engine, tmp_path: Path,
                                                   shape: str) -> None:
    """Round 13: lines in two columns (pdftotext reads the left one first), and lines drawn in
    order but placed out of order (`pdftotext -raw` keeps the drawing order)."""
    import random

    clam = CLAM.read_bytes()
    b64 = base64.b64encode(clam)
    lines = [b64[i : i + 40] for i in range(0, len(b64), 40)]
    if shape == "two-columns":
        half = (len(lines) + 1) // 2
        places = [(20 if i < half else 320, 800 - 10 * (i % half)) for i in range(len(lines))]
        option = []
    else:
        ys = list(range(len(lines)))
        random.Random(13).shuffle(ys)
        places = [(20, 800 - 10 * y) for y in ys]
        option = ["-raw"]
    body = b"".join(b"1 0 0 1 %d %d Tm (" % place + _escape(ln) + b") Tj\n"
                    for place, ln in zip(places, lines, strict=True))
    doc = _doc([b"BT /F1 8 Tf\n" + body + b"ET"])
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc, *option)


def test_columns_need_two_lines_starting_at_each_edge() -> None:
    one = [pdf._Run(20, 800 - 10 * i, b"x" * 40, end=20 + 40 * 4.8) for i in range(5)]
    assert pdf._by_columns(one) is None  # a page of one column: no second reading
    two = one + [pdf._Run(320, 800 - 10 * i, b"y" * 40, end=320 + 40 * 4.8) for i in range(5)]
    assert pdf._by_columns(two) == b"x" * 40 + (b"\n" + b"x" * 40) * 4 + (
        b"\n" + b"y" * 40) * 5 + b"\n"


def test_glyph_names_with_variant_suffixes_and_components() -> None:
    """Round 13: the glyph list's rules: a suffix after a period is a variant (`A.alt`,
    `a.sc`, `uni0041.ss01`), underscores join components, `uni` names may hold several."""
    assert pdf._glyph_name("A.alt") == "A"
    assert pdf._glyph_name("uni0041.ss01") == "A"
    assert pdf._glyph_name("f_i") == "fi"
    assert pdf._glyph_name("uni00410042") == "AB"
    assert pdf._glyph_name(".notdef") == "\ufffd"


def test_codes_of_one_and_two_bytes_in_one_font() -> None:
    """Round 13: a CMap whose code space holds one-byte and two-byte codes."""
    spaces = pdf._codespaces(b"2 begincodespacerange <00> <7F> <8000> <FFFF> endcodespacerange")
    assert spaces == ((1, 0, 0x7F), (2, 0x8000, 0xFFFF))
    font = pdf.FontMap({0x8100: "/", 0x810B: "A"}, 1, identity=True, spaces=spaces)
    assert font.text(b"T\x81\x0bV\x81\x00") == b"TAV/"


@pytest.mark.parametrize("suffix", [".alt", ".sc"])
def test_page_text_in_glyph_names_with_suffixes(clam_engine: Engine, tmp_path: Path,
                                                suffix: str) -> None:
    """Round 13: a shuffled encoding whose /Differences name each glyph with a variant
    suffix; pdftotext -raw reads the names (the oracle)."""
    import random

    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    codes = list(range(0x21, 0x21 + len(_ALPHABET)))
    random.Random(13).shuffle(codes)
    code_of = dict(zip(_ALPHABET, codes, strict=True))
    names = {"+": "plus", "/": "slash", "=": "equal"}
    diffs = " ".join(f"{code_of[c]} /{names.get(c, c)}{suffix}" for c in _ALPHABET)
    font = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding << /Type /Encoding "
            b"/Differences [" + diffs.encode() + b"] >> >>")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    body = b"".join(b"<" + bytes(code_of[c] for c in ln).hex().encode() + b"> Tj T*\n"
                    for ln in lines)
    doc = _doc([b"BT /F1 8 Tf 20 800 Td 10 TL\n" + body + b"ET"], font)
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc, "-raw")


@pytest.mark.parametrize("shape", ["kerned-back", "mirrored", "negative-spacing",
                                   "negative-widths", "negative-size", "sideways-kerned-back"])
def test_glyphs_drawn_right_to_left(clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Rounds 13 and 14: each line stored backwards and drawn right to left (kerning that
    moves the pen back, a mirrored text matrix, a negative character spacing, negative
    /Widths, a negative font size on a flipped matrix; sideways text kerned back); pdftotext
    reads the line left to right (the oracle)."""
    b64 = base64.b64encode(CLAM.read_bytes())
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    body = b""
    size = b"10"
    font = _COURIER
    for i, ln in enumerate(lines):
        back = ln[::-1]
        y = 800 - 12 * i
        end_x = 20 + 6 * (len(ln) - 1)
        if shape in ("kerned-back", "sideways-kerned-back"):  # Courier: 600 a glyph, back 1200
            place = (b"1 0 0 1 %d %d Tm [" % (end_x, y) if shape == "kerned-back"
                     else b"0 1 -1 0 %d %d Tm [" % (40 + 12 * i, 20 + 6 * (len(ln) - 1)))
            body += place + b" 1200 ".join(
                b"(" + _escape(back[j : j + 1]) + b")" for j in range(len(back))) + b"] TJ\n"
        elif shape == "mirrored":
            body += b"-1 0 0 1 %d %d Tm (" % (20 + 6 * len(ln), y) + _escape(back) + b") Tj\n"
        elif shape == "negative-widths":
            font = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /FirstChar 32 "
                    b"/LastChar 126 /Widths [" + b" -600" * 95 + b"] >>")
            body += b"1 0 0 1 %d %d Tm (" % (end_x, y) + _escape(back) + b") Tj\n"
        elif shape == "negative-size":
            size = b"-10"
            body += b"1 0 0 -1 %d %d Tm (" % (end_x, y) + _escape(back) + b") Tj\n"
        else:
            body += (b"-12 Tc 1 0 0 1 %d %d Tm (" % (end_x, y) + _escape(back) + b") Tj\n")
    doc = _doc([b"BT /F1 " + size + b" Tf\n" + body + b"ET"], font)
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)


def test_a_one_byte_code_after_a_two_byte_one_at_the_end() -> None:
    spaces = ((1, 0, 0x7F), (2, 0x8000, 0xFFFF))
    font = pdf.FontMap({0x810B: "A"}, 1, identity=True, spaces=spaces)
    assert font.text(b"\x81\x0bT") == b"AT"


def _annotated(lines: list[bytes], shape: str) -> bytes:
    """A page whose text is only in annotations (round 14): checkboxes whose chosen state
    (/AS) shows a line and whose other state junk, stamps with junk in Hidden ones between
    them, or push buttons with a line as caption (/MK /CA) and no appearance."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", b"PAGE", _COURIER]
    annots = []

    def add(obj: bytes) -> int:
        objs.append(obj)
        return len(objs)

    def look(text: bytes) -> int:
        return add(_stream(b"BT /F1 8 Tf 2 4 Td (" + _escape(text) + b") Tj ET",
                           b"/Type /XObject /Subtype /Form /BBox [0 0 500 10] "
                           b"/Resources << /Font << /F1 4 0 R >> >> "))

    for i, ln in enumerate(lines):
        rect = b"[20 %d 520 %d]" % (780 - 12 * i, 790 - 12 * i)
        if shape == "checkbox-state":
            on, off = look(ln), look(b"%04d" % i)
            state = b"/On" if i % 2 else b"/Off"  # the line sits in whichever state is chosen
            first, second = (on, off) if i % 2 else (off, on)
            annots.append(add(b"<< /Type /Annot /Subtype /Widget /FT /Btn /Rect " + rect
                              + b" /AP << /N << /On %d 0 R /Off %d 0 R >> >> /AS " % (
                                  first, second) + state + b" >>"))
        elif shape == "hidden-decoys":
            annots.append(add(b"<< /Type /Annot /Subtype /Stamp /Rect " + rect
                              + b" /AP << /N %d 0 R >> >>" % look(ln)))
            annots.append(add(b"<< /Type /Annot /Subtype /Stamp /F 2 /Rect [20 %d 520 %d]"
                              % (775 - 12 * i, 785 - 12 * i)
                              + b" /AP << /N %d 0 R >> >>" % look(b"%04d" % i)))
        else:  # push buttons with a caption only
            annots.append(add(b"<< /Type /Annot /Subtype /Widget /FT /Btn /Ff 65536 /Rect "
                              + rect + b" /MK << /CA (" + _escape(ln) + b") >> "
                              b"/DA (/F1 8 Tf 0 g) >>"))
    objs[2] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font "
               b"<< /F1 4 0 R >> >> /Annots [" + b" ".join(b"%d 0 R" % a for a in annots)
               + b"] >>")
    return _assemble(objs)


@pytest.mark.parametrize("shape", ["checkbox-state", "hidden-decoys", "button-captions"])
def test_text_in_annotations_as_a_viewer_shows_them(clam_engine: Engine, tmp_path: Path,
                                                    shape: str) -> None:
    """Round 14: pdftotext draws the annotations a viewer shows (the oracle)."""
    b64 = base64.b64encode(CLAM.read_bytes())
    doc = _annotated([b64[i : i + 64] for i in range(0, len(b64), 64)], shape)
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, doc)  # (poppler draws the captions)


@pytest.mark.parametrize("where", ["marked-content", "membership-dict", "form",
                                   "visibility-expression"])
def test_junk_in_optional_content_a_viewer_hides(clam_engine: Engine, tmp_path: Path,
                                                 where: str) -> None:
    """Round 14: junk between each line's pieces in optional content that is off by default
    (marked content of an OFF group or of a membership dictionary over it, a form with /OC,
    a visibility expression that is false); pdftotext does not draw it (the oracle)."""
    b64 = base64.b64encode(CLAM.read_bytes())
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    body = b""
    for i, ln in enumerate(lines):
        body += b"BT /F1 8 Tf 1 0 0 1 20 %d Tm (" % (800 - 10 * i) + _escape(ln[:32]) + b") Tj"
        junk = b"(%04d) Tj" % i
        if where == "form":
            body += b" ET /X1 Do BT /F1 8 Tf 1 0 0 1 %.1f %d Tm" % (20 + 32 * 4.8, 800 - 10 * i)
        else:
            name = {"marked-content": b"oc1", "membership-dict": b"md1"}.get(where, b"ve1")
            body += b" /OC /" + name + (
                b" BDC " + junk + b" EMC")
        body += b" (" + _escape(ln[32:]) + b") Tj ET\n"
    objs = [b"<< /Type /Catalog /Pages 2 0 R /OCProperties << /OCGs [5 0 R 9 0 R] /D << /OFF "
            b"[5 0 R] >> >> >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1"
            b" 4 0 R >> /Properties << /oc1 5 0 R /md1 6 0 R /ve1 10 0 R >> /XObject << /X1 8 "
            b"0 R >> >>"
            b" /Contents 7 0 R >>", _COURIER, b"<< /Type /OCG /Name (decoys) >>",
            b"<< /Type /OCMD /OCGs [5 0 R] /P /AnyOn >>", _stream(body),
            _stream(b"BT /F1 8 Tf 0 0 Td (JUNK) Tj ET", b"/Type /XObject /Subtype /Form "
                    b"/BBox [0 0 50 10] /OC 5 0 R /Resources << /Font << /F1 4 0 R >> >> "),
            b"<< /Type /OCG /Name (shown) >>",  # round 15: not (a group that is on)
            b"<< /Type /OCMD /VE [/And 9 0 R [/Not 9 0 R]] >>"]
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, _assemble(objs), "-raw")


CID_TO_UNICODE = Path("/usr/share/poppler/cidToUnicode")


def _poppler_cids(ordering: str) -> list[int]:
    """poppler-data's CID -> Unicode table of Adobe-`ordering` (what pdftotext reads CIDs
    through; scripts/system-deps installs it): code point by CID, 0 where none."""
    path = CID_TO_UNICODE / f"Adobe-{ordering}"
    assert path.is_file(), "poppler-data not installed (scripts/system-deps installs it)"
    return [int(line, 16) if line.strip() else 0
            for line in path.read_text().splitlines()]


def _cjk_page(shown: list[bytes], cmap: str, ordering: str) -> bytes:
    """A page drawing each of `shown` (a string's bytes) on its own line in a Type0 font with
    the predefined CMap `cmap`, a CID font of Adobe-`ordering`, and no ToUnicode map."""
    content = b"BT /F1 9 Tf 11 TL 30 800 Td\n" + b"".join(
        b"<" + line.hex().upper().encode() + b"> Tj T*\n" for line in shown) + b"ET"
    return _assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4 0"
        b" R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light /Encoding /%s "
        b"/DescendantFonts [6 0 R] >>" % cmap.encode(), _stream(content),
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /CIDSystemInfo << "
        b"/Registry (Adobe) /Ordering (%s) /Supplement 2 >> /FontDescriptor << /Type "
        b"/FontDescriptor /FontName /Ryumin-Light /Flags 6 /FontBBox [0 0 1000 1000] "
        b"/ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >> /DW 500 >>"
        % ordering.encode()])


def _found_as_pdftotext_shows_it(engine: Engine, tmp_path: Path, doc: bytes) -> None:
    """pdftotext gives clam.exe's base64 back from `doc` in fullwidth or ASCII letters (NFKC:
    what `iconv //TRANSLIT` makes of them), and the engine finds clam.exe."""
    (tmp_path / "r.pdf").write_bytes(doc)
    text = subprocess.run([tool("pdftotext"), str(tmp_path / "r.pdf"), "-"],
                          capture_output=True, check=True).stdout.decode()
    ascii_text = unicodedata.normalize("NFKC", text).encode("ascii", "replace")
    assert base64.b64decode(b"".join(ascii_text.split())) == CLAM.read_bytes()
    assert engine.scan_bytes(doc, "r.pdf").names == (NAME,)


def _fullwidth(text: str) -> str:
    return "".join(chr(0xFF00 + ord(c) - 0x20) for c in text)


@pytest.mark.parametrize(("ordering", "fullwidth"), [
    ("Japan1", False), ("Japan1", True), ("GB1", False), ("GB1", True), ("CNS1", False),
    ("Korea1", False), ("Korea1", True)])
def test_identity_cids_of_an_adobe_collection(clam_engine: Engine, tmp_path: Path,
                                              ordering: str, fullwidth: bool) -> None:
    """Round 16: an Identity-H font of Adobe-Japan1 (GB1, CNS1, Korea1) without a ToUnicode
    map, its CIDs those of the collection's Roman (or fullwidth Roman) letters; pdftotext
    reads the CIDs through poppler-data's table (the oracle, and where the CIDs come from)."""
    table = _poppler_cids(ordering)
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    if fullwidth:
        b64 = _fullwidth(b64)
    cid = {c: table.index(ord(c)) for c in set(b64)}
    shown = [b"".join(cid[c].to_bytes(2, "big") for c in b64[i : i + 64])
             for i in range(0, len(b64), 64)]
    _found_as_pdftotext_shows_it(clam_engine, tmp_path, _cjk_page(shown, "Identity-H",
                                                                  ordering))


def _jis(text: str) -> bytes:
    """JIS X 0208 row/cell codes (the predefined CMap `H`): ISO-2022-JP without its escapes."""
    return text.encode("iso2022_jp").replace(b"\x1b$B", b"").replace(b"\x1b(B", b"")


@pytest.mark.parametrize(("cmap", "ordering", "codec", "fullwidth"), [
    ("90ms-RKSJ-H", "Japan1", "cp932", True), ("90ms-RKSJ-H", "Japan1", "cp932", False),
    ("EUC-H", "Japan1", "euc_jp", True), ("H", "Japan1", "jis", True),
    ("UniJIS-UTF16-H", "Japan1", "utf-16-be", True), ("GBK-EUC-H", "GB1", "gbk", True),
    ("GB-EUC-H", "GB1", "gb2312", True), ("ETen-B5-H", "CNS1", "big5", False),
    ("KSCms-UHC-H", "Korea1", "cp949", True), ("KSC-EUC-H", "Korea1", "euc_kr", False)])
def test_codes_of_a_predefined_cjk_cmap(clam_engine: Engine, tmp_path: Path, cmap: str,
                                        ordering: str, codec: str, fullwidth: bool) -> None:
    """Round 16: a Type0 font with a predefined CJK CMap (Shift-JIS, EUC, GBK, Big5, UHC
    codes) and no ToUnicode map, the base64 in fullwidth letters or in the CMap's one-byte
    Roman codes; pdftotext reads them through poppler-data (the oracle)."""
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    if fullwidth:
        b64 = _fullwidth(b64)
    shown = [_jis(line) if codec == "jis" else line.encode(codec)
             for line in (b64[i : i + 64] for i in range(0, len(b64), 64))]
    _found_as_pdftotext_shows_it(clam_engine, tmp_path, _cjk_page(shown, cmap, ordering))


def test_roman_cids_as_poppler_data_maps_them() -> None:
    """The engine's built-in CID -> Unicode runs (Roman letters of Adobe's CJK collections)
    agree with poppler-data's tables, CID by CID."""
    for ordering in ("Japan1", "GB1", "CNS1", "Korea1"):
        table = _poppler_cids(ordering)
        roman = pdf.cid_roman(ordering)
        assert roman
        assert {cid: chr(table[cid]) for cid in roman} == roman
    assert pdf.cid_roman("Identity") is None


# -- round 17: glyphs placed by widths, spacing and TJ offsets ----------------------------------

_HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
#: A font of its own /Widths (300 to 900 by code): no standard 14 font's.
_OWN_WIDTHS = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Unknown /FirstChar 32 /LastChar 126 "
               b"/Widths [" + b" ".join(b"%d" % (300 + (c * 37) % 600) for c in range(32, 127))
               + b"] >>")


#: Helvetica's widths of the base64 alphabet (Adobe's AFM file).
_HELVETICA_WIDTHS = dict(zip(_ALPHABET.encode(), (
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778,
    722, 667, 611, 722, 667, 944, 667, 667, 611, 556, 556, 500, 556, 556, 278, 556, 556,
    222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500,
    500, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 584, 278, 584,
), strict=True))


def _width(font: bytes, text: bytes, size: float) -> float:
    """How far `text` advances the pen (in points) in one of the fonts above."""
    if font == _COURIER:
        return 0.6 * size * len(text)
    if font == _OWN_WIDTHS:
        return sum(300 + (c * 37) % 600 for c in text) * size / 1000
    return sum(_HELVETICA_WIDTHS[c] for c in text) * size / 1000


def _moved_into_place(shape: str, chunks: list[bytes]) -> bytes:
    """Round 17: lines of eight chunks, each line drawn shuffled and moved into place: by TJ
    offsets (w111; in Courier, Helvetica without /Widths, a font's own /Widths, at 50%
    horizontal scaling), by a negative word spacing on "B A" strings (w114; set by `Tw` or
    by the `"` operator), or a TJ whose forward offsets leave gaps that other strings fill."""
    import random

    rng = random.Random(17)
    font = {"tj-helvetica": _HELVETICA, "tj-own-widths": _OWN_WIDTHS}.get(shape, _COURIER)
    size, scale = 10.0, 0.5 if shape == "tj-scaled" else 1.0
    body = b"50 Tz\n" if scale != 1.0 else b""
    for i in range(0, len(chunks), 8):
        line = chunks[i : i + 8]
        y = 780 - 14 * (i // 8)
        at = [sum(_width(font, c, size) * scale for c in line[:j]) for j in range(len(line))]
        if shape.startswith("tj"):
            order = list(range(len(line)))
            rng.shuffle(order)
            pen, items = 0.0, b""
            for j in order:
                items += b"%.1f (" % (-(at[j] - pen) * 1000 / size / scale) + line[j] + b") "
                pen = at[j] + _width(font, line[j], size) * scale
            body += b"1 0 0 1 40 %d Tm [" % y + items + b"] TJ\n"
        elif shape == "tj-gaps-filled":  # even chunks in one TJ, odd ones in its gaps
            items, pen = b"", 0.0
            for j in range(0, len(line), 2):
                items += b"%.1f (" % (-(at[j] - pen) * 1000 / size) + line[j] + b") "
                pen = at[j] + _width(font, line[j], size)
            body += b"1 0 0 1 40 %d Tm [" % y + items + b"] TJ\n"
            body += b"".join(b"1 0 0 1 %.2f %d Tm (" % (40 + at[j], y) + line[j] + b") Tj\n"
                             for j in range(1, len(line), 2))
        else:  # "B A" drawn at B's place; the space's word spacing moves A back to its own
            for j in range(0, len(line), 2):
                if j + 1 == len(line):
                    body += b"0 Tw 1 0 0 1 %.2f %d Tm (" % (40 + at[j], y) + line[j] + b") Tj\n"
                    continue
                back = at[j] - (at[j + 1] + 48 + 6)  # after B and the space, to A
                pair = line[j + 1] + b" " + line[j]
                place = b"1 0 0 1 %.2f %d Tm " % (40 + at[j + 1], y)
                if shape == "word-spacing-quote":
                    body += place + b"%.2f 0 (" % back + pair + b') "\n'
                else:
                    body += b"%.2f Tw " % back + place + b"(" + pair + b") Tj\n"
    return _doc([b"BT /F1 10 Tf 0 TL\n" + body + b"ET"], font)


@pytest.mark.parametrize("shape", ["tj-courier", "tj-helvetica", "tj-own-widths", "tj-scaled",
                                   "tj-gaps-filled", "word-spacing", "word-spacing-quote"])
def test_chunks_moved_into_place(clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Round 17 (w111, w114): each glyph lands where its font's widths, Tc, Tw, Tz and the TJ
    offsets put it, and a line reads in the order of those places, as pdftotext reads it."""
    b64 = base64.b64encode(CLAM.read_bytes())
    chunks = [b64[i : i + 8] for i in range(0, len(b64), 8)]
    _found_as_pdftotext_reads_it(clam_engine, tmp_path, _moved_into_place(shape, chunks),
                                 "-layout")


def test_glyph_placement_is_bounded() -> None:
    """Huge TJ arrays (300,000 numbers; 100,000 strings, each moved back: the tokenizer's
    cost is the most of it) and a million glyphs that each go back (a negative character
    spacing: 65,536 placed one by one, the rest read as one string) read in bounded time."""

    for content, glyphs in ((b"BT /F1 10 Tf [(A) " + b"-1 " * 300_000 + b"(B)] TJ ET", 2),
                            (b"BT /F1 10 Tf [" + b"(A) 3000 " * 100_000 + b"] TJ ET", 100_000),
                            (b"BT /F1 10 Tf -12 Tc (" + b"AB" * 500_000 + b") Tj ET", 1_000_000)):
        t0 = cpu.process_time()
        text = pdf.page_text(content)
        assert text is not None
        assert len(b"".join(text.split())) == glyphs  # none lost
        assert cpu.process_time() - t0 < 10
