"""AutoIt-compiled executables (AU3!EA05 / AU3!EA06): the script and every FileInstall'd file.

An AutoIt executable is the interpreter with an encrypted, compressed blob appended (EA05) or
in a resource (EA06), behind a 16-byte marker and "AU3!EA0x". clamscan decrypts it and scans
the script (EA06's token stream turned back into text) and the embedded files; so do we, with
autoit-ripper (MIT, maintained; it implements AutoIt's MT/LAME ciphers, its LZSS variant and
the EA06 detokeniser). The marker is looked for in the raw bytes, so a resource blob is found
without parsing resources, and in a UPX-unpacked image too.

The library is a forensic tool, not hardened for hostile input: its bit reader holds 8 bytes
per input byte and its loops never look at the clock. So we feed it only blobs of at most
`MAX_BLOB` bytes (a larger one is `Heuristics.Unsupported.AutoIt.Size`: never silently clean),
iterate its per-file generator (each file is charged to the scan before the next is decoded;
its decompressor caps a file at 10 MB), and turn any exception into `Heuristics.Broken.AutoIt`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

MARKER = bytes.fromhex("a3484bbe986c4aa9994c530a86d6487d")
MAX_BLOB = 8 * 1024 * 1024

# Hostile input makes the library log errors by design: not ours to report.
logging.getLogger("autoit_ripper").setLevel(logging.CRITICAL)


def _entries(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in an AU3 blob that starts with MARKER + "AU3!EA0x"."""
    from autoit_ripper import autoit_unpack, utils

    stream = utils.ByteStream(blob[len(MARKER) + 8 :])
    keysum = sum(stream.get_bytes(16))
    if blob[len(MARKER) + 4 : len(MARKER) + 8] == b"EA05":
        decryptor = utils.EA05Decryptor()
        checksum = keysum
    else:
        decryptor = utils.EA06Decryptor()
        checksum = 0
    yield from autoit_unpack.parse_au3_header(stream=stream, checksum=checksum,
                                              decryptor=decryptor)


def autoit_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The script and files of an AutoIt-compiled executable (nothing if it is not one)."""
    at = data.find(MARKER)
    while at >= 0 and data[at + 16 : at + 24] not in (b"AU3!EA05", b"AU3!EA06"):
        at = data.find(MARKER, at + 1)
    if at < 0:
        return
    blob = data[at:]
    if len(blob) > MAX_BLOB:
        ctx.unsupported("AutoIt", "Size")
        return
    found = 0
    try:
        for name, content in _entries(blob):
            ctx.check_time()
            found += 1
            if content:
                ctx.charge_child(len(content))
                yield Child(data=content, name=name.replace("\\", "/").rsplit("/", 1)[-1],
                            origin="autoit", is_attachment=False)
    except (ScanLimitExceeded, EncryptedContent):
        raise
    except Exception:  # the library on damaged input: what it gave so far was scanned
        ctx.broken("AutoIt")
        return
    if not found:
        ctx.broken("AutoIt")
