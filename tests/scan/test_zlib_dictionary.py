"""zlib streams with a preset dictionary (round 20 a33): `zlib.compressobj(zdict=...)` copies
strings from a dictionary the stream names only by its Adler-32, and `zlib.decompress` without
it says "need dictionary". The recipient's one-liner (`zlib.decompressobj(zdict=...)`) is the
oracle: the dictionary is the mail's text or another attachment, before or after the stream;
a stream whose dictionary is nowhere in the mail is `Heuristics.Unsupported.Zlib.Dictionary`,
never clean."""

from __future__ import annotations

import base64
import os
import zlib
from pathlib import Path

import pytest

from scan.conftest import CLAM, CLAM_NAME
from zerohour.scan import Engine, zlibdict
from zerohour.scan.limits import ScanContext

UNSUPPORTED = "Heuristics.Unsupported.Zlib.Dictionary"
BODY = (b"Hello,\n\nThe tool reads the attached data with this note as its dictionary.\n"
        b"It calls KERNEL32.DLL ExitProcess and USER32.DLL CLAMessageBoxA [CLAMAV].\n")


def _deflate(payload: bytes, zdict: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
    stream = c.compress(payload) + c.flush()
    d = zlib.decompressobj(zdict=zdict)  # the recipient's way
    assert d.decompress(stream) == payload
    with pytest.raises(zlib.error, match="Error 2 "):  # Z_NEED_DICT
        zlib.decompress(stream)
    # the dictionary matters: without it, the bytes it gave are not clam.exe
    blind = zlib.decompressobj(-15, zdict=bytes(32768)).decompress(stream[6:])
    assert len(blind) == len(payload)
    assert blind != payload
    return stream


def _part(name: str, data: bytes) -> bytes:
    return (b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"" + name.encode() + b"\"\r\n\r\n"
            + base64.encodebytes(data).replace(b"\n", b"\r\n"))


def _mail(*parts: bytes) -> bytes:
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: data\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"".join(parts)
            + b"--b--\r\n")


def _text(body: bytes) -> bytes:
    return (b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            + body.replace(b"\n", b"\r\n"))


def _near_clam() -> bytes:
    """clam.exe with its last byte changed: not clam.exe, but a dictionary the stream copies
    almost all of clam.exe from."""
    clam = CLAM.read_bytes()
    return clam[:-1] + bytes([clam[-1] ^ 0xFF])


@pytest.mark.parametrize("order", ["dictionary first", "dictionary last"])
def test_the_dictionary_in_another_attachment(clam_engine: Engine, order: str) -> None:
    near = _near_clam()
    assert clam_engine.scan_bytes(_mail(_part("key.bin", near))).names == ()
    stream = _deflate(CLAM.read_bytes(), near)
    parts = [_part("key.bin", near), _part("data.zz", stream)]
    if order == "dictionary last":
        parts.reverse()
    assert clam_engine.scan_bytes(_mail(*parts)).names == (CLAM_NAME,)


def test_the_dictionary_is_the_mails_text(clam_engine: Engine) -> None:
    """The body as the recipient saves it (LF line ends), CRLF on the wire."""
    stream = _deflate(CLAM.read_bytes(), BODY)
    assert clam_engine.scan_bytes(_mail(_text(BODY), _part("data.zz", stream))).names == (
        CLAM_NAME,)
    # the stream alone, as `zerohour scan` reads a saved attachment: not clean
    assert clam_engine.scan_bytes(stream, "data.zz").names == (UNSUPPORTED,)


def test_no_dictionary_in_the_mail_is_not_clean(clam_engine: Engine) -> None:
    stream = _deflate(CLAM.read_bytes(), os.urandom(200) + _near_clam())
    assert clam_engine.scan_bytes(_mail(_text(BODY), _part("data.zz", stream))).names == (
        UNSUPPORTED,)


def test_what_the_stream_holds_itself_is_read_without_the_dictionary(
        clam_engine: Engine) -> None:
    """A dictionary the payload copies nothing from: clam.exe is found, whatever else."""
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, b"\xfe\xfd" * 40)
    stream = c.compress(CLAM.read_bytes()) + c.flush()
    assert clam_engine.scan_bytes(stream, "data.zz").names[0] in (CLAM_NAME, UNSUPPORTED)
    assert CLAM_NAME in Engine(clam_engine.db, allmatch=True).scan_bytes(
        stream, "data.zz").names


def test_no_trailer_or_bytes_behind_the_stream(clam_engine: Engine) -> None:
    """Round 21: `decompressobj(zdict=...).decompress()` gives the payload of a stream cut
    before its Adler-32, or followed by other bytes."""
    stream = _deflate(CLAM.read_bytes(), BODY)
    for cut in (stream[:-4], stream + b"\x00", stream + b"%PDF-1.4\n%%EOF\n"):
        assert zlib.decompressobj(zdict=BODY).decompress(cut) == CLAM.read_bytes()
        # (a PDF's magic behind the stream makes the file a PDF: Broken, and clam.exe too)
        every = Engine(clam_engine.db, allmatch=True)
        assert CLAM_NAME in every.scan_bytes(_mail(_text(BODY), _part("data.zz", cut))).names
        # with the dictionary nowhere in the mail: not clean
        assert UNSUPPORTED in every.scan_bytes(_mail(_part("data.zz", cut))).names


def _decoys(real: bytes, n: int) -> list[bytes]:
    """Layers of `real`'s Adler-32: three neighbouring bytes moved by +1, -2, +1."""
    out = []
    for i in range(64, len(real) - 3):
        if len(out) == n:
            break
        if real[i] < 255 and real[i + 1] >= 2 and real[i + 2] < 255:
            decoy = bytearray(real)
            decoy[i] += 1
            decoy[i + 1] -= 2
            decoy[i + 2] += 1
            assert zlib.adler32(bytes(decoy)) == zlib.adler32(real)
            out.append(bytes(decoy))
    assert len(out) == n
    return out


@pytest.mark.parametrize("decoys", [1, 9])
def test_decoys_of_the_same_checksum_do_not_hide_the_dictionary(
        clam_engine: Engine, decoys: int) -> None:
    """Round 21's Z2: layers before the dictionary with the same Adler-32 also decode the
    stream, to other bytes (the gateway attack put the dictionary ninth)."""
    near = _near_clam()
    stream = _deflate(CLAM.read_bytes(), near)
    parts = [_part(f"a{i}.bin", d) for i, d in enumerate(_decoys(near, decoys))]
    mail = _mail(*parts, _part("key.bin", near), _part("data.zz", stream))
    assert clam_engine.scan_bytes(mail).names == (CLAM_NAME,)


def test_more_decoys_than_are_tried_are_not_clean(clam_engine: Engine) -> None:
    near = _near_clam()
    stream = _deflate(CLAM.read_bytes(), near)
    parts = [_part(f"a{i}.bin", d) for i, d in enumerate(_decoys(near, 70))]
    names = clam_engine.scan_bytes(_mail(*parts, _part("key.bin", near),
                                         _part("data.zz", stream))).names
    assert names == (UNSUPPORTED,)


def test_real_files_are_no_finding() -> None:
    """Files of the system: few start with a zlib header naming a dictionary (1 in 116,101
    files of /usr/share and /usr/lib in round 21), and none reads as such a stream."""
    seen = said = 0
    for top in (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/share/doc")):
        for path in sorted(top.rglob("*"))[:6000]:
            if not path.is_file() or path.is_symlink():
                continue
            with path.open("rb") as f:
                data = f.read(65536)
            seen += 1
            # (and none holds a whole stream behind a short tag: those are no guesses)
            said += any(not c.speculative for c in zlibdict.behind_a_tag(data, ScanContext()))
            if zlibdict.named(data) is None:
                continue
            ctx = ScanContext()
            list(zlibdict.children(data, ctx))
            list(zlibdict.late_children(ctx))
            said += bool(ctx.events)
    assert seen > 2000
    assert said == 0


def test_a_plain_stream_cut_or_followed_by_a_pdf(clam_engine: Engine) -> None:
    """The same for a stream with no dictionary (round 21's x_plain_zlib_*): cut before its
    Adler-32, or with a PDF's magic behind it (the file sniffs as a PDF)."""
    stream = zlib.compress(CLAM.read_bytes())
    for shape in (stream[:-4], stream + b"%PDF-1.4\n%%EOF\n"):
        assert zlib.decompressobj().decompress(shape) == CLAM.read_bytes()
        assert CLAM_NAME in clam_engine.scan_bytes(shape, "data.zz").names


def test_a_short_base64_stream_in_the_text(clam_engine: Engine) -> None:
    """Round 21's Z8: with the dictionary doing the work the stream is 22 bytes, its base64
    32 characters, under the text's base64 blocks; read as a guess."""
    near = _near_clam()
    stream = _deflate(CLAM.read_bytes(), near)
    token = base64.b64encode(stream)
    assert len(token) < 86
    mail = _mail(_text(b"data:\n" + token + b"\n"), _part("key.bin", near))
    assert clam_engine.scan_bytes(mail).names == (CLAM_NAME,)


def test_a_guessed_stream_without_its_dictionary_is_no_finding(clam_engine: Engine) -> None:
    """A token of text that decodes to a dictionary-bound stream is a guess: with no
    dictionary in the mail, what it holds is read, and nothing is said of the guess."""
    stream = _deflate(b"hello, a harmless note " * 4, os.urandom(64) + b"harmless note")
    mail = _mail(_text(b"ref " + base64.b64encode(stream) + b" end\n"))
    assert clam_engine.scan_bytes(mail).names == ()
    assert clam_engine.scan_bytes(_mail(_part("x.zz", stream))).names == (UNSUPPORTED,)


def test_text_tokens_that_look_like_zlib_are_rare() -> None:
    """The system's documentation: few tokens start as a zlib header's base64, and none of
    them decodes to a finding."""
    seen = tokens = 0
    for path in sorted(Path("/usr/share/doc").rglob("*"))[:4000]:
        if not path.is_file() or path.suffix in (".gz", ".png", ".jpg", ".pdf"):
            continue
        data = path.read_bytes()[:200_000]
        seen += 1
        ctx = ScanContext()
        tokens += len(list(zlibdict.short_base64(data, ctx)))
        list(zlibdict.late_children(ctx))
        assert not ctx.events, path
    assert seen > 500
    assert tokens <= seen // 100, tokens


@pytest.mark.parametrize("with_dictionary", [True, False])
def test_a_stream_behind_a_short_tag(clam_engine: Engine, with_dictionary: bool) -> None:
    """Round 21's Z3: `ZH01` in front of the stream, which the recipient's loader skips
    (`decompressobj(zdict=key).decompress(data[4:])`): read; without the dictionary in the
    mail, not clean."""
    near = _near_clam()
    tagged = b"ZH01" + _deflate(CLAM.read_bytes(), near)
    assert zlib.decompressobj(zdict=near).decompress(tagged[4:]) == CLAM.read_bytes()
    parts = [_part("key.bin", near)] if with_dictionary else []
    names = clam_engine.scan_bytes(_mail(*parts, _part("data.bin", tagged))).names
    assert names == ((CLAM_NAME,) if with_dictionary else (UNSUPPORTED,))
    plain = b"\x00\x00\x02\x20" + zlib.compress(CLAM.read_bytes())
    assert clam_engine.scan_bytes(_mail(_part("data.bin", plain))).names == (CLAM_NAME,)
