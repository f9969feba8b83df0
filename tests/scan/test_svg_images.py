"""Pages whose text SVG images draw (`zerohour.scan.svgimages`, round 17: w099, w100, w101):
clam.exe's base64 in chunks, each the `<text>` of an SVG image a data: URL holds, shown by an
`<img>`, an `<object>`, a pseudo-element's `content`, a CSS background... Chromium is the
oracle: it prints the page to PDF (each image's text as text), pdftotext reads it, as the
recipient of round 17 did."""

from __future__ import annotations

import base64
import random
import urllib.parse
from pathlib import Path

import pytest
from test_html_views import CHROMIUM, printed_text  # type: ignore[import-not-found]

from helpers import cpu
from zerohour.scan import Engine
from zerohour.scan.limits import ScanContext
from zerohour.scan.svgimages import image_readings

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def _chunks() -> list[str]:
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    return [b64[i : i + 8] for i in range(0, len(b64), 8)]


def _svg_url(chunk: str, k: int) -> str:
    """An SVG image drawing `chunk`, as a data: URL (percent-encoded, or base64 for odd k)."""
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="52" height="13"><text x="0" y="10"'
           f' font-family="monospace" font-size="10">{chunk}</text></svg>')
    if k % 2:
        return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return "data:image/svg+xml," + urllib.parse.quote(svg)


def page(shape: str) -> bytes:
    """clam.exe's base64 drawn by SVG images, eight chunks a line; CSS rules shuffled."""
    rules, body = [], []
    for k, c in enumerate(_chunks()):
        url = _svg_url(c, k)
        box = "display:inline-block;width:52px;height:13px"
        if shape == "img":
            body.append(f'<img src="{url}" alt="x">')
        elif shape == "object":
            body.append(f'<object data="{url}" type="image/svg+xml" width="52" height="13">'
                        "junk</object>")
        elif shape == "embed":
            body.append(f'<embed src="{url}" type="image/svg+xml" width="52" height="13">')
        elif shape in ("before", "after"):
            rules.append(f'#k{k}::{shape}{{content:url("{url}")}}')
            body.append(f'<span id="k{k}"></span>')
        elif shape == "background":
            rules.append(f'#k{k}{{{box};background:url("{url}")}}')
            body.append(f'<span id="k{k}"></span>')
        elif shape == "background-style":
            body.append(f"<span style='{box};background-image:url(\"{url}\")'></span>")
        elif shape == "list-style-image":
            rules.append(f'.k{k}{{list-style-image:url("{url}")}}')
            body.append(f'<li class="k{k}"></li>')
        elif shape == "svg-image":
            body.append(f'<svg width="52" height="13"><image width="52" height="13"'
                        f' href="{url}"/></svg>')
        if k % 8 == 7:
            body.append("<br>\n" if shape != "list-style-image" else "\n")
    random.Random(17).shuffle(rules)
    style = "body{font-family:monospace;font-size:10px}img,object,embed,svg{vertical-align:top}"
    if shape == "list-style-image":
        style += "ul{columns:8;list-style-position:inside;padding:0}li{height:13px}"
        body = ["<ul>", *body, "</ul>"]
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{style}\n'
            + "\n".join(rules) + "</style></head><body>\n" + "".join(body)
            + "\n</body></html>\n").encode()


SHAPES = ["img", "object", "embed", "before", "after", "background", "background-style",
          "svg-image"]


@needs_chromium
@pytest.mark.parametrize("shape", SHAPES)
def test_chunks_drawn_by_svg_images(clam_engine: Engine, tmp_path: Path, shape: str) -> None:
    """Round 17 (w099 `<img>`, w100 `::before` content, w101 CSS backgrounds; objects,
    embeds, `::after`, style attributes, an inline SVG's `<image>`): Chromium prints the
    images' text in page order, and the engine finds clam.exe."""
    data = page(shape)
    assert base64.b64decode(printed_text(tmp_path, data)) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(data, "page.html").names == (NAME,)


def test_an_ordinary_page_with_svg_images(clam_engine: Engine) -> None:
    """Icons and a logo as SVG data: URLs: their text is read in place, no finding."""
    logo = _svg_url("ACME", 0)
    data = (f'<html><head><style>.i::before{{content:url("{logo}")}}</style></head><body>'
            f'<p><img src="{logo}" alt="ACME"> Welcome <span class="i"></span> to our news'
            f"letter</p><div style='background:url(\"{_svg_url('Sale', 1)}\")'>50% off</div>"
            "</body></html>").encode()
    readings = [c.data for c in image_readings(data, ScanContext())]
    assert len(readings) == 1
    assert b"ACME Welcome ACME" in readings[0]
    assert b"Sale50% off" in readings[0]
    assert clam_engine.scan_bytes(data, "news.html").names == ()


def test_no_reading_without_svg_images() -> None:
    data = b'<html><body><img src="data:image/png;base64,iVBORw0KGgo=" alt="x"> hi</body></html>'
    assert list(image_readings(data, ScanContext())) == []


@pytest.mark.parametrize("shape", ["imgs", "rule-fanout", "selectors"])
def test_pathological_pages_are_bounded(clam_engine: Engine, shape: str) -> None:
    """10k `<img>`s of one SVG image; one CSS image rule matching 50k elements; rules of 64
    selectors each: bounded CPU time (an output past the scan's size limit is a limit
    finding)."""
    url = _svg_url("TVqQ" * 50, 0)
    if shape == "imgs":
        data = f'<img src="{url}">'.encode() * 10_000
    elif shape == "rule-fanout":
        data = f'<style>p{{background:url("{url}")}}</style>'.encode() + b"<p>a</p>" * 50_000
    else:
        sel = ",".join(f"#a{i}" for i in range(64))
        data = "".join(f'<style>{sel}{{background:url("{_svg_url(str(k), 0)}")}}</style>'
                       for k in range(2000)).encode() + b"<b id=a1>x</b>" * 1000
    started = cpu.process_time()
    report = clam_engine.scan_bytes(data, "page.html")
    assert cpu.process_time() - started < 10
    assert [f.name for f in report.findings] in (
        [], ["Heuristics.Limits.Exceeded.MaxScanSize"], ["Heuristics.Limits.Exceeded.MaxFileSize"],
        ["Heuristics.Limits.Exceeded.MaxScanTime"])
