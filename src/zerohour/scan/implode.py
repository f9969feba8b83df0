"""PKZIP 1.x "Implode" (zip method 6), decoded here, bounded: neither libarchive 3.6 nor a
maintained Python library decodes it (ClamAV does: `clam.impl.zip` in its test corpus), and
it is only a few Shannon-Fano trees in front of an LZ77 stream (PKWARE APPNOTE 5.3).

General-purpose flag bit 1 selects an 8 KiB window (7 low distance bits, else 4 KiB and 6),
bit 2 a literal tree (three trees, minimum match 3, else raw literal bytes and minimum 2).
Bits are read least-significant first; each code is matched bit by bit against its tree.
"""

from __future__ import annotations

from zerohour.scan.limits import ScanContext


class _Bits:
    __slots__ = ("acc", "data", "n", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.acc = 0
        self.n = 0

    def get(self, count: int) -> int:
        while self.n < count:
            if self.pos >= len(self.data):
                raise EOFError
            self.acc |= self.data[self.pos] << self.n
            self.pos += 1
            self.n += 8
        value = self.acc & ((1 << count) - 1)
        self.acc >>= count
        self.n -= count
        return value


def _tree(data: bytes, pos: int, symbols: int) -> tuple[dict[tuple[int, int], int], int]:
    """A Shannon-Fano tree stored at `pos`: ({(length, code): symbol}, position after it)."""
    if pos >= len(data):
        raise EOFError
    count = data[pos] + 1
    raw = data[pos + 1 : pos + 1 + count]
    if len(raw) < count:
        raise EOFError
    lengths: list[int] = []
    for b in raw:
        lengths += [(b & 0x0F) + 1] * ((b >> 4) + 1)
    if len(lengths) != symbols:
        raise ValueError("bad tree")
    order = sorted(range(symbols), key=lambda s: lengths[s])  # stable: ties keep file order
    codes: dict[tuple[int, int], int] = {}
    code = increment = last = 0
    for i in reversed(range(symbols)):
        sym = order[i]
        code = (code + increment) & 0xFFFF
        if lengths[sym] != last:
            last = lengths[sym]
            increment = 1 << (16 - last)
        codes[(last, code >> (16 - last))] = sym
    return codes, pos + 1 + count


def _decode_symbol(bits: _Bits, tree: dict[tuple[int, int], int]) -> int:
    value = 0
    for length in range(1, 17):
        value = (value << 1) | bits.get(1)
        sym = tree.get((length, value))
        if sym is not None:
            return sym
    raise ValueError("bad code")


def explode(raw: bytes, flags: int, size: int, ctx: ScanContext) -> tuple[bytes, bool]:
    """Decode imploded data to at most `size` bytes: (output, whether it was complete)."""
    big_window = bool(flags & 0x2)
    has_literals = bool(flags & 0x4)
    low_bits = 7 if big_window else 6
    min_match = 3 if has_literals else 2
    bound = ctx.output_bound()
    out = bytearray()
    try:
        pos = 0
        literal_tree = None
        if has_literals:
            literal_tree, pos = _tree(raw, pos, 256)
        length_tree, pos = _tree(raw, pos, 64)
        distance_tree, pos = _tree(raw, pos, 64)
        bits = _Bits(raw[pos:])
        steps = 0
        while len(out) < size:
            steps += 1
            if not steps & 0x3FF:
                ctx.check_time()
                if len(out) > bound:
                    ctx.check_output(len(out))
                ctx.check_ratio(len(raw), len(out))
            if bits.get(1):
                out.append(_decode_symbol(bits, literal_tree) if literal_tree else bits.get(8))
                continue
            low = bits.get(low_bits)
            distance = (_decode_symbol(bits, distance_tree) << low_bits | low) + 1
            length = _decode_symbol(bits, length_tree)
            if length == 63:
                length += bits.get(8)
            length += min_match
            start = len(out) - distance
            if start < 0:  # before the start: PKZIP's window is zero-filled
                fill = min(-start, length)
                out += bytes(fill)
                length -= fill
                start = len(out) - distance
            if distance >= length:
                out += out[start : start + length]
            else:
                for i in range(length):
                    out.append(out[start + i])
    except (EOFError, ValueError):
        return bytes(out[:size]), False
    if len(out) > bound:
        ctx.check_output(len(out))
    return bytes(out[:size]), True
