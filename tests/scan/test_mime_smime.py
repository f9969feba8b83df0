"""Opaque-signed S/MIME (`smime.p7m`): clients unwrap it and show the attachments inside, so
the scanner must too. Messages are made by openssl (`smime -sign`, `cms -sign -stream`)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import cpu
from zerohour.scan import Engine, load_database, smime

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
PAYLOAD = b"MZ\x90\x00signed-and-hidden\xff" * 20


def _inner() -> bytes:
    b64 = base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
    return (b"Content-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\nContent-Type: text/plain"
            b"\r\n\r\nhi\r\n--IN\r\nContent-Type: application/octet-stream; name=x.exe\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--IN--\r\n")


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("signer")
    subprocess.run([OPENSSL or "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"), "-days", "30",
                    "-subj", "/CN=zerohour test"], check=True, capture_output=True)
    (d / "inner.eml").write_bytes(_inner())
    return d


def _sign(d: Path, *args: str) -> bytes:
    out = subprocess.run(
        [OPENSSL or "openssl", *args, "-in", str(d / "inner.eml"), "-signer", str(d / "c.pem"),
         "-inkey", str(d / "k.pem"), "-binary"],
        check=True, capture_output=True)
    return out.stdout


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    import hashlib

    d = tmp_path_factory.mktemp("db")
    (d / "p.hdb").write_text(f"{hashlib.md5(PAYLOAD).hexdigest()}:{len(PAYLOAD)}:Signed.Payload\n")
    return Engine(load_database([d]))


@pytest.mark.parametrize("args", [
    ("smime", "-sign", "-nodetach", "-outform", "SMIME"),  # DER, definite lengths
    ("cms", "-sign", "-nodetach", "-stream", "-outform", "SMIME"),  # BER, chunked content
])
def test_opaque_signed_attachment_is_found(signer: Path, engine: Engine, args: tuple[str, ...]
                                          ) -> None:
    mail = b"From: a@example.org\r\nTo: b@example.net\r\n" + _sign(signer, *args)
    assert b"pkcs7-mime" in mail
    assert PAYLOAD not in mail
    assert engine.scan_bytes(mail).names == ("Signed.Payload",)


def test_signed_content_of_der_and_ber(signer: Path) -> None:
    der = _sign(signer, "smime", "-sign", "-nodetach", "-outform", "DER")
    ber = _sign(signer, "cms", "-sign", "-nodetach", "-stream", "-outform", "DER")
    assert smime.signed_content(der) == _inner()
    assert smime.signed_content(ber) == _inner()
    # Detached signatures carry no content; damage gives nothing, never an exception.
    detached = _sign(signer, "smime", "-sign", "-outform", "DER")
    assert smime.signed_content(detached) is None
    for cut in (10, 40, len(der) // 2, len(der) - 1):
        smime.signed_content(der[:cut])
        smime.signed_content(ber[:cut])


def test_hostile_ber_is_bounded() -> None:
    head = b"\x30\x80" + smime.SIGNED_DATA_OID + b"\xa0\x80\x30\x80\x02\x01\x01\x31\x00"
    deep = head + b"\x30\x80\x06\x00\xa0\x80" + b"\x24\x80" * 200_000
    flat = head + b"\x30\x80\x06\x00\xa0\x80\x24\x80" + b"\x04\x00" * 500_000 + b"\x00\x00" * 6
    t0 = cpu.process_time()
    assert smime.signed_content(deep) is None
    assert smime.signed_content(flat) in (None, b"")
    assert cpu.process_time() - t0 < 10


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes_after_the_signed_data_prefix_never_raise(tail: bytes) -> None:
    head = b"\x30\x80" + smime.SIGNED_DATA_OID
    out = smime.signed_content(head + tail)
    assert out is None or isinstance(out, bytes)
    smime.signed_content(b"\x30\x82\x01\x00" + smime.SIGNED_DATA_OID + tail)
