"""A payload kept whole in a section of an executable or object file (round 18: clam.exe in
an added section of an ELF tool, of a COFF object and of a PE launcher was delivered; 7-Zip
writes each section out as the exact file, and clamscan misses all three).

Real files made by real tools: binutils' objcopy adds the section (or makes the object from
the file); 7-Zip is the oracle that the section comes out as clam.exe, byte for byte.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pip
import pytest

from scan.test_containers import CLAM, FOUND, dbdir, engine, tool
from zerohour.scan import Engine

__all__ = ["dbdir", "engine"]  # (fixtures)

LAUNCHER = Path(pip.__file__).parent / "_vendor" / "distlib" / "t64.exe"


def _carrier(kind: str, tmp_path: Path) -> Path:
    out = tmp_path / {"elf": "tool", "coff": "module.obj", "pe": "launcher.exe"}[kind]
    add = ["--add-section", f".clam={CLAM}", "--set-section-flags", ".clam=contents,readonly"]
    if kind == "elf":
        shutil.copy("/bin/true", out)
        subprocess.run([tool("objcopy"), *add, str(out)], check=True)
    elif kind == "coff":
        subprocess.run([tool("objcopy"), "-I", "binary", "-O", "pe-x86-64", "-B",
                        "i386:x86-64", "--rename-section", ".data=.clam", str(CLAM), str(out)],
                       check=True)
    else:
        shutil.copy(LAUNCHER, out)
        subprocess.run([tool("objcopy"), *add, str(out)], check=True)
    return out


@pytest.mark.parametrize("kind", ["elf", "coff", "pe"])
def test_an_executable_in_a_section_is_scanned_as_the_file(engine: Engine, tmp_path: Path,
                                                           kind: str) -> None:
    carrier = _carrier(kind, tmp_path)
    data = carrier.read_bytes()
    assert engine.scan_bytes(CLAM.read_bytes()).names == FOUND
    # 7-Zip writes the section out as clam.exe itself
    out = tmp_path / "x"
    subprocess.run([tool("7zz"), "x", "-y", f"-o{out}", str(carrier)], capture_output=True,
                   check=True)
    want = hashlib.sha256(CLAM.read_bytes()).hexdigest()
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(hashlib.sha256(p.read_bytes()).hexdigest() == want for p in written), written
    assert engine.scan_bytes(data, carrier.name).names == FOUND


def test_sections_of_ordinary_executables_make_no_layers(engine: Engine) -> None:
    """Code and data sections are no files of their own: an ordinary ELF and PE are one
    layer each, as before."""
    for path in (Path("/bin/true"), LAUNCHER):
        report = engine.scan_bytes(path.read_bytes(), path.name)
        assert not report.names, path
        assert not [layer for layer in report.layers if layer.depth > 0], path


@pytest.mark.parametrize("archive", ["cpio", "ar"])
def test_an_archive_in_a_section_is_opened(engine: Engine, tmp_path: Path,
                                           archive: str) -> None:
    """Round 19: a cpio or `ar` archive of clam.exe kept in an ELF section: 7-Zip writes
    the section out, bsdtar (or `ar`) opens it."""
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(CLAM, work / "clam.exe")
    if archive == "cpio":
        packed = subprocess.run([tool("cpio"), "-o", "-H", "newc"], input=b"clam.exe\n",
                                cwd=work, capture_output=True, check=True).stdout
    else:
        subprocess.run([tool("ar"), "rc", "x.a", "clam.exe"], cwd=work, check=True)
        packed = (work / "x.a").read_bytes()
    (tmp_path / "payload").write_bytes(packed)
    carrier = tmp_path / "tool"
    shutil.copy("/bin/true", carrier)
    subprocess.run([tool("objcopy"), "--add-section", f".payload={tmp_path / 'payload'}",
                    "--set-section-flags", ".payload=contents,readonly", str(carrier)],
                   check=True)
    out = tmp_path / "x"
    subprocess.run([tool("7zz"), "x", "-y", f"-o{out}", str(carrier)], capture_output=True,
                   check=True)
    section = out / ".payload"
    assert section.read_bytes() == packed
    if archive == "cpio":
        (tmp_path / "y").mkdir()
        subprocess.run([tool("bsdtar"), "-xf", str(section), "-C", str(tmp_path / "y")],
                       check=True)
        member = (tmp_path / "y" / "clam.exe").read_bytes()
    else:
        member = subprocess.run([tool("ar"), "p", str(section), "clam.exe"],
                                capture_output=True, check=True).stdout
    assert member == CLAM.read_bytes()
    assert engine.scan_bytes(carrier.read_bytes(), "tool").names == FOUND
