"""Attack: containers the engine cannot open passed as clean (no finding, no error): a zip
member in a method we do not decode, an AES-encrypted 7z with 7-Zip's default compressed
header, a damaged RAR, and truncated or corrupt zip / gzip / bzip2 / xz / tar. Each is now a
heuristic finding, `Heuristics.Unsupported.<Format>[.<detail>]` or `Heuristics.Broken.<Format>`,
switchable like encrypted content (`Limits.alert_unsupported`, `Limits.alert_broken`, both on
by default). Since issue 10, RAR and 7z are opened (scan.containers) and zip Deflate64, PPMd,
Implode and Zstandard members are decoded (scan.zipmethods): those cases now check that the
content is scanned, and that bytes merely relabelled with such a method are Broken, not clean."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import shutil
import struct
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from zerohour.scan import Engine, Limits, load_database
from zerohour.scan.database import default_db_dirs
from zerohour.scan.types import FindingKind

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PAYLOAD = EICAR + b"\n" + b"padding that compresses well " * 400
HIDDEN = b"not a signature" * 100
SEVEN = shutil.which("7zz") or shutil.which("7z")


@pytest.fixture(scope="module")
def db() -> object:
    return load_database(default_db_dirs())


@pytest.fixture(scope="module")
def engine(db: object) -> Engine:
    return Engine(db)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def every(db: object) -> Engine:
    return Engine(db, allmatch=True)  # type: ignore[arg-type]


def stored_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def with_method(data: bytes, method: int, flags: int | None = None) -> bytes:
    """Rewrite every entry's method (local header and central directory) by hand."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = out.find(sig)
        while pos >= 0:
            struct.pack_into("<H", out, pos + at, method)
            if flags is not None:
                struct.pack_into("<H", out, pos + at - 2, flags)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def mail_with(blob: bytes, name: str) -> bytes:
    b64 = base64.encodebytes(blob).decode()
    return (
        "From: a@example.org\r\nTo: b@example.org\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        "Content-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\n"
        f'Content-Type: application/zip; name="{name}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n"
    ).encode()


# --- zip methods we cannot decode ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "label"),
    [(1, "Shrink"), (2, "Reduce"), (19, "LZ77"), (97, "WavPack"), (96, "JPEG"),
     (250, "Method250")],
)
def test_unsupported_zip_method_is_a_finding(engine: Engine, method: int, label: str) -> None:
    # Stored bytes relabelled: the raw zip must not itself match (EICAR in clear would).
    data = with_method(stored_zip({"a.exe": HIDDEN, "b.txt": b"hello"}), method)
    report = engine.scan_bytes(data)
    assert report.names == (f"Heuristics.Unsupported.Zip.{label}",), report
    assert report.findings[0].kind is FindingKind.HEURISTIC
    # Inside mail too (the gateway's view).
    assert engine.scan_bytes(mail_with(data, "a.zip")).names == report.names


@pytest.mark.parametrize("method", [9, 98, 6, 93])
def test_decodable_method_that_does_not_decode_is_broken(engine: Engine, method: int) -> None:
    # Deflate64, PPMd, Implode, Zstandard are decoded now: garbage labelled so is damage.
    data = with_method(stored_zip({"a.exe": HIDDEN, "b.txt": b"hello"}), method)
    report = engine.scan_bytes(data)
    assert report.names == ("Heuristics.Broken.Zip",), report
    assert not report.errors, report


def test_aes_method_without_the_encryption_flag_is_encrypted(engine: Engine) -> None:
    data = with_method(stored_zip({"a.exe": HIDDEN}), 99, flags=0)
    assert engine.scan_bytes(data).names == ("Heuristics.Encrypted.Zip",)


def test_one_unsupported_member_does_not_hide_a_readable_sibling(every: Engine) -> None:
    good = stored_zip({"a.txt": b"x" * 10, "eicar.com": EICAR})
    data = bytearray(good)
    # Only the first entry (local header and central directory) becomes Shrink.
    struct.pack_into("<H", data, 8, 1)
    struct.pack_into("<H", data, data.find(b"PK\x01\x02") + 10, 1)
    names = set(every.scan_bytes(bytes(data)).names)
    assert names == {"Heuristics.Unsupported.Zip.Shrink", "Eicar-Test-Signature"}


@pytest.mark.skipif(SEVEN is None, reason="7-Zip not installed (scripts/system-deps)")
@pytest.mark.parametrize(("method", "code"), [("Deflate64", 9), ("PPMd", 98)])
def test_real_7zip_zip_methods_are_scanned(engine: Engine, tmp_path: Path, method: str,
                                           code: int) -> None:
    (tmp_path / "big.exe").write_bytes(PAYLOAD)
    subprocess.run([str(SEVEN), "a", "-tzip", f"-mm={method}", "x.zip", "big.exe"],
                   cwd=tmp_path, check=True, capture_output=True)
    data = (tmp_path / "x.zip").read_bytes()
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].compress_type == code
    assert engine.scan_bytes(data).names == ("Eicar-Test-Signature",)


@pytest.mark.skipif(SEVEN is None, reason="7-Zip not installed (scripts/system-deps)")
def test_real_7zip_lzma_and_bzip2_zip_members_are_scanned(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "big.exe").write_bytes(PAYLOAD)
    for method in ("LZMA", "BZip2", "Deflate"):
        subprocess.run([str(SEVEN), "a", "-tzip", f"-mm={method}", f"{method}.zip", "big.exe"],
                       cwd=tmp_path, check=True, capture_output=True)
        report = engine.scan_bytes((tmp_path / f"{method}.zip").read_bytes())
        assert report.names == ("Eicar-Test-Signature",), (method, report)


# --- 7z and RAR ------------------------------------------------------------------------------


@pytest.mark.skipif(SEVEN is None, reason="7-Zip not installed (scripts/system-deps)")
def test_7z_aes_with_default_compressed_header_is_encrypted(engine: Engine, tmp_path: Path) -> None:
    # 7-Zip's default: file data AES-encrypted, header LZMA-compressed but not encrypted, so
    # the AES coder id appears only inside the compressed header.
    for i in range(6):
        (tmp_path / f"f{i}.bin").write_bytes(bytes(range(256)) * (i + 3))
    (tmp_path / "eicar.com").write_bytes(EICAR)
    subprocess.run([str(SEVEN), "a", "-pinfected", "x.7z", "."], cwd=tmp_path, check=True,
                   capture_output=True)
    data = (tmp_path / "x.7z").read_bytes()
    (offset,) = struct.unpack_from("<Q", data, 12)
    assert data[32 + offset] == 0x17  # kEncodedHeader: the case that used to pass
    assert engine.scan_bytes(data).names == ("Heuristics.Encrypted.7Zip",)
    assert engine.scan_bytes(mail_with(data, "x.7z")).names == ("Heuristics.Encrypted.7Zip",)


@pytest.mark.skipif(SEVEN is None, reason="7-Zip not installed (scripts/system-deps)")
def test_plain_7z_is_opened(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "eicar.com").write_bytes(PAYLOAD)
    subprocess.run([str(SEVEN), "a", "x.7z", "eicar.com"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert engine.scan_bytes((tmp_path / "x.7z").read_bytes()).names == (
        "Eicar-Test-Signature",
    )


@pytest.mark.skipif(SEVEN is None, reason="7-Zip not installed (scripts/system-deps)")
def test_7z_in_a_codec_libarchive_lacks_is_unsupported(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "eicar.com").write_bytes(PAYLOAD.lower())
    subprocess.run([str(SEVEN), "a", "-m0=Deflate64", "x.7z", "eicar.com"], cwd=tmp_path,
                   check=True, capture_output=True)
    assert engine.scan_bytes((tmp_path / "x.7z").read_bytes()).names == (
        "Heuristics.Unsupported.7z.Deflate64",
    )


def rar4() -> bytes:
    out = b"Rar!\x1a\x07\x00"
    out += struct.pack("<HBHH", 0, 0x73, 0, 13) + bytes(6)
    name = b"a.exe"
    fixed = struct.pack("<IIBIIBBHI", len(EICAR), len(EICAR), 0, 0, 0, 20, 0x30, len(name),
                        0x20) + name
    out += struct.pack("<HBHH", 0, 0x74, 0x8000, 7 + len(fixed)) + fixed + EICAR
    return out + struct.pack("<HBHH", 0, 0x7B, 0x4000, 7)


def test_damaged_rar_is_broken_not_clean(engine: Engine) -> None:
    # A hand-made RAR 4 whose header CRCs are 0: unrar and libarchive refuse it; never clean.
    report = engine.scan_bytes(rar4())
    assert report.infected
    assert set(report.names) <= {"Heuristics.Broken.RAR", "Eicar-Test-Signature"}
    blob = rar4().replace(EICAR, EICAR.lower())  # no body match: the heuristic alone
    assert engine.scan_bytes(blob).names == ("Heuristics.Broken.RAR",)


# --- truncated and corrupt containers -----------------------------------------------------------


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, d in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            t.addfile(info, io.BytesIO(d))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def _corrupt(blob: bytes, at: int) -> bytes:
    out = bytearray(blob)
    for i in range(at, min(len(out), at + 16)):
        out[i] ^= 0x5A
    return bytes(out)


BIG = bytes(range(256)) * 400  # 100 KB that compresses poorly: damage lands mid-stream


def cases() -> dict[str, tuple[bytes, str]]:
    z = _zip({"a.bin": BIG, "b.bin": BIG[::-1]})
    gz = gzip.compress(BIG)
    bz = bz2.compress(BIG)
    xz = lzma.compress(BIG)
    tar = _tar({"a.bin": BIG, "b.bin": BIG[::-1]})
    return {
        "zip-truncated": (z[: len(z) // 2], "Zip"),
        "zip-corrupt-member": (_corrupt(z, len(z) // 4), "Zip"),
        "gzip-truncated": (gz[: len(gz) // 2], "GZip"),
        "gzip-corrupt": (_corrupt(gz, len(gz) // 2), "GZip"),
        "bzip2-truncated": (bz[: len(bz) // 2], "BZip2"),
        "bzip2-corrupt": (_corrupt(bz, len(bz) // 2), "BZip2"),
        "xz-truncated": (xz[: len(xz) // 2], "XZ"),
        "xz-corrupt": (_corrupt(xz, len(xz) // 2), "XZ"),
        "tar-truncated-member": (tar[: 512 + len(BIG) // 2], "Tar"),
        "tar-corrupt-second-header": (_corrupt(tar, 512 + len(BIG) + 148), "Tar"),
    }


@pytest.mark.parametrize("name", sorted(cases()))
def test_broken_container_is_a_finding(engine: Engine, name: str) -> None:
    blob, fmt = cases()[name]
    report = engine.scan_bytes(blob)
    assert report.names == (f"Heuristics.Broken.{fmt}",), report
    assert report.findings[0].kind is FindingKind.HEURISTIC


def test_content_before_the_damage_is_still_scanned(every: Engine) -> None:
    payload = EICAR + BIG
    # (Not bzip2: its 900 KB blocks decode whole or not at all.)
    for blob in (gzip.compress(payload), lzma.compress(payload),
                 _tar({"e.com": payload, "x": BIG})):
        names = set(every.scan_bytes(blob[: len(blob) * 3 // 4]).names)
        assert "Eicar-Test-Signature" in names, names
        assert any(n.startswith("Heuristics.Broken.") for n in names), names


def test_switches_and_no_false_positives(db: object) -> None:
    off = Engine(db, Limits(alert_broken=False, alert_unsupported=False))  # type: ignore[arg-type]
    no_heur = Engine(db, heuristics=False)  # type: ignore[arg-type]
    on = Engine(db)  # type: ignore[arg-type]
    shrink = with_method(stored_zip({"a.txt": b"hello"}), 1)
    for blob, _fmt in [*cases().values(), (shrink, "")]:
        assert not off.scan_bytes(blob).infected
        assert not no_heur.scan_bytes(blob).infected
        assert on.scan_bytes(blob).infected
    # Whole, valid containers stay clean.
    clean = [
        _zip({"a.bin": BIG, "d/": b"", "b.txt": b"x"}),
        stored_zip({"a": BIG}),
        gzip.compress(BIG) + gzip.compress(b"second member"),
        gzip.compress(BIG) + b"\x00" * 512,  # tape padding
        bz2.compress(BIG) + bz2.compress(b"second stream"),
        lzma.compress(BIG),
        _tar({"a.bin": BIG, "b": b""}),
    ]
    for blob in clean:
        report = on.scan_bytes(blob)
        assert not report.infected, report
        assert not report.errors, report
