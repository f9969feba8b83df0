"""ClamAV's normalised HTML copies (zerohour.scan.htmlnorm) and how the engine matches them,
without clamscan: the expected bytes below are clamscan 1.4.6's own `--leave-temps` copies
(tests/conformance/test_clamscan_htmlnorm.py compares with clamscan itself)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from zerohour.scan import Engine, load_database
from zerohour.scan.htmlnorm import CHUNK, chunks, normalise
from zerohour.scan.limits import Limits

#: input -> (nocomment.html, notags.html), as clamscan 1.4.6 wrote them.
CLAMSCAN_COPIES = {
    b"<html><body>\n<p>Hello EVIL   World</p>\n</body></html>\n":
        (b"<html><body><p>hello evil world</p></body></html>", b" hello evil world "),
    b"<html><body>AT&amp;T &lt;x&gt; &#65;&#x42;&#67x &foo; &#;</body></html>":
        (b"<html><body>at&t <x> abCx &foo; \x00</body></html>", b" at t x x "),
    b"<html>a\rb\nc\td</html>": (b"<html>ab c d</html>", b" ab c d "),
    b'<html><a href="HTTP://X.Y/Z">Click</a><img SRC=Q.png></html>':
        (b'<html><a href="http://x.y/z">click</a><img src=q.png></html>',
         b" HTTP://X.Y/Z click Q.png "),
    b'<html><p class="a b" id=x>q</p><!-- comment <b>x</b> -->t</html>':
        (b'<html><p class="a b" id=x>q</p>x</b>-->t</html>', b" q x -->t "),
    b"<html>caf\xc3\xa9 \xe4 x</html>":
        (b"<html>caf\xc3\xa9 \xe4 x</html>", b" caf\xc3\xc3 \x00x "),
    b"<html><style>a</script>b<script>c d</style>e f</script>g h</html>":
        (b"<html><style>a</script>b<script>cd</style>ef</script>g h</html>", b" b g h "),
    b"<html><STYLE type=x>a b</STYLE >c d</html>":
        (b"<html><style type=x>ab</style>c d</html>", b" >c d "),
}


@pytest.mark.parametrize("html", list(CLAMSCAN_COPIES))
def test_copies_are_clamscans(html: bytes) -> None:
    assert normalise(html) == CLAMSCAN_COPIES[html]


def test_style_end_tag_across_chunks_stops_the_copies() -> None:
    """clamscan 1.4.6 gives up when `</style` began in an earlier 8 KiB chunk."""
    head = b"<html><style>" + b"a" * (CHUNK - 13 - 8)
    nocomment, notags = normalise(head + b"</style>" + b"X <b>more</b></html>")
    assert nocomment == head + b"</style>"
    assert notags == b" "
    whole = normalise(b"<html><style>aaa</style>X <b>more</b></html>")
    assert whole == (b"<html><style>aaa</style>x <b>more</b></html>", b" x more ")


def test_chunks_are_cut_as_cli_readchunk_cuts() -> None:
    word = b"x" * (CHUNK + 5)
    assert [len(c) for c in chunks(word)] == [CHUNK, 5]  # no space: cut at the maximum
    text = b"ab " * 3000
    parts = chunks(text)
    assert b"".join(parts) == text
    assert all(p.endswith(b" ") for p in parts[:-1])  # cut back after the last space
    nul = b"a\x00" * 9000
    assert b"".join(chunks(nul)) == b"a" * 9000  # NULs dropped


def test_normalising_is_bounded_in_time() -> None:
    """Linear, at a few MB/s: 1 MB of tag-heavy HTML well under the scan-time limit."""
    unit = (b'<td style="color:#333" class=c>Hello <b>World</b> &amp; caf\xc3\xa9 '
            b'<a href="https://e.example/x?y=1&amp;z=2">link</a></td>\n')
    data = b"<html><table>" + unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    nocomment, _ = normalise(data)
    assert time.perf_counter() - started < 20
    assert nocomment.count(b"<td style=\"color:#333\" class=c>") == 1_000_000 // len(unit)


def _db(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "db"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text + "\n")
    return d


PAGE = b"<html><body>\n<p>Hello EVIL   World</p>\n</body></html>\n"
NOCOMMENT, NOTAGS = CLAMSCAN_COPIES[PAGE]
SIG = f"Html.Evil:3:*:{b'evil world'.hex()}"


def _fp(b: bytes, name: str) -> str:
    return f"{hashlib.md5(b).hexdigest()}:{len(b)}:{name}"


@pytest.mark.parametrize(("listed", "found"), [
    ((), ("Html.Evil",)),
    ((NOCOMMENT,), ("Html.Evil",)),  # still found in notags.html
    ((NOTAGS,), ("Html.Evil",)),
    ((NOCOMMENT, NOTAGS), ()),
    ((PAGE,), ()),
])
def test_allow_list_of_the_copies(tmp_path: Path, listed: tuple[bytes, ...],
                                  found: tuple[str, ...]) -> None:
    files = {"a.ndb": SIG}
    if listed:
        files["b.fp"] = "\n".join(_fp(b, f"Fp.{i}") for i, b in enumerate(listed))
    engine = Engine(load_database([_db(tmp_path, files)], use_cache=False), allmatch=True)
    assert engine.scan_bytes(PAGE).names == found


def test_copy_on_the_allow_list_stops_our_raw_pass(tmp_path: Path) -> None:
    """`EVIL   World` is only in the HTML's own bytes, which clamscan never matches: we do,
    unless a copy is allow-listed (then this layer is matched as clamscan matches it)."""
    raw_sig = f"Raw.Only:0:*:{b'EVIL   World'.hex()}"
    alone = Engine(load_database([_db(tmp_path / "1", {"a.ndb": raw_sig})], use_cache=False))
    assert alone.scan_bytes(PAGE).names == ("Raw.Only",)
    listed = Engine(load_database([_db(tmp_path / "2", {"a.ndb": raw_sig,
                                                        "b.fp": _fp(NOTAGS, "Fp")})],
                                  use_cache=False))
    assert listed.scan_bytes(PAGE).names == ()
    # Nor into our rendered-text child (a target-0 signature matches its normalised text).
    text_sig = f"Text.Any:0:*:{b'hello evil world'.hex()}"
    both = "\n".join([_fp(NOCOMMENT, "A"), _fp(NOTAGS, "B")])
    viewed = Engine(load_database([_db(tmp_path / "3", {"a.ndb": text_sig, "b.fp": both})],
                                  use_cache=False))
    assert viewed.scan_bytes(PAGE).names == ()
    unlisted = Engine(load_database([_db(tmp_path / "4", {"a.ndb": text_sig})],
                                    use_cache=False))
    assert unlisted.scan_bytes(PAGE).names == ("Text.Any",)


def test_hash_signature_of_a_copy_and_copy_geometry(tmp_path: Path) -> None:
    d = _db(tmp_path, {
        "a.hdb": _fp(NOTAGS, "Hash.NoTags"),
        "b.ldb": f"L.Size;Engine:81-255,Target:3,FileSize:{len(NOCOMMENT)}-{len(NOCOMMENT)};"
                 f"0;{b'evil world'.hex()}",
    })
    engine = Engine(load_database([d], use_cache=False), allmatch=True)
    assert set(engine.scan_bytes(PAGE).names) == {"Hash.NoTags", "L.Size"}


def test_html_over_the_normalise_limit_gets_the_text_normalisation(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": SIG, "b.fp": "\n".join([_fp(NOCOMMENT, "A"), _fp(NOTAGS, "B")])})
    db = load_database([d], use_cache=False)
    assert Engine(db).scan_bytes(PAGE).names == ()
    small = Limits(max_html_normalize=len(PAGE) - 1)
    assert Engine(db, limits=small).scan_bytes(PAGE).names == ("Html.Evil",)


def test_out_of_time_while_normalising_is_a_limit_finding(tmp_path: Path) -> None:
    """The normaliser checks the scan's clock for each chunk: past it, the layer gets
    `Heuristics.Limits.Exceeded.MaxScanTime` (fail closed) and the raw passes still run."""
    db = load_database([_db(tmp_path, {"a.ndb": SIG})], use_cache=False)
    page = b"<html><body>" + b"<p>Hello EVIL   World</p>\n" * 2000 + b"</body></html>"
    late = Limits(max_scan_time=0.0)
    assert Engine(db, limits=late).scan_bytes(page).names == (
        "Heuristics.Limits.Exceeded.MaxScanTime",)
    names = Engine(db, limits=late, allmatch=True).scan_bytes(page).names
    assert "Heuristics.Limits.Exceeded.MaxScanTime" in names
