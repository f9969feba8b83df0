"""Flash video (FLV): its audio and video streams as layers, as 7-Zip writes them out.

7-Zip opens an FLV and writes each stream as a file: the payloads of its audio tags joined,
each after its one-byte sound header, likewise its video tags after their frame byte (7-Zip
keeps AAC's and AVC's packet bytes in the stream, and so do we: that is the file a recipient
gets). A file cut into the tags
of one stream is the stream itself (round 18: clam.exe as the "MP3" audio of a clip was
delivered). Script (metadata) tags are left to the layer's own scan. A tag past the end of
the file, or one 7-Zip stops at (another type, a stream id, a wrong previous-tag size), is
`Heuristics.Broken.FLV` (what was read is still scanned).
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

_AUDIO, _VIDEO = 8, 9
_KINDS = frozenset({_AUDIO, _VIDEO, 18})  # (18: script data)
_MAX_TAGS = 1_000_000


def is_flv(head: bytes) -> bool:
    return len(head) >= 9 and head[:4] == b"FLV\x01" and int.from_bytes(head[5:9], "big") >= 9


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    streams: dict[int, bytearray] = {_AUDIO: bytearray(), _VIDEO: bytearray()}
    pos = int.from_bytes(data[5:9], "big") + 4  # (header, then PreviousTagSize0)
    for n in range(_MAX_TAGS):
        if not n % 4096:
            ctx.check_time()
        if pos + 11 > len(data):
            if pos < len(data):
                ctx.broken("FLV")
            break
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        body = data[pos + 11 : pos + 11 + size]
        if len(body) < size:
            ctx.broken("FLV")
            break
        after = data[pos + 11 + size : pos + 15 + size]
        if kind not in _KINDS or data[pos + 8 : pos + 11] != b"\0\0\0" or (
                len(after) == 4 and int.from_bytes(after, "big") != 11 + size):
            # 7-Zip stops at a tag of another type, stream or size (round 19: a trailing
            # tag of junk 7-Zip leaves out): the streams so far, and the file is damaged
            ctx.broken("FLV")
            break
        if kind in streams and body:
            streams[kind] += body[1:]
        pos += 11 + size + 4  # (PreviousTagSize)
    for kind, name in ((_AUDIO, "audio"), (_VIDEO, "video")):
        if streams[kind]:
            ctx.charge_child(len(streams[kind]))
            yield Child(data=bytes(streams[kind]), name=None, origin=f"flv-{name}")
