"""Client-shaped sample messages (tests/data/mime): every part a client shows is a layer, with
its name and attachment flag, and nothing else appears (no spurious forks on clean mail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerohour.scan import decompose, filetype
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

DATA = Path(__file__).parent.parent / "data" / "mime"


def layers(data: bytes) -> list[tuple[FileType, str | None, bool, bytes]]:
    ctx = ScanContext()
    out: list[tuple[FileType, str | None, bool, bytes]] = []

    def walk(blob: bytes, name: str | None, attachment: bool) -> None:
        ft = filetype.detect(blob)
        out.append((ft, name, attachment, blob))
        with ctx.descend():
            for c in decompose.children(blob, ft, ctx, name):
                walk(c.data, c.name, c.is_attachment)

    walk(data, None, False)
    return out


def test_apple_mail_nested() -> None:
    got = layers((DATA / "apple_mail_nested.eml").read_bytes())
    kinds = [(ft, name, att) for ft, name, att, _ in got]
    assert kinds[0] == (FileType.MAIL, None, False)
    assert (FileType.BINARY, "photo.png", True) in kinds
    assert (FileType.PDF, "itinerary.pdf", True) in kinds
    assert (FileType.HTML, None, False) in kinds
    texts = [blob for ft, _, _, blob in got if ft is FileType.TEXT]
    # The plain part, and the HTML part as a browser renders it (tags gone).
    assert texts == ["Hi Bob, see the photo — and the itinerary.\r\n".encode(), b"Hi Bob"]
    # and one guess: the sample's PDF has no `startxref` after its object, so the join
    # guesser reads it as cut (rounds 32, 33: the rule a sender cannot fake) and tries it
    # with the photo after it
    assert len(got) == 7
    assert got[-1][:3] == (FileType.PDF, None, False)


def test_outlook_winmail() -> None:
    got = layers((DATA / "outlook_winmail.eml").read_bytes())
    names = [name for _, name, _, _ in got]
    assert "winmail.dat" in names
    assert "report.docx" in names  # the attachment hidden inside TNEF
    assert len(got) == 4


def test_thunderbird_forward() -> None:
    got = layers((DATA / "thunderbird_forward.eml").read_bytes())
    kinds = [(ft, name) for ft, name, _, _ in got]
    assert (FileType.MAIL, "Original.eml") in kinds
    assert any(blob == b"The original text.\r\n" for _, _, _, blob in got)
    assert any(blob == b"Forwarding this.\r\n" for _, _, _, blob in got)
    assert len(got) == 4


def test_uuencode_bare_lf() -> None:
    got = layers((DATA / "uuencode_bare_lf.eml").read_bytes())
    files = [(name, blob) for _, name, _, blob in got if name == "notes.txt"]
    assert files == [("notes.txt", b"uuencoded file contents\n" * 3)]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.eml")), ids=lambda p: p.name)
def test_samples_are_mail_and_cheap(path: Path) -> None:
    data = path.read_bytes()
    assert filetype.detect(data) is FileType.MAIL
    ctx = ScanContext()
    list(decompose.children(data, FileType.MAIL, ctx))
    assert ctx.files <= 6


CLAM_TESTFILES = Path("/usr/share/clamav-testfiles")


def test_clamav_testfiles_uuencoded_mbox(tmp_path: Path) -> None:
    """clam.exe.mbox.uu (an mbox message, x-uuencode, its `end` line cut to "e"): clamscan
    finds clam.exe in it, and so must we (the "e" line used to become 5 junk bytes)."""
    if not (CLAM_TESTFILES / "clam.exe.mbox.uu").is_file():
        pytest.skip("clamav-testfiles not installed (scripts/system-deps installs it)")
    import hashlib

    from zerohour.scan import Engine, load_database

    exe = (CLAM_TESTFILES / "clam.exe").read_bytes()
    (tmp_path / "clam.hdb").write_text(f"{hashlib.md5(exe).hexdigest()}:{len(exe)}:Clam.Exe\n")
    report = Engine(load_database([tmp_path])).scan_path(CLAM_TESTFILES / "clam.exe.mbox.uu")
    assert report.names == ("Clam.Exe",)
