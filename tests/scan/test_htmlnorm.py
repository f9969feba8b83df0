"""ClamAV's normalised HTML copies (zerohour.scan.htmlnorm), without clamscan: the expected
bytes below are clamscan 1.4.6's own `--leave-temps` copies
(tests/conformance/test_clamscan_htmlnorm.py compares with clamscan itself)."""

from __future__ import annotations

import time

import pytest

from zerohour.scan.htmlnorm import CHUNK, chunks, normalise

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
