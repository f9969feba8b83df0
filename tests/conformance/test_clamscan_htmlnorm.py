"""ClamAV's normalised HTML copies with clamscan 1.4 as the oracle.

clamscan (`--leave-temps`) keeps the `nocomment.html` and `notags.html` its `cli_scanhtml`
writes; `zerohour.scan.htmlnorm` must produce the same bytes, for hand-picked documents and for
seeded random ones. Then the verdicts that depend on them: an `.fp`/`.sfp` entry for a copy
(hashes taken from clamscan's own copies) allow-lists a finding in that copy, a file-hash
signature of a copy detects, and a finding in both copies needs both listed.
"""

from __future__ import annotations

import hashlib
import html.entities
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from zerohour.scan import Engine, load_database
from zerohour.scan._htmlentities import ENTITIES
from zerohour.scan.htmlnorm import normalise

pytestmark = pytest.mark.needs_clamav

CLAMSCAN = shutil.which("clamscan")
needs_clamscan = pytest.mark.skipif(CLAMSCAN is None, reason="clamscan not installed")


def clamscan_copies(samples: list[bytes], work: Path) -> list[dict[str, bytes]]:
    """clamscan's normalised copies of each sample ({} where it did not take it as HTML)."""
    assert CLAMSCAN is not None
    sdir, tdir, db = work / "samples", work / "temps", work / "db"
    for d in (sdir, tdir, db):
        d.mkdir(parents=True)
    (db / "a.ndb").write_text("Never.Matches:0:*:00112233445566778899aabbccddeeff\n")
    for i, s in enumerate(samples):
        (sdir / f"f{i:05d}.html").write_bytes(s)
    subprocess.run([CLAMSCAN, "--no-summary", "--leave-temps", f"--tempdir={tdir}", "-d",
                    str(db), "-r", str(sdir)], capture_output=True, timeout=300, check=False)
    out: list[dict[str, bytes]] = []
    for i in range(len(samples)):
        # The outermost html-tmp: a data: URI's content can be HTML with copies of its own.
        dirs = sorted((p for p in tdir.glob(f"*f{i:05d}.html*/**/html-tmp*") if p.is_dir()),
                      key=lambda p: len(p.parts))
        out.append({f.name: f.read_bytes() for f in dirs[0].iterdir() if f.is_file()}
                   if dirs else {})
    return out


SAMPLES: dict[str, bytes] = {
    "plain": b"<html><body>\n<p>Hello EVIL   World</p>\n</body></html>\n",
    "mail": (b"<!DOCTYPE html>\r\n<HTML><HEAD><META http-equiv=Content-Type content=\"text/html;"
             b" charset=utf-8\">\r\n<STYLE>p { color: red }</STYLE></HEAD>\r\n<BODY>\r\n"
             b"<!-- tracking --><P class=\"MsoNormal\" style='margin:0cm'>Dear&nbsp;customer,"
             b"</P>\r\n<p>Please <a href=\"HTTPS://Bank.Example/Login?a=1&amp;b=2\" "
             b"target=_blank>log in</a> &amp; confirm &#8364;100 &#x41;&#66;C.</p>\r\n"
             b"<img src=\"cid:LOGO.png\" alt=Logo width=10>\r\n</BODY></HTML>\r\n"),
    "script": (b"<html><script type='text/javascript'>\nvar A = 'X';  // c\n<!-- hidden -->\n"
               b"document.write(\"<b>hi</b>\");\n</script><p>after</p></html>"),
    "utf8": "<html><p>Grüße, café – naïve 「。」 ¡Olé! ¡C</p></html>".encode(),
    "entities": (b"<html>&lt;tag&gt; &quot;q&quot; &apos;a&apos; &AMP; &Amp; &amp &nosuch; "
                 b"&#0; &#x110000; &#65x &#; &#x; &euro;&hellip;&copy;&reg;</html>"),
    "comments": b"<html>a<!-- one > two -->b<!>c<!--d-->e< !-- f -->g</html>",
    # overflow of long numeric references: ClamAV multiplies while the value is below
    # INT64_MAX/16 (hex) or INT64_MAX/10, else writes its low byte and stops
    "huge_references": (b"<html>&#x7fffffffffffffffff; &#9223372036854775851; "
                        b"&#x0fffffffffffffff1; &#922337203685477580; &#x123456789abcdef01;"
                        b" <a title=\"&#99999999999999999999;\">t</a></html>"),
    "attributes": (b"<html><input disabled name = x value='a b'><a href=x title=\"T t\">q</a>"
                   b"<p a=b\"c d=e'f>z</p><img src=><a href=''>e</a></html>"),
    "data_uri": (b"<html><img src=\"data:text/plain;base64,SGVsbG8=\" alt=x>"
                 b"<a href=data:,Hi%20there>l</a></html>"),
    "controls": b"<html>a\x01b\x7fc\td\x0be\x0cf\rg\x00h</html>",
    "long": b"<html><body>" + b"<p>word " * 3000 + b"\r\n</body>\n\x00\x00tail</html>",
    "long_tags": (b"<html><a href=\"" + b"L" * 1100 + b"\">x</a><p " + b"n" * 1100
                  + b"=1>y</p>&" + b"e" * 1100 + b";</html>"),
    # A style sheet's end tag read across ClamAV's 8 KiB chunks: clamscan stops there.
    "style_end_across_chunks": (b"<html><style>" + b"a" * (8191 - 13 - 8) + b"</style "
                                + b">after <b>more</b></html>"),
    "style_end_in_next_chunk": (b"<html><style>" + b"a b " * 2045 + b"c</style>x</html>"),
}


@needs_clamscan
def test_copies_are_byte_identical(tmp_path: Path) -> None:
    names = list(SAMPLES)
    clam = clamscan_copies([SAMPLES[n] for n in names], tmp_path)
    for name, copies in zip(names, clam, strict=True):
        assert set(copies) >= {"nocomment.html", "notags.html"}, name
        ours = normalise(SAMPLES[name])
        assert ours == (copies["nocomment.html"], copies["notags.html"]), name


@needs_clamscan
@pytest.mark.parametrize(("sample", "word"), [("plain", b"hello"), ("mail", b"confirm"),
                                              ("utf8", b"caf"), ("entities", b"tag")])
def test_hashes_clamscan_prints_for_the_copies_are_ours(sample: str, word: bytes,
                                                        tmp_path: Path) -> None:
    """What an operator copies into an .fp: the MD5 and size of each normalised layer that
    `clamscan --debug` prints (`FP SIGNATURE:` lines, `Name: n/a`) when a signature matches it."""
    assert CLAMSCAN is not None
    (tmp_path / "a.ndb").write_text(f"Word:0:*:{word.hex()}\n")
    (tmp_path / "page.html").write_bytes(SAMPLES[sample])
    proc = subprocess.run([CLAMSCAN, "--debug", "--allmatch", "-d", str(tmp_path / "a.ndb"),
                           str(tmp_path / "page.html")], capture_output=True, text=True,
                          timeout=120)
    printed = re.findall(r"FP SIGNATURE: ([0-9a-f]{32}):(\d+):Word\S* +# Name: n/a",
                         proc.stderr + proc.stdout)
    ours = [(hashlib.md5(c).hexdigest(), str(len(c))) for c in normalise(SAMPLES[sample])]
    assert printed == ours


TOKENS = [
    b"<", b">", b"</", b"<!--", b"-->", b"<!", b"&", b"&amp;", b"&lt;", b"&#", b"&#x", b"&#65;",
    b"&#x41;", b"&#8364;", b"&nbsp;", b"&foo;", b"&AMP;", b";", b"x", b"X", b"Hello", b"WORLD",
    b" ", b"  ", b"\t", b"\n", b"\r\n", b"\r", b"\x00", b"\x01", b"\x7f", b"\xc3\xa9", b"\xe4",
    b"\xa1C", b"\xe3\x80\x82", b"\xf0\x9f\x98\x80", b"=", b'"', b"'", b"\\", b"a", b"href",
    b"img", b"<script>", b"</script>", b"<SCRIPT>", b"</script >", b"<a href=\"HTTP://E.x/?a&amp;b\">",
    b"<img src='Q.PNG'>", b"<p class=\"x y\">", b"</p>", b"data:", b"\"data:text/plain,QUJD\"",
    b"%41", b"%", b",", b"<b>", b"<br/>", b"style=\"color:red\"", b"<div id=a>", b"< p >",
    b"<A HREF=x>", b"<a href>", b"<img src=>", b" = ", b"<!DOCTYPE html>", b"<a b c=d e>",
    b"&#x110000;", b"&#12290;", b"&#99999999999999999999;", b"&#0x41;", b"\x0b", b"\x0c",
    b"<img src=data:,q%41&amp;b>", b"<td nowrap>", b"<input disabled name=x>", b"<b \r>",
    b"<style>", b"</style>", b"<STYLE type=text/css>", b"</style >", b"p { color: red }",
]


@needs_clamscan
def test_random_documents_are_byte_identical(tmp_path: Path) -> None:
    """Seeded token soup; a few long ones cross ClamAV's 8 KiB read chunks."""
    rng = random.Random(20261204)
    docs = [b"<html>" + b"".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 80)))
            for _ in range(250)]
    docs += [b"<html>" + b"".join(rng.choice([*TOKENS, b"a" * 900, b" " * 40])
                                  for _ in range(rng.randint(300, 1500))) for _ in range(8)]
    clam = clamscan_copies(docs, tmp_path)
    compared = 0
    for doc, copies in zip(docs, clam, strict=True):
        if "nocomment.html" not in copies:
            continue
        compared += 1
        assert normalise(doc) == (copies["nocomment.html"], copies["notags.html"]), doc[:200]
    assert compared > 200


def measure_entities(names: set[str], work: Path) -> dict[str, bytes]:
    """What clamscan writes for `&name;`, for each name it decodes (how `_htmlentities` was
    made, from every HTML5 name and every identifier-like string in libclamav)."""
    ordered = sorted(n for n in names if re.fullmatch(r"[A-Za-z0-9_:-]+", n))
    doc = b"<html>" + b"".join(b"<p>k%d=&%s;=</p>" % (i, n.encode())
                               for i, n in enumerate(ordered)) + b"</html>"
    nocomment = clamscan_copies([doc], work)[0]["nocomment.html"]
    found = {}
    for m in re.finditer(rb"<p>k(\d+)=(.{0,12}?)=</p>", nocomment, re.S):
        name = ordered[int(m.group(1))]
        if m.group(2) != b"&" + name.lower().encode() + b";":
            found[name] = m.group(2)
    return found


@needs_clamscan
def test_entity_table_is_clamscans(tmp_path: Path) -> None:
    candidates = {n.rstrip(";") for n in html.entities.html5} | {n.decode() for n in ENTITIES}
    measured = measure_entities(candidates, tmp_path)
    ours = {name: normalise(b"<html>&" + name.encode() + b";</html>")[0][6:-7]
            for name in candidates if re.fullmatch(r"[A-Za-z0-9_:-]+", name)}
    assert {n: v for n, v in ours.items() if v != b"&" + n.lower().encode() + b";"} == measured


# -- verdicts ----------------------------------------------------------------------------------


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def _page(tag: str, body: str = "<p>Hello EVIL   World</p>") -> bytes:
    return f"<html><body>\n{body}\n<p>case {tag}</p></body></html>\n".encode()


def _names(report_names: tuple[str, ...]) -> set[str]:
    return set(report_names)


@needs_clamscan
@pytest.mark.parametrize("allmatch", [True, False])
def test_allow_list_and_hashes_of_the_copies_agree(tmp_path: Path, allmatch: bool) -> None:
    """Every case in one database: the .fp/.sfp/.hdb lines use clamscan's copies' hashes
    (which must also be ours)."""
    pages = {t: _page(t) for t in "abcdefg"}
    pages["h"] = _page("h", "<p>nothing to see</p>")
    pages["i"] = _page("i", "<p>ev&#105;l world</p>")  # only nocomment decodes it
    pages["j"] = _page("j", "<p>ev&#105;l world</p>")
    pages["k"] = _page("k", '<a href="HTTP://EVIL.EXAMPLE/">x</a>')  # href only in notags
    pages["l"] = _page("l", '<a href="HTTP://EVIL.EXAMPLE/">x</a>')
    # Target 0 also matches our rendered-text child of the HTML (a view clamscan does not
    # have): with the copies listed we must not walk into it either.
    pages["m"] = _page("m", "<p>Visible  Phrase</p>")
    pages["n"] = _page("n", "<p>Visible  Phrase</p>")
    names = sorted(pages)
    clam_copies = dict(zip(names, clamscan_copies([pages[n] for n in names], tmp_path / "c"),
                           strict=True))
    for n in names:
        copies = clam_copies[n]
        assert normalise(pages[n]) == (copies["nocomment.html"], copies["notags.html"]), n
    noc = {n: c["nocomment.html"] for n, c in clam_copies.items()}
    tags = {n: c["notags.html"] for n, c in clam_copies.items()}

    def fp(b: bytes, name: str, delta: int = 0) -> str:
        return f"{_md5(b)}:{len(b) + delta}:{name}"

    def sfp(b: bytes, name: str) -> str:
        return f"{hashlib.sha256(b).hexdigest()}:{len(b)}:{name}"

    db = tmp_path / "db"
    db.mkdir()
    (db / "a.ndb").write_text(f"Html.Evil:3:*:{b'evil world'.hex()}\n"
                              f"Html.Href:0:*:{b'EVIL.EXAMPLE'.hex()}\n"
                              f"Html.Text:0:*:{b'visible phrase'.hex()}\n")
    (db / "b.fp").write_text("\n".join([
        fp(noc["b"], "Fp.NoComment.Only"),
        fp(tags["c"], "Fp.NoTags.Only"),
        fp(noc["d"], "Fp.Both.1"), fp(tags["d"], "Fp.Both.2"),
        fp(pages["f"], "Fp.Raw"),
        fp(noc["g"], "Fp.WrongSize.1", 1), fp(tags["g"], "Fp.WrongSize.2"),
        fp(noc["i"], "Fp.Decoded"),
        fp(tags["k"], "Fp.Href"),
        fp(noc["m"], "Fp.Text.1"), fp(tags["m"], "Fp.Text.2"),
    ]) + "\n")
    (db / "c.sfp").write_text(f"{sfp(noc['e'], 'Sfp.1')}\n{sfp(tags['e'], 'Sfp.2')}\n")
    (db / "d.hdb").write_text(f"{fp(noc['h'], 'Hash.NoComment')}\n"
                              f"{fp(tags['h'], 'Hash.NoTags')}\n")
    samples = tmp_path / "samples"
    samples.mkdir()
    for n in names:
        (samples / n).write_bytes(pages[n])
    assert CLAMSCAN is not None
    proc = subprocess.run([CLAMSCAN, "--no-summary", *(["--allmatch"] if allmatch else []),
                           "-d", str(db), "-r", str(samples)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    clam: dict[str, set[str]] = {n: set() for n in names}
    for line in proc.stdout.splitlines():
        path, _, verdict = line.rpartition(": ")
        if verdict.endswith(" FOUND"):
            clam[Path(path).name].add(verdict[: -len(" FOUND")].removesuffix(".UNOFFICIAL"))
    expect = {
        "a": {"Html.Evil"}, "b": {"Html.Evil"}, "c": {"Html.Evil"}, "d": set(), "e": set(),
        "f": set(), "g": {"Html.Evil"},
        "h": {"Hash.NoComment", "Hash.NoTags"} if allmatch else {"Hash.NoComment"},
        "i": set(), "j": {"Html.Evil"}, "k": set(), "l": {"Html.Href"},
        "m": set(), "n": {"Html.Text"},
    }
    assert clam == expect
    engine = Engine(load_database([db], strict=True, use_cache=False), allmatch=allmatch)
    ours = {n: _names(engine.scan_bytes(pages[n], n).names) for n in names}
    # Where no copy is allow-listed we also match the HTML's own bytes (clamscan never does):
    # the href signature matches page l's bytes too; the verdicts stay the same.
    assert ours == expect
