"""OpenPGP messages that are not encrypted (`zerohour.scan.openpgp`), made by gpg and read back
by gpg without the sender's key (the oracle: what a recipient gets from `gpg -o out -d`)."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"
VARIANTS = {
    "signed-armor": ["-s", "--armor"],
    "signed-binary": ["-s"],
    "signed-bzip2": ["-s", "--compress-algo", "bzip2"],
    "signed-zip": ["-s", "--compress-algo", "zip"],
    "stored-zlib-armor": ["--store", "-z", "9", "--compress-algo", "zlib", "--armor"],
    "stored-armor": ["--store", "--armor"],
    "stored-binary": ["--store"],
}



_HOMES: set[Path] = set()


@pytest.fixture(scope="module", autouse=True)
def _stop_agents() -> Iterator[None]:
    """gpg starts an agent per home; stop each one the tests started."""
    yield
    for home in _HOMES:
        subprocess.run([tool("gpgconf"), "--kill", "gpg-agent"], env={**os.environ,
                       "GNUPGHOME": str(home)}, capture_output=True, check=False, timeout=30)


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    _HOMES.add(home)
    env = {**os.environ, "GNUPGHOME": str(home)}
    return subprocess.run([tool("gpg"), "--batch", "--yes", *args], env=env, input=stdin,
                          capture_output=True, check=True, timeout=120).stdout


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Dev <dev@x.test>", "ed25519", "sign",
         "never")
    return home


def mail(part: bytes, inline: bool) -> bytes:
    head = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    if inline:
        return head + b"Content-Type: text/plain\r\n\r\n" + part.replace(b"\n", b"\r\n")
    return (head + b"Content-Type: application/pgp-encrypted; name=tool.gpg\r\n"
            b"Content-Disposition: attachment; filename=tool.gpg\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(part))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_file_in_a_message_that_is_not_encrypted(clam_engine: Engine, signer: Path,
                                                   tmp_path: Path, variant: str) -> None:
    (tmp_path / "tool.exe").write_bytes(CLAM.read_bytes())
    _gpg(signer, *VARIANTS[variant], "-o", str(tmp_path / "msg"), str(tmp_path / "tool.exe"))
    message = (tmp_path / "msg").read_bytes()
    stranger = tmp_path / "stranger"  # no key of the sender's: gpg still gives the file
    stranger.mkdir(mode=0o700)
    _HOMES.add(stranger)
    env = {**os.environ, "GNUPGHOME": str(stranger)}
    out = subprocess.run([tool("gpg"), "--batch", "-o", "-", "-d", str(tmp_path / "msg")],
                         env=env, capture_output=True, check=False, timeout=120).stdout
    assert out == CLAM.read_bytes()
    for inline in ((False, True) if b"BEGIN PGP" in message else (False,)):
        assert clam_engine.scan_bytes(mail(message, inline)).names == (NAME,), (variant, inline)


def test_random_binaries_opening_like_a_packet_are_no_finding(clam_engine: Engine) -> None:
    import random

    rng = random.Random(9)
    for _ in range(300):
        first = rng.choice([0xA3, 0xA8, 0xAC, 0xAD, 0xC8, 0xCB, 0x90, 0x89, 0xC4, 0xC2])
        report = clam_engine.scan_bytes(bytes([first]) + rng.randbytes(rng.randrange(3, 3000)))
        assert not report.names
        assert not report.errors


@pytest.mark.parametrize("armor", [False, True])
def test_a_message_encrypted_with_a_passphrase_is_an_encrypted_container(
        clam_engine: Engine, tmp_path: Path, armor: bool) -> None:
    """`gpg -c` with the passphrase in the mail's text (round 10), like an encrypted zip:
    `Heuristics.Encrypted.OpenPGP`. One encrypted to a key is mail for its recipient: no
    finding."""
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    (tmp_path / "tool.exe").write_bytes(CLAM.read_bytes())
    _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "pw", "-c",
         *(["--armor"] if armor else []), "-o", str(tmp_path / "m"), str(tmp_path / "tool.exe"))
    out = _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "pw", "-o", "-", "-d",
               str(tmp_path / "m"))
    assert out == CLAM.read_bytes()
    assert clam_engine.scan_bytes(mail((tmp_path / "m").read_bytes(), False)).names == (
        "Heuristics.Encrypted.OpenPGP",)


def test_a_message_encrypted_to_a_key_is_no_finding(clam_engine: Engine, tmp_path: Path) -> None:
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Rcpt <r@x.test>", "default", "default",
         "never")
    (tmp_path / "tool.exe").write_bytes(CLAM.read_bytes())
    _gpg(home, "--trust-model", "always", "-e", "-r", "r@x.test", "--armor", "-o",
         str(tmp_path / "m"), str(tmp_path / "tool.exe"))
    assert clam_engine.scan_bytes(mail((tmp_path / "m").read_bytes(), True)).names == ()
