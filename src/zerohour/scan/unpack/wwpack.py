"""WWPack32: each section it packed, decompressed the way its own stub does, from a copy of the
compressed data.

Why not only the emulator (`emulator`): the stub copies a section's compressed data to the end
of the section and decompresses it in place, front to back; run faithfully, its output catches
up with its input a few bytes before the end (ClamAV's clam-wwpack.exe: by 4 bytes), reads what
it just wrote, misses the end code and overwrites itself. Reading a copy of the input, as here,
gives the whole section, as clamscan's unpacker does. Where the output did catch up with the
input, the stub itself would have read other bytes than this copy: the result says so
(`Decoded.complete` False), and the caller reports the packer as well.

Why hand-written: no library reads WWPack. The format is read off the stub's code
(clam-wwpack.exe):
- at the entry point + 0x2A1, one 17-byte entry per section: the distance back from the entry
  point to the section, the end of its output and of its compressed data, the length in
  dwords, and a byte that says whether another entry follows;
- a bit stream of 32-bit little-endian words read from the top bit down (each word fetched as
  soon as the last ran out), with literal bytes between the words;
- the program's entry point at entry point + 0x299 + the dword at entry point + 0x295.

Bounded: all sections' output together is at most 4 times the image (64 sections over one
region cost a second of copying per 3.5 KB file), a section's output stops at its end (more is
damage), 64 sections; the scan's clock is checked every 64 KiB of output.

The stub decoded as its own is the one whose code up to its final jump is the one read
here. A stub with some bytes changed is still WWPack's: an instruction swapped for its twin
(`sub ebx,ebx` for `xor ebx,ebx`: round 26) or another banner leaves all but a few of its
16-byte pieces the same, or the bytes clamscan knows it by (`stub`); nine swaps leave its
table, which any stub is decoded by when it fits the image and its streams decode to every
end code (round 27). Such a file is decoded, but never as `complete` (a changed stub may
transform its output), and the caller runs its stub in the emulator as well. `complete` is
also False where the stub would do more than this decoder: an output that overlaps the stub,
a section's input moved down onto itself, fixups applied at another base.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from zerohour.scan import pe
from zerohour.scan.limits import ScanContext
from zerohour.scan.unpack import image

__all__ = ["Decoded", "unpack"]

_TABLE = 0x2A1
_ENTRY = 17
_END_CODE = 0x1FF
#: The stub's code up to its final jump (the program's entry point follows), as in ClamAV's
#: clam-wwpack.exe: the decoder below is this code's.
_STUB_CODE = 0x294
_STUB_SHA256 = "7b791118392001e4f52e451f128a5cce3cdc8e61506505cc0df156848997b2c1"
#: The stub's banner, text its first jump skips: never compared.
_BANNER = slice(0x08, 0x68)
#: The same code, banner zeroed, in 16-byte pieces (the last one 4 bytes), each by the start of
#: its SHA-256: a stub that differs in at most `_CHANGED` of them is WWPack's with a few bytes
#: changed.
_PIECE = 16
_PIECES_HEX = (
    "bc0deb1e374708ff374708ff374708ff374708ff374708ff4ecf084afd569dd34bacf638974792eb4fb8608d"
    "7830e5afe1f8db711d0b79bf2bc94b243b5e15c840129eb194d4812719566bbcf3040c4d206e97b704521d18"
    "a812ab842f1428b2a5155eb12e87d4fd00fb15321c8a05434b60f897b374382399ea0226b40ff468a88836b1"
    "b872aa25a29846ecbc66870a543a77678b900bd5d86570997c7e73c4eb0e44ae23a790b0"
)
_PIECES = tuple(bytes.fromhex(_PIECES_HEX[i : i + 8]) for i in range(0, len(_PIECES_HEX), 8))
_CHANGED = 8
#: What clamscan (libclamav's pe.c) knows WWPack's stub by: its first 7 bytes, and 19 at +0x68.
_CLAMSCAN_HEAD = bytes.fromhex("53558be833dbeb")
_CLAMSCAN_AT_68 = bytes.fromhex("e800000000582d6d000000506033c950585050")


class _Damaged(ValueError):
    """The stream does not decode as WWPack's (damage, or a version we do not know)."""


class _Bits:
    """The compressed data: bits from the top of 32-bit little-endian words, bytes between.
    `out` and `room` place it as the stub has it: `room` bytes after the output's start, so
    a read of a byte the output has already reached is seen (`caught_up`)."""

    def __init__(self, data: bytes, out: bytearray, room: int) -> None:
        self.data = data
        self.out = out
        self.room = room
        self.caught_up = False
        self.pos = 0
        self.word = self._dword()
        self.left = 32

    def _reading(self) -> None:
        if len(self.out) > self.room + self.pos:
            self.caught_up = True

    def _dword(self) -> int:
        self._reading()
        if self.pos + 4 > len(self.data):
            raise _Damaged("out of input")
        (word,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        return int(word)

    def bits(self, n: int) -> int:
        """The next `n` bits (1-15); the next word is fetched as soon as one runs out."""
        if n < self.left:
            value = self.word >> (32 - n)
            self.word = (self.word << n) & 0xFFFFFFFF
            self.left -= n
            return value
        have = self.left
        value = self.word >> (32 - have)
        need = n - have
        self.word = self._dword()
        if need:
            value = (value << need) | (self.word >> (32 - need))
            self.word = (self.word << need) & 0xFFFFFFFF
        self.left = 32 - need
        return value

    def byte(self) -> int:
        self._reading()
        if self.pos >= len(self.data):
            raise _Damaged("out of input")
        self.pos += 1
        return self.data[self.pos - 1]


def _distance(src: _Bits, kind: int) -> int:
    """How far back a copy starts (`kind`: the two bits read after the first)."""
    if kind == 3:
        b = src.bits(2)
        n = b + 5 + (b >= 2)
        value = src.bits(n)
        return -1 if value == _END_CODE else value + (1 << n) - (0x9F if b >= 2 else 0x1F)
    v = src.bits(3)
    if v == 6:
        return src.bits(14) + 0x1FE1
    if v == 7:
        return src.bits(15) + 0x5FE1
    n = v + 5 if v < 3 else 8 + src.bits(1) if v == 3 else 10 + src.bits(1) if v == 4 else 12
    return src.bits(n) + (1 << n) - 0x1F


def _length(src: _Bits, kind: int) -> int:
    """How many bytes a copy takes (`kind` 0: coded; 1 and 2: 3 and 4; 3: 2)."""
    if kind:
        return 2 if kind == 3 else kind + 2
    if not src.bits(1):
        return 5 + src.bits(1)
    if short := src.bits(3):
        return short + 6
    if longer := src.bits(4):
        return longer + 13
    width, base = 4, 0xD
    while width < 7:
        base = (base + 2) * 2 - 1
        width += 1
        if src.bits(1):
            return (src.bits(width) + base) & 0xFF
    return src.bits(14)


def _inflate(data: bytes, limit: int, ctx: ScanContext) -> tuple[bytes, bool]:
    """One section's output, at most `limit` bytes, with the compressed data at its end;
    and whether the output never reached a byte of it still to be read."""
    out = bytearray()
    src = _Bits(data, out, limit - len(data))
    checked = 0
    while True:
        if len(out) - checked >= 1 << 16:
            ctx.check_time()
            checked = len(out)
        if not src.bits(1):
            out.append(src.byte())
        else:
            kind = src.bits(2)
            distance = _distance(src, kind)
            if distance == -1:
                return bytes(out), not src.caught_up
            length = _length(src, kind)
            if not 0 < distance <= len(out):
                raise _Damaged("a copy from before the output")
            if distance >= length:
                out += out[len(out) - distance : len(out) - distance + length]
            else:  # (overlapping what it writes: the last `distance` bytes, repeated)
                out += (out[-distance:] * (length // distance + 1))[:length]
        if len(out) > limit:
            raise _Damaged("output past the section")


@dataclass(frozen=True, slots=True)
class Decoded:
    """The image with every section decompressed, as a PE whose raw data lies where it lies in
    memory; `complete`: the stub itself would have read the same input (its output never
    caught up with it, and the stub is the very one this decoder follows: `exact`)."""

    pe: bytes
    complete: bool
    exact: bool = True


def stub(data: bytes, at: int | None) -> str | None:
    """Whether the code at `at` (a file's entry point) is WWPack's stub: "exact" (the one
    this decoder follows), "near" (the bytes clamscan knows it by, or all but at most
    `_CHANGED` of its pieces the same, its banner aside), or None."""
    if at is None or at < 0:
        return None
    code = data[at : at + _STUB_CODE]
    if len(code) < _STUB_CODE:
        return None
    if hashlib.sha256(code).hexdigest() == _STUB_SHA256:
        return "exact"
    if code[:7] == _CLAMSCAN_HEAD and code[0x68 : 0x68 + 19] == _CLAMSCAN_AT_68:
        return "near"
    masked = bytearray(code)
    masked[_BANNER] = bytes(_BANNER.stop - _BANNER.start)
    differ = 0
    for i, piece in enumerate(_PIECES):
        if hashlib.sha256(masked[i * _PIECE : (i + 1) * _PIECE]).digest()[:4] != piece:
            differ += 1
            if differ > _CHANGED:
                return None
    return "near"


def _table_fits(data: bytes, info: pe.PEInfo) -> bool:
    """Whether the file holds, where WWPack's table lies (entry point + 0x2A1), a first entry
    that fits the image: a cheap test before a stub we do not know is decoded by its table."""
    at = info.entry_point_offset
    if at is None or at + _TABLE + _ENTRY > len(data):
        return False
    back, end, dwords, last = struct.unpack_from("<IIII", data, at + _TABLE)
    span = max((s.virtual_address + max(s.virtual_size, s.raw_size) for s in info.sections),
               default=0)
    section = info.entry_point_rva - back
    return bool(section >= 0 and 0 < 4 * dwords <= last + 4 and section + last + 4 <= span
                and section + end + 4 <= span)


def unpack(data: bytes, info: pe.PEInfo, ctx: ScanContext) -> Decoded | None:
    """The image of the WWPack32 file `data`, decoded; None if it does not decode (the caller
    runs the stub, and reports the packer). A stub `stub` does not know is decoded by its
    table alone (round 27: nine instructions re-encoded): a table and streams that decode to
    every section's end code are WWPack's, whatever code reads them."""
    kind = stub(data, info.entry_point_offset)
    if kind is None and not _table_fits(data, info):
        return None
    placed = image.layout(data, info)
    if placed is None:
        return None
    base, size, mapped = placed
    memory = bytearray(mapped)
    ep = info.entry_point_rva
    at = ep + _TABLE
    complete = True
    written = 0
    try:
        for _ in range(64):
            if not 0 <= at <= size - _ENTRY:
                return None
            back, end, dwords, last = struct.unpack_from("<IIII", memory, at)
            section = ep - back
            stop = section + last + 4  # (the compressed data's end)
            start = stop - 4 * dwords
            region = section + end + 4  # (the output's end: the stub zero-fills up to it)
            written += region - section
            if not (dwords and 0 <= section <= start < stop <= size
                    and section < region <= size and written <= 4 * size):
                return None
            # The stub moves the input to the end of the output, last dword first: moved down
            # onto itself, that copy is not the input any more; an output over the stub's
            # code or table changes what the stub does next.
            moved = region - 4 * dwords
            complete = complete and not moved < start < region and not (
                section < ep + _TABLE + _ENTRY * 64 and ep < region)
            out, alone = _inflate(bytes(memory[start:stop]), region - section, ctx)
            complete = complete and alone
            memory[section : section + len(out)] = out
            memory[section + len(out) : region] = bytes(region - section - len(out))
            if not memory[at + 16]:
                break
            at += _ENTRY
        else:
            return None
    except _Damaged:
        return None
    # Fixups: at the base it was packed for (the dword at +0x29D is its entry point's
    # address), the stub adds 0 to each; at another, the stub changes code this decoder does
    # not.
    (packed_at,) = struct.unpack_from("<I", memory, ep + 0x29D)
    fixups = at + _ENTRY  # (after the last entry)
    if packed_at != base + ep and fixups + 4 <= size and memory[fixups : fixups + 4] != bytes(4):
        complete = False
    oep = ep + 0x299 + struct.unpack_from("<i", memory, ep + 0x295)[0]
    exact = kind == "exact"
    return Decoded(image.rebuild(bytes(memory), oep if 0 <= oep < size else ep),
                   complete and exact, exact)
