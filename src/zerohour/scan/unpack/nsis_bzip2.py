"""NSIS's bzip2 variant, decoded in Python (clamscan decodes it; Python's bz2 cannot).

NSIS strips bzip2 to save bytes: no "BZh9" stream header, a block starts with the single byte
0x31 instead of the 48-bit block magic and has no CRC (NSIS 3: no "randomised" bit either), and
0x17 ends the stream instead of the end-of-stream magic and combined CRC. The rest of each
block (24-bit BWT origin, symbol map, selectors, Huffman tables, MTF/RLE2 symbols, BWT, RLE1)
is standard bzip2 with 900k blocks. Since there is no header to fix up and no CRC to give the
C library, this is a whole decoder: table-driven Huffman decoding, the inverse BWT as a stable
sort (in C), and RLE1 undone by a regular expression (in C).

Bounded: at most 900 000 symbols per block (the format's limit), output checked against the
scan's bounds after every block (one block expands to at most ~47 MB), the clock checked per
block and every 64k symbols. Pure Python: roughly 1 MB/s of output.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_BLOCK_MAX = 900_000
_MAX_CODE = 20
_RUN = re.compile(rb"(.)\1\1\1(.)", re.S)


class BZip2Error(ValueError):
    """Corrupt or truncated NSIS bzip2 data."""


class _Bits:
    """MSB-first bit reader over bytes."""

    __slots__ = ("buf", "live", "pos", "src")

    def __init__(self, src: bytes) -> None:
        self.src = bytes(src) + bytes(4)  # lets the last code be looked up with maxlen bits
        self.pos = 0
        self.buf = 0
        self.live = 0

    def _fill(self, n: int) -> None:
        while self.live < n:
            if self.pos >= len(self.src):
                raise BZip2Error("truncated")
            self.buf = ((self.buf << 8) | self.src[self.pos]) & 0xFFFFFFFFFFFF
            self.pos += 1
            self.live += 8

    def get(self, n: int) -> int:
        if self.live < n:
            self._fill(n)
        self.live -= n
        return (self.buf >> self.live) & ((1 << n) - 1)


def _table(lengths: list[int]) -> tuple[list[int], int]:
    """A lookup table of 2^maxlen entries: (symbol << 5) | code length (canonical codes)."""
    maxlen = max(lengths)
    table = [0] * (1 << maxlen)
    code = 0
    for length in range(1, maxlen + 1):
        for sym, sl in enumerate(lengths):
            if sl != length:
                continue
            span = 1 << (maxlen - length)
            start = code << (maxlen - length)
            if start + span > len(table):
                raise BZip2Error("oversubscribed Huffman code")
            entry = (sym << 5) | length
            table[start : start + span] = [entry] * span
            code += 1
        code <<= 1
    return table, maxlen


def _block(bits: _Bits, check: Callable[[], None] | None, rand_bit: bool) -> bytes:
    """One block after its 0x31 marker: the decoded bytes. NSIS 3 dropped the "randomised"
    bit too; older NSIS 2 builds still write it (`rand_bit`)."""
    if rand_bit and bits.get(1):
        raise BZip2Error("randomised block")  # never written by NSIS's compressor
    orig = bits.get(24)
    used16 = bits.get(16)
    symbols = [
        i * 16 + j
        for i in range(16) if used16 >> (15 - i) & 1
        for j, bit in enumerate(format(bits.get(16), "016b")) if bit == "1"
    ]
    if not symbols:
        raise BZip2Error("no symbols")
    alpha = len(symbols) + 2
    ngroups = bits.get(3)
    nsel = bits.get(15)
    if not 2 <= ngroups <= 6 or nsel < 1:
        raise BZip2Error("bad selectors")
    mtf_groups = list(range(ngroups))
    selectors = []
    for _ in range(nsel):
        j = 0
        while bits.get(1):
            j += 1
            if j >= ngroups:
                raise BZip2Error("bad selector")
        g = mtf_groups.pop(j)
        mtf_groups.insert(0, g)
        selectors.append(g)
    tables = []
    for _ in range(ngroups):
        cur = bits.get(5)
        lengths = []
        for _ in range(alpha):
            while True:
                if not 1 <= cur <= _MAX_CODE:
                    raise BZip2Error("bad code length")
                if not bits.get(1):
                    break
                cur += -1 if bits.get(1) else 1
            lengths.append(cur)
        tables.append(_table(lengths))
    eob = alpha - 1
    mtf = list(symbols)
    out = bytearray()
    run = 0
    run_weight = 1
    group = -1
    left = 0
    table: list[int] = []
    maxlen = 0
    count = 0
    # The hot loop reads bits inline (a method call per symbol doubled the time).
    src, pos, buf, live = bits.src, bits.pos, bits.buf, bits.live
    end = len(src)
    while True:
        if left == 0:
            group += 1
            if group >= nsel:
                raise BZip2Error("selectors exhausted")
            table, maxlen = tables[selectors[group]]
            left = 50
        left -= 1
        while live < maxlen:
            if pos >= end:
                raise BZip2Error("truncated")
            buf = ((buf << 8) | src[pos]) & 0xFFFFFFFFFFFF
            pos += 1
            live += 8
        entry = table[(buf >> (live - maxlen)) & ((1 << maxlen) - 1)]
        live -= entry & 31
        sym = entry >> 5
        if sym <= 1:  # RUNA / RUNB: bijective base-2 run length of the front symbol
            run += run_weight << sym
            run_weight <<= 1
            if run > _BLOCK_MAX:
                raise BZip2Error("run too long")
            continue
        if run:
            out += bytes((mtf[0],)) * run
            run, run_weight = 0, 1
        if sym == eob:
            break
        v = mtf.pop(sym - 1)
        mtf.insert(0, v)
        out.append(v)
        count += 1
        if len(out) > _BLOCK_MAX:
            raise BZip2Error("block too large")
        if check is not None and not count & 0xFFFF:
            check()
    bits.pos, bits.buf, bits.live = pos, buf, live
    n = len(out)
    if not n or orig >= n:
        raise BZip2Error("bad BWT origin")
    # Inverse BWT: the stable sort of positions by byte is bzip2's T vector.
    order = sorted(range(n), key=out.__getitem__)
    t = order[orig]
    res = bytearray(n)
    for k in range(n):
        res[k] = out[t]
        t = order[t]
    return _RUN.sub(lambda m: m.group(1) * (4 + m.group(2)[0]), bytes(res))


def decompress(
    data: bytes, limit: int, check: Callable[[], None] | None = None
) -> tuple[bytes, bool]:
    """Decode an NSIS bzip2 stream: (output, whether it ended with its end marker). Stops
    after the block that takes the output past `limit` bytes. Raises nothing on damage: the
    blocks before it are returned, with False."""
    bits = _Bits(data)
    parts: list[bytes] = []
    total = 0
    rand_bit = False
    try:
        while total <= limit:
            if check is not None:
                check()
            marker = bits.get(8)
            if marker == 0x17:
                return b"".join(parts), True
            if marker != 0x31:
                return b"".join(parts), False
            saved = (bits.pos, bits.buf, bits.live)
            try:
                block = _block(bits, check, rand_bit)
            except BZip2Error:
                if parts or rand_bit:
                    raise
                # The first block tells which layout this NSIS writes.
                bits.pos, bits.buf, bits.live = saved
                rand_bit = True
                block = _block(bits, check, rand_bit)
            parts.append(block)
            total += len(block)
    except (BZip2Error, IndexError):
        return b"".join(parts), False
    return b"".join(parts), False
