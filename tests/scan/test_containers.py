"""Archives opened by scan.containers (libarchive, ARJ, ALZ), the zip methods of
scan.zipmethods and the embedded-archive search of scan.embedded, on real files made by real
tools at test time (7zz, zip, arj, gcab, genisoimage, xorriso, cpio, ar), ClamAV's own test
corpus (/usr/share/clamav-testfiles) and libarchive's corpus (tests/data/<format>/).

clamscan is the oracle wherever it opens the format: same database (clam.exe's MD5, built
here), same verdict names. Where we deliberately differ (we read more, or fail closed where
clamscan passes a file as clean) the case says so.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import io
import random
import shutil
import struct
import subprocess
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from helpers.archives import alz, newc_cpio, pack_z, stored_arj
from zerohour.scan import Engine, Limits, arj, decompose, filetype, load_database
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

CORPUS = Path("/usr/share/clamav-testfiles")
CLAM = CORPUS / "clam.exe"
DATA = Path(__file__).resolve().parent.parent / "data"
NAME = "ClamAV-Test-File"
FOUND = (NAME,)

pytestmark = pytest.mark.skipif(not CLAM.exists(), reason="clamav-testfiles not installed")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (scripts/system-deps)")
    return path


@pytest.fixture(scope="module")
def dbdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("db")
    clam = CLAM.read_bytes()
    (d / "clam.hdb").write_text(f"{hashlib.md5(clam).hexdigest()}:{len(clam)}:{NAME}\n")
    return d


@pytest.fixture(scope="module")
def engine(dbdir: Path) -> Engine:
    return Engine(load_database([dbdir]))


@pytest.fixture(scope="module")
def every(dbdir: Path) -> Engine:
    return Engine(load_database([dbdir]), allmatch=True)


def clamscan(path: Path, dbdir: Path) -> tuple[str, ...] | None:
    """clamscan's names for `path` (without `.UNOFFICIAL`), None when it is not installed."""
    exe = shutil.which("clamscan")
    if exe is None:
        return None
    out = subprocess.run([exe, "--no-summary", "--alert-encrypted", "-d", str(dbdir), str(path)],
                         capture_output=True, text=True, check=False).stdout
    names = [line.rsplit(": ", 1)[1].removesuffix(" FOUND").removesuffix(".UNOFFICIAL")
             for line in out.splitlines() if line.endswith(" FOUND")]
    return tuple(names)


def run(*args: str, cwd: Path, stdin: bytes | None = None) -> None:
    subprocess.run(list(args), cwd=cwd, check=True, capture_output=True, input=stdin)


def uudecoded(path: Path) -> bytes:
    lines = path.read_text().splitlines()
    body = lines[1 : lines.index("end")]
    return b"".join(binascii.a2b_uu(line) for line in body if line != "`")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """clam.exe, 200 kB of random bytes and a sparse folder with clam.exe for disk images."""
    shutil.copy(CLAM, tmp_path / "clam.exe")
    (tmp_path / "rnd.bin").write_bytes(random.Random(7).randbytes(200_000))
    (tmp_path / "iso").mkdir()
    shutil.copy(CLAM, tmp_path / "iso" / "clam.exe")
    shutil.copy(tmp_path / "rnd.bin", tmp_path / "iso" / "rnd.bin")
    return tmp_path


# --- real tools: ours and clamscan's verdicts ------------------------------------------------

Builder = Callable[[Path], Path]


def _7z(*opts: str) -> Builder:
    def build(d: Path) -> Path:
        run(tool("7zz"), "a", *opts, "x.7z", "clam.exe", "rnd.bin", cwd=d)
        return d / "x.7z"
    return build


def _zip7(method: str) -> Builder:
    def build(d: Path) -> Path:
        run(tool("7zz"), "a", "-tzip", f"-mm={method}", "x.zip", "clam.exe", "rnd.bin", cwd=d)
        return d / "x.zip"
    return build


def _arj(method: str) -> Builder:
    def build(d: Path) -> Path:
        run(tool("arj"), "a", f"-m{method}", "x.arj", "clam.exe", "rnd.bin", cwd=d)
        return d / "x.arj"
    return build


def _cab(*opts: str) -> Builder:
    def build(d: Path) -> Path:
        run(tool("gcab"), "-c", *opts, "x.cab", "clam.exe", "rnd.bin", cwd=d)
        return d / "x.cab"
    return build


def _iso(*opts: str, name: str = "x.iso") -> Builder:
    def build(d: Path) -> Path:
        run(tool("genisoimage"), "-quiet", *opts, "-o", name, "iso", cwd=d)
        return d / name
    return build


def _xorriso(d: Path) -> Path:
    run(tool("xorriso"), "-as", "mkisofs", "-quiet", "-J", "-o", "x.iso", "iso", cwd=d)
    return d / "x.iso"


def _cpio(fmt: str) -> Builder:
    def build(d: Path) -> Path:
        run(tool("cpio"), "-o", "-H", fmt, "-F", "x.cpio", cwd=d, stdin=b"clam.exe\nrnd.bin\n")
        return d / "x.cpio"
    return build


def _ar(d: Path) -> Path:
    run(tool("ar"), "rc", "x.a", "clam.exe", "rnd.bin", cwd=d)
    return d / "x.a"


def _corpus(name: str) -> Builder:
    return lambda d: CORPUS / name


#: name -> (builder, whether clamscan agrees; else why we differ)
REAL: dict[str, tuple[Builder, str]] = {
    "7z-lzma": (_7z("-m0=LZMA"), ""),
    "7z-lzma2": (_7z("-m0=LZMA2"), ""),
    "7z-bcj-lzma": (_7z("-m0=BCJ", "-m1=LZMA"), ""),
    "7z-ppmd": (_7z("-m0=PPMd"), ""),
    "7z-solid-multithread": (_7z("-ms=on", "-mmt=2"), ""),
    "zip-deflate64": (_zip7("Deflate64"), ""),
    "zip-ppmd": (_zip7("PPMd"), "clamscan 1.4 does not decode PPMd zip members"),
    "arj-m1": (_arj("1"), ""),
    "arj-m2": (_arj("2"), ""),
    "arj-m3": (_arj("3"), ""),
    "arj-m4": (_arj("4"), ""),
    "arj-m0": (_arj("0"), ""),
    "cab": (_cab(), ""),
    "cab-mszip": (_cab("-z"), ""),
    "iso": (_iso(), ""),
    "iso-joliet": (_iso("-J"), ""),
    "iso-udf-bridge": (_iso("-udf"), ""),
    "img-udf-bridge": (_iso("-udf", "-J", name="disk.img"), ""),
    "iso-xorriso": (_xorriso, ""),
    "cpio-bin": (_cpio("bin"), ""),
    "cpio-odc": (_cpio("odc"), ""),
    "cpio-newc": (_cpio("newc"), ""),
    "cpio-crc": (_cpio("crc"), ""),
    "ar": (_ar, "clamscan 1.4 does not open ar archives"),
    "clam.7z": (_corpus("clam.7z"), ""),
    "clam.arj": (_corpus("clam.arj"), ""),
    "clam.cab": (_corpus("clam.cab"), ""),
    "clam.bin-be.cpio": (_corpus("clam.bin-be.cpio"), ""),
    "clam.bin-le.cpio": (_corpus("clam.bin-le.cpio"), ""),
    "clam.odc.cpio": (_corpus("clam.odc.cpio"), ""),
    "clam.newc.cpio": (_corpus("clam.newc.cpio"), ""),
    "clam.impl.zip": (_corpus("clam.impl.zip"), ""),
    "clam.d64.zip": (_corpus("clam.d64.zip"), ""),
    "clam.sis": (_corpus("clam.sis"), ""),
}


@pytest.mark.parametrize("case", sorted(REAL))
def test_real_archive_is_opened_like_clamscan(case: str, src: Path, engine: Engine,
                                              dbdir: Path) -> None:
    build, differs = REAL[case]
    path = build(src)
    report = engine.scan_bytes(path.read_bytes(), path.name)
    assert report.names == FOUND, report
    assert not report.errors, report
    oracle = clamscan(path, dbdir)
    if oracle is not None:
        assert (oracle == FOUND) != bool(differs), (oracle, differs)


def test_members_become_layers_with_names_types_and_sizes(src: Path, every: Engine) -> None:
    data = _7z("-m0=LZMA2")(src).read_bytes()
    report = every.scan_bytes(data, "x.7z")
    layers = {(la.name, la.filetype, la.size, la.depth) for la in report.layers}
    assert ("clam.exe", FileType.PE, 544, 1) in layers
    assert ("rnd.bin", FileType.BINARY, 200_000, 1) in layers
    assert report.layers[0].filetype is FileType.SEVENZIP
    iso = _iso("-J")(src).read_bytes()
    assert [(la.name, la.size) for la in every.scan_bytes(iso).layers[1:]] == [
        ("clam.exe", 544), ("rnd.bin", 200_000)]


def _members(data: bytes) -> list[tuple[str | None, int | None, bool]]:
    ctx = ScanContext()
    try:
        for _child in decompose.children(data, filetype.detect(data), ctx):
            pass
    except Exception:  # encrypted archives raise after noting their entries
        pass
    return [(m.name, m.size, m.encrypted) for m in ctx.members]


def test_every_entry_is_noted_for_cdb(src: Path) -> None:
    assert _members(_7z()(src).read_bytes()) == [("clam.exe", 544, False),
                                                   ("rnd.bin", 200_000, False)]
    assert _members(_7z("-pinfected")(src).read_bytes()) == [("clam.exe", 544, True),
                                                               ("rnd.bin", 200_000, True)]
    assert ("clam.exe", 544, True) in _members(stored_arj({"clam.exe": CLAM.read_bytes()},
                                                          garbled=True))
    assert _members(_cab()(src).read_bytes())[0] == ("clam.exe", 544, False)
    members = _members(_zip7("Deflate64")(src).read_bytes())
    assert ("clam.exe", 544, False) in members


# --- encryption, unsupported methods, damage -------------------------------------------------


@pytest.mark.parametrize(("case", "opts"), [("data", ("-pinfected",)),
                                            ("headers", ("-pinfected", "-mhe=on"))])
def test_encrypted_7z(case: str, opts: tuple[str, ...], src: Path, engine: Engine,
                      dbdir: Path) -> None:
    path = _7z(*opts)(src)
    assert engine.scan_bytes(path.read_bytes()).names == ("Heuristics.Encrypted.7Zip",)
    oracle = clamscan(path, dbdir)
    assert oracle in (None, ("Heuristics.Encrypted.7Zip",))


def test_encrypted_arj_and_alz(src: Path, engine: Engine) -> None:
    run(tool("arj"), "a", "-gsecret", "x.arj", "clam.exe", cwd=src)
    # clamscan passes a garbled ARJ as clean, even with --alert-encrypted: we do not.
    assert engine.scan_bytes((src / "x.arj").read_bytes()).names == ("Heuristics.Encrypted.ARJ",)
    blob = alz({"clam.exe": CLAM.read_bytes()}, encrypted=True)
    assert engine.scan_bytes(blob).names == ("Heuristics.Encrypted.ALZ",)


def test_encrypted_member_does_not_hide_a_readable_sibling(every: Engine) -> None:
    blob = stored_arj({"a.exe": b"secret", "clam.exe": CLAM.read_bytes()}, garbled={"a.exe"})
    assert set(every.scan_bytes(blob).names) == {NAME, "Heuristics.Encrypted.ARJ"}


def test_7z_codec_libarchive_lacks_is_unsupported(src: Path, engine: Engine) -> None:
    for codec, label in (("Deflate64", "Deflate64"), ("ARM64", "ARM64")):
        opts = ("-m0=Deflate64",) if codec == "Deflate64" else ("-m0=ARM64", "-m1=LZMA2")
        run(tool("7zz"), "a", *opts, f"{codec}.7z", "rnd.bin", cwd=src)
        report = engine.scan_bytes((src / f"{codec}.7z").read_bytes())
        assert report.names == (f"Heuristics.Unsupported.7z.{label}",), report


def _cut(path: Path, keep: float) -> bytes:
    data = path.read_bytes()
    return data[: int(len(data) * keep)]


@pytest.mark.parametrize(("case", "fmt", "keep"), [
    ("7z-lzma2", "7z", 0.6), ("cab-mszip", "CAB", 0.6), ("arj-m1", "ARJ", 0.6),
    ("cpio-newc", "CPIO", 0.6), ("ar", "AR", 0.6),
    ("iso", "ISO", 0.3),  # an image ends in padding: cut inside rnd.bin's sectors
])
def test_truncated_archive_is_broken_after_what_decoded(case: str, fmt: str, keep: float,
                                                       src: Path, every: Engine) -> None:
    path = REAL[case][0](src)
    names = set(every.scan_bytes(_cut(path, keep)).names)
    assert f"Heuristics.Broken.{fmt}" in names, names
    if fmt in ("CPIO", "AR", "CAB", "ARJ", "ISO"):  # clam.exe comes first and is whole
        assert NAME in names, names


def test_sis_damage_and_symbian9(engine: Engine) -> None:
    sis = (CORPUS / "clam.sis").read_bytes()
    assert filetype.detect(sis) is FileType.SIS
    assert engine.scan_bytes(sis[:-40]).names == ("Heuristics.Broken.SIS",)
    sisx = b"\x7a\x1a\x20\x10" + random.Random(4).randbytes(200)
    assert filetype.detect(sisx) is FileType.SIS
    assert engine.scan_bytes(sisx).names == ("Heuristics.Unsupported.SIS.V9",)


def test_damaged_headers_and_formats_libarchive_does_not_read(engine: Engine) -> None:
    amiga = uudecoded(DATA / "lzh" / "test_read_format_lha_amiga_script.lha.uu")
    assert filetype.detect(amiga) is FileType.LZH
    assert engine.scan_bytes(amiga).names == ("Heuristics.Broken.LZH",)
    udf_only = bytearray(0x9000)
    udf_only[0x8001:0x8006] = b"BEA01"
    udf_only[0x8801:0x8806] = b"NSR02"
    assert engine.scan_bytes(bytes(udf_only)).names == ("Heuristics.Broken.ISO.UDF",)
    garbage_rar = b"Rar!\x1a\x07\x01\x00" + random.Random(1).randbytes(300)
    assert engine.scan_bytes(garbage_rar).names == ("Heuristics.Broken.RAR",)


def _libarchive_7z(files: dict[str, bytes]) -> bytes:
    """A 7z written by libarchive (no 7zz needed): LZMA data, a plain kHeader."""
    import libarchive

    out = bytearray()

    def write(chunk: bytes) -> int:
        out.extend(chunk)
        return len(chunk)

    with libarchive.custom_writer(write, "7zip") as archive:
        for name, content in files.items():
            archive.add_file_from_memory(name, len(content), content)
    return bytes(out)


def _zeroed(seven: bytes) -> bytes:
    """The start header (CRC, next-header offset, size, CRC) all zeros, as an unfinished
    7-Zip write leaves it: libarchive reads an empty archive, 7-Zip recovers the header."""
    return seven[:8] + bytes(24) + seven[32:]


def test_7z_with_a_zeroed_start_header_is_recovered_and_broken(every: Engine) -> None:
    """R32: next-header size 0 made libarchive read an empty archive (clean); 7-Zip finds the
    header from the end of the file and extracts clam.exe (`7zz x` exits 0)."""
    zeroed = _zeroed(_libarchive_7z({"note.txt": b"hello\n" * 40, "clam.exe": CLAM.read_bytes()}))
    assert filetype.detect(zeroed) is FileType.SEVENZIP
    junk = b"\x00\x01JUNKDATA" * 50
    for label, blob in {"bare": zeroed, "behind junk": junk + zeroed}.items():
        report = every.scan_bytes(blob)
        assert set(report.names) == {NAME, "Heuristics.Broken.7z"}, (label, report)
        assert not report.errors, (label, report)


def test_7z_start_header_of_size_0_with_content_behind_it_is_broken(every: Engine) -> None:
    """A next header of size 0 that is not an empty archive: content follows the 32 bytes."""
    seven = _libarchive_7z({"clam.exe": CLAM.read_bytes()})
    start = bytearray(seven[:32])
    start[12:32] = bytes(20)
    start[8:12] = zlib.crc32(start[12:32]).to_bytes(4, "little")  # a valid empty start header
    cases = {
        "size 0, valid CRC": bytes(start) + seven[32:],
        "zeroed, no header at the end": _zeroed(seven) + b"\x01",  # 7-Zip wants a final kEnd
        "zeroed, header cut": _zeroed(seven)[:-30],
    }
    for label, blob in cases.items():
        report = every.scan_bytes(blob)
        assert "Heuristics.Broken.7z" in report.names, (label, report)


def test_valid_and_empty_7z_stay_clean(every: Engine) -> None:
    harmless = _libarchive_7z({"note.txt": b"hello\n" * 40})
    assert filetype.detect(harmless) is FileType.SEVENZIP
    empty = _libarchive_7z({})
    assert len(empty) == 32
    # 7zz's empty archive (`7zz a x.7z` of nothing): version 0.4, all fields 0, a valid CRC.
    empty_7zz = bytes.fromhex("377abcaf271c00048d9bd50f") + bytes(20)
    for label, blob in {"harmless": harmless, "empty": empty, "empty 7zz": empty_7zz,
                        "empty padded with zeros": empty + bytes(100),
                        "zeroed start header, zeros behind it": _zeroed(empty) + bytes(64),
                        "harmless behind junk": b"JUNK" * 100 + harmless,
                        "zeroed stray signature": b"JUNK" * 100 + _zeroed(empty) + b"JUNK" * 9,
                        }.items():
        report = every.scan_bytes(blob)
        assert not report.names, (label, report)
        assert not report.errors, (label, report)
    report = every.scan_bytes(_libarchive_7z({"clam.exe": CLAM.read_bytes()}))
    assert report.names == FOUND, report


def _udf_only(image: bytes) -> bytes:
    """A genisoimage -udf bridge image with its ISO 9660 descriptors removed: what a UDF-only
    authoring tool writes (BEA01, NSR02, TEA01 from sector 16)."""
    sectors = {image[i * 2048 + 1 : i * 2048 + 6]: i for i in range(16, 24)}
    out = bytearray(image)
    out[16 * 2048 : 24 * 2048] = bytes(8 * 2048)
    for k, tag in enumerate((b"BEA01", b"NSR02", b"TEA01")):
        at = sectors[tag] * 2048
        out[(16 + k) * 2048 : (17 + k) * 2048] = image[at : at + 2048]
    return bytes(out)


def test_udf_tree_is_read_too(src: Path, every: Engine, dbdir: Path) -> None:
    bridge = _iso("-udf")(src).read_bytes()
    report = every.scan_bytes(bridge)
    assert report.names == FOUND
    udf_only = _udf_only(bridge)
    assert filetype.detect(udf_only) is FileType.ISO
    report = every.scan_bytes(udf_only)
    assert report.names == FOUND, report
    assert {la.name for la in report.layers[1:]} == {"clam.exe", "rnd.bin"}
    # clamscan 1.4 passes a UDF-only image as clean; we read it (Windows mounts it).
    cut = set(every.scan_bytes(udf_only[: 300 * 2048]).names)  # inside rnd.bin's extent
    assert cut == {NAME, "Heuristics.Broken.ISO.UDF"}, cut


# --- libarchive's corpus: RAR 4, RAR 5, xar, LZH ----------------------------------------------


def test_rar4_and_rar5_from_libarchives_corpus(every: Engine) -> None:
    rar4 = uudecoded(DATA / "rar" / "test_read_format_rar_unicode.rar.uu")
    report = every.scan_bytes(rar4)
    assert not report.names, report
    assert not report.errors, report
    names = {(la.name, la.size) for la in report.layers[1:]}
    assert ("表だよ/漢字長いファイル名long-filename-in-漢字.txt", 5) in names
    rar5 = uudecoded(DATA / "rar" / "test_read_format_rar5_zip_in_rar.rar.uu")
    report = every.scan_bytes(rar5, "z.rar")
    assert not report.names, report
    assert not report.errors, report
    paths = {la.path: la for la in report.layers}
    assert paths["z.rar/payload/inner.zip"].filetype is FileType.ZIP
    assert paths["z.rar/payload/inner.zip/THIS_IS_INSIDE_THE_ZIP.txt"].depth == 2
    assert paths["z.rar/payload/real_after.txt"].size == 21


def test_xar_and_lzh_from_libarchives_corpus(every: Engine) -> None:
    xar = uudecoded(DATA / "xar" / "test_read_format_xar_empty_xattr.xar.uu")
    assert filetype.detect(xar) is FileType.XAR
    report = every.scan_bytes(xar)
    assert [(la.name, la.size) for la in report.layers[1:]] == [("f", 1)]
    assert not report.names
    assert not report.errors
    lzh = uudecoded(DATA / "lzh" / "test_read_format_lha_filename_utf16.lzh.uu")
    report = every.scan_bytes(lzh)
    assert [(la.name, la.size) for la in report.layers[1:]] == [("ÜÖÄüöä/äöüÄÖÜ.txt", 12)]
    assert not report.names
    assert not report.errors


def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_arj_methods_1_to_3_are_lha_lh7(src: Path, engine: Engine) -> None:
    """The ARJ reader's premise, checked against another decoder: ARJ method 1 data wrapped
    as an LHA -lh7- entry is a valid LZH file for lhasa (and for our LZH path)."""
    run(tool("arj"), "a", "-m1", "x.arj", "clam.exe", cwd=src)
    data = (src / "x.arj").read_bytes()
    size, _main = arj._header_at(data, 0)
    _size, hdr = arj._header_at(data, 4 + size + 4 + 2)
    assert hdr is not None
    assert hdr.method == 1
    clam = CLAM.read_bytes()
    lzh = arj.lha_wrap(data[hdr.data_at : hdr.end], hdr.orig_size, crc16=_crc16(clam),
                       name=b"clam.exe")
    (src / "x.lzh").write_bytes(lzh)
    if shutil.which("lha"):
        run("lha", "t", "x.lzh", cwd=src)
    assert engine.scan_bytes(lzh).names == FOUND


# --- ALZ (no tool writes it: built by the format's layout, read by clamscan too) ----------------


@pytest.mark.parametrize("method", [0, 2])
def test_alz(method: int, tmp_path: Path, engine: Engine, dbdir: Path) -> None:
    blob = alz({"readme.txt": b"hello", "clam.exe": CLAM.read_bytes()}, method=method)
    assert filetype.detect(blob) is FileType.ALZ
    assert engine.scan_bytes(blob).names == FOUND
    (tmp_path / "x.alz").write_bytes(blob)
    assert clamscan(tmp_path / "x.alz", dbdir) in (None, FOUND)
    assert engine.scan_bytes(blob[:60]).names == ("Heuristics.Broken.ALZ",)


def test_alz_bzip2_variant_is_unsupported(engine: Engine) -> None:
    blob = alz({"clam.exe": CLAM.read_bytes()}, method=0)
    at = blob.index(b"BLZ\x01") + 13
    blob = blob[:at] + b"\x01" + blob[at + 1 :]  # method byte: 1 (ALZip's bzip2 variant)
    assert engine.scan_bytes(blob).names == ("Heuristics.Unsupported.ALZ.BZip2",)


# --- zip: split archives, zstd ---------------------------------------------------------------


def test_split_zip_segments(src: Path, every: Engine) -> None:
    run(tool("zip"), "-q", "-s", "64k", "x.zip", "clam.exe", "rnd.bin", cwd=src)
    last = every.scan_bytes((src / "x.zip").read_bytes())
    assert last.names == ("Heuristics.Unsupported.Zip.Split",), last
    first = every.scan_bytes((src / "x.z01").read_bytes())  # clam.exe is whole in it
    assert set(first.names) == {NAME, "Heuristics.Unsupported.Zip.Split"}, first


def _zip_with(method: int, name: str, content: bytes, packed: bytes) -> bytes:
    crc = zlib.crc32(content)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 63, 0, method, 0, 0, crc, len(packed),
                        len(content), len(name), 0) + name.encode()
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 63, 63, 0, method, 0, 0, crc,
                          len(packed), len(content), len(name), 0, 0, 0, 0, 0, 0) + name.encode()
    body = local + packed
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + end


def test_zstd_zip_member(engine: Engine) -> None:
    clam = CLAM.read_bytes()
    blob = _zip_with(93, "clam.exe", clam, zstandard.ZstdCompressor().compress(clam))
    assert zipfile.ZipFile(io.BytesIO(blob)).infolist()[0].compress_type == 93
    assert engine.scan_bytes(blob).names == FOUND


def test_zip_entries_outside_the_directory_are_noted_too() -> None:
    """Members only a local header lists (what stream extractors see) are .cdb entries too."""
    visible = io.BytesIO()
    with zipfile.ZipFile(visible, "w") as z:
        z.writestr("a.txt", "hello")
    hidden = io.BytesIO()
    with zipfile.ZipFile(hidden, "w") as z:
        z.writestr("hidden.exe", b"x" * 100)
    local_only = hidden.getvalue()[: hidden.getvalue().find(b"PK\x01\x02")]
    assert _members(local_only + visible.getvalue()) == [("a.txt", 5, False),
                                                         ("hidden.exe", 100, False)]


# --- bombs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gigabyte_7z(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A solid 7z: 1 GiB of zeros (a sparse file), then clam.exe, in one LZMA2 stream."""
    d = tmp_path_factory.mktemp("bomb")
    with open(d / "aa.bin", "wb") as f:
        f.truncate(1 << 30)
    shutil.copy(CLAM, d / "zz.exe")
    run(tool("7zz"), "a", "-mx=1", "-ms=on", "x.7z", "aa.bin", "zz.exe", cwd=d)
    return (d / "x.7z").read_bytes()


def test_7z_gigabyte_of_zeros(gigabyte_7z: bytes, dbdir: Path) -> None:
    db = load_database([dbdir])
    assert len(gigabyte_7z) < 1 << 20
    started = time.monotonic()
    # The directory says 1 GiB: over max_file_size before a byte is decoded.
    assert Engine(db).scan_bytes(gigabyte_7z).names == ("Heuristics.Limits.Exceeded.MaxFileSize",)
    # With room for it, the ratio bound stops the decoding after a few MiB.
    roomy = Engine(db, Limits(max_file_size=2 << 30, max_scan_size=4 << 30))
    assert roomy.scan_bytes(gigabyte_7z).names == ("Heuristics.Limits.Exceeded.CompressionRatio",)
    assert time.monotonic() - started < 15


def test_skipped_solid_member_is_drained_interruptibly(gigabyte_7z: bytes, dbdir: Path) -> None:
    """Alerts off: the 1 GiB member is skipped (ClamAV's rule) but never by libarchive's own
    skip, which would decode it in one uninterruptible call: block reads keep the deadline."""
    db = load_database([dbdir])
    quiet = Engine(db, Limits(alert_exceeds_max=False, max_scan_time=1.0))
    started = time.monotonic()
    report = quiet.scan_bytes(gigabyte_7z)
    assert time.monotonic() - started < 3.0
    assert not report.names


def test_many_members_hit_max_files(engine: Engine) -> None:
    empty = newc_cpio({f"f{i}": b"" for i in range(10_050)})  # no content, only entries
    started = time.monotonic()
    assert engine.scan_bytes(empty).names == ("Heuristics.Limits.Exceeded.MaxFiles",)
    assert time.monotonic() - started < 10


def test_nesting_hits_max_recursion(engine: Engine) -> None:
    blob = CLAM.read_bytes()
    for i in range(20):
        blob = newc_cpio({f"level{i}": blob}) if i % 2 else stored_arj({f"level{i}": blob})
    assert engine.scan_bytes(blob).names == ("Heuristics.Limits.Exceeded.MaxRecursion",)
    shallow = CLAM.read_bytes()
    for i in range(6):
        shallow = newc_cpio({f"level{i}": shallow}) if i % 2 else stored_arj({f"l{i}": shallow})
    assert engine.scan_bytes(shallow).names == FOUND


# --- embedded archives and executables ----------------------------------------------------------


def test_archives_behind_other_bytes_are_opened(src: Path, engine: Engine, dbdir: Path) -> None:
    junk = random.Random(3).randbytes(5000)
    stub = bytearray(CLAM.read_bytes())
    stub[-1] ^= 0xFF  # a PE stub that is not clam.exe
    cases = {
        "junk+7z": junk + _7z()(src).read_bytes(),
        "pe+7z (7-Zip SFX layout)": bytes(stub) + _7z("-m0=LZMA")(src).read_bytes(),
        "pe+cab": bytes(stub) + _cab("-z")(src).read_bytes(),
        "junk+arj": junk + _arj("1")(src).read_bytes(),
        "junk+pe": junk + CLAM.read_bytes(),
        "rar5-corpus-behind-junk": junk + uudecoded(
            DATA / "rar" / "test_read_format_rar5_zip_in_rar.rar.uu"),
    }
    for label, blob in cases.items():
        report = engine.scan_bytes(blob)
        if label.startswith("rar5"):
            assert not report.names, report
            assert not report.errors, report
            assert any(la.name == "payload/real_after.txt" for la in report.layers), label
            continue
        assert report.names == FOUND, (label, report)
        path = src / "blob.bin"
        path.write_bytes(blob)
        # clamscan looks for embedded PEs only inside some types (not in unknown data): we do.
        assert clamscan(path, dbdir) in ((None, FOUND, ()) if label[-2:] == "pe" else
                                         (None, FOUND)), label
    # A zip self-extractor: stub + zip with its offsets adjusted by `zip -A`, as Info-ZIP's
    # SFX are made (7-Zip's own -sfx needs an SFX module Debian does not ship).
    run(tool("zip"), "-q", "inner.zip", "clam.exe", cwd=src)
    (src / "sfx.exe").write_bytes(bytes(stub) + (src / "inner.zip").read_bytes())
    run(tool("zip"), "-q", "-A", "sfx.exe", cwd=src)
    assert engine.scan_bytes((src / "sfx.exe").read_bytes()).names == FOUND
    assert clamscan(src / "sfx.exe", dbdir) in (None, FOUND)
    enc = junk + _7z("-pinfected", "-mhe=on")(src).read_bytes()
    assert engine.scan_bytes(enc).names == ("Heuristics.Encrypted.7Zip",)


def test_stray_magics_in_random_binaries_are_ignored(every: Engine) -> None:
    rng = random.Random(11)
    magics = [b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00", b"7z\xbc\xaf\x27\x1c",
              b"MSCF\x00\x00\x00\x00", b"\x60\xea", b"MZ", b"ALZ\x01"]
    for seed in range(40):
        parts = [rng.randbytes(rng.randrange(1, 3000))]
        for magic in rng.sample(magics, 4):
            parts += [magic, rng.randbytes(rng.randrange(0, 3000))]
        blob = b"\x00" + b"".join(parts)
        # RAR 4 main header flag 0x80 (encrypted headers) without a valid CRC: still nothing.
        blob += b"Rar!\x1a\x07\x00" + struct.pack("<HBHH", 0, 0x73, 0x80, 13) + bytes(6)
        blob += b"MZ" + bytes(58) + struct.pack("<I", 64) + b"PE\x00\x00" + rng.randbytes(200)
        report = every.scan_bytes(blob)
        assert not report.names, (seed, report)
        assert not report.errors, (seed, report)


@pytest.mark.parametrize("blob", [
    b"070701 is my phone number\nand this is only text\n",
    b"070707 and more digits in a text\n",
    b"ab-lh5- notes about compression\nmore text\n",
    b"\x60\xea\x10\x00" + random.Random(5).randbytes(3000),
    b"\xc7\x71" + random.Random(6).randbytes(3000),
    b"\x71\xc7" + random.Random(8).randbytes(3000),
])
def test_weak_magics_that_are_not_archives_stay_quiet(blob: bytes, every: Engine) -> None:
    """cpio, LZH and ARJ are sniffed from 2-6 bytes: a layer no reader recognises and whose
    header does not hold together is not that archive (no Broken finding on plain text)."""
    assert filetype.detect(blob) in (FileType.CPIO, FileType.LZH, FileType.ARJ)
    report = every.scan_bytes(blob)
    assert not report.names, report
    assert not report.errors, report


def test_installshield_strings_in_ordinary_executables_are_ignored(every: Engine) -> None:
    rng = random.Random(21)
    stub = bytearray(CLAM.read_bytes())
    stub[-1] ^= 0xFF
    for seed in range(10):
        tail = b"".join(
            rng.choice([b"InstallShield\x00", b"InstallShield\x00\x03\x00\x00\x00\x00\x00",
                        b"name\x00Disk1\\x.cab\x000.0.0.0\x00999999\x00", b"ISc("])
            + rng.randbytes(rng.randrange(0, 700)) for _ in range(12))
        report = every.scan_bytes(bytes(stub) + tail, f"setup{seed}.exe")
        assert not report.names, (seed, report)
        assert not report.errors, (seed, report)


@pytest.mark.parametrize("compress", ["--gzip", "--bzip2", "--xz", "--zstd", "--nocomp"])
def test_a_makeself_installer_is_opened(engine: Engine, tmp_path: Path, compress: str) -> None:
    """A shell script with a (compressed) tarball behind it: the installer unpacks clam.exe
    itself (the oracle), and the tarball is found past the script (round 9)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CLAM, src / "clam.exe")
    run(tool("makeself"), "--quiet", compress, str(src), "setup.run", "label", "./clam.exe",
        cwd=tmp_path)
    run("sh", "setup.run", "--noexec", "--quiet", "--target", str(tmp_path / "x"), cwd=tmp_path)
    assert (tmp_path / "x" / "clam.exe").read_bytes() == CLAM.read_bytes()
    assert engine.scan_bytes((tmp_path / "setup.run").read_bytes(), "setup.run").names == FOUND


@pytest.mark.parametrize("glued", ["tar", "tar.gz", "tar.bz2", "xz", "zst"])
@pytest.mark.parametrize("front", ["elf", "junk"])
def test_a_tarball_or_stream_behind_other_bytes_is_opened(engine: Engine, tmp_path: Path,
                                                          glued: str, front: str) -> None:
    """An ELF (or junk) with a tarball or a compressed file glued on: 7-Zip opens it (the
    oracle) and so do we."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CLAM, src / "clam.exe")
    if glued.startswith("tar"):
        flag = {"tar": "", "tar.gz": "z", "tar.bz2": "j"}[glued]
        run("tar", f"-c{flag}f", str(tmp_path / "tail"), "-C", str(src), "clam.exe", cwd=tmp_path)
    else:
        out = subprocess.run([tool("xz" if glued == "xz" else "zstd"), "-q", "-c",
                              str(src / "clam.exe")], capture_output=True, check=True).stdout
        (tmp_path / "tail").write_bytes(out)
    head = Path("/bin/true").read_bytes() if front == "elf" else random.Random(3).randbytes(700)
    blob = head + (tmp_path / "tail").read_bytes()
    (tmp_path / "blob.bin").write_bytes(blob)
    if glued != "zst":  # 7-Zip's zstd codec is not in every build
        listing = subprocess.run([tool("7zz"), "l", str(tmp_path / "blob.bin")],
                                 capture_output=True, text=True, check=False).stdout
        assert "1 files" in listing, listing
    assert engine.scan_bytes(blob, "blob.bin").names == FOUND


def test_stray_stream_and_tar_magics_are_ignored(every: Engine) -> None:
    """gzip, bzip2, xz, zstd and tar magic numbers that start nothing: no finding, no error
    (plain text about tar, random binaries)."""
    rng = random.Random(12)
    magics = [b"\x1f\x8b\x08\x00", b"BZh91AY&SY", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd",
              b"ustar\x0000", b"ustar  \x00", b"hsqs", b"MSWIM\x00\x00\x00"]
    for seed in range(40):
        parts = [rng.randbytes(rng.randrange(1, 3000))]
        for magic in rng.sample(magics, 4):
            parts += [magic, rng.randbytes(rng.randrange(0, 3000))]
        report = every.scan_bytes(b"\x00" + b"".join(parts))
        assert not report.names, (seed, report)
        assert not report.errors, (seed, report)
    text = b"Use tar -czf (ustar format) or BZh9 with xz; the hsqs superblock, MSWIM.\n" * 40
    assert not every.scan_bytes(text, "notes.txt").names


@pytest.mark.parametrize("kind", ["squashfs", "wim"])
def test_a_container_we_cannot_open_behind_an_elf_is_unsupported(engine: Engine,
                                                                  tmp_path: Path,
                                                                  kind: str) -> None:
    """An AppImage-like ELF with a squashfs (or a WIM) behind it: 7-Zip opens those, we do
    not yet, so it is `Heuristics.Unsupported`, never clean."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CLAM, src / "clam.exe")
    if kind == "squashfs":
        run(tool("mksquashfs"), str(src), "img", "-quiet", "-noappend", cwd=tmp_path)
    else:
        run(tool("7zz"), "a", "-twim", "img", str(src / "clam.exe"), cwd=tmp_path)
        (tmp_path / "img.wim").rename(tmp_path / "img")
    blob = Path("/bin/true").read_bytes() + (tmp_path / "img").read_bytes()
    assert engine.scan_bytes(blob, "app").names == (f"Heuristics.Unsupported.{kind.upper()}",)


def test_embedded_search_is_bounded(engine: Engine) -> None:
    blob = b"\x00" + (b"7z\xbc\xaf\x27\x1c" + bytes(40) + b"MSCF\x00\x00\x00\x00" + b"MZ"
                      + bytes(80)) * 20_000
    started = time.monotonic()
    report = engine.scan_bytes(blob)
    assert not report.names
    assert not report.errors
    assert time.monotonic() - started < 10


# --- round 31: the embedded search's caps end in a finding, never in silence ------------------

MAX_FILES_FOUND = ("Heuristics.Limits.Exceeded.MaxFiles",)


def _junk(seed: int, n: int = 200) -> bytes:
    return b"\x00\x01\x02\x03BIN" + random.Random(seed).randbytes(n)


def test_stray_gzip_magics_do_not_hide_a_gzip_behind_them(engine: Engine) -> None:
    """33 gzip magic numbers whose reserved flags are set (no gzip reader takes them), then a
    real gzip of clam.exe: 7-Zip finds it. Strays that fail the header check cost nothing and
    do not use up the candidates (R31-F8: only the first 32 offsets were looked at)."""
    rng = random.Random(5)
    fakes = b"".join(b"\x1f\x8b\x08\xe0" + rng.randbytes(20) for _ in range(33))
    blob = _junk(5) + fakes + gzip.compress(CLAM.read_bytes(), mtime=0)
    assert engine.scan_bytes(blob, "data.bin").names == FOUND


def test_plausible_decoys_past_the_cap_are_a_limit(engine: Engine) -> None:
    """33 gzip headers that hold together but decode nothing (an invalid deflate block), then
    the real gzip: past `_MAX_CANDIDATES` the layer is MaxFiles, not clean."""
    decoy = b"\x1f\x8b\x08\x00" + bytes(4) + b"\x00\x03" + b"\x07" + bytes(13)
    blob = _junk(6) + decoy * 33 + gzip.compress(CLAM.read_bytes(), mtime=0)
    assert engine.scan_bytes(blob, "data.bin").names == MAX_FILES_FOUND
    # a few decoys are no limit: the gzip behind them is found
    assert engine.scan_bytes(_junk(6) + decoy * 5 + gzip.compress(CLAM.read_bytes(), mtime=0),
                             "data.bin").names == FOUND


def test_more_embedded_archives_than_the_cap_are_a_limit(engine: Engine) -> None:
    """16 gzips of clean text behind junk, each followed by junk, then a 17th: it is not
    opened (`_MAX_FOUND`), so the layer is MaxFiles rather than clean."""
    rng = random.Random(7)
    parts = [gzip.compress(b"clean text number %d\n" % i * 10, mtime=i) + b"JUNK"
             + rng.randbytes(16) for i in range(16)]
    blob = _junk(7) + b"".join(parts) + gzip.compress(CLAM.read_bytes(), mtime=0)
    assert engine.scan_bytes(blob, "data.bin").names == MAX_FILES_FOUND


def _zip_of_clam(comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("readme.com", CLAM.read_bytes())
        zf.comment = comment
    return buf.getvalue()


@pytest.mark.parametrize("where", ["after", "in-comment"])
def test_stray_end_records_do_not_hide_a_zip_behind_junk(engine: Engine, where: str) -> None:
    """A zip behind junk with 9 stray end-of-central-directory records after it, or inside
    its own comment (unzip and 7-Zip open both): each stray is checked for a central
    directory where it points and skipped (R31-F9: 8 tries from the end, then nothing)."""
    rng = random.Random(9)
    strays = b"".join(b"PK\x05\x06" + rng.randbytes(18) for _ in range(9))
    tail = _zip_of_clam() + strays if where == "after" else _zip_of_clam(strays)
    assert engine.scan_bytes(_junk(9) + tail, "data.bin").names == FOUND


def test_end_records_that_open_no_zip_past_the_cap_are_a_limit(engine: Engine) -> None:
    """9 end records after the zip, each behind a central-directory signature (so it is
    tried) that opens nothing: past `_MAX_EOCD_TRIES` the layer is MaxFiles, not clean."""
    decoy = (b"PK\x01\x02" + bytes(4) + b"PK\x05\x06" + bytes(8)
             + (8).to_bytes(4, "little") + bytes(6))
    blob = _junk(10) + _zip_of_clam() + decoy * 9
    assert engine.scan_bytes(blob, "data.bin").names == MAX_FILES_FOUND
    assert engine.scan_bytes(_junk(10) + _zip_of_clam() + decoy * 3,
                             "data.bin").names == FOUND


@pytest.mark.parametrize("name", ["clam_IScab_int.exe", "clam_IScab_ext.exe",
                                  "clam_ISmsi_int.exe", "clam_ISmsi_ext.exe"])
def test_installshield_setups_like_clamscan(name: str, every: Engine, dbdir: Path) -> None:
    """InstallShield setup.exe: clam.exe is a plain overlay record (IScab_ext), a compressed
    file of the `ISc(` cabinet data1.hdr + data1.cab in the overlay (IScab_int), an obfuscated
    file after an `InstallShield` header (ISmsi_ext), or inside the MSI stored that way
    (ISmsi_int: MSI, a CAB stream, clam.exe)."""
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} not in this clamav-testfiles")
    report = every.scan_bytes(path.read_bytes(), "setup.exe")
    # (--allmatch: clam.exe may also be found a second time, at a path of its own, as a PE
    # in the overlay hashed at its own size: `pe.prefix_span`, round 20)
    assert set(report.names) == set(FOUND), report
    assert not report.errors, report
    assert clamscan(path, dbdir) in (None, FOUND)
    hits = [la for la in report.layers if la.md5 == hashlib.md5(CLAM.read_bytes()).hexdigest()]
    assert hits
    if name == "clam_IScab_int.exe":  # from the cabinet, decompressed
        assert any(la.name == "clam.exe" and la.path.endswith("/clam.exe") for la in hits)
        names = {la.name for la in report.layers}
        assert {"Disk1\\data1.hdr", "Disk1\\data1.cab", "setup.inx"} <= names


@pytest.mark.parametrize("kind", ["lzip", "lzop"])
def test_lzip_or_lzop_behind_an_elf_is_unsupported(engine: Engine, tmp_path: Path,
                                                   kind: str) -> None:
    """Round 10: `tail -c +N tool.bin | lzip -dc` rebuilt clam.exe; we do not decode lzip or
    lzop, so behind other bytes they are `Heuristics.Unsupported` as at offset 0."""
    packed = subprocess.run([tool(kind), "-c", str(CLAM)], capture_output=True,
                            check=True).stdout
    blob = Path("/bin/true").read_bytes() + packed
    assert engine.scan_bytes(blob, "tool.bin").names == (f"Heuristics.Unsupported.{kind.upper()}",)


def test_a_compress_member_after_a_gzip_member(engine: Engine, tmp_path: Path) -> None:
    """`gzip -d` decodes `.Z` (and pack, LZH) members after a gzip member: an empty gzip
    member, then clam.exe compressed (round 10). Decoded since round 20 (`scan.lzw`)."""
    empty = subprocess.run(["gzip", "-c"], input=b"", capture_output=True, check=True).stdout
    z = subprocess.run([tool("compress"), "-c"], input=CLAM.read_bytes(), capture_output=True,
                       check=True).stdout
    blob = empty + z
    out = subprocess.run(["gzip", "-dc"], input=blob, capture_output=True, check=False).stdout
    assert out == CLAM.read_bytes()
    assert engine.scan_bytes(blob, "x.gz").names == (NAME,)
    pack_blob = empty + pack_z(CLAM.read_bytes())
    assert subprocess.run(["gzip", "-dc"], input=pack_blob, capture_output=True,
                          check=False).stdout == CLAM.read_bytes()
    assert engine.scan_bytes(pack_blob, "x.gz").names == (NAME,)


def test_gzip_magic_with_another_method_is_no_gzip(engine: Engine, tmp_path: Path) -> None:
    """Random data that starts with gzip's magic but names a method other than deflate
    (round 18: one of 399 random attachments was refused as `Heuristics.Broken.GZip`):
    gzip, zlib and 7-Zip decode nothing from it, so it is scanned as the binary it is; with
    deflate named, a stream that does not decode stays broken (fail closed)."""
    rng = random.Random(18)
    for method in (0, 7, 9, 0x18, 0xFF):
        blob = b"\x1f\x8b" + bytes([method]) + rng.randbytes(597)
        (tmp_path / "data.227").write_bytes(blob)
        refused = subprocess.run([tool("gzip"), "-t"], input=blob, capture_output=True,
                                 check=False)
        assert refused.returncode != 0
        assert b"unknown method" in refused.stderr, refused
        assert filetype.detect(blob) is FileType.BINARY
        report = engine.scan_bytes(blob, "data.227")
        assert not report.names, (method, report)
        assert not report.errors, (method, report)
    broken = b"\x1f\x8b\x08\x00" + rng.randbytes(596)
    assert engine.scan_bytes(broken, "data.gz").names == ("Heuristics.Broken.GZip",)
