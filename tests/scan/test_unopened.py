"""Containers the engine recognises but does not open yet: a finding, never clean.

Found by the hostile-sender review: a WIM made by 7-Zip with clam.exe inside was delivered as
clean binary data, though 7-Zip (and Windows, for disk images) opens it with a double-click.
WIM, VHD/VHDX, DMG, squashfs, raw FAT/exFAT/NTFS volumes, Unix compress (.Z), RPM, lzip and
lzop are now typed by their magic (or trailer, or boot sector) and are
`Heuristics.Unsupported.<TYPE>` in the gateway (the CLI, like clamscan, says so with
--alert-unsupported). Files made by the real tools where Debian has them."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine, default_db_dirs
from zerohour.scan.filetype import detect
from zerohour.scan.types import FileType

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")



def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def _wim(d: Path) -> Path:
    _run([tool("7zz"), "a", "-bd", "-twim", "out.wim", "clam.exe"], d)
    return d / "out.wim"


def _fat(d: Path) -> Path:
    img = d / "out.img"
    _run([tool("mkfs.fat"), "-C", str(img), "1440"], d)
    _run([tool("mcopy"), "-i", str(img), "clam.exe", "::clam.exe"], d)
    return img


def _squashfs(d: Path) -> Path:
    (d / "root").mkdir()
    shutil.copy(d / "clam.exe", d / "root" / "clam.exe")
    _run([tool("mksquashfs"), "root", "out.sqfs", "-quiet", "-noappend"], d)
    return d / "out.sqfs"


def _stream(program: str, ext: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        out = subprocess.run([tool(program), "-c", "clam.exe"], cwd=d, check=True,
                             capture_output=True).stdout
        (d / f"clam.exe.{ext}").write_bytes(out)
        return d / f"clam.exe.{ext}"
    return make


REAL = {
    "wim (7zz -twim)": (_wim, FileType.WIM),
    "FAT volume (mkfs.fat + mcopy)": (_fat, FileType.FSIMAGE),
    "squashfs (mksquashfs)": (_squashfs, FileType.SQUASHFS),
    "lzip": (_stream("lzip", "lz"), FileType.LZIP),
    "lzop": (_stream("lzop", "lzo"), FileType.LZOP),
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_dirs(default_db_dirs())


@pytest.mark.parametrize("kind", list(REAL))
def test_real_tool_output_is_unsupported_never_clean(
    tmp_path: Path, engine: Engine, kind: str
) -> None:
    make, ft = REAL[kind]
    shutil.copy(CLAM, tmp_path / "clam.exe")
    data = make(tmp_path).read_bytes()
    assert detect(data) is ft
    report = engine.scan_bytes(data, "attachment")
    assert report.names == (f"Heuristics.Unsupported.{ft.value.upper()}",)


def _vhd_footer() -> bytes:
    return b"conectix" + struct.pack(">II", 2, 0x10000) + b"\x00" * (512 - 16)


SYNTHETIC = {
    "fixed VHD (footer at the end)": (b"\x00" * 4096 + _vhd_footer(), FileType.VHD),
    "dynamic VHD (footer copy first)": (_vhd_footer() + b"\x00" * 4096, FileType.VHD),
    "VHDX": (b"vhdxfile" + b"\x00" * 4096, FileType.VHD),
    "DMG (koly trailer)": (os.urandom(4096) + b"koly" + b"\x00" * 508, FileType.DMG),
    "RPM lead": (b"\xed\xab\xee\xdb\x03\x00" + b"\x00" * 200, FileType.RPM),
    "qcow2": (b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 500, FileType.VMDISK),
    "VMDK sparse": (b"KDMV\x01\x00\x00\x00" + b"\x00" * 500, FileType.VMDISK),
    "VDI": (b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(0x40, b"\0")
            + b"\x7f\x10\xda\xbe" + b"\x00" * 400, FileType.VMDISK),
    "HFS+": (b"\x00" * 1024 + b"H+\x00\x04" + b"\x00" * 3000, FileType.FSIMAGE),
    "Apple partition map": (b"ER\x02\x00" + b"\x00" * 508 + b"PM\x00\x00" + b"\x00" * 1000,
                            FileType.DMG),
    "SWF (zlib)": (b"CWS\x0a" + struct.pack("<I", 5000) + b"\x78\x9c" + os.urandom(300),
                   FileType.SWF),
}


@pytest.mark.parametrize("kind", list(SYNTHETIC))
def test_trailers_and_leads_are_recognised(engine: Engine, kind: str) -> None:
    data, ft = SYNTHETIC[kind]
    assert detect(data) is ft
    assert engine.scan_bytes(data).names == (f"Heuristics.Unsupported.{ft.value.upper()}",)


@pytest.mark.parametrize("data", [
    b"hsqs is not a file system\n" * 10,  # text that starts like squashfs's magic
    b"\x1f\x9d\x00" + os.urandom(300),  # .Z magic with impossible flags
    b"hsqs" + os.urandom(200),  # magic without a valid superblock
    os.urandom(1 << 16),
])
def test_lookalikes_are_not_containers(engine: Engine, data: bytes) -> None:
    assert detect(data) not in (FileType.SQUASHFS, FileType.COMPRESS)
    assert not any(n.startswith("Heuristics.Unsupported") for n in engine.scan_bytes(data).names)
