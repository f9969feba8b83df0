"""The `----------- SCAN SUMMARY -----------` block, line for line as clamscan 1.4 prints it.

Counting follows clamscan: a directory counts when it is opened, a file when it was scanned
(found, clean or in error; empty files and symbolic links inside folders are not scanned);
"Data read" is the files' sizes and "Data scanned" every layer's size (members, decoded parts),
both in whole 4 KiB blocks per file, as clamscan counts them (`CL_COUNT_PRECISION`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

BLOCK = 4096  # clamscan's CL_COUNT_PRECISION


@dataclass(slots=True)
class Tally:
    """What one `zerohour scan` run counted."""

    known: int = 0
    dirs: int = 0
    files: int = 0
    infected: int = 0
    errors: int = 0
    not_removed: int = 0
    not_moved: int = 0
    blocks: int = 0  # scanned, in BLOCKs
    rblocks: int = 0  # read, in BLOCKs
    started: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)

    def read(self, size: int) -> None:
        self.rblocks += size // BLOCK

    def scanned(self, size: int) -> None:
        self.blocks += size // BLOCK


def _date(ts: float) -> str:
    return time.strftime("%Y:%m:%d %H:%M:%S", time.localtime(ts))


def summary_lines(t: Tally, engine_version: str, copying: bool = False,
                  now: float | None = None, now_mono: float | None = None) -> list[str]:
    """clamscan's summary (clamscan/clamscan.c), starting with its empty line."""
    end = time.time() if now is None else now
    elapsed = (time.monotonic() if now_mono is None else now_mono) - t.started_mono
    secs, ms = int(elapsed), int(elapsed * 1000) % 1000
    lines = [
        "",
        "----------- SCAN SUMMARY -----------",
        f"Known viruses: {t.known}",
        f"Engine version: {engine_version}",
        f"Scanned directories: {t.dirs}",
        f"Scanned files: {t.files}",
        f"Infected files: {t.infected}",
    ]
    if t.errors:
        lines.append(f"Total errors: {t.errors}")
    if t.not_removed:
        lines.append(f"Not removed: {t.not_removed}")
    if t.not_moved:
        lines.append(f"Not {'copied' if copying else 'moved'}: {t.not_moved}")
    mb = t.blocks * (BLOCK // 1024) / 1024.0
    rmb = t.rblocks * (BLOCK // 1024) / 1024.0
    ratio = t.blocks / t.rblocks if t.rblocks else 0.0
    lines += [
        f"Data scanned: {mb:.2f} MB",
        f"Data read: {rmb:.2f} MB (ratio {ratio:.2f}:1)",
        f"Time: {secs}.{ms:03d} sec ({secs // 60} m {secs % 60} s)",
        f"Start Date: {_date(t.started)}",
        f"End Date:   {_date(end)}",
    ]
    return lines
