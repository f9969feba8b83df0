"""Flash video: a file cut into the tags of one stream (round 18: clam.exe as a clip's MP3
audio was delivered). 7-Zip is the oracle: it writes each stream out, and one is clam.exe."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import pytest

from scan.test_containers import CLAM, FOUND, dbdir, engine, tool
from zerohour.scan import Engine, filetype
from zerohour.scan.types import FileType

__all__ = ["dbdir", "engine"]  # (fixtures)


def _flv(payload: bytes, kind: int, head: bytes, piece: int = 64) -> bytes:
    """An FLV whose tags of `kind` (8 audio, 9 video) carry `payload` in pieces, each behind
    the tag's own header bytes `head`."""
    out = bytearray(b"FLV\x01" + bytes([4 if kind == 8 else 1]) + struct.pack(">I", 9))
    out += struct.pack(">I", 0)
    for n, at in enumerate(range(0, len(payload), piece)):
        body = head + payload[at : at + piece]
        tag = bytes([kind]) + len(body).to_bytes(3, "big") + (n * 26).to_bytes(3, "big")
        tag += b"\x00" + b"\x00\x00\x00" + body
        out += tag + struct.pack(">I", len(tag))
    return bytes(out)


#: (tag type, the header byte 7-Zip drops from each tag)
SHAPES = {
    "mp3-audio": (8, b"\x2f"),
    "aac-audio": (8, b"\xaf"),  # (7-Zip keeps AAC's packet-type byte: the file's first)
    "avc-video": (9, b"\x17"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_file_in_a_stream_is_scanned(engine: Engine, tmp_path: Path, shape: str) -> None:
    data = _flv(CLAM.read_bytes(), *SHAPES[shape])
    (tmp_path / "clip.flv").write_bytes(data)
    subprocess.run([tool("7zz"), "x", "-y", f"-o{tmp_path / 'out'}", str(tmp_path / "clip.flv")],
                   capture_output=True, check=True)
    want = hashlib.sha256(CLAM.read_bytes()).hexdigest()
    assert [hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (tmp_path / "out").iterdir()] == [want]
    assert filetype.detect(data) is FileType.FLV
    assert engine.scan_bytes(data, "clip.flv").names == FOUND
    assert engine.scan_bytes(data[:-30], "clip.flv").names == ("Heuristics.Broken.FLV",)


@pytest.mark.parametrize("junk", ["type", "stream", "previous-size"])
def test_a_tag_7zip_stops_at_ends_the_stream(engine: Engine, tmp_path: Path, junk: str) -> None:
    """Round 19: clam.exe as MP3 audio and a trailing tag 7-Zip does not take (another type
    byte, a stream id, a wrong previous-tag size): the stream 7-Zip writes is clam.exe, and
    the file is damaged."""
    data = bytearray(_flv(CLAM.read_bytes(), 8, b"\x2f"))
    tag = bytearray(b"\x08" + (9).to_bytes(3, "big") + bytes(4) + bytes(3) + b"\x2f" + b"J" * 8)
    size = len(tag)
    if junk == "type":
        tag[0] = 0x28
    elif junk == "stream":
        tag[8:11] = b"\x00\x00\x01"
    else:
        size += 5
    data += tag + struct.pack(">I", size)
    (tmp_path / "clip.flv").write_bytes(bytes(data))
    subprocess.run([tool("7zz"), "x", "-y", f"-o{tmp_path / 'out'}", str(tmp_path / "clip.flv")],
                   capture_output=True, check=False)
    want = hashlib.sha256(CLAM.read_bytes()).hexdigest()
    assert want in [hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in (tmp_path / "out").iterdir()]
    names = engine.scan_bytes(bytes(data), "clip.flv").names
    assert names in (FOUND, ("Heuristics.Broken.FLV",)), names
