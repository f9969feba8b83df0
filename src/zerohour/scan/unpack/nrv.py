"""UCL NRV2B / NRV2D / NRV2E decompression, the codecs UPX packs Windows executables with.

Written here because nothing maintained does it: Debian 13 ships no `upx-ucl`, and PyPI has no
maintained UCL decoder (`unipacker` emulates the unpacking stub with Unicorn, which runs hostile
code and is neither small nor bounded). The three formats are small LZ77 variants (an
Elias-gamma-like bit stream read 32 bits at a time, little-endian, plus byte-aligned literals
and offset bytes), so a direct decoder is short.

Bounded: the output never exceeds `limit` bytes (a match or literal past it is `NRVError`),
every gamma code is cut off at 32 bits, `check` (the scan clock) is called every few thousand
tokens, and an overlapping copy is built by repetition (no byte loop). Pure Python: about
1-3 MB/s, which is plenty for packed executables (UPX images are rarely more than a few MB; the
scan's own file-size bound applies on top).
"""

from __future__ import annotations

from collections.abc import Callable

_MASK = 0xFFFFFFFF
_END = 0xFFFFFFFF
_MAX_GAMMA = 1 << 32
_CHECK_EVERY = 4096


class NRVError(ValueError):
    """The stream is corrupt, truncated, or would decode past the output limit (`overrun`)."""

    def __init__(self, message: str, overrun: bool = False) -> None:
        super().__init__(message)
        self.overrun = overrun


class _Bits:
    """UPX's 32-bit little-endian bit buffer; literals and offset bytes are read in between."""

    __slots__ = ("bb", "bc", "pos", "src")

    def __init__(self, src: bytes, pos: int) -> None:
        self.src = src
        self.pos = pos
        self.bb = 0
        self.bc = 0

    def bit(self) -> int:
        if self.bc == 0:
            p = self.pos
            if p + 4 > len(self.src):
                raise NRVError("truncated bit stream")
            self.bb = int.from_bytes(self.src[p : p + 4], "little")
            self.pos = p + 4
            self.bc = 32
        self.bc -= 1
        return (self.bb >> self.bc) & 1

    def byte(self) -> int:
        p = self.pos
        if p >= len(self.src):
            raise NRVError("truncated input")
        self.pos = p + 1
        return self.src[p]


def _copy(out: bytearray, off: int, length: int, limit: int) -> None:
    if off > len(out) or off <= 0:
        raise NRVError("match offset before the start of the output")
    if len(out) + length > limit:
        raise NRVError("output past its limit", overrun=True)
    start = len(out) - off
    if off >= length:
        out += out[start : start + length]
    else:  # overlapping: repeats the last `off` bytes
        pat = bytes(out[start:])
        out += (pat * (length // off + 1))[:length]


def decompress(
    method: str, src: bytes, limit: int, start: int = 0, check: Callable[[], None] | None = None
) -> tuple[bytes, int]:
    """Decode one NRV2B/2D/2E stream (`method` "2b", "2d" or "2e") that starts at `start`:
    (output, input offset after the end marker). Raises `NRVError` on damage or overrun."""
    if method not in ("2b", "2d", "2e"):
        raise ValueError(f"unknown NRV method {method!r}")
    bits = _Bits(src, start)
    bit = bits.bit
    out = bytearray()
    last_off = 1
    tokens = 0
    while True:
        tokens += 1
        if check is not None and not tokens % _CHECK_EVERY:
            check()
        while bit():
            if len(out) >= limit:
                raise NRVError("output past its limit", overrun=True)
            out.append(bits.byte())
        m_off = 1
        while True:  # gamma-coded high part of the offset
            m_off = m_off * 2 + bit()
            if m_off >= _MAX_GAMMA:
                raise NRVError("offset code too long")
            if method == "2b":
                if bit():
                    break
            else:
                if bit():
                    break
                m_off = (m_off - 1) * 2 + bit()
        m_len = 0
        if m_off == 2:
            m_off = last_off
            if method != "2b":
                m_len = bit()
        else:
            if m_off - 3 > 0xFFFFFF:  # 32-bit offsets only: the end marker is the largest
                raise NRVError("offset too large")
            m_off = (m_off - 3) * 256 + bits.byte()
            if m_off == _END:
                return bytes(out), bits.pos
            if method != "2b":
                m_len = (m_off ^ _MASK) & 1
                m_off >>= 1
            m_off += 1
            last_off = m_off
        if method == "2e":
            if m_len:
                m_len = 1 + bit()
            elif bit():
                m_len = 3 + bit()
            else:
                m_len = _gamma(bit) + 3
            m_len += m_off > 0x500
        else:
            if method == "2b":
                m_len = bit()
            m_len = m_len * 2 + bit()
            if m_len == 0:
                m_len = _gamma(bit) + 2
            m_len += m_off > (0xD00 if method == "2b" else 0x500)
        _copy(out, m_off, m_len + 1, limit)


def _gamma(bit: Callable[[], int]) -> int:
    """1, then (value * 2 + bit) until a stop bit: the length code shared by all three."""
    value = 1
    while True:
        value = value * 2 + bit()
        if value >= _MAX_GAMMA:
            raise NRVError("length code too long")
        if bit():
            return value
