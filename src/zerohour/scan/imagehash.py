"""ClamAV's image fuzzy hash (`.ldb` subsignature `fuzzy_img#<hash>#0`), bit for bit.

ClamAV 1.4 (libclamav_rust `fuzzy_hash_calculate_image`) decodes an image with the Rust `image`
crate, drops alpha, converts to grey with Pillow's ITU-R 601-2 weights in f32 (rounded),
resizes to 32x32 with the crate's Lanczos3 resampler (f32 throughout: a vertical pass kept in
f32, then a horizontal pass rounded to u8), scales to [0, 1], runs a 2-D DCT-II with `rustdct`
(a split-radix plan, f32), doubles each pass, keeps the top-left 8x8 coefficients and sets a
bit for each one above their median (most significant bit first, row by row).

Every floating-point step here is the same IEEE single-precision operation, in the same order,
as the Rust code: a double-precision operation followed by rounding to f32 gives exactly the
f32 result for +, -, *, / (53 >= 2 * 24 + 2), and the bulk arithmetic of the resize runs in
Pillow's `ImageMath` on mode "F" images, which is C `float` arithmetic element by element. The
Lanczos weights call the C library's `sinf`, as Rust's `f32::sin` does (glibc picks an FMA or
SSE2 build at run time, so ClamAV's own hashes can differ in the last bit between machines; we
match the clamscan beside us). Without a C `sinf` the correctly rounded value is used.

Decoding is Pillow's: lossless formats (PNG, GIF, BMP, TIFF) give the same pixels as the `image`
crate; JPEG is decoded by libjpeg-turbo here and zune-jpeg in ClamAV, whose pixels differ by a
level here and there, so a JPEG's hash agrees with ClamAV's in most cases, not all. An image is
hashed only if its magic is one ClamAV hashes (its CL_TYPE_PNG, GIF, JPEG, TIFF and the BMP
magic of CL_TYPE_GRAPHICS) and its decoded size is within the `image` crate's default
allocation limit (512 MiB), as ClamAV's; anything else, or anything Pillow cannot decode, has
no hash (ClamAV: "Failed to calculate image fuzzy hash", the scan goes on).
"""

from __future__ import annotations

import ctypes
import io
import math
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    ImageMath,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
)

#: The `image` crate's default `Limits::max_alloc`: a larger decoded image is refused.
MAX_DECODED_BYTES = 512 * 1024 * 1024
#: Our bound on a side: the resize costs a step per Lanczos tap (6 per 32nd of a side) and
#: memory per column, so a 10^7 x 1 strip would take minutes and gigabytes. (ClamAV would try:
#: its first pass alone allocates 512 bytes per column.) JPEG and GIF cannot be larger.
MAX_SIDE = 65535

_PLUGINS: tuple[tuple[bytes, type[ImageFile.ImageFile]], ...] = (
    (b"\x89PNG\r\n\x1a\n", PngImagePlugin.PngImageFile),
    (b"GIF87a", GifImagePlugin.GifImageFile),
    (b"GIF89a", GifImagePlugin.GifImageFile),
    (b"\xff\xd8\xff", JpegImagePlugin.JpegImageFile),
    (b"II*\x00", TiffImagePlugin.TiffImageFile),
    (b"MM\x00*", TiffImagePlugin.TiffImageFile),
    (b"BM", BmpImagePlugin.BmpImageFile),
)


# -- f32 arithmetic ---------------------------------------------------------------------------

_F32 = struct.Struct("=f")  # native: Pillow's mode "F" holds C floats


def _f(x: float) -> float:
    """`x` rounded to the nearest IEEE single (ties to even)."""
    return float(_F32.unpack(_F32.pack(x))[0])


def _c_sinf() -> Callable[[float], float] | None:
    for name in (None, "libm.so.6"):
        try:
            fn = ctypes.CDLL(name).sinf
        except (OSError, AttributeError, TypeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    return None


_SINF = _c_sinf()
_PI = _f(math.pi)
_FRAC_1_SQRT_2 = _f(math.sqrt(0.5))


def _sinf(x: float) -> float:
    return float(_SINF(x)) if _SINF is not None else _f(math.sin(x))


def _sinc(t: float) -> float:
    if t == 0.0:
        return 1.0
    a = _f(t * _PI)
    return _f(_sinf(a) / a)


def _lanczos3(x: float) -> float:
    if abs(x) < 3.0:
        return _f(_sinc(x) * _sinc(_f(x / 3.0)))
    return 0.0


@lru_cache(maxsize=64)
def _taps(src: int, dst: int) -> tuple[tuple[int, tuple[float, ...]], ...]:
    """Per output pixel, the first input pixel and the normalised weights (image crate
    `vertical_sample` / `horizontal_sample`, all in f32)."""
    ratio = _f(src / dst)
    sratio = 1.0 if ratio < 1.0 else ratio
    support = _f(3.0 * sratio)
    out = []
    for o in range(dst):
        centre = _f((o + 0.5) * ratio)
        left = min(max(math.floor(_f(centre - support)), 0), src - 1)
        right = min(max(math.ceil(_f(centre + support)), left + 1), src)
        centre = _f(centre - 0.5)
        ws = []
        total = 0.0
        for i in range(left, right):
            w = _lanczos3(_f(_f(i - centre) / sratio))
            ws.append(w)
            total = _f(total + w)
        out.append((left, tuple(_f(w / total) for w in ws)))
    return tuple(out)


def _sample_rows(im: Image.Image, dst: int, check: Callable[[], None]) -> Image.Image:
    """The image crate's `vertical_sample` to `dst` rows: mode "F" out, f32 accumulation in the
    crate's order (t = t + p * w, tap by tap). `im` is mode "L" or "F"."""
    width, height = im.size
    taps = _taps(height, dst)
    raw = memoryview(im.tobytes())
    step = width * (1 if im.mode == "L" else 4)
    rows = [raw[r * step : (r + 1) * step] for r in range(height)]
    nmax = max(len(ws) for _, ws in taps)
    acc: Image.Image | None = None
    for k in range(nmax):
        check()
        block = b"".join(rows[left + k] if k < len(ws) else rows[0] for left, ws in taps)
        x = Image.frombytes(im.mode, (width, dst), block)
        if x.mode != "F":
            x = x.convert("F")
        weights = Image.frombytes("F", (width, dst), b"".join(
            _F32.pack(ws[k] if k < len(ws) else 0.0) * width for _, ws in taps))
        if acc is None:
            acc = _math(lambda a: a["x"] * a["w"], x=x, w=weights)
        else:
            acc = _math(lambda a: a["acc"] + a["x"] * a["w"], acc=acc, x=x, w=weights)
    assert acc is not None
    return acc


def _math(fn: Callable[[dict[str, Any]], Any], **images: Image.Image) -> Image.Image:
    out = ImageMath.lambda_eval(fn, **images)
    assert isinstance(out, Image.Image)
    return out


def _resize32(gray: Image.Image, check: Callable[[], None]) -> list[int]:
    """`imageops::resize(.., 32, 32, Lanczos3)` of a Luma8 image: 1024 levels, row-major."""
    if gray.size == (32, 32):  # the crate copies an image that already has the size
        return list(gray.tobytes())
    tmp = _sample_rows(gray, 32, check)  # W x 32
    tmp = tmp.transpose(Image.Transpose.TRANSPOSE)  # 32 x W: columns become rows
    out = _sample_rows(tmp, 32, check).transpose(Image.Transpose.TRANSPOSE)
    vals = struct.unpack(f"={32 * 32}f", out.tobytes())
    return [math.floor(min(max(v, 0.0), 255.0) + 0.5) for v in vals]  # FloatNearest


# -- rustdct 0.7: DCT-II of size 32 (split radix over butterflies 16 and 8) ------------------


def _twiddle(i: int, n: int) -> tuple[float, float]:
    """rustdct `single_twiddle(i, n).conj()`: computed in f64, cast to f32."""
    angle = math.pi * -2.0 / n * i
    return _f(math.cos(angle)), -_f(math.sin(angle))


_TW4 = _twiddle(1, 16)
_TW8 = (_twiddle(1, 32), _twiddle(3, 32))
_TW16 = tuple(_twiddle(i, 64) for i in (1, 3, 5, 7))
_TW32 = tuple(_twiddle(2 * i + 1, 128) for i in range(8))


def _dct2_2(b: list[float]) -> None:
    s = _f(b[0] + b[1])
    b[1] = _f(_f(b[0] - b[1]) * _FRAC_1_SQRT_2)
    b[0] = s


def _dst2_2(b: list[float]) -> None:
    s = _f(b[0] - b[1])
    b[0] = _f(_f(b[0] + b[1]) * _FRAC_1_SQRT_2)
    b[1] = s


def _dct2_2_at(b: list[float], zero: int, one: int) -> None:
    s = _f(b[zero] + b[one])
    b[one] = _f(_f(b[zero] - b[one]) * _FRAC_1_SQRT_2)
    b[zero] = s


def _dct2_4(b: list[float]) -> None:
    re, im = _TW4
    lower = _f(b[0] - b[3])
    upper = _f(b[2] - b[1])
    b[0] = _f(b[0] + b[3])
    b[2] = _f(b[2] + b[1])
    _dct2_2_at(b, 0, 2)
    b[1] = _f(_f(lower * re) - _f(upper * im))
    b[3] = _f(_f(upper * re) + _f(lower * im))


def _dst2_4(b: list[float]) -> None:
    re, im = _TW4
    lower = _f(b[0] + b[3])
    upper = _f(b[2] + b[1])
    b[3] = _f(b[0] - b[3])
    b[1] = _f(b[2] - b[1])
    _dct2_2_at(b, 3, 1)
    b[2] = _f(_f(lower * re) - _f(upper * im))
    b[0] = _f(_f(upper * re) + _f(lower * im))


def _odd_inputs(d: Sequence[float], tw: Sequence[tuple[float, float]]
                ) -> tuple[list[float], list[float]]:
    """The DCT-IV half of a split-radix step (butterflies 8 and 16): `d` holds the
    differences in the butterfly's order (pairs `d[2j], d[2j+1]` with twiddle j)."""
    n = len(tw)
    even = [_f(_f(d[2 * j] * tw[j][0]) + _f(d[2 * j + 1] * tw[j][1])) for j in range(n)]
    odd = [_f(_f(d[2 * j + 1] * tw[j][0]) - _f(d[2 * j] * tw[j][1]))
           for j in reversed(range(n))]
    return even, odd


def _dct2_8(b: list[float]) -> None:
    evens = [_f(b[0] + b[7]), _f(b[1] + b[6]), _f(b[2] + b[5]), _f(b[3] + b[4])]
    _dct2_4(evens)
    d = [_f(b[0] - b[7]), _f(b[3] - b[4]), _f(b[1] - b[6]), _f(b[2] - b[5])]
    even, odd = _odd_inputs(d, _TW8)
    _dct2_2(even)
    _dst2_2(odd)
    b[0] = evens[0]
    b[1] = even[0]
    b[2] = evens[1]
    b[3] = _f(even[1] - odd[0])
    b[4] = evens[2]
    b[5] = _f(even[1] + odd[0])
    b[6] = evens[3]
    b[7] = odd[1]


def _dct2_16(b: list[float]) -> None:
    evens = [_f(b[i] + b[15 - i]) for i in range(8)]
    _dct2_8(evens)
    d = [_f(b[0] - b[15]), _f(b[7] - b[8]), _f(b[1] - b[14]), _f(b[6] - b[9]),
         _f(b[2] - b[13]), _f(b[5] - b[10]), _f(b[3] - b[12]), _f(b[4] - b[11])]
    even, odd = _odd_inputs(d, _TW16)
    _dct2_4(even)
    _dst2_4(odd)
    b[0] = evens[0]
    b[1] = even[0]
    b[2] = evens[1]
    b[3] = _f(even[1] - odd[0])
    b[4] = evens[2]
    b[5] = _f(even[1] + odd[0])
    b[6] = evens[3]
    b[7] = _f(even[2] + odd[1])
    b[8] = evens[4]
    b[9] = _f(even[2] - odd[1])
    b[10] = evens[5]
    b[11] = _f(even[3] - odd[2])
    b[12] = evens[6]
    b[13] = _f(even[3] + odd[2])
    b[14] = evens[7]
    b[15] = odd[3]


def _dct2_32(b: list[float]) -> list[float]:
    """rustdct `Type2And3SplitRadix` (len 32: half = butterfly 16, quarter = butterfly 8)."""
    n, half, quarter = 32, 16, 8
    inner = [0.0] * half
    even = [0.0] * quarter
    odd = [0.0] * quarter
    for i in range(quarter):
        bottom, top = b[i], b[n - i - 1]
        half_bottom, half_top = b[half - i - 1], b[half + i]
        inner[i] = _f(top + bottom)
        inner[half - i - 1] = _f(half_bottom + half_top)
        lower = _f(bottom - top)
        upper = _f(half_bottom - half_top)
        re, im = _TW32[i]
        even[i] = _f(_f(lower * re) + _f(upper * im))
        sin_input = _f(_f(upper * re) - _f(lower * im))
        odd[quarter - i - 1] = sin_input if i % 2 == 0 else -sin_input
    _dct2_16(inner)
    _dct2_8(even)
    _dct2_8(odd)
    out = [0.0] * n
    out[0] = inner[0]
    out[1] = even[0]
    out[2] = inner[1]
    for i in range(1, quarter):
        c = even[i]
        s = -odd[quarter - i] if (i + quarter) % 2 == 0 else odd[quarter - i]
        out[i * 4 - 1] = _f(c + s)
        out[i * 4] = inner[i * 2]
        out[i * 4 + 1] = _f(c - s)
        out[i * 4 + 2] = inner[i * 2 + 1]
    out[n - 1] = -odd[0]
    return out


def _transpose(m: list[float]) -> list[float]:
    return [m[c * 32 + r] for r in range(32) for c in range(32)]


def hash_levels(levels: Sequence[int]) -> bytes:
    """The hash of a 32x32 grey image (row-major levels 0..255), after the resize."""
    buf = [_f(v / 255.0) for v in levels]  # to_luma32f
    for _ in range(2):  # columns (on the transposed image), then rows
        buf = _transpose(buf)
        rows = [_dct2_32(buf[r * 32 : r * 32 + 32]) for r in range(32)]
        buf = [v * 2.0 for row in rows for v in row]
    low = [buf[r * 32 + c] for r in range(8) for c in range(8)]
    s = sorted(low)
    median = _f(_f(s[31] + s[32]) / 2.0)
    bits = 0
    for v in low:
        bits = bits << 1 | (v > median)
    return bits.to_bytes(8, "big")


# -- decoding ---------------------------------------------------------------------------------


class NoHash(Exception):
    """The layer has no image fuzzy hash (not decodable, too large, pixels ClamAV refuses)."""


def _png_chunks(data: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """The PNG as the `png` crate reads it, its IHDR body and image data; `NoHash` where the
    crate stops: a critical chunk with a bad CRC, no IEND. Ancillary chunks with a bad CRC,
    which it skips and Pillow refuses, are left out of the bytes returned."""
    pos, kept, idat = 8, [data[:8]], []
    header = b""
    dropped = False
    while True:
        if pos + 8 > len(data):
            raise NoHash("PNG: no IEND chunk")
        n, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND":
            kept.append(data[pos:])
            break
        end = pos + 12 + n
        if end > len(data):
            raise NoHash(f"PNG: {kind!r} chunk cut short")
        if zlib.crc32(data[pos + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            if not kind[0] & 0x20:
                raise NoHash(f"PNG: bad CRC in {kind!r}")
            dropped = True
        else:
            kept.append(data[pos:end])
        if kind == b"IHDR":
            header = data[pos + 8 : end - 4]
        elif kind == b"IDAT":
            idat.append(data[pos + 8 : end - 4])
        pos = end
    return b"".join(kept) if dropped else data, header, idat


def _png_data_size(header: bytes) -> int:
    """Bytes the image data inflates to: a filter byte and the packed samples of each row, of
    each of the 7 Adam7 passes when interlaced."""
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    bits = depth * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    passes = ([(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
               (1, 0, 2, 2), (0, 1, 1, 2)] if interlace else [(0, 0, 1, 1)])
    total = 0
    for x0, y0, dx, dy in passes:
        w = (width - x0 + dx - 1) // dx if width > x0 else 0
        h = (height - y0 + dy - 1) // dy if height > y0 else 0
        if w and h:
            total += h * (1 + (w * bits + 7) // 8)
    return total


def _inflated_at_least(pieces: list[bytes], need: int) -> bool:
    """Whether the zlib stream in `pieces` inflates to `need` bytes before it ends or breaks,
    without holding the output."""
    z = zlib.decompressobj()
    got = 0
    try:
        for piece in pieces:
            while piece and got < need:
                got += len(z.decompress(piece, 1 << 20))
                piece = z.unconsumed_tail
            if got >= need:
                return True
    except zlib.error:
        return False
    return got >= need


def _open(data: bytes) -> ImageFile.ImageFile:
    """The decoder the `image` crate's `guess_format` picks for these magic bytes."""
    for magic, plugin in _PLUGINS:
        if data.startswith(magic):
            try:
                return plugin(io.BytesIO(data))
            except Exception as exc:  # a malformed header: Pillow raises many kinds
                raise NoHash(f"{plugin.format}: {exc}") from None
    raise NoHash("not an image ClamAV decodes")


#: Decoded bytes per pixel of the `image` crate's buffer, by the mode Pillow opens it as (the
#: crate decodes palettes to RGB); a mode not here has no hash.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "LA": 2, "P": 3, "PA": 4, "RGB": 3, "RGBA": 4, "RGBX": 4,
                    "CMYK": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 2}
#: TIFF pixel layouts the `image` crate (tiff 0.9) decodes: not palette, grey with alpha,
#: YCbCr without JPEG compression, 32-bit integer or floating-point grey.
_TIFF_MODES = frozenset({"1", "L", "RGB", "RGBA", "RGBX", "CMYK", "I;16", "I;16B", "I;16L"})


def _gray(im: ImageFile.ImageFile) -> Image.Image:
    """Luma8 as `fuzzy_hash_calculate_image` makes it: `to_rgb8()` (alpha dropped, never
    composited; 16-bit samples rounded as (v + 128) / 257), then f32 0.299 R + 0.587 G +
    0.114 B, rounded. Pillow's matrix conversion computes exactly that (tested against every
    RGB triple); a grey level maps to itself."""
    mode = im.mode
    if mode in ("L", "1"):
        return im.convert("L")
    if mode == "LA":
        return im.getchannel("L")
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = im.convert("I")
        lo, hi = wide.getextrema()
        if not isinstance(lo, int) or not isinstance(hi, int) or lo < 0 or hi > 0xFFFF:
            raise NoHash("32-bit integer samples")
        # (v + 128) / 257 in C int arithmetic: v >= 0, so the floor, as the crate's u32 division
        return _math(lambda a: (a["v"] + 128) / 257, v=wide).convert("L")
    if mode in ("P", "PA"):
        im.info.pop("transparency", None)  # dropped, as the alpha channel is
        rgb = im.convert("RGB")
    else:  # RGB, RGBA, RGBX, CMYK (Pillow's CMYK -> RGB is zune-jpeg's to the level)
        rgb = im if mode == "RGB" else im.convert("RGB")
    return rgb.convert("L", matrix=(0.299, 0.587, 0.114, 0.0))


def _low_rawmode(rawmode: str) -> str | None:
    """For 16-bit colour samples that Pillow reads with `rawmode`, keeping the high byte, an
    unpacker that reads their low byte instead: the other byte order; for PNG grey with alpha
    (which Pillow decodes as RGBA, "LA;16B") "ARGB" puts the grey's low byte in red."""
    if rawmode == "LA;16B":
        return "ARGB"
    head, sep, order = rawmode.rpartition(";16")
    if not sep or head not in ("RGB", "RGBA", "RGBX") or order not in ("B", "L", "N"):
        return None
    if order == "N":  # libtiff hands Pillow native-order samples
        order = "L" if sys.byteorder == "little" else "B"
    return f"{head};16{'L' if order == 'B' else 'B'}"


def _low_tiles(im: ImageFile.ImageFile) -> list[ImageFile._Tile] | None:
    """The tiles of a 16-bit colour PNG or TIFF not yet loaded, reading the low bytes (None:
    not one)."""
    if not isinstance(im, PngImagePlugin.PngImageFile | TiffImagePlugin.TiffImageFile):
        return None
    out = []
    for tile in im.tile:
        args = tile.args
        if isinstance(args, str):  # PNG
            low = _low_rawmode(args)
            new: str | tuple[Any, ...] | None = low
        elif isinstance(args, tuple) and args and isinstance(args[0], str):  # TIFF
            low = _low_rawmode(args[0])
            new = (low, *args[1:])
        else:
            return None
        if low is None:
            return None
        out.append(tile._replace(args=new))
    return out or None


def _sixteen_gray(im: ImageFile.ImageFile, data: bytes, low_tiles: list[ImageFile._Tile]
                  ) -> Image.Image:
    """A 16-bit colour (or PNG grey with alpha) image, grey as ClamAV makes it: Pillow keeps
    the high byte of each sample, the `image` crate rounds (v + 128) / 257, so the image is
    decoded a second time reading the low bytes (`_low_rawmode`)."""
    low = type(im)(io.BytesIO(data))
    low.tile = low_tiles
    try:
        low.load()
    except Exception as exc:
        raise NoHash(f"{im.format}: {exc}") from None
    n = 1 if low_tiles[0].args == "ARGB" else 3
    bands = [_math(lambda a: (a["hi"] * 256 + a["lo"] + 128) / 257,
                   hi=hi.convert("I"), lo=lo.convert("I")).convert("L")
             for hi, lo in zip(im.split()[:n], low.split()[:n], strict=True)]
    if n == 1:
        return bands[0]
    return Image.merge("RGB", bands).convert("L", matrix=(0.299, 0.587, 0.114, 0.0))


#: 16-bit BMP pixels Pillow scales v * 255 // max (truncating); the `image` crate rounds
#: (its 5- and 6-bit lookup tables): (shift, bits) of red, green, blue.
_BMP16 = {"BGR;15": ((10, 5), (5, 5), (0, 5)), "BGR;16": ((11, 5), (5, 6), (0, 5))}


def _bmp16_rows(im: ImageFile.ImageFile) -> tuple[str, int, int, int] | None:
    """(layout, pixel offset, stride, row direction) of a 16-bit BMP not yet loaded."""
    if not isinstance(im, BmpImagePlugin.BmpImageFile) or len(im.tile) != 1:
        return None
    tile = im.tile[0]
    args = tile[3]
    if tile[0] != "raw" or not isinstance(args, tuple) or args[0] not in _BMP16:
        return None
    return args[0], tile[2], args[1], args[2]


def _bmp16_gray(im: Image.Image, data: bytes, rows: tuple[str, int, int, int]) -> Image.Image:
    layout, offset, stride, direction = rows
    pixels = Image.frombuffer("I;16", im.size, data[offset:], "raw", "I;16", stride,
                              direction).convert("I")
    bands = [_bits(pixels, shift, bits) for shift, bits in _BMP16[layout]]
    return Image.merge("RGB", bands).convert("L", matrix=(0.299, 0.587, 0.114, 0.0))


def _bits(pixels: Image.Image, shift: int, bits: int) -> Image.Image:
    """A bit field of 16-bit pixels (mode "I") as 8-bit levels, round(v * 255 / max)."""
    top = (1 << bits) - 1
    field = _math(lambda a: (a["v"] >> shift) & top, v=pixels).convert("L")
    return field.point([round(v * 255 / top) if v <= top else 0 for v in range(256)])


def image_fuzzy_hash(data: bytes, check: Callable[[], None] = lambda: None,
                     max_decoded: int = MAX_DECODED_BYTES) -> bytes:
    """The 8-byte fuzzy hash of an image layer as ClamAV computes it. Raises `NoHash` when
    ClamAV has none (not an image its decoders read, decoding fails, over `max_decoded`
    bytes once decoded), and for the pixel layouts we cannot reproduce. `check` is called
    between the steps of the resize (the scan's deadline: it may raise)."""
    png = data.startswith(_PLUGINS[0][0])
    if png:
        data, header, idat = _png_chunks(data)
    im = _open(data)
    width, height = im.size
    per_pixel = _BYTES_PER_PIXEL.get(im.mode)
    if per_pixel is None or (im.format == "TIFF" and im.mode not in _TIFF_MODES):
        raise NoHash(f"{im.format} {im.mode} pixels")
    if width <= 0 or height <= 0:
        raise NoHash("empty image")
    if max(width, height) > MAX_SIDE:
        raise NoHash(f"{width}x{height}: a side over {MAX_SIDE}")
    if width * height * per_pixel > max_decoded:
        raise NoHash(f"{width}x{height} {im.mode}: over {max_decoded} bytes decoded")
    if png and not (len(header) == 13 and _inflated_at_least(idat, _png_data_size(header))):
        raise NoHash("PNG: not enough image data")  # Pillow leaves the rest black
    box = _first_frame(im, data)
    low_tiles = _low_tiles(im)
    bmp16 = _bmp16_rows(im)
    try:
        im.load()
    except Exception as exc:  # truncated or corrupt data
        raise NoHash(f"{im.format}: {exc}") from None
    check()
    if low_tiles is not None:
        gray = _sixteen_gray(im, data, low_tiles)
    elif bmp16 is not None:
        gray = _bmp16_gray(im, data, bmp16)
    else:
        gray = _gray(im)
    if box is not None:
        gray = _gif_screen(gray, *box)
    return hash_levels(_resize32(gray, check))


def _first_frame(im: ImageFile.ImageFile, data: bytes
                 ) -> tuple[tuple[int, int], tuple[int, int, int, int]] | None:
    """A GIF's logical screen and first frame, when they differ: the `image` crate draws the
    frame on a screen-sized canvas of (transparent) black; Pillow fills its background index
    around the frame and grows the image to a frame that overflows the screen."""
    if not isinstance(im, GifImagePlugin.GifImageFile) or not im.tile:
        return None
    screen = struct.unpack_from("<HH", data, 6)
    extents = im.tile[0][1]
    if extents is None or (extents == (0, 0, *screen) and im.size == screen):
        return None
    x0, y0, x1, y1 = extents
    return (screen[0], screen[1]), (x0, y0, x1, y1)


def _gif_screen(gray: Image.Image, screen: tuple[int, int],
                frame: tuple[int, int, int, int]) -> Image.Image:
    if 0 in screen:
        raise NoHash("empty GIF screen")
    canvas = Image.new("L", screen, 0)
    x0, y0, x1, y1 = frame
    x1, y1 = min(x1, screen[0], gray.size[0]), min(y1, screen[1], gray.size[1])
    if x1 > x0 and y1 > y0:
        canvas.paste(gray.crop((x0, y0, x1, y1)), (x0, y0))
    return canvas
