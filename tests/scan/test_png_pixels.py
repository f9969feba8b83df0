"""A PNG whose pixels are a file (round 20 a62): `Image.frombytes(mode, size, payload).save()`;
the recipient's `Image.open(f).tobytes()` (or ImageMagick's `convert f gray:-`) gives it back.
The image's bytes hold it deflated and filtered per row, so only decoding finds it. Ordinary
images (the system's icons) must not be decoded in full, nor ever be a finding."""

from __future__ import annotations

import base64
import io
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image

from helpers.tools import tool
from scan.conftest import CLAM, CLAM_NAME
from zerohour.scan import Engine, pngpixels
from zerohour.scan.limits import ScanContext


def _png(mode: str, payload: bytes, width: int, **save: object) -> bytes:
    channels = len(Image.new(mode, (1, 1)).getbands())
    row = width * channels
    height = -(-len(payload) // row)
    image = Image.frombytes(mode, (width, height), payload.ljust(row * height, b"\0"))
    out = io.BytesIO()
    image.save(out, "PNG", **save)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).tobytes()[: len(payload)] == payload  # the recipe
    assert payload[:64] not in _idat(data)  # filtered: the inflated rows do not show it
    return data


def _idat(data: bytes) -> bytes:
    pos, idat = 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def _mail(png: bytes) -> bytes:
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: photo\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"photo.png\"\r\n\r\n"
            + base64.encodebytes(png).replace(b"\n", b"\r\n"))


@pytest.mark.parametrize(("mode", "width", "save"), [
    ("L", 32, {}),
    ("RGB", 16, {}),
    ("RGBA", 8, {"optimize": True}),
    ("LA", 16, {}),
])
def test_a_file_in_the_pixels_is_found(clam_engine: Engine, mode: str, width: int,
                                       save: dict[str, object]) -> None:
    png = _png(mode, CLAM.read_bytes(), width, **save)
    assert clam_engine.scan_bytes(_mail(png)).names == (CLAM_NAME,)


def test_base64_text_in_the_pixels_is_found(clam_engine: Engine) -> None:
    png = _png("L", base64.b64encode(CLAM.read_bytes()), 40)
    assert clam_engine.scan_bytes(png, "photo.png").names == (CLAM_NAME,)


@pytest.mark.parametrize("interlace", ["None", "PNG"])
def test_imagemagick_makes_the_same_pixels(clam_engine: Engine, tmp_path: Path,
                                           interlace: str) -> None:
    """`convert -size WxH -depth 8 gray:clam.bin clam.png` and back with `gray:-` (Debian's
    ImageMagick 6 by its own name); also interlaced (Adam7: the first row is not the first
    pixels)."""
    clam = CLAM.read_bytes()
    (tmp_path / "clam.bin").write_bytes(clam.ljust(32 * 17, b"\0"))
    subprocess.run([tool("convert-im6"), "-size", "32x17", "-depth", "8", "gray:clam.bin",
                    "-interlace", interlace, "clam.png"], check=True, cwd=tmp_path,
                   capture_output=True)
    back = subprocess.run([tool("convert-im6"), "clam.png", "-depth", "8", "gray:-"], check=True,
                          cwd=tmp_path, capture_output=True).stdout
    assert back[: len(clam)] == clam
    png = (tmp_path / "clam.png").read_bytes()
    assert png[28] == (interlace == "PNG")  # IHDR's interlace method
    assert clam_engine.scan_bytes(_mail(png)).names == (CLAM_NAME,)


def test_ordinary_images_are_not_decoded_nor_found(clam_engine: Engine) -> None:
    """Icons and pictures of the system: none decoded in full (the first row decides), none
    a finding."""
    images = sorted(Path("/usr/share").rglob("*.png"))[:1500]
    assert len(images) >= 200
    decoded = 0
    for path in images:
        data = path.read_bytes()
        decoded += bool(list(pngpixels.children(data, ScanContext())))
        assert clam_engine.scan_bytes(data, path.name).names == (), path
    assert decoded <= len(images) // 50, decoded
