"""Dispatch from file type to decomposer, and the engine-style walk over mixed nestings; any
mutation of a nested container yields children, a limit/encrypted exception, or nothing."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import tarfile
import zipfile
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import decompose, filetype
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

MARK = b"deep-marker-string-0123456789"


def walk(data: bytes, ctx: ScanContext | None = None) -> list[tuple[FileType, bytes]]:
    ctx = ctx or ScanContext()
    out: list[tuple[FileType, bytes]] = []

    def rec(blob: bytes, name: str | None) -> None:
        ft = filetype.detect(blob)
        out.append((ft, blob))
        with ctx.descend():
            for child in decompose.children(blob, ft, ctx, name):
                rec(child.data, child.name)

    rec(data, None)
    return out


def nested_sample() -> bytes:
    """mail -> zip -> tar.gz -> text with a uuencoded file holding MARK."""
    import binascii

    text = b"notes\nbegin 644 m.bin\n" + binascii.b2a_uu(MARK) + b"`\nend\n"
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as t:
        info = tarfile.TarInfo("notes.txt")
        info.size = len(text)
        t.addfile(info, io.BytesIO(text))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.tar.gz", gzip.compress(tbuf.getvalue()))
    msg = EmailMessage()
    msg["From"] = "a@b.c"
    msg["Subject"] = "nested"
    msg.set_content("see attachment\n")
    msg.add_attachment(zbuf.getvalue(), maintype="application", subtype="zip", filename="a.zip")
    return bytes(msg)


def test_nested_walk_reaches_every_layer() -> None:
    got = walk(nested_sample())
    types = [ft for ft, _ in got]
    assert types[0] is FileType.MAIL
    for ft in (FileType.ZIP, FileType.GZIP, FileType.TAR, FileType.TEXT):
        assert ft in types
    assert any(blob == MARK for _, blob in got)
    assert MARK not in got[0][1]


def test_leaves_have_no_children() -> None:
    ctx = ScanContext()
    for ft in (FileType.PE, FileType.BINARY, FileType.PDF, FileType.OLE2, FileType.SEVENZIP):
        assert list(decompose.children(b"\x00" * 100, ft, ctx)) == []
    assert ctx.files == 0


def test_children_are_charged() -> None:
    ctx = ScanContext()
    walk(nested_sample(), ctx)
    assert ctx.files >= 5
    assert ctx.total_bytes > len(MARK)
    assert ctx.depth == 0


def test_mail_attachment_that_is_itself_a_mail() -> None:
    inner = b"From: x@y\r\nSubject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    inner += base64.b64encode(MARK) + b"\r\n"
    msg = EmailMessage()
    msg["From"] = "a@b.c"
    msg.set_content("x\n")
    msg.add_attachment(inner, maintype="application", subtype="octet-stream", filename="fw.eml")
    assert any(blob == MARK for _, blob in walk(bytes(msg)))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_nested_sample_never_crashes(data: st.DataObject) -> None:
    buf = bytearray(nested_sample())
    for _ in range(data.draw(st.integers(1, 10))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ScanLimitExceeded, EncryptedContent):
        walk(bytes(buf))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1000), st.sampled_from(list(FileType)))
def test_any_bytes_under_any_type(data: bytes, ft: FileType) -> None:
    with contextlib.suppress(ScanLimitExceeded, EncryptedContent):
        list(decompose.children(data, ft, ScanContext()))


def _pdf(streams: list[tuple[bytes, bytes]]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    for i, (filt, raw) in enumerate(streams, 1):
        out += b"%d 0 obj\n<< /Length %d %s>>\nstream\n" % (i, len(raw), filt)
        out += raw + b"\nendstream\nendobj\n"
    return bytes(out + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")


def test_pdf_flate_streams_are_inflated() -> None:
    import zlib

    js = b"app.alert('zerohour');" * 3
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    rd = raw_deflate.compress(b"raw deflate stream") + raw_deflate.flush()
    pdf = _pdf(
        [
            (b"/Filter /FlateDecode ", zlib.compress(js)),
            (b"", b"plain stream"),
            (b"/Filter [/FlateDecode] ", rd),
            (b"/Filter /FlateDecode ", zlib.compress(js)[:-6]),  # damaged: prefix still scanned
        ]
    )
    assert filetype.detect(pdf) is FileType.PDF
    got = [c.data for c in decompose.children(pdf, FileType.PDF, ScanContext())]
    assert js in got
    assert b"raw deflate stream" in got
    assert b"plain stream" not in got


def test_pdf_stream_bomb_is_bounded() -> None:
    import zlib

    pdf = _pdf([(b"/Filter /FlateDecode ", zlib.compress(bytes(64 * 1024 * 1024), 9))])
    with pytest.raises(ScanLimitExceeded) as exc:
        list(decompose.children(pdf, FileType.PDF, ScanContext()))
    assert exc.value.which == "CompressionRatio"


def test_text_with_quoted_headers_does_not_recurse() -> None:
    # A discussion quoting plain Content-Type lines (no multipart, no encoding) stays one layer,
    # even when deeply nested quotes would otherwise peel off one header block per level.
    text = b"".join(
        b"> " * i + b"Content-Type: text/plain\r\n\r\nquoted %d\r\n" % i for i in range(30)
    )
    text = b"Discussion of headers:\r\n" + text
    got = walk(text)
    assert [ft for ft, _ in got] == [FileType.TEXT]


def test_text_with_mime_after_preamble() -> None:
    body = b"preface line\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n"
    body += b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(MARK) + b"\r\n--Q--\r\n"
    assert filetype.detect(body) is FileType.TEXT
    assert any(blob == MARK for _, blob in walk(body))


_EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
_SMUGGLER = (b'<html><body><script>var b=new Blob([atob("' + base64.b64encode(_EICAR)
             + b'")]);var a=document.createElement("a");a.href=URL.createObjectURL(b);'
             b'a.download="x.com";a.click();</script></body></html>')


def _attached(body: bytes, ctype: str) -> bytes:
    return (b"From: a@b.test\r\nTo: c@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: "
            + ctype.encode() + b'; name="invoice.html"\r\nContent-Disposition: attachment; '
            b'filename="invoice.html"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + base64.encodebytes(body).replace(b"\n", b"\r\n") + b"--BB--\r\n")


@pytest.mark.parametrize("pad", [b"\0" * 300, b"\0" * 8, bytes(range(1, 9)) * 40])
@pytest.mark.parametrize("ctype", ["text/html", "application/octet-stream"])
def test_html_smuggling_behind_nul_or_control_bytes_is_decoded(pad: bytes, ctype: str) -> None:
    """HTML behind NUL or control bytes sniffs as binary, but a browser opening the
    attachment still runs its script: the Blob built from atob() is decoded and scanned
    (found by a hostile-sender test: EICAR went through as clean)."""
    from zerohour.scan import Engine, load_database
    from zerohour.scan.database import default_db_dirs

    engine = Engine(load_database(default_db_dirs()))
    layer = pad + _SMUGGLER
    assert filetype.detect(layer) is not FileType.HTML
    names = {f.name for f in engine.scan_bytes(_attached(layer, ctype)).findings}
    assert "Eicar-Test-Signature" in names


def test_event_handler_smuggling_behind_nul_bytes_is_decoded() -> None:
    """No <script>: an <img onerror> builds the Blob (a browser runs it, NULs or not)."""
    from zerohour.scan import Engine, load_database
    from zerohour.scan.database import default_db_dirs

    engine = Engine(load_database(default_db_dirs()))
    html = (b'<img src=x onerror="var b=new Blob([atob(\'' + base64.b64encode(_EICAR)
            + b'\')]);location=URL.createObjectURL(b)">')
    for layer in (b"\0" * 300 + html, b"\x01" * 300 + html):
        names = {f.name for f in engine.scan_bytes(_attached(layer, "text/html")).findings}
        assert "Eicar-Test-Signature" in names


def test_utf16le_html_behind_nul_characters_is_decoded() -> None:
    """FF FE 00 00 reads as UTF-32LE, but browsers know no UTF-32: to them it is UTF-16LE
    whose first characters are U+0000, and the script after them runs."""
    from zerohour.scan import Engine, load_database
    from zerohour.scan.database import default_db_dirs

    engine = Engine(load_database(default_db_dirs()))
    layer = b"\xff\xfe" + ("\0" * 150).encode("utf-16-le") + _SMUGGLER.decode().encode("utf-16-le")
    names = {f.name for f in engine.scan_bytes(_attached(layer, "text/html")).findings}
    assert "Eicar-Test-Signature" in names


def test_data_uri_and_base64_block_behind_nul_bytes_are_decoded() -> None:
    from zerohour.scan import Engine, load_database
    from zerohour.scan.database import default_db_dirs

    engine = Engine(load_database(default_db_dirs()))
    b64 = base64.b64encode(_EICAR + bytes(range(100)))
    uri = b"\0" * 300 + b'<a href="data:application/octet-stream;base64,' + b64 + b'">x</a>'
    block = b"\0" * 300 + b"\r\n" + b"\r\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    for layer in (uri, block):
        names = {f.name for f in engine.scan_bytes(_attached(layer, "text/plain")).findings}
        assert "Eicar-Test-Signature" in names, layer[300:360]


def test_an_ordinary_binary_gets_no_text_children() -> None:
    """The gates keep ordinary binaries out of the text decoders."""
    data = bytes(range(256)) * 64
    ctx = ScanContext()
    assert list(decompose.children(data, FileType.BINARY, ctx)) == []
