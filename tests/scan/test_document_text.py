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


def _rewritten(doc: bytes, part: str, rewrite: str) -> tuple[bytes, bytes]:
    """A copy of the pandoc-made `doc` whose `part` has each text node rewritten by what an
    XML parser resolves (round 13): (document, the part)."""
    import io
    import re

    with zipfile.ZipFile(io.BytesIO(doc)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    xml = parts[part]
    tag = rb"w:t" if part.startswith("word/") else rb"text:p"
    entities: list[bytes] = []

    def node(m: re.Match[bytes]) -> bytes:
        text = m.group(2)
        if rewrite == "cdata":
            text = b"<![CDATA[" + text + b"]]>"
        elif rewrite == "comments":
            text = b"<!-- x -->".join(text[i : i + 8] for i in range(0, len(text), 8))
        elif rewrite == "instructions":
            text = b"<?x y?>".join(text[i : i + 8] for i in range(0, len(text), 8))
        else:  # entities
            entities.append(b'<!ENTITY e%d "%s">' % (len(entities), text))
            text = b"&e%d;" % (len(entities) - 1)
        return m.group(1) + text + b"</" + tag + b">"

    xml = re.sub(rb"(<" + tag + rb"\b[^>/]*>)([A-Za-z0-9+/=]{8,})</" + tag + rb">", node, xml)
    if entities:
        root = re.search(rb"<([\w:]+)[\s>]", xml[xml.index(b"?>") + 2 :])
        assert root is not None
        decl_end = xml.index(b"?>") + 2
        xml = (xml[:decl_end] + b"<!DOCTYPE " + root.group(1) + b" [" + b"".join(entities)
               + b"]>" + xml[decl_end:])
    parts[part] = xml
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return out.getvalue(), xml


@pytest.mark.parametrize("rewrite", ["cdata", "comments", "instructions", "entities"])
@pytest.mark.parametrize("kind", ["docx", "odt"])
def test_text_nodes_as_an_xml_parser_reads_them(clam_engine: Engine, tmp_path: Path,
                                                 kind: str, rewrite: str) -> None:
    """Round 13: a run's text in a CDATA section, split by comments or processing
    instructions, or an internal entity of the DOCTYPE; Python's XML parser (what Word and
    LibreOffice do) is the oracle."""
    import xml.etree.ElementTree as ET

    (tmp_path / "notes.md").write_bytes(_paragraphs())
    made = tmp_path / f"notes.{kind}"
    subprocess.run([tool("pandoc"), "-s", str(tmp_path / "notes.md"), "-o", str(made)],
                   check=True, timeout=120)
    part = "word/document.xml" if kind == "docx" else "content.xml"
    doc, xml = _rewritten(made.read_bytes(), part, rewrite)
    text = "".join(ET.fromstring(xml).itertext()).encode()
    kept = bytes(c for c in text if chr(c).isalnum() or c in b"+/=")
    assert binascii.a2b_base64(kept) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(doc, made.name).names == (NAME,)


def test_entity_expansion_is_bounded() -> None:
    from zerohour.scan import textual

    laughs = b'<!ENTITY l0 "ha">' + b"".join(
        b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
    doc = b'<?xml version="1.0"?><!DOCTYPE w [' + laughs + b"]><w><w:t>&l9;</w:t></w>"
    assert len(textual.xml_plain(doc)) < 6 << 20  # 2 GB when expanded in full


@pytest.mark.parametrize("group", [b"\\v", b"\\listtext", b"\\header", b"\\pntxta"])
def test_rtf_text_as_word_shows_it_without_hidden_runs(clam_engine: Engine, tmp_path: Path,
                                                       group: bytes) -> None:
    """Rounds 13 and 14: base64 cut by junk in hidden (`\\v`) runs, list-number text and
    header groups; pandoc, like Word, leaves them out of the body's text (the oracle)."""
    b64 = base64.b64encode(CLAM.read_bytes())
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    body = b"\\par\n".join(b"".join(bytes([c]) + b"{" + group + b" ZZ}" for c in ln)
                            for ln in lines)
    doc = b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Courier;}}\n" + body + b"\\par\n}"
    (tmp_path / "r.rtf").write_bytes(doc)
    shown = subprocess.run([tool("pandoc"), "-f", "rtf", "-t", "plain", str(tmp_path / "r.rtf")],
                           capture_output=True, check=True).stdout
    assert base64.b64decode(b"".join(shown.split())) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(doc, "r.rtf").names == (NAME,)


def test_rtf_hidden_text_ends_with_its_group_or_v0() -> None:
    from zerohour.scan.documents import rtf
    from zerohour.scan.limits import ScanContext

    doc = rb"{\rtf1 a{\v b}c\v d\v0 e\v f\plain g}"
    assert rtf.rtf_text(doc, ScanContext()) == b"abcdefg"
    assert rtf.rtf_text(doc, ScanContext(), shown_only=True) == b"aceg"


#: Round 14: junk between the pieces of each line, where no reader shows it.
DECOYS = {
    "docx-deleted": b'</w:t></w:r><w:del w:id="9" w:author="a"><w:r><w:t>%s</w:t></w:r>'
                    b'</w:del><w:r><w:t xml:space="preserve">',
    "docx-moved-from": b'</w:t></w:r><w:moveFrom w:id="9" w:author="a"><w:r><w:t>%s</w:t>'
                       b'</w:r></w:moveFrom><w:r><w:t xml:space="preserve">',
    "docx-foreign-prefix": b'</w:t></w:r><w:r xmlns:w="urn:x"><w:t>%s</w:t></w:r><w:r>'
                           b'<w:t xml:space="preserve">',
    "odt-comment": b"<office:annotation><text:p>%s</text:p></office:annotation>",
    # round 15: the same elements under a prefix of the writer's choosing, text in properties
    "docx-deleted-other-prefix": b'</w:t></w:r><x:del xmlns:x="http://schemas.openxmlformats.'
                                 b'org/wordprocessingml/2006/main" x:id="9" x:author="a"><w:r>'
                                 b'<w:t>%s</w:t></w:r></x:del><w:r><w:t xml:space="preserve">',
    "docx-in-run-properties": b'</w:t></w:r><w:r><w:rPr><w:t>%s</w:t></w:rPr></w:r><w:r>'
                              b'<w:t xml:space="preserve">',
    "odt-comment-other-prefix": b'<o2:annotation xmlns:o2="urn:oasis:names:tc:opendocument:'
                                b'xmlns:office:1.0"><text:p>%s</text:p></o2:annotation>',
    "odt-foreign-prefix": b'<text:span xmlns:text="urn:x">%s</text:span>',
}


@pytest.mark.parametrize("decoy", list(DECOYS))
def test_junk_where_no_reader_shows_it(clam_engine: Engine, tmp_path: Path, decoy: str) -> None:
    """Rounds 14 and 15: pandoc (the oracle) leaves out deleted and moved revisions, comments,
    elements of a foreign namespace and text inside run properties, whatever the prefix; the
    base64 between them reads whole."""
    import io
    import re

    kind = decoy.split("-")[0]
    (tmp_path / "notes.md").write_bytes(_paragraphs())
    made = tmp_path / f"notes.{kind}"
    subprocess.run([tool("pandoc"), "-s", str(tmp_path / "notes.md"), "-o", str(made)],
                   check=True, timeout=120)
    part = "word/document.xml" if kind == "docx" else "content.xml"
    with zipfile.ZipFile(made) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    tag = rb"w:t" if kind == "docx" else rb"text:p"
    count = [0]

    def cut(m: re.Match[bytes]) -> bytes:
        text = m.group(2)
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
        count[0] += 1
        junk = b"%04d" % count[0]
        return m.group(1) + b"".join(p + (DECOYS[decoy] % junk if i < len(pieces) - 1 else b"")
                                     for i, p in enumerate(pieces)) + b"</" + tag + b">"

    parts[part] = re.sub(rb"(<" + tag + rb"\b[^>/]*>)([A-Za-z0-9+/=]{16,})</" + tag + rb">",
                         cut, parts[part])
    assert count[0] > 5
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    doc = tmp_path / f"decoy.{kind}"
    doc.write_bytes(out.getvalue())
    shown = subprocess.run([tool("pandoc"), "-t", "plain", str(doc)], capture_output=True,
                           check=True).stdout
    kept = bytes(c for c in shown if chr(c).isalnum() or c in b"+/=")
    assert binascii.a2b_base64(kept) == CLAM.read_bytes()
    assert clam_engine.scan_bytes(doc.read_bytes(), doc.name).names == (NAME,)
