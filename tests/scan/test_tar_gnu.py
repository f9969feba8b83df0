"""tar members as GNU tar extracts them (round 9 of the hostile-sender tests).

A member of a type GNU tar does not know ('A', 'N', 'Z'...) is extracted as a regular file
("Unknown file type 'A', extracted as normal file"); Python's tarfile skipped its data. A
sparse member whose map is not block-aligned (PAX GNU.sparse 0.1 and 1.0) is extracted by GNU
tar with each region's data in blocks of its own; tarfile read the regions back to back, and
clam.exe came out of `tar -xf` whole and out of the scanner scrambled. GNU tar is the oracle.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import archive
from zerohour.scan.limits import ScanContext

#: A file with runs of zeros between its data, like a PE header.
PAYLOAD = (b"MZP\x00\x02" + b"\x00" * 40 + b"header" + b"\x00" * 90 + bytes(range(1, 200))
           + b"\x00" * 33 + b"tail-of-the-file")


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 512)


def _regions(data: bytes) -> list[tuple[int, int]]:
    regions, pos = [], 0
    for m in re.finditer(rb"\x00{8,}", data):
        regions.append((pos, m.start() - pos))
        pos = m.end()
    regions.append((pos, len(data) - pos))
    return regions


def _pax(name: str, payload: bytes, pax: dict[str, str]) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.pax_headers = pax
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def sparse_01(data: bytes) -> bytes:
    regions = _regions(data)
    return _pax("f.bin", b"".join(_pad(data[o : o + n]) for o, n in regions), {
        "GNU.sparse.size": str(len(data)), "GNU.sparse.numblocks": str(len(regions)),
        "GNU.sparse.map": ",".join(f"{o},{n}" for o, n in regions)})


def sparse_10(data: bytes) -> bytes:
    regions = _regions(data)
    table = f"{len(regions)}\n" + "".join(f"{o}\n{n}\n" for o, n in regions)
    body = _pad(table.encode()) + b"".join(_pad(data[o : o + n]) for o, n in regions)
    return _pax("GNUSparseFile.0/f.bin", body, {
        "GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "f.bin",
        "GNU.sparse.realsize": str(len(data))})


def typed(kind: bytes) -> bytes:
    info = tarfile.TarInfo("f.bin")
    info.size = len(PAYLOAD)
    info.type = kind
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        t.addfile(info, io.BytesIO(PAYLOAD))
    return buf.getvalue()


def gnu_tar_extracts(blob: bytes, tmp_path: Path) -> bytes:
    (tmp_path / "a.tar").write_bytes(blob)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tool("tar"), "-xf", str(tmp_path / "a.tar"), "-C", str(out)],
                   capture_output=True, check=False, timeout=60)
    return (out / "f.bin").read_bytes()


def scanned(blob: bytes) -> list[bytes]:
    return [c.data for c in archive.tar_children(blob, ScanContext())]


@pytest.mark.parametrize("build", [sparse_01, sparse_10], ids=["pax-0.1", "pax-1.0"])
def test_a_sparse_map_off_the_block_grid_is_read_as_gnu_tar_reads_it(build: object,
                                                                       tmp_path: Path) -> None:
    blob = build(PAYLOAD)  # type: ignore[operator]
    assert gnu_tar_extracts(blob, tmp_path) == PAYLOAD
    assert PAYLOAD in scanned(blob)


@pytest.mark.parametrize("kind", [b"A", b"N", b"Z"])
def test_a_member_of_an_unknown_type_is_a_file(kind: bytes, tmp_path: Path) -> None:
    blob = typed(kind)
    assert gnu_tar_extracts(blob, tmp_path) == PAYLOAD
    assert scanned(blob) == [PAYLOAD]


def _sparse_file(tmp_path: Path) -> Path:
    """A file with a 60 KiB hole: GNU tar stores it sparse."""
    (tmp_path / "src").mkdir()
    f = tmp_path / "src" / "f.bin"
    with f.open("wb") as fh:
        fh.write(PAYLOAD)
        fh.seek(64 * 1024)
        fh.write(PAYLOAD)
    return f


@pytest.mark.parametrize("version", ["0.0", "0.1", "1.0"])
def test_a_real_sparse_file_from_gnu_tar(version: str, tmp_path: Path) -> None:
    """GNU tar's own sparse archives (regions on the block grid): both readings agree."""
    f = _sparse_file(tmp_path)
    src = f.parent
    blob = tmp_path / "s.tar"
    subprocess.run([tool("tar"), "--sparse", f"--sparse-version={version}", "--format=posix",
                    "-cf", str(blob), "-C", str(src), "f.bin"], check=True, timeout=60)
    assert scanned(blob.read_bytes()) == [f.read_bytes()]


def _octf(n: int, width: int) -> bytes:
    return (b"%0" + str(width - 1).encode() + b"o") % n + b"\x00"


def old_gnu_sparse(data: bytes, order: str) -> bytes:
    """An old GNU sparse member (type 'S'): 4 map entries in the header, 21 a block after."""
    regions = [(o, data[o : o + n]) for o, n in _regions(data) if n]
    if order == "reversed":
        regions.reverse()
    elif order == "shuffled":
        regions = regions[1::2] + regions[0::2]
    body = b"".join(_pad(d) for _, d in regions)
    h = bytearray(512)
    h[0:5] = b"f.bin"
    h[100:108], h[108:116], h[116:124] = _octf(0o644, 8), _octf(0, 8), _octf(0, 8)
    h[124:136], h[136:148], h[156:157] = _octf(len(body), 12), _octf(0, 12), b"S"
    h[257:265] = b"ustar  \x00"
    for k, (o, d) in enumerate(regions[:4]):
        h[386 + k * 24 : 398 + k * 24] = _octf(o, 12)
        h[398 + k * 24 : 410 + k * 24] = _octf(len(d), 12)
    h[482] = 1 if len(regions) > 4 else 0
    h[483:495] = _octf(len(data), 12)
    h[148:156] = b"        "
    h[148:156] = b"%06o\x00 " % sum(h)
    out = bytes(h)
    rest = regions[4:]
    while rest:
        e = bytearray(512)
        for k, (o, d) in enumerate(rest[:21]):
            e[k * 24 : k * 24 + 12], e[k * 24 + 12 : k * 24 + 24] = _octf(o, 12), _octf(len(d), 12)
        rest = rest[21:]
        e[504] = 1 if rest else 0
        out += bytes(e)
    return out + body + b"\x00" * 1024


@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
def test_an_old_gnu_sparse_member(tmp_path: Path, order: str) -> None:
    """Round 10: Python's tarfile drops a region at offset 0 of an old GNU map (the file's
    first bytes), which a map in another order moves into an extension block."""
    payload = PAYLOAD * 3
    blob = old_gnu_sparse(payload, order)
    assert gnu_tar_extracts(blob, tmp_path) == payload
    assert payload in scanned(blob)


def test_a_real_old_gnu_sparse_file(tmp_path: Path) -> None:
    f = _sparse_file(tmp_path)
    src = f.parent
    blob = tmp_path / "s.tar"
    subprocess.run([tool("tar"), "--sparse", "--format=gnu", "-cf", str(blob), "-C", str(src),
                    "f.bin"], check=True, timeout=60)
    assert f.read_bytes() in scanned(blob.read_bytes())
