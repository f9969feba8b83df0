"""PE files inside a PE (droppers, self-extractors, packed payloads), as clamscan finds them.

clamscan's raw scan of an executable recognises further `MZ ... PE\\0\\0` headers at non-zero
offsets and scans each one as a file from there to the end of its parent (ClamAV's
`cli_scan_embpe`, bounded by MaxEmbeddedPE, 10 MiB). That is how clamscan's MD5 of clam.exe
matches inside the unpacked clam-upx.exe. We yield each embedded PE cut to its own extent (the
end of its last section or headers), which costs little and lets nested ones be found by the
child's own walk, plus, for the last one, ClamAV's to-the-end copy when that is different and
at most 10 MiB, so hash signatures match where clamscan's do. At most 32 per layer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zerohour.scan import pe
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

MAX_EMBEDDED_PE = 10 * 1024 * 1024  # ClamAV's MaxEmbeddedPE default
_MAX_CHILDREN = 32
_MAX_CANDIDATES = 100_000


def _pe_at(data: bytes, off: int) -> bool:
    if off + 0x40 > len(data):
        return False
    (lfanew,) = struct.unpack_from("<I", data, off + 0x3C)
    at = off + lfanew
    return lfanew > 0 and at + 24 <= len(data) and data[at : at + 4] == b"PE\x00\x00"


def _extent(data: bytes, off: int) -> int:
    """Where the PE at `off` ends: its last section's raw data or its headers, whichever is
    further (at least its header block; at most the end of `data`)."""
    window = data[off : off + 0x1000]
    info = pe.parse(window)
    lfanew = int.from_bytes(data[off + 0x3C : off + 0x40], "little")
    end: int = lfanew + 24
    if info is not None:
        opt = lfanew + 24
        if opt + 64 <= len(window):
            end = max(end, int.from_bytes(window[opt + 60 : opt + 64], "little"))
        # Section raw sizes from the table itself (parse() clips them to the window).
        (nsec,) = struct.unpack_from("<H", window, lfanew + 6)
        (opt_size,) = struct.unpack_from("<H", window, lfanew + 20)
        table = opt + opt_size
        for i in range(min(nsec, 96)):
            e = table + 40 * i
            if e + 40 > len(window):
                break
            rsize, rptr = struct.unpack_from("<II", window, e + 16)
            if rsize:
                end = max(end, rptr + rsize)
    return min(len(data), off + end)


def embedded_pes(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The PE files at non-zero offsets of a PE layer (see the module docstring)."""
    found: list[tuple[int, int]] = []
    pos = data.find(b"MZ", 1)
    candidates = 0
    covered = 0
    while pos > 0 and len(found) < _MAX_CHILDREN and candidates < _MAX_CANDIDATES:
        candidates += 1
        if not candidates % 4096:
            ctx.check_time()
        if pos >= covered and _pe_at(data, pos):
            end = _extent(data, pos)
            found.append((pos, end))
            covered = end  # PEs inside this one are found when it is scanned
        pos = data.find(b"MZ", pos + 1)
    for off, end in found:
        ctx.charge_child(end - off)
        yield Child(data=data[off:end], name=None, origin="embedded-pe")
    if found:
        off, end = found[-1]
        if end < len(data) and len(data) - off <= MAX_EMBEDDED_PE:
            ctx.charge_child(len(data) - off)
            yield Child(data=data[off:], name=None, origin="embedded-pe")
