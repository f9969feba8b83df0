"""Encrypted S/MIME (CMS EnvelopedData) made by `openssl cms -encrypt`.

Mail encrypted to its recipient's certificate is left alone: the recipient opens it with a key
the gateway never has. Mail encrypted to a password only (`-pwri_password`, the password in the
mail's text, round 20 a68b) is a container the sender hands a password for, as an encrypted zip
or `gpg -c` is: `Heuristics.Encrypted.CMS` (the CLI reports it with `--alert-encrypted`, as
clamscan's options go). `openssl cms -decrypt` is the recipient's tool in each case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.tools import tool
from scan.conftest import CLAM
from zerohour.scan import Engine
from zerohour.scan.smime import password_only

_PASSWORD = "hunter2"


def _cms(tmp_path: Path, name: str, *args: str, outform: str = "DER") -> Path:
    out = tmp_path / name
    subprocess.run([tool("openssl"), "cms", "-encrypt", "-binary", "-in", str(CLAM), "-out",
                    str(out), "-outform", outform, *args], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cms-cert")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(crt), "-subj", "/CN=recipient", "-days", "2"],
                   check=True, capture_output=True)
    return key, crt


def _decrypt(path: Path, *args: str) -> bytes:
    return subprocess.run([tool("openssl"), "cms", "-decrypt", "-inform", "DER", "-in",
                           str(path), *args], check=True, capture_output=True).stdout


@pytest.mark.parametrize("cipher", ["-aes256", "-aes128", "-des3"])
def test_password_only_is_encrypted(clam_engine: Engine, tmp_path: Path, cipher: str) -> None:
    p7m = _cms(tmp_path, "smime.p7m", cipher, "-pwri_password", _PASSWORD)
    assert _decrypt(p7m, "-pwri_password", _PASSWORD) == CLAM.read_bytes()
    data = p7m.read_bytes()
    assert password_only(data)
    assert clam_engine.scan_bytes(data, "smime.p7m").names == ("Heuristics.Encrypted.CMS",)


def test_password_only_smime_mail_is_encrypted(clam_engine: Engine, tmp_path: Path) -> None:
    """`openssl cms` writes the S/MIME entity itself (base64 in an application/pkcs7-mime
    part): sent as it is, with the password in a preceding line of text."""
    entity = _cms(tmp_path, "mail.eml", "-aes256", "-pwri_password", _PASSWORD,
                  outform="SMIME").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"smime-type=enveloped-data" in entity
    msg = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: the password is hunter2\r\n" + entity
    assert clam_engine.scan_bytes(msg).names == ("Heuristics.Encrypted.CMS",)


def test_encrypted_to_a_certificate_is_left_alone(
    clam_engine: Engine, tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    key, crt = cert
    for name, args in (("cert.p7m", ["-aes256", str(crt)]),
                       ("gcm.p7m", ["-aes-256-gcm", str(crt)])):  # AuthEnvelopedData
        p7m = _cms(tmp_path, name, *args)
        assert _decrypt(p7m, "-inkey", str(key), "-recip", str(crt)) == CLAM.read_bytes()
        data = p7m.read_bytes()
        assert not password_only(data), name
        report = clam_engine.scan_bytes(data, name)
        assert report.names == (), (name, report)
        assert not report.errors, (name, report)


def test_damaged_or_other_der_is_not_password_only(tmp_path: Path) -> None:
    data = _cms(tmp_path, "smime.p7m", "-aes256", "-pwri_password", _PASSWORD).read_bytes()
    for cut in (8, 20, 40, len(data) // 2):
        assert not password_only(data[:cut])
    assert not password_only(b"\x30\x80" + b"\x00" * 64)
    assert not password_only(b"")


def test_cli_reports_it_with_alert_encrypted(tmp_path: Path) -> None:
    p7m = _cms(tmp_path, "smime.p7m", "-aes256", "-pwri_password", _PASSWORD)
    zerohour = [sys.executable, "-m", "zerohour", "scan", "--no-summary"]
    quiet = subprocess.run([*zerohour, str(p7m)], capture_output=True, text=True)
    assert (quiet.returncode, quiet.stdout.strip()) == (0, f"{p7m}: OK")
    loud = subprocess.run([*zerohour, "--alert-encrypted", str(p7m)], capture_output=True,
                          text=True)
    assert (loud.returncode, loud.stdout.strip()) == (1, f"{p7m}: Heuristics.Encrypted.CMS FOUND")


def test_a_password_beside_a_certificate_is_encrypted(
    clam_engine: Engine, tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    """Round 5: a throwaway certificate named beside the password; the recipient opens it
    with the password the mail gives."""
    _key, crt = cert
    p7m = _cms(tmp_path, "both.p7m", "-aes256", "-pwri_password", _PASSWORD, str(crt))
    assert _decrypt(p7m, "-pwri_password", _PASSWORD) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(p7m.read_bytes(), "both.p7m").names == (
        "Heuristics.Encrypted.CMS",)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the DER item at `pos`."""
    length, at = data[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        length, at = int.from_bytes(data[at : at + n], "big"), at + n
    return data[pos], at, at + length


def test_ber_long_forms_do_not_hide_the_content_type(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 5: a 4-byte outer length and a 2-byte OID length (`30 84 ..`, `06 81 09`),
    which OpenSSL reads; the type was compared as DER bytes."""
    der = _cms(tmp_path, "smime.p7m", "-aes256", "-pwri_password", _PASSWORD).read_bytes()
    _tag, start, _end = _tlv(der, 0)
    body = b"\x06\x81\x09" + der[start + 2 :]
    ber = b"\x30\x84" + len(body).to_bytes(4, "big") + body
    (tmp_path / "ber.p7m").write_bytes(ber)
    assert _decrypt(tmp_path / "ber.p7m", "-pwri_password", _PASSWORD) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(ber, "smime.p7m").names == ("Heuristics.Encrypted.CMS",)


def test_content_in_many_empty_chunks_is_read_to_its_recipients(
    clam_engine: Engine, tmp_path: Path
) -> None:
    """Round 5: BER indefinite lengths and 400,000 empty chunks before the ciphertext; each
    level walked the content again and the reader's item cap answered "not CMS"."""
    der = _cms(tmp_path, "smime.p7m", "-aes256", "-pwri_password", _PASSWORD).read_bytes()
    _t, s0, _e0 = _tlv(der, 0)
    oid = der[s0 : _tlv(der, s0)[2]]
    _t, s1, _e = _tlv(der, s0 + len(oid))  # [0]
    _t, s2, e2 = _tlv(der, s1)  # EnvelopedData
    items, at = [], s2
    while at < e2:
        item = _tlv(der, at)
        items.append(der[at : item[2]])
        at = item[2]
    version, infos, eci = items
    _t, s3, e3 = _tlv(eci, 0)
    parts, at = [], s3
    while at < e3:
        item = _tlv(eci, at)
        parts.append((item, eci[at : item[2]]))
        at = item[2]
    (_h1, eoid), (_h2, alg), ((_t3, cs, ce), _ct) = parts
    cipher = eci[cs:ce]
    size = len(cipher).to_bytes(2, "big")
    chunks = b"\x04\x00" * 400_000 + b"\x04\x82" + size + cipher
    new_eci = b"\x30\x80" + eoid + alg + b"\xa0\x80" + chunks + b"\x00\x00" * 2
    ber = (b"\x30\x80" + oid + b"\xa0\x80\x30\x80" + version + infos + new_eci
           + b"\x00\x00" * 3)
    assert password_only(ber)
    assert clam_engine.scan_bytes(ber, "smime.p7m").names == ("Heuristics.Encrypted.CMS",)


def test_a_kem_recipient_is_a_key_not_a_password() -> None:
    """Round 5 (synthetic: OpenSSL 3.0 does not write it): RFC 9629's KEMRecipientInfo, an
    `ori` recipient opened with the recipient's own (post-quantum) key."""
    def t(tag: int, body: bytes) -> bytes:
        size = bytes([len(body)]) if len(body) < 128 else b"\x82" + len(body).to_bytes(2, "big")
        return bytes([tag]) + size + body

    def oid(hexa: str) -> bytes:
        return t(0x06, bytes.fromhex(hexa))

    kem = t(0xA4, oid("2a864886f70d0109100d03") + t(0x30, t(0x02, b"\x00")
                                                   + t(0x80, b"\x01" * 20)
                                                   + t(0x30, oid("608648016503040401"))
                                                   + t(0x04, b"\x02" * 40)))
    eci = t(0x30, oid("2a864886f70d010701") + t(0x30, oid("608648016503040102")
                                                 + t(0x04, b"\0" * 16)) + t(0x80, b"\x03" * 80))
    env = t(0x30, t(0x02, b"\x03") + t(0x31, kem) + eci)
    assert not password_only(t(0x30, oid("2a864886f70d010703") + t(0xA0, env)))
