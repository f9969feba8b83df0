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
from zerohour.errors import ScanLimitExceeded
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


# -- round 21: a subagent attacking this reader ------------------------------------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return (len(body).to_bytes(4, "big") + kind + body
            + zlib.crc32(kind + body).to_bytes(4, "big"))


def _with_chunks(png: bytes, extra: bytes) -> bytes:
    """`extra` chunks right after the IHDR (33 bytes with the signature)."""
    return png[:33] + extra + png[33:]


def _saved(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **save)
    return out.getvalue()


def _empty_blocks_first(width: int, payload: bytes) -> bytes:
    """An 8-bit grey image whose IDAT stream opens with 500 empty stored blocks, in IDAT
    chunks of 100 bytes (the first 2 KiB of pixels inflate to nothing)."""
    rows = b"".join(b"\0" + payload[i : i + width] for i in range(0, len(payload), width))
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = (b"\x78\x01" + b"\x00\x00\x00\xff\xff" * 500 + raw.compress(rows) + raw.flush()
              + zlib.adler32(rows).to_bytes(4, "big"))
    ihdr = width.to_bytes(4, "big") + (len(payload) // width).to_bytes(4, "big") + b"\x08\0\0\0\0"
    return (pngpixels.SIGNATURE + _chunk(b"IHDR", ihdr)
            + b"".join(_chunk(b"IDAT", stream[i : i + 100]) for i in range(0, len(stream), 100))
            + _chunk(b"IEND", b""))


def _round21() -> dict[str, tuple[bytes, bytes]]:
    """name -> (image, what the recipient's Pillow one-liner gives back)"""
    clam = CLAM.read_bytes()
    flat = bytes(16) + clam
    packed = zlib.compress(clam, 9)
    decoy = Image.frombytes("L", (16, 34), bytes(range(256)) * 2 + bytes(32))
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    return {
        "8 pixels wide": (_saved(Image.frombytes("L", (8, 68), clam)), clam),
        "RGBA 2 pixels wide": (_saved(Image.frombytes("RGBA", (2, 68), clam)), clam),
        "1-bit": (_saved(Image.frombytes("1", (32, 136), clam)), clam),
        "16-bit grey": (_saved(Image.frombytes("I;16", (16, 17), clam)), clam),
        "flat first row": (_saved(Image.frombytes("L", (16, 35), flat)), flat),
        "zlib pixels": (_saved(Image.frombytes("L", (16, -(-len(packed) // 16)),
                                               packed.ljust(-(-len(packed) // 16) * 16,
                                                            b"\0"))), packed),
        "second frame": (_saved(decoy, save_all=True,
                                append_images=[Image.frombytes("L", (16, 34), clam)]), clam),
        "4,100 chunks first": (_with_chunks(_saved(Image.frombytes("L", (16, 34), clam)),
                                            _chunk(b"prVt", b"") * 4100), clam),
        "a PDF in a chunk": (_with_chunks(_saved(Image.frombytes("L", (16, 34), clam)),
                                          _chunk(b"prVt", pdf)), clam),
        "empty deflate blocks first": (_empty_blocks_first(16, clam), clam),
    }


@pytest.mark.parametrize("shape", list(_round21()))
def test_round21_shapes_are_found(clam_engine: Engine, shape: str) -> None:
    png, given = _round21()[shape]
    image = Image.open(io.BytesIO(png))
    frames = [image.tobytes()]
    if getattr(image, "n_frames", 1) > 1:
        image.seek(1)
        frames.append(image.tobytes())
    assert any(given in f for f in frames), shape  # the recipe (`seek(1)`, a cut, an inflate)
    if shape == "zlib pixels":
        assert zlib.decompressobj().decompress(frames[0]) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(_mail(png)).names == (CLAM_NAME,), shape


def test_pixels_decoded_per_scan_are_bounded(tmp_path: Path) -> None:
    """Interlaced images are decoded whatever they start with: of three 32 MiB bombs (about
    45 KB each), a scan decodes two (round 21: twelve took 13 s), the third is a finding."""
    subprocess.run([tool("convert-im6"), "-size", "4096x8191", "xc:black", "-depth", "8",
                    "-define", "png:bit-depth=8", "-define", "png:color-type=0", "-interlace",
                    "PNG", "bomb.png"], check=True,
                   cwd=tmp_path, capture_output=True)
    bomb = (tmp_path / "bomb.png").read_bytes()
    assert bomb[28] == 1  # interlaced
    assert len(bomb) < 200_000
    ctx = ScanContext()
    bombs = [_with_chunks(bomb, _chunk(b"tEXt", b"n\0%d" % i)) for i in range(3)]
    decoded = [len(c.data) for b in bombs[:2] for c in pngpixels.children(b, ctx)]
    assert decoded == [4096 * 8191] * 2
    # the third is the size limit, not passed unread (round 21: it held the payload)
    with pytest.raises(ScanLimitExceeded, match="MaxScanSize"):
        list(pngpixels.children(bombs[2], ctx))


def test_the_first_rows_of_an_image_over_the_bound(clam_engine: Engine) -> None:
    """Round 21's P10: 4096 x 8193 grey pixels (over 32 MiB), clam.exe in the first ones;
    `tobytes()[:544]` gives it back. The rows the bound holds are read."""
    width, height = 4096, 8193
    clam = CLAM.read_bytes()
    png = _saved(Image.frombytes("L", (width, height), clam + bytes(width * height - len(clam))))
    assert width * height > 32 * 1024 * 1024
    assert len(png) < 100_000
    assert clam_engine.scan_bytes(_mail(png)).names == (CLAM_NAME,)
