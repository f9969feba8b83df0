"""PE parsing: section table, entry point, section digests; garbage never crashes.

The .mdb conformance test checks our section hashing against Debian's clamscan.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.scan import pe


def build_pe(
    sections: list[tuple[bytes, int, bytes]],
    entry: int = 0x1010,
    plus: bool = False,
    exact_sizes: bool = False,
) -> bytes:
    """A minimal valid PE: (name, virtual address, raw data) per section, 0x200 file alignment."""
    dos = bytearray(0x40)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    opt_size = 240 if plus else 224
    coff = struct.pack(
        "<HHIIIHH", 0x8664 if plus else 0x14C, len(sections), 0, 0, 0, opt_size, 0x102
    )
    opt = bytearray(opt_size)
    struct.pack_into("<H", opt, 0, 0x20B if plus else 0x10B)
    struct.pack_into("<I", opt, 16, entry)
    if plus:
        struct.pack_into("<Q", opt, 24, 0x140000000)
    else:
        struct.pack_into("<I", opt, 28, 0x400000)
    struct.pack_into("<II", opt, 32, 0x1000, 0x200)  # section / file alignment
    struct.pack_into("<HH", opt, 48, 6, 0)  # subsystem version
    headers_len = 0x40 + 4 + 20 + opt_size + 40 * len(sections)
    raw_at = (headers_len + 0x1FF) // 0x200 * 0x200
    struct.pack_into("<I", opt, 56, 0x1000 + len(sections) * 0x1000)  # SizeOfImage
    struct.pack_into("<I", opt, 60, raw_at)  # SizeOfHeaders
    struct.pack_into("<H", opt, 68, 3)  # console subsystem
    struct.pack_into("<I", opt, 92 if not plus else 108, 16)  # NumberOfRvaAndSizes
    table = bytearray()
    body = bytearray()
    for name, va, raw in sections:
        size = (len(raw) + 0x1FF) // 0x200 * 0x200
        table += name.ljust(8, b"\x00") + struct.pack(
            "<IIIIIIHHI",
            len(raw),
            va,
            len(raw) if exact_sizes else size,
            raw_at + len(body),
            0,
            0,
            0,
            0,
            0x60000020,
        )
        body += raw.ljust(size, b"\x00")
    head = bytes(dos) + b"PE\x00\x00" + coff + bytes(opt) + bytes(table)
    return head.ljust(raw_at, b"\x00") + bytes(body)


TEXT = b"\x90" * 16 + b"\xc3" + bytes(range(256)) * 2
DATA = b"zerohour section data " * 20


def sample() -> bytes:
    return build_pe([(b".text", 0x1000, TEXT), (b".data", 0x2000, DATA)])


def test_parse_sections_and_entry_point() -> None:
    data = sample()
    info = pe.parse(data)
    assert info is not None
    assert [s.name for s in info.sections] == [".text", ".data"]
    text = info.sections[0]
    assert text.raw_offset == 0x200
    assert text.raw_size == 0x400
    assert text.virtual_address == 0x1000
    assert info.entry_point_rva == 0x1010
    assert info.entry_point_offset == 0x210
    assert data[info.entry_point_offset] == 0xC3  # the ret after 16 nops
    assert info.image_base == 0x400000


def test_pe32_plus() -> None:
    info = pe.parse(build_pe([(b".text", 0x1000, TEXT)], plus=True))
    assert info is not None
    assert info.is_pe32_plus
    assert info.image_base == 0x140000000


def test_section_digests() -> None:
    data = sample()
    digests = pe.section_digests(data)
    assert [d.name for d in digests] == [".text", ".data"]
    raw = data[0x200:0x600]
    assert digests[0].size == 0x400
    assert digests[0].md5 == hashlib.md5(raw).hexdigest()
    assert digests[0].sha256 == hashlib.sha256(raw).hexdigest()


def test_truncated_sections_are_clipped() -> None:
    data = sample()[:0x300]
    info = pe.parse(data)
    assert info is not None
    assert info.sections[0].raw_size == 0x100
    assert info.sections[1].raw_size == 0
    assert [d.name for d in pe.section_digests(data)] == [".text"]


def test_not_pe() -> None:
    assert pe.parse(b"") is None
    assert pe.parse(b"MZ" + b"\x00" * 100) is None
    assert pe.parse(b"\x7fELF" + b"\x00" * 100) is None
    assert pe.section_digests(b"hello") == ()


@settings(deadline=None, max_examples=300)
@given(st.data())
def test_mutated_pe_never_crashes(data: st.DataObject) -> None:
    blob = bytearray(sample())
    for _ in range(data.draw(st.integers(1, 20))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    mutated = bytes(blob[:cut])
    info = pe.parse(mutated)
    if info is not None:
        for s in info.sections:
            assert 0 <= s.raw_size <= len(mutated)
    pe.section_digests(mutated)


@settings(deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_crashes(blob: bytes) -> None:
    pe.parse(b"MZ" + blob)
    pe.section_digests(b"MZ" + blob)


@pytest.mark.needs_clamav
@pytest.mark.parametrize("exact_sizes", [False, True], ids=["aligned", "unaligned-size"])
def test_mdb_section_hash_matches_clamscan(tmp_path: Path, exact_sizes: bool) -> None:
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed (scripts/system-deps installs it)")
    data = build_pe([(b".text", 0x1000, TEXT), (b".data", 0x2000, DATA)], exact_sizes=exact_sizes)
    target = tmp_path / "sample.exe"
    target.write_bytes(data)
    text = pe.section_digests(data)[0]
    db = tmp_path / "test.mdb"
    db.write_text(f"{text.size}:{text.md5}:Zerohour.Test.Section\n")
    res = subprocess.run(
        [clamscan, "--no-summary", "-d", str(db), str(target)], capture_output=True, text=True
    )
    assert "Zerohour.Test.Section" in res.stdout, res.stdout + res.stderr
    wrong = tmp_path / "wrong.mdb"
    wrong.write_text(f"{text.size}:{'0' * 32}:Zerohour.Test.Section\n")
    res = subprocess.run(
        [clamscan, "--no-summary", "-d", str(wrong), str(target)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
