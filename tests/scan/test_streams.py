"""Single-stream compression (zerohour.scan.streams): SZDD, KWAJ, zstd, lz4 (frame and legacy)
and .lzma, on files made by the real tools (mscompress, zstd, lz4, xz --format=lzma) and
ClamAV's clam.exe.szdd, with clamscan as the oracle where it opens the format (SZDD; it opens
none of zstd, lz4 or .lzma). Truncation, bombs and look-alike .lzma headers are checked too."""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, load_database, streams
from zerohour.scan.filetype import detect
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.types import FileType

TESTFILES = Path("/usr/share/clamav-testfiles")
CLAM_EXE = TESTFILES / "clam.exe"
NAME = "ClamAV-Test-File"

pytestmark = pytest.mark.skipif(not CLAM_EXE.exists(), reason="clamav-testfiles not installed")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (scripts/system-deps installs it)")
    return path


@pytest.fixture(scope="module")
def clam() -> bytes:
    return CLAM_EXE.read_bytes()


@pytest.fixture(scope="module")
def dbdir(tmp_path_factory: pytest.TempPathFactory, clam: bytes) -> Path:
    d = tmp_path_factory.mktemp("db")
    md5 = hashlib.md5(clam, usedforsecurity=False).hexdigest()
    (d / "clam.hdb").write_text(f"{md5}:{len(clam)}:{NAME}\n")
    return d


@pytest.fixture(scope="module")
def engine(dbdir: Path) -> Engine:
    return Engine(load_database([dbdir]))


def _made(tmp: Path, clam: bytes, fmt: str) -> bytes:
    """clam.exe compressed by the real tool for `fmt`."""
    src = tmp / "clam.exe"
    src.write_bytes(clam)
    if fmt == "szdd":
        subprocess.run([_tool("mscompress"), str(src)], check=True, capture_output=True)
        return (tmp / "clam.exe_").read_bytes()
    cmd = {
        "zstd": [_tool("zstd"), "-q", "-c", str(src)],
        "lz4": [_tool("lz4"), "-q", "-c", str(src)],
        "lz4-legacy": [_tool("lz4"), "-l", "-q", "-c", str(src)],
        "lzma": [_tool("xz"), "--format=lzma", "-q", "-c", str(src)],
    }[fmt]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


FORMATS = {
    "szdd": FileType.SZDD,
    "zstd": FileType.ZSTD,
    "lz4": FileType.LZ4,
    "lz4-legacy": FileType.LZ4,
    "lzma": FileType.LZMA,
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_real_tool_output_is_detected_and_clam_exe_found(
    tmp_path: Path, clam: bytes, engine: Engine, fmt: str
) -> None:
    blob = _made(tmp_path, clam, fmt)
    assert detect(blob) is FORMATS[fmt]
    report = engine.scan_bytes(blob, name="sample")
    assert report.names == (NAME,), report
    assert not report.errors


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated_stream_is_broken_after_what_decoded(
    tmp_path: Path, clam: bytes, fmt: str
) -> None:
    blob = _made(tmp_path, clam, fmt)
    ctx = ScanContext()
    kids = list(streams.stream_children(blob[: len(blob) - 9], FORMATS[fmt], ctx, None))
    assert ctx.events, "truncation went unnoticed"
    assert ctx.events[0][0] == "Broken", ctx.events
    for kid in kids:  # whatever decoded is a prefix of the real content
        assert clam.startswith(kid.data[:100])
    whole = ScanContext()
    (kid,) = streams.stream_children(blob, FORMATS[fmt], whole, None)
    assert kid.data == clam
    assert not whole.events


def test_clamav_szdd_corpus_file_and_clamscan_agree(dbdir: Path, engine: Engine) -> None:
    sample = TESTFILES / "clam.exe.szdd"
    report = engine.scan_bytes(sample.read_bytes(), name=sample.name)
    assert report.names == (NAME,)
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed")
    res = subprocess.run([clamscan, "--no-summary", "-d", str(dbdir), str(sample)],
                         capture_output=True, text=True)
    assert f"{NAME}.UNOFFICIAL FOUND" in res.stdout


@pytest.mark.needs_clamav
def test_clamscan_opens_mscompress_output_like_we_do(
    tmp_path: Path, clam: bytes, dbdir: Path, engine: Engine
) -> None:
    clamscan = _tool("clamscan")
    blob = _made(tmp_path, clam, "szdd")
    broken = bytearray(blob)
    broken[14:] = bytes(len(blob) - 14)  # a stream of zero controls: 8 matches per byte
    for data, infected in ((blob, True), (bytes(broken), False)):
        f = tmp_path / "s.ex_"
        f.write_bytes(data)
        res = subprocess.run([clamscan, "--no-summary", "-d", str(dbdir), str(f)],
                             capture_output=True, text=True)
        assert ("FOUND" in res.stdout) is infected, res.stdout
        assert (NAME in engine.scan_bytes(data).names) is infected


def test_szdd_name_gets_its_missing_character_back(clam: bytes) -> None:
    blob = (TESTFILES / "clam.exe.szdd").read_bytes()
    renamed = blob[:9] + b"e" + blob[10:]  # what `compress -r` stores for CLAM.EX_
    (kid,) = streams.stream_children(renamed, FileType.SZDD, ScanContext(), "CLAM.EX_")
    assert kid.name == "CLAM.EXe"
    assert kid.data == clam


def _kwaj(method: int, body: bytes, size: int | None, name: bytes = b"CLAM",
          ext: bytes = b"EXE") -> bytes:
    flags = 0x08 | 0x10 | (0x01 if size is not None else 0)
    extra = (struct.pack("<I", size) if size is not None else b"") + name + b"\0" + ext + b"\0"
    return streams.KWAJ_MAGIC + struct.pack("<HHH", method, 14 + len(extra), flags) + extra + body


def test_kwaj_methods_0_1_2(clam: bytes) -> None:
    """KWAJ around real data: method 2 carries mscompress's own LZSS stream (the same coder)."""
    lzss = (TESTFILES / "clam.exe.szdd").read_bytes()[14:]
    for method, body in ((0, clam), (1, bytes(b ^ 0xFF for b in clam)), (2, lzss)):
        blob = _kwaj(method, body, len(clam))
        assert detect(blob) is FileType.SZDD
        ctx = ScanContext()
        (kid,) = streams.stream_children(blob, FileType.SZDD, ctx, None)
        assert kid.data == clam
        assert kid.name == "CLAM.EXE"
        assert kid.origin == "kwaj"
        assert not ctx.events
    short = ScanContext()
    list(streams.stream_children(_kwaj(2, lzss[:-20], len(clam)), FileType.SZDD, short, None))
    assert short.events == [("Broken", "KWAJ")]


@pytest.mark.parametrize(("method", "detail"), [(3, "LZH"), (4, "MSZIP"), (9, "Method9")])
def test_kwaj_methods_we_do_not_decode_are_unsupported(method: int, detail: str) -> None:
    ctx = ScanContext()
    assert list(streams.stream_children(_kwaj(method, b"\x00" * 64, 544), FileType.SZDD, ctx,
                                        None)) == []
    assert ctx.events == [("Unsupported", f"KWAJ.{detail}")]


def test_szdd_lzss_bomb_stops_at_the_output_bound() -> None:
    # Every control byte 0: 8 two-byte matches of 18 bytes each (the coder's best ratio, 8.5).
    header = streams.SZDD_MAGIC + b"A\x00" + struct.pack("<I", 0xFFFFFFF)
    blob = header + b"\x00\xff\xff" * 2_000_000
    ctx = ScanContext(Limits(max_file_size=4 << 20))
    t = time.monotonic()
    with pytest.raises(ScanLimitExceeded) as exc:
        list(streams.stream_children(blob, FileType.SZDD, ctx, None))
    assert exc.value.which == "MaxFileSize"
    assert time.monotonic() - t < 10


@pytest.fixture(scope="module")
def gigabyte_bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """1 GiB of zeros through each real tool (made by streaming, never held in memory)."""
    tmp = tmp_path_factory.mktemp("bombs")
    out: dict[str, bytes] = {}
    for fmt, cmd in (("zstd", ["zstd", "-q", "-c"]), ("lz4", ["lz4", "-q", "-c"]),
                     ("lzma", ["xz", "--format=lzma", "-0", "-q", "-c"])):
        _tool(cmd[0])
        target = tmp / fmt
        with open("/dev/zero", "rb") as zero, target.open("wb") as sink:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=sink)
            assert proc.stdin is not None
            chunk = zero.read(1 << 24)
            for _ in range(64):
                proc.stdin.write(chunk)
            proc.stdin.close()
            assert proc.wait() == 0
        out[fmt] = target.read_bytes()
    return out


@pytest.mark.parametrize(("fmt", "ft"), [("zstd", FileType.ZSTD), ("lz4", FileType.LZ4),
                                         ("lzma", FileType.LZMA)])
def test_gigabyte_of_zeros_stops_at_the_bounds_quickly(
    gigabyte_bombs: dict[str, bytes], engine: Engine, fmt: str, ft: FileType
) -> None:
    blob = gigabyte_bombs[fmt]
    assert detect(blob) is ft
    t = time.monotonic()
    with pytest.raises(ScanLimitExceeded) as exc:
        list(streams.stream_children(blob, ft, ScanContext(), None))
    assert time.monotonic() - t < 15
    # lz4 caps its ratio at ~255, so its bomb runs into the 100 MiB file-size bound instead.
    assert exc.value.which in ("CompressionRatio", "MaxFileSize")
    report = engine.scan_bytes(blob)
    assert report.names == (f"Heuristics.Limits.Exceeded.{exc.value.which}",)


def test_zstd_frame_with_a_huge_window_is_unsupported_not_allocated() -> None:
    # Frame header: no single-segment flag, window descriptor for 2^31 bytes, one RLE block.
    frame = b"\x28\xb5\x2f\xfd" + b"\x00" + bytes([(31 - 10) << 3]) + b"\x03\x00\x00\x00"
    ctx = ScanContext()
    list(streams.stream_children(frame + b"\x00" * 32, FileType.ZSTD, ctx, None))
    assert ctx.events == [("Unsupported", "Zstd.Window")]


def test_concatenated_frames_skippable_frames_and_trailing_padding(
    tmp_path: Path, clam: bytes
) -> None:
    z = _made(tmp_path, clam, "zstd")
    skippable = b"\x50\x2a\x4d\x18" + struct.pack("<I", 4) + b"skip"
    ctx = ScanContext()
    (kid,) = streams.stream_children(skippable + z + z + b"\x00" * 8, FileType.ZSTD, ctx, None)
    assert kid.data == clam + clam
    assert not ctx.events
    lz = _made(tmp_path, clam, "lz4")
    ctx = ScanContext()
    (kid,) = streams.stream_children(lz + lz, FileType.LZ4, ctx, None)
    assert kid.data == clam + clam
    assert not ctx.events


def test_random_blobs_starting_like_lzma_are_never_lzma(engine: Engine) -> None:
    """.lzma has no magic: thousands of random blobs starting with 0x5D (and with the common
    `5D 00 00 80 00` / `5D 00 00 10 00` prefixes) are not taken for .lzma, so no finding."""
    rng = random.Random(1234)
    prefixes = (b"\x5d", b"\x5d\x00\x00\x80\x00", b"\x5d\x00\x00\x10\x00")
    for i in range(3000):
        blob = prefixes[i % 3] + rng.randbytes(rng.randrange(16, 600))
        assert detect(blob) is not FileType.LZMA, blob[:16].hex()
    for i in range(300):
        blob = prefixes[i % 3] + rng.randbytes(rng.randrange(16, 600))
        report = engine.scan_bytes(blob)
        assert not report.findings, blob[:16].hex()
        assert not report.errors, blob[:16].hex()


def test_lzma_detection_accepts_what_the_tools_write(tmp_path: Path, clam: bytes) -> None:
    for preset in ("-0", "-6", "-9"):
        blob = subprocess.run([_tool("xz"), "--format=lzma", preset, "-c"], input=clam,
                              capture_output=True, check=True).stdout
        assert detect(blob) is FileType.LZMA, preset
    # A strongly valid header over a corrupt body is damaged .lzma, even if nothing decodes.
    good = _made(tmp_path, clam, "lzma")
    bad = good[:14] + bytes.fromhex("8f3a11c2") + b"\xff" * 64
    ctx = ScanContext()
    list(streams.stream_children(bad, FileType.LZMA, ctx, None))
    assert ctx.events == [("Broken", "LZMA")]


@pytest.mark.parametrize(("attr", "fmt"), [
    ("unszdd", "szdd"), ("lzss_expand", "szdd"), ("unzstd", "zstd"), ("unlz4", "lz4"),
    ("_lz4_frame_at", "lz4"), ("_lz4_legacy_at", "lz4-legacy"), ("unlzma", "lzma"),
])
def test_a_failing_decoder_never_gives_clean(
    tmp_path: Path, clam: bytes, engine: Engine, attr: str, fmt: str
) -> None:
    blob = _made(tmp_path, clam, fmt)
    calls: list[int] = []

    def broken(*args: object, **kwargs: object) -> object:
        calls.append(1)
        raise ValueError("injected")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(streams, attr, broken)
        report = engine.scan_bytes(blob)
    assert calls
    assert report.errors or report.findings, report


def _skippable(nibble: int, payload: bytes) -> bytes:
    return bytes([0x50 | nibble]) + b"\x2a\x4d\x18" + struct.pack("<I", len(payload)) + payload


@pytest.mark.parametrize("fmt", ["zstd", "lz4"])
@pytest.mark.parametrize("shape", ["first", "first-0x5F", "two-first", "between"])
def test_skippable_frames_do_not_hide_the_stream(
    tmp_path: Path, clam: bytes, engine: Engine, fmt: str, shape: str
) -> None:
    """Found by the hostile-sender review: a zstd or lz4 file that opens with a skippable frame
    was typed as unknown binary (the sniffer looked for a data frame's magic only), and lz4's
    frame loop stopped at a skippable frame between frames as if the file ended there: clam.exe
    behind one was delivered, although `zstd -d` and `lz4 -d` give it back."""
    frame = _made(tmp_path, clam, fmt)
    empty = _made_empty(tmp_path, fmt)
    blob = {
        "first": _skippable(0, b"skip"),
        "first-0x5F": _skippable(0xF, b"x" * 16),
        "two-first": _skippable(3, b"") + _skippable(7, b"decoy"),
        "between": empty + _skippable(0, b"skip"),
    }[shape] + frame
    tool = _tool(fmt)
    src = tmp_path / f"blob.{fmt}"
    src.write_bytes(blob)
    assert subprocess.run([tool, "-d", "-q", "-c", str(src)], capture_output=True,
                          check=True).stdout == clam  # the real tool decodes past it
    assert detect(blob) is FORMATS[fmt]
    assert engine.scan_bytes(blob, name="sample").names == (NAME,)


def _made_empty(tmp: Path, fmt: str) -> bytes:
    src = tmp / "empty"
    src.write_bytes(b"")
    return subprocess.run([_tool(fmt), "-q", "-c", str(src)], check=True,
                          capture_output=True).stdout


def test_a_skippable_frame_longer_than_the_file_is_broken_not_clean(
    tmp_path: Path, clam: bytes
) -> None:
    lz = _made(tmp_path, clam, "lz4")
    blob = lz + b"\x50\x2a\x4d\x18" + struct.pack("<I", 1 << 20) + b"short"
    ctx = ScanContext()
    (kid,) = streams.stream_children(blob, FileType.LZ4, ctx, None)
    assert kid.data == clam
    assert ctx.events == [("Broken", "LZ4")]
