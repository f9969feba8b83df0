"""The text Word, PowerPoint, OpenDocument and RTF documents show (rounds 9 and 10): base64 a
line per paragraph was read as one line of XML, or with `\\par` glued to each line. Documents
made by pandoc; the text a reader gets from docx2txt / unrtf / pandoc is the oracle
(`base64 -d -i` of it is the file)."""

from __future__ import annotations

import base64
import binascii
import subprocess
import zipfile
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"



def _paragraphs() -> bytes:
    b64 = base64.b64encode(CLAM.read_bytes())
    return b"\n\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + b"\n"


def _shown(kind: str, path: Path) -> bytes:
    if kind == "docx":
        return subprocess.run([tool("docx2txt"), str(path), "-"],
                              capture_output=True, check=True).stdout
    if kind == "rtf":
        out = subprocess.run([tool("unrtf"), "--text", str(path)],
                             capture_output=True, check=True).stdout
        return b"\n".join(ln for ln in out.splitlines() if not ln.startswith(b"###"))
    if kind == "odt":
        return subprocess.run([tool("pandoc"), "-t", "plain", str(path)],
                              capture_output=True, check=True).stdout
    with zipfile.ZipFile(path) as z:  # pptx: the slide's text runs
        return b"".join(z.read(n) for n in z.namelist() if n.startswith("ppt/slides/slide"))


@pytest.mark.parametrize("kind", ["docx", "rtf", "pptx", "odt"])
def test_base64_a_line_per_paragraph(clam_engine: Engine, tmp_path: Path, kind: str) -> None:
    (tmp_path / "notes.md").write_bytes(_paragraphs())
    out = tmp_path / f"notes.{kind}"
    subprocess.run([tool("pandoc"), "-s", str(tmp_path / "notes.md"), "-o", str(out)],
                   check=True, timeout=120)
    if kind != "pptx":
        shown = _shown(kind, out)
        kept = bytes(c for c in shown if chr(c).isalnum() or c in b"+/=")  # base64 -d -i
        assert binascii.a2b_base64(kept) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(out.read_bytes(), out.name).names == (NAME,)


def test_rtf_text_leaves_tables_and_field_codes_out() -> None:
    from zerohour.scan.documents import rtf
    from zerohour.scan.limits import ScanContext

    doc = (rb"{\rtf1{\fonttbl{\f0 Arial;}}{\*\generator x;}Hello \'e9 \u233?x\par"
           rb"{\field{\*\fldinst HYPERLINK}{\fldrslt link}} end}")
    assert rtf.rtf_text(doc, ScanContext()) == b"Hello \xe9 \xc3\xa9x\nlink end"
