"""Small archives built byte by byte, for formats with no writer in Python or Debian (ARJ
method 0 and ALZ; `arj` makes real ARJ files but is not always installed) and for the
cpio "newc" layout; each follows the format's documentation and is read by the real tools
where one exists (tests/scan/test_containers.py checks `arj` and libarchive agree)."""

from __future__ import annotations

import struct
import zlib


def newc_cpio(members: dict[str, bytes]) -> bytes:
    """An SVR4 "newc" cpio archive (what `cpio -H newc` writes)."""

    def header(name: bytes, size: int, mode: int, ino: int) -> bytes:
        n = name + b"\x00"
        fields = (ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(n), 0)
        rec = b"070701" + b"".join(b"%08X" % v for v in fields) + n
        return rec + b"\x00" * (-len(rec) % 4)

    out = b""
    for ino, (name, data) in enumerate(members.items(), 1):
        out += header(name.encode(), len(data), 0o100644, ino) + data
        out += b"\x00" * (-len(data) % 4)
    return out + header(b"TRAILER!!!", 0, 0, 0)


def _arj_header(first: bytes, name: bytes) -> bytes:
    basic = bytes([len(first) + 1]) + first + name + b"\x00" + b"\x00"  # name, empty comment
    return (b"\x60\xea" + struct.pack("<H", len(basic)) + basic
            + struct.pack("<I", zlib.crc32(basic)) + b"\x00\x00")  # no extended header


def stored_arj(members: dict[str, bytes], garbled: bool | set[str] = False) -> bytes:
    """An ARJ archive whose files are stored (method 0); `garbled` sets the encryption flag
    (on every file, or on the named ones)."""
    main = struct.pack("<BBBBBBBIIIIHHBB", 11, 1, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    out = _arj_header(main, b"x.arj")
    for name, data in members.items():
        flag = name in garbled if isinstance(garbled, set) else garbled
        first = struct.pack("<BBBBBBBIIIIHHBB", 11, 1, 2, 0x01 if flag else 0, 0, 0, 0,
                            0, len(data), len(data), zlib.crc32(data), 0, 0o644, 0, 0)
        out += _arj_header(first, name.encode()) + data
    return out + b"\x60\xea\x00\x00"


def alz(members: dict[str, bytes], method: int = 2, encrypted: bool = False) -> bytes:
    """An ALZip archive (ALZ\\x01 file header, BLZ\\x01 local headers, CLZ\\x02 end) with 4-byte
    sizes; method 0 stored, 2 raw deflate."""
    out = b"ALZ\x01\x0a\x00\x00\x00"
    for name, data in members.items():
        if method == 2:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            packed = c.compress(data) + c.flush()
        else:
            packed = data
        descriptor = 0x40 | (1 if encrypted else 0)
        raw_name = name.encode()
        out += b"BLZ\x01" + struct.pack("<HBIBB", len(raw_name), 0x20, 0, descriptor, 0)
        out += struct.pack("<BBIII", method, 0, zlib.crc32(data), len(packed), len(data))
        out += raw_name + (b"\x00" * 12 if encrypted else b"") + packed
    return out + b"CLZ\x02" + b"\x00" * 12
