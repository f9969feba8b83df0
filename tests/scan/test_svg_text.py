"""The text an SVG image draws (`zerohour.scan.svgtext`): base64 in `<text>` chunks stored out
of order, drawn in order by `<use>` copies of chunks defined in `<defs>` or `<symbol>`s, or
placed in order by their x/y and transforms (round 16). librsvg is the oracle:
`rsvg-convert -f pdf` draws the image, `pdftotext -layout` reads the page, as a recipient
does."""

from __future__ import annotations

import base64
import html
import random
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from helpers import cpu
from helpers.messages import EICAR
from helpers.tools import tool
from scan.conftest import EICAR_NAME
from zerohour.scan import Engine
from zerohour.scan.limits import ScanContext
from zerohour.scan.svgtext import svg_readings

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"
RSVG = shutil.which("rsvg-convert")
needs_rsvg = pytest.mark.skipif(RSVG is None, reason="rsvg-convert (librsvg2-bin) not installed")


def _chunks() -> list[list[str]]:
    """clam.exe's base64 in lines of 64, each in chunks of 8."""
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return [[line[i : i + 8] for i in range(0, len(line), 8)] for line in lines]


def _svg(body: list[str], rows: int) -> bytes:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
            f' width="460" height="{40 + rows * 14}">\n' + "\n".join(body) + "\n</svg>\n").encode()


def drawn_by_use(shape: str) -> bytes:
    """Chunks defined shuffled (in `<defs>`, or as `<symbol>`s), drawn in order by `<use>`."""
    chunks = _chunks()
    defs, uses = [], []
    attr = "xlink:href" if shape == "xlink" else "href"
    for r, line in enumerate(chunks):
        for i, c in enumerate(line):
            text = f'<text font-family="monospace" font-size="10">{c}</text>'
            if shape == "symbol":
                defs.append(f'<symbol id="t{r}_{i}" overflow="visible">{text}</symbol>')
            else:
                defs.append(text.replace("<text ", f'<text id="t{r}_{i}" '))
            uses.append(f'<use {attr}="#t{r}_{i}" x="{10 + i * 52}" y="{20 + r * 14}"/>')
    random.Random(16).shuffle(defs)
    body = defs if shape == "symbol" else ["<defs>", *defs, "</defs>"]
    return _svg([*body, *uses], len(chunks))


def placed(shape: str) -> bytes:
    """Chunks shuffled in the document, placed in reading order by x/y or by transforms."""
    chunks = _chunks()
    texts = []
    for r, line in enumerate(chunks):
        for i, c in enumerate(line):
            x, y = 10 + i * 52, 20 + r * 14
            style = 'font-family="monospace" font-size="10"'
            if shape == "xy":
                texts.append(f'<text x="{x}" y="{y}" {style}>{c}</text>')
            elif shape == "translate":
                texts.append(f'<g transform="translate({x} {y - 5})"><text y="5" {style}>'
                             f"{c}</text></g>")
            elif shape == "css-transform":  # (round 18 v057: the CSS property, in px)
                texts.append(f'<g style="transform: translate('
                             f'{x}px, {y - 5}px)"><text y="5" {style}>{c}</text></g>')
            elif shape == "attribute-and-css":  # (librsvg takes the attribute; Chromium,
                # which the CSS sends to the wrong place, the property)
                texts.append(f'<g transform="translate({x} {y - 5})" style="transform: '
                             f'translate({y}px, {x}px)"><text y="5" {style}>{c}</text></g>')
            elif shape == "css-translate-xy":
                texts.append(f'<text style="transform:translateX({x}px) translateY({y}px)" '
                             f"{style}>{c}</text>")
            else:  # tspans of one text, each placed
                texts.append(f'<tspan x="{x}" y="{y}">{c}</tspan>')
    random.Random(17).shuffle(texts)
    if shape == "tspan":
        texts = ['<text font-family="monospace" font-size="10">', *texts, "</text>"]
    return _svg(texts, len(chunks))


def _found_as_rsvg_draws_it(engine: Engine, tmp_path: Path, svg: bytes) -> None:
    """librsvg (the oracle) draws clam.exe's base64 from `svg`, and the engine finds clam.exe
    in the image."""
    (tmp_path / "p.svg").write_bytes(svg)
    subprocess.run([RSVG or "rsvg-convert", "-f", "pdf", "-o", str(tmp_path / "p.pdf"),
                    str(tmp_path / "p.svg")], check=True, capture_output=True)
    text = subprocess.run([tool("pdftotext"), "-layout", str(tmp_path / "p.pdf"), "-"],
                          capture_output=True, check=True).stdout
    assert base64.b64decode(b"".join(text.split())) == CLAM.read_bytes()
    assert engine.scan_bytes(svg, "p.svg").names == (NAME,)


@needs_rsvg
@pytest.mark.parametrize("shape", ["href", "xlink", "symbol"])
def test_chunks_drawn_in_order_by_use(clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Round 16 (v116): chunks in `<defs>` (or `<symbol>`s) stored shuffled, drawn in order
    by `<use href>` / `<use xlink:href>`."""
    _found_as_rsvg_draws_it(clam_engine, tmp_path, drawn_by_use(shape))


@needs_rsvg
@pytest.mark.parametrize("shape", ["xy", "translate", "tspan", "css-transform", "css-translate-xy",
                                   "attribute-and-css"])
def test_chunks_placed_in_order(clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Round 16 (v117): `<text>` chunks stored shuffled, placed in reading order by their
    x/y, by a `translate` of their group, or as placed `<tspan>`s of one text."""
    _found_as_rsvg_draws_it(clam_engine, tmp_path, placed(shape))


def test_inline_svg_in_a_page(clam_engine: Engine) -> None:
    """The same image inline in an HTML page: a browser draws it as librsvg does."""
    page = (b"<!doctype html><html><body><p>Your invoice:</p>" + placed("xy")
            + b"<p>Regards</p></body></html>\n")
    assert clam_engine.scan_bytes(page, "invoice.html").names == (NAME,)


def test_readings_of_an_ordinary_image() -> None:
    """A chart's labels: drawn order and layout, what is defined but not drawn left out."""
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg"><defs><text id="l">Total</text>'
           b"<text>never drawn</text></defs><title>t</title>"
           b'<text x="50" y="40">second</text><text x="10" y="10">first &amp; <tspan>more'
           b'</tspan></text><use href="#l" x="0" y="80"/><g transform="translate(100 40)">'
           b'<text x="-40">right</text></g></svg>')
    drawn, laid_out = svg_readings(svg, ScanContext())
    assert drawn == b"second\nfirst & more\nTotal\nright"
    assert laid_out == b"first & more\nsecondright\nTotal"


def test_an_ordinary_image_gives_no_finding(clam_engine: Engine) -> None:
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg"><defs><text id="a">A</text></defs>'
           + b"".join(b'<use href="#a" x="%d" y="%d"/>' % (i * 7, i % 13) for i in range(300))
           + b'<text x="1" y="2">Quarterly results</text></svg>')
    assert clam_engine.scan_bytes(svg, "chart.svg").names == ()


@pytest.mark.parametrize("shape", ["many", "self", "cycle", "deep", "fan", "nesting"])
def test_pathological_uses_are_bounded(clam_engine: Engine, shape: str) -> None:
    """`<use>` counts and references an attacker controls: 100k copies of one text, a
    `<use>` of itself, a cycle of two, a chain of 500 nested `<use>`s, and ten levels of ten
    copies each (10^10 drawn), 2,000 nested groups closed by 200k stray closing tags: each
    scan ends in bounded CPU time."""
    head = b'<svg xmlns="http://www.w3.org/2000/svg"><defs><text id="t0">TVqQ</text>'
    if shape == "many":
        body = head + b"</defs>" + b'<use href="#t0" x="1" y="2"/>' * 100_000
    elif shape == "self":
        body = head + b'</defs><use id="u" href="#u"/>' * 1000
    elif shape == "cycle":
        body = head + b'<g id="a"><use href="#b"/></g><g id="b"><use href="#a"/></g></defs>' \
            + b'<use href="#a"/>' * 1000
    elif shape == "deep":
        body = head + b"".join(b'<g id="t%d"><use href="#t%d"/></g>' % (i + 1, i)
                               for i in range(500)) + b'</defs><use href="#t500"/>' * 200
    elif shape == "nesting":
        body = head + b"</defs>" + b"<g>" * 2000 + b"</x>" * 200_000 + b'<use href="#t0"/>'
    else:
        body = head + b"".join(b'<g id="t%d">' % (i + 1) + b'<use href="#t%d"/>' % i * 10
                               + b"</g>" for i in range(10)) + b'</defs><use href="#t10"/>'
    svg = body + b"</svg>"
    started = cpu.process_time()
    report = clam_engine.scan_bytes(svg, "p.svg")
    assert cpu.process_time() - started < 10
    # (librsvg draws nothing past 500,000 references either; a chain of 500 it draws, and
    # the reader stops at `_MAX_USE_DEPTH`: a limit, never a silent stop)
    # (2,000 nested groups are past the 256 levels the reader reads, and libxml2's; an HTML
    # parser walks the 2,000 open groups at each of the 200k stray end tags, 400M steps, past
    # what htmlparsed's parser may spend: whichever reading stops first, a limit)
    assert [f.name for f in report.findings] == (
        ["Heuristics.Limits.Exceeded.MaxScanTime"] if shape in ("fan", "deep", "nesting")
        else [])


def _use_chains(depth: int) -> bytes:
    """clam.exe's base64 in pieces of 8 defined in `<defs>` between decoys (never drawn),
    each piece drawn through a chain of `depth` `<use>`s."""
    rnd = random.Random(5)
    b64 = base64.b64encode(CLAM.read_bytes())
    pieces = [b64[i : i + 8] for i in range(0, len(b64), 8)]
    defs, drawn = [], []
    for n, piece in enumerate(pieces):
        at = b'x="%d" y="%d"' % (10 + 70 * (n % 8), 20 + 16 * (n // 8))
        decoy = base64.b64encode(rnd.randbytes(6))
        defs.append(b'<text id="p%d_0" %s>%s</text><text %s>%s</text>' % (n, at, piece, at,
                                                                         decoy))
        defs += [b'<use id="p%d_%d" href="#p%d_%d"/>' % (n, k, n, k - 1)
                 for k in range(1, depth + 1)]
        drawn.append(b'<use href="#p%d_%d"/>' % (n, depth))
    return (b'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="%d" font-family="'
            b'monospace" font-size="12"><defs>' % (40 + 16 * (len(pieces) // 8))
            + b"".join(defs) + b"</defs>" + b"".join(drawn) + b"</svg>")


@pytest.mark.skipif(RSVG is None, reason="rsvg-convert (librsvg2-bin) not installed")
def test_a_piece_drawn_through_a_long_use_chain_is_read(clam_engine: Engine,
                                                        tmp_path: Path) -> None:
    """librsvg draws through chains of hundreds of `<use>`s: one of 16 was left undrawn
    (`_MAX_USE_DEPTH` was 16), the decoys between the pieces read instead, clean. Up to 63
    are drawn; deeper is a limit finding."""
    _found_as_rsvg_draws_it(clam_engine, tmp_path, _use_chains(40))
    report = clam_engine.scan_bytes(_use_chains(100), "p.svg")
    assert report.names == ("Heuristics.Limits.Exceeded.MaxScanTime",)


def _chunk_svg(shape: str) -> bytes:
    """Round 17: chunks whose order or characters only the drawing gives.

    - rtl: `direction="rtl" unicode-bidi="bidi-override"` (attributes, or the style
      property), characters stored reversed, drawn right to left (w094);
    - marker-start / marker-mid / marker-end: each chunk the text of a `<marker>` (defined
      shuffled), drawn only where a path, line or polyline uses it, at its vertices (w096);
    - image: each chunk the text of an SVG `<image href="data:image/svg+xml,...">`
      (percent-encoded, or base64 by xlink:href)."""
    chunks = _chunks()
    defs, body = [], []
    for r, line in enumerate(chunks):
        for i, c in enumerate(line):
            x, y, k = 10 + i * 52, 20 + r * 14, f"{r}_{i}"
            if shape == "rtl":
                how = ('direction="rtl" unicode-bidi="bidi-override"' if (r + i) % 2 else
                       'style="direction:rtl;unicode-bidi:bidi-override"')
                body.append(f'<text x="{x + 48}" y="{y}" {how}>{c[::-1]}</text>')
            elif shape.startswith("marker"):
                defs.append(f'<marker id="m{k}" markerUnits="userSpaceOnUse" refX="0" refY="10"'
                            f' overflow="visible"><text x="0" y="10">{c}</text></marker>')
                if shape == "marker-start":
                    body.append(f'<path d="M {x} {y - 10} h 0.01" marker-start="url(#m{k})"/>')
                elif shape == "marker-end":
                    body.append(f'<line x1="0" y1="0" x2="{x}" y2="{y - 10}" stroke="none"'
                                f' style="marker-end:url(#m{k})"/>')
                else:  # the middle vertex of a three-point path (relative moves)
                    body.append(f'<path d="m {x - 5} {y - 15} l 5 5 5 5" fill="none"'
                                f' marker-mid="url(#m{k})"/>')
            elif shape == "image":
                inner = (f'<svg xmlns="http://www.w3.org/2000/svg" width="52" height="13">'
                         f'<text x="0" y="10" font-family="monospace" font-size="10">{c}</text>'
                         "</svg>")
                url = ("data:image/svg+xml;base64," + base64.b64encode(inner.encode()).decode()
                       if i % 2 else "data:image/svg+xml," + urllib.parse.quote(inner))
                attr = "xlink:href" if i % 2 else "href"
                body.append(f'<image x="{x}" y="{y - 10}" width="52" height="13" {attr}="{url}"/>')
    random.Random(17).shuffle(defs)
    random.Random(18).shuffle(body)
    style = '<g font-family="monospace" font-size="10">'
    return _svg([style, "<defs>", *defs, "</defs>", *body, "</g>"], len(chunks))


@needs_rsvg
@pytest.mark.parametrize("shape", ["rtl", "marker-start", "marker-mid", "marker-end"])
def test_chunks_drawn_by_direction_markers_and_images(clam_engine: Engine, tmp_path: Path,
                                                      shape: str) -> None:
    """Round 17 (w094, w096): reversed right-to-left chunks, chunks inside markers (librsvg
    draws an `<image>`'s SVG as pixels: that shape is Chromium's, in test_svg_images)."""
    _found_as_rsvg_draws_it(clam_engine, tmp_path, _chunk_svg(shape))


@pytest.mark.parametrize("shape", ["vertices", "self", "fan", "images"])
def test_pathological_markers_and_images_are_bounded(clam_engine: Engine, shape: str) -> None:
    """Round 17: a marker at each of 200k vertices, markers drawing themselves, ten levels of
    markers drawing ten markers each (10^10 drawn), SVG images nested in `<image>` data: URLs
    copied 50k times: each scan ends in bounded CPU time."""
    head = (b'<svg xmlns="http://www.w3.org/2000/svg"><defs><marker id="m0">'
            b"<text>TVqQ</text></marker>")
    if shape == "vertices":
        body = head + b'</defs><path marker-mid="url(#m0)" d="M0 0' + b" l1 1" * 200_000 + b'"/>'
    elif shape == "self":
        body = head + b'<marker id="s"><path d="M0 0 L1 1" marker-end="url(#s)"/></marker>' \
            + b'</defs><path d="M0 0 L1 1" marker-start="url(#s)"/>' * 1000
    elif shape == "fan":
        body = head + b"".join(b'<marker id="m%d"><path marker-mid="url(#m%d)" d="M0 0%s"/>'
                               b"</marker>" % (i + 1, i, b" l1 1" * 11) for i in range(10)) \
            + b'</defs><path marker-start="url(#m10)" d="M0 0"/>'
    else:
        inner = b'<svg xmlns="http://www.w3.org/2000/svg"><text>TVqQ</text></svg>'
        for _ in range(8):
            inner = (b'<svg xmlns="http://www.w3.org/2000/svg"><image id="i" href="data:image/'
                     b"svg+xml;base64," + base64.b64encode(inner) + b'"/><use href="#i"/></svg>')
        body = head + b'</defs><g id="g">' + inner + b"</g>" + b'<use href="#g"/>' * 50_000
    svg = body + b"</svg>"
    started = cpu.process_time()
    report = clam_engine.scan_bytes(svg, "p.svg")
    assert cpu.process_time() - started < 10
    assert [f.name for f in report.findings] in (
        [], ["Heuristics.Limits.Exceeded.MaxScanTime"])



def _past_the_vertex_bound(shape: str, vertices: int = 150_000) -> bytes:
    """Round 36: the EICAR string in two halves, the first a `<text>`, the second the text
    of a `<marker>` drawn at the end of a path (or polyline) of 150,000 vertices, all but
    the last on a line above it, drawn before the first half: librsvg draws the marker at
    the real end, after the first half; the 100,000th vertex was read as the end (the second
    half read first, by place as by drawing order: clean)."""
    first, second = EICAR[:34], EICAR[34:]
    end = b"%d 40" % (10 + 6 * len(first))
    if shape == "path":
        drawn = b'<path d="M 10 20' + b" l 0 0" * vertices + b" L " + end + b'"'
    else:
        drawn = b'<polyline points="10,20' + b" 10,20" * vertices + b" " + end + b'"'
    return (b'<svg xmlns="http://www.w3.org/2000/svg" width="500" height="60" font-family='
            b'"monospace" font-size="10"><defs><marker id="m" markerUnits="userSpaceOnUse"'
            b' overflow="visible"><text>%s</text></marker></defs>%s fill="none"'
            b' marker-end="url(#m)"/><text x="10" y="40">%s</text></svg>'
            % (html.escape(second.decode()).encode(), drawn, html.escape(first.decode()).encode()))


@needs_rsvg
@pytest.mark.parametrize("shape", ["path", "polyline"])
def test_an_end_marker_past_the_vertex_bound_is_read_at_the_real_end(
        eicar_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Round 36: a shape's start and end markers are drawn at its real first and last
    vertices however many it has; `marker-mid` at more than `_MAX_VERTICES` is a limit
    finding (it was drawn at the first 100,000, the rest left out). librsvg draws the
    marker at the real end of the 150,000 too (checked by hand: it takes minutes), here of
    1,000."""
    (tmp_path / "p.svg").write_bytes(_past_the_vertex_bound(shape, 1_000))
    subprocess.run([RSVG or "rsvg-convert", "-f", "pdf", "-o", str(tmp_path / "p.pdf"),
                    str(tmp_path / "p.svg")], check=True, capture_output=True)
    text = subprocess.run([tool("pdftotext"), "-layout", str(tmp_path / "p.pdf"), "-"],
                          capture_output=True, check=True).stdout
    assert EICAR in text
    svg = _past_the_vertex_bound(shape)
    assert eicar_engine.scan_bytes(svg, "p.svg").names == (EICAR_NAME,)
    mid = svg.replace(b"marker-end", b"marker-mid")
    assert eicar_engine.scan_bytes(mid, "p.svg").names == (
        "Heuristics.Limits.Exceeded.MaxScanTime",)


def _placed_past_4096(decoys: int = 4100) -> bytes:
    """Bound 3: one `<text>` whose `x`/`y` lists place each character: `decoys` dashes
    first, on lines below, then EICAR's base64 stored shuffled, each character placed in
    order on the top line by its own values (past the 4096th)."""
    b64 = base64.b64encode(EICAR).decode()
    chars = [("-", 10 + (i % 80) * 6, 300 + (i // 80) * 12) for i in range(decoys)]
    order = list(range(len(b64)))
    random.Random(3).shuffle(order)
    chars += [(b64[k], 10 + k * 6, 20) for k in order]
    xs = " ".join(str(c[1]) for c in chars)
    ys = " ".join(str(c[2]) for c in chars)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="'
            f'{320 + decoys // 80 * 12}"><text font-family="monospace" font-size="10" x="{xs}"'
            f' y="{ys}">{"".join(c[0] for c in chars)}</text></svg>\n').encode()


def test_characters_placed_past_4096_values_are_read_where_placed(
        eicar_engine: Engine, tmp_path: Path) -> None:
    """Bound 3: each character of a `<text>` goes where its own `x`/`y` value puts it,
    however long the lists: they were cut at 4096 values, the characters after left in the
    document's order (shuffled base64: clean). Chromium is the oracle (printed, read by
    pdftotext; as an image and inline in a page); librsvg 2.54 takes only the first value."""
    from scan.test_html_views import CHROMIUM, printed_text

    svg = _placed_past_4096()
    page = b"<!doctype html><html><body><p>Invoice</p>" + svg + b"<p>Regards</p></body></html>"
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert base64.b64encode(EICAR) in printed_text(tmp_path, svg, "p.svg")
        assert base64.b64encode(EICAR) in printed_text(tmp_path, page)
    assert base64.b64encode(EICAR) not in svg  # (not in the document's order)
    assert eicar_engine.scan_bytes(svg, "p.svg").names == (EICAR_NAME,)
    assert eicar_engine.scan_bytes(page, "invoice.html").names == (EICAR_NAME,)
