"""SVG text the renderer does not paint (`zerohour.scan.svgtext`, round 20: h50, h227, h133,
h134, h206-h211; and what style sheets' rules hide): base64 cut into pieces with
base64-looking decoys between them that librsvg and Chromium leave unpainted: a `<switch>`'s
children whose conditions fail, text unfilled, transparent, hidden or of size 0, groups of
opacity 0, an empty clip path or mask, `scale(0)`, a zero-size nested viewport or
`<foreignObject>`, text outside the image. The oracles: librsvg (`rsvg-convert -f pdf`,
`pdftotext -layout`) for .svg files rebuilds clam.exe; Chromium's print of a page with the
image inline rebuilds EICAR's base64."""

from __future__ import annotations

import base64
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from test_html_views import (  # type: ignore[import-not-found]
    B64,
    CHROMIUM,
    _found,
    engine,  # noqa: F401  (the fixture)
    mail,
    printed_text,
)
from test_svg_text import _found_as_rsvg_draws_it  # type: ignore[import-not-found]

from helpers import cpu
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine
from zerohour.scan.limits import ScanContext
from zerohour.scan.svgtext import inline_page, svg_readings

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"
RSVG = shutil.which("rsvg-convert")

#: How a decoy is kept from the paint: (definitions, the decoy's <text> markup at x, y).
HIDDEN: dict[str, tuple[str, str]] = {
    "fill-none": ("", '<text x="{x}" y="{y}" fill="none">{d}</text>'),
    "fill-opacity-0": ("", '<text x="{x}" y="{y}" fill-opacity="0">{d}</text>'),
    "font-size-0": ("", '<text x="{x}" y="{y}" font-size="0">{d}</text>'),
    "visibility-hidden": ("", '<g visibility="hidden"><text x="{x}" y="{y}">{d}</text></g>'),
    "group-opacity-0": ("", '<g opacity="0"><text x="{x}" y="{y}">{d}</text></g>'),
    "scale-0": ("", '<text x="{x}" y="{y}" transform="scale(0, 1)">{d}</text>'),
    "empty-clip-path": ('<clipPath id="e"/>', '<text x="{x}" y="{y}" clip-path="url(#e)">{d}'
                        "</text>"),
    "zero-rect-clip-path": ('<clipPath id="z"><rect width="0" height="0"/></clipPath>',
                            '<text x="{x}" y="{y}" clip-path="url(#z)">{d}</text>'),
    "empty-mask": ('<mask id="m"/>', '<text x="{x}" y="{y}" mask="url(#m)">{d}</text>'),
    "zero-size-svg": ("", '<svg x="{x}" y="{y0}" width="0" height="0"><text y="12">{d}</text>'
                      "</svg>"),
    "outside": ("", '<text x="-1000" y="{y}">{d}</text>'),
    # round 20: a style sheet hides them (its rules beat presentation attributes; an
    # !important one beats the style attribute)
    "sheet-class-display-none": ("<style>.d{display:none}</style>",
                                 '<text class="d" x="{x}" y="{y}">{d}</text>'),
    "sheet-type-class-fill-none": ("<style>text.d { fill: none }</style>",
                                   '<text class="d" fill="black" x="{x}" y="{y}">{d}</text>'),
    "sheet-attribute-visibility": ("<style>[data-k]{visibility:hidden}</style>",
                                   '<text data-k="1" x="{x}" y="{y}">{d}</text>'),
    "sheet-important-over-style": ("<style>.d{display:none !important}</style>",
                                   '<text class="d" style="display:inline" x="{x}" y="{y}">'
                                   "{d}</text>"),
    # round 5: the rule as an XML parser gives it (a character reference, CDATA, a comment)
    "sheet-character-reference": ("<style>.d{display&#58;none}</style>",
                                  '<text class="d" x="{x}" y="{y}">{d}</text>'),
    "sheet-cdata": ("<style>.d{dis<![CDATA[play:none}]]></style>",
                    '<text class="d" x="{x}" y="{y}">{d}</text>'),
    "sheet-xml-comment": ("<style>.d{dis<!--x-->play:none}</style>",
                          '<text class="d" x="{x}" y="{y}">{d}</text>'),
    "switch": ("", ""),  # (the piece and its decoy in one <switch>)
    "tspan-fill-none": ("", ""),  # (the decoy a <tspan> of the piece's <text>)
}
#: What Chromium's print reads though nobody sees it (text of fill-opacity 0, or masked away, is
#: in the PDF);
#: what librsvg does not draw at all (<foreignObject>).
NOT_FOR_CHROMIUM = {"fill-opacity-0", "empty-mask"}
CHROMIUM_ONLY = {"zero-size-foreign-object": (
    "", '<foreignObject x="{x}" y="{y0}" width="0" height="0"><div xmlns="http://www.w3.org/'
        '1999/xhtml">{d}</div></foreignObject>')}


def _decoy(rnd: random.Random) -> str:
    return base64.b64encode(rnd.randbytes(6)).decode()


def _image(b64: str, shape: str, width: int = 460) -> str:
    """`b64` in lines of 32, pieces of 8 written last first (their x puts them in order: the
    markup's order is no reading), each followed by a decoy hidden as `shape` says."""
    defs, text = {**HIDDEN, **CHROMIUM_ONLY}[shape]
    rnd = random.Random(20)
    lines = [b64[i : i + 32] for i in range(0, len(b64), 32)]
    body = [defs]
    for r, line in enumerate(lines):
        for i in reversed(range(0, len(line), 8)):
            x, y, d = 10 + i * 7, 20 + r * 14, _decoy(rnd)
            piece = f'<text x="{x}" y="{y}">{line[i : i + 8]}</text>'
            if shape == "switch":
                body.append(f'<switch><text systemLanguage="x-klingon" x="{x}" y="{y}">{d}'
                            f"</text>{piece}</switch>")
            elif shape == "tspan-fill-none":
                body.append(piece.replace("</text>", f'<tspan fill="none">{d}</tspan></text>'))
            else:
                body += [piece, text.format(x=x + 28, y=y, y0=y - 12, d=d)]
    height = 40 + 14 * len(lines)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
            ' font-family="monospace" font-size="12">' + "".join(body) + "</svg>")


@pytest.mark.skipif(RSVG is None, reason="rsvg-convert (librsvg2-bin) not installed")
@pytest.mark.parametrize("shape", list(HIDDEN))
def test_decoys_librsvg_does_not_paint(clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    svg = _image(base64.b64encode(CLAM.read_bytes()).decode(), shape).encode()
    _found_as_rsvg_draws_it(clam_engine, tmp_path, svg)


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", [s for s in (*HIDDEN, *CHROMIUM_ONLY)
                                   if s not in NOT_FOR_CHROMIUM])
def test_decoys_chromium_does_not_paint(engine: Engine, tmp_path: Path,  # noqa: F811
                                        shape: str) -> None:
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><div>'
            + _image(B64.decode(), shape, width=700) + "</div></body></html>").encode()
    assert printed_text(tmp_path, page) == B64
    assert _found(engine, mail(page, as_attachment=False))


def test_a_rule_taken_wider_than_it_applies_loses_no_text(clam_engine: Engine) -> None:
    """Selectors are read by their last compound: `.never .p` is taken as `.p`, which hides
    every piece here, though no element has the class `never` and librsvg paints them all.
    The reading of every text still holds them."""
    svg = _image(base64.b64encode(CLAM.read_bytes()).decode(), "fill-none").replace(
        '<text x="', '<text class="p" x="').replace(
        'font-size="12">', 'font-size="12"><style>.never .p{display:none}</style>', 1)
    assert 'class="p" x="38" y="20" fill="none"' in svg  # (the decoys, unfilled, too)
    readings = svg_readings(svg.encode(), ScanContext())
    assert base64.b64encode(CLAM.read_bytes()) in [b"".join(r.split()) for r in readings]
    assert clam_engine.scan_bytes(svg.encode(), "logo.svg").names == (NAME,)


def test_an_important_rule_shows_what_a_style_attribute_hides(clam_engine: Engine,
                                                              tmp_path: Path) -> None:
    svg = _image(base64.b64encode(CLAM.read_bytes()).decode(), "fill-none").replace(
        "<text x=", '<text class="p" style="display:none" x=').replace(
        'font-size="12">', 'font-size="12"><style>.p{display:inline !important}</style>', 1)
    _found_as_rsvg_draws_it(clam_engine, tmp_path, svg.encode())  # (librsvg shows them)


@pytest.mark.parametrize("how", ["entity", "prefix"])
def test_a_sheet_reached_through_xml(clam_engine: Engine, tmp_path: Path, how: str) -> None:
    """Round 5: the hiding rule in a DOCTYPE's internal entity (`<style>&h;</style>`), or in a
    `<x:style>` of the SVG namespace: librsvg applies both."""
    svg = _image(base64.b64encode(CLAM.read_bytes()).decode(), "sheet-class-display-none")
    if how == "entity":
        svg = ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY h ".d{display:none}">]>'
               + svg.replace("<style>.d{display:none}</style>", "<style>&h;</style>", 1))
    else:
        svg = svg.replace("<style>.d{display:none}</style>", '<x:style xmlns:x="http://www.w3'
                          '.org/2000/svg">.d{display:none}</x:style>', 1)
    _found_as_rsvg_draws_it(clam_engine, tmp_path, svg.encode())  # (librsvg shows them)


def test_a_sheet_too_long_to_read_whole_is_the_time_limit(clam_engine: Engine) -> None:
    """Round 5: the hiding rule after 100,000 others was past the readers' caps and left the
    decoys in; a sheet cut short is the scan's limit now, not a reading with part of it."""
    rules = ".z{display:inline}" * 512 + "a{x}" * 99_488 + ".d{display:none}"
    svg = _image(base64.b64encode(CLAM.read_bytes()).decode(), "sheet-class-display-none")
    svg = svg.replace("<style>.d{display:none}</style>", f"<style>{rules}</style>", 1)
    assert clam_engine.scan_bytes(svg.encode(), "logo.svg").names == (
        "Heuristics.Limits.Exceeded.MaxScanTime",)


def test_uncertain_paint_keeps_every_text() -> None:
    """What only some renderers paint is read both ways: Chromium draws a `<switch>`'s child
    whose `requiredFeatures` librsvg finds unmet; text left out is still in the old reading."""
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="60"><switch>'
           b'<text requiredFeatures="x" x="1" y="12">Chromium</text><text x="1" y="12">librsvg'
           b'</text></switch><text x="1" y="30" fill="none">unfilled</text></svg>')
    readings = svg_readings(svg, ScanContext())
    assert b"librsvg" in readings
    assert b"Chromium" in readings
    assert any(b"unfilled" in r for r in readings)


@pytest.mark.parametrize("shape", ["switches", "languages", "opacity-nesting", "clip-paths",
                                   "tspans"])
def test_hostile_paint_is_bounded(shape: str) -> None:
    """About 100k elements each: switches (naming one language, or each another), groups of
    opacity 0.5 nested, clip paths each used once, unfilled tspans: the readings (one per
    reader their conditions tell apart, and the one of every text) in bounded CPU time."""
    n = 33_000
    if shape == "switches":
        body = '<switch><text systemLanguage="de" x="1" y="2">TVqQ</text><text>AAAA</text>' \
               "</switch>" * n
    elif shape == "languages":
        body = "".join(f'<switch><text systemLanguage="l{i}">TVqQ</text><text>AAAA</text>'
                       "</switch>" for i in range(n))
    elif shape == "opacity-nesting":
        body = '<g opacity="0.5">' * 3 * n + "<text>TVqQ</text>" + "</g>" * 3 * n
    elif shape == "clip-paths":
        body = "".join(f'<clipPath id="c{i}"><rect width="0"/></clipPath><text clip-path='
                       f'"url(#c{i})">TVqQ</text>' for i in range(n))
    else:
        body = "<text>" + '<tspan fill="none">TVqQ</tspan><tspan>AAAA</tspan>' * (n + n // 2) \
            + "</text>"
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">{body}</svg>'.encode()
    started = cpu.process_time()
    if shape == "languages":  # (each language one more reader: a limit, not a silent cut)
        with pytest.raises(ScanLimitExceeded, match="languages"):
            svg_readings(svg, ScanContext())
        return
    if shape == "opacity-nesting":  # (past libxml2's depth and the reader's: a limit)
        with pytest.raises(ScanLimitExceeded, match="nested"):
            svg_readings(svg, ScanContext())
        return
    readings = svg_readings(svg, ScanContext())
    assert cpu.process_time() - started < 20
    assert len(readings) <= 6


def _languages_image(b64: str, others: list[str], lang: str = "ru") -> str:
    """`b64` in pieces of 4, each in a `<switch>` whose child in `lang` is the piece, its
    children in each of `others` (named first) and its fallback decoys: only a reader of
    `lang` sees the file."""
    rnd = random.Random(7)
    body = []
    for n, i in enumerate(range(0, len(b64), 4)):
        at = f'x="{10 + 40 * (n % 16)}" y="{20 + 20 * (n // 16)}"'
        kids = [f'<text systemLanguage="{o}" {at}>{_decoy(rnd)[:4]}</text>' for o in others]
        body.append(f'<switch>{"".join(kids)}<text systemLanguage="{lang}" {at}>'
                    f'{b64[i : i + 4]}</text><text {at}>{_decoy(rnd)[:4]}</text></switch>')
    height = 40 + 20 * (len(body) // 16)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="700" height="{height}"'
            ' font-family="monospace" font-size="12">' + "".join(body) + "</svg>")


@pytest.mark.parametrize("named", [2, 12, 63, 64])
def test_every_language_named_is_read_or_a_limit(engine: Engine, tmp_path: Path,  # noqa: F811
                                                 named: int) -> None:
    """Two languages were read besides English, silently: the Russian children after two
    others' were never drawn, and librsvg in a Russian locale draws EICAR's base64. Up to
    `_MAX_LANGUAGES` (64) are read; more is a limit finding (8 refused maps and diagrams
    translated into a dozen languages: round 35)."""
    svg = _languages_image(B64.decode(), [f"a{i}" for i in range(named)]).encode()
    if RSVG is not None and shutil.which("pdftotext") is not None:
        pdf, path = tmp_path / "l.pdf", tmp_path / "l.svg"
        path.write_bytes(svg)
        env = {"PATH": "/usr/bin:/bin", "LANG": "ru_RU.UTF-8", "LANGUAGE": "ru",
               "LC_ALL": "ru_RU.UTF-8"}
        subprocess.run([RSVG, "-f", "pdf", "-o", str(pdf), str(path)], env=env, check=True,
                       capture_output=True)
        shown = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                               capture_output=True).stdout
        assert b"".join(shown.split()) == B64
    names = engine.scan_bytes(svg, "l.svg").names
    assert names == (("Heuristics.Limits.Exceeded.MaxScanTime",) if named > 63
                     else ("Eicar-Test-Signature",))


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
def test_decoys_in_svg_images_are_not_read(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 17's chunks, one per `<img>` of an SVG image (a data: URL), each image with an
    unfilled decoy over its chunk: the page reads with each image's painted text."""
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    rnd = random.Random(17)
    imgs = []
    for k in range(0, len(b64), 8):
        svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="52" height="13" font-size="10"'
               f' font-family="monospace"><text x="0" y="10">{b64[k : k + 8]}</text><text x="0"'
               f' y="10" fill="none">{_decoy(rnd)}</text></svg>')
        imgs.append('<img src="data:image/svg+xml;base64,'
                    + base64.b64encode(svg.encode()).decode() + '">')
    page = ("<!doctype html><html><body><div style=\"width:416px;line-height:0\">"
            + "".join(imgs) + "</div></body></html>").encode()
    assert base64.b64decode(printed_text(tmp_path, page)) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(page, "page.html").names == (NAME,)


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
def test_base64_cut_between_page_and_inline_image(clam_engine: Engine, tmp_path: Path) -> None:
    """The first half of clam.exe's base64 the page's text, the second an inline image's,
    pieces between unfilled decoys: the page read with the image's painted text in place."""
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    half = len(b64) // 64 * 32
    page = ('<!doctype html><html><body><div style="width:230px;word-break:break-all;font:12px'
            f' monospace">{b64[:half]}</div>{_image(b64[half:], "fill-none", width=300)}'
            "</body></html>").encode()
    assert base64.b64decode(printed_text(tmp_path, page)) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(page, "page.html").names == (NAME,)


@pytest.mark.parametrize("shape", ["one-image", "many-images"])
def test_hostile_inline_pages_are_bounded(shape: str) -> None:
    """A page with an image of 100k unfilled texts, or with 50k small images: the page with
    their text in place in bounded CPU time."""
    page = b"<p>x</p>" + (
        b'<svg width="9" height="9">' + b'<text fill="none">TVqQ</text>' * 100_000 + b"</svg>"
        if shape == "one-image" else b'<svg width="9" height="9"><text>TVqQ</text></svg>' * 50_000)
    started = cpu.process_time()
    shown = inline_page(page, ScanContext())
    assert cpu.process_time() - started < 20
    assert shown is not None
    assert shown.count(b"TVqQ") == (0 if shape == "one-image" else 50_000)


def _nested_images(levels: int) -> bytes:
    """EICAR's base64 in `levels` pieces, each the text of an SVG image that draws the next
    piece's image right after it (data: URLs in base64, each inside the one before)."""
    n = -(-len(B64) // levels)
    pieces = [B64[i : i + n] for i in range(0, len(B64), n)]
    inner = b""
    for piece in reversed(pieces):
        image = (b'<image x="%d" y="0" width="3000" height="20" href="data:image/svg+xml;'
                 b'base64,%s"/>' % (len(piece) * 7 + 1, base64.b64encode(inner))
                 if inner else b"")
        inner = (b'<svg xmlns="http://www.w3.org/2000/svg" width="3000" height="20" font-'
                 b'family="monospace" font-size="12"><text x="0" y="14">' + piece + b"</text>"
                 + image + b"</svg>")
    return b"<!doctype html><html><body><div>" + inner + b"</div></body></html>"


def test_images_inside_images_are_drawn_or_a_limit(engine: Engine,  # noqa: F811
                                                    tmp_path: Path) -> None:
    """Images inside images were drawn four deep, silently: the pieces of six levels, all
    printed by Chromium, were read without the last two, clean."""
    page = _nested_images(6)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64
    assert _found(engine, mail(page, as_attachment=False))
    with pytest.raises(ScanLimitExceeded, match="deep"):
        svg_readings(_nested_images(20), ScanContext())


def test_an_image_nested_past_the_readers_depth_is_a_limit(engine: Engine) -> None:  # noqa: F811
    """Elements nested deeper than 256 were read as part of the one at that depth, their
    transforms ignored: pieces placed by them 300 levels down were read in the wrong order
    (round 35; Chromium nests an inline image to 512). Now a limit finding."""
    pieces = "".join(f'<g transform="translate({10 * i},0)"><text>{B64.decode()[i]}</text></g>'
                     for i in range(8))
    svg = ('<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 300 + pieces + "</g>" * 300
           + "</svg>").encode()
    assert engine.scan_bytes(svg, "d.svg").names == ("Heuristics.Limits.Exceeded.MaxRecursion",)
    shallow = svg.replace(b"<g>" * 300, b"<g>" * 250).replace(b"</g>" * 300, b"</g>" * 250)
    assert engine.scan_bytes(shallow, "d.svg").names == ()
