"""Round 16: a file cut into pieces that nothing names as pieces, joined by the recipient as
the mail tells them (`cat photo1.dat photo2.dat > x.exe`, `cat a.txt b.txt | base64 -d`,
`unzip -p x.zip a b`, `xxd -r -p`). The real tools cut and join (the oracles); the scan reads
the join (`zerohour.scan.joins`). And ordinary mail with several attachments or long tokens
gets no finding from the guesses, at a bounded cost."""

from __future__ import annotations

import base64
import io
import random
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import cpu
from helpers.tools import tool
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, joins
from zerohour.scan.limits import ScanContext

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"


def _run(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    return subprocess.run(list(args), cwd=cwd, input=stdin, capture_output=True,
                          check=True).stdout


def _mail(body: str, parts: list[tuple[str, bytes, str]], headers: str = "") -> bytes:
    """A multipart mail: a text body, then each (name, data, "binary"|"text") attachment."""
    out = [f"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n{headers}MIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
           f"Content-Type: text/plain\r\n\r\n{body}\r\n"]
    for name, data, kind in parts:
        if kind == "text":
            out.append(f"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
                       f"filename={name}\r\n\r\n" + data.decode().replace("\n", "\r\n"))
        else:
            out.append(f"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: "
                       f"attachment; filename={name}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                       + base64.encodebytes(data).decode().replace("\n", "\r\n"))
    return ("".join(out) + "--B--\r\n").encode()


def _plain(headers: str, body: str) -> bytes:
    return (f"From: a@x.test\r\nTo: b@y.test\r\n{headers}\r\n" + body.replace("\n", "\r\n")
            ).encode()


def _wrap(text: str, width: int = 76) -> str:
    return "".join(text[i : i + width] + "\n" for i in range(0, len(text), width))


# -- binary pieces with any names -----------------------------------------------------------


@pytest.mark.parametrize(("cut", "names", "attach_order"), [
    ("head -c 68 {f} > xaa; tail -c +69 {f} > xab", ["photo1.dat", "photo2.dat"], [0, 1]),  # v010
    ("split -n 2 {f}", ["first.dat", "second.dat"], [1, 0]),  # v011: attached in reverse order
    ("split -n 3 {f}", ["1", "2", "3"], [0, 1, 2]),  # v019
    ("split -b 100 {f}", ["a", "b", "c", "d", "e", "f"], [5, 3, 0, 4, 2, 1]),  # six, shuffled
])
def test_binary_pieces_with_any_names(clam_engine: Engine, tmp_path: Path, cut: str,
                                      names: list[str], attach_order: list[int]) -> None:
    _run(tool("sh"), "-c", cut.format(f=CLAM), cwd=tmp_path)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert len(made) == len(names)
    for old, new in zip(made, names, strict=True):
        (tmp_path / old).rename(tmp_path / new)
    assert _run(tool("cat"), *names, cwd=tmp_path) == CLAM.read_bytes()
    parts = [(names[i], (tmp_path / names[i]).read_bytes(), "binary") for i in attach_order]
    mail = _mail(f"Join them: cat {' '.join(names)} > tool.exe", parts)
    assert clam_engine.scan_bytes(mail).names == (NAME,)


def test_two_pieces_among_decoys(clam_engine: Engine, tmp_path: Path) -> None:
    """Unrelated binary attachments around the pieces: a subset of them is joined too."""
    _run(tool("split"), "-b", "300", str(CLAM), cwd=tmp_path)
    assert _run(tool("cat"), "xaa", "xab", cwd=tmp_path) == CLAM.read_bytes()
    rnd = random.Random(16)
    decoys = [(f"d{i}.bin", rnd.randbytes(200), "binary") for i in range(3)]
    parts = [decoys[0], ("b.dat", (tmp_path / "xab").read_bytes(), "binary"), decoys[1],
             ("a.dat", (tmp_path / "xaa").read_bytes(), "binary"), decoys[2]]
    assert clam_engine.scan_bytes(_mail("cat a.dat b.dat > x.exe", parts)).names == (NAME,)


def _decoy_mail(decoys: int, tail: bytes | None = None) -> bytes:
    """R31-F6: clam.exe's first 272 bytes (a cut `MZ` head) first, `decoys` random 300-byte
    attachments, the rest of clam.exe (or `tail`), one more decoy; the names sort the decoys
    between head and tail, so the name-ordered join holds them all too."""
    clam = CLAM.read_bytes()
    rnd = random.Random(31)
    parts = [("p_000.bin", clam[:272], "binary")]
    parts += [(f"p_{i + 1:03d}.bin", rnd.randbytes(300), "binary") for i in range(decoys)]
    parts += [(f"p_{decoys + 2:03d}.bin", clam[272:] if tail is None else tail, "binary"),
              (f"p_{decoys + 1:03d}.bin", rnd.randbytes(300), "binary")]
    return _mail(f"cat p_000.bin p_{decoys + 2:03d}.bin > x.exe", parts)


@pytest.mark.parametrize("decoys", [62, 65, 200])
def test_two_pieces_among_more_decoys_than_the_window(clam_engine: Engine,
                                                      decoys: int) -> None:
    """R31-F6: with 65 decoys before the tail it was past the first `_MAX_OTHERS` (64)
    pieces, which alone were paired with the head: clean. Every single piece is paired."""
    assert joins.is_head(CLAM.read_bytes()[:272])
    report = clam_engine.scan_bytes(_decoy_mail(decoys))
    assert report.names == (NAME,)


def test_a_cut_file_among_seventy_attachments_is_clean(clam_engine: Engine) -> None:
    """The same mail with a tail that completes nothing (a partial download among 70
    attachments): every join is tried, and none is a finding or a limit."""
    report = clam_engine.scan_bytes(_decoy_mail(70, random.Random(1).randbytes(272)))
    assert report.names == ()
    assert report.errors == ()


def _until_limit(made: Iterator[object]) -> tuple[int, ScanLimitExceeded]:
    """The joins a guesser makes before the limit it must end in."""
    count = 0
    try:
        for _ in made:
            count += 1
    except ScanLimitExceeded as exc:
        return count, exc
    pytest.fail(f"{count} joins and no limit")


def _joins_until_limit(pieces: list[bytes]) -> tuple[int, ScanLimitExceeded]:
    """The joins `binary_joins` makes of `pieces` before the limit it must end in."""
    return _until_limit(joins.binary_joins(pieces, ScanContext()))


def _joins_made(pieces: list[bytes]) -> int:
    """The joins `binary_joins` makes of `pieces`, which must end in no limit."""
    return sum(1 for _ in joins.binary_joins(pieces, ScanContext()))


def test_joins_left_untried_are_the_file_limit(clam_engine: Engine) -> None:
    """More loose pieces than the join budget's orders reach (3k - 1 for k others, at most
    `_MAX_JOINS` joins): the orders left untried are `MaxFiles`, not clean (R31-F6: with the
    tail past what the budget reaches, the mail was clean). Fewer are all tried, and no limit
    (R32-FP1: 1,024 joins made one head among 400 files of a project zip, or four heads with
    five others, MaxFiles)."""
    clam = CLAM.read_bytes()
    rnd = random.Random(6)
    pieces = [clam[:272]] + [rnd.randbytes(300) for _ in range(1400)] + [clam[272:]]
    made, exc = _joins_until_limit(pieces)
    assert exc.which == "MaxFiles"
    assert "joins of pieces" in str(exc)
    assert made == joins._MAX_JOINS
    assert _joins_made(pieces[:401] + pieces[-1:]) == 3 * 401 - 1  # every order, no limit
    # four heads and two loose pieces: 4 x 325 arrangements, all made; with 1,000 loose
    # pieces, 4 x 2,999 orders: the fourth head's cut short
    heads = [clam[:272], *(b"MZ" + rnd.randbytes(100) for _ in range(3))]
    assert _joins_made([*heads[1:], heads[0], rnd.randbytes(300), clam[272:]]) == 4 * 325
    made, exc = _joins_until_limit([*heads, *(rnd.randbytes(300) for _ in range(1000))])
    assert (made, exc.which) == (joins._MAX_JOINS, "MaxFiles")
    # in a mail: the 272-byte tail's join is smaller than any decoy's, so made first (joins
    # go smallest first); a tail as big as the decoys is among the orders left: the limit
    assert clam_engine.scan_bytes(_decoy_mail(1400)).names == (NAME,)
    report = clam_engine.scan_bytes(_decoy_mail(1400, rnd.randbytes(300)))
    assert report.names == ("Heuristics.Limits.Exceeded.MaxFiles",)
    # ... and behind 1,100 decoys, within the budget, it is tried: clean (1,024 joins: MaxFiles)
    report = clam_engine.scan_bytes(_decoy_mail(1100, rnd.randbytes(300)))
    assert (report.names, report.errors) == ((), ())


def test_a_decoy_that_spends_the_join_bytes_first(clam_engine: Engine) -> None:
    """A zip (2.5 MB) of clam.exe's head, a 64 MB decoy less a few hundred bytes, the tail
    and one more piece: the attachment-order and name-order joins held the decoy and spent
    `_MAX_BYTES`, and the head with its tail was skipped for size, clean. Small joins first."""
    import zipfile

    clam = CLAM.read_bytes()
    size = joins._MAX_BYTES - len(clam) - 400
    decoy = bytearray(size)
    decoy[::64] = random.Random(64).randbytes(len(range(0, size, 64)))  # (ratio < 250)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, piece in [("a.bin", clam[:272]), ("b.bin", b"\x01" + decoy[1:]),
                            ("c.bin", clam[272:]), ("d.bin", b"\x04" + bytes(300))]:
            z.writestr(name, bytes(piece))
    del decoy
    assert clam_engine.scan_bytes(buf.getvalue(), "x.zip").names == (NAME,)


def test_joins_that_spend_the_join_bytes_leave_the_size_limit(
        clam_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """R33-F3: a zip of clam.exe's head, decoys each a little smaller than the tail, and the
    tail. Smallest first, the head with each decoy spent `_MAX_BYTES` before the head with its
    tail, which was skipped for size, clean (a 75 KB mail at 64 MiB; 1 MiB here). A join left
    unmade for its bytes is `MaxScanSize` now; with room for every join, clam.exe."""
    import zipfile

    monkeypatch.setattr(joins, "_MAX_BYTES", 1024 * 1024)
    clam = CLAM.read_bytes()
    rng = random.Random(33)
    tail = clam[272:] + bytes(64 * 1024)

    def mail(decoys: int) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("a.bin", clam[:272])
            for i in range(decoys):
                z.writestr(f"d{i:02d}.bin", b"\x01" + rng.randbytes(32) + bytes(60 * 1024))
            z.writestr("z.bin", tail)
        return buf.getvalue()

    assert clam_engine.scan_bytes(mail(4), "x.zip").names == (NAME,)
    assert clam_engine.scan_bytes(mail(17), "x.zip").names == (
        "Heuristics.Limits.Exceeded.MaxScanSize",)


@pytest.mark.parametrize("inside", ["gzip", "zip", "pdf"])
def test_a_tail_that_starts_with_a_file_of_its_own(tmp_path: Path, inside: str) -> None:
    """R33-F5: a PE cut where its section holds another file (a gzip of setup data, a zip
    that runs to the PE's end, a PDF manual): the tail starts with that
    file's magic, was typed as it, was no piece, and the cut head had nothing to join. A
    hash signature of the whole PE stands for a real one. (The zip is complete: no test
    of completeness would have taken it; every piece is joined after a head.)"""
    import gzip
    import hashlib
    import struct
    import zipfile

    from PIL import Image

    from zerohour.scan import load_database

    buf = io.BytesIO()
    if inside == "gzip":
        blob = gzip.compress(b"setup data " * 40, mtime=0) + b"more setup"
    elif inside == "zip":
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("readme.txt", "read me\n" * 30)
        blob = buf.getvalue()
    else:
        Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, inside.upper())
        blob = buf.getvalue()
    clam = CLAM.read_bytes()
    size = -(-(0x100 + len(blob)) // 0x200) * 0x200
    base = bytearray(clam.ljust(0x400, b"\0"))
    lfanew = struct.unpack_from("<I", base, 0x3C)[0]
    table = lfanew + 24 + struct.unpack_from("<H", base, lfanew + 20)[0]
    struct.pack_into("<IIII", base, table + 8, 0x1000, 0x1000, size, 0x400)
    section = (b"\x90" * 0x100 + blob).rjust(size, b"\0") if inside == "zip" else (
        (b"\x90" * 0x100 + blob).ljust(size, b"\0"))
    pe = bytes(base) + section
    (tmp_path / "t.hdb").write_text(f"{hashlib.md5(pe).hexdigest()}:{len(pe)}:Test.Whole.PE\n")
    engine = Engine(load_database([tmp_path]))
    assert engine.scan_bytes(pe, "x.exe").names == ("Test.Whole.PE",)
    cut = pe.index(blob)
    head, tail = pe[:cut], pe[cut:]
    assert joins.is_head(head)
    assert tail.startswith(blob)
    mail = _mail("cat setup.bin data.bin > setup.exe", [("setup.bin", head, "binary"),
                                                         ("data.bin", tail, "binary")])
    assert engine.scan_bytes(mail).names == ("Test.Whole.PE",)


def test_zip_members_with_any_names(clam_engine: Engine, tmp_path: Path) -> None:
    """v018: `unzip -p x.zip readme_first.dat zz_second.dat > x.exe` (unzip writes the
    members in archive order; a decoy member stored between them is left out by the names)."""
    clam = CLAM.read_bytes()
    (tmp_path / "readme_first.dat").write_bytes(clam[:0x44])
    (tmp_path / "zz_second.dat").write_bytes(clam[0x44:])
    (tmp_path / "logo.bin").write_bytes(random.Random(18).randbytes(500))
    _run(tool("zip"), "-q", "x.zip", "readme_first.dat", "logo.bin", "zz_second.dat",
         cwd=tmp_path)
    assert _run(tool("unzip"), "-p", "x.zip", "readme_first.dat", "zz_second.dat",
                cwd=tmp_path) == clam
    data = (tmp_path / "x.zip").read_bytes()
    assert clam_engine.scan_bytes(data, "x.zip").names == (NAME,)
    mail = _mail("unzip -p x.zip readme_first.dat zz_second.dat", [("x.zip", data, "binary")])
    assert clam_engine.scan_bytes(mail).names == (NAME,)


@pytest.mark.parametrize(("head_name", "tail_name"), [("p1.bin", "p2.bin"),
                                                   ("clam.exe", "clam.exe.tail")])
def test_a_head_attached_and_its_tail_in_an_attached_zip(clam_engine: Engine, head_name: str,
                                                         tail_name: str) -> None:
    """R32-F5: clam.exe cut in two, the head an attachment, the tail a member of an attached
    zip (with a decoy member and a decoy attachment): attachments were joined with
    attachments, members with members of one zip, and the mail was clean. A partial download
    next to such a zip without the tail is joined too, and clean."""
    import zipfile

    clam = CLAM.read_bytes()
    rnd = random.Random(5)

    def mail(tail: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("readme.txt", "the rest\n")
            z.writestr(f"dir/{tail_name}", tail)
        return _mail(f"unzip rest.zip; cat {head_name} {tail_name} > x.exe", [
            (head_name, clam[:272], "binary"), ("notes.dat", rnd.randbytes(300), "binary"),
            ("rest.zip", buf.getvalue(), "binary")])

    assert clam_engine.scan_bytes(mail(clam[272:])).names == (NAME,)
    report = clam_engine.scan_bytes(mail(rnd.randbytes(272)))
    assert (report.names, report.errors) == ((), ())
    assert any(la.path.endswith("joined-pieces") for la in report.layers)


@pytest.mark.parametrize("shape", ["decoy-attached", "decoy-in-zip", "head-behind-decoy",
                                   "volume-decoy", "unnamed-head", "two-in-one-zip"])
def test_every_file_of_one_name_and_unnamed_attachments_are_pieces(
        clam_engine: Engine, shape: str) -> None:
    """R33-F1, F2: pieces were kept by name, the first of a name alone, so a decoy of the
    tail's (or the head's) name, attached or in a zip before it, hid the real one; and an
    attachment with no name (Outlook saves it as ATT00001.bin) was never a piece. Every file
    of a name is a piece now, and an unnamed attachment is one."""
    import zipfile

    clam = CLAM.read_bytes()
    decoy = random.Random(33).randbytes(len(clam) - 300)

    def zipped(*members: tuple[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as z:
            warnings.simplefilter("ignore")  # ("Duplicate name": what this test is about)
            for name, data in members:
                z.writestr(name, data)
        return buf.getvalue()

    head, tail = clam[:300], clam[300:]
    parts: list[tuple[str, bytes, str]] = {
        "decoy-attached": [("p1.bin", head, "binary"), ("p2.bin", decoy, "binary"),
                           ("t.zip", zipped(("p2.bin", tail)), "binary")],
        "decoy-in-zip": [("p1.bin", head, "binary"), ("a.zip", zipped(("p2.bin", decoy)),
                         "binary"), ("t.zip", zipped(("p2.bin", tail)), "binary")],
        "head-behind-decoy": [("p1.bin", decoy, "binary"), ("h.zip", zipped(("p1.bin", head)),
                              "binary"), ("p2.bin", tail, "binary")],
        "volume-decoy": [("x.001", head, "binary"), ("x.002", decoy, "binary"),
                         ("t.zip", zipped(("x.002", tail)), "binary")],
        "unnamed-head": [("", head, "binary"), ("t.zip", zipped(("p2.bin", tail)), "binary")],
        "two-in-one-zip": [("t.zip", zipped(("p1.bin", head), ("p2.bin", decoy),
                                            ("p2.bin", tail)), "binary")],
    }[shape]
    mail = _mail("see attached", parts)
    if shape == "unnamed-head":
        mail = mail.replace(b"attachment; filename=\r\n", b"attachment\r\n")
    assert clam_engine.scan_bytes(mail).names == (NAME,)


def test_volume_sets_with_too_many_ways_to_join_are_the_file_limit() -> None:
    """Two different files for each of seven volume names: 128 ways to join them, more than
    `mime._MAX_VOLUME_RUNS`; left untried, they are `MaxFiles`, not clean."""
    from zerohour.scan import mime

    rng = random.Random(7)
    files = [(f"x.{i:03d}", rng.randbytes(50)) for i in range(1, 8) for _ in range(2)]
    assert len(list(mime.joined_volumes(files[:12], ScanContext()))) == 64  # 2^6
    with pytest.raises(ScanLimitExceeded, match="MaxFiles"):
        list(mime.joined_volumes(files, ScanContext()))


# -- encoded text cut over parts ------------------------------------------------------------


def _b64(tmp_path: Path) -> str:
    return _run(tool("base64"), "-w", "0", str(CLAM), cwd=tmp_path).decode()


@pytest.mark.parametrize("cut", [92, 93, 95])  # inside the signature; inside a quantum
def test_base64_over_two_text_attachments(clam_engine: Engine, tmp_path: Path, cut: int) -> None:
    """v020: `cat notes.txt more.txt | base64 -d > x.exe`."""
    text = _b64(tmp_path)
    (tmp_path / "notes.txt").write_text(_wrap(text[:cut]))
    (tmp_path / "more.txt").write_text(_wrap(text[cut:]))
    joined = _run(tool("cat"), "notes.txt", "more.txt", cwd=tmp_path)
    assert _run(tool("base64"), "-d", cwd=tmp_path, stdin=joined) == CLAM.read_bytes()
    parts = [(n, (tmp_path / n).read_bytes(), "text") for n in ("more.txt", "notes.txt")]
    assert clam_engine.scan_bytes(_mail("cat notes.txt more.txt | base64 -d", parts)
                                  ).names == (NAME,)


def test_hex_over_two_text_attachments(clam_engine: Engine, tmp_path: Path) -> None:
    """v024: `cat a.hex b.hex | xxd -r -p > x.exe`, cut inside a byte's two digits."""
    dump = _run(tool("xxd"), "-p", str(CLAM), cwd=tmp_path).decode()
    cut = 0x48 * 2 + 1 + dump[: 0x48 * 2].count("\n")
    (tmp_path / "a.hex").write_text(dump[:cut] + "\n")
    (tmp_path / "b.hex").write_text(dump[cut:])
    joined = _run(tool("cat"), "a.hex", "b.hex", cwd=tmp_path)
    assert _run(tool("xxd"), "-r", "-p", cwd=tmp_path, stdin=joined) == CLAM.read_bytes()
    parts = [(n, (tmp_path / n).read_bytes(), "text") for n in ("a.hex", "b.hex")]
    assert clam_engine.scan_bytes(_mail("cat a.hex b.hex | xxd -r -p", parts)).names == (NAME,)


def test_base64_start_in_the_body_rest_in_an_attachment(clam_engine: Engine,
                                                        tmp_path: Path) -> None:
    """v021: the body's block, then rest.txt, through `base64 -d`."""
    text = _b64(tmp_path)
    body = f"Here is the start; the rest is in rest.txt:\n\n{_wrap(text[:92])}\nThanks\n"
    (tmp_path / "rest.txt").write_text(_wrap(text[92:]))
    start = "".join(ln for ln in body.splitlines() if ln and " " not in ln and ln != "Thanks")
    assert _run(tool("base64"), "-d", cwd=tmp_path,
                stdin=start.encode() + (tmp_path / "rest.txt").read_bytes()) == CLAM.read_bytes()
    mail = _mail(body, [("rest.txt", (tmp_path / "rest.txt").read_bytes(), "text")])
    assert clam_engine.scan_bytes(mail).names == (NAME,)


@pytest.mark.parametrize("header", ["X-Data", "Subject"])
def test_base64_start_in_a_header_rest_in_the_body(clam_engine: Engine, tmp_path: Path,
                                                   header: str) -> None:
    """v014, v025: `(sed -n 's/^X-Data: //p' m.eml; sed '1,/^$/d' m.eml) | base64 -d`."""
    text = _b64(tmp_path)
    prefix = "v025 " if header == "Subject" else ""
    headers = f"{header}: {prefix}{text[:93]}\r\n" + ("" if header == "Subject" else
                                                        "Subject: s\r\n")
    mail = _plain(headers, _wrap(text[93:]))
    (tmp_path / "m.eml").write_bytes(mail)
    rebuilt = _run(tool("sh"), "-c", f"(sed -n 's/^{header}: {prefix}//p' m.eml; "
                   "sed '1,/^\\r\\?$/d' m.eml) | tr -d '\\r' | base64 -d", cwd=tmp_path)
    assert rebuilt == CLAM.read_bytes()
    assert clam_engine.scan_bytes(mail).names == (NAME,)


def test_base64_blocks_in_reverse_order_in_the_body(clam_engine: Engine,
                                                    tmp_path: Path) -> None:
    """v026: block B first, block A second; the recipient decodes A then B."""
    text = _b64(tmp_path)
    body = (f"Block B (put second):\n\n{_wrap(text[93:])}\nBlock A (put first):\n\n"
            f"{_wrap(text[:93])}\n")
    (tmp_path / "b.txt").write_text(body)
    rebuilt = _run(tool("sh"), "-c", "(sed -n '/Block A/,$p' b.txt; "
                   "sed -n '/Block B/,/Block A/p' b.txt) | grep -E '^[A-Za-z0-9+/=]+$' | "
                   "base64 -d", cwd=tmp_path)
    assert rebuilt == CLAM.read_bytes()
    assert clam_engine.scan_bytes(_plain("Subject: s\r\n", body)).names == (NAME,)


def _text_decoy_mail(tmp_path: Path, decoys: int, tail: bool = True) -> bytes:
    """clam.exe's base64 cut in two at 93 characters: the head block first in the body, then
    `decoys` blocks of base64 of random bytes (one line each, padded: a line-wise decoder of
    the whole body gets junk), the tail block, one more decoy (the reversed order is junk)."""
    text = _b64(tmp_path)
    rnd = random.Random(93)
    blocks = "".join(base64.b64encode(rnd.randbytes(rnd.randrange(18, 60))).decode() + "\n\n"
                     for _ in range(decoys))
    body = (f"Start:\n\n{_wrap(text[:93])}\n{blocks}" + (_wrap(text[93:]) if tail else "")
            + "\nbye\n\nZGVjb3kgYWZ0ZXIgdGhlIHRhaWwgcnVu\n")
    return _plain("Subject: s\r\n", body)


@pytest.mark.parametrize("decoys", [65, 300])
def test_base64_cut_in_two_among_more_runs_than_the_window(clam_engine: Engine,
                                                           tmp_path: Path, decoys: int) -> None:
    """R31-F6 on encoded text: the tail run behind 65 decoy runs was past the first 64 runs,
    which alone were paired with the head run, and behind 300 past the 256 runs collected at
    all: clean. Every run is paired, and 1,024 are collected."""
    mail = _text_decoy_mail(tmp_path, decoys)
    assert clam_engine.scan_bytes(mail).names == (NAME,)
    report = clam_engine.scan_bytes(_text_decoy_mail(tmp_path, decoys, tail=False))
    assert report.names == ()
    assert report.errors == ()


def test_base64_cut_over_the_first_and_sixty_sixth_text_attachment(clam_engine: Engine,
                                                                     tmp_path: Path) -> None:
    """`cat a.txt z.txt | base64 -d` among 64 text attachments of other base64: the text
    sources were the first 64 of the mail (header values, body, text leaves), and the tail
    in the 66th was never read. Every text leaf is a source now."""
    text = _b64(tmp_path)
    rnd = random.Random(66)
    decoys = [(f"m{i:02d}.txt", base64.b64encode(rnd.randbytes(45)) + b"\n", "text")
              for i in range(65)]
    parts = [("a.txt", _wrap(text[:93]).encode(), "text"), *decoys,
             ("z.txt", _wrap(text[93:]).encode(), "text"), decoys[0]]
    parts[-1] = ("zz.txt", b"ZGVjb3kgYWZ0ZXIgdGhlIHRhaWwgcnVu\n", "text")
    report = clam_engine.scan_bytes(_mail("cat a.txt z.txt | base64 -d", parts))
    assert report.names == (NAME,)


def _text_joins_until_limit(sources: list[bytes]) -> tuple[int, ScanLimitExceeded]:
    return _until_limit(joins.text_joins(sources, ScanContext()))


def test_text_joins_left_untried_are_the_file_limit(clam_engine: Engine,
                                                    tmp_path: Path) -> None:
    """Encoded text past the bounds `text_joins` can try is `MaxFiles`, not clean: a head run
    behind more runs than it collects, more head runs than it joins, joins its budget leaves
    unmade (each of these returned silently)."""
    rnd = random.Random(2)
    head = _b64(tmp_path)[:93].encode()
    tokens = [base64.b64encode(rnd.randbytes(30)) for _ in range(joins._MAX_RUNS + 10)]
    made, exc = _text_joins_until_limit([b"\n\n".join([*tokens, head])])  # head past the runs
    assert (made, exc.which) == (0, "MaxFiles")
    assert "past" in str(exc)
    fake = [b"TVqQ" + base64.b64encode(rnd.randbytes(60)) for _ in range(joins._MAX_HEADS)]
    made, exc = _text_joins_until_limit([b"\n\n".join([*fake, head, *tokens[:10]])])
    assert (made, exc.which) == (0, "MaxFiles")
    assert "head runs" in str(exc)
    made, exc = _text_joins_until_limit([b"\n\n".join([fake[0], head, *tokens[:900]])])
    assert (made, exc.which) == (joins._MAX_TEXT_JOINS, "MaxFiles")
    assert "joins of encoded text" in str(exc)
    report = clam_engine.scan_bytes(_text_decoy_mail(tmp_path, 1100))
    assert report.names == ("Heuristics.Limits.Exceeded.MaxFiles",)


def test_a_newsletter_with_many_tokens_and_a_head_token_is_clean(clam_engine: Engine) -> None:
    """False-positive guard: an HTML newsletter (~100 KB) whose 300 links and pixels carry
    base64 tracking tokens, and whose markup holds one token that decodes to a cut PE header:
    every run is joined after it, within the bounds: no finding, no limit, no error, and a
    bounded cost against the same page without that token."""
    rnd = random.Random(100)

    def token() -> str:
        return base64.b64encode(rnd.randbytes(rnd.randrange(18, 60))).decode()

    rows = "".join(
        f'<tr><td style="padding:10px;font-family:Arial;font-size:14px;color:#333">'
        f'<img src="https://cdn.example.com/p{i}.jpg" width="120" style="float:right">'
        f'<h3 style="margin:0;color:#c00">sale today</h3><p>{"dear customers, new products " * 4}'
        f'</p><a href="https://t.example.com/c?u={token()}&amp;s={i}">buy now</a>'
        f'<img src="https://px.example.com/o/{token()}.gif" width="1" height="1"></td></tr>'
        for i in range(150))
    head = "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

    def page(build: str) -> bytes:
        html = (f"<!doctype html><html><body><!-- build {build} --><table width=600>{rows}"
                "</table></body></html>")
        return (_plain("Subject: news\r\nMIME-Version: 1.0\r\nContent-Type: text/html; "
                       "charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
                       base64.encodebytes(html.encode()).decode()))

    assert len(page(head)) > 100_000
    report = clam_engine.scan_bytes(page(head))
    assert sum(la.path.endswith("joined-text") for la in report.layers) > 600
    base = min(_cpu(clam_engine, page("r" * len(head))) for _ in range(2))
    spent = min(_cpu(clam_engine, page(head)) for _ in range(2))
    assert spent < base + 0.5, (spent, base)


# -- heads ------------------------------------------------------------------------------------


def test_a_head_is_a_recognised_file_cut_short(tmp_path: Path) -> None:
    from PIL import Image

    clam = CLAM.read_bytes()
    assert joins.is_head(clam[:0x44])
    assert joins.is_head(clam[:0x200])
    assert not joins.is_head(clam)  # a whole PE
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PDF")
    pdf = buf.getvalue()
    assert not joins.is_head(pdf)
    assert joins.is_head(pdf[: len(pdf) // 2])
    (tmp_path / "f").write_bytes(clam)
    _run(tool("zip"), "-q", "z.zip", "f", cwd=tmp_path)
    z = (tmp_path / "z.zip").read_bytes()
    assert not joins.is_head(z)
    assert joins.is_head(z[:100])
    assert not joins.is_head(b"\xff\xd8\xff\xe0" + bytes(100))  # no format we test is no head


def _invoice(i: int, pad: int = 4096) -> bytes:
    """A small valid PDF, then a comment and `pad` spaces after its `%%EOF` (R32-FP1:
    padding is common, and qpdf, pdf.js and Acrobat open such files)."""
    objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>"]
    out, offs = b"%PDF-1.4\n", []
    for n, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % n + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offs)
    out += b"trailer\n<</Size 4/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref
    return out + b"%% invoice %d\n" % i + b" " * pad


def test_a_pdf_is_cut_when_it_ends_before_its_startxref_and_eof() -> None:
    """R32-FP1: padding after `%%EOF` is no cut (2 KiB of it were); a file that ends before
    its `startxref` ... `%%EOF`, or inside an incremental update, is."""
    pdf = _invoice(0)
    assert not joins.is_head(pdf)
    assert not joins.is_head(pdf[: pdf.index(b"% invoice")] + bytes(70000))
    assert joins.is_head(pdf[: pdf.index(b"startxref")] + b" " * 4096)
    assert joins.is_head(pdf[: pdf.index(b"%%EOF") + 3])
    assert joins.is_head(pdf[: pdf.index(b"xref")])
    assert joins.is_head(pdf[:100] + b"%%EOF\n")  # (an `%%EOF` in a stream ends nothing)
    end = pdf.index(b"% invoice")
    update = pdf[:end] + b"4 0 obj\n<</Length 5000>>\nstream\n" + bytes(300)
    assert joins.is_head(update)  # cut in an update: the first revision's end is before it
    clam = Path("/usr/share/clamav-testfiles/clam.pdf").read_bytes()
    assert not joins.is_head(clam)
    assert not joins.is_head(clam + b"\x00" * 3000)
    assert joins.is_head(clam[:5000])


def _pdf_with_file(data: bytes, desc: bytes = b"") -> bytes:
    """A PDF whose last object is an embedded file's stream holding `data`, with `desc` in
    that stream's dictionary."""
    objs = [b"<</Type/Catalog/Pages 2 0 R/Names<</EmbeddedFiles<</Names[(x.exe) 4 0 R]>>>>>>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>",
            b"<</Type/Filespec/F(x.exe)/EF<</F 5 0 R>>>>"]
    out, offs = b"%PDF-1.7\n", []
    for n, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % n + o + b"\nendobj\n"
    offs.append(len(out))
    out += (b"5 0 obj\n<</Type/EmbeddedFile/Length %d%s>>\nstream\n" % (len(data), desc)
            + data + b"\nendstream\nendobj\n")
    xref = len(out)
    out += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offs)
    return out + b"trailer\n<</Size 6/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref


@pytest.mark.parametrize("desc", [
    b" /Desc (startxref 1 %%EOF)",  # R33-F4
    b" /Desc (endstream endobj startxref 9 %%EOF)",
    b" /Desc (stream endstream endobj xref startxref 9 %%EOF)",
])
def test_a_pdf_cut_in_a_stream_with_a_fake_end_in_its_dictionary(clam_engine: Engine,
                                                                  desc: bytes) -> None:
    """R33-F4: `startxref 1 %%EOF` in the last object's dictionary (an embedded file's
    `/Desc`), the PDF cut inside that object's stream: the head was complete, and nothing
    was joined. The stream is open (no `endstream` after its `stream`, its `/Length` past
    the end), and 1 points at no `xref`."""
    clam = CLAM.read_bytes()
    pdf = _pdf_with_file(clam, desc)
    assert not joins.is_head(pdf)
    assert clam_engine.scan_bytes(pdf, "a.pdf").names == (NAME,)
    cut = pdf.index(b"stream\n", pdf.index(b"5 0 obj")) + 7 + 300
    head, tail = pdf[:cut], pdf[cut:]
    assert joins.is_head(head)
    mail = _mail("cat statement.pdf statement.dat > s.pdf", [
        ("statement.pdf", head, "binary"), ("statement.dat", tail, "binary")])
    assert clam_engine.scan_bytes(mail).names == (NAME,)


def test_a_pdf_stream_cut_after_a_fake_end_in_its_own_bytes() -> None:
    """A stream's own bytes that fake its end (`endstream endobj xref ... startxref N
    %%EOF`, N at that `xref`), the file cut just after them: its `/Length` (direct, or an
    indirect one the head holds) says the stream goes on."""
    fake = b"\nendstream\nendobj\nxref\n0 1\n0000000000 65535 f \ntrailer\n<<>>\nstartxref\n"
    payload = b"A" * 100 + fake + b"XXXXXXXXXX\n%%EOF\n" + b"B" * 500
    pdf = _pdf_with_file(payload)
    pdf = pdf.replace(b"XXXXXXXXXX", b"%010d" % (pdf.index(fake) + fake.index(b"xref")))
    head = pdf[: pdf.index(b"B" * 500)]
    assert joins.is_head(head)
    obj = head.index(b"5 0 obj")
    indirect = (head[:obj] + b"6 0 obj\n%d\nendobj\n" % len(payload) + head[obj:]).replace(
        b"/Length %d" % len(payload), b"/Length 6 0 R", 1)
    assert joins.is_head(indirect)
    assert not joins.is_head(indirect + b"B" * 500 + pdf[len(head) + 500:])


def test_ordinary_mail_with_padded_pdfs_is_clean(clam_engine: Engine) -> None:
    """R32-FP1: (a) a project zip of 400 small text files and a manual whose `%%EOF` is
    followed by 4 KiB of padding; (b) four such invoices and two .csv ledgers. Each PDF was a
    cut head (no `%%EOF` in its last 2 KiB), and 3 x 400 - 1 orders, or 4 x 325, were more
    than the 1,024 joins: Heuristics.Limits.Exceeded.MaxFiles."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("docs/manual.pdf", _invoice(0))
        for i in range(400):
            z.writestr(f"src/notes_{i:03d}.txt", f"note {i}: meeting minutes, nothing\n" * 3)
    report = clam_engine.scan_bytes(_mail("The project.", [("project.zip", buf.getvalue(),
                                                             "binary")]))
    assert (report.names, report.errors) == ((), ())
    parts = [(f"invoice{i}.pdf", _invoice(i), "binary") for i in range(4)]
    parts += [(f"ledger{i}.csv", f"date,amount,account {i}\n2026-01-0{i + 1},100.00,4711\n"
               .encode(), "text") for i in range(2)]
    report = clam_engine.scan_bytes(_mail("Invoices attached.", parts))
    assert (report.names, report.errors) == ((), ())


def test_a_cut_file_among_four_hundred_members_is_joined(clam_engine: Engine) -> None:
    """R32-FP1: one real head among 400 small members of a zip is joined with every one
    (3k - 1 orders fit the budget), not a limit: clam.pdf cut in two, the tail padded, and
    clam.exe cut in two; a partial download among them (no tail) is clean."""
    import zipfile

    def project(head: bytes, tail: bytes | None) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("docs/a.dat", head)
            for i in range(400):
                z.writestr(f"src/notes_{i:03d}.txt", f"note {i}: minutes, nothing\n" * 12)
            if tail is not None:
                z.writestr("src/zz.dat", tail)
        return buf.getvalue()

    pdf = Path("/usr/share/clamav-testfiles/clam.pdf").read_bytes()
    clam = CLAM.read_bytes()
    for head, tail in ((pdf[:5000], pdf[5000:] + b" " * 4096), (clam[:272], clam[272:])):
        assert joins.is_head(head)
        assert clam_engine.scan_bytes(project(head, tail), "p.zip").names == (NAME,)
    report = clam_engine.scan_bytes(project(clam[:272], None), "p.zip")
    assert (report.names, report.errors) == ((), ())


# -- no false positives, bounded cost -----------------------------------------------------------


def test_ordinary_mail_with_several_attachments_is_clean(clam_engine: Engine) -> None:
    """Photos, a PDF invoice with a signature image, a zip, opaque binary files and long
    base64-looking tokens: nothing to find, and no guess makes a heuristic or an error. A
    partial download (`setup.exe.part`, a PE cut short) next to opaque binary data is joined
    with it; the joins are broken files, which is no finding."""
    from PIL import Image

    rnd = random.Random(7)

    def image(fmt: str, seed: int) -> bytes:
        img = Image.frombytes("RGB", (64, 64), random.Random(seed).randbytes(64 * 64 * 3))
        buf = io.BytesIO()
        img.save(buf, fmt)
        return buf.getvalue()

    clam = CLAM.read_bytes()
    tokens = "\n".join(base64.b64encode(rnd.randbytes(60)).decode() for _ in range(4))
    body = (f"Hi, the invoice and the photos.\nAPI key: {base64.b64encode(rnd.randbytes(48))!r}"
            f"\nsha256 {rnd.randbytes(32).hex()}\n\n{tokens}\n\n"
            "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
    parts = [(f"IMG_{i}.jpg", image("JPEG", i), "binary") for i in range(3)]
    parts += [("invoice.pdf", image("PDF", 9), "binary"), ("sig.png", image("PNG", 10), "binary"),
              ("data1.bin", rnd.randbytes(3000), "binary"), ("data2.bin", rnd.randbytes(900),
                                                              "binary"),
              ("setup.exe.part", clam[:0x90] + rnd.randbytes(100), "binary"),
              ("notes.txt", (tokens + "\n").encode(), "text")]
    headers = ("X-MS-Exchange-AntiSpam-MessageData-0: "
               f"{base64.b64encode(rnd.randbytes(300)).decode()}\r\n"
               f"X-Note: {base64.b64encode(rnd.randbytes(40)).decode()}\r\n")
    report = clam_engine.scan_bytes(_mail(body, parts, headers))
    assert report.names == ()
    assert report.errors == ()
    assert any(la.path.endswith("joined-pieces") for la in report.layers)  # joins were made
    assert any(la.path.endswith("joined-text") for la in report.layers)


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _rar5_volumes(name: bytes, data: bytes, n: int) -> list[bytes]:
    """`data` stored in a RAR 5 set of `n` volumes (`rar -v`): each but the last ends with
    an end-of-archive block whose flag says more volumes follow."""
    import zlib

    def block(body: bytes) -> bytes:
        h = _vint(len(body)) + body
        return zlib.crc32(h).to_bytes(4, "little") + h

    step = -(-len(data) // n)
    vols = []
    for k in range(n):
        part = data[k * step : (k + 1) * step]
        main = block(_vint(1) + _vint(0) + _vint(1 if k == 0 else 3) + (_vint(k) if k else b""))
        flags = 0x0002 | (0x0008 if k else 0) | (0x0010 if k < n - 1 else 0)
        file = block(_vint(2) + _vint(flags) + _vint(len(part)) + _vint(0) + _vint(len(data))
                     + _vint(0x20) + _vint(0) + _vint(0) + _vint(len(name)) + name)
        end = block(_vint(5) + _vint(4) + _vint(1 if k < n - 1 else 0))
        vols.append(b"Rar!\x1a\x07\x01\x00" + main + file + part + end)
    return vols


def test_a_rar_set_of_six_volumes_is_clean(clam_engine: Engine) -> None:
    """R33-FP1: `Q3-report.part1.rar` ... `part6.rar`: each volume but the last ends with the
    block that says more volumes follow, and was a cut head, five of them, MaxFiles. A
    volume is no head (the set is joined as named volumes); a volume cut short, or whose
    end block's CRC is wrong, still is one. So is a RAR 4 volume (`EARC_NEXT_VOLUME`)."""
    import zlib

    vols = _rar5_volumes(b"report.pdf", random.Random(1).randbytes(60_000), 6)
    assert not any(joins.is_head(v) for v in vols)
    assert joins.is_head(vols[0][:-1])
    assert joins.is_head(vols[0][:5000])
    assert joins.is_head(vols[0][:-5] + bytes([vols[0][-5] ^ 1]) + vols[0][-4:])
    report = clam_engine.scan_bytes(_mail("The report, in six volumes.", [
        (f"Q3-report.part{i + 1}.rar", v, "binary") for i, v in enumerate(vols)]))
    assert (report.names, report.errors) == ((), ())
    body = b"\x7b\x0b\x40\x0d\x00" + b"\x00" * 4 + b"\x01\x00"  # next volume, CRC, number
    end4 = (zlib.crc32(body) & 0xFFFF).to_bytes(2, "little") + body
    r00 = b"Rar!\x1a\x07\x00" + bytes(200) + end4
    assert not joins.is_head(r00)
    assert joins.is_head(r00[:-1])


def test_a_broken_guess_is_no_finding(clam_engine: Engine) -> None:
    """A short token that starts a zip (too short for the text-carrier decoder) and an
    unrelated base64 block: their join is a broken zip, scanned for signatures only (reported
    as `Heuristics.Broken.Zip` if the engine took the guess for content)."""
    import zipfile

    rnd = random.Random(3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", rnd.randbytes(5000))
    head = base64.b64encode(buf.getvalue()[:45]).decode()
    body = f"ref {head}\n\n" + base64.encodebytes(rnd.randbytes(300)).decode()
    report = clam_engine.scan_bytes(_plain("Subject: s\r\n", body))
    assert [la.filetype.value for la in report.layers if la.path.endswith("joined-text")] == [
        "zip"]
    assert report.names == ()
    assert report.errors == ()


def _cpu(engine: Engine, data: bytes, names: tuple[str, ...] = ()) -> float:
    t0 = cpu.process_time()
    report = engine.scan_bytes(data)
    assert report.names == names
    assert report.errors == ()
    return cpu.process_time() - t0


def test_five_hundred_junk_pieces_cost_bounded_time(clam_engine: Engine) -> None:
    """500 attachments of junk, every one a cut `MZ` head, and a body of 500 base64 runs
    that each start like a PE: the joins are bounded (heads, orders, bytes), in CPU time
    against the same mail without the heads. More heads than the guesser tries are the file
    limit (a head left untried is not clean: round 30); four are joined in every order."""
    rnd = random.Random(500)
    parts = [(f"p{i}.dat", b"MZ" + rnd.randbytes(300), "binary") for i in range(500)]
    runs = "\n\n".join("TVqQ" + base64.b64encode(rnd.randbytes(60)).decode()
                       for _ in range(500))
    junk = _mail(runs, parts)
    plain = _mail(runs.replace("TVqQ", "abcd"),
                  [(n, b"xy" + d[2:], k) for n, d, k in parts])
    with pytest.raises(ScanLimitExceeded, match="cut heads"):
        list(joins.binary_joins([d for _, d, _ in parts], ScanContext()))
    four = [d for _, d, _ in parts[:4]] + [rnd.randbytes(300) for _ in range(496)]
    made, exc = _joins_until_limit(four)  # (3 * 499 - 1 orders a head: the budget binds)
    assert "joins of pieces" in str(exc)
    assert made == joins._MAX_JOINS
    base = min(_cpu(clam_engine, plain) for _ in range(2))
    spent = min(_cpu(clam_engine, junk, ("Heuristics.Limits.Exceeded.MaxFiles",))
                for _ in range(2))
    # (more heads than four: the limit, at once; without the bounds, 499! orders)
    assert spent < 2 * base + 1.0, (spent, base)
