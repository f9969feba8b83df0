"""Round 20: binaries the recipient opens with a stock tool.

Each sample is made with the real tool and checked against the recipient's one (it gives
clam.exe back byte for byte, or decrypts it with the password the mail states); the engine
must find clam.exe or fail closed. Controls: random and system binaries stay clean."""

from __future__ import annotations

import base64
import io
import os
import random
import subprocess
import sysconfig
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from helpers.archives import pack_z
from helpers.tools import tool
from scan.conftest import CLAM, CLAM_NAME
from zerohour.scan import Engine, load_database, lzw, pe
from zerohour.scan.limits import Limits, ScanContext

_MAIL = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\n"


# -- openssl enc --------------------------------------------------------------------------------

@pytest.mark.parametrize("cipher", ["-aes-256-cbc", "-chacha20", "-aes-128-ctr"])
def test_openssl_enc_is_encrypted(clam_engine: Engine, tmp_path: Path, cipher: str) -> None:
    openssl = tool("openssl")
    enc = tmp_path / "data.enc"
    subprocess.run([openssl, "enc", cipher, "-pbkdf2", "-k", "hunter2", "-in", str(CLAM),
                    "-out", str(enc)], check=True)
    back = subprocess.run([openssl, "enc", "-d", cipher, "-pbkdf2", "-k", "hunter2", "-in",
                           str(enc)], capture_output=True, check=True).stdout
    assert back == CLAM.read_bytes()  # the recipient's tool opens it with the password
    data = enc.read_bytes()
    assert clam_engine.scan_bytes(data, "data.enc").names == ("Heuristics.Encrypted.OpenSSL",)
    # `-a`: its base64 in the mail's text, as the text carriers decode it
    text = base64.encodebytes(data).replace(b"\n", b"\r\n")
    msg = _MAIL + b"password: hunter2\r\n\r\n" + text
    assert clam_engine.scan_bytes(msg).names == ("Heuristics.Encrypted.OpenSSL",)


def test_salted_prefix_alone_is_not_enough(clam_engine: Engine) -> None:
    # (the magic with no ciphertext behind it says nothing)
    assert clam_engine.scan_bytes(b"Salted__12345678", "x.bin").names == ()
    assert clam_engine.scan_bytes(os.urandom(600), "x.bin").names == ()


# -- zip comments -------------------------------------------------------------------------------

def test_zip_archive_comment_is_a_layer(clam_engine: Engine, tmp_path: Path) -> None:
    archive = tmp_path / "files.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # (what z04 was made with)
        zf.writestr("a.txt", b"hello\n")
        zf.comment = CLAM.read_bytes()
    with zipfile.ZipFile(archive) as zf:
        assert zf.comment == CLAM.read_bytes()  # what a script reading the comment writes out
    assert clam_engine.scan_bytes(archive.read_bytes(), "files.zip").names == (CLAM_NAME,)


def test_zip_archive_comment_base64_by_zip_z(clam_engine: Engine, tmp_path: Path) -> None:
    zip_ = tool("zip")
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    archive = tmp_path / "files.zip"
    subprocess.run([zip_, "-q", "-z", str(archive), "a.txt"], cwd=tmp_path, check=True,
                   input=base64.encodebytes(CLAM.read_bytes()))  # `zip -z`: from stdin
    shown = subprocess.run([tool("unzip"), "-z", str(archive)], capture_output=True,
                           check=True).stdout
    assert base64.b64decode(shown.split(b"\n", 1)[1]) == CLAM.read_bytes()  # `unzip -z`
    assert clam_engine.scan_bytes(archive.read_bytes(), "files.zip").names == (CLAM_NAME,)


def test_zip_member_comment_base64_is_a_text_layer(clam_engine: Engine, tmp_path: Path) -> None:
    archive = tmp_path / "files.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("a.txt")
        info.comment = base64.b64encode(CLAM.read_bytes())
        zf.writestr(info, b"hello\n")
    listing = subprocess.run([tool("unzip"), "-Z", "-v", str(archive)], capture_output=True,
                             check=True).stdout
    assert base64.b64encode(CLAM.read_bytes())[:60] in listing  # zipinfo shows it
    with zipfile.ZipFile(archive) as zf:
        assert base64.b64decode(zf.infolist()[0].comment) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(archive.read_bytes(), "files.zip").names == (CLAM_NAME,)


def test_zip_with_a_plain_comment_stays_clean(clam_engine: Engine, tmp_path: Path) -> None:
    zip_ = tool("zip")
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    archive = tmp_path / "files.zip"
    subprocess.run([zip_, "-q", "-z", str(archive), "a.txt"], cwd=tmp_path, check=True,
                   input=b"Release 1.2, built by CI\n" + os.urandom(300))
    assert clam_engine.scan_bytes(archive.read_bytes(), "files.zip").names == ()


# -- a file split over many attachments whose names sort in order --------------------------------

def _attachments(parts: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(
        b"--ZB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
        b'\r\nContent-Disposition: attachment; filename="' + name.encode() + b'"\r\n\r\n'
        + base64.encodebytes(data).replace(b"\n", b"\r\n") for name, data in parts)
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="ZB"\r\n\r\n' + body + b"--ZB--\r\n")


@pytest.mark.parametrize(("n", "natural"), [(7, False), (8, False), (9, False), (12, True)])
def test_pieces_joined_in_name_order(clam_engine: Engine, tmp_path: Path, n: int,
                                     natural: bool) -> None:
    rng = random.Random(n)
    split = tool("split")
    subprocess.run([split, "-n", str(n), str(CLAM), "x"], cwd=tmp_path, check=True)
    pieces = sorted(tmp_path.glob("x*"))
    names = [(f"p{i + 1}_" if natural else f"n{i:02d}_")
             + "".join(rng.choice("abcdefghij") for _ in range(5)) + ".bin"
             for i in range(n)]
    for piece, name in zip(pieces, names, strict=True):
        piece.rename(tmp_path / name)
    # the recipient's join: `cat $(ls | sort)`, or `ls -v` for unpadded numbers
    listing = subprocess.run(["ls", "-v" if natural else "-1"], cwd=tmp_path, check=True,
                             capture_output=True, text=True).stdout.split()
    assert b"".join((tmp_path / f).read_bytes() for f in listing) == CLAM.read_bytes()
    parts = [(name, (tmp_path / name).read_bytes()) for name in names]
    rng.shuffle(parts)
    assert clam_engine.scan_bytes(_attachments(parts)).names == (CLAM_NAME,)


def test_name_order_join_needs_a_cut_head(clam_engine: Engine) -> None:
    parts = [(f"n{i:02d}.bin", os.urandom(100)) for i in range(9)]
    assert clam_engine.scan_bytes(_attachments(parts)).names == ()


# -- a PE carved out of other bytes by a size its headers do not give ----------------------------

@pytest.mark.parametrize(("before", "after"), [(100, 77), (512, 77), (100, 3000), (0, 200)])
def test_pe_carved_by_its_senders_size(clam_engine: Engine, tmp_path: Path, before: int,
                                       after: int) -> None:
    # clam.exe's headers claim 1 KiB (SizeOfHeaders 0x400): only `count=544` rebuilds it
    blob = tmp_path / "blob.dat"
    blob.write_bytes(os.urandom(before) + CLAM.read_bytes() + os.urandom(after))
    out = tmp_path / "out"
    subprocess.run([tool("dd"), f"if={blob}", f"of={out}", "bs=1", f"skip={before}",
                    f"count={len(CLAM.read_bytes())}"], check=True, capture_output=True)
    assert out.read_bytes() == CLAM.read_bytes()
    assert clam_engine.scan_bytes(blob.read_bytes(), "blob.dat").names == (CLAM_NAME,)


def test_prefix_span_only_for_pes_their_headers_do_not_end() -> None:
    clam = CLAM.read_bytes()
    assert pe.prefix_span(clam) is None  # whole: its own hash
    assert pe.prefix_span(clam + b"x" * 100) == (544, 644)
    assert pe.prefix_span(clam + b"x" * 2000) == (544, 1025)  # up to its claimed extent
    assert pe.prefix_span(os.urandom(4096)) is None


def _system_files() -> list[Path]:
    found = []
    for pattern in ("/usr/lib/x86_64-linux-gnu/*.so*", "/usr/bin/*"):
        for path in sorted(Path("/").glob(pattern.lstrip("/")))[:400]:
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 4 << 20:
                found.append(path)
    return found


def test_prefix_hashes_raise_nothing_on_real_files(tmp_path: Path) -> None:
    """Signatures at every 7th size up to 64 KiB (random digests): the prefixes hashed for
    truncated-looking PEs (Windows launchers pip ships, ClamAV's PE test files, each whole
    and truncated), and ELF files, give no finding of theirs."""
    hdb = tmp_path / "sizes.hdb"
    hdb.write_text("".join(f"{os.urandom(16).hex()}:{size}:Random.{size}\n"
                           for size in range(1, 65536, 7)))
    engine = Engine(load_database([tmp_path]))
    launchers = Path(sysconfig.get_paths()["purelib"]).glob("pip/_vendor/distlib/*.exe")
    files = [*_system_files()[:30], *sorted(launchers)[:8],
             *sorted(Path("/usr/share/clamav-testfiles").glob("*.exe"))]
    for path in files:
        data = path.read_bytes()
        for sample in (data, data[:-17]):  # (whole and truncated)
            names = engine.scan_bytes(sample, path.name).names
            assert not [n for n in names if n.startswith("Random.")], path


# -- compress (.Z) and pack (.z), as gzip -d reads them --------------------------------------------

@pytest.mark.parametrize("bits", [12, 16])
def test_compress_is_decoded(clam_engine: Engine, bits: int) -> None:
    z = subprocess.run([tool("compress"), "-c", f"-b{bits}"], input=CLAM.read_bytes(),
                       capture_output=True, check=True).stdout
    assert subprocess.run([tool("gzip"), "-dc"], input=z, capture_output=True,
                          check=True).stdout == CLAM.read_bytes()
    assert clam_engine.scan_bytes(z, "data.Z").names == (CLAM_NAME,)


@pytest.mark.parametrize("seed", range(4))
def test_compress_matches_gzip_on_larger_inputs(seed: int) -> None:
    rng = random.Random(seed)
    data = (bytes(rng.choice(b"abc\n") for _ in range(150_000)) if seed % 2
            else Path("/usr/bin/ls").read_bytes()[: 50_000 * (seed + 1)])
    z = subprocess.run([tool("compress"), "-c", f"-b{12 + seed}"], input=data,
                       capture_output=True, check=True).stdout
    out, complete, _codes = lzw.uncompress(z, ScanContext(Limits()))
    assert complete
    assert out == data == subprocess.run([tool("gzip"), "-dc"], input=z, capture_output=True,
                                         check=True).stdout


def test_pack_is_decoded(clam_engine: Engine) -> None:
    z = pack_z(CLAM.read_bytes())
    assert subprocess.run([tool("gzip"), "-dc"], input=z, capture_output=True,
                          check=True).stdout == CLAM.read_bytes()  # gzip reads pack's .z
    assert clam_engine.scan_bytes(z, "data.z").names == (CLAM_NAME,)
    out = lzw.unpack(z, ScanContext(Limits()))
    assert out == (CLAM.read_bytes(), True)


def test_compress_and_pack_magic_in_random_bytes_is_no_finding(clam_engine: Engine) -> None:
    rng = random.Random(20)
    for i in range(3000):
        magic = b"\x1f\x9d" + bytes((rng.choice([0x89, 0x8C, 0x90, 0x10]),)) if i % 2 else (
            b"\x1f\x1e")
        data = magic + rng.randbytes(rng.randrange(60, 4096))
        assert clam_engine.scan_bytes(data, "x.bin").names == (), data[:8]


# -- PNG text chunks ----------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", ["tEXt", "zTXt", "iTXt", "iTXt-z"])
def test_png_text_chunks_are_text_layers(clam_engine: Engine, tmp_path: Path, chunk: str) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "GIMP 2.10")
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    if chunk.startswith("iTXt"):
        info.add_itxt("Comment", b64, lang="en", tkey="Kommentar", zip=chunk.endswith("-z"))
    else:
        info.add_text("Comment", b64, zip=chunk == "zTXt")
    path = tmp_path / "pic.png"
    Image.new("RGB", (8, 8), "white").save(path, pnginfo=info)
    with Image.open(path) as im:  # what a script reading the metadata gets
        assert base64.b64decode(im.text["Comment"]) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(path.read_bytes(), "pic.png").names == (CLAM_NAME,)


def test_png_text_after_thousands_of_chunks(clam_engine: Engine, tmp_path: Path) -> None:
    """The chunks are walked to the end (round 21: 4,100 empty chunks first went past the
    pixel reader's cap, and the text reader had one of 4,096 too)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", base64.b64encode(CLAM.read_bytes()).decode(), zip=True)
    path = tmp_path / "pic.png"
    Image.new("RGB", (8, 8), "white").save(path, pnginfo=info)
    data = path.read_bytes()
    empty = (0).to_bytes(4, "big") + b"prVt" + zlib.crc32(b"prVt").to_bytes(4, "big")
    data = data[:33] + empty * 4100 + data[33:]
    with Image.open(io.BytesIO(data)) as im:
        assert base64.b64decode(im.text["Comment"]) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(data, "pic.png").names == (CLAM_NAME,)


def test_png_with_ordinary_text_stays_clean(clam_engine: Engine, tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "GIMP 2.10")
    info.add_text("Description", "holiday photo " * 50, zip=True)
    path = tmp_path / "pic.png"
    Image.new("RGB", (64, 64), "blue").save(path, pnginfo=info)
    assert clam_engine.scan_bytes(path.read_bytes(), "pic.png").names == ()


def test_pack_matches_gzip_past_a_chunk() -> None:
    data = Path("/usr/bin/ls").read_bytes()[:200_000]  # (bits are made 64 KiB at a time)
    z = pack_z(data)
    assert subprocess.run([tool("gzip"), "-dc"], input=z, capture_output=True,
                          check=True).stdout == data
    assert lzw.unpack(z, ScanContext(Limits())) == (data, True)
    assert lzw.unpack(z[:-100], ScanContext(Limits())) is not None  # cut: what decoded
