"""A file split over several attachments (round 13): `split` makes the pieces, `cat` joins them
(the oracles); the scan reads the joined file."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine, mime
from zerohour.scan.limits import ScanContext

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"


def _mail(parts: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b"filename=" + name.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n") for name, data in parts)
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain"
            b"\r\n\r\ncat the pieces\r\n" + body + b"--B--\r\n")


@pytest.mark.parametrize("naming", ["split", "numbered", "parts"])
def test_a_file_split_over_attachments(clam_engine: Engine, tmp_path: Path, naming: str) -> None:
    clam = CLAM.read_bytes()
    if naming == "split":  # xaa, xab, xac...
        subprocess.run([tool("split"), "-b", "200", str(CLAM)], cwd=tmp_path, check=True)
        names = sorted(p.name for p in tmp_path.iterdir())
    elif naming == "numbered":  # tool.exe.001, .002 (7-Zip, HJSplit)
        subprocess.run([tool("split"), "-b", "96", "-d", "-a", "3", "--numeric-suffixes=1",
                        str(CLAM), "tool.exe."], cwd=tmp_path, check=True)
        names = sorted(p.name for p in tmp_path.iterdir())
    else:
        (tmp_path / "part1.bin").write_bytes(clam[:0x60])
        (tmp_path / "part2.bin").write_bytes(clam[0x60:])
        names = ["part1.bin", "part2.bin"]
    joined = subprocess.run([tool("cat"), *names], cwd=tmp_path, capture_output=True,
                            check=True).stdout
    assert joined == clam
    assert len(names) >= 2
    pieces = [(n, (tmp_path / n).read_bytes()) for n in names]
    assert clam_engine.scan_bytes(_mail(pieces[::-1])).names == (NAME,)  # in any order


def test_only_a_whole_run_of_pieces_is_joined() -> None:
    ctx = ScanContext()
    assert list(mime.joined_volumes({"a.001": b"x" * 20, "a.003": b"y" * 20}, ctx)) == []
    assert list(mime.joined_volumes({"report.pdf": b"x", "notes.txt": b"y"}, ctx)) == []
    out = list(mime.joined_volumes({"a.002": b"2", "a.001": b"1", "b.001": b"b"}, ctx))
    assert [(c.name, c.data) for c in out] == [("a", b"12")]


def test_volumes_inside_an_archive(clam_engine: Engine, tmp_path: Path) -> None:
    """The pieces as members of one zip (an archive's members are joined as attachments)."""
    import zipfile

    subprocess.run([tool("split"), "-b", "100", str(CLAM), "part"], cwd=tmp_path, check=True)
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as z:
        for piece in sorted(tmp_path.glob("parta?"), reverse=True):
            z.write(piece, piece.name)
    data = (tmp_path / "p.zip").read_bytes()
    assert clam_engine.scan_bytes(data, "p.zip").names == (NAME,)


def test_pieces_in_two_archives_of_one_mail(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 15: `xaa` and `xac` in a tar, `xab` in a zip, both attached. The recipient
    unpacks both into one folder (tar and unzip, the oracles) and joins the pieces."""
    import zipfile

    pieces = tmp_path / "pieces"
    pieces.mkdir()
    subprocess.run([tool("split"), "-b", "150", str(CLAM)], cwd=pieces, check=True)
    names = sorted(p.name for p in pieces.iterdir())
    assert names[:3] == ["xaa", "xab", "xac"]
    in_zip = names[1::2]
    subprocess.run([tool("tar"), "-cf", str(tmp_path / "a.tar"), *names[0::2]], cwd=pieces,
                   check=True)
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as z:
        for name in in_zip:
            z.write(pieces / name, name)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tool("tar"), "-xf", str(tmp_path / "a.tar")], cwd=out, check=True)
    subprocess.run([tool("unzip"), "-q", str(tmp_path / "b.zip")], cwd=out, check=True)
    joined = subprocess.run([tool("sh"), "-c", "cat x*"], cwd=out, capture_output=True,
                            check=True).stdout
    assert joined == CLAM.read_bytes()
    mail = _mail([("a.tar", (tmp_path / "a.tar").read_bytes()),
                  ("b.zip", (tmp_path / "b.zip").read_bytes())])
    assert clam_engine.scan_bytes(mail).names == (NAME,)
    # and with the zip inside the tar: one attachment, pieces at two depths
    subprocess.run([tool("tar"), "-rf", str(tmp_path / "a.tar"), "-C", str(tmp_path), "b.zip"],
                   check=True)
    assert clam_engine.scan_bytes((tmp_path / "a.tar").read_bytes(), "a.tar").names == (NAME,)


def test_one_containers_own_pieces_are_not_joined_again() -> None:
    ctx = ScanContext()
    ctx.note_piece("d/x.001", b"1", "/a.zip")
    ctx.note_piece("x.002", b"2", "/a.zip")
    assert list(mime.joined_across(ctx)) == []
    ctx.note_piece("y.001", b"1", "/a.zip")
    ctx.note_piece("y.002", b"2", "/b.tar")
    assert [(c.name, c.data) for c in mime.joined_across(ctx)] == [("y", b"12")]
