"""Fail closed: whatever decoder or decomposer raises, the report is never "clean".

For every decoder and decomposer in turn (base64, quoted-printable, uuencode, yEnc, BinHex,
smuggled blobs, the MIME walker and its header/parameter parsers, zip / tar / gzip-bzip2-xz /
TNEF / OLE2 / RAR-7z children, PDF streams, inflate, file type detection, PE parsing, text
normalisation), this makes it raise an arbitrary exception and scans a corpus of real samples
(EICAR behind each of those layers, and clean ones). Property: when the broken function was
called, the report has a finding or a non-empty `errors` (the gateway treats either as "not
clean"); a clean verdict is only allowed when the failure never happened. (Monkeypatching is the
point here: a unit test of the engine's containment, one layer at a time.)"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import quopri
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_archive_ole2 import build_cfb, dir_stream, ovba_compress  # type: ignore[import-not-found]

from conformance.samples import make_pe
from helpers.archives import newc_cpio, stored_arj
from zerohour.scan import (
    Engine,
    archive,
    arj,
    containers,
    decompose,
    embedded,
    encodings,
    filetype,
    load_database,
    mime,
    pe,
)
from zerohour.scan import (
    engine as engine_mod,
)
from zerohour.scan.database import default_db_dirs
from zerohour.scan.documents import ole2, onenote, pdf, rtf

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _mail(parts: list[tuple[str, bytes]], top: str = "multipart/mixed") -> bytes:
    body = b"".join(b"--ZB\r\n" + hdr.encode() + b"\r\n\r\n" + data + b"\r\n"
                    for hdr, data in parts)
    return (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            + f'Content-Type: {top}; boundary="ZB"\r\n\r\n'.encode() + body + b"--ZB--\r\n")


def _b64_part(blob: bytes, name: str) -> tuple[str, bytes]:
    return (f'Content-Type: application/octet-stream; name="{name}"\r\n'
            "Content-Transfer-Encoding: base64", base64.encodebytes(blob))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, d in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            t.addfile(info, io.BytesIO(d))
    return buf.getvalue()


def _uu(data: bytes) -> bytes:
    import binascii

    lines = [binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45)]
    return b"begin 644 e.com\n" + b"".join(lines) + b"`\nend\n"


def _yenc(data: bytes) -> bytes:
    enc = bytearray()
    for b in data:
        c = (b + 42) & 0xFF
        if c in (0, 10, 13, 61):
            enc += bytes((61, (c + 64) & 0xFF))
        else:
            enc.append(c)
    return b"=ybegin line=128 size=%d name=e.com\r\n" % len(data) + bytes(enc) + b"\r\n=yend\r\n"


def _binhex(name: bytes, data: bytes) -> bytes:
    alphabet = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
    header = bytes((len(name),)) + name + b"\x00" + b"TEXTttxt" + b"\x00\x00"
    raw = header + len(data).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"\x00\x00"
    raw += data + b"\x00\x00" + b"\x00\x00"
    rle = raw.replace(b"\x90", b"\x90\x00")
    bits = int.from_bytes(rle, "big")
    nbits = len(rle) * 8
    pad = (-nbits) % 6
    bits <<= pad
    n = (nbits + pad) // 6
    chars = bytes(alphabet[(bits >> (6 * (n - 1 - i))) & 63] for i in range(n))
    return b"(This file must be converted with BinHex 4.0)\r\n:" + chars + b":\r\n"


def _tnef(name: bytes, data: bytes) -> bytes:
    def attr(attr_id: int, body: bytes) -> bytes:
        return struct.pack("<BII", 2, attr_id, len(body)) + body + struct.pack(
            "<H", sum(body) & 0xFFFF)

    return (archive.TNEF_SIGNATURE + b"\x01\x00" + attr(0x9002, b"\x00" * 4)
            + attr(0x8010, name + b"\x00") + attr(0x800F, data))


def _ole1_package(payload: bytes) -> bytes:
    """An OLE1 "Package" object as RTF embeds it: header, class, then the Packager data."""
    native = (struct.pack("<H", 2) + b"e.com\x00C:\\e.com\x00" + struct.pack("<II", 0x30000, 1)
              + b"\x00" + struct.pack("<I", len(payload)) + payload)  # temp path: "" + NUL
    return (struct.pack("<III", 0x501, 2, 8) + b"Package\x00"
            + struct.pack("<III", 0, 0, len(native)) + native)


def _pdf(data: bytes) -> bytes:
    return (b"%PDF-1.4\n1 0 obj\n<</Length 99/Filter /FlateDecode>>\nstream\n"
            + zlib.compress(data) + b"\nendstream\nendobj\n"
            b"2 0 obj\n<</Type/Catalog/Pages 3 0 R>>\nendobj\n"
            b"3 0 obj\n<</Type/Pages/Kids[4 0 R]/Count 1>>\nendobj\n"
            b"4 0 obj\n<</Type/Page/Parent 3 0 R/Contents 1 0 R>>\nendobj\n"
            b"trailer\n<</Root 2 0 R/Size 5>>\n%%EOF\n")  # no xref: qpdf rebuilds it


HIDDEN = base64.b64encode(EICAR)  # EICAR that only a decoder can reveal
LOWER = b"zh lower case marker for the normalised pass"


def _rar4(payload: bytes) -> bytes:
    out = b"Rar!\x1a\x07\x00" + struct.pack("<HBHH", 0, 0x73, 0, 13) + bytes(6)
    fixed = struct.pack("<IIBIIBBHI", len(payload), len(payload), 0, 0, 0, 20, 0x30, 5, 0x20)
    out += struct.pack("<HBHH", 0, 0x74, 0x8000, 7 + len(fixed) + 5) + fixed + b"a.exe" + payload
    return out + struct.pack("<HBHH", 0, 0x7B, 0x4000, 7)


def _packager(name: bytes, payload: bytes) -> bytes:
    native = (struct.pack("<IH", 0, 2) + name + b"\x00" + b"C:\\" + name + b"\x00"
              + struct.pack("<I", 0x30000) + struct.pack("<I", 4) + b"C:\\x"
              + struct.pack("<I", len(payload)) + payload)
    return build_cfb({"\x01Ole10Native": native})


def corpus() -> dict[str, bytes]:
    zipped = _zip({"e.com": EICAR, "readme.txt": b"hello"})
    return {
        "mail-base64": _mail([("Content-Type: text/plain", b"hi"), _b64_part(EICAR, "e.com")]),
        "mail-qp": _mail([("Content-Type: application/octet-stream\r\n"
                           "Content-Transfer-Encoding: quoted-printable",
                           quopri.encodestring(EICAR.replace(b"X", b"\xd8")) + b"=\r\n"
                           + quopri.encodestring(EICAR))]),
        "mail-uu": _mail([("Content-Type: text/plain", _uu(EICAR))]),
        "mail-uu-cte": _mail([("Content-Type: application/octet-stream\r\n"
                               "Content-Transfer-Encoding: x-uuencode",
                               _uu(EICAR).replace(b"X5O", b"X5O"))]),
        "mail-zip": _mail([("Content-Type: text/plain", b"see zip"), _b64_part(zipped, "a.zip")]),
        "mail-nested": _mail([("Content-Type: message/rfc822",
                               _mail([_b64_part(EICAR, "e.com")]))]),
        "text-yenc": b"news\r\n" + _yenc(EICAR),
        "text-binhex": b"mac mail\r\n" + _binhex(b"e.com", EICAR),
        "html-smuggling": b"<html><script>const b = atob('" + HIDDEN
        + b"'); new Blob([b]);</script><a href=\"data:application/x-msdownload;base64,"
        + HIDDEN + b"\">x</a></html>",
        "zip": zipped,
        "zip-truncated": zipped[: zipped.find(b"PK\x01\x02")],
        "rar": _rar4(EICAR),
        "cpio": newc_cpio({"e.com": EICAR}),
        "arj-behind-junk": b"\x00junk" + stored_arj({"e.com": EICAR}),
        "text-preamble-mime": b"a preamble line\nContent-Type: multipart/mixed; boundary=ZB\n\n"
        b"--ZB\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        + HIDDEN + b"\n--ZB--\n",
        "mail-2231-name": _mail([("Content-Type: application/octet-stream; "
                                  "name*=utf-8''%65.com\r\nContent-Transfer-Encoding: base64",
                                  base64.encodebytes(EICAR))]),
        "ole2-macro": build_cfb({"VBA": {"dir": dir_stream(["Module1"]),
                                         "Module1": bytes(4096) + ovba_compress(EICAR)}}),
        "ole2-packager": _packager(b"e.com", EICAR),
        "pe": make_pe(b"\x90" * 64, EICAR),
        "clean-text-lower": b"Some text with " + LOWER.upper() + b" in upper case\r\n",
        "tar": _tar({"e.com": EICAR}),
        "gzip": gzip.compress(EICAR),
        "bzip2": bz2.compress(EICAR),
        "xz": lzma.compress(EICAR),
        "tar.gz": gzip.compress(_tar({"e.com": EICAR, "b": b"x" * 100})),
        "pdf": _pdf(b"/JS (" + EICAR + b")"),
        "tnef": _tnef(b"e.com", EICAR),
        "ole2": build_cfb({"Payload": EICAR, "Other": b"\x00" * 600}),
        "rtf": b"{\\rtf1{\\object{\\*\\objdata " + _ole1_package(EICAR).hex().encode() + b"}}}",
        "onenote": (bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3") + bytes(1008)
                    + onenote.FILE_DATA_HEADER + struct.pack("<QIQ", len(EICAR), 0, 0) + EICAR),
        "clean-mail": _mail([("Content-Type: text/plain", b"hello"),
                             _b64_part(b"just a pdf-ish blob" * 20, "x.bin")]),
        "clean-zip": _zip({"a.txt": b"alpha " * 100}),
        "clean-text": b"nothing to see\r\nbegin 644 x\n#86)C\n`\nend\n",
    }


# Every decoder / decomposer, by module and attribute (looked up at call time by its callers).
TARGETS: list[tuple[object, str]] = [
    (encodings, "base64_variants"), (encodings, "base64_decode"), (encodings, "qp_decode"),
    (encodings, "uudecode_variants"), (encodings, "uudecode_blocks"), (encodings, "ydecode_blocks"),
    (encodings, "yenc_decode_body"), (encodings, "binhex_blocks"), (encodings, "_hqx_bits"),
    (encodings, "_hqx_unrle"), (encodings, "smuggled_blobs"), (encodings, "embedded_files"),
    (encodings, "looks_base64"), (encodings, "_uu_fast"),
    (mime, "children"), (mime, "split_headers"), (mime, "decode_body"), (mime, "_parse_params"),
    (mime, "_decode_words"), (mime, "_delimiters"), (mime, "_infer_boundaries"),
    (mime, "has_structure"), (mime, "decode_text"), (mime, "dialects_for"),
    (archive, "zip_children"), (archive, "tar_children"), (archive, "stream_children"),
    (archive, "tnef_children"), (ole2, "ole2_children"),
    (containers, "libarchive_children"), (containers, "read_bounded"), (arj, "children"),
    (embedded, "children"),
    (archive, "inflate"), (archive, "_zlib_bounded"), (archive, "_stream_bounded"),
    (archive, "gunzip"), (archive, "_decode_member"), (archive, "_read_zipinfo"),
    (ole2, "ovba_decompress"), (ole2, "_ole10native"),
    (pdf, "pdf_children"), (pdf, "pdf_streams"), (pdf, "decode_filters"),
    (rtf, "rtf_children"), (rtf, "_ole1"), (onenote, "onenote_children"),
    (decompose, "_embedded"), (decompose, "_header_block_start"),
    (decompose, "children"),
    (filetype, "detect"), (pe, "parse"), (engine_mod, "normalize_text"),
]
ERRORS: list[type[Exception]] = [
    ValueError, UnicodeError, LookupError, KeyError, IndexError, TypeError, RuntimeError,
    OSError, EOFError, zlib.error, lzma.LZMAError, struct.error, MemoryError, RecursionError,
    AssertionError, ZeroDivisionError,
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Engine]:
    # The starter database plus a lower-case signature, so that text layers get the normalised
    # pass too (EICAR is upper case: it never needs one).
    extra = tmp_path_factory.mktemp("db")
    (extra / "lower.ndb").write_text(f"Zh.Test.Lower:0:*:{LOWER.hex()}\n")
    db = load_database([*default_db_dirs(), extra])
    return Engine(db), Engine(db, allmatch=True)


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    return corpus()


def _clear_caches() -> None:
    for name in ("_parse_params_cached", "_boundary_candidates_cached", "_filename_cached",
                 "_charset"):
        fn = getattr(mime, name, None)
        if fn is not None:
            fn.cache_clear()


def _raising(real: Callable[..., object], exc: type[Exception], calls: list[int]
             ) -> Callable[..., object]:
    def broken(*args: object, **kwargs: object) -> object:
        calls.append(1)
        raise exc("injected failure")

    broken.__wrapped__ = real  # type: ignore[attr-defined]
    return broken


def test_corpus_is_found_when_nothing_breaks(
    engines: tuple[Engine, Engine], samples: dict[str, bytes]
) -> None:
    # The baseline: every EICAR sample is found and every clean one is clean without errors.
    for name, blob in samples.items():
        report = engines[0].scan_bytes(blob, name)
        if name == "clean-text-lower":
            assert report.names == ("Zh.Test.Lower",)  # found only in normalised text
        elif name.startswith("clean"):
            assert not report.infected, (name, report.names)
            assert not report.errors, (name, report.errors)
        elif name in ("rar", "zip-truncated"):
            # Also a heuristic (we cannot open RAR; a zip without its directory is broken).
            assert "Eicar-Test-Signature" in engines[1].scan_bytes(blob, name).names
        else:
            assert "Eicar-Test-Signature" in report.names, (name, report)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=st.sampled_from(TARGETS),
    exc=st.sampled_from(ERRORS),
    sample=st.sampled_from(sorted(corpus())),
    allmatch=st.booleans(),
)
def test_a_failing_decoder_never_yields_clean(
    engines: tuple[Engine, Engine], samples: dict[str, bytes],
    target: tuple[object, str], exc: type[Exception], sample: str, allmatch: bool,
) -> None:
    module, attr = target
    real = getattr(module, attr)
    calls: list[int] = []
    _clear_caches()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, attr, _raising(real, exc, calls))
        report = engines[allmatch].scan_bytes(samples[sample], sample)
    _clear_caches()
    if calls:
        assert report.infected or report.errors, (attr, exc, sample, report)


def _each_target() -> Iterator[tuple[object, str]]:
    yield from TARGETS


@pytest.mark.parametrize(("module", "attr"), list(_each_target()),
                         ids=[f"{m.__name__.rsplit('.', 1)[-1]}.{a}" for m, a in TARGETS])  # type: ignore[attr-defined]
def test_every_target_is_reached_by_the_corpus(
    engines: tuple[Engine, Engine], samples: dict[str, bytes], module: object, attr: str
) -> None:
    # The property above is only as good as its reach: each broken function must actually be
    # called by some sample, and then no sample may come out clean.
    real = getattr(module, attr)
    calls: list[int] = []
    _clear_caches()
    reached = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, attr, _raising(real, ValueError, calls))
        for name, blob in samples.items():
            before = len(calls)
            report = engines[1].scan_bytes(blob, name)
            if len(calls) > before:
                reached.append(name)
                assert report.infected or report.errors, (attr, name, report)
    _clear_caches()
    assert reached, f"{attr} never called by the corpus"


def test_no_exception_escapes_scan_bytes(
    engines: tuple[Engine, Engine], samples: dict[str, bytes], tmp_path: Path
) -> None:
    # Even the top layer's own type detection failing is a report with an error.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filetype, "detect", _raising(filetype.detect, RuntimeError, []))
        report = engines[0].scan_bytes(b"anything", "x")
    assert report.errors
    assert not report.infected


def test_one_zip_member_failing_does_not_hide_its_siblings(
    engines: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = archive._read_zipinfo

    def flaky(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *args: object) -> bytes | None:
        if info.filename == "first.txt":
            raise RuntimeError("member bug")
        return real(zf, info, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "_read_zipinfo", flaky)
    blob = _zip({"first.txt": b"x" * 100, "e.com": EICAR})
    report = engines[1].scan_bytes(blob, "z")
    assert "Eicar-Test-Signature" in report.names
    assert any("member bug" in e for e in report.errors), report.errors
