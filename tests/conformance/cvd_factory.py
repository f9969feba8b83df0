"""Builds realistic ClamAV .cvd/.cld containers for tests, signed with a test RSA key.

The layout is what sigtool --build writes: a 512-byte `ClamAV-VDB:` header padded with spaces,
then a gzipped tar of the database files (COPYING first, a `.info` index listing every file's
size and SHA-256 and signed on its `DSIG:` line). We cannot sign with ClamAV's private keys, so
the signatures are made with `TEST_KEYS`' private halves; `zerohour.scan.signatures.cvd` takes
the matching public keys as a parameter (and refuses these files with ClamAV's real keys).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from zerohour.scan.signatures.cvd import CvdKeys, RsaKey

_DIGITS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"


@dataclass(frozen=True)
class PrivateKey:
    n: int
    e: int
    d: int

    @property
    def public(self) -> RsaKey:
        return RsaKey(self.n, self.e)


@dataclass(frozen=True)
class SigningKeys:
    header: PrivateKey
    info: PrivateKey

    @property
    def public(self) -> CvdKeys:
        return CvdKeys(self.header.public, self.info.public)


def _key(bits: int) -> PrivateKey:
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    nums = k.private_numbers()
    return PrivateKey(nums.public_numbers.n, nums.public_numbers.e, nums.d)


@functools.cache
def signing_keys() -> SigningKeys:
    """A 1024-bit header key and a 2048-bit .info key, like ClamAV's (made once per run)."""
    return SigningKeys(_key(1024), _key(2048))


def encode_digits(value: int, n: int) -> str:
    """ClamAV's signature encoding: base-64 digits, least significant first."""
    out = []
    for _ in range((n.bit_length() + 5) // 6):
        out.append(_DIGITS[value & 63])
        value >>= 6
    return "".join(out)


def sign_md5(md5_hex: str, key: PrivateKey) -> str:
    """The header dsig: the MD5 as a number, RSA-signed (dsig.c decodes and compares it)."""
    return encode_digits(pow(int(md5_hex, 16), key.d, key.n), key.n)


def _mgf1(seed: bytes, n: int) -> bytes:
    return b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                    for i in range((n + 31) // 32))[:n]


def sign_pss(sha256: bytes, key: PrivateKey) -> str:
    """The .info DSIG: EMSA-PSS/SHA-256 with a 32-byte salt in a 256-byte block."""
    salt = os.urandom(32)
    h = hashlib.sha256(b"\0" * 8 + sha256 + salt).digest()
    db = b"\0" * (223 - 33) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1(h, 223), strict=True))
    masked[0] &= 0x7F
    em = bytes(masked) + h + b"\xbc"
    return encode_digits(pow(int.from_bytes(em, "big"), key.d, key.n), key.n)


def make_tar(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.uname = info.gname = "clamav"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def header_line(version: int, sigs: int, flevel: int, md5: str, dsig: str,
                builder: str = "zerohour-test", stime: int = 1_764_806_400) -> str:
    return f"ClamAV-VDB:04 Dec 2025 00-00 +0000:{version}:{sigs}:{flevel}:{md5}:{dsig}:" \
           f"{builder}:{stime}"


def build_cvd(files: dict[str, bytes], *, name: str = "daily", version: int = 27000,
              flevel: int = 90, keys: SigningKeys | None = None, compress: bool = True,
              stime: int = 1_764_806_400, sign_info: bool = True) -> bytes:
    """A signed container holding `files` (plus COPYING and `<name>.info`)."""
    keys = keys or signing_keys()
    sigs = sum(len([ln for ln in d.splitlines() if ln.strip() and not ln.startswith(b"#")])
               for n, d in files.items())
    info = header_line(version, sigs, flevel, "X", "X", stime=stime) + "\n"
    info += "".join(f"{n}:{len(d)}:{hashlib.sha256(d).hexdigest()}\n" for n, d in files.items())
    info_b = info.encode()
    if sign_info:
        info_b += f"DSIG:{sign_pss(hashlib.sha256(info_b).digest(), keys.info)}\n".encode()
    members = [("COPYING", b"ClamAV signature database (test build)\n"),
               (f"{name}.info", info_b), *files.items()]
    archive = make_tar(members)
    if compress:
        archive = gzip.compress(archive, mtime=0)
    md5 = hashlib.md5(archive).hexdigest()
    head = header_line(version, sigs, flevel, md5, sign_md5(md5, keys.header), stime=stime)
    return head.encode().ljust(512, b" ") + archive
