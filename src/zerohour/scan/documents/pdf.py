"""PDF: every stream decoded, embedded files, JavaScript strings.

Two readings, combined and deduplicated:

- Structure (pikepdf / qpdf): every object, including those in object streams; streams of an
  encrypted PDF are decrypted with the empty user password (most malicious PDFs: readers open
  them without asking); embedded files (the /EmbeddedFiles name tree, /FileAttachment
  annotations, any file specification with /EF) become named attachments; /JS strings become
  their own layers.
- A lenient scan for `stream ... endstream` in the raw bytes, which finds what a damaged file's
  repaired cross-reference table misses (objects shadowed by an incremental update, orphans,
  files qpdf cannot repair).

Decoding is ours, not qpdf's: qpdf's decoders run in C, cannot be interrupted, and by default
have no output bound (measured: a 1 MB Flate stream of zeros took 10.7 s and 2 GB to read with
`Stream.read_bytes()`). So pikepdf only hands over raw (decrypted) stream bytes, and each filter
is decoded here under the scan budget: Flate through `archive.inflate`, LZW, ASCIIHex, ASCII85
and RunLength by small bounded decoders. PNG/TIFF predictors are applied by qpdf on data we have
already decoded (the predictor's output is never larger than its input). Image codecs (DCT, JPX,
CCITT, JBIG2) stay encoded: their layer is the encoded data, as in ClamAV. qpdf's own decoding
while it parses (object and cross-reference streams) is capped by its process-wide limits, set
once to `_QPDF_BACKSTOP`; the lenient scan then meets the same bomb under our bounds.

A PDF fragment (`is_fragment`: object syntax without a `%PDF-` header, such as an incremental
update sent apart from the file it updates) is read by `fragment_children`, the lenient reading
with every filter and embedded files named; `decompose` calls it for binary and text layers.

A PDF that needs a user password raises `EncryptedContent("PDF")` after everything readable
was yielded; one qpdf cannot open at all is `Heuristics.Broken.PDF` (after the lenient scan).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import archive
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

_log = logging.getLogger(__name__)

_PDF_STREAM = re.compile(rb"stream(?:\r\n|\n|\r)")
_PDF_ENDSTREAM = re.compile(rb"endstream")
_PDF_FLATE = re.compile(rb"/(?:FlateDecode|Fl)\b")
_MAX_PDF_STREAMS = 1000
_MAX_WALK_DEPTH = 32
#: qpdf's process-wide output caps for the decoding it does itself (object streams while it
#: parses, predictors we hand it): above the default `Limits.max_file_size`, so they never cut
#: what our own bounds allow, and a bomb inside the parser costs at most this much.
_QPDF_BACKSTOP = 128 * 1024 * 1024
_limits_set = threading.Lock()
_limits_done = False

_FLATE = frozenset({"/FlateDecode", "/Fl"})
_LZW = frozenset({"/LZWDecode", "/LZW"})
_AHX = frozenset({"/ASCIIHexDecode", "/AHx"})
_A85 = frozenset({"/ASCII85Decode", "/A85"})
_RL = frozenset({"/RunLengthDecode", "/RL"})
_HEX_JUNK = re.compile(rb"[^0-9A-Fa-f]")
_A85_SPACE = b" \t\n\r\x0c\x00"


def _qpdf_limits() -> None:
    global _limits_done
    with _limits_set:
        if _limits_done:
            return
        from pikepdf import settings

        settings.set_qpdf_limits(
            flate_max_memory=_QPDF_BACKSTOP, png_max_memory=_QPDF_BACKSTOP,
            tiff_max_memory=_QPDF_BACKSTOP, run_length_max_memory=_QPDF_BACKSTOP,
        )
        # qpdf's warnings about damage (one per broken object, reached through Python
        # logging) are the sender's noise in our log: damage is reported as findings instead.
        logging.getLogger("pikepdf._core").setLevel(logging.CRITICAL)
        _limits_done = True


# --- filters --------------------------------------------------------------------------------


def _inflate(data: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """Flate through the archive code's bounded inflater: (output, whether anything decoded,
    or the stream is a whole empty one)."""
    out, _end = archive.inflate(data, ctx)
    if out:
        return out, True
    probe = zlib.decompressobj(15 if data[:1] == b"x" else -15)
    try:
        probe.decompress(data[:64], 1)
    except zlib.error:
        return out, False
    return out, probe.eof


def lzw_decode(data: bytes, ctx: ScanContext, early_change: int = 1) -> tuple[bytes, bool]:
    """PDF LZWDecode (MSB-first codes of 9-12 bits, 256 clears, 257 ends), bounded:
    (output, whether the code stream was well formed)."""
    bound = ctx.output_bound()
    out = bytearray()
    table: list[bytes] = [bytes([i]) for i in range(256)] + [b"", b""]
    width = 9
    prev: bytes | None = None
    acc = nbits = 0
    for i, byte in enumerate(data):
        if not i & 0xFFF:
            ctx.check_time()
            ctx.check_ratio(i, len(out))
            if len(out) > bound:
                ctx.check_output(len(out))
        acc = (acc << 8) | byte
        nbits += 8
        while nbits >= width:
            nbits -= width
            code = acc >> nbits
            acc &= (1 << nbits) - 1
            if code == 256:
                del table[258:]
                width, prev = 9, None
                continue
            if code == 257:
                return bytes(out), True
            if code < len(table) and (code < 256 or code > 257):
                entry = table[code]
                if prev is not None:
                    table.append(prev + entry[:1])
            elif code == len(table) and prev is not None:
                entry = prev + prev[:1]
                table.append(entry)
            else:
                return bytes(out), False
            out += entry
            prev = entry
            if len(table) + early_change >= 1 << width and width < 12:
                width += 1
    if len(out) > bound:
        ctx.check_output(len(out))
    return bytes(out), True  # no end code: readers accept that


def run_length_decode(data: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """PDF RunLengthDecode (PackBits), bounded: (output, whether it was well formed)."""
    bound = ctx.output_bound()
    out = bytearray()
    pos, n = 0, len(data)
    steps = 0
    while pos < n:
        steps += 1
        if not steps & 0xFFF:
            ctx.check_time()
            ctx.check_ratio(pos, len(out))
            if len(out) > bound:
                ctx.check_output(len(out))
        length = data[pos]
        if length == 128:
            break
        if length < 128:
            out += data[pos + 1 : pos + 2 + length]
            pos += length + 2
        else:
            out += data[pos + 1 : pos + 2] * (257 - length)
            pos += 2
    if len(out) > bound:
        ctx.check_output(len(out))
    return bytes(out), pos <= n


def _ascii_hex(data: bytes) -> bytes:
    end = data.find(b">")
    digits = _HEX_JUNK.sub(b"", data if end < 0 else data[:end])
    if len(digits) % 2:
        digits += b"0"
    return binascii.unhexlify(digits)


def _ascii85(data: bytes) -> bytes:
    body = data.strip(_A85_SPACE)
    if body.startswith(b"<~"):
        body = body[2:]
    end = body.find(b"~>")
    if end >= 0:
        body = body[:end]
    return base64.a85decode(body, ignorechars=_A85_SPACE)


def _unpredict(data: bytes, parms: dict[str, int]) -> bytes:
    """Undo a PNG (10-15) or TIFF (2) predictor; qpdf does it on data we already decoded
    (bounded), so its output is never larger than `data`. Damage leaves `data` as it is."""
    import pikepdf

    scratch = pikepdf.new()
    try:
        stream = pikepdf.Stream(scratch, zlib.compress(data, 1))
        stream.Filter = pikepdf.Name.FlateDecode
        stream.DecodeParms = pikepdf.Dictionary({k: v for k, v in parms.items()})
        return bytes(stream.read_bytes())
    except Exception:  # a predictor qpdf refuses (odd Columns, damaged rows): keep the bytes
        return data
    finally:
        scratch.close()


def _int_parms(parms: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    if parms is None:
        return out
    try:
        for key in ("/Predictor", "/Colors", "/BitsPerComponent", "/Columns", "/EarlyChange"):
            value = parms.get(key)
            if value is not None:
                out[key] = int(value)
    except (TypeError, ValueError, AttributeError):
        return {}
    return out


def decode_filters(
    raw: bytes, filters: list[str], parms: list[dict[str, int]], ctx: ScanContext
) -> tuple[bytes, bool]:
    """Apply a stream's filter chain with our bounded decoders: (data, whether every filter
    decoded). The chain stops at an image codec (its encoded data is the layer)."""
    data = raw
    ok = True
    for i, name in enumerate(filters):
        ctx.check_time()
        p = parms[i] if i < len(parms) else {}
        if not data:
            break
        if name in _FLATE:
            out, good = _inflate(data, ctx)
            ok = ok and good
        elif name in _LZW:
            out, good = lzw_decode(data, ctx, p.get("/EarlyChange", 1))
            ok = ok and good and bool(out)
        elif name in _AHX:
            try:
                out = _ascii_hex(data)
            except (binascii.Error, ValueError):
                return data, False
        elif name in _A85:
            try:
                out = _ascii85(data)
            except (binascii.Error, ValueError):
                return data, False
        elif name in _RL:
            out, good = run_length_decode(data, ctx)
            ok = ok and good
        elif name == "/Crypt":
            continue  # /Identity, or already decrypted by qpdf
        else:
            break  # image codecs (DCT, JPX, CCITTFax, JBIG2) or unknown: stays encoded
        if (name in _FLATE or name in _LZW) and p.get("/Predictor", 1) > 1 and out:
            out = _unpredict(out, p)
        ctx.check_output(len(out))
        data = out
    return data, ok


# --- structure (pikepdf) ------------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    import pikepdf

    if isinstance(value, pikepdf.Name):
        return [str(value)]
    if isinstance(value, pikepdf.Array):
        return [str(v) for v in value if isinstance(v, pikepdf.Name)]
    return []


def _parms_list(value: Any, n: int) -> list[dict[str, int]]:
    import pikepdf

    if isinstance(value, pikepdf.Array):
        return [_int_parms(v if isinstance(v, pikepdf.Dictionary) else None) for v in value]
    if isinstance(value, pikepdf.Dictionary):
        return [_int_parms(value)] + [{} for _ in range(n - 1)]
    return [{} for _ in range(n)]


class _Walk:
    """What the first pass over the objects finds: embedded-file names by stream, JS text."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.file_names: dict[tuple[int, int], str | None] = {}
        self.js: list[bytes] = []
        self.steps = 0

    def visit(self, obj: Any, depth: int = 0) -> None:
        """Direct dictionaries and arrays inside one indirect object (indirect ones are visited
        as objects of their own)."""
        import pikepdf

        self.steps += 1
        if not self.steps & 0x3FF:
            self.ctx.check_time()
        if depth > _MAX_WALK_DEPTH:
            return
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            keys = list(obj.keys())
            if "/EF" in keys:
                self._filespec(obj)
            if "/JS" in keys:
                js = obj.get("/JS")
                if isinstance(js, pikepdf.String):
                    self.js.append(bytes(js))
            for key in keys:
                child = obj.get(key)
                if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
                    self.visit(child, depth + 1)
        elif isinstance(obj, pikepdf.Array):
            for child in obj:
                if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
                    self.visit(child, depth + 1)

    def _filespec(self, spec: Any) -> None:
        import pikepdf

        name: str | None = None
        for key in ("/UF", "/F"):
            value = spec.get(key)
            if isinstance(value, pikepdf.String):
                name = str(value) or None
                break
        ef = spec.get("/EF")
        if not isinstance(ef, pikepdf.Dictionary):
            return
        for ef_key in ef.keys():  # noqa: SIM118 - iterating a Dictionary gives its keys
            stream = ef.get(ef_key)
            if isinstance(stream, pikepdf.Stream):
                self.file_names.setdefault(stream.objgen, name)


class _Unopened(Exception):
    """qpdf could not open or repair the file."""


def _structured(
    data: bytes, ctx: ScanContext, dedup: Dedup, damage: list[str], read: set[int]
) -> Iterator[Child]:
    """Children from qpdf's reading; raises EncryptedContent when a user password is needed,
    `_Unopened` when qpdf cannot open the file at all. Damage is appended to `damage` (said
    once, after every child, by the caller)."""
    import pikepdf

    _qpdf_limits()
    try:
        pdf = pikepdf.open(io.BytesIO(data), password="")
    except pikepdf.PasswordError:
        raise EncryptedContent("PDF") from None
    except Exception as exc:  # qpdf cannot open or repair it: the lenient scan is all we have
        raise _Unopened from exc
    with pdf:
        walk = _Walk(ctx)
        streams: list[Any] = []
        try:
            for obj in pdf.objects:
                walk.visit(obj)
                if isinstance(obj, pikepdf.Stream):
                    streams.append(obj)
        except (ScanLimitExceeded, EncryptedContent):
            raise
        except Exception:  # an object qpdf cannot resolve (a capped object stream, damage)
            damage.append("PDF")
        for js in walk.js:
            if js and dedup.fresh(js):
                ctx.charge_child(len(js))
                yield Child(data=js, name=None, origin="pdf-js")
        decoded: dict[tuple[int, int], bytes] = {}
        for stream in streams:
            ctx.check_time()
            try:
                raw = bytes(stream.read_raw_bytes())
                filters = _names(stream.get("/Filter"))
                parms = _parms_list(stream.get("/DecodeParms"), len(filters))
            except (ScanLimitExceeded, EncryptedContent):
                raise
            except Exception:  # a stream qpdf cannot read (damage): the lenient scan may
                damage.append("PDF")
                continue
            content, ok = decode_filters(raw, filters, parms, ctx)
            if not ok:
                damage.append("PDF")
            objgen = stream.objgen
            decoded[objgen] = content
            if not content or not dedup.fresh(content, walk.file_names.get(objgen)):
                continue
            is_file = objgen in walk.file_names or stream.get("/Type") == "/EmbeddedFile"
            ctx.charge_child(len(content))
            yield Child(data=content, name=walk.file_names.get(objgen),
                        origin="pdf-embedded-file" if is_file else "pdf-stream",
                        is_attachment=is_file)
        yield from _mapped_page_text(pdf, decoded, ctx, read)


_MAX_PAGES = 2000


def _mapped_page_text(pdf: Any, decoded: dict[tuple[int, int], bytes],
                      ctx: ScanContext, read: set[int]) -> Iterator[Child]:
    """The pages' text as a viewer lays it out, one page after the other (round 13: a file's
    text copied across pages): each page's content streams in order (a line split over two
    of them, round 11), through its fonts' ToUnicode maps and `/Differences`, within its
    MediaBox, with its annotations' appearances; the text of its notes and fields apart.
    (The reading of each content stream on its own is `pdf_children`'s; a text equal to one
    of those is not repeated.)"""
    import pikepdf

    try:
        pages = list(pdf.pages)[:_MAX_PAGES]
    except Exception:  # a page tree qpdf cannot follow: the streams were read anyway
        return
    texts: list[bytes] = []
    groups = _off_groups(pdf)
    font_cache: dict[tuple[int, int], FontMap] = {}
    for page in pages:
        ctx.check_time()
        try:
            fonts = _page_fonts(page.obj, decoded, font_cache)
            contents = page.obj.get("/Contents")
            parts = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
            content = b"\n".join(decoded.get(c.objgen, b"") for c in parts if c is not None)
            box = tuple(float(v) for v in page.obj.get("/MediaBox", [0, 0, 612, 792]))
            budget = [_MAX_FORMS]
            forms = _page_forms(page.obj, decoded, budget, groups)
            off_names = _off_names(page.obj, groups)
            annots, shown_annots = _annotations(page.obj, decoded, budget, groups)
            notes = _annotation_strings(page.obj, decoded)
        except (ScanLimitExceeded, EncryptedContent):
            raise
        except Exception as exc:  # odd resources: the plain reading of its streams stands
            _log.debug("pdf: page not read: %s", exc)
            continue
        page_box = box if len(box) == 4 else None
        readings = page_readings(content, fonts, page_box, forms, annots, off_names)
        if shown_annots is not annots:  # as a viewer shows the page's annotations
            readings += [r for r in page_readings(content, fonts, page_box, forms, shown_annots,
                                                  off_names) if r not in readings]
        read.update(id(decoded[c.objgen]) for c in parts if c is not None and c.objgen in decoded)
        if readings:
            texts.append(readings[0])
            for other in readings[1:]:
                ctx.charge_child(len(other))
                yield Child(data=other, name=None, origin="pdf-text")
        for note in notes:
            ctx.charge_child(len(note))
            yield Child(data=note, name=None, origin="pdf-text")
    if texts:  # the pages in one text, as pdftotext gives it: a file copied across pages
        whole = b"".join(texts)
        ctx.charge_child(len(whole))
        yield Child(data=whole, name=None, origin="pdf-text")


def _annotations(page: Any, decoded: dict[tuple[int, int], bytes], budget: list[int],
                 groups: set[tuple[int, int]]) -> tuple[list[Form], list[Form]]:
    """The appearance streams of the page's annotations (form fields, FreeText boxes,
    stamps: a viewer draws them on the page and `pdftotext` reads their text, round 13),
    each placed in its /Rect (PDF 12.5.5): every state of each, the hidden ones too (what
    one viewer hides another shows); and those a viewer shows (round 14: a field's state
    chosen by /AS, no annotation flagged Hidden or NoView), when that is fewer."""
    import pikepdf

    annots = page.get("/Annots")
    if not isinstance(annots, pikepdf.Array):
        return [], []
    out: list[Form] = []
    shown: list[Form] = []
    for annot in list(annots)[:_MAX_ANNOTS]:
        if not isinstance(annot, pikepdf.Dictionary):
            continue
        ap = annot.get("/AP")
        normal = ap.get("/N") if isinstance(ap, pikepdf.Dictionary) else None
        keys: list[Any] = []
        states: list[Any] = [normal] if isinstance(normal, pikepdf.Stream) else []
        if isinstance(normal, pikepdf.Dictionary):
            keys = list(normal.keys())[:16]
            states = [normal.get(k) for k in keys]
        chosen = str(annot.get("/AS", ""))
        try:
            flags = int(annot.get("/F", 0))
        except (TypeError, ValueError):
            flags = 0
        visible = not flags & (_HIDDEN_ANNOT | _NO_VIEW) and not _is_off(annot.get("/OC"),
                                                                       groups)
        rect = _floats(annot.get("/Rect"), 4)
        for i, stream in enumerate(states):
            if not isinstance(stream, pikepdf.Stream) or budget[0] <= 0:
                continue
            form = _form(stream, decoded, budget, 0, set())
            bbox = _floats(stream.get("/BBox"), 4)
            if rect is not None and bbox is not None:
                form.matrix = _times(form.matrix, _fit(_bounds(bbox, form.matrix), rect))
            out.append(form)
            if visible and (not keys or str(keys[i]) == chosen):
                shown.append(form)
    return out, (shown if len(shown) < len(out) else out)


_HIDDEN_ANNOT = 2  # /F bits: Hidden, NoView (PDF 12.5.3)
_NO_VIEW = 32


def _annotation_strings(page: Any, decoded: dict[tuple[int, int], bytes]) -> list[bytes]:
    """The text of the page's annotations and form fields as a reader sees it in a note or a
    field: /Contents, /V (a field's value, also drawn by a viewer that builds the field's
    appearance itself), /RC (rich text) and /MK /CA (a button's caption), one per line, a
    text per kind of string (round 15: the note in /Contents, junk in /RC beside it)."""
    import pikepdf

    annots = page.get("/Annots")
    if not isinstance(annots, pikepdf.Array):
        return []
    kinds: dict[str, list[bytes]] = {}
    for annot in list(annots)[:_MAX_ANNOTS]:
        if not isinstance(annot, pikepdf.Dictionary):
            continue
        node: Any = annot
        hops = 0
        while isinstance(node, pikepdf.Dictionary) and hops < 8:  # a field's /V may sit on
            for key in ("/Contents", "/V", "/RC", "/MK"):  # its parent (the field holds it)
                value = node.get(key)
                if key == "/MK" and isinstance(value, pikepdf.Dictionary):
                    value = value.get("/CA")  # a button's caption (round 14)
                if isinstance(value, pikepdf.String):
                    kinds.setdefault(key, []).append(_text_string(bytes(value)))
                elif isinstance(value, pikepdf.Stream):  # decoded under the scan's bounds
                    kinds.setdefault(key, []).append(decoded.get(value.objgen, b"")[:_MAX_NOTE])
            node, hops = node.get("/Parent"), hops + 1
    out = []
    for lines in kinds.values():
        text = b"\n".join(line for line in lines if line.strip())
        if text:
            out.append(text + b"\n")
    return out


def _text_string(raw: bytes) -> bytes:
    """A PDF text string as UTF-8: UTF-16 with its byte-order mark, else bytes as they are."""
    if raw[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return raw.decode("utf-16", "replace").encode()
    return raw


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except Exception:
        return None
    return out if len(out) == n else None


def _bounds(box: tuple[float, ...], m: tuple[float, ...]) -> tuple[float, ...]:
    """The bounding box of `box` transformed by `m`."""
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[0], box[3]), (box[2], box[1]), (box[2], box[3])):
        p = _times((1.0, 0.0, 0.0, 1.0, x, y), m)
        xs.append(p[4])
        ys.append(p[5])
    return min(xs), min(ys), max(xs), max(ys)


def _fit(box: tuple[float, ...], rect: tuple[float, ...]) -> tuple[float, ...]:
    """The matrix that maps `box` onto `rect` (PDF 12.5.5, Algorithm 8.1's matrix A)."""
    rx0, ry0, rx1, ry1 = min(rect[0], rect[2]), min(rect[1], rect[3]), max(
        rect[0], rect[2]), max(rect[1], rect[3])
    w, h = box[2] - box[0], box[3] - box[1]
    sx = (rx1 - rx0) / w if w else 1.0
    sy = (ry1 - ry0) / h if h else 1.0
    return (sx, 0.0, 0.0, sy, rx0 - box[0] * sx, ry0 - box[1] * sy)


#: Glyph names of the characters encoded text is made of (the Adobe Glyph List's ASCII part;
#: a letter's name is the letter).
_GLYPHS = {
    **{c: c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
    **dict(zip(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine"), "0123456789", strict=True)),
    "plus": "+", "slash": "/", "equal": "=", "space": " ", "hyphen": "-", "underscore": "_",
    "period": ".", "comma": ",", "colon": ":", "semicolon": ";", "exclam": "!", "at": "@",
    "numbersign": "#", "dollar": "$", "percent": "%", "ampersand": "&", "asterisk": "*",
    "parenleft": "(", "parenright": ")", "bracketleft": "[", "bracketright": "]",
    "braceleft": "{", "braceright": "}", "backslash": "\\", "quotesingle": "'",
    "quotedbl": '"', "less": "<", "greater": ">", "question": "?", "asciicircum": "^",
    "asciitilde": "~", "bar": "|", "grave": "`",
}


_UNI_NAME = re.compile(r"uni((?:[0-9A-Fa-f]{4})+)|u([0-9A-Fa-f]{4,6})")


def _glyph_name(name: str) -> str:
    """A glyph name's text as the Adobe Glyph List specification maps it (round 13): what
    follows a period is a variant's suffix (`A.alt`, `a.sc`, `uni0041.ss01`), underscores
    join components (`f_i`), each a listed name, `uni` and hex digits by fours, or `u` and
    four to six hex digits."""
    base = name.split(".", 1)[0]
    if not base:
        return "\ufffd"
    return "".join(_GLYPHS.get(part) or _glyph_by_code(part) for part in base.split("_"))


def _glyph_by_code(name: str) -> str:
    """`uni0041`, `uni00410042`, `u0041` (the glyph list's code-point names), a one-letter
    name."""
    m = _UNI_NAME.fullmatch(name)
    if m is not None:
        digits = m.group(1) or m.group(2)
        step = 4 if m.group(1) else len(digits)
        return "".join(_code_char(int(digits[i : i + step], 16))
                       for i in range(0, len(digits), step))
    return name if len(name) == 1 else "\ufffd"


def _code_char(code: int) -> str:
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _differences(font: Any) -> dict[int, str] | None:
    """A simple font's `/Encoding /Differences` over Latin-1 (round 11: letters drawn by
    other codes), None without one."""
    encoding = font.get("/Encoding")
    diffs = encoding.get("/Differences") if encoding is not None and hasattr(
        encoding, "get") else None
    if diffs is None:
        return None
    codes = {c: chr(c) for c in range(256)}
    code = 0
    for item in list(diffs)[:1024]:
        if isinstance(item, int) or (hasattr(item, "__int__") and not str(item).startswith("/")):
            code = int(item)
        else:
            name = str(item)[1:]
            if 0 <= code < 256:
                codes[code] = _GLYPHS.get(name) or _glyph_name(name)
            code += 1
    return codes


def _page_forms(page: Any, decoded: dict[tuple[int, int], bytes],
                budget: list[int], groups: set[tuple[int, int]], depth: int = 0) -> Forms:
    """The Form XObjects a page (or a form) names in its resources, each with its own fonts
    and forms (round 13: text in forms nested in forms, one font name meaning another thing
    in each): name -> `Form`. `budget` bounds the forms read per page."""
    resources = page.get("/Resources")
    xobjects = resources.get("/XObject") if resources is not None else None
    if xobjects is None or depth >= _MAX_FORM_DEPTH:
        return {}
    out: Forms = {}
    for key in list(xobjects.keys())[:256]:
        xobj = xobjects.get(key)
        if xobj is None or str(xobj.get("/Subtype")) != "/Form" or not hasattr(xobj, "objgen"):
            continue
        if budget[0] <= 0:
            break
        out[str(key)[1:].encode("latin-1", "replace")] = _form(xobj, decoded, budget, depth,
                                                               groups)
    return out


def _form(xobj: Any, decoded: dict[tuple[int, int], bytes], budget: list[int],
          depth: int, groups: set[tuple[int, int]]) -> Form:
    budget[0] -= 1
    matrix = _floats(xobj.get("/Matrix", [1, 0, 0, 1, 0, 0]), 6) or _IDENTITY
    has_resources = xobj.get("/Resources") is not None
    return Form(decoded.get(xobj.objgen, b""), matrix,
                _page_fonts(xobj, decoded) if has_resources else None,
                _page_forms(xobj, decoded, budget, groups, depth + 1) if has_resources
                else None, off=_is_off(xobj.get("/OC"), groups),
                off_names=_off_names(xobj, groups) if has_resources else None)


def _off_groups(pdf: Any) -> set[tuple[int, int]]:
    """The optional content groups a viewer hides by default (/OCProperties /D: its /OFF
    list, or all but its /ON list when its /BaseState is /OFF)."""
    try:
        props = pdf.Root.get("/OCProperties")
        default = props.get("/D") if props is not None else None
        if default is None:
            return set()
        if str(default.get("/BaseState", "/ON")) == "/OFF":
            on = {g.objgen for g in list(default.get("/ON", []))[:4096]}
            return {g.objgen for g in list(props.get("/OCGs", []))[:4096]} - on
        return {g.objgen for g in list(default.get("/OFF", []))[:4096]}
    except Exception:  # odd optional content: none hidden
        return set()


def _is_off(oc: Any, groups: set[tuple[int, int]]) -> bool:
    """Whether optional content `oc` (a group, or a membership dictionary and its /P
    policy) is hidden by default (round 14: decoys in content a viewer does not show)."""
    import pikepdf

    if oc is None:
        return False
    try:
        if str(oc.get("/Type")) != "/OCMD":
            return oc.objgen in groups
        expression = oc.get("/VE")
        if expression is not None:  # a visibility expression (round 15): /And /Or /Not
            return not _visible(expression, groups, 0)
        members = oc.get("/OCGs")
        if members is None:
            return False
        listed = list(members)[:256] if isinstance(members, pikepdf.Array) else [members]
        off = [m.objgen in groups for m in listed]
        policy = str(oc.get("/P", "/AnyOn"))
        if policy == "/AllOn":
            return any(off)
        if policy == "/AnyOff":
            return not any(off)
        if policy == "/AllOff":
            return not all(off)
        return all(off)
    except Exception:
        return False


def _visible(expression: Any, groups: set[tuple[int, int]], depth: int) -> bool:
    """A visibility expression's value (PDF 8.11.2.2): a group is visible unless OFF."""
    import pikepdf

    if depth > 32:
        return True
    if not isinstance(expression, pikepdf.Array):
        return expression.objgen not in groups
    items = list(expression)[:256]
    if not items:
        return True
    op, operands = str(items[0]), items[1:]
    values = [_visible(o, groups, depth + 1) for o in operands]
    if op == "/Not":
        return not values[0] if values else True
    if op == "/Or":
        return any(values)
    return all(values)  # /And


def _off_names(owner: Any, groups: set[tuple[int, int]]) -> frozenset[bytes]:
    """The names of `owner`'s resources /Properties that are hidden optional content."""
    try:
        props = owner.get("/Resources").get("/Properties")
        if props is None:
            return frozenset()
        return frozenset(str(k)[1:].encode("latin-1", "replace")
                         for k in list(props.keys())[:1024] if _is_off(props.get(k), groups))
    except Exception:
        return frozenset()


def _page_fonts(page: Any, decoded: dict[tuple[int, int], bytes],
                cache: dict[tuple[int, int], FontMap] | None = None) -> dict[bytes, FontMap]:
    """The page's fonts: resource name -> map (its ToUnicode map or `/Differences`, if any,
    and its widths). `cache`: the maps already made, by font object (one font on 20 pages
    under 256 names: its CMap was parsed 5,120 times, 17 s for an 8 KB mail)."""
    resources = page.get("/Resources")
    font_dict = resources.get("/Font") if resources is not None else None
    if font_dict is None:
        return {}
    out: dict[bytes, FontMap] = {}
    for key in list(font_dict.keys())[:256]:
        font = font_dict.get(key)
        if font is None:
            continue
        name = str(key)[1:].encode("latin-1", "replace")
        objgen = getattr(font, "objgen", (0, 0))
        if cache is not None and objgen != (0, 0) and objgen in cache:
            out[name] = cache[objgen]
            continue
        out[name] = _font_map(font, decoded)
        if cache is not None and objgen != (0, 0):
            cache[objgen] = out[name]
    return out


def _font_map(font: Any, decoded: dict[tuple[int, int], bytes]) -> FontMap:
    """One font's map (see `_page_fonts`)."""
    cmap = font.get("/ToUnicode")
    codes = to_unicode(decoded.get(cmap.objgen, b"")) if hasattr(cmap, "objgen") else {}
    type0 = str(font.get("/Subtype")) == "/Type0"
    metrics = _font_widths(font, type0)
    if not codes and not type0:
        mapped = _differences(font)
        return (FontMap(mapped, 1, metrics=metrics) if mapped is not None
                else FontMap({}, 1, metrics=metrics, passthrough=True))
    encoding = font.get("/Encoding")
    if not codes and (predefined := _predefined_map(font, encoding, metrics)) is not None:
        return predefined
    spaces: tuple[tuple[int, int, int], ...] = ()
    for cmap_text in (decoded.get(encoding.objgen, b"") if hasattr(encoding, "objgen")
                      else b"", decoded.get(cmap.objgen, b"") if codes else b""):
        spaces = _codespaces(cmap_text)
        if spaces:  # the CMap's own code lengths (a Type0 font may use 1, or 1 and 2)
            break
    width = spaces[0][0] if spaces else 2 if type0 else 1
    # Type0 codes not in the map (or with no map) read as their code points, as
    # pdftotext does (round 13)
    return FontMap(codes, width, identity=type0, metrics=metrics,
                   spaces=spaces if len({n for n, _lo, _hi in spaces}) > 1 else ())


#: The predefined CJK CMaps (PDF 32000 9.7.5.2, Table 118) whose codes are a legacy
#: encoding's bytes: Python's codec gives the text `pdftotext` shows through the CMap and the
#: collection's CID -> Unicode table (round 16: fullwidth Shift-JIS codes under
#: 90ms-RKSJ-H). The `Uni...` CMaps are Unicode codes themselves.
_PREDEFINED_CODECS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), codec) for pattern, codec in (
        (r"(?:78ms|90ms|90msp|Ext)-RKSJ-[HV]", "cp932"),
        (r"(?:78-|83pv-|90pv-|Add-)?RKSJ-[HV]", "shift_jis"),
        (r"(?:78-)?EUC-[HV]", "euc_jp"),
        (r"(?:78-|Ext-|Add-)?[HV]", "jis-x0208"),  # JIS X 0208 row/cell, as ISO-2022-JP's
        (r"GBK2K-[HV]", "gb18030"),
        (r"GBKp?-EUC-[HV]", "gbk"),
        (r"GB(?:pc)?-EUC-[HV]", "gb2312"),
        (r"(?:HKscs|ETHK)-B5-[HV]", "big5hkscs"),
        (r"ETenms-B5-[HV]", "cp950"),
        (r"(?:B5|B5pc|ETen-B5)-[HV]", "big5"),
        (r"KSC(?:pc)?-EUC-[HV]", "euc_kr"),
        (r"KSCms-UHC(?:-HW)?-[HV]", "cp949"),
        (r"Uni\w*-UTF8-[HV]", "utf-8"),
        (r"Uni\w*-UTF32-[HV]", "utf-32-be"),
        (r"Uni\w*-(?:UCS2|UTF16)(?:-HW)?-[HV]", "utf-16-be"),
        (r"Identity-UTF16-H", "utf-16-be"),
    ))

#: CID -> Unicode for the Roman and fullwidth Roman glyphs of Adobe's CJK character
#: collections, as runs (first CID, first code point, count): what `pdftotext` shows for
#: an Identity-H/V font without a ToUnicode map (round 16: the CIDs of Adobe-Japan1's
#: proportional Roman letters spell base64). Taken from poppler-data's cidToUnicode files
#: (Adobe's cid2code tables), keeping only the CIDs that map to ASCII, U+00A0, U+00A5 and the
#: fullwidth forms U+FF01-FF5E; a test checks them against /usr/share/poppler/cidToUnicode.
_CID_ROMAN: dict[str, tuple[tuple[int, int, int], ...]] = {
    "Japan1": (
        (1, 0x00A0, 1), (2, 0x0021, 59), (61, 0x00A5, 1), (62, 0x005D, 2), (66, 0x0061, 27),
        (94, 0x007D, 1), (97, 0x005C, 1), (99, 0x007C, 1), (100, 0x007E, 1),
        (231, 0x00A0, 1), (232, 0x0021, 12), (245, 0x002E, 46), (291, 0x00A5, 1),
        (292, 0x005D, 2), (296, 0x0061, 27), (324, 0x007D, 1), (636, 0xFF0C, 1),
        (637, 0xFF0E, 1), (639, 0xFF1A, 2), (641, 0xFF1F, 1), (642, 0xFF01, 1),
        (646, 0xFF40, 1), (648, 0xFF3E, 1), (650, 0xFF3F, 1), (663, 0xFF0F, 1),
        (664, 0xFF3C, 1), (667, 0xFF5C, 1), (674, 0xFF08, 2), (678, 0xFF3B, 1),
        (679, 0xFF3D, 1), (680, 0xFF5B, 1), (681, 0xFF5D, 1), (692, 0xFF0B, 1),
        (697, 0xFF1D, 1), (699, 0xFF1C, 1), (700, 0xFF1E, 1), (712, 0xFF04, 1),
        (715, 0xFF05, 1), (716, 0xFF03, 1), (717, 0xFF06, 1), (718, 0xFF0A, 1),
        (719, 0xFF20, 1), (780, 0xFF10, 10), (790, 0xFF21, 26), (816, 0xFF41, 26),
        (7896, 0xFF5C, 1), (7917, 0xFF1D, 1), (8006, 0xFF07, 1), (8007, 0xFF02, 1),
        (8274, 0xFF0E, 1),
    ),
    "GB1": (
        (1, 0x0020, 95), (106, 0xFF5E, 1), (166, 0xFF04, 1), (262, 0xFF01, 3),
        (266, 0xFF05, 89), (814, 0xFF01, 3), (818, 0xFF05, 89), (7704, 0xFF5E, 1),
        (7707, 0xFF0E, 1), (7708, 0xFF1D, 1), (7709, 0xFF3B, 1), (7710, 0xFF3D, 1),
    ),
    "CNS1": (
        (1, 0x0020, 95), (100, 0xFF0C, 1), (103, 0xFF0E, 1), (105, 0xFF1B, 1),
        (106, 0xFF1A, 1), (107, 0xFF1F, 1), (108, 0xFF01, 1), (120, 0xFF5C, 1),
        (128, 0xFF08, 2), (132, 0xFF5B, 1), (133, 0xFF5D, 1), (174, 0xFF03, 1),
        (175, 0xFF06, 1), (176, 0xFF0A, 1), (197, 0xFF3F, 1), (208, 0xFF0B, 1),
        (209, 0xFF0D, 1), (214, 0xFF1C, 1), (215, 0xFF1E, 1), (216, 0xFF1D, 1),
        (259, 0xFF04, 1), (260, 0x00A5, 1), (264, 0xFF05, 1), (265, 0xFF20, 1),
        (333, 0xFF10, 10), (365, 0xFF21, 26), (391, 0xFF41, 26), (13648, 0x0020, 94),
        (13758, 0xFF3B, 1), (13759, 0xFF3D, 1), (14051, 0xFF07, 1), (14052, 0xFF02, 1),
    ),
    "Korea1": (
        (1, 0x0020, 95), (112, 0xFF3C, 1), (113, 0xFF5E, 1), (264, 0xFF01, 59),
        (324, 0xFF3D, 33), (8062, 0xFF5E, 1), (8076, 0xFF01, 1), (8077, 0xFF08, 2),
        (8079, 0xFF0C, 1), (8080, 0xFF0E, 1), (8081, 0xFF1A, 6), (8087, 0xFF3B, 1),
        (8088, 0xFF3D, 1), (8089, 0xFF3F, 1), (8090, 0xFF5B, 3), (8095, 0x0021, 59),
        (8155, 0x005D, 32), (8600, 0x002A, 1),
    ),
}
_cid_maps: dict[str, dict[int, str]] = {}


def cid_roman(ordering: str) -> dict[int, str] | None:
    """`_CID_ROMAN[ordering]` as CID -> text (built once), None for another collection."""
    runs = _CID_ROMAN.get(ordering)
    if runs is None:
        return None
    if ordering not in _cid_maps:
        _cid_maps[ordering] = {cid + i: chr(u + i) for cid, u, n in runs for i in range(n)}
    return _cid_maps[ordering]


def _predefined_map(font: Any, encoding: Any, metrics: Widths) -> FontMap | None:
    """How a Type0 font without a ToUnicode map reads by its predefined CMap (round 16): a
    legacy CJK encoding's codec, or, for Identity-H/V, its Adobe collection's Roman CIDs (the
    rest as their code points, as before); None for anything else."""
    import pikepdf

    if str(font.get("/Subtype")) != "/Type0" or not isinstance(encoding, pikepdf.Name):
        return None
    cmap = str(encoding)[1:]
    for pattern, codec in _PREDEFINED_CODECS:
        if pattern.fullmatch(cmap):
            return FontMap({}, 2, metrics=metrics, codec=codec)
    if cmap not in ("Identity-H", "Identity-V"):
        return None
    try:
        kids = font.get("/DescendantFonts")
        info = kids[0].get("/CIDSystemInfo") if kids is not None and len(kids) else None
        registry = str(info.get("/Registry", "")) if info is not None else ""
        ordering = str(info.get("/Ordering", "")) if info is not None else ""
    except Exception:  # odd entries: as if it had none
        return None
    roman = cid_roman(ordering) if registry == "Adobe" else None
    return None if roman is None else FontMap(roman, 2, identity=True, metrics=metrics)


@dataclass(frozen=True)
class Widths:
    """A font's glyph advances in thousandths of a text space unit (PDF 9.2.4), signed (round
    14: negative /Widths, a mirrored Type3 /FontMatrix): by one-byte code in `table`, by
    code in `cids` for a Type0 font; `default` for the rest. Round 17 placed glyphs by them:
    TJ offsets and word spacing that move shuffled chunks into order only read right when
    each glyph lands where pdftotext puts it."""

    table: tuple[float, ...] = ()  # 256 entries, or () for all `default`
    cids: dict[int, float] = field(default_factory=dict)
    default: float = 500.0
    low: float = 500.0  # the smallest of them all

    def of(self, code: int, nbytes: int) -> float:
        if nbytes == 1 and self.table:
            return self.table[code]
        return self.cids.get(code, self.default)


#: Without font information a glyph is half an em wide.
_ESTIMATE = Widths()
_MAX_CID_WIDTHS = 65536

#: The widths of codes 32-126 of the standard 14 fonts that are not fixed-pitch (Adobe's
#: AFM files): what pdftotext uses for a font without /Widths. Courier's are all 600.
_BASE14_ASCII = {
    "Helvetica": (
        "278 278 355 556 556 889 667 222 333 333 389 584 278 333 278 278 556 556 556 556 556 "
        "556 556 556 556 556 278 278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 "
        "500 667 556 833 722 778 667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 "
        "556 222 556 556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 "
        "278 556 500 722 500 500 500 334 260 334 584 "
    ),
    "Helvetica-Bold": (
        "278 333 474 556 556 889 722 278 333 333 389 584 278 333 278 278 556 556 556 556 556 "
        "556 556 556 556 556 333 333 584 584 584 611 975 722 722 722 722 667 611 778 722 278 "
        "556 722 611 833 722 778 667 778 722 667 611 722 667 944 667 667 611 333 278 333 584 "
        "556 278 556 611 556 611 556 333 611 611 278 278 556 278 889 611 611 611 611 389 556 "
        "333 611 556 778 556 556 500 389 280 389 584 "
    ),
    "Times-Roman": (
        "250 333 408 500 500 833 778 333 333 333 500 564 250 333 250 278 500 500 500 500 500 "
        "500 500 500 500 500 278 278 564 564 564 444 921 722 667 667 722 611 556 722 722 333 "
        "389 722 611 889 722 722 556 722 667 556 611 722 722 944 722 722 611 333 278 333 469 "
        "500 333 444 500 444 500 444 333 500 500 278 278 500 278 778 500 500 500 500 333 389 "
        "278 500 500 722 500 500 444 480 200 480 541 "
    ),
    "Times-Bold": (
        "250 333 555 500 500 1000 833 333 333 333 500 570 250 333 250 278 500 500 500 500 500 "
        "500 500 500 500 500 333 333 570 570 570 500 930 722 667 722 722 667 611 778 778 389 "
        "500 778 667 944 722 778 611 778 722 556 667 722 722 1000 722 722 667 333 278 333 581 "
        "500 333 500 556 444 556 444 333 500 556 278 333 556 278 833 556 500 556 556 444 389 "
        "333 556 500 722 500 500 444 394 220 394 520 "
    ),
    "Times-Italic": (
        "250 333 420 500 500 833 778 333 333 333 500 675 250 333 250 278 500 500 500 500 500 "
        "500 500 500 500 500 333 333 675 675 675 500 920 611 611 667 722 611 611 722 722 333 "
        "444 667 556 833 667 722 611 722 611 500 556 722 611 833 611 556 556 389 278 389 422 "
        "500 333 500 500 444 500 444 278 500 500 278 278 444 278 722 500 500 500 500 389 389 "
        "278 500 444 667 444 444 389 400 275 400 541 "
    ),
    "Times-BoldItalic": (
        "250 389 555 500 500 833 778 333 333 333 500 570 250 333 250 278 500 500 500 500 500 "
        "500 500 500 500 500 333 333 570 570 570 500 832 667 667 667 722 667 667 722 778 389 "
        "500 667 611 889 722 722 611 722 667 556 611 722 667 889 667 611 611 333 278 333 570 "
        "500 333 500 500 444 500 444 333 500 556 278 278 500 278 778 556 500 500 500 389 389 "
        "278 556 444 667 500 444 389 348 220 348 570 "
    ),
}
_base14: dict[str, Widths] = {}


def _base14_widths(base: str) -> Widths:
    """The widths poppler takes for a font without /Widths: the standard 14 font its name
    stands for (Arial as Helvetica, Times New Roman as Times), else Helvetica's."""
    name = base.split("+", 1)[-1].replace(" ", "")
    bold = any(w in name for w in ("Bold", "Black", "Heavy", "Semibold"))
    italic = "Italic" in name or "Oblique" in name
    if "Courier" in name or "Mono" in name:
        key = "Courier"
    elif "Times" in name or ("Serif" in name and "Sans" not in name):
        key = "Times-" + ("Bold" if bold else "") + ("Italic" if italic else "")
        key = "Times-Roman" if key == "Times-" else key
    else:
        key = "Helvetica-Bold" if bold else "Helvetica"
    if key not in _base14:
        if key == "Courier":
            _base14[key] = Widths((600.0,) * 256, default=600.0, low=600.0)
        else:
            ascii_ = [float(w) for w in "".join(_BASE14_ASCII[key]).split()]
            rest = sum(ascii_) / len(ascii_)
            table = (rest,) * 32 + tuple(ascii_) + (rest,) * 129
            _base14[key] = Widths(table, default=rest, low=min(table))
    return _base14[key]


def _font_widths(font: Any, type0: bool) -> Widths:
    """A font's `Widths`: a Type0 font's /DW and /W, a simple font's /Widths from /FirstChar
    (codes outside them: /MissingWidth, as poppler), scaled by a Type3 font's /FontMatrix;
    a font without them as its standard 14 font (`_base14_widths`)."""
    import pikepdf

    try:
        if type0:
            kids = font.get("/DescendantFonts")
            cid = kids[0] if kids is not None and len(kids) else None
            if cid is None:
                return Widths(default=1000.0, low=1000.0)
            default = float(cid.get("/DW", 1000))
            cids = _cid_widths(list(cid.get("/W", []))[:8192])
            return Widths(cids=cids, default=default, low=min([default, *cids.values()]))
        widths = font.get("/Widths")
        if not isinstance(widths, pikepdf.Array):
            return _base14_widths(str(font.get("/BaseFont", "")))
        scale = 1.0
        matrix = font.get("/FontMatrix")
        if str(font.get("/Subtype")) == "/Type3" and matrix is not None:
            scale = float(matrix[0]) * 1000
        descriptor = font.get("/FontDescriptor")
        missing = float(descriptor.get("/MissingWidth", 0)) if isinstance(
            descriptor, pikepdf.Dictionary) else 0.0
        first = int(font.get("/FirstChar", 0))
        table = [missing * scale] * 256
        for i, w in enumerate(list(widths)[:256]):
            if 0 <= first + i < 256:
                table[first + i] = float(w) * scale
        return Widths(tuple(table), default=missing * scale, low=min(table))
    except Exception:  # odd entries: as if it had none
        return _ESTIMATE


def _cid_widths(items: list[Any]) -> dict[int, float]:
    """A CID font's /W array (`c [w1 w2 ...]` and `c_first c_last w`), at most
    `_MAX_CID_WIDTHS` entries."""
    import pikepdf

    out: dict[int, float] = {}
    i = 0
    while i + 1 < len(items) and len(out) < _MAX_CID_WIDTHS:
        first, nxt = int(items[i]), items[i + 1]
        if isinstance(nxt, pikepdf.Array):
            for j, each in enumerate(list(nxt)[:_MAX_CID_WIDTHS]):
                out[first + j] = float(each)
            i += 2
        elif i + 2 < len(items):
            last, width = int(nxt), float(items[i + 2])
            for c in range(first, min(last, first + _MAX_CID_WIDTHS) + 1):
                out[c] = width
            i += 3
        else:
            break
    return out


def _codespaces(cmap: bytes) -> tuple[tuple[int, int, int], ...]:
    """A CMap's code space ranges: (bytes, first, last) each, shortest codes first."""
    block = next(_blocks(cmap, b"begincodespacerange", b"endcodespacerange"), None)
    if block is None:
        return ()
    hexes = _CMAP_HEX.findall(block)
    out = []
    for lo, hi in zip(hexes[0::2], hexes[1::2], strict=False):
        lo, hi = re.sub(rb"\s", b"", lo), re.sub(rb"\s", b"", hi)
        if lo and len(lo) == len(hi) and len(lo) % 2 == 0 and len(lo) <= 8:
            out.append((len(lo) // 2, int(lo, 16), int(hi, 16)))
    return tuple(sorted(out)[:64])


def _stream_bodies(data: bytes, ctx: ScanContext) -> Iterator[tuple[int, int, int]]:
    """(where the `stream` keyword starts, where its body starts, where the next `endstream`
    starts, or the end) of each `stream` in the raw bytes, the clock checked for each. One
    pass over the `endstream` markers, consumed in order: many streams without an
    `endstream` no longer each search the rest of the file."""
    ends = _PDF_ENDSTREAM.finditer(data)
    end_at: int | None = -1
    for m in _PDF_STREAM.finditer(data):
        ctx.check_time()
        start = m.end()
        if m.start() > 0 and data[m.start() - 1 : m.start()] == b"d":  # "endstream"
            continue
        while end_at is not None and end_at < start:
            em = next(ends, None)
            end_at = None if em is None else em.start()
        yield m.start(), start, len(data) if end_at is None else end_at


def pdf_streams(data: bytes, ctx: ScanContext, dedup: Dedup | None = None) -> Iterator[Child]:
    """The lenient reading: the FlateDecode streams of a PDF found by `stream ... endstream`
    in the raw bytes, inflated with the scan's bounds (damaged streams give what inflated
    before the damage)."""
    seen = dedup if dedup is not None else Dedup()
    count = 0
    view = memoryview(data)  # (inflated from a view, no copy)
    for keyword, start, end in _stream_bodies(data, ctx):
        if count >= _MAX_PDF_STREAMS:
            return
        dict_from = data.rfind(b"obj", max(0, keyword - 4096), keyword)
        header = data[dict_from if dict_from >= 0 else max(0, keyword - 1024) : keyword]
        if not _PDF_FLATE.search(header):
            continue
        out, _ = archive.inflate(view[start:end], ctx)
        count += 1
        if out and seen.fresh(out):
            ctx.charge_child(len(out))
            yield Child(data=out, name=None, origin="pdf-stream")


# -- a PDF fragment: an incremental update sent apart from the file it updates ------------------

#: An indirect object's header (`12 0 obj`), as a viewer's repair scan finds it.
_OBJ_HEADER = re.compile(
    rb"(?<![0-9])(\d{1,10})[\0\t\n\f\r ]+(\d{1,5})[\0\t\n\f\r ]+obj(?![A-Za-z])")
#: How far from either end `is_fragment` looks first.
_FRAGMENT_WINDOW = 1024
#: The end of an update (its trailer, or its last object) in the last `_FRAGMENT_WINDOW`.
_FRAGMENT_TAIL = re.compile(rb"startxref\s+\d+\s*%%EOF|endstream\s+endobj|trailer\s*<<")
#: `obj` occurrences tried before the first `endstream` (past them: taken for a fragment).
_MAX_OBJ_PROBES = 64
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]{0,512}\]|/[^\0\t\n\f\r /\[\]<>()]+)")
_NAME = re.compile(rb"/([^\0\t\n\f\r /\[\]<>()]+)")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PARM = re.compile(rb"/(Predictor|Colors|BitsPerComponent|Columns|EarlyChange)\s+(\d{1,6})")
#: `/DecodeParms` and its value: one dictionary, or an array of `null`s and dictionaries.
_DECODE_PARMS = re.compile(rb"/DecodeParms\s*(<<[^<>]{0,512}>>|\[(?:[^\[\]<>]|<<[^<>]{0,512}>>)"
                           rb"{0,2048}\])")
_PARMS_ENTRY = re.compile(rb"null|<<[^<>]{0,512}>>")
#: What `_bare` blanks: a literal string, a hex string (not a dictionary's `<<`), a comment.
_STRING_OR_COMMENT = re.compile(rb"\(|<(?!<)[0-9A-Fa-f\s]*>|%")
_EOL = re.compile(rb"[\r\n]")
_EMBEDDED_TYPE = re.compile(rb"/Type\s*/EmbeddedFile(?![A-Za-z])")
#: A file specification's embedded stream (`/EF << /F 5 0 R >>`).
_EF_REF = re.compile(rb"/EF\s*<<[^>]{0,256}?/U?F\s+(\d{1,10})\s+(\d{1,5})\s+R")
#: Its file name (`/UF (...)` or `/F (...)`), looked for near the `/EF`.
_SPEC_NAME = re.compile(rb"/U?F\s*\(")
_SPEC_WINDOW = 2048


def is_fragment(data: bytes) -> bool:
    """Whether bytes without a `%PDF-` header hold PDF object syntax: an incremental update
    (objects, an xref section with `/Prev`, a trailer, its own `%%EOF`) sent apart from the
    file it updates, which a reader opens once the two are put together (R33-F6). An object
    header in the first KiB followed by `<<`, `stream` or `endobj`; or a trailer or a
    stream's end in the last KiB; or else (junk on both sides) an object header before the
    last `endstream` anywhere. One C search of the layer when none of them is there."""
    head = data[:_FRAGMENT_WINDOW]
    m = _OBJ_HEADER.search(head)
    if m is not None:
        rest = head[m.end():]
        if rest.lstrip()[:2] == b"<<" or b"endobj" in rest or b"stream" in rest:
            return True
    if _FRAGMENT_TAIL.search(data, max(0, len(data) - _FRAGMENT_WINDOW)) is not None:
        return True
    end = data.rfind(b"endstream")  # (the last: junk in front may quote one, R34-F4)
    if end < 0:
        return False
    pos = 0
    for _ in range(_MAX_OBJ_PROBES):
        at = data.find(b"obj", pos, end)
        if at < 0:
            return False
        if _OBJ_HEADER.search(data, max(0, at - 24), at + 4):
            return True
        pos = at + 3
    return True  # (many `obj`s before a stream's end: read it, bounded as any PDF)


def _name(raw: bytes) -> str:
    return "/" + _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode("latin-1")


def _bare(header: bytes) -> bytes:
    """A dictionary's raw bytes with its strings and comments blanked: a `/Desc (/Filter
    /ASCIIHexDecode)` or a quoted `/Predictor 12` is text, not a key (R34-F1, F2)."""
    out = bytearray(header)
    pos = 0
    while (m := _STRING_OR_COMMENT.search(header, pos)) is not None:
        if m.group() == b"(":
            end = _literal_end(header, m.start())
        elif m.group() == b"%":
            eol = _EOL.search(header, m.start())
            end = len(header) if eol is None else eol.start()
        else:
            end = m.end()
        out[m.start():end] = bytes(end - m.start())
        pos = max(end, m.start() + 1)
    return bytes(out)


def _raw_filters(header: bytes) -> tuple[list[str], list[dict[str, int]]]:
    """A stream dictionary's filter chain and decode parameters, read from its raw bytes:
    strings and comments blanked, the last `/Filter` key, and `/DecodeParms` as one
    dictionary (the first filter's, as the full reading takes it) or an array with one entry
    a filter (`null` or a dictionary: R34-F3, a predictor for the second of two filters)."""
    bare = _bare(header)
    found = list(_FILTER.finditer(bare))
    if not found:
        return [], []
    filters = [_name(n) for n in _NAME.findall(found[-1].group(1))][:8]
    parms: list[dict[str, int]] = [{} for _ in filters]
    given = list(_DECODE_PARMS.finditer(bare))
    if given:
        value = given[-1].group(1)
        sets = ([value] if value.startswith(b"<<")
                else [e.group() for e in _PARMS_ENTRY.finditer(value)])
        for i, entry in enumerate(sets[: len(filters)]):
            parms[i] = {"/" + k.decode(): int(v) for k, v in _PARM.findall(entry)}
    return filters, parms


def _spec_names(data: bytes, ctx: ScanContext) -> dict[int, str]:
    """Embedded-file stream number -> the name its file specification gives it, from the raw
    bytes (bounded: `_MAX_PDF_STREAMS` specifications, a window around each)."""
    names: dict[int, str] = {}
    for i, m in enumerate(_EF_REF.finditer(data)):
        if i >= _MAX_PDF_STREAMS:
            break
        ctx.check_time()
        window_from = max(0, m.start() - _SPEC_WINDOW)
        obj = data.rfind(b"obj", window_from, m.start())  # (its own object's, not the last)
        window = data[max(window_from, obj) : m.end() + _SPEC_WINDOW]
        for s in _SPEC_NAME.finditer(window):
            end = _literal_end(window, s.end() - 1)
            if end > s.end():
                text = _text_string(_pdf_string(window[s.end() - 1 : end]))
                name = text.decode("utf-8", "replace").strip("\0")
                if name:
                    names.setdefault(int(m.group(1)), name)
                    break
    return names


def fragment_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """A PDF fragment (`is_fragment`) read as the lenient reading reads a damaged PDF, with
    every filter: each `stream ... endstream` body after an object header, decoded by
    `decode_filters` under the scan's bounds; an `/EmbeddedFile` stream (or one a file
    specification points to) is an attachment named as the specification names it, kept
    even unfiltered. Nothing else is said: bytes that quote PDF syntax are no finding."""
    seen = Dedup()
    names = _spec_names(data, ctx)
    count = 0
    for keyword, start, stop in _stream_bodies(data, ctx):
        if count >= _MAX_PDF_STREAMS:
            return
        window_from = max(0, keyword - 4096)
        headers = list(_OBJ_HEADER.finditer(data, window_from, keyword))
        if not headers:
            continue
        header = data[headers[-1].end() : keyword]
        if data[stop - 2 : stop] == b"\r\n":
            stop -= 2
        elif data[stop - 1 : stop] in (b"\n", b"\r"):
            stop -= 1
        number = int(headers[-1].group(1))
        is_file = number in names or _EMBEDDED_TYPE.search(header) is not None
        filters, parms = _raw_filters(header)
        if not filters and not is_file:
            continue  # (its bytes are the layer's own: scanned there)
        count += 1
        content, _ = decode_filters(data[start:max(start, stop)], filters, parms, ctx)
        name = names.get(number)
        if content and seen.fresh(content, name):
            ctx.charge_child(len(content))
            yield Child(data=content, name=name,
                        origin="pdf-embedded-file" if is_file else "pdf-stream",
                        is_attachment=is_file)


# -- the text a viewer shows -------------------------------------------------------------------

#: A content stream's tokens that matter for its text: a string's start, a hex string, array
#: brackets, the text-showing operators and those that start a new line. (A literal string is
#: read by `_literal_end`, one pass over its delimiters: a regex for balanced parentheses
#: backtracks without end on a stream of unclosed ones.)
_DELIMITER = re.compile(rb"[()\\]")
_OCTAL = (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7")
_STRING_ESCAPE = re.compile(rb"\\([0-7]{1,3}|\r\n|[\s\S])")
_ESCAPED = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"\r\n": b"",
            b"\n": b"", b"\r": b""}


def _literal_end(content: bytes, start: int) -> int:
    """Offset after the literal string opening at `start` (balanced parentheses, escapes)."""
    depth = 0
    pos = start
    while (m := _DELIMITER.search(content, pos)) is not None:
        ch = m.group()
        if ch == b"\\":
            pos = m.end() + 1
            continue
        depth += 1 if ch == b"(" else -1
        pos = m.end()
        if depth == 0:
            return pos
    return len(content)


def _pdf_string(token: bytes) -> bytes:
    if token[:1] == b"<":
        digits = re.sub(rb"\s", b"", token[1:-1])
        return bytes.fromhex((digits + b"0" * (len(digits) & 1)).decode("ascii"))
    return _STRING_ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1)) or (
        bytes([int(m.group(1), 8) & 0xFF]) if m.group(1)[:1] in _OCTAL else m.group(1)),
        token[1:-1])  # (`\\9`: a backslash before another character is dropped)


@dataclass(frozen=True)
class FontMap:
    """How a font's string bytes become text: its ToUnicode map and its code width; and how
    far each glyph advances (`metrics`)."""

    codes: dict[int, str]
    width: int  # bytes per code: 2 for a Type0 (CID) font, else 1
    identity: bool = False  # a code not in `codes` is its own code point
    passthrough: bool = False  # no map: the string's bytes are its text
    #: code space ranges of codes of several lengths (bytes, first, last); () when all have
    #: `width` bytes
    spaces: tuple[tuple[int, int, int], ...] = ()
    #: a predefined CMap's codes are this codec's bytes (`_PREDEFINED_CODECS`)
    codec: str | None = None
    metrics: Widths = _ESTIMATE
    _lut: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def text(self, raw: bytes) -> bytes:
        if self.passthrough:
            return raw
        if self.codec is not None:
            return self._decoded(raw)
        if self.simple():  # by a table of its codes' text, made once
            if not self._lut:
                object.__setattr__(self, "_lut", tuple(self._char(c) for c in range(256)))
            return "".join(map(self._lut.__getitem__, raw)).encode("utf-8", "replace")
        return "".join(self._char(code) for code, _n in self._codes(raw)).encode(
            "utf-8", "replace")

    def _decoded(self, raw: bytes) -> bytes:
        if self.codec == "jis-x0208":
            return (b"\x1b$B" + raw + b"\x1b(B").decode("iso2022_jp", "replace").encode(
                "utf-8", "replace")
        return raw.decode(self.codec or "latin-1", "replace").encode("utf-8", "replace")

    def _char(self, code: int) -> str:
        char = self.codes.get(code)
        if char is None:
            char = _code_char(code) if self.identity else "\ufffd"
        return char

    def _codes(self, raw: bytes) -> Iterator[tuple[int, int]]:
        """The string's codes and their lengths in bytes."""
        w = self.width
        i = 0
        while i < len(raw):
            if self.spaces:  # the shortest code whose range holds these bytes (PDF 9.7.6.2)
                w = next((n for n, lo, hi in self.spaces if i + n <= len(raw)
                          and lo <= int.from_bytes(raw[i : i + n], "big") <= hi),
                         self.width)
            if i + w > len(raw):
                break
            yield int.from_bytes(raw[i : i + w], "big"), w
            i += w

    def simple(self) -> bool:
        """Whether each byte is a code (so `measure` needs no per-code loop)."""
        return self.width == 1 and not self.spaces and self.codec is None

    def measure(self, raw: bytes) -> tuple[float, int, int, float]:
        """The string's glyphs: (sum of their widths, how many, how many are the one-byte
        code 32 that word spacing applies to (PDF 9.3.3), the last one's width)."""
        m = self.metrics
        if not raw:
            return 0.0, 0, 0, 0.0
        if self.simple():
            if not m.table:
                return m.default * len(raw), len(raw), raw.count(32), m.default
            return sum(map(m.table.__getitem__, raw)), len(raw), raw.count(32), m.table[raw[-1]]
        glyphs, _used = self.glyphs(raw)
        if not glyphs:
            return 0.0, 0, 0, 0.0
        return (sum(g[1] for g in glyphs), len(glyphs), sum(g[2] for g in glyphs),
                glyphs[-1][1])

    def narrowest(self, raw: bytes) -> float:
        """The smallest width of the string's glyphs."""
        m = self.metrics
        if self.simple() and m.table and raw:
            return min(map(m.table.__getitem__, raw))
        return min((g[1] for g in self.glyphs(raw)[0]), default=m.default)

    def glyphs(self, raw: bytes, limit: int = 1 << 20) -> tuple[list[tuple[bytes, float, bool]],
                                                                 int]:
        """The string's first `limit` glyphs: (text, width, whether word spacing applies)
        each; and how many bytes they take."""
        m = self.metrics
        if self.codec is not None:  # a legacy encoding's characters, each one glyph
            chars = self._decoded(raw).decode()
            if len(chars) <= limit:
                return [(ch.encode(), m.default, False) for ch in chars], len(raw)
            used = min(len(raw), 2 * limit)  # (a legacy encoding's codes: at most 2 bytes)
            return [(ch.encode(), m.default, False)
                    for ch in self._decoded(raw[:used]).decode()], used
        out: list[tuple[bytes, float, bool]] = []
        used = 0
        for code, n in self._codes(raw):
            if len(out) >= limit:
                break
            text = (code.to_bytes(n, "big") if self.passthrough
                    else self._char(code).encode("utf-8", "replace"))
            out.append((text, m.of(code, n), n == 1 and code == 32))
            used += n
        return out, used


#: A string's bytes as its text, each half an em wide: a content stream read without its
#: page's fonts.
_PLAIN = FontMap({}, 1, passthrough=True)


_CMAP_HEX = re.compile(rb"<([0-9A-Fa-f\s]*)>")


def _blocks(cmap: bytes, begin: bytes, end: bytes) -> Iterator[bytes]:
    """What each `begin ... end` of a CMap holds (as `begin(.*?)end` finds them, by `find`:
    that regex, tried at each of many `begin`s without an `end`, read on to the end from
    each, quadratic: a 2 KB mail of 320 KB of `beginbfchar` cost 40 s)."""
    at = cmap.find(begin)
    while at >= 0:
        stop = cmap.find(end, at + len(begin))
        if stop < 0:
            return
        yield cmap[at + len(begin) : stop]
        at = cmap.find(begin, stop + len(end))
_RANGE = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f\s]*>|\[[^\]]*\])")
_MAX_RANGE = 65536


def _utf16(hex_digits: bytes) -> str:
    raw = bytes.fromhex(re.sub(rb"\s", b"", hex_digits).decode("ascii") or "")
    return raw.decode("utf-16-be", "replace")


def to_unicode(cmap: bytes) -> dict[int, str]:
    """A ToUnicode CMap's `bfchar` and `bfrange` entries: code -> text (PDF 9.10.3)."""
    codes: dict[int, str] = {}
    for block in _blocks(cmap, b"beginbfchar", b"endbfchar"):
        pairs = _CMAP_HEX.findall(block)
        for src, dst in zip(pairs[0::2], pairs[1::2], strict=False):
            with contextlib.suppress(ValueError):
                codes[int(src, 16)] = _utf16(dst)
    for block in _blocks(cmap, b"beginbfrange", b"endbfrange"):
        for m in _RANGE.finditer(block):
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            if hi < lo or hi - lo > _MAX_RANGE:
                continue
            if m.group(3)[:1] == b"[":
                for i, dst in enumerate(_CMAP_HEX.findall(m.group(3))[: hi - lo + 1]):
                    codes[lo + i] = _utf16(dst)
            else:
                first = _utf16(m.group(3)[1:-1])
                if first:
                    for i in range(hi - lo + 1):
                        codes[lo + i] = first[:-1] + chr(min(ord(first[-1]) + i, 0x10FFFF))
    return codes


_NUMBER = rb"[-+]?(?:\d+\.?\d*|\.\d+)"
_LAYOUT_TOKEN = re.compile(
    rb"\(|<[0-9A-Fa-f\s]*>|/ActualText\s*(?=[(<])|\[|\]"
    rb"|/([^\s/\[\]()<>{}%]+)\s+(" + _NUMBER + rb")\s+Tf"
    rb"|((?:" + _NUMBER + rb"\s+){6})Tm|(" + _NUMBER + rb")\s+(" + _NUMBER + rb")\s+T[dD]"
    rb"|(" + _NUMBER + rb")\s+TL|((?:" + _NUMBER + rb"\s+){6})cm|(" + _NUMBER + rb")\s+Ts"
    rb"|/([^\s/\[\]()<>{}%]+)\s+Do|(" + _NUMBER + rb")\s+Tc|(" + _NUMBER + rb")\s+Tz"
    rb"|/OC\s*/([^\s/\[\]()<>{}%]+)\s*(?=BDC)|(" + _NUMBER + rb")\s+Tw"
    rb"|(?<![\w*])(?:Tj|TJ|'|\"|T\*|ET|BT|BDC|EMC|q|Q)(?![\w*])")
_NUMBER_TOKEN = re.compile(_NUMBER)
_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_MAX_FORM_DEPTH = 4
#: Strings and numbers of one text-showing operator placed one by one, and glyphs placed
#: one by one (round 17: a TJ array of a million entries costs no more than this); the rest
#: is read as one string after them.
_MAX_GLYPH_ITEMS = 65536
#: A move along the line of more than this (in ems) from where the last glyph ended starts
#: a new run, as pdftotext starts a new word (its `minWordBreakSpace`): another string may
#: be drawn in the gap (round 17).
_WORD_GAP = 0.1
#: The reading direction of a line turned by 0-3 quarter turns (`_turn`).
_AXES = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))


def _times(m: tuple[float, ...], n: tuple[float, ...]) -> tuple[float, ...]:
    """The PDF matrix product m x n (each as a, b, c, d, e, f)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2,
            e * a2 + f * c2 + e2, e * b2 + f * d2 + f2)


@dataclass(frozen=True)
class _Pen:
    """The text state a string is shown with (PDF 9.3): font size (Tf), character and word
    spacing (Tc, Tw), horizontal scaling (Tz, as a fraction); and `along`, the length on the
    line's reading axis of one unit of text space x (negative: the text runs backwards)."""

    size: float
    char: float
    word: float
    scale: float
    along: float


#: A piece of a line: (offset along the text space x axis, text, advance).
_Piece = tuple[float, bytes, float]


def _pieces(items: list[bytes | float], font: FontMap, pen: _Pen) -> tuple[list[_Piece], float]:
    """Where a text-showing operator's glyphs land (PDF 9.4.4: each advances by
    (w0 x Tfs + Tc + Tw) x Th, a TJ number moves the pen by -n/1000 x Tfs x Th), as runs of
    glyphs that follow one another along the reading axis; a glyph that lands left of the
    last one's start, or further on than `_WORD_GAP` after its end, starts a new run, so
    that a line's runs sorted by their place read as pdftotext reads them (round 13: glyphs
    drawn right to left; round 17, w111 and w114: TJ offsets and a negative word spacing
    that move shuffled chunks into order). Also the pen's advance over all of them."""
    s = pen.size / 1000
    glyph = s * pen.scale * pen.along  # a width unit along the reading axis
    k = pen.scale * pen.along
    gap = _WORD_GAP * abs(pen.size * k)
    along = pen.along
    metrics = font.metrics
    simple = font.simple()
    table = metrics.table if simple else ()
    # whether a string's glyphs follow one another whatever they are (Tc, Tw within bounds)
    upright = glyph >= 0 and metrics.low >= 0 and pen.char * k <= gap
    tight = upright and pen.char * k >= 0
    spaced = pen.word != 0.0
    words_tight = not spaced or -metrics.of(32, 1) * glyph <= (pen.char + pen.word) * k <= gap
    # [start, strings (raw for a one-byte font, else text), end, where its last glyph starts]
    runs: list[list[Any]] = []
    run: list[Any] | None = None
    x = 0.0
    budget = _MAX_GLYPH_ITEMS
    i = 0
    rest = b""  # what a string had past the glyphs placed one by one
    while rest or i < len(items):
        if rest:
            item, rest = rest, b""
        else:
            entry, i = items[i], i + 1
            if isinstance(entry, float):
                x -= entry * s * pen.scale
                continue
            item = entry
            if i > _MAX_GLYPH_ITEMS:  # the rest as one string, after the others
                item = b"".join(r for r in items[i - 1 :] if isinstance(r, bytes))
                i, budget = len(items), 0
        if simple:
            n = len(item)
            if not n:
                continue
            spaces = item.count(32) if spaced else 0
            if table:
                total, w_last = sum(map(table.__getitem__, item)), table[item[-1]]
            else:
                total = w_last = metrics.default
                total *= n
        else:
            total, n, spaces, w_last = font.measure(item)
            if not n:
                continue
        if budget <= 0 or (upright and (spaces == 0 or words_tight) and (
                tight or pen.char * k >= -font.narrowest(item) * glyph)):
            advance = (total * s + pen.char * n + pen.word * spaces) * pen.scale
            last = (w_last * s + pen.char + (pen.word if item[-1:] == b" " and simple
                                             else 0.0)) * pen.scale
            if run is not None and run[3] * along <= x * along <= run[2] * along + gap:
                run[1].append(item if simple else font.text(item))
                run[2], run[3] = x + advance, x + advance - last
            else:
                run = [x, [item if simple else font.text(item)], x + advance, x + advance - last]
                runs.append(run)
            x += advance
            continue
        if simple:
            glyphs = [(bytes([c]), table[c] if table else metrics.default, c == 32)
                      for c in item[:budget]]
            rest = item[budget:]
        else:
            glyphs, used = font.glyphs(item, budget)
            rest = item[used:]
        budget -= len(glyphs)
        for text, width, is_space in glyphs:  # each glyph on its own
            advance = (width * s + pen.char + (pen.word if is_space else 0.0)) * pen.scale
            if run is not None and run[3] * along <= x * along <= run[2] * along + gap:
                run[1].append(text)
                run[2], run[3] = x + advance, x
            else:
                run = [x, [text], x + advance, x]
                runs.append(run)
            x += advance
    return [(r[0], font.text(b"".join(r[1])) if simple else b"".join(r[1]), r[2] - r[0])
            for r in runs], x


@dataclass
class _Run:
    x: float
    y: float
    text: bytes
    turn: int = 0  # drawn rotated by this many quarter turns (counter-clockwise)
    end: float = 0.0  # where the run ends on its line (its glyphs' widths)
    off: bool = False  # in optional content a viewer hides
    #: which text-showing operator drew it (form depth, count): the runs of one string (its
    #: words, round 17) are one piece of a column
    show: tuple[int, int] | None = None  # None: a piece of its own
    #: the words (x, text, end) it is made of, apart on its line (round 17); or what places
    #: them when asked
    words: tuple[tuple[float, bytes, float], ...] | _Later = ()


@dataclass
class Form:
    """A Form XObject as its text is read: decoded content, /Matrix, and the fonts and forms
    of its own resources (None: it has none and uses those of the page that draws it)."""

    content: bytes
    matrix: tuple[float, ...]
    fonts: dict[bytes, FontMap] | None = None
    forms: dict[bytes, Form] | None = None
    off: bool = False  # optional content a viewer hides (round 14)
    off_names: frozenset[bytes] | None = None  # its /Properties that are hidden ones


#: Form XObjects by resource name.
Forms = dict[bytes, Form]
_MAX_FORMS = 256  # forms and appearance streams read per page
_MAX_ANNOTS = 1000
_MAX_NOTE = 1 << 20


def page_text(content: bytes, fonts: dict[bytes, FontMap] | None = None,
              box: tuple[float, float, float, float] | None = None,
              forms: Forms | None = None, annots: list[Form] | None = None) -> bytes | None:
    """The text of a content stream's text-showing operators (`(..) Tj`, `[..] TJ`, `'`,
    `"`) as a viewer lays it out (round 11: lines drawn bottom-up, characters right to left,
    a line drawn twice in one place, junk beyond the page): each string placed by the text
    matrix (`Tm`, `Td`, `TD`, `T*`, `TL`; a string's width estimated from its font size),
    then read top to bottom, left to right, repeats at one place once, what lies outside
    `box` (the page's MediaBox) left out. `/ActualText` replaces the glyphs of its marked
    content, as `pdftotext` does. With the page's `fonts`, a string in a font with a ToUnicode
    map or a `/Differences` encoding is the text it maps to (round 10). `annots`: appearance
    streams drawn over the page. None when nothing shows text."""
    readings = page_readings(content, fonts, box, forms, annots)
    return readings[0] if readings else None


def page_readings(content: bytes, fonts: dict[bytes, FontMap] | None = None,
                  box: tuple[float, float, float, float] | None = None,
                  forms: Forms | None = None, annots: list[Form] | None = None,
                  off_names: frozenset[bytes] = frozenset()) -> list[bytes]:
    """`page_text` first, then the other orders a reader gets the same strings in, where they
    differ (round 13): the order they are drawn in (`pdftotext -raw`), and column by column
    when the page's lines start at two to six places (`pdftotext` reads a column to its end
    before the next); then, when the page has optional content hidden by default (its
    /Properties named in `off_names`, forms with /OC), the same without it (round 14)."""
    runs: list[_Run] = []
    if _shows_text(content, forms):
        _read_text(content, fonts or {}, forms or {}, _IDENTITY, runs, 0, off_names)
    for annot in annots or ():
        if _shows_text(annot.content, annot.forms):
            _read_text(annot.content, annot.fonts if annot.fonts is not None else fonts or {},
                       annot.forms if annot.forms is not None else {}, annot.matrix, runs, 1,
                       annot.off_names or frozenset(), annot.off)
    if not runs:
        return []
    if box is not None:
        # positions along a line are estimates (a glyph's width is guessed), and a line may
        # run sideways: a quarter of the page of room on every side
        x0, y0, x1, y1 = box
        wide, high = max(1.0, abs(x1 - x0) / 4), max(1.0, abs(y1 - y0) / 4)
        runs = [r for r in runs if x0 - wide <= r.x <= x1 + wide and y0 - high <= r.y <= y1 + high]
    out: list[bytes] = []
    for text in (_laid_out(runs), _drawn_order(runs), _by_columns(runs)):
        if text is not None and text not in out:
            out.append(text)
    if any(r.off for r in runs):
        shown = [r for r in runs if not r.off]
        for text in (_laid_out(shown), _drawn_order(shown), _by_columns(shown)):
            if text is not None and text not in out:
                out.append(text)
    return out


_SHOW = re.compile(rb"T[jJ]|[)>]\s*['\"]")


def _shows_text(content: bytes, forms: Forms | None) -> bool:
    shows = b"BT" in content and _SHOW.search(content) is not None
    if not shows and not (forms and b"Do" in content):
        return False
    # binary (an image, a font): its "Tj" bytes are chance
    return not (b"\x00" in content[:1024] and b" BI" not in content)


def _read_text(content: bytes, fonts: dict[bytes, FontMap], forms: Forms,
               ctm0: tuple[float, ...], runs: list[_Run], depth: int,
               off_names: frozenset[bytes] = frozenset(), off0: bool = False) -> None:
    """The runs of text `content` shows, placed in device space: text matrix, text rise,
    the current transformation (`cm`, saved and restored by `q`/`Q`) and Form XObjects
    (`Do`, with their /Matrix) applied (round 12)."""
    ctm = ctm0
    saved: list[tuple[float, ...]] = []
    tm: tuple[float, ...] = _IDENTITY
    line: tuple[float, ...] = _IDENTITY
    pending: list[bytes | float] = []  # strings (and a TJ array's numbers) for their operator
    array_at = -1  # inside a TJ array: where the last string ended
    font: FontMap | None = None
    size = leading = rise = spacing = word = 0.0  # Tf, TL, Ts, Tc, Tw
    scale = 1.0  # Tz
    operands = (0, 0)  # where the operands of the last string's operator may be
    last = 0  # where the last token ended
    drawn = 0  # text-showing operators so far
    actual: list[bytes | None] = []  # /ActualText of the open marked-content sequences
    actual_next: bytes | None = None
    optional: list[bool] = []  # of the open marked-content sequences: hidden optional content
    optional_next = False
    want_actual = False
    pos = 0

    def place(text: bytes, advance: float | None = None) -> None:
        nonlocal tm
        device = _times((1.0, 0.0, 0.0, 1.0, 0.0, rise), _times(tm, ctm))
        em = max(abs(size), 1.0) * len(text)
        runs.append(_Run(device[4], device[5], text, _turn(device, size),
                         device[4] + abs(device[0]) * 0.6 * em, off0 or any(optional)))
        tm = _times((1.0, 0.0, 0.0, 1.0, em * 0.5 if advance is None else advance, 0.0), tm)

    def show(items: list[bytes | float]) -> None:
        nonlocal tm, drawn
        if any(a is not None for a in actual):
            return  # its glyphs are replaced by the sequence's /ActualText
        at = _times(tm, ctm)
        turn = _turn(at, size)
        along = at[0] * _AXES[turn][0] + at[1] * _AXES[turn][1]
        shown, pen = font or _PLAIN, _Pen(size, spacing, word, scale, along)
        hidden = off0 or any(optional)
        x0, y0 = rise * at[2] + at[4], rise * at[3] + at[5]  # (offset, rise) through `at`
        show_id = (depth, drawn)
        level = turn == 0 and at[0] > 0 and at[1] == 0  # drawn rightwards along a line
        quick = _in_order(items, shown, pen) if level else None
        if quick is not None:  # its words, where they are, only if another run is among them
            start, text, width, advance = quick
            x = start * at[0] + x0
            runs.append(_Run(x, y0, text, 0, x + width * at[0], hidden, show_id,
                             _Later(items, shown, pen, at[0], x0)))
            tm = _times((1.0, 0.0, 0.0, 1.0, advance, 0.0), tm)
            drawn += 1
            return
        pieces, advance = _pieces(items, shown, pen)
        if level:
            for group in _level_words(pieces, at[0], x0):
                _add_words(runs, group, y0, hidden, show_id)
        else:
            for offset, text, width in pieces:
                x = offset * at[0] + x0
                runs.append(_Run(x, offset * at[1] + y0, text, turn, x + abs(width * along),
                                 hidden, show_id))
        tm = _times((1.0, 0.0, 0.0, 1.0, advance, 0.0), tm)
        drawn += 1

    def numbers(end: int) -> None:
        if array_at >= 0:
            pending.extend(float(n) for n in _NUMBER_TOKEN.findall(content, array_at, end))

    while (m := _LAYOUT_TOKEN.search(content, pos)) is not None:
        token = m.group()
        last, pos = pos, m.end()
        if token == b"(" or token[:1] == b"<":
            numbers(m.start())
            if token == b"(":
                pos = _literal_end(content, m.start())
                raw = _pdf_string(content[m.start() : pos])
            else:
                raw = _pdf_string(token)
            if want_actual:
                actual_next = (raw[2:].decode("utf-16-be", "replace").encode()
                               if raw[:2] == b"\xfe\xff" else raw)
                want_actual = False
            else:
                pending.append(raw)
                operands = (last, m.start())
            if array_at >= 0:
                array_at = pos
        elif token.startswith(b"/ActualText"):
            want_actual = True
        elif token == b"BDC":
            actual.append(actual_next)
            actual_next = None
            optional.append(optional_next)
            optional_next = False
        elif token == b"EMC":
            if optional:
                optional.pop()
            done = actual.pop() if actual else None
            if done is not None and not any(a is not None for a in actual):
                place(done)
        elif m.group(1) is not None:  # `/F1 12 Tf`
            font = fonts.get(m.group(1))
            size = float(m.group(2))  # (negative: drawn leftwards, round 14)
            pending = []
        elif m.group(3) is not None:  # `a b c d e f Tm`
            tm = line = tuple(float(v) for v in m.group(3).split())
            pending = []
        elif m.group(4) is not None:  # `tx ty Td` / `TD`
            tx, ty = float(m.group(4)), float(m.group(5))
            if token.endswith(b"TD"):
                leading = -ty
            tm = line = _times((1.0, 0.0, 0.0, 1.0, tx, ty), line)
            pending = []
        elif m.group(6) is not None:  # `TL`
            leading = float(m.group(6))
        elif m.group(7) is not None:  # `a b c d e f cm`
            ctm = _times(tuple(float(v) for v in m.group(7).split()), ctm)
        elif m.group(8) is not None:  # `rise Ts`
            rise = float(m.group(8))
        elif m.group(9) is not None:  # `/Name Do`: a form's text, in its place
            form = forms.get(m.group(9))
            if form is not None and depth < _MAX_FORM_DEPTH:
                _read_text(form.content, form.fonts if form.fonts is not None else fonts,
                           form.forms if form.forms is not None else forms,
                           _times(form.matrix, ctm), runs, depth + 1,
                           form.off_names if form.off_names is not None else off_names,
                           off0 or form.off or any(optional))
        elif token == b"q":
            saved.append(ctm)
        elif token == b"Q":
            ctm = saved.pop() if saved else ctm0
        elif token == b"[":
            array_at = pos
        elif token == b"]":
            numbers(m.start())
            array_at = -1
        elif m.group(12) is not None:  # `/OC /Name BDC`: optional content
            optional_next = m.group(12) in off_names
        elif m.group(10) is not None:  # `Tc`
            spacing = float(m.group(10))
        elif m.group(11) is not None:  # `Tz`
            scale = float(m.group(11)) / 100
        elif m.group(13) is not None:  # `Tw`
            word = float(m.group(13))
        elif token in (b"Tj", b"TJ"):
            show(pending)
            pending = []
        elif token in (b"'", b'"', b"T*"):
            tm = line = _times((1.0, 0.0, 0.0, 1.0, 0.0, -leading), line)
            if token == b'"':  # `aw ac (string) "`: word and character spacing set first
                aw_ac = _NUMBER_TOKEN.findall(content, *operands)[-2:]
                if len(aw_ac) == 2:
                    word, spacing = float(aw_ac[0]), float(aw_ac[1])
            if token != b"T*":
                show(pending)
            pending = []
        elif token == b"BT":
            tm = line = _IDENTITY
            pending = []
        else:  # ET
            pending = []


def _level_words(pieces: list[_Piece], a: float, x0: float) -> list[list[tuple[float, bytes,
                                                                              float]]]:
    """Pieces of a string drawn level (x scaled by `a` > 0, from `x0`) as words (x, text,
    end) in groups, each word after the last in its group."""
    groups: list[list[tuple[float, bytes, float]]] = []
    words: list[tuple[float, bytes, float]] = []
    for offset, text, width in pieces:
        x = offset * a + x0
        if words and (width < 0 or x < words[-1][2]):  # not after the last one
            groups.append(words)
            words = []
        words.append((x, text, x + abs(width) * a))
    if words:
        groups.append(words)
    return groups


@dataclass(frozen=True)
class _Later:
    """The words of a string `_in_order` read as one run, placed by `_pieces` when `_apart`
    needs them."""

    items: list[bytes | float]
    font: FontMap
    pen: _Pen
    a: float
    x0: float

    def __call__(self) -> tuple[tuple[float, bytes, float], ...]:
        pieces, _advance = _pieces(self.items, self.font, self.pen)
        return tuple(w for g in _level_words(pieces, self.a, self.x0) for w in g)


def _in_order(items: list[bytes | float], font: FontMap, pen: _Pen
              ) -> tuple[float, bytes, float, float] | None:
    """A one-byte font's string (or TJ array) whose glyphs each land at or after the last
    one's start (Tc, Tw and every TJ number within bounds: the common case), read without
    placing them one by one: (where it starts, its text, its width, the pen's advance);
    None when `_pieces` must place them."""
    if not font.simple():
        return None
    m = font.metrics
    joined = b"".join([i for i in items if isinstance(i, bytes)])
    if not joined:
        return None
    s = pen.size / 1000
    k = pen.scale * pen.along
    glyph = s * k
    narrow = min(map(m.table.__getitem__, joined)) if m.table else m.default
    least = narrow * glyph + pen.char * k  # the shortest advance of a glyph along the line
    spaces = joined.count(32) if pen.word else 0
    if spaces:  # (gaps are no matter: `_apart` asks for the words when a run lands in one)
        least = min(least, m.of(32, 1) * glyph + (pen.char + pen.word) * k)
    if glyph < 0 or narrow < 0 or least < 0:
        return None
    nums = [i for i in items if isinstance(i, float)]
    if nums and max(nums) * s * k > least:  # moved back past the last glyph's start
        return None
    lead = trail = 0.0
    for i in items:
        if isinstance(i, bytes):
            break
        lead += i
    for i in reversed(items):
        if isinstance(i, bytes):
            break
        trail += i
    n = len(joined)
    total = sum(map(m.table.__getitem__, joined)) if m.table else m.default * n
    glyphs = (total * s + pen.char * n + pen.word * spaces) * pen.scale
    kerned = sum(nums) * s * pen.scale
    return (-lead * s * pen.scale, font.text(joined),
            glyphs - kerned + (lead + trail) * s * pen.scale, glyphs - kerned)


def _add_words(runs: list[_Run], words: list[tuple[float, bytes, float]], y: float, off: bool,
               show: tuple[int, int]) -> None:
    """Words (x, text, end) of one string drawn level, each after the last, as one run that
    knows them (split again by `_lines` where another run lands among them): a line's runs
    stay as few as the strings that draw it."""
    if len(words) == 1:
        runs.append(_Run(words[0][0], y, words[0][1], 0, words[0][2], off, show))
    elif words:
        runs.append(_Run(words[0][0], y, b"".join(w[1] for w in words), 0, words[-1][2], off,
                         show, tuple(words)))


def _laid_out(runs: list[_Run]) -> bytes | None:
    """Runs as lines, top to bottom, left to right; repeats left out."""
    turns = [0, 0, 0, 0]
    for r in runs:
        turns[r.turn] += 1
    turn = max(range(4), key=lambda t: turns[t])
    if turn and turns[turn] * 2 > len(runs):
        # a page of text turned (upside down, or sideways: round 14) reads along its lines,
        # as pdftotext does: the page turned back first
        runs = [_Run(*_turned_back(r.x, r.y, turn), r.text) for r in runs]
    out = [b"".join(r.text for r in line) for line in _lines(runs)]
    text = b"\n".join(out)
    return text + b"\n" if text.strip() else None


def _turned_back(x: float, y: float, turn: int) -> tuple[float, float]:
    """A point of a page turned by `turn` quarter turns, once the page is turned back."""
    if turn == 1:
        return y, -x
    if turn == 2:
        return -x, -y
    return -y, x


def _turn(m: tuple[float, ...], size: float) -> int:
    """Quarter turns (0-3, counter-clockwise) of text drawn through matrix `m` at font size
    `size` (a negative size turns it by half); a mirrored matrix turns nothing (its glyphs
    just run leftwards)."""
    a, b, c, d = m[0], m[1], m[2], m[3]
    if a * d - b * c < 0:
        return 0
    if size < 0:
        a, b = -a, -b
    if abs(a) >= abs(b):
        return 0 if a >= 0 else 2
    return 1 if b > 0 else 3


def _lines(runs: list[_Run]) -> list[list[_Run]]:
    """Runs grouped by baseline, top to bottom, each line left to right; a run drawn twice in
    one place (fake bold) kept once."""
    seen: set[tuple[int, int, bytes]] = set()
    lines: dict[int, list[_Run]] = {}
    for r in runs:
        key = (round(r.x * 2), round(r.y * 2), r.text)
        if key in seen or not r.text:
            continue
        seen.add(key)
        lines.setdefault(round(r.y * 2), []).append(r)
    return [_apart(sorted(lines[k], key=lambda r: r.x)) for k in sorted(lines, reverse=True)]


#: How far a string may start before the last one ended and still follow it: positions
#: written rounded (pdfTeX's by a thousandth of a point).
_ROUNDED = 0.01


def _apart(line: list[_Run]) -> list[_Run]:
    """A line (sorted by x) whose runs made of words (`_Run.words`) are split into them
    where another run starts before such a run ends (round 17: strings drawn into the gaps
    a TJ array leaves between its words)."""
    if not any(r.words and i + 1 < len(line) and line[i + 1].x < r.end - _ROUNDED
               for i, r in enumerate(line)):
        return line
    return sorted((_Run(x, r.y, text, r.turn, end, r.off, r.show) if r.words else r
                   for r in line for x, text, end in _words(r)), key=lambda r: r.x)


def _words(r: _Run) -> tuple[tuple[float, bytes, float], ...]:
    if isinstance(r.words, _Later):
        return r.words()
    return r.words or ((r.x, r.text, r.end),)


def _drawn_order(runs: list[_Run]) -> bytes | None:
    """Runs in the order the content draws them, a new line where the baseline changes."""
    out = bytearray()
    last: float | None = None
    for r in runs:
        if last is not None and abs(r.y - last) > 0.5:
            out += b"\n"
        out += r.text
        last = r.y
    return bytes(out) + b"\n" if out.strip() else None


_MAX_COLUMNS = 6


def _by_columns(runs: list[_Run]) -> bytes | None:
    """Column by column: where a line's text starts again after a gap on at least two lines
    is a column's left edge; each run goes to the column whose edge is nearest on its left.
    None for a page of one column (or of so many edges that they are no columns)."""
    lines = _lines(runs)
    starts: dict[int, int] = {}
    for line in lines:
        prev: _Run | None = None
        for r in line:
            apart = r.show is None or prev is None or r.show != prev.show
            if prev is None or (apart and r.x - prev.end > 2.0 * max(
                    (prev.end - prev.x) / max(len(prev.text), 1), 1.0)):
                starts[round(r.x)] = starts.get(round(r.x), 0) + 1
            prev = r
    edges = sorted(x for x, n in starts.items() if n >= 2)
    if not 2 <= len(edges) <= _MAX_COLUMNS:
        return None
    columns: list[list[bytes]] = [[] for _ in edges]
    for line in lines:
        parts: list[bytearray] = [bytearray() for _ in edges]
        col = 0
        prev = None
        for r in line:  # the runs of one string (its words, round 17) stay in one column
            if prev is None or r.show is None or r.show != prev.show:
                col = max((i for i, e in enumerate(edges) if e <= round(r.x)), default=0)
            prev = r
            parts[col] += r.text
        for col, part in enumerate(parts):
            if part:
                columns[col].append(bytes(part))
    text = b"\n".join(b"\n".join(c) for c in columns if c)
    return text + b"\n" if text.strip() else None


def pdf_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Every decoded stream, embedded file and JavaScript string of a PDF (module docstring),
    and the text its pages show (`page_text`); then the text of each stream read on its own
    (`page_readings`), but for the content streams its page was read with."""
    dedup = Dedup()
    encrypted = False
    damage: list[str] = []
    texts: set[bytes] = set()
    read: set[int] = set()  # ids of the content streams read as part of their page
    streams: list[bytes] = []

    def fresh(children: Iterator[Child]) -> Iterator[Child]:
        for child in children:
            if child.origin == "pdf-text":
                if child.data in texts:
                    continue
                texts.add(child.data)
            elif child.origin == "pdf-stream":
                streams.append(child.data)
            yield child

    try:
        yield from fresh(_structured(data, ctx, dedup, damage, read))
    except EncryptedContent:
        encrypted = True
    except _Unopened:
        damage.append("PDF")
    yield from fresh(pdf_streams(data, ctx, dedup))
    for stream in streams:
        if id(stream) in read:
            continue
        ctx.check_time()
        for text in page_readings(stream):
            if text not in texts:
                texts.add(text)
                ctx.charge_child(len(text))
                yield Child(data=text, name=None, origin="pdf-text")
    if damage:  # said after every stream, so that what they hold is named first
        ctx.broken("PDF")
    if encrypted:
        raise EncryptedContent("PDF")
