"""Legitimate mail the widened decoders must leave alone (a false-positive sweep found these).

Each was a finding on legitimate content before its fix: HTML declaring a CJK charset in an
http-equiv `<meta>` (its UTF-8 view still declared the charset and was decoded again, three
times larger a level, until the scan-time limit: `Heuristics.Limits.Exceeded.MaxScanTime`);
XML exports with `onhand=`/`online=` attributes and a receipt saying "online = paid"
(`Heuristics.HTML.Script`); an S/MIME blob signing a PDF (its base64 lines, cut by the
DER's chunk headers, decoded to a damaged PDF: `Heuristics.Broken.PDF`).
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from zerohour.scan import Engine, load_database
from zerohour.scan.database import default_db_dirs

SENTENCE = {
    "shift_jis": "新しい製品のお知らせです。詳しくはウェブサイトをご覧ください。",
    "iso-2022-jp": "新しい製品のお知らせです。詳しくはウェブサイトをご覧ください。",
    "euc-jp": "新しい製品のお知らせです。",
    "big5": "新產品上市，歡迎瀏覽我們的網站。",
    "gb18030": "新产品上市，欢迎浏览我们的网站。",
    "gb2312": "新产品上市，欢迎浏览我们的网站。",
    "euc-kr": "새로운 제품을 소개합니다. 웹사이트를 방문하세요.",
    "hz-gb-2312": "新产品上市，欢迎浏览我们的网站。",
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


@pytest.mark.parametrize("charset", list(SENTENCE))
def test_a_newsletter_declaring_a_cjk_charset(engine: Engine, charset: str) -> None:
    codec = "hz" if charset == "hz-gb-2312" else charset
    rows = "".join(f"<tr><td class=item>{SENTENCE[charset]}</td><td>{i}</td></tr>"
                   for i in range(60))
    page = (f'<html><head><meta http-equiv="Content-Type" content="text/html; '
            f'charset={charset}"><style>.m{{display:none}}</style></head><body>'
            f"<p>{SENTENCE[charset]}</p><table>{rows}</table>"
            f"<p>{SENTENCE[charset]}<span class=m>mobile</span>end</p></body></html>")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@shop.example", "a@example.com", "news"
    msg.set_content("text version")
    msg.add_alternative(page.encode(codec), maintype="text", subtype="html",
                        params={"charset": charset})
    report = engine.scan_bytes(msg.as_bytes())
    assert report.names == ()
    assert len(report.layers) < 40, [la.path for la in report.layers]


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><inventory>' + b"".join(
        b'<item sku="%d" onhand="%d" onorder="2" online="true"/>' % (i, i * 7) for i in range(50))
    + b"</inventory>",
    b"<html><body><p>Receipt 1234</p><p>Status: online = paid</p><p>Total: 12.00</p>"
    b"</body></html>",
], ids=["xml-export", "receipt"])
def test_attributes_that_start_with_on_are_not_handlers(engine: Engine, body: bytes) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "erp@example.com", "a@example.com", "export"
    msg.set_content("attached")
    name = "inventory_export.xml" if body.startswith(b"<?xml") else "receipt.html"
    msg.add_attachment(body, maintype="application", subtype="octet-stream", filename=name)
    assert engine.scan_bytes(msg.as_bytes()).names == ()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("streamed", [False, True])
def test_an_s_mime_blob_signing_a_pdf(engine: Engine, tmp_path: Path, streamed: bool) -> None:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].Contents = pdf.make_stream(b"BT /F1 12 Tf 72 712 Td (Quarterly) Tj ET\n" * 900)
    buf = io.BytesIO()
    pdf.save(buf, compress_streams=False)
    inner = EmailMessage()
    inner.set_content("the report")
    inner.add_attachment(buf.getvalue(), maintype="application", subtype="pdf",
                         filename="report.pdf")
    (tmp_path / "inner.eml").write_bytes(inner.as_bytes().replace(b"\n", b"\r\n"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"), "-days", "30",
                    "-subj", "/CN=sender"], check=True, capture_output=True)
    args = (["cms", "-sign", "-stream"] if streamed else ["smime", "-sign"]) + [
        "-nodetach", "-outform", "DER", "-binary", "-in", str(tmp_path / "inner.eml"),
        "-signer", str(tmp_path / "c.pem"), "-inkey", str(tmp_path / "k.pem")]
    der = subprocess.run(["openssl", *args], check=True, capture_output=True).stdout
    msg = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n'
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(der))
    report = engine.scan_bytes(msg)
    assert report.names == (), [la.path for la in report.layers]
    assert any(la.name == "report.pdf" for la in report.layers)


# -- round 9's decoders (FP sweep 10) -----------------------------------------------------------

PY_WITH_PAGE = b'''"""Format code as HTML.

    <!DOCTYPE html>
    <html><body><table><tr><td class="code" onclick="toggle()">...</td></tr></table>
"""


def format_html(code: str) -> str:
    return "<pre>" + code + "</pre>"
'''


@pytest.mark.parametrize("where", ["attachment", "zip"])
def test_python_source_showing_a_page_in_a_docstring_runs_no_script(engine: Engine,
                                                                    where: str) -> None:
    """Every wheel vendoring pygments holds such a module: it opens in an editor, never in a
    browser (it sniffed as HTML with an onclick attribute: `Heuristics.HTML.Script`)."""
    if where == "zip":
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("pkg/formatters/html.py", PY_WITH_PAGE)
        data, name = buf.getvalue(), "pkg-1.0-py3-none-any.whl"
    else:
        data, name = PY_WITH_PAGE, "htmlfmt.py"
    assert engine.scan_bytes(_attached(data, name)).names == ()
    # the same bytes named as a page still count
    assert engine.scan_bytes(_attached(PY_WITH_PAGE, "page.html")).names == (
        "Heuristics.HTML.Script",)


def _attached(data: bytes, name: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@x.test", "b@y.test", "code"
    msg.set_content("see attached")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def test_a_pdf_string_escaping_a_digit_that_is_not_octal(engine: Engine) -> None:
    """`(Chapter \\9)` shows "Chapter 9" (a backslash before another character is dropped);
    it raised in the page-text reader and the PDF failed to scan."""
    import zlib

    content = zlib.compress(b"BT /F1 9 Tf 36 800 Td (Chapter \\9 and \\8) Tj ET")
    doc = (b"%PDF-1.4\n1 0 obj\n<< /Length " + str(len(content)).encode()
           + b" /Filter /FlateDecode >>\nstream\n" + content
           + b"\nendstream\nendobj\ntrailer\n<< >>\n%%EOF\n")
    report = engine.scan_bytes(doc, "x.pdf")
    assert not report.errors
    assert report.names == () or report.names == ("Heuristics.Broken.PDF",)


def test_a_signed_armored_binary_diff_is_clean(engine: Engine) -> None:
    """`gpg --sign -a` of a `git diff --binary`: a text carrier's second guess at the armor
    decoded a truncated diff, whose cut literal was `Heuristics.Broken.GitPatch`."""
    data = (Path(__file__).parent.parent / "data" / "clean" / "full_binary.diff_signed.asc")
    report = engine.scan_bytes(data.read_bytes(), data.name)
    assert report.names == ()
    assert not report.errors
