"""Executables unpacked before matching (zerohour.scan.unpack): UPX (NRV2B/2D/2E) with a rebuilt
PE, and PE files embedded in a PE, checked against clamscan on ClamAV's clam-upx.exe (clamscan
finds clam.exe's MD5 and its code bytes in it; so must we, on the same rebuilt bytes)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import lzma
import random
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, load_database, pe
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.unpack import autoit, embedded, nrv, nsis, nsis_bzip2, pe_children, upx

TESTFILES = Path("/usr/share/clamav-testfiles")
CLAM_EXE = TESTFILES / "clam.exe"
CLAM_UPX = TESTFILES / "clam-upx.exe"
NAME = "ClamAV-Test-File"

pytestmark = pytest.mark.skipif(not CLAM_UPX.exists(), reason="clamav-testfiles not installed")


@pytest.fixture(scope="module")
def clam() -> bytes:
    return CLAM_EXE.read_bytes()


@pytest.fixture(scope="module")
def packed() -> bytes:
    return CLAM_UPX.read_bytes()


@pytest.fixture(scope="module")
def engine(clam_code_db: Path) -> Engine:
    return Engine(load_database([clam_code_db]), allmatch=True)


# --- a small NRV encoder (greedy LZ77), to check the three decoders on data of our choice -------


class _Writer:
    """UPX's stream layout: a 32-bit word of flags is reserved where its first bit is needed,
    bytes (literals, offset bytes) go after it."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.at = 0
        self.bb = 0
        self.bc = 0

    def bit(self, b: int) -> None:
        if self.bc == 0:
            self.at = len(self.out)
            self.out += bytes(4)
            self.bb, self.bc = 0, 32
        self.bc -= 1
        self.bb |= b << self.bc
        self.out[self.at : self.at + 4] = self.bb.to_bytes(4, "little")

    def bits(self, seq: list[int]) -> None:
        for b in seq:
            self.bit(b)


def _gamma_2b(v: int) -> list[int]:
    """v >= 2: its bits after the leading 1, each followed by a stop flag."""
    digits = [int(c) for c in bin(v)[3:]]
    out: list[int] = []
    for i, d in enumerate(digits):
        out += [d, int(i == len(digits) - 1)]
    return out


def _gamma_2d(t: int) -> list[int]:
    """The 2D/2E offset code: m = 2m + b; stop?; else m = 2(m - 1) + c."""
    if t in (2, 3):
        return [t - 2, 1]
    x = t >> 1
    return [*_gamma_2d((x >> 1) + 1)[:-1], 0, x & 1, t & 1, 1]


def nrv_compress(method: str, data: bytes) -> bytes:
    w = _Writer()
    last = 1
    i = 0
    table: dict[bytes, int] = {}
    while i < len(data):
        key = data[i : i + 3]
        cand = table.get(key)
        table[key] = i
        length = 0
        if cand is not None and i - cand < 0x8000:
            while i + length < len(data) and data[cand + length] == data[i + length]:
                length += 1
        off = i - cand if cand is not None else 0
        extra = int(off > (0xD00 if method == "2b" else 0x500))
        if length < 3 + extra:
            w.bit(1)
            w.out.append(data[i])
            i += 1
            continue
        w.bit(0)
        code = length - 1 - extra  # the decoders copy code + 1 + extra bytes
        carry = 0
        if off == last:
            w.bits(_gamma_2b(2) if method == "2b" else _gamma_2d(2))
            if method != "2b":
                carry = int(code in (2, 3) if method == "2d" else code in (1, 2))
                w.bit(carry)
        else:
            if method == "2b":
                raw = off - 1
            else:
                carry = int(code in (2, 3) if method == "2d" else code in (1, 2))
                raw = ((off - 1) << 1) | (1 - carry)
            w.bits(_gamma_2b((raw >> 8) + 3) if method == "2b" else _gamma_2d((raw >> 8) + 3))
            w.out.append(raw & 0xFF)
            last = off
        if method == "2e":
            if carry:
                w.bit(code - 1)
            elif code in (3, 4):
                w.bits([1, code - 3])
            else:
                w.bit(0)
                w.bits(_gamma_2b(code - 3))
        else:
            if method == "2b":
                w.bit(code >> 1 if code < 4 else 0)
            if code < 4:
                w.bit(code & 1)
            else:
                if method == "2d":
                    pass  # carry was 0
                w.bit(0)
                w.bits(_gamma_2b(code - 2))
        i += length
    w.bit(0)  # end marker: offset code 0x1000002, byte 0xFF
    w.bits(_gamma_2b(0x1000002) if method == "2b" else _gamma_2d(0x1000002))
    w.out.append(0xFF)
    return bytes(w.out)


@pytest.mark.parametrize("method", ["2b", "2d", "2e"])
def test_nrv_round_trip(method: str, clam: bytes) -> None:
    rng = random.Random(7)
    words = [b"alpha", b"beta", b"gamma", b"MZ\x90\x00", b"\x00" * 40]
    text = b"".join(rng.choice(words) for _ in range(4000))
    for sample in (clam, text, clam * 3 + text, bytes(70_000), rng.randbytes(3000)):
        packed = nrv_compress(method, sample)
        out, end = nrv.decompress(method, packed, len(sample))
        assert out == sample
        assert end == len(packed)
    # The same stream read as another method is not silently "fine".
    other = "2e" if method != "2e" else "2b"
    try:
        out, _ = nrv.decompress(other, nrv_compress(method, text), len(text))
    except nrv.NRVError:
        pass
    else:
        assert out != text


def test_nrv_decodes_clam_upx_and_damage_is_an_error(packed: bytes, clam: bytes) -> None:
    info = pe.parse(packed)
    assert info is not None
    found = upx.find(packed, info)
    assert found is not None
    assert found.named
    src = packed[found.src_start : found.src_end]
    image, _ = nrv.decompress("2b", src, found.out_limit)
    assert clam in image
    for cut in (10, 200, 600):
        with pytest.raises(nrv.NRVError):
            nrv.decompress("2b", src[:cut], found.out_limit)
    with pytest.raises(nrv.NRVError) as exc:
        nrv.decompress("2b", src, 4096)
    assert exc.value.overrun


def test_nrv_bomb_stops_at_its_limit() -> None:
    bomb = nrv_compress("2b", bytes(1 << 20))
    assert len(bomb) < 2000
    with pytest.raises(nrv.NRVError) as exc:
        nrv.decompress("2b", bomb, 100_000)
    assert exc.value.overrun


# --- UPX on clam-upx.exe, with clamscan as the oracle --------------------------------------------


def test_clam_upx_is_unpacked_and_clam_exe_found(engine: Engine, packed: bytes) -> None:
    report = engine.scan_bytes(packed, name="clam-upx.exe")
    assert set(report.names) == {NAME, "Clam.Code"}, report
    assert not report.errors
    assert any(layer.path.endswith("upx-unpacked/embedded-pe") for layer in report.layers)


@pytest.mark.needs_clamav
def test_clamscan_finds_the_same_signatures(clam_code_db: Path, packed: bytes) -> None:
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed (scripts/system-deps installs it)")
    res = subprocess.run(
        [clamscan, "--no-summary", "--allmatch", "-d", str(clam_code_db), str(CLAM_UPX)],
        capture_output=True, text=True,
    )
    assert f"{NAME}.UNOFFICIAL FOUND" in res.stdout
    assert "Clam.Code.UNOFFICIAL FOUND" in res.stdout


@pytest.mark.needs_clamav
def test_rebuilt_sections_are_clamscans_bytes(tmp_path: Path, packed: bytes) -> None:
    """clamscan --leave-temps keeps its rebuilt PE: every section of ours holds the same bytes
    at the same offsets (only the DOS stub and header fields differ)."""
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed (scripts/system-deps installs it)")
    db = tmp_path / "empty.ndb"
    db.write_text("Nothing.Here:0:*:0011223344556677889900aabbccddeeff\n")
    temps = tmp_path / "temps"
    temps.mkdir()
    subprocess.run([clamscan, "--no-summary", "--leave-temps", f"--tempdir={temps}", "-d",
                    str(db), str(CLAM_UPX)], capture_output=True, check=False)
    theirs = [p.read_bytes() for p in temps.rglob("*.tmp") if p.is_file()]
    theirs = [t for t in theirs if t[:2] == b"MZ" and len(t) > 4096]
    assert theirs, "clamscan left no rebuilt image"
    ours = next(c.data for c in pe_children(packed, ScanContext()) if c.origin == "upx-unpacked")
    ref = theirs[0]
    info_ours, info_ref = pe.parse(ours), pe.parse(ref)
    assert info_ours is not None
    assert info_ref is not None
    assert len(ours) == len(ref)
    assert [(s.virtual_address, s.raw_offset, s.raw_size) for s in info_ours.sections] == [
        (s.virtual_address, s.raw_offset, s.raw_size) for s in info_ref.sections]
    assert ours[0x1000:] == ref[0x1000:]
    assert info_ours.entry_point_rva == info_ref.entry_point_rva


def _with_stream(packed: bytes, stream: bytes, upx1_vsize: int | None = None) -> bytes:
    """clam-upx.exe with its compressed stream replaced (the stub stays), and optionally a
    larger UPX1 (the unpacked image may be as large as UPX0 + UPX1)."""
    info = pe.parse(packed)
    assert info is not None
    upx1 = info.sections[1]
    assert len(stream) <= 0x320  # the stub starts at 0x720
    data = bytearray(packed)
    data[upx1.raw_offset : upx1.raw_offset + len(stream)] = stream
    if upx1_vsize is not None:
        lfanew = struct.unpack_from("<I", data, 0x3C)[0]
        table = lfanew + 24 + struct.unpack_from("<H", data, lfanew + 20)[0]
        struct.pack_into("<I", data, table + 40 + 8, upx1_vsize)
    return bytes(data)


def test_damaged_upx_is_unsupported_not_clean(packed: bytes) -> None:
    info = pe.parse(packed)
    assert info is not None
    broken = _with_stream(packed, b"\xff\xff\xff\xff" + b"\x00" * 0x300)
    ctx = ScanContext()
    kids = list(pe_children(broken, ctx))
    assert [k.origin for k in kids if k.origin == "upx-unpacked"] == []
    assert ctx.events == [("Unsupported", "UPX")]


def test_upx_bomb_stops_at_the_output_bound(packed: bytes) -> None:
    stream = nrv_compress("2b", bytes(8 << 20))
    assert len(stream) < 0x320
    bomb = _with_stream(packed, stream, upx1_vsize=0x7FF00000)
    with pytest.raises(ScanLimitExceeded) as exc:
        list(pe_children(bomb, ScanContext(Limits(max_file_size=1 << 20))))
    assert exc.value.which == "MaxFileSize"


def test_upx_with_other_methods_rebuilds_the_same_image(packed: bytes) -> None:
    """clam-upx.exe's image recompressed with NRV2D and 2E (as `upx --nrv2d/--nrv2e` would,
    placed after the file): the unpacker finds the method and rebuilds the same PE."""
    info = pe.parse(packed)
    assert info is not None
    found = upx.find(packed, info)
    assert found is not None
    image, _ = nrv.decompress("2b", packed[found.src_start : found.src_end], found.out_limit)
    reference = upx.rebuild(image, packed, found)
    for method in ("2d", "2e"):
        data = packed + nrv_compress(method, image)
        moved = dataclasses.replace(found, src_start=len(packed), src_end=len(data))
        again = upx.decompress(data, moved, ScanContext())
        assert again == image
        assert upx.rebuild(again, data, moved) == reference


def test_mutated_upx_files_never_raise(packed: bytes) -> None:
    rng = random.Random(99)
    for _ in range(300):
        data = bytearray(packed)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(ScanLimitExceeded):
            list(pe_children(bytes(data), ScanContext()))


# --- embedded PE files ---------------------------------------------------------------------


@pytest.mark.needs_clamav
def test_pe_appended_to_a_pe_is_found_like_clamscan(
    tmp_path: Path, clam_code_db: Path, engine: Engine, clam: bytes
) -> None:
    dropper = clam + b"\x00" * 100 + clam
    report = engine.scan_bytes(dropper)
    assert NAME in report.names
    assert hashlib.md5(dropper, usedforsecurity=False).hexdigest() != hashlib.md5(
        clam, usedforsecurity=False).hexdigest()
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed")
    f = tmp_path / "dropper.exe"
    f.write_bytes(dropper)
    hdb = tmp_path / "db"
    hdb.mkdir()
    shutil.copy(clam_code_db / "clam.hdb", hdb / "clam.hdb")
    res = subprocess.run([clamscan, "--no-summary", "-d", str(hdb), str(f)],
                         capture_output=True, text=True)
    assert f"{NAME}.UNOFFICIAL FOUND" in res.stdout


def test_embedded_pes_are_bounded(clam: bytes) -> None:
    """Hundreds of PE headers in one file: at most 32 children, nested ones left to the
    children's own walk, and the MZ bytes that are not PE headers cost nothing."""
    blob = clam + (b"MZ" * 5000 + clam) * 100
    kids = list(pe_children(blob, ScanContext()))
    assert 1 <= len(kids) <= 33
    assert all(k.data.startswith(b"MZ") for k in kids)


# --- NSIS installers --------------------------------------------------------------------------


CLAM_NSIS = TESTFILES / "clam-nsis.exe"


def _nsis(tmp: Path, clam: bytes, compressor: str, solid: bool) -> bytes:
    """An installer made by the real makensis, holding clam.exe and a compressible text."""
    makensis = shutil.which("makensis")
    if makensis is None:
        pytest.skip("makensis not installed (Debian package nsis)")
    (tmp / "clam.exe").write_bytes(clam)
    (tmp / "notes.txt").write_bytes(b"filler text " * 2000)
    script = tmp / "t.nsi"
    script.write_text(
        f"SetCompressor {'/SOLID ' if solid else ''}{compressor}\n"
        'OutFile "out.exe"\nInstallDir "$TEMP\\x"\nSection\nSetOutPath "$INSTDIR"\n'
        'File "clam.exe"\nFile "notes.txt"\nSectionEnd\n'
    )
    subprocess.run([makensis, "-V1", str(script)], check=True, cwd=tmp, capture_output=True)
    return (tmp / "out.exe").read_bytes()


def test_clam_nsis_file_is_found(engine: Engine) -> None:
    report = engine.scan_bytes(CLAM_NSIS.read_bytes(), name="clam-nsis.exe")
    assert NAME in report.names
    assert any(layer.path.endswith("/nsis") for layer in report.layers)


@pytest.mark.parametrize("compressor", ["zlib", "lzma", "bzip2"])
@pytest.mark.parametrize("solid", [False, True], ids=["blocks", "solid"])
def test_makensis_installers_give_up_their_files(
    tmp_path: Path, clam: bytes, clam_code_db: Path, engine: Engine, compressor: str, solid: bool
) -> None:
    blob = _nsis(tmp_path, clam, compressor, solid)
    ctx = ScanContext()
    kids = [k.data for k in nsis.nsis_children(blob, ctx)]
    assert clam in kids
    assert b"filler text " * 2000 in kids
    assert not ctx.events
    assert NAME in engine.scan_bytes(blob).names
    clamscan = shutil.which("clamscan")
    if clamscan is None or (compressor, solid) == ("zlib", True):
        return  # clamscan 1.4 misses clam.exe in a solid zlib installer; we do not
    res = subprocess.run([clamscan, "--no-summary", "-d", str(clam_code_db / "clam.hdb"),
                          str(tmp_path / "out.exe")], capture_output=True, text=True)
    assert f"{NAME}.UNOFFICIAL FOUND" in res.stdout


def test_nsis_bzip2_bomb_stops_after_one_block(tmp_path: Path) -> None:
    """NSIS's bzip2 turns 64 MiB of zeros into ~140 bytes; one block expands to ~46 MB."""
    makensis = shutil.which("makensis")
    if makensis is None:
        pytest.skip("makensis not installed (Debian package nsis)")
    with (tmp_path / "zeros.bin").open("wb") as f:
        f.truncate(64 << 20)
    (tmp_path / "z.nsi").write_text(
        'SetCompressor bzip2\nOutFile "z.exe"\nInstallDir "$TEMP\\x"\nSection\n'
        'SetOutPath "$INSTDIR"\nFile "zeros.bin"\nSectionEnd\n'
    )
    subprocess.run([makensis, "-V1", "z.nsi"], check=True, cwd=tmp_path, capture_output=True)
    blob = (tmp_path / "z.exe").read_bytes()
    assert len(blob) < 200_000
    t = time.monotonic()
    with pytest.raises(ScanLimitExceeded) as exc:
        list(nsis.nsis_children(blob, ScanContext(Limits(max_file_size=8 << 20))))
    assert exc.value.which == "MaxFileSize"
    assert time.monotonic() - t < 10


def test_nsis_bzip2_damage_gives_a_prefix_never_an_exception(tmp_path: Path, clam: bytes) -> None:
    blob = _nsis(tmp_path, clam, "bzip2", True)
    fh = nsis.find_first_header(blob)
    assert fh is not None
    stream = blob[fh + 28 :]
    whole, ok = nsis_bzip2.decompress(stream, 1 << 30)
    assert ok
    assert clam in whole
    cut, ok = nsis_bzip2.decompress(stream[: len(stream) // 2], 1 << 30)
    assert not ok
    assert whole.startswith(cut)
    rng = random.Random(5)
    for _ in range(200):
        mutated = bytearray(stream)
        mutated[rng.randrange(1, len(mutated))] ^= 1 << rng.randrange(8)
        out, _ = nsis_bzip2.decompress(bytes(mutated), 1 << 24)
        assert len(out) <= (1 << 24) + 50_000_000


def test_truncated_nsis_is_broken_after_what_was_read(clam: bytes) -> None:
    blob = CLAM_NSIS.read_bytes()
    fh = nsis.find_first_header(blob)
    assert fh is not None
    for cut, header_read in ((len(blob) - 40, True), (len(blob) - 300, False), (fh + 100, False)):
        ctx = ScanContext()
        kids = [k.data for k in nsis.nsis_children(blob[:cut], ctx)]
        assert ("Broken", "NSIS") in ctx.events, cut
        assert clam not in kids
        assert any(b"clam" in k for k in kids) is header_read  # the install header


def test_nsis_bomb_stops_at_the_bounds(clam: bytes) -> None:
    """A non-solid block of raw deflate holding 512 MiB of zeros (about 500 KB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 24)
    raw = b"".join(comp.compress(chunk) for _ in range(32)) + comp.flush()
    stub = clam + bytes(-len(clam) % 512)
    header = zlib.compressobj(9, zlib.DEFLATED, -15)
    hdr = header.compress(b"h" * 100) + header.flush()
    body = (struct.pack("<I", 0x80000000 | len(hdr)) + hdr
            + struct.pack("<I", 0x80000000 | len(raw)) + raw)
    first = struct.pack("<II12sII", nsis._NO_CRC, 0xDEADBEEF, b"NullsoftInst", 100,
                        28 + len(body))
    blob = stub + first + body
    assert nsis.find_first_header(blob) == len(stub)
    t = time.monotonic()
    with pytest.raises(ScanLimitExceeded) as exc:
        list(nsis.nsis_children(blob, ScanContext()))
    assert exc.value.which in ("CompressionRatio", "MaxFileSize")
    assert time.monotonic() - t < 10


# --- AutoIt -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["clam.ea05.exe", "clam.ea06.exe"])
def test_autoit_script_and_files_are_found(engine: Engine, clam: bytes, sample: str) -> None:
    data = (TESTFILES / sample).read_bytes()
    ctx = ScanContext()
    kids = {k.name: k.data for k in autoit.autoit_children(data, ctx)}
    assert kids["clam.exe"] == clam
    assert b"FileInstall" in kids["script.au3"] or b"FILEINSTALL" in kids["script.au3"].upper()
    assert not ctx.events
    assert NAME in engine.scan_bytes(data, name=sample).names


@pytest.mark.needs_clamav
@pytest.mark.parametrize("sample", ["clam.ea05.exe", "clam.ea06.exe"])
def test_clamscan_finds_clam_exe_in_autoit_too(clam_code_db: Path, sample: str) -> None:
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed")
    res = subprocess.run([clamscan, "--no-summary", "-d", str(clam_code_db / "clam.hdb"),
                          str(TESTFILES / sample)], capture_output=True, text=True)
    assert f"{NAME}.UNOFFICIAL FOUND" in res.stdout


def test_damaged_autoit_is_broken_never_an_exception(clam: bytes) -> None:
    data = (TESTFILES / "clam.ea05.exe").read_bytes()
    at = data.find(autoit.MARKER)
    ctx = ScanContext()
    kids = list(autoit.autoit_children(data[: at + 300], ctx))
    assert ("Broken", "AutoIt") in ctx.events
    assert clam not in [k.data for k in kids]
    rng = random.Random(11)
    for _ in range(60):
        mutated = bytearray(data)
        mutated[rng.randrange(at + 24, len(data))] ^= 1 << rng.randrange(8)
        with contextlib.suppress(ScanLimitExceeded):
            list(autoit.autoit_children(bytes(mutated), ScanContext()))


def test_oversized_autoit_blob_is_unsupported_not_decoded() -> None:
    blob = b"MZ" + bytes(100) + autoit.MARKER + b"AU3!EA06" + bytes(autoit.MAX_BLOB)
    ctx = ScanContext()
    assert list(autoit.autoit_children(blob, ctx)) == []
    assert ctx.events == [("Unsupported", "AutoIt.Size")]
    # The marker alone, without "AU3!EA05/06" after it, is nothing.
    other = ScanContext()
    assert list(autoit.autoit_children(autoit.MARKER + b"AU3!XX99" + bytes(64), other)) == []
    assert not other.events


# --- fail closed --------------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "attr", "sample"), [
    (upx, "decompress", "clam-upx.exe"),
    (upx, "rebuild", "clam-upx.exe"),
    (nrv, "decompress", "clam-upx.exe"),
    (nsis, "_decode", "clam-nsis.exe"),
    (nsis, "_blocks", "clam-nsis.exe"),
    (autoit, "_entries", "clam.ea06.exe"),
    (embedded, "_extent", "clam-upx.exe"),
])
def test_a_failing_unpacker_never_gives_clean(
    engine: Engine, module: object, attr: str, sample: str
) -> None:
    """Any exception inside an unpacker is a finding or a scan error, never a clean verdict:
    besides the signatures clam.exe matches elsewhere, the report must say what failed."""
    calls: list[int] = []

    def broken(*args: object, **kwargs: object) -> object:
        calls.append(1)
        raise ValueError("injected")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, attr, broken)
        report = engine.scan_bytes((TESTFILES / sample).read_bytes(), name=sample)
    assert calls, f"{attr} was not reached by {sample}"
    names = set(report.names) - {NAME, "Clam.Code"}
    assert names or report.errors, report


def test_rebuild_without_the_stub_hint_still_finds_the_programs_header(
    packed: bytes, clam: bytes
) -> None:
    """With the stub's import pointer gone, the header is found by searching backwards; the
    embedded clam.exe's own header (one small section) is not mistaken for the program's."""
    info = pe.parse(packed)
    assert info is not None
    found = upx.find(packed, info)
    assert found is not None
    image, _ = nrv.decompress("2b", packed[found.src_start : found.src_end], found.out_limit)
    reference = upx.rebuild(image, packed, found)
    no_hint = bytearray(packed)
    stub = found.stub_offset
    at = no_hint.find(b"\x8d\xbe\x00\x40\x00\x00\x8b\x07", stub)
    assert at > 0
    no_hint[at : at + 2] = b"\x90\x90"
    assert upx.rebuild(image, bytes(no_hint), found) == reference
    # Without the program's header at all, the image gets a header of ours and keeps every byte.
    cut = image[: image.find(b"\x00\x00PE\x00\x00L\x01\x04\x00")]
    forged = upx.rebuild(cut, bytes(no_hint), found)
    assert cut in forged
    assert clam in forged


def test_upx_lzma_rebuilds_the_same_image(packed: bytes) -> None:
    """`upx --lzma` writes ((lc + lp) << 3 | pb, lp << 4 | lc) and raw LZMA without an end
    marker (UPX's compress_lzma.cpp); the image compressed that way by liblzma unpacks to the
    same rebuilt PE as the NRV2B original."""
    info = pe.parse(packed)
    assert info is not None
    found = upx.find(packed, info)
    assert found is not None
    image, _ = nrv.decompress("2b", packed[found.src_start : found.src_end], found.out_limit)
    reference = upx.rebuild(image, packed, found)
    lc, lp, pb = 3, 0, 2
    raw = lzma.compress(image, format=lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": 1 << 16}])
    data = packed + bytes((((lc + lp) << 3) | pb, (lp << 4) | lc)) + raw
    moved = dataclasses.replace(found, src_start=len(packed), src_end=len(data))
    again = upx.decompress(data, moved, ScanContext())
    assert again == image
    assert upx.rebuild(again, data, moved) == reference
    # A header that does not hold is not LZMA: nothing decodes, so nothing is made up.
    bad = packed + bytes((0xFF, 0xFF)) + raw
    assert upx.decompress(bad, dataclasses.replace(moved, src_end=len(bad)), ScanContext()) is None


# --- packers run in the emulator: tests/scan/test_emulated_packers.py -------------------------


@pytest.mark.parametrize("sample", ["clam.exe", "clam-upx.exe", "clam-nsis.exe", "clam-fsg.exe",
                                    "clam.ea05.exe", "clam_IScab_ext.exe"])
def test_no_packer_finding_on_what_we_take_apart(sample: str) -> None:
    ctx = ScanContext()
    list(pe_children((TESTFILES / sample).read_bytes(), ctx))
    assert not [e for e in ctx.events if e[1].startswith(("Packer", "UPX"))]
