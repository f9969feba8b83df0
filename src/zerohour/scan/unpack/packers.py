"""Runtime packers we recognise but do not unpack: `Heuristics.Unsupported.Packer.<Name>`.

clamscan has a static unpacker for each of these (libclamav's aspack, mew, petite, spin, upack,
wwunpack, yc); we have none yet, so the packed program, and whatever it carries, is not seen.
By the rule that what cannot be taken apart is never silently clean, a file they packed is a
finding. Recognition is by the marks these packers leave and legitimate software does not: a
section name of their own, or the first bytes of their stub at the entry point (as PEiD
signatures do). A look-alike only makes a file more suspect, never less.
"""

from __future__ import annotations

import re

from zerohour.scan import pe
from zerohour.scan.unpack import wwpack

#: Section names the packers give their own sections.
_SECTIONS = {
    ".aspack": "ASPack", ".adata": "ASPack",
    "MEW": "MEW",
    ".petite": "Petite",
    ".WWP32": "WWPack",
    "yC": "yC",
}
#: Stub bytes at the entry point (`.` is any byte): these stay when the sections are renamed.
_ENTRY = (
    (re.compile(rb"\xeb\x01\x68\x60\xe8\x00\x00\x00\x00\x8b\x1c\x24", re.S), "PESpin"),
    (re.compile(rb"\xbe....\xad\x50\xff\x76\x34\xeb\x7c", re.S), "Upack"),
    (re.compile(rb"\x60\xe8\x03\x00\x00\x00\xe9\xeb\x04\x5d\x45\x55\xc3\xe8", re.S), "ASPack"),
    # mov eax, stub; push handler; push fs:[0]; mov fs:[0], esp; pushfw; pushad; push eax
    (re.compile(rb"\xb8....\x68....\x64\xff\x35\x00\x00\x00\x00\x64\x89\x25\x00\x00\x00\x00"
                rb"\x66\x9c\x60\x50", re.S), "Petite"),
    (re.compile(rb"\x53\x55\x8b\xe8\x33\xdb\xeb.\x0d\x0a\x0d\x0aWWPack32", re.S), "WWPack"),
    (re.compile(rb"\x55\x8b\xec\x53\x56\x57\x60\xe8\x00\x00\x00\x00\x5d\x81\xed....\xb9....\x81"
                rb"\xe9....\x8b\xd5\x81\xc2....\x8d\x3a\x8b\xf7\x33\xc0", re.S), "yC"),
)
#: MEW's entry point jumps into its decompressor (in the headers): these are its first bytes.
_MEW = re.compile(rb"\xbe....\x8b\xde\xad\xad\x50\xad\x97\xb2\x80\xa4\xb6\x80\xff\x13\x73", re.S)


def identify(data: bytes, info: pe.PEInfo, leftover: str | None = None) -> str | None:
    """The packer that packed `data`, if it is one we recognise and do not unpack: by the stub
    at its entry point (what runs first), else by its section names. Names come second: a
    packed program's own names stay in the file another packer made of it (round 28: ASPack's
    inside WWPack's said ASPack, and WWPack's stub was run as ASPack's). `leftover`: a packer
    whose names are left over in an image it unpacked, which say nothing of the program."""
    found = _by_entry_point(data, info)
    if found is not None:
        return found
    for section in info.sections:
        name = _SECTIONS.get(section.name)
        if name is not None and name != leftover:
            return name
    return None


def _by_entry_point(data: bytes, info: pe.PEInfo) -> str | None:
    ep = info.entry_point_offset
    if ep is None:
        return None
    head = data[ep : ep + 64]
    for pattern, name in _ENTRY:
        if pattern.match(head):
            return name
    if wwpack.stub(data, ep) is not None:  # (its stub with a few bytes changed: round 26)
        return "WWPack"
    if head[:1] == b"\xe9" and len(head) >= 5:
        target = (info.entry_point_rva + 5 + int.from_bytes(head[1:5], "little", signed=True))
        at = pe.rva_to_offset(info.sections, target, len(data))
        if at is None and 0 <= target < min((s.raw_offset for s in info.sections if s.raw_size),
                                            default=0x400):
            at = target  # in the headers, which lie at the start of the file as in memory
        if at is not None and _MEW.match(data, at):
            return "MEW"
    return None
