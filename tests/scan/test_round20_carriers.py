"""Round 20: base64 a recipient decodes where the decoder stops.

Python's `base64.b64decode` (what a one-liner decodes with) stops at the first padded
quantum: a file's base64 in lines of 4 to 76, followed by lines of junk as wide, decodes to
the file exactly. The engine decoded the whole (the file plus junk: no hash signature
matches) and the padded chunks joined, and lines shorter than 16 are no run of their own.
(GNU `base64 -d` decodes on past the padding.)"""

from __future__ import annotations

import base64
import random
import subprocess
import sys
from pathlib import Path

import pytest

from scan.conftest import CLAM, CLAM_NAME
from zerohour.scan import Engine


def _body(width: int, junk_after: int, junk_before: int = 0) -> bytes:
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    rng = random.Random(width)
    junk = ["".join(rng.choice("ABCDabcd0123+/") for _ in range(width))
            for _ in range(junk_after + junk_before)]
    lines = [b64[i : i + width] for i in range(0, len(b64), width)]
    return ("\r\n".join(junk[:junk_before] + lines + junk[junk_before:]) + "\r\n").encode()


@pytest.mark.parametrize("width", [4, 8, 12, 16, 76])
def test_junk_after_the_padding_is_where_the_decoder_stops(
        clam_engine: Engine, tmp_path: Path, width: int) -> None:
    body = _body(width, 10)
    (tmp_path / "b.txt").write_bytes(body)
    out = subprocess.run([sys.executable, "-c", "import base64, sys; sys.stdout.buffer.write("
                          "base64.b64decode(open(sys.argv[1]).read()))", str(tmp_path / "b.txt")],
                         capture_output=True, check=True)
    assert out.stdout == CLAM.read_bytes()
    msg = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\n" + body
    assert clam_engine.scan_bytes(msg).names == (CLAM_NAME,)
    assert clam_engine.scan_bytes(body, "b.txt").names == (CLAM_NAME,)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_base64_with_junk_between_its_characters_in_plain_text_lines(
        clam_engine: Engine, tmp_path: Path, newline: str) -> None:
    """The junked block in a text part's own lines, CRLF as mail carries them or LF: `tr -cd
    'A-Za-z0-9+/='` rebuilds the file (the CRLF form was not read, nor the last line, shorter
    than a token)."""
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    rng = random.Random(newline)
    junked = "".join(c + rng.choice("#!;%~?") for c in b64)
    body = (newline.join(junked[i : i + 76] for i in range(0, len(junked), 76))
            + newline).encode()
    (tmp_path / "b.txt").write_bytes(body)
    out = subprocess.run(["tr", "-cd", "A-Za-z0-9+/="], input=body, capture_output=True,
                         check=True).stdout
    assert base64.b64decode(out) == CLAM.read_bytes()
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\nSee below." + newline.encode()
           * 2 + body)
    assert clam_engine.scan_bytes(msg).names == (CLAM_NAME,)
    assert clam_engine.scan_bytes(body, "b.txt").names == (CLAM_NAME,)
