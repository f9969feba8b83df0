"""Small archives built byte by byte, for formats with no writer in Python or Debian (ARJ
method 0 and ALZ; `arj` makes real ARJ files but is not always installed) and for the
cpio "newc" layout; each follows the format's documentation and is read by the real tools
where one exists (tests/scan/test_containers.py checks `arj` and libarchive agree)."""

from __future__ import annotations

import heapq
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


def pack_z(data: bytes) -> bytes:
    """pack(1)'s format (gzip's unpack.c reads it): Huffman code lengths by a heap, the end
    code (frequency 0) among the longest, codes assigned as unpack numbers them."""
    freq = {b: data.count(bytes((b,))) for b in set(data)}
    heap: list[tuple[int, int, list[int]]] = [(f, b, [b]) for b, f in freq.items()]
    heap.append((0, 256, [256]))
    depth = dict.fromkeys([*freq, 256], 0)
    heapq.heapify(heap)
    while len(heap) > 1:
        f1, t1, s1 = heapq.heappop(heap)
        f2, t2, s2 = heapq.heappop(heap)
        for sym in s1 + s2:
            depth[sym] += 1
        heapq.heappush(heap, (f1 + f2, min(t1, t2), s1 + s2))
    max_len = max(depth.values())
    assert depth[256] == max_len
    by_len = {n: sorted(s for s, d in depth.items() if d == n and s != 256)
              for n in range(1, max_len + 1)}
    by_len[max_len].append(256)  # the end code: the last at the longest length
    codes: dict[int, tuple[int, int]] = {}
    parents = 0
    for n in range(max_len, 0, -1):
        parents_here = (parents + len(by_len.get(n + 1, []))) // 2 if n < max_len else 0
        for i, sym in enumerate(by_len[n]):
            codes[sym] = (parents_here + i, n)
        parents = parents_here
    counts = [len(by_len[n]) for n in range(1, max_len + 1)]
    counts[-1] -= 2
    header = (b"\x1f\x1e" + len(data).to_bytes(4, "big") + bytes((max_len,)) + bytes(counts)
              + bytes(s for n in range(1, max_len + 1) for s in by_len[n] if s != 256))
    bits = "".join(format(codes[b][0], f"0{codes[b][1]}b") for b in data)
    bits += format(codes[256][0], f"0{codes[256][1]}b")
    bits += "0" * (-len(bits) % 8)
    return header + int(bits, 2).to_bytes(len(bits) // 8, "big")
