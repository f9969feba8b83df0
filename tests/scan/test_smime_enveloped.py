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
                       ("gcm.p7m", ["-aes-256-gcm", str(crt)]),  # AuthEnvelopedData
                       ("both.p7m", ["-aes256", "-pwri_password", _PASSWORD, str(crt)])):
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
