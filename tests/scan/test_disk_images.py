"""Disk images and stream tricks from the second hostile-sender review: each got clam.exe
delivered as clean (decoded back by 7zz, mtools, tar, xz or lz4).

- a FAT volume inside an MBR or GPT partition table (only offset 0 was looked at);
- a FAT volume without the 55AA signature or the "FAT16" label (mount and mtools need neither);
- ext2/3/4 and CramFS volumes (not recognised at all);
- an ISO whose file is hidden from the Rock Ridge tree but listed in Joliet (clamscan finds it);
- an ISO with the file as a hidden El Torito boot image, or in a partition appended to a hybrid
  ISO (`xorriso -append_partition`);
- xz stream padding (NULs) before a second stream (clamscan finds it);
- an lz4 frame after a legacy lz4 stream;
- a `.Z` with reserved flag bits set; a v7 tar whose checksum was summed as signed chars.

Volumes we cannot open are `Heuristics.Unsupported.FSIMAGE` (never clean); the rest is found."""

from __future__ import annotations

import hashlib
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine, load_database
from zerohour.scan.filetype import detect, partitions
from zerohour.scan.types import FileType

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "ClamAV-Test-File"
FSIMAGE = "Heuristics.Unsupported.FSIMAGE"
#: Never clean: the volume is unsupported, or (since round 20) clam.exe's bytes, whole in
#: their clusters, are found as a PE carved at a size its headers do not give.
_FSIMAGE_OR_CLAM = ((FSIMAGE,), (NAME,))



def _run(cmd: list[str], cwd: Path) -> bytes:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def clam() -> bytes:
    return CLAM.read_bytes()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, clam: bytes) -> Engine:
    d = tmp_path_factory.mktemp("db")
    (d / "clam.hdb").write_text(f"{hashlib.md5(clam).hexdigest()}:{len(clam)}:{NAME}\n")
    return Engine(load_database([d]))


@pytest.fixture
def work(tmp_path: Path, clam: bytes) -> Path:
    (tmp_path / "clam.exe").write_bytes(clam)
    return tmp_path


def _fat_volume(work: Path) -> bytes:
    img = work / "vol.img"
    _run([tool("mkfs.fat"), "-C", str(img), "1024"], work)
    _run([tool("mcopy"), "-i", str(img), "clam.exe", "::clam.exe"], work)
    return img.read_bytes()


def _mbr(entries: list[tuple[int, int, int]]) -> bytes:
    """A master boot record with (type, first sector, sectors) entries."""
    mbr = bytearray(512)
    for i, (kind, first, count) in enumerate(entries):
        struct.pack_into("<B3sB3sII", mbr, 446 + 16 * i, 0, b"\0\0\0", kind, b"\0\0\0", first,
                         count)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def _gpt(first: int, count: int) -> bytes:
    """A protective MBR, a GPT header (entries at LBA 2) and one partition entry."""
    head = bytearray(512)
    head[:8] = b"EFI PART"
    struct.pack_into("<QII", head, 72, 2, 128, 128)
    entry = bytearray(128)
    entry[:16] = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b")  # EFI system partition
    struct.pack_into("<QQ", entry, 32, first, first + count - 1)
    return _mbr([(0xEE, 1, 0xFFFFFFFF)]) + bytes(head) + bytes(entry) + bytes(512 - 128)


def test_fat_volume_in_an_mbr_partition(work: Path, engine: Engine) -> None:
    vol = _fat_volume(work)
    disk = _mbr([(0x0C, 2048, len(vol) // 512)]).ljust(2048 * 512, b"\0") + vol
    assert detect(disk) is FileType.DISKIMAGE
    assert partitions(disk) == [(2048 * 512, len(vol))]
    assert engine.scan_bytes(disk).names in _FSIMAGE_OR_CLAM


def test_fat_volume_in_a_gpt_partition(work: Path, engine: Engine) -> None:
    vol = _fat_volume(work)
    disk = _gpt(2048, len(vol) // 512).ljust(2048 * 512, b"\0") + vol
    assert partitions(disk) == [(2048 * 512, len(vol))]
    assert engine.scan_bytes(disk).names in _FSIMAGE_OR_CLAM


@pytest.mark.parametrize("patch", ["no-55aa", "no-label"])
def test_fat_volume_without_signature_or_label(work: Path, engine: Engine, patch: str) -> None:
    vol = bytearray(_fat_volume(work))
    if patch == "no-55aa":
        vol[510:512] = b"\0\0"
    else:
        vol[54:62] = b"MSDOS5.0"
    _run([tool("mdir"), "-i", str(work / "vol.img")], work)  # still a volume to mtools
    (work / "vol.img").write_bytes(vol)
    _run([tool("mtype"), "-i", str(work / "vol.img"), "::clam.exe"], work)
    assert engine.scan_bytes(bytes(vol)).names in _FSIMAGE_OR_CLAM


def test_ext2_volume(work: Path, engine: Engine) -> None:
    (work / "root").mkdir()
    shutil.copy(work / "clam.exe", work / "root" / "clam.exe")
    _run([tool("mke2fs"), "-q", "-t", "ext2", "-d", "root", "ext2.img", "1M"], work)
    assert engine.scan_bytes((work / "ext2.img").read_bytes()).names in _FSIMAGE_OR_CLAM


def _iso(work: Path, *args: str) -> bytes:
    _run([tool("xorriso"), "-as", "mkisofs", "-quiet", "-o", "out.iso", *args], work)
    return (work / "out.iso").read_bytes()


def test_file_hidden_from_rock_ridge_but_in_joliet(work: Path, engine: Engine) -> None:
    (work / "iso").mkdir()
    shutil.copy(work / "clam.exe", work / "iso" / "clam.exe")
    (work / "iso" / "readme.txt").write_text("nothing here\n")
    iso = _iso(work, "-R", "-J", "-hide", "clam.exe", "iso")
    assert engine.scan_bytes(iso).names == (NAME,)


def test_hidden_el_torito_boot_image(work: Path, engine: Engine) -> None:
    (work / "iso").mkdir()
    _run(["tar", "-cf", "iso/boot.tar", "clam.exe"], work)
    (work / "iso" / "readme.txt").write_text("nothing here\n")
    iso = _iso(work, "-R", "-b", "boot.tar", "-no-emul-boot", "-hide", "boot.tar", "iso")
    assert engine.scan_bytes(iso).names == (NAME,)


def test_partition_appended_to_a_hybrid_iso(work: Path, engine: Engine) -> None:
    _fat_volume(work)
    (work / "iso").mkdir()
    (work / "iso" / "readme.txt").write_text("nothing here\n")
    iso = _iso(work, "-R", "-append_partition", "2", "0x0c", "vol.img", "iso")
    assert engine.scan_bytes(iso).names in _FSIMAGE_OR_CLAM


def test_xz_stream_padding_before_the_next_stream(work: Path, engine: Engine,
                                                  clam: bytes) -> None:
    blob = lzma.compress(b"") + b"\0" * 8 + lzma.compress(clam)
    (work / "p.xz").write_bytes(blob)
    assert _run([tool("xz"), "-dc", "p.xz"], work) == clam
    assert engine.scan_bytes(blob).names == (NAME,)


def test_lz4_frame_after_a_legacy_stream(work: Path, engine: Engine, clam: bytes) -> None:
    (work / "empty").write_bytes(b"")
    legacy = _run([tool("lz4"), "-l", "-q", "-c", "empty"], work)
    frame = _run([tool("lz4"), "-q", "-c", "clam.exe"], work)
    (work / "m.lz4").write_bytes(legacy + frame)
    assert _run([tool("lz4"), "-dc", "m.lz4"], work) == clam
    assert engine.scan_bytes(legacy + frame).names == (NAME,)


def test_compress_with_reserved_flag_bits(work: Path, engine: Engine, clam: bytes) -> None:
    z = bytearray(_run([tool("compress"), "-c", "clam.exe"], work))
    z[2] |= 0x60
    (work / "r.Z").write_bytes(bytes(z))
    out = subprocess.run([tool("gzip"), "-dc", "r.Z"], cwd=work, capture_output=True).stdout
    assert out == clam  # (gzip warns, exits 2, and decodes)
    assert detect(bytes(z)) is FileType.COMPRESS
    assert engine.scan_bytes(bytes(z)).names == (NAME,)  # decoded since round 20


def test_v7_tar_with_a_signed_checksum(work: Path, engine: Engine, clam: bytes) -> None:
    tar = bytearray(_run(["tar", "--format=v7", "-cf", "-", "clam.exe"], work))
    tar[100:108] = b"0000644\0"
    tar[0:9] = "n\u00e9.exe".encode("latin-1").ljust(9, b"\0")  # a byte >= 128 in the name
    header = tar[:148] + b" " * 8 + tar[156:512]
    signed = sum(b - 256 if b > 127 else b for b in header)
    tar[148:156] = b"%06o\0 " % signed
    assert signed != sum(header)
    (work / "s.tar").write_bytes(tar)
    assert "n" in _run(["tar", "-tf", "s.tar"], work).decode("latin-1")
    assert engine.scan_bytes(bytes(tar)).names == (NAME,)
