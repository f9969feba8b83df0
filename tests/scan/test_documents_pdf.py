"""PDF: every stream filter, object streams, embedded files, JavaScript, encryption, damage and
bombs. Files are made by qpdf and pikepdf; clamscan 1.4 is the oracle where it decodes the same
thing (it does not apply PNG predictors or decode RunLength, we do)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import resource
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from helpers import cpu
from zerohour.scan import Engine, load_database
from zerohour.scan.documents import pdf as pdfmod
from zerohour.scan.limits import ScanContext

TESTFILES = Path("/usr/share/clamav-testfiles")
CLAM_EXE = TESTFILES / "clam.exe"
NAME = "ClamAV-Test-File"

pytestmark = pytest.mark.skipif(not CLAM_EXE.exists(), reason="clamav-testfiles not installed")


@pytest.fixture(scope="module")
def exe() -> bytes:
    return CLAM_EXE.read_bytes()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, exe: bytes) -> Path:
    folder = tmp_path_factory.mktemp("db")
    (folder / "clam.hdb").write_text(f"{hashlib.md5(exe).hexdigest()}:{len(exe)}:{NAME}\n")
    return folder


@pytest.fixture(scope="module")
def engine(db: Path) -> Engine:
    return Engine(load_database([db]), allmatch=True)


def clamscan(db: Path, path: Path, *extra: str) -> set[str]:
    """What clamscan finds (names without .UNOFFICIAL); empty when it is not installed."""
    if shutil.which("clamscan") is None:
        pytest.skip("clamscan not installed")
    out = subprocess.run(
        ["clamscan", "--no-summary", "-d", str(db), *extra, str(path)],
        capture_output=True, text=True, check=False,
    ).stdout
    return {line.rsplit(": ", 1)[1].removesuffix(" FOUND").removesuffix(".UNOFFICIAL")
            for line in out.splitlines() if line.endswith(" FOUND")}


def qpdf(*args: str) -> None:
    rc = subprocess.run(["qpdf", *args], capture_output=True, check=False).returncode
    assert rc in (0, 3), args  # 3: succeeded with warnings


def attached(tmp: Path, exe: bytes) -> Path:
    """A one-page PDF with clam.exe attached (the /EmbeddedFiles name tree), by pikepdf."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.attachments["clam.exe"] = pikepdf.AttachedFileSpec(pdf, exe, filename="clam.exe")
    path = tmp / "attached.pdf"
    pdf.save(path)
    return path


def test_clam_pdf_is_detected(engine: Engine, db: Path) -> None:
    path = TESTFILES / "clam.pdf"
    report = engine.scan_bytes(path.read_bytes())
    assert set(report.names) == clamscan(db, path) == {NAME}


@pytest.mark.parametrize(
    "qpdf_args",
    [
        ["--compress-streams=y"],
        ["--object-streams=generate"],
        ["--qdf"],  # uncompressed
        ["--compress-streams=y", "--object-streams=generate", "--stream-data=compress"],
        ["--encrypt", "", "owner", "256", "--"],  # AES-256, empty user password
        ["--encrypt", "", "owner", "128", "--use-aes=y", "--"],
        ["--allow-weak-crypto", "--encrypt", "", "owner", "128", "--use-aes=n", "--"],
        ["--allow-weak-crypto", "--encrypt", "", "owner", "40", "--"],
    ],
    ids=["compressed", "object-streams", "qdf", "all-compressed", "aes256-empty", "aes128-empty",
         "rc4-128-empty", "rc4-40-empty"],
)
def test_embedded_file_in_qpdf_variants(
    tmp_path: Path, exe: bytes, engine: Engine, db: Path, qpdf_args: list[str]
) -> None:
    src = attached(tmp_path, exe)
    out = tmp_path / "out.pdf"
    qpdf(*qpdf_args, str(src), str(out))
    report = engine.scan_bytes(out.read_bytes())
    assert set(report.names) == clamscan(db, out) == {NAME}
    children = list(pdfmod.pdf_children(out.read_bytes(), ScanContext()))
    files = [c for c in children if c.origin == "pdf-embedded-file"]
    assert [(c.data, c.name, c.is_attachment) for c in files] == [(exe, "clam.exe", True)]


def test_user_password_is_encrypted_finding(
    tmp_path: Path, exe: bytes, engine: Engine, db: Path
) -> None:
    src = attached(tmp_path, exe)
    out = tmp_path / "locked.pdf"
    qpdf("--encrypt", "secret", "owner", "256", "--", str(src), str(out))
    report = engine.scan_bytes(out.read_bytes())
    assert report.names == ("Heuristics.Encrypted.PDF",)
    assert clamscan(db, out) == set()
    assert clamscan(db, out, "--alert-encrypted-doc") == {"Heuristics.Encrypted.PDF"}


def _rle(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 128):
        chunk = data[i : i + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return bytes(out + b"\x80")


def _lzw(data: bytes) -> bytes:
    """PDF LZWDecode encoding (EarlyChange 1), to test our decoder against qpdf's."""
    table = {bytes([i]): i for i in range(256)}
    nxt, width, acc, nbits = 258, 9, 0, 0
    out = bytearray()

    def emit(code: int) -> None:
        nonlocal acc, nbits
        acc, nbits = (acc << width) | code, nbits + width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
            acc &= (1 << nbits) - 1

    emit(256)
    word = b""
    for byte in data:
        grown = word + bytes([byte])
        if grown in table:
            word = grown
            continue
        emit(table[word])
        table[grown] = nxt
        nxt += 1
        if nxt + 1 > 1 << width and width < 12:
            width += 1
        word = bytes([byte])
    emit(table[word])
    emit(257)
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def _png_up(data: bytes, columns: int) -> bytes:
    out, prev = bytearray(), bytes(columns)
    for i in range(0, len(data), columns):
        row = data[i : i + columns].ljust(columns, b"\x00")
        out += b"\x02" + bytes((row[j] - prev[j]) & 0xFF for j in range(columns))
        prev = row
    return bytes(out)


def _stream_pdf(path: Path, raw: bytes, filters: object, parms: dict[str, int] | None) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    stream = pikepdf.Stream(pdf, raw)
    stream.Filter = filters
    if parms:
        stream.DecodeParms = pikepdf.Dictionary(parms)
    pdf.Root.Payload = pdf.make_indirect(stream)
    decoded = bytes(stream.read_bytes(decode_level=pikepdf.StreamDecodeLevel.specialized))
    pdf.save(path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return decoded


@pytest.mark.parametrize(
    ("kind", "clamscan_finds"),
    [("ahx", True), ("a85", True), ("lzw", False), ("rl", False), ("flate-png", False),
     ("ahx-flate", True), ("lzw-many", None)],
)
def test_every_filter(
    tmp_path: Path, exe: bytes, engine: Engine, db: Path, kind: str, clamscan_finds: bool | None
) -> None:
    payload = exe * 40 if kind == "lzw-many" else exe  # past the 12-bit table: clear codes
    raw, filters, parms = {
        "ahx": (binascii.hexlify(payload) + b">", pikepdf.Name.ASCIIHexDecode, None),
        "a85": (base64.a85encode(payload) + b"~>", pikepdf.Name.ASCII85Decode, None),
        "lzw": (_lzw(payload), pikepdf.Name.LZWDecode, None),
        "lzw-many": (_lzw(payload), pikepdf.Name.LZWDecode, None),
        "rl": (_rle(payload), pikepdf.Name.RunLengthDecode, None),
        "flate-png": (zlib.compress(_png_up(payload, 16)), pikepdf.Name.FlateDecode,
                      {"/Predictor": 12, "/Columns": 16}),
        "ahx-flate": (binascii.hexlify(zlib.compress(payload)) + b">",
                      pikepdf.Array([pikepdf.Name.ASCIIHexDecode, pikepdf.Name.FlateDecode]), None),
    }[kind]
    path = tmp_path / f"{kind}.pdf"
    assert _stream_pdf(path, raw, filters, parms)[: len(payload)] == payload  # qpdf agrees
    got = [c.data for c in pdfmod.pdf_children(path.read_bytes(), ScanContext())]
    assert payload in got
    if kind != "lzw-many":
        assert set(engine.scan_bytes(path.read_bytes()).names) == {NAME}
    if clamscan_finds is not None:
        assert (clamscan(db, path) == {NAME}) is clamscan_finds


def test_javascript_string_and_file_attachment_annotation(tmp_path: Path, exe: bytes) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    js = b"app.alert('zerohour js marker');"
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(js))
    spec = pikepdf.AttachedFileSpec(pdf, exe, filename="annot.exe")
    annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment,
                               Rect=[0, 0, 10, 10], FS=spec.obj)
    pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(annot)]))
    path = tmp_path / "annot.pdf"
    pdf.save(path, compress_streams=True)
    children = list(pdfmod.pdf_children(path.read_bytes(), ScanContext()))
    assert (js, "pdf-js") in [(c.data, c.origin) for c in children]
    assert (exe, "annot.exe", True) in [(c.data, c.name, c.is_attachment) for c in children]


def test_object_outside_the_xref_is_still_scanned(
    tmp_path: Path, exe: bytes, engine: Engine
) -> None:
    # Appended after %%EOF without an xref update: qpdf's reading never sees it, a lenient
    # reader (and our stream scan) does.
    pdf = pikepdf.new()
    pdf.add_blank_page()
    path = tmp_path / "plain.pdf"
    pdf.save(path)
    data = path.read_bytes() + (b"99 0 obj\n<</Filter/FlateDecode>>\nstream\n"
                                + zlib.compress(exe) + b"\nendstream\nendobj\n")
    assert NAME in engine.scan_bytes(data).names


def test_unopenable_pdf_is_broken_after_its_streams(exe: bytes, engine: Engine) -> None:
    data = b"%PDF-1.4\n1 0 obj\n<</Filter/FlateDecode>>\nstream\n" + zlib.compress(exe)
    assert engine.scan_bytes(data).names == (NAME, "Heuristics.Broken.PDF")


def test_truncated_pdf_keeps_what_it_has(tmp_path: Path, exe: bytes, engine: Engine) -> None:
    data = attached(tmp_path, exe).read_bytes()
    cut = data[: data.index(b"endstream") + 9]  # after the attachment, before the xref
    assert NAME in engine.scan_bytes(cut).names


def zero_bomb(mib: int) -> bytes:
    """A zlib stream of `mib` MiB of zeros, built from one full-flush segment repeated (the
    segments are identical after a full flush), with the real Adler-32 at the end."""
    zeros = bytes(1 << 20)
    comp = zlib.compressobj(9)
    head = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    segment = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    adler = 1
    for _ in range(mib):
        adler = zlib.adler32(zeros, adler)
    return head + segment * (mib - 1) + tail[:-4] + adler.to_bytes(4, "big")


def test_zero_bomb_is_what_it_claims() -> None:
    out = zlib.decompressobj()
    assert len(out.decompress(zero_bomb(8))) == 8 << 20
    assert out.eof


def test_flate_bomb_is_bounded(tmp_path: Path) -> None:
    # 1 GiB of zeros in one stream (1 MB compressed): qpdf's own read_bytes() takes ~10 s and
    # 2 GB; our decoding stops at the ratio bound.
    raw = zero_bomb(1024)
    pdf = pikepdf.new()
    pdf.add_blank_page()
    stream = pikepdf.Stream(pdf, raw)
    stream.Filter = pikepdf.Name.FlateDecode
    pdf.Root.Bomb = pdf.make_indirect(stream)
    path = tmp_path / "bomb.pdf"
    pdf.save(path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    data = path.read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = cpu.process_time()
    report = Engine(load_database([tmp_path]), allmatch=True).scan_bytes(data)
    assert cpu.process_time() - t0 < 10
    assert [n for n in report.names if n.startswith("Heuristics.Limits.Exceeded.")], report
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grew_mib < 300, grew_mib


def test_qpdf_backstop_caps_its_own_decoding(tmp_path: Path) -> None:
    pdfmod._qpdf_limits()
    assert pikepdf.settings.get_qpdf_limits()["flate_max_memory"] == pdfmod._QPDF_BACKSTOP


def test_filter_bombs_stop_at_the_ratio_bound() -> None:
    from zerohour.errors import ScanLimitExceeded

    rle = b"\x81\x00" * 1_000_000  # 2 MB -> 128 MB of zeros (RunLength's best is 64x)
    with pytest.raises(ScanLimitExceeded) as exc:
        pdfmod.run_length_decode(rle, ScanContext())
    assert exc.value.which == "MaxFileSize"
    t0 = cpu.process_time()
    with pytest.raises(ScanLimitExceeded) as exc:
        pdfmod.lzw_decode(_lzw_zero_bomb(40), ScanContext())  # 220 KB -> 300 MB
    assert exc.value.which == "CompressionRatio"
    assert cpu.process_time() - t0 < 10


def _lzw_zero_bomb(tables: int) -> bytes:
    """LZW codes for runs of zeros of length 1, 2, ... 3837, table after table: the best ratio
    LZW allows (~1300x)."""
    out = bytearray()
    acc = nbits = 0
    width = 9

    def emit(code: int) -> None:
        nonlocal acc, nbits
        acc, nbits = (acc << width) | code, nbits + width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
            acc &= (1 << nbits) - 1

    for _ in range(tables):
        emit(256)
        width, size = 9, 258
        emit(0)
        for code in range(258, 4094):
            emit(code)
            size += 1
            if size + 1 >= 1 << width and width < 12:
                width += 1
    emit(257)
    return bytes(out + (bytes([(acc << (8 - nbits)) & 0xFF]) if nbits else b""))


def test_damaged_filters_never_raise() -> None:
    ctx = ScanContext()
    for filters in (["/ASCII85Decode"], ["/ASCIIHexDecode"], ["/LZWDecode"], ["/RunLengthDecode"],
                    ["/FlateDecode"], ["/DCTDecode"], ["/Crypt", "/FlateDecode"]):
        for raw in (b"\xff\xfe garbage {}~>", b"z" * 100, b"\x00" * 7):
            pdfmod.decode_filters(raw, filters, [{"/Predictor": 12, "/Columns": 3}], ctx)


def test_mutated_pdfs_never_raise(tmp_path: Path, exe: bytes) -> None:
    import contextlib
    import random

    from zerohour.errors import EncryptedContent, ScanLimitExceeded

    src = attached(tmp_path, exe)
    packed = tmp_path / "packed.pdf"
    qpdf("--object-streams=generate", "--compress-streams=y", str(src), str(packed))
    samples = [src.read_bytes(), packed.read_bytes(), (TESTFILES / "clam.pdf").read_bytes()]
    rnd = random.Random(7)
    for _ in range(300):
        buf = bytearray(rnd.choice(samples))
        for _ in range(rnd.randint(1, 30)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        cut = bytes(buf[: rnd.randrange(len(buf))] if rnd.random() < 0.3 else buf)
        with contextlib.suppress(ScanLimitExceeded, EncryptedContent):
            list(pdfmod.pdf_children(cut, ScanContext()))


def test_damage_is_said_after_the_streams(tmp_path: Path, exe: bytes, db: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    bad = pikepdf.Stream(pdf, b"\xff\xfe not ascii85 \x7f~>")
    bad.Filter = pikepdf.Name.ASCII85Decode
    pdf.Root.Bad = pdf.make_indirect(bad)  # an object number below the attachment's
    pdf.attachments["clam.exe"] = pikepdf.AttachedFileSpec(pdf, exe, filename="clam.exe")
    path = tmp_path / "damaged.pdf"
    pdf.save(path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    data = path.read_bytes()
    assert Engine(load_database([db])).scan_bytes(data).names == (NAME,)
    every = Engine(load_database([db]), allmatch=True).scan_bytes(data).names
    assert every == (NAME, "Heuristics.Broken.PDF") or every == (  # (also carved whole out
        NAME, NAME, "Heuristics.Broken.PDF")  # of the raw file: the PE prefix hashes)


def _update(exe: bytes, head: bytes, filters: bytes = b"/FlateDecode",
            body: bytes | None = None) -> bytes:
    """An incremental update of `head` (a complete PDF): an embedded file `invoice.exe`, its
    file specification, a new Catalog, an xref section with `/Prev`, a trailer, `%%EOF`."""
    x1 = int(head.rsplit(b"startxref", 1)[1].split()[0])
    raw = zlib.compress(exe) if body is None else body
    out = bytearray(head)
    offs = {}
    for num, obj in (
        (5, b"<< /Type /EmbeddedFile /Filter %s /Length %d >>\nstream\n" % (filters, len(raw))
         + raw + b"\nendstream"),
        (4, b"<< /Type /Filespec /F (invoice.exe) /UF (invoice.exe) /EF << /F 5 0 R >> >>"),
        (1, b"<< /Type /Catalog /Pages 2 0 R"
            b" /Names << /EmbeddedFiles << /Names [(invoice.exe) 4 0 R] >> >> >>"),
    ):
        offs[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, obj)
    x2 = len(out)
    out += (b"xref\n0 1\n0000000000 65535 f \n1 1\n%010d 00000 n \n4 2\n%010d 00000 n \n"
            b"%010d 00000 n \n" % (offs[1], offs[4], offs[5]))
    out += b"trailer\n<< /Size 6 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (x1, x2)
    return bytes(out[len(head):])


@pytest.fixture(scope="module")
def one_page(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    path = tmp_path_factory.mktemp("page") / "page.pdf"
    pdf.save(path, object_stream_mode=pikepdf.ObjectStreamMode.disable, compress_streams=False,
             qdf=False, static_id=True)
    return path.read_bytes()


def test_incremental_update_alone_is_read(exe: bytes, engine: Engine, one_page: bytes) -> None:
    """R33-F6: `statement.upd`, an update to a clean PDF sent as its own attachment, adds a
    FlateDecode embedded file; `cat` of the two opens as one PDF with the payload attached."""
    update = _update(exe, one_page)
    with pikepdf.open(io.BytesIO(one_page + update)) as whole:  # (the sample is what it says)
        assert bytes(whole.attachments["invoice.exe"].get_file().read_bytes()) == exe
    assert NAME in engine.scan_bytes(update, "statement.upd").names
    assert not update.startswith(b"%PDF-")
    assert pdfmod.is_fragment(update)
    kids = list(pdfmod.fragment_children(update, ScanContext()))
    assert [(k.name, k.origin, k.is_attachment) for k in kids if k.data == exe] == [
        ("invoice.exe", "pdf-embedded-file", True)]


@pytest.mark.parametrize("pad", [b"", b"\x00junk\xff" * 300])
@pytest.mark.parametrize(("filters", "encode"), [
    (b"[/ASCIIHexDecode /FlateDecode]", lambda b: binascii.hexlify(zlib.compress(b)) + b">"),
    (b"/LZWDecode", _lzw),
    (b"/RunLengthDecode", _rle),
    (b"/Fl#61teDecode", zlib.compress),
])
def test_fragment_streams_every_filter_and_padding(
    exe: bytes, engine: Engine, one_page: bytes, pad: bytes, filters: bytes, encode: Any
) -> None:
    """Each filter decoded under our bounds; junk on both sides (a reader repairs the xref of
    the joined file) does not hide the fragment."""
    update = pad + _update(exe, one_page, filters, encode(exe)) + pad
    assert NAME in engine.scan_bytes(update).names
    assert pdfmod.is_fragment(update)


@pytest.mark.parametrize("shape", ["quoted-parms", "quoted-filter", "junk-quoting-an-end"])
def test_fragment_dictionaries_are_read_as_a_reader_reads_them(
        exe: bytes, engine: Engine, one_page: bytes, shape: str) -> None:
    """R34: a string that quotes `/Predictor 12` (F1) or a `/Filter` before the real key (F2)
    was read as a key; junk in front quoting `endstream`, with the update's ends more than a
    KiB from both edges, hid the fragment (F4). Each decoded the payload to garbage, clean."""
    update = _update(exe, one_page)
    if shape == "quoted-parms":
        update = update.replace(b"/Type /EmbeddedFile", b"/Type /EmbeddedFile"
                                b" /Desc (/Predictor 12 /Columns 4)")
    elif shape == "quoted-filter":
        update = update.replace(b"/Type /EmbeddedFile", b"/Type /EmbeddedFile"
                                b" /Desc (/Filter /ASCIIHexDecode)")
    else:
        pad = b"% padding, as a mailer's footer would be\n" * 40
        update = b"% endstream\n" + pad + update + pad
    with pikepdf.open(io.BytesIO(one_page + update)) as whole:  # (a reader takes the payload)
        assert bytes(whole.attachments["invoice.exe"].get_file().read_bytes()) == exe
    assert NAME in engine.scan_bytes(update, "statement.upd").names


def test_fragment_decode_parameters_go_with_their_filters() -> None:
    """R34-F3: `/DecodeParms [null << /Predictor 12 /Columns 4 >>]` is the second filter's;
    one dictionary is the first filter's, as the full reading takes it."""
    assert pdfmod._raw_filters(b"<< /Filter [/FlateDecode /FlateDecode] /DecodeParms [null"
                               b" << /Predictor 12 /Columns 4 >>] /Length 9 >>") == (
        ["/FlateDecode", "/FlateDecode"], [{}, {"/Predictor": 12, "/Columns": 4}])
    assert pdfmod._raw_filters(b"<< /Filter /FlateDecode /DecodeParms << /Predictor 2 >> >>"
                               ) == (["/FlateDecode"], [{"/Predictor": 2}])


def test_fragment_check_leaves_ordinary_files_alone(engine: Engine) -> None:
    """Random binary and plain text are no fragment; text quoting PDF syntax is one, but what
    its reading finds is no finding by itself."""
    import random

    rnd = random.Random(33)
    for size in (100, 5000, 1 << 20):
        assert not pdfmod.is_fragment(rnd.randbytes(size))
    text = b"Dear customer,\nplease find your statement attached. Regards\n" * 200
    assert not pdfmod.is_fragment(text)
    quoted = (b"A PDF object looks like this:\n\n1 0 obj\n<< /Type /Catalog >>\nendobj\n\n"
              b"and a stream: 2 0 obj << /Length 5 >> stream\nhello\nendstream endobj\n")
    assert pdfmod.is_fragment(quoted)
    assert list(pdfmod.fragment_children(quoted, ScanContext())) == []
    assert engine.scan_bytes(quoted, "howto.txt").names == ()
