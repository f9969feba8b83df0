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

#: Section names the packers give their own sections.
_SECTIONS = {
    ".aspack": "ASPack", ".adata": "ASPack",
    "MEW": "MEW",
    ".petite": "Petite",
    ".WWP32": "WWPack",
    "yC": "yC",
}
#: Stub bytes at the entry point (`.` is any byte).
_ENTRY = (
    (re.compile(rb"\xeb\x01\x68\x60\xe8\x00\x00\x00\x00\x8b\x1c\x24", re.S), "PESpin"),
    (re.compile(rb"\xbe....\xad\x50\xff\x76\x34\xeb\x7c", re.S), "Upack"),
    (re.compile(rb"\x60\xe8\x03\x00\x00\x00\xe9\xeb\x04\x5d\x45\x55\xc3\xe8", re.S), "ASPack"),
)


def identify(data: bytes, info: pe.PEInfo) -> str | None:
    """The packer that packed `data`, if it is one we recognise and do not unpack."""
    for section in info.sections:
        name = _SECTIONS.get(section.name)
        if name is not None:
            return name
    ep = info.entry_point_offset
    if ep is not None:
        head = data[ep : ep + 16]
        for pattern, name in _ENTRY:
            if pattern.match(head):
                return name
    return None
