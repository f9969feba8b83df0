"""Heuristics.HTML.Script: an HTML or SVG file that runs script when the recipient opens it.

A third hostile-sender round delivered clam.exe in HTML attachments whose script assembles
the bytes in ways no static decoder follows (`window["at"+"ob"](...)`, a DecompressionStream,
char codes in short arrays); Chromium rebuilt the exact file from each. Such a file is never
"clean" (zerohour.scan.scripted); a signature found in it is still what is reported.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from helpers import browser
from zerohour.scan import Engine, load_database
from zerohour.scan.database import default_db_dirs
from zerohour.scan.limits import Limits
from zerohour.scan.scripted import NAME, runs_script
from zerohour.scan.types import FileType

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
ZEROHOUR = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "zerohour"

#: The round's smuggler: no hint word (atob, Blob, base64) for a static decoder to key on.
SMUGGLER = (b'<html><body><script>\nvar d=window["at"+"ob"]("%s");var u=new Uint8Array(d.length);'
            b"for(var i=0;i<d.length;i++)u[i]=d.charCodeAt(i);var a=document.createElement('a');"
            b'a.href=URL.createObjectURL(new File([u],"x.exe"));a.download="x.exe";a.click();\n'
            b"</script></body></html>\n")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))  # the starter database: EICAR


def mail(part_headers: bytes, body: bytes) -> bytes:
    return (b"From: a@attacker.test\r\nTo: b@example.com\r\nSubject: invoice\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            b"--BB\r\n" + part_headers + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(body).replace(b"\n", b"\r\n") + b"--BB--\r\n")


def attachment(body: bytes, name: bytes = b"invoice.html", ctype: bytes = b"text/html") -> bytes:
    return mail(b"Content-Type: " + ctype + b"; name=\"" + name + b"\"\r\n"
                b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n", body)


CLEAN_PAYLOAD = base64.b64encode(b"just a harmless text file\n" * 4)


@pytest.mark.parametrize("body", [
    SMUGGLER % CLEAN_PAYLOAD,
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>fetch('//x')</script></svg>",
    b"<svg/onload=alert(1)>",
    b"<html><body><img src=x onerror=\"go()\"></body></html>",
    b"<html><a href=\"jav&#x61;script:go()\">open</a></html>",
    b"\x00" * 300 + b"<script>go()</script>",
    ("<html><script>go()</script></html>".encode("utf-16")),
    b"<html><iframe srcdoc=\"&lt;script&gt;go()&lt;/script&gt;\"></iframe></html>",
    b"<html><iframe src=\"java\nscript:go()\"></iframe></html>",
    b"<html><iframe src=\"javascript&colon;go()\"></iframe></html>",
    b"<html><iframe src=\"java&Tab;script:go()\"></iframe></html>",
    b"<svg xmlns:s='http://www.w3.org/2000/svg'><s:script>go()</s:script></svg>",
    b'<html><meta charset="iso-2022-jp"><scr\x1b(Bipt>go()</scr\x1b(Bipt></html>',
    b'<html><meta charset="utf-7">+ADw-script+AD4-go()+ADw-/script+AD4-</html>',
], ids=["smuggler", "svg-script", "svg-onload", "onerror", "entity-javascript-url",
        "behind-nuls", "utf-16", "srcdoc-escaped-page", "url-newline", "url-colon-entity",
        "url-tab-entity", "namespaced-svg-script", "iso-2022-jp-escape-in-tag", "utf-7-page"])
def test_an_attachment_that_runs_script_is_a_finding(engine: Engine, body: bytes) -> None:
    assert engine.scan_bytes(attachment(body)).names == (NAME,)


def test_the_same_html_as_the_mail_body_is_not(engine: Engine) -> None:
    """No mail client runs a body's script: an HTML newsletter with script is not flagged."""
    msg = (b"From: a@x.test\r\nTo: b@example.com\r\nSubject: news\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html\r\n\r\n" + SMUGGLER % CLEAN_PAYLOAD)
    assert engine.scan_bytes(msg).names == ()


@pytest.mark.parametrize(("body", "name"), [
    (b"<html><body><h1>Report</h1><table><tr><td>42</td></tr></table></body></html>",
     b"report.html"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='4'/></svg>", b"logo.svg"),
    (b"<p>Scripts are written in <code>&lt;script&gt;</code> tags; one=1</p>", b"howto.html"),
])
def test_an_attachment_without_script_is_clean(engine: Engine, body: bytes, name: bytes) -> None:
    assert engine.scan_bytes(attachment(body, name)).names == ()


def test_a_signature_is_reported_before_the_heuristic(engine: Engine) -> None:
    """EICAR smuggled in a form we decode: the signature is the verdict, as clamscan reports
    a signature over its heuristics; with allmatch both."""
    msg = attachment(SMUGGLER.replace(b'window["at"+"ob"]', b"atob") % base64.b64encode(EICAR))
    names = engine.scan_bytes(msg).names
    assert len(names) == 1, names
    assert "Eicar" in names[0] or "EICAR" in names[0], names
    every = Engine(load_database(default_db_dirs()), allmatch=True).scan_bytes(msg).names
    assert NAME in every, every
    assert any("Eicar" in n or "EICAR" in n for n in every), every


def test_a_browser_file_name_makes_text_html() -> None:
    """A browser renders a local file by its name: script in a .hta or .html that sniffs as
    text or binary runs too; in a .txt it does not."""
    body = b"notes\n<script>go()</script>\n"
    assert runs_script(body, FileType.TEXT, "a.hta")
    assert runs_script(body, FileType.TEXT, "invoice.HTML ")
    assert runs_script(body, FileType.TEXT, "page.shtm")
    xhtml = b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'><h:script>go()</h:script></h:html>"
    assert runs_script(xhtml, FileType.TEXT, "invoice.xml")
    assert not runs_script(body, FileType.TEXT, "notes.txt")


def test_switched_off_in_the_limits(engine: Engine) -> None:
    quiet = Engine(load_database(default_db_dirs()), limits=Limits(alert_html_script=False))
    assert quiet.scan_bytes(attachment(SMUGGLER % CLEAN_PAYLOAD)).names == ()


@pytest.mark.skipif(shutil.which("clamscan") is None, reason="clamscan not installed")
def test_zerohour_scan_alerts_only_when_asked(tmp_path: Path) -> None:
    """The clamscan drop-in keeps clamscan's verdict (clean) unless --alert-html-script."""
    path = tmp_path / "invoice.eml"
    path.write_bytes(attachment(SMUGGLER % CLEAN_PAYLOAD))
    db = ["-d", str(default_db_dirs()[0])]
    clam = subprocess.run(["clamscan", "--no-summary", *db, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert clam.returncode == 0, clam.stdout + clam.stderr
    plain = subprocess.run([str(ZEROHOUR), "scan", "--no-summary", *db, str(path)],
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    asked = subprocess.run([str(ZEROHOUR), "scan", "--no-summary", "--alert-html-script", *db,
                            str(path)], capture_output=True, text=True, timeout=120)
    assert asked.returncode == 1, asked.stdout + asked.stderr
    assert f"{NAME} FOUND" in asked.stdout


#: Raw deflate of the payload, base64, inflated by the browser's DecompressionStream: a
#: static decoder gets the deflated bytes (no container around them to recognise).
INFLATER = (b"<html><body><script>\nvar d=atob('%s');var u=new Uint8Array(d.length);"
            b"for(var i=0;i<d.length;i++)u[i]=d.charCodeAt(i)^%d;"
            b"new Response(new Blob([u]).stream().pipeThrough("
            b"new DecompressionStream('deflate-raw'))).arrayBuffer().then(function(b){"
            b"document.body.setAttribute('data-out',Array.from(new Uint8Array(b)).join(','));});"
            b"\n</script></body></html>\n")


def _inflater_page(key: int) -> bytes:
    """A page inflating raw-deflated EICAR, its bytes XORed with `key` (0: plain)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = bytes(b ^ key for b in deflate.compress(EICAR) + deflate.flush())
    return INFLATER % (base64.b64encode(packed), key)


def _browser_output(tmp_path: Path, page: bytes) -> bytes:
    path = tmp_path / "invoice.html"
    path.write_bytes(page)
    return browser.dump_dom(path, browser.View(virtual_time_ms=3000))


def test_chromium_rebuilds_the_file_the_heuristic_stands_for(engine: Engine,
                                                             tmp_path: Path) -> None:
    """The oracle: a page inflating raw-deflated EICAR, XORed with a key its script holds
    (its bytes written into the page, where a real one offers a download), gives EICAR back
    in a real browser, and no static decoder of ours finds it: the heuristic is what stands
    between it and the recipient."""
    page = _inflater_page(0x5A)
    out = _browser_output(tmp_path, page)
    assert f'data-out="{",".join(map(str, EICAR))}"'.encode() in out
    assert engine.scan_bytes(attachment(page)).names == (NAME,)


def test_raw_deflate_in_a_page_is_decoded_statically(engine: Engine, tmp_path: Path) -> None:
    """Without the XOR, the base64 block is a whole raw deflate stream, which the engine now
    inflates itself (round 20 a27): EICAR is found, not only the script."""
    page = _inflater_page(0)
    out = _browser_output(tmp_path, page)
    assert f'data-out="{",".join(map(str, EICAR))}"'.encode() in out
    assert engine.scan_bytes(attachment(page)).names == ("Eicar-Test-Signature",)


ISO2022_PAGE = (b'<html><head><meta charset="iso-2022-jp"></head><body>\n'
                b'<a id="l" download="x.com" href="da\x1b(Bta:application/octet-stream;base64,%s">'
                b"invoice</a>\n%s</body></html>\n")
ISO2022_SCRIPT = b"<scr\x1b(Bipt>document.body.setAttribute('data-ran','yes')</scr\x1b(Bipt>"


def _cut(text: bytes, every: int = 7) -> bytes:
    """`text` with ESC ( B (ISO-2022-JP's switch to ASCII, a no-op) every few bytes."""
    return b"\x1b(B".join(text[i : i + every] for i in range(0, len(text), every))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_chromium_drops_iso_2022_jp_escapes_and_so_do_we(engine: Engine, tmp_path: Path) -> None:
    """The oracle: in a page declared ISO-2022-JP, Chromium runs a `<script>` tag cut by
    ESC ( B and its DOM holds the link's data: URL whole; zerohour finds the EICAR the link
    downloads (no script: a signature), and the cut script tag (the heuristic)."""
    plain = ISO2022_PAGE % (_cut(base64.b64encode(EICAR)), b"")
    scripted = ISO2022_PAGE % (_cut(base64.b64encode(EICAR)), ISO2022_SCRIPT)
    dom = {}
    for name, page in (("plain", plain), ("scripted", scripted)):
        path = tmp_path / f"{name}.html"
        path.write_bytes(page)
        dom[name] = browser.dump_dom(path, browser.View(virtual_time_ms=3000))
    whole = b'href="data:application/octet-stream;base64,' + base64.b64encode(EICAR) + b'"'
    assert whole in dom["plain"]
    assert b'data-ran="yes"' in dom["scripted"]
    assert b'data-ran="yes"' not in dom["plain"]
    for page in (plain, plain.replace(b"\x1b(B", b"")):
        names = engine.scan_bytes(attachment(page)).names
        assert len(names) == 1, names
        assert "Eicar" in names[0], names
    no_link = ISO2022_PAGE.replace(b"base64,%s", b"base64,") % (ISO2022_SCRIPT,)
    assert engine.scan_bytes(attachment(no_link)).names == (NAME,)
