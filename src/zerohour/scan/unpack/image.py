"""A packed PE's image as the Windows loader maps it, and an image back as a PE file: what
the emulator runs a stub in (`emulator`) and what an unpacker gives to the scan (`wwpack`).
"""

from __future__ import annotations

import struct

from zerohour.scan import pe

PAGE = 0x1000
MAX_IMAGE = 64 << 20
#: An image is at most this many times its file (ASPack and UPX make 2-4), and 1 MiB in any
#: case: a 3 KB file declaring 64 MiB used up the scan's size budget in seven copies.
MAX_IMAGE_RATIO = 16


def layout(data: bytes, info: pe.PEInfo) -> tuple[int, int, bytes] | None:
    """(image base, size, the image as the loader maps it), or None if it cannot be mapped."""
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    opt = lfanew + 24
    if opt + 60 > len(data):
        return None
    salign, _falign = struct.unpack_from("<II", data, opt + 32)
    image_size, header_size = struct.unpack_from("<II", data, opt + 56)
    base = info.image_base
    size = -(-image_size // PAGE) * PAGE
    bound = min(MAX_IMAGE, max(1 << 20, MAX_IMAGE_RATIO * len(data)))
    if base % 0x10000 or not PAGE <= size <= bound or base + size > 0x6F000000:
        return None
    image = bytearray(size)
    head = data[: min(header_size or PAGE, size, len(data))]
    image[: len(head)] = head
    for s in info.sections:
        if s.virtual_address >= size:
            continue
        span = s.virtual_size or s.raw_size
        if salign:
            span = -(-span // min(salign, PAGE)) * min(salign, PAGE) if span else 0
        n = min(s.raw_size, span or s.raw_size, size - s.virtual_address)
        chunk = data[s.raw_offset : s.raw_offset + n]  # (shorter in a cut file)
        image[s.virtual_address : s.virtual_address + len(chunk)] = chunk
    return base, size, bytes(image)


def rebuild(memory: bytes, oep_rva: int) -> bytes:
    """The memory image as a PE file: each section's raw data is where it lies in memory, and
    the entry point is the OEP (a forged one-section header if the stub wiped the headers)."""
    out = bytearray(memory)
    parsed = pe.parse(memory)
    if parsed is None or len(memory) < 0x40:
        return forged(memory[PAGE:], PAGE, oep_rva, b"EMU-RAW")
    lfanew = struct.unpack_from("<I", out, 0x3C)[0]
    opt = lfanew + 24
    (nsec,) = struct.unpack_from("<H", out, lfanew + 6)
    (opt_size,) = struct.unpack_from("<H", out, lfanew + 20)
    table = opt + opt_size
    if table + 40 * nsec > min(len(out), PAGE):
        return forged(memory[PAGE:], PAGE, oep_rva, b"EMU-RAW")
    struct.pack_into("<I", out, opt + 16, oep_rva)
    struct.pack_into("<I", out, opt + 36, PAGE)  # FileAlignment: raw data = memory layout
    for i in range(nsec):
        at = table + 40 * i
        vsize, vaddr = struct.unpack_from("<II", out, at + 8)
        span = min(-(-max(vsize, 1) // PAGE) * PAGE, max(0, len(out) - vaddr))
        struct.pack_into("<II", out, at + 16, span, vaddr)
    return bytes(out)


def forged(body: bytes, rva: int, entry_rva: int, name: bytes) -> bytes:
    """A minimal PE32 holding `body` as one section at `rva` (the headers were lost)."""
    size = -(-len(body) // PAGE) * PAGE
    coff = struct.pack("<4sHHIIIHH", b"PE\x00\x00", 0x14C, 1, 0, 0, 0, 0xE0, 0x010F)
    opt = bytearray(0xE0)
    struct.pack_into("<HBB", opt, 0, 0x10B, 0, 0)
    struct.pack_into("<I", opt, 16, entry_rva)  # AddressOfEntryPoint
    struct.pack_into("<I", opt, 28, 0x400000)  # ImageBase
    struct.pack_into("<II", opt, 32, PAGE, PAGE)  # Section / FileAlignment
    struct.pack_into("<II", opt, 56, rva + size, PAGE)  # SizeOfImage, SizeOfHeaders
    struct.pack_into("<I", opt, 92, 16)  # NumberOfRvaAndSizes
    section = struct.pack("<8sIIIIIIHHI", name, size, rva, size, PAGE, 0, 0, 0, 0, 0xE0000060)
    head = b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40) + coff + bytes(opt) + section
    return head + bytes(PAGE - len(head)) + body + bytes(size - len(body))
