#!/usr/bin/env python3
"""Format coverage against clamscan: ClamAV's test file `clam.exe` inside every container and
packer, scanned by clamscan 1.4 and by zerohour's engine on the same database, one table.

The files are ClamAV's own test corpus (Debian `clamav-testfiles`, installed by
scripts/system-deps) plus the same `clam.exe` packed by real tools on this machine into the
formats that corpus lacks (ISO/Joliet/UDF images, LZH, ar, zstd, lz4, lzma, 7z variants, gcab,
Deflate64/PPMd zips). The database is an `.hdb` of clam.exe's MD5 and SHA-256, so a file counts
as detected only when the scanner reached the real clam.exe bytes (a heuristic finding such as
`Heuristics.Unsupported.*` is shown, but is not a detection).

    .venv/bin/python bench/formats.py            # the table
    .venv/bin/python bench/formats.py --json     # one JSON object (used by the tests)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TESTFILES = Path("/usr/share/clamav-testfiles")
SIGNATURE = "ClamAV-Test-File"


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _made_by_tools(clam: bytes, out: Path) -> dict[str, str]:
    """clam.exe packed by the real tools installed here: {file name: tool}."""
    made: dict[str, str] = {}
    work = Path(tempfile.mkdtemp(prefix="zh-formats-"))
    try:
        (work / "clam.exe").write_bytes(clam)
        iso_root = work / "isoroot"
        iso_root.mkdir()
        (iso_root / "clam.exe").write_bytes(clam)
        recipes: list[tuple[str, str, Callable[[], None]]] = [
            ("clam.iso", "genisoimage", lambda: _run(
                ["genisoimage", "-quiet", "-o", str(out / "clam.iso"), str(iso_root)], work)),
            ("clam.joliet.iso", "xorriso -J", lambda: _run(
                ["xorriso", "-as", "mkisofs", "-J", "-o", str(out / "clam.joliet.iso"),
                 str(iso_root)], work)),
            ("clam.udf.iso", "genisoimage -udf", lambda: _run(
                ["genisoimage", "-quiet", "-udf", "-o", str(out / "clam.udf.iso"),
                 str(iso_root)], work)),
            ("clam.img", "genisoimage (named .img)", lambda: shutil.copy(
                out / "clam.iso", out / "clam.img")),
            # No Debian tool writes LHA (lhasa only reads): a stored level-0 archive, checked
            # below by lhasa itself.
            ("clam.lzh", "lha (reads back a stored -lh0- archive written here)",
             lambda: _write_lzh(out / "clam.lzh", "clam.exe", clam)),
            ("clam.a", "ar", lambda: _run(["ar", "rc", str(out / "clam.a"), "clam.exe"], work)),
            ("clam.gcab.cab", "gcab", lambda: _run(
                ["gcab", "-c", "-z", str(out / "clam.gcab.cab"), "clam.exe"], work)),
            ("clam.exe.zst", "zstd", lambda: _run(
                ["zstd", "-q", "-o", str(out / "clam.exe.zst"), "clam.exe"], work)),
            ("clam.exe.lz4", "lz4", lambda: _run(
                ["lz4", "-q", "clam.exe", str(out / "clam.exe.lz4")], work)),
            ("clam.exe.lzma", "xz --format=lzma", lambda: (out / "clam.exe.lzma").write_bytes(
                subprocess.run(["xz", "--format=lzma", "-c", "clam.exe"], cwd=work, check=True,
                               capture_output=True).stdout)),
            ("clam.exe.xz", "xz", lambda: (out / "clam.exe.xz").write_bytes(
                subprocess.run(["xz", "-c", "clam.exe"], cwd=work, check=True,
                               capture_output=True).stdout)),
            ("clam.lzma2.7z", "7zz -m0=LZMA2", lambda: _run(
                ["7zz", "a", "-bd", "-m0=LZMA2", str(out / "clam.lzma2.7z"), "clam.exe"], work)),
            ("clam.lzma.7z", "7zz -m0=LZMA", lambda: _run(
                ["7zz", "a", "-bd", "-m0=LZMA", str(out / "clam.lzma.7z"), "clam.exe"], work)),
            ("clam.ppmd.7z", "7zz -m0=PPMd", lambda: _run(
                ["7zz", "a", "-bd", "-m0=PPMd", str(out / "clam.ppmd.7z"), "clam.exe"], work)),
            ("clam.bcj.7z", "7zz -mf=BCJ", lambda: _run(
                ["7zz", "a", "-bd", "-mf=BCJ", str(out / "clam.bcj.7z"), "clam.exe"], work)),
            ("clam.deflate64.zip", "7zz -mm=Deflate64", lambda: _run(
                ["7zz", "a", "-bd", "-tzip", "-mm=Deflate64", str(out / "clam.deflate64.zip"),
                 "clam.exe"], work)),
            ("clam.ppmd.zip", "7zz -mm=PPMd", lambda: _run(
                ["7zz", "a", "-bd", "-tzip", "-mm=PPMd", str(out / "clam.ppmd.zip"),
                 "clam.exe"], work)),
            ("clam.lzma.zip", "7zz -mm=LZMA", lambda: _run(
                ["7zz", "a", "-bd", "-tzip", "-mm=LZMA", str(out / "clam.lzma.zip"),
                 "clam.exe"], work)),
            ("clam.tar.xz", "tar -J", lambda: _run(
                ["tar", "-cJf", str(out / "clam.tar.xz"), "clam.exe"], work)),
            ("clam.newc.cpio.gz", "cpio -H newc | gzip", lambda: (
                out / "clam.newc.cpio.gz").write_bytes(subprocess.run(
                    "echo clam.exe | cpio -o -H newc --quiet | gzip -c", shell=True, cwd=work,
                    check=True, capture_output=True).stdout)),
        ]
        for name, tool, make in recipes:
            if shutil.which(tool.split()[0]) is None and not tool.startswith("genisoimage ("):
                continue
            try:
                make()
            except (OSError, subprocess.CalledProcessError):
                continue
            if (out / name).exists():
                made[name] = tool
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return made


def _crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _write_lzh(path: Path, name: str, data: bytes) -> None:
    """An LHA level-0 archive holding `data` stored (-lh0-), verified with `lha t`."""
    fname = name.encode()
    body = (b"-lh0-" + struct.pack("<IIIBB", len(data), len(data), 0x5A210000, 0x20, 0)
            + bytes([len(fname)]) + fname + struct.pack("<H", _crc16_arc(data)))
    header = bytes([len(body), sum(body) & 0xFF]) + body
    path.write_bytes(header + data + b"\x00")
    subprocess.run(["lha", "t", str(path)], check=True, capture_output=True)


def _clamscan(db: Path, folder: Path) -> dict[str, list[str]]:
    proc = subprocess.run(
        ["clamscan", "--no-summary", "--allmatch", "-d", str(db), str(folder)],
        capture_output=True, text=True, check=False,
    )
    found: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        path, _, rest = line.rpartition(": ")
        name = Path(path).name
        if rest.endswith(" FOUND"):
            found.setdefault(name, []).append(rest[: -len(" FOUND")].removesuffix(".UNOFFICIAL"))
        else:
            found.setdefault(name, [])
    return found


def _zerohour(db: Path, folder: Path) -> dict[str, tuple[list[str], float]]:
    from zerohour.scan import Engine, load_database

    engine = Engine(load_database([db], use_cache=False), allmatch=True)
    out: dict[str, tuple[list[str], float]] = {}
    for path in sorted(folder.iterdir()):
        started = time.perf_counter()
        report = engine.scan_path(path)
        names = list(report.names) + [f"error: {e}" for e in report.errors]
        out[path.name] = (names, time.perf_counter() - started)
    return out


def measure() -> dict[str, object]:
    clam = (TESTFILES / "clam.exe").read_bytes()
    with tempfile.TemporaryDirectory(prefix="zh-formats-") as tmp:
        root = Path(tmp)
        db = root / "db"
        db.mkdir()
        (db / "clam.hdb").write_text(
            f"{hashlib.md5(clam).hexdigest()}:{len(clam)}:{SIGNATURE}\n"
            f"{hashlib.sha256(clam).hexdigest()}:{len(clam)}:{SIGNATURE}\n"
        )
        corpus = root / "corpus"
        corpus.mkdir()
        sources = {}
        for f in sorted(TESTFILES.iterdir()):
            shutil.copy(f, corpus / f.name)
            sources[f.name] = "clamav-testfiles"
        sources.update(_made_by_tools(clam, corpus))
        clamscan = _clamscan(db / "clam.hdb", corpus)
        ours = _zerohour(db, corpus)
    rows = []
    for name in sorted(sources):
        zh_names, secs = ours.get(name, ([], 0.0))
        rows.append({
            "file": name,
            "source": sources[name],
            "clamscan": clamscan.get(name, []),
            "zerohour": zh_names,
            "clamscan_detects": SIGNATURE in clamscan.get(name, []),
            "zerohour_detects": SIGNATURE in zh_names,
            "zerohour_seconds": round(secs, 4),
        })
    return {
        "files": len(rows),
        "clamscan_detected": sum(r["clamscan_detects"] for r in rows),
        "zerohour_detected": sum(r["zerohour_detects"] for r in rows),
        "rows": rows,
    }


def _cell(names: list[str]) -> str:
    if SIGNATURE in names:
        return "found"
    return ", ".join(names) if names else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if not (TESTFILES / "clam.exe").exists() or shutil.which("clamscan") is None:
        print("needs clamscan and clamav-testfiles (scripts/system-deps)", file=sys.stderr)
        return 2
    result = measure()
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    rows = result["rows"]
    assert isinstance(rows, list)
    w = max(len(r["file"]) for r in rows)
    print(f"{'file':<{w}}  {'clamscan 1.4':<14} zerohour")
    for r in rows:
        print(f"{r['file']:<{w}}  {_cell(r['clamscan']):<14} {_cell(r['zerohour'])}")
    print(f"\nclam.exe found in {result['clamscan_detected']}/{result['files']} files by clamscan,"
          f" {result['zerohour_detected']}/{result['files']} by zerohour")
    return 0


if __name__ == "__main__":
    sys.exit(main())
