"""The two old Unix compressors `gzip -d` still reads: compress (`.Z`, LZW, magic 1f 9d) and
pack (`.z`, static Huffman, magic 1f 1e). Round 20 delivered clam.exe in a `.z`; a `.Z` was
`Heuristics.Unsupported.COMPRESS` on its 2-byte magic, which random attachments hit about
once in 200,000. Both are decoded here as gzip's unlzw.c and unpack.c do (gzip the oracle),
in pure Python (neither is in the standard library; each is a few dozen lines).

What counts: the output up to the first corrupt code is scanned, as `gzip -d` writes it
before it stops. A `.Z` is only "broken" (`Heuristics.Broken.COMPRESS`) once at least
`_TRUSTED_CODES` codes decoded first: in random bytes each code past the first few is invalid
about half the time, so data that merely starts with 1f 9d is no finding. A pack header is
checked (its Huffman tree must be complete) before a byte is decoded.

Cost: the output is charged against the scan's bounds as it grows (`ScanContext.output_bound`,
the ratio limit), time is checked every 64 KiB of output; LZW strings are cached up to
`_CACHED` bytes each (memory at most 64 Ki entries of that), longer ones walk their prefixes.
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

COMPRESS_MAGIC = b"\x1f\x9d"
PACK_MAGIC = b"\x1f\x1e"
_TRUSTED_CODES = 64
_CACHED = 256
_CHECK_EVERY = 1 << 16
_MAX_BITLEN = 25  # unpack.c's MAX_BITLEN


class _Sink:
    """Output pieces, charged to the scan as they grow."""

    def __init__(self, ctx: ScanContext, compressed: int) -> None:
        self.ctx = ctx
        self.bound = ctx.output_bound()
        self.compressed = compressed
        self.parts: list[bytes] = []
        self.total = 0
        self.next_check = _CHECK_EVERY

    def add(self, piece: bytes) -> None:
        self.parts.append(piece)
        self.total += len(piece)
        if self.total >= self.next_check:
            self.next_check = self.total + _CHECK_EVERY
            self.ctx.check_time()
            self.ctx.check_ratio(self.compressed, self.total)
            if self.total > self.bound:
                self.ctx.check_output(self.total)

    def data(self) -> bytes:
        out = b"".join(self.parts)
        if len(out) > self.bound:
            self.ctx.check_output(len(out))
        self.ctx.check_ratio(self.compressed, len(out))
        return out


def uncompress(data: bytes, ctx: ScanContext) -> tuple[bytes, bool, int]:
    """A `.Z` file's content as gzip's unlzw writes it: (output, decoded to the end, codes
    read). Codes are read in groups of eight (a group is `n_bits` bytes); when the code width
    grows or a CLEAR code resets it, the rest of the current group is skipped, as compress
    wrote it."""
    if len(data) < 3 or data[:2] != COMPRESS_MAGIC:
        return b"", False, 0
    flags = data[2]
    maxbits, block_mode = flags & 0x1F, bool(flags & 0x80)
    if not 9 <= maxbits <= 16:
        return b"", False, 0
    maxmaxcode = 1 << maxbits
    sink = _Sink(ctx, len(data))
    total_bits = len(data) * 8
    pos = seg = 24  # bit position; where the current code width started
    n_bits = 9
    maxcode = (1 << n_bits) - 1
    free_ent = 257 if block_mode else 256
    prefix = [0] * maxmaxcode
    suffix = bytearray(maxmaxcode)
    strings: list[bytes | None] = [bytes((i,)) for i in range(256)] + [None] * (maxmaxcode - 256)
    oldcode = -1
    finchar = 0
    codes = 0
    while total_bits - pos >= n_bits:
        if free_ent > maxcode:
            group = n_bits * 8
            pos = seg + -(-(pos - seg) // group) * group
            seg = pos
            n_bits += 1
            maxcode = maxmaxcode if n_bits == maxbits else (1 << n_bits) - 1
            continue
        byte = pos >> 3
        code = (int.from_bytes(data[byte : byte + 3], "little") >> (pos & 7)) & (
            (1 << n_bits) - 1)
        pos += n_bits
        codes += 1
        if oldcode == -1:
            if code >= 256:
                return sink.data(), False, codes
            finchar = oldcode = code
            sink.add(bytes((code,)))
            continue
        if code == 256 and block_mode:
            group = n_bits * 8
            pos = seg + -(-(pos - seg) // group) * group
            seg = pos
            n_bits = 9
            maxcode = (1 << n_bits) - 1
            free_ent = 256  # (FIRST - 1: the next entry made is 257)
            continue
        incode = code
        if code >= free_ent:  # the KwKwK case: the string just being defined
            if code > free_ent:
                return sink.data(), False, codes
            text = _string(oldcode, strings, prefix, suffix) + bytes((finchar,))
        else:
            text = _string(code, strings, prefix, suffix)
        finchar = text[0]
        sink.add(text)
        if free_ent < maxmaxcode:
            prefix[free_ent] = oldcode
            suffix[free_ent] = finchar
            base = strings[oldcode]
            strings[free_ent] = (base + bytes((finchar,))
                                 if base is not None and len(base) < _CACHED else None)
            free_ent += 1
        oldcode = incode
    return sink.data(), True, codes


def _string(code: int, strings: list[bytes | None], prefix: list[int],
            suffix: bytearray) -> bytes:
    """The bytes an LZW code stands for: its cached string, or its suffixes walked back to
    the nearest cached prefix."""
    cached = strings[code]
    if cached is not None:
        return cached
    tail = bytearray()
    while (cached := strings[code]) is None:
        tail.append(suffix[code])
        code = prefix[code]
    tail.reverse()
    return cached + bytes(tail)


def unpack(data: bytes, ctx: ScanContext) -> tuple[bytes, bool] | None:
    """A pack(1) `.z` file's content as gzip's unpack writes it: (output, decoded to its end
    code with the length its header states), or None when the header is no pack tree."""
    if len(data) < 8 or data[:2] != PACK_MAGIC:
        return None
    orig_len = int.from_bytes(data[2:6], "big")
    max_len = data[6]
    if not 1 <= max_len <= _MAX_BITLEN or len(data) < 7 + max_len:
        return None
    leaves = [0] * (max_len + 1)
    max_leaves, total = 1, 0
    for length in range(1, max_len + 1):
        leaves[length] = data[6 + length]
        if max_leaves - (length == max_len) < leaves[length]:
            return None
        max_leaves = (max_leaves - leaves[length] + 1) * 2 - 1
        total += leaves[length]
    if total >= 256:
        return None
    leaves[max_len] += 1
    pos = 7 + max_len
    lit_base = [0] * (max_len + 1)
    literals = bytearray()
    for length in range(1, max_len + 1):
        lit_base[length] = len(literals)
        literals += data[pos : pos + leaves[length]]
        pos += leaves[length]
    if pos > len(data):
        return None
    leaves[max_len] += 1  # the end code
    parents = [0] * (max_len + 1)
    nodes = 0
    for length in range(max_len, 0, -1):
        nodes >>= 1
        parents[length] = nodes
        lit_base[length] -= nodes
        nodes += leaves[length]
    if nodes >> 1 != 1:
        return None
    eob = leaves[max_len] - 1
    sink = _Sink(ctx, len(data))
    # The bits as a string of "0"/"1", made 64 KiB of input at a time (memory stays small).
    bits, at, fed = "", 0, pos
    out = bytearray()
    while True:
        if len(bits) - at < max_len and fed < len(data):
            bits = bits[at:] + "".join(map(_BITS.__getitem__, data[fed : fed + _CHECK_EVERY]))
            at, fed = 0, fed + _CHECK_EVERY
        n = len(bits)
        code, length = 0, 0
        while True:
            if at >= n or length >= max_len:
                sink.add(bytes(out))
                return sink.data(), False
            code = code * 2 + (bits[at] == "1")
            at += 1
            length += 1
            if code >= parents[length]:
                break
        if length == max_len and code == eob:
            break
        index = code + lit_base[length]
        if not 0 <= index < len(literals):
            sink.add(bytes(out))
            return sink.data(), False
        out.append(literals[index])
        if len(out) >= _CHECK_EVERY:
            sink.add(bytes(out))
            out.clear()
    sink.add(bytes(out))
    content = sink.data()
    return content, len(content) == orig_len


_BITS = [format(b, "08b") for b in range(256)]


def compress_children(data: bytes, ctx: ScanContext, name: str | None) -> Iterator[Child]:
    """The content of a `.Z` layer (one child, named as `gzip -d` names it); one that stops
    at a corrupt code after `_TRUSTED_CODES` good ones is also `Heuristics.Broken.COMPRESS`."""
    out, complete, codes = uncompress(data, ctx)
    if not complete and codes >= _TRUSTED_CODES:
        ctx.broken("COMPRESS")
    if out:
        ctx.charge_child(len(out))
        yield Child(data=out, name=_inner(name, ".z"), origin="compress")


def pack_children(data: bytes, ctx: ScanContext, name: str | None) -> Iterator[Child]:
    """The content of a pack(1) layer (one child); nothing for a header that is no tree.
    No finding for a stream cut short: any bits decode in a complete tree, so random bytes
    behind a valid header would be "broken" too; what decoded is scanned, as gzip writes it."""
    unpacked = unpack(data, ctx)
    if unpacked is not None and unpacked[0]:
        ctx.charge_child(len(unpacked[0]))
        yield Child(data=unpacked[0], name=_inner(name, ".z"), origin="pack")


def _inner(name: str | None, suffix: str) -> str | None:
    if name and name.lower().endswith(suffix) and len(name) > len(suffix):
        return name[: -len(suffix)]
    return None
