"""Carriers round 9 of the hostile-sender tests delivered clam.exe in, each made and undone by
the real tool a recipient would use (the oracle): a file written all in quoted-printable as
text (`python3 -m quopri -d`), Motorola S-records (`objcopy -I srec`), a raw zlib stream
(`zlib-flate -uncompress`), brotli (`brotli -d`, by its `.br` name: the format has no magic
number), and bzip3, lrzip and zpaq, which nothing here opens yet (`Heuristics.Unsupported`).
"""

from __future__ import annotations

import base64
import quopri
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine, streams
from zerohour.scan.limits import ScanContext

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"




def mail(body: bytes, name: str | None = None) -> bytes:
    head = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
            b"Content-Type: text/plain\r\n\r\nsee below\r\n--B\r\n")
    if name is None:
        part = b"Content-Type: text/plain\r\n\r\n" + body.replace(b"\n", b"\r\n") + b"\r\n"
    else:
        part = (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                b"filename=" + name.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(body))
    return head + part + b"--B--\r\n"


def _qp_all(data: bytes) -> bytes:
    text = "".join(f"={c:02X}" for c in data)
    return "=\n".join(text[i : i + 72] for i in range(0, len(text), 72)).encode() + b"=\n"


@pytest.mark.parametrize("twice", [False, True])
@pytest.mark.parametrize("as_file", [False, True])
def test_a_file_in_quoted_printable_text(clam_engine: Engine, tmp_path: Path, as_file: bool,
                                         twice: bool) -> None:
    clam = CLAM.read_bytes()
    text = _qp_all(clam)
    undone = subprocess.run([sys.executable, "-m", "quopri", "-d"], input=text,
                            capture_output=True, check=True).stdout
    assert undone == clam
    if twice:  # the client's own decode leaves the text above
        msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
               + quopri.encodestring(text))
    else:
        msg = mail(b"Decode it with quopri:\n\n" + text, "clam.qp" if as_file else None)
    assert clam_engine.scan_bytes(msg).names == (NAME,)


def _srec(data: bytes) -> bytes:
    lines = [b"S00600004844521B"]
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        body = bytes([len(chunk) + 3]) + off.to_bytes(2, "big") + chunk
        lines.append(b"S1" + (body + bytes([~sum(body) & 0xFF])).hex().upper().encode())
    lines.append(b"S9030000FC")
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("as_file", [False, True])
def test_motorola_s_records_after_prose(clam_engine: Engine, tmp_path: Path, as_file: bool) -> None:
    clam = CLAM.read_bytes()
    records = _srec(clam)
    (tmp_path / "fw.srec").write_bytes(records)
    subprocess.run([tool("objcopy"), "-I", "srec", "-O", "binary", str(tmp_path / "fw.srec"),
                    str(tmp_path / "out")], check=True)
    assert (tmp_path / "out").read_bytes() == clam
    text = b"Firmware update, flash with objcopy:\n\n" + records
    assert clam_engine.scan_bytes(mail(text, "fw.srec" if as_file else None)).names == (NAME,)


@pytest.mark.parametrize("level", ["1", "9"])
def test_a_raw_zlib_stream(clam_engine: Engine, tmp_path: Path, level: str) -> None:
    clam = CLAM.read_bytes()
    packed = subprocess.run([tool("pigz"), f"-{level}", "-z", "-c"], input=clam,
                            capture_output=True, check=True).stdout
    undone = subprocess.run([tool("zlib-flate"), "-uncompress"], input=packed,
                            capture_output=True, check=True).stdout
    assert undone == clam
    assert clam_engine.scan_bytes(mail(packed, "clam.zz")).names == (NAME,)


def test_random_bytes_with_a_zlib_header_are_no_finding(clam_engine: Engine) -> None:
    import random

    rng = random.Random(4)
    for _ in range(50):
        blob = b"\x78\x9c" + rng.randbytes(rng.randrange(10, 4000))
        report = clam_engine.scan_bytes(blob, "x.bin")
        assert not report.names
        assert not report.errors


def test_brotli_by_its_name(clam_engine: Engine, tmp_path: Path) -> None:
    clam = CLAM.read_bytes()
    (tmp_path / "clam.exe").write_bytes(clam)
    subprocess.run([tool("brotli"), "-f", "-o", str(tmp_path / "clam.exe.br"),
                    str(tmp_path / "clam.exe")], check=True)
    packed = (tmp_path / "clam.exe.br").read_bytes()
    assert clam_engine.scan_bytes(mail(packed, "clam.exe.br")).names == (NAME,)
    assert clam_engine.scan_bytes(mail(b"\x8b\x00junk" * 30, "fake.br")).names == (
        "Heuristics.Broken.Brotli",)


@pytest.mark.parametrize(("kind", "command"), [
    ("BZIP3", "bzip3 -e -f -c {src} > {dst}"),
    ("LRZIP", "lrzip -q -f -o {dst} {src}"),
    ("ZPAQ", "cd {dir} && zpaq a {dst} clam.exe > /dev/null"),
])
def test_compressors_nothing_here_opens_are_unsupported(clam_engine: Engine, tmp_path: Path,
                                                        kind: str, command: str) -> None:
    tool(command.split()[0] if not command.startswith("cd") else "zpaq")
    (tmp_path / "clam.exe").write_bytes(CLAM.read_bytes())
    dst = tmp_path / "packed"
    subprocess.run(command.format(src=tmp_path / "clam.exe", dst=dst, dir=tmp_path), shell=True,
                   check=True)
    if kind == "ZPAQ":
        dst = dst.with_suffix(".zpaq") if not dst.exists() else dst
    assert clam_engine.scan_bytes(mail(dst.read_bytes(), "packed.bin")).names == (
        f"Heuristics.Unsupported.{kind}",)


def _records(data: bytes, kind: str, shuffle: bool) -> bytes:
    """Intel HEX or S2/S3 records of `data` leaving out lines that are all zeros (objcopy
    fills the gaps again), in address order or shuffled."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        if not chunk.strip(b"\x00"):
            continue
        if kind == "ihex":
            body = bytes([len(chunk)]) + off.to_bytes(2, "big") + b"\x00" + chunk
            lines.append(b":" + (body + bytes([-sum(body) & 0xFF])).hex().upper().encode())
        else:
            width = 3 if kind == "S2" else 4
            body = bytes([len(chunk) + width + 1]) + off.to_bytes(width, "big") + chunk
            lines.append(kind.encode() + (body + bytes([~sum(body) & 0xFF])).hex().upper().encode())
    if shuffle:
        lines = lines[1::2] + lines[0::2]
    end = {"ihex": b":00000001FF", "S2": b"S804000000FB", "S3": b"S70500000000FA"}[kind]
    return b"\n".join([*lines, end]) + b"\n"


@pytest.mark.parametrize(("kind", "shuffle"), [("ihex", False), ("ihex", True), ("S2", False),
                                               ("S3", True)])
def test_records_with_gaps_as_objcopy_fills_them(clam_engine: Engine, tmp_path: Path, kind: str,
                                                 shuffle: bool) -> None:
    clam = CLAM.read_bytes()
    text = _records(clam, kind, shuffle)
    (tmp_path / "fw.txt").write_bytes(text)
    subprocess.run([tool("objcopy"), "-I", "ihex" if kind == "ihex" else "srec", "-O", "binary",
                    str(tmp_path / "fw.txt"), str(tmp_path / "out")], check=True)
    assert (tmp_path / "out").read_bytes() == clam  # (its last 16 bytes are not all zeros)
    assert clam_engine.scan_bytes(mail(b"Flash this:\n\n" + text, "fw.hex")).names == (NAME,)


_INFLATE_RAW = ("import sys, zlib; "
                "sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))")


@pytest.mark.parametrize("how", ["brotli", "xz-raw", "deflate-raw", "lzma1-raw"])
def test_a_stream_without_a_magic_number_under_any_name(clam_engine: Engine, tmp_path: Path,
                                                        how: str) -> None:
    """Round 10: `brotli -dc invoice.dat`, `xz --format=raw -dc payload.bin` rebuilt clam.exe
    (the oracle); round 20 (a27, a28): `zopfli --deflate` (raw deflate, inflated by a zlib
    one-liner with `wbits=-15`) and `xz --format=raw --lzma1`. A whole stream of each is
    decoded whatever the layer's name."""
    clam = CLAM.read_bytes()
    if how == "brotli":
        make, undo = [tool("brotli"), "-c"], [tool("brotli"), "-dc"]
    elif how == "xz-raw":
        make, undo = [tool("xz"), "--format=raw", "-c"], [tool("xz"), "--format=raw", "-dc"]
    elif how == "deflate-raw":
        (tmp_path / "clam.exe").write_bytes(clam)
        make, undo = [tool("zopfli"), "--deflate", "-c", str(tmp_path / "clam.exe")], [
            sys.executable, "-c", _INFLATE_RAW]
    else:
        make = [tool("xz"), "--format=raw", "--lzma1", "-c"]
        undo = [tool("xz"), "--format=raw", "--lzma1", "-dc"]
    packed = subprocess.run(make, input=clam, capture_output=True, check=True).stdout
    assert subprocess.run(undo, input=packed, capture_output=True, check=True).stdout == clam
    assert clam_engine.scan_bytes(mail(packed, "invoice.dat")).names == (NAME,)


def test_system_binaries_are_no_magicless_stream() -> None:
    """Real files of every kind (executables, libraries, images, compressed ones) do not
    decode as a whole raw stream: the probes add no layer to ordinary attachments."""
    files = sorted(p for d in ("/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/share/pixmaps")
                   for p in Path(d).glob("*") if p.is_file() and not p.is_symlink())[:600]
    assert len(files) > 100
    for path in files:
        data = path.read_bytes()[:200_000]
        got = [c.origin for c in streams.magicless_children(data, ScanContext())]
        assert got == [], path


def test_random_binaries_are_no_magicless_stream(clam_engine: Engine) -> None:
    import random

    rng = random.Random(7)
    for _ in range(300):
        report = clam_engine.scan_bytes(rng.randbytes(rng.randrange(1, 5000)), "x.bin")
        assert not report.names
        assert not report.errors


def test_a_raw_deflate_stream_with_bytes_after_it(clam_engine: Engine) -> None:
    """Round 5: zlib's raw decoder (`zlib.decompress(x, -15)`) stops at the stream's end and
    gives the file back with bytes after it; a whole stream that makes 64 bytes or more
    counts so too."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = packer.compress(CLAM.read_bytes()) + packer.flush() + b"\x00trailer"
    assert zlib.decompress(data, -15) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(mail(data, "invoice.dat")).names == (NAME,)
