"""Archive attacks: zip bombs (42.zip-like nesting, overlapping entries, plain high ratio),
too many files, too deep nesting, and encrypted archives. Every one must end in a limit or
encrypted exception with bounded memory and time, never in decompressing gigabytes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import decompose, filetype
from zerohour.scan.limits import Limits, ScanContext

MiB = 1024 * 1024


def walk(data: bytes, ctx: ScanContext | None = None) -> list[bytes]:
    """Every layer, walked as the engine walks (depth via ctx.descend)."""
    ctx = ctx or ScanContext()
    out: list[bytes] = []

    def rec(blob: bytes, name: str | None) -> None:
        out.append(blob)
        with ctx.descend():
            for child in decompose.children(blob, filetype.detect(blob), ctx, name):
                rec(child.data, child.name)

    rec(data, None)
    return out


def bounded(fn: Callable[[], object], max_peak: int = 48 * MiB) -> None:
    """Run `fn` and require its peak Python heap to stay under `max_peak`."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < max_peak, f"peak {peak / MiB:.1f} MiB"


# --- a minimal zip writer taking pre-compressed data (so the tests stay fast) ----------------


def _lfh(name: bytes, crc: int, csize: int, usize: int, method: int = 8, flags: int = 0) -> bytes:
    return (
        struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, csize, usize, len(name), 0
        )
        + name
    )


def _cdh(
    name: bytes, crc: int, csize: int, usize: int, offset: int, method: int = 8, flags: int = 0
) -> bytes:
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            flags,
            method,
            0,
            0x21,
            crc,
            csize,
            usize,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )


def _eocd(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0)


def raw_deflate(data: bytes, level: int = 9) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def build_zip(entries: list[tuple[bytes, bytes, int, int]]) -> bytes:
    """entries: (name, deflated data, crc32, uncompressed size)."""
    body = bytearray()
    central = bytearray()
    for name, comp, crc, usize in entries:
        central += _cdh(name, crc, len(comp), usize, len(body))
        body += _lfh(name, crc, len(comp), usize) + comp
    return bytes(body) + bytes(central) + _eocd(len(entries), len(central), len(body))


def zeros_member(size: int) -> tuple[bytes, int]:
    return raw_deflate(bytes(size)), zlib.crc32(bytes(size))


def nested_bomb(levels: int = 4, width: int = 16, leaf_size: int = 32 * MiB) -> bytes:
    """42.zip's shape: each level holds `width` copies of the level below; zeros at the bottom."""
    comp, crc = zeros_member(leaf_size)
    data = build_zip([(b"%d.bin" % i, comp, crc, leaf_size) for i in range(width)])
    for level in range(levels - 1):
        comp = raw_deflate(data)
        crc = zlib.crc32(data)
        data = build_zip([(b"l%d-%d.zip" % (level, i), comp, crc, len(data)) for i in range(width)])
    return data


def test_nested_bomb_hits_compression_ratio() -> None:
    bomb = nested_bomb()
    assert len(bomb) < 200_000  # kilobytes in, terabytes of zeros declared

    def scan() -> None:
        with pytest.raises(ScanLimitExceeded) as exc:
            walk(bomb)
        assert exc.value.which == "CompressionRatio"

    bounded(scan)


def test_nested_bomb_without_ratio_bound_hits_size_limits() -> None:
    bomb = nested_bomb(levels=3, width=4, leaf_size=8 * MiB)
    limits = Limits(max_compression_ratio=10**9, max_file_size=4 * MiB, max_scan_size=16 * MiB)

    def scan() -> None:
        with pytest.raises(ScanLimitExceeded) as exc:
            walk(bomb, ScanContext(limits))
        assert exc.value.which in {"MaxFileSize", "MaxScanSize"}

    bounded(scan)


def test_distinct_members_hit_max_files() -> None:
    # Distinct leaves (no dedup help): 3 levels of 8 -> 512 files against a limit of 100.
    def level(depth: int, prefix: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for i in range(8):
                tag = prefix + b"%d" % i
                z.writestr(f"{i}", level(depth - 1, tag) if depth > 1 else b"leaf " + tag)
        return buf.getvalue()

    with pytest.raises(ScanLimitExceeded) as exc:
        walk(level(3, b""), ScanContext(Limits(max_files=100)))
    assert exc.value.which == "MaxFiles"


def test_deep_nesting_hits_max_recursion() -> None:
    data = b"innermost"
    for i in range(25):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"n{i}.zip", data)
        data = buf.getvalue()
    with pytest.raises(ScanLimitExceeded) as exc:
        walk(data)
    assert exc.value.which == "MaxRecursion"


def test_shallow_nesting_is_fine() -> None:
    data = b"innermost payload"
    for i in range(10):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"n{i}.zip", data)
        data = buf.getvalue()
    assert walk(data)[-1] == b"innermost payload"


def overlapping_bomb(n: int = 200, kernel_size: int = 8 * MiB, exact_crc: bool = True) -> bytes:
    """Fifield's non-recursive bomb: every entry's deflate stream quotes the later local headers
    in stored blocks and ends in one shared kernel, so n entries inflate to n times the kernel.

    Layout: LFH_0 SB(LFH_1) LFH_1 SB(LFH_2) ... LFH_{n-1} kernel. Entry i's fields depend only
    on later entries, so headers are built from the back.
    """
    zeros = bytes(kernel_size)
    kernel = raw_deflate(zeros)
    zeros_crc = zlib.crc32(zeros)
    names = [b"f%04d" % i for i in range(n)]
    headers: list[bytes] = [b""] * n
    suffix = b""  # LFH_{i+1} + ... + LFH_{n-1}
    csize = len(kernel)
    for i in range(n - 1, -1, -1):
        crc = zlib.crc32(zeros, zlib.crc32(suffix)) if exact_crc else zeros_crc
        headers[i] = _lfh(names[i], crc, csize, len(suffix) + kernel_size)
        suffix = headers[i] + suffix
        csize += 5 + len(headers[i])
    body = bytearray()
    central = bytearray()
    for i in range(n):
        offset = len(body)
        body += headers[i]
        if i + 1 < n:
            q = headers[i + 1]
            body += b"\x00" + struct.pack("<HH", len(q), len(q) ^ 0xFFFF)
        crc, c_size, u_size = struct.unpack_from("<III", headers[i], 14)
        central += _cdh(names[i], crc, c_size, u_size, offset)
    body += kernel
    return bytes(body) + bytes(central) + _eocd(n, len(central), len(body))


def test_overlapping_bomb_is_valid_zip_and_detected() -> None:
    bomb = overlapping_bomb(n=20, kernel_size=1 * MiB)
    # The construction is a real bomb: the first entry inflates to every later header + zeros.
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        infos = z.infolist()
        assert len(infos) == 20
        try:
            first = z.read(infos[0])
        except zipfile.BadZipFile:
            first = b""  # newer CPython refuses overlapping entries itself
    if first:
        assert first.endswith(bytes(1 * MiB))
    with pytest.raises(ScanLimitExceeded) as exc:
        walk(bomb)
    assert exc.value.which == "OverlappingFiles"


def test_big_overlapping_bomb_bounded() -> None:
    bomb = overlapping_bomb(n=500, kernel_size=8 * MiB, exact_crc=False)  # 4 GB declared

    def scan() -> None:
        with pytest.raises(ScanLimitExceeded):
            walk(bomb)

    bounded(scan)


def test_gzip_and_bzip2_bombs_hit_ratio() -> None:
    big = bytes(64 * MiB)
    for bomb in (gzip.compress(big, 9), bz2.compress(big, 9)):
        with pytest.raises(ScanLimitExceeded) as exc:
            walk(bomb)
        assert exc.value.which == "CompressionRatio"


def _encrypt_flags(data: bytes) -> bytes:
    """Set the 'encrypted' flag on every local and central header (content stays plain)."""
    buf = bytearray(data)
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = buf.find(sig)
        while pos >= 0:
            (flags,) = struct.unpack_from("<H", buf, pos + flag_at)
            struct.pack_into("<H", buf, pos + flag_at, flags | 1)
            pos = buf.find(sig, pos + 4)
    return bytes(buf)


def test_encrypted_zip() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("secret.exe", b"MZ" + b"\x00" * 100)
    with pytest.raises(EncryptedContent) as exc:
        walk(_encrypt_flags(buf.getvalue()))
    assert exc.value.format == "Zip"


def test_encrypted_zip_from_real_tool(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("zip") is None:
        pytest.skip("Info-ZIP `zip` not installed (scripts/system-deps installs it)")
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello")
    out = tmp_path / "a.zip"
    subprocess.run(["zip", "-q", "-j", "-P", "pw", str(out), str(src)], check=True)
    with pytest.raises(EncryptedContent):
        walk(out.read_bytes())


def test_encrypted_member_after_clear_members_are_yielded() -> None:
    # Mixed archive: one clear and one encrypted member; the clear one is still scanned.
    comp = raw_deflate(b"clear text member")
    crc = zlib.crc32(b"clear text member")
    mixed = bytearray(build_zip([(b"a.txt", comp, crc, 17), (b"b.txt", comp, crc, 17)]))
    second = mixed.find(b"PK\x03\x04", 4)
    struct.pack_into("<H", mixed, second + 6, 1)
    cd2 = mixed.rfind(b"PK\x01\x02")
    struct.pack_into("<H", mixed, cd2 + 8, 1)
    got: list[bytes] = []

    def consume() -> None:
        data = bytes(mixed)
        for child in decompose.children(data, filetype.detect(data), ScanContext()):
            got.append(child.data)

    with pytest.raises(EncryptedContent):
        consume()
    assert got == [b"clear text member"]
