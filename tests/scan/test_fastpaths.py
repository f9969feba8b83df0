"""Fast paths added for throughput must give exactly what the general code gives.

Each fast path skips work only when a cheap check proves the slow path's answer; these tests
compare both on generated inputs, so that a fast path can never drop an interpretation.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.scan import (
    counterstyles,
    cssvalues,
    filetype,
    htmllayout,
    htmlprint,
    htmltables,
    htmlunhidden,
    mime,
    svgtext,
    textcarriers,
    textual,
)
from zerohour.scan.documents import pdf
from zerohour.scan.types import FileType

_PARAM_CHARS = st.text(alphabet='ab;"()\\= \t', max_size=40)


def _unquote_scan(raw: str) -> str:
    """The character-by-character unquoting the fast path replaces."""
    if not raw.startswith('"'):
        return raw
    out: list[str] = []
    esc = False
    for ch in raw[1:]:
        if esc:
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == '"':
            break
        else:
            out.append(ch)
    return "".join(out)


@given(_PARAM_CHARS)
def test_split_params_fast_path_equals_character_scan(value: str) -> None:
    assert mime._split_params(value) == mime._split_params_scan(value)


def test_split_params_keeps_semicolons_inside_quotes() -> None:
    assert mime._split_params('multipart/mixed; boundary="a;b"; x=1') == [
        "multipart/mixed", ' boundary="a;b"', " x=1"]
    assert mime._split_params('a; b="unclosed; c') == ["a", ' b="unclosed; c']


@given(_PARAM_CHARS)
def test_unquote_fast_path_equals_character_scan(raw: str) -> None:
    assert mime._unquote(raw) == _unquote_scan(raw)
    assert mime._unquote('"' + raw) == _unquote_scan('"' + raw)


def test_prefilters_cover_every_marker() -> None:
    """A marker the prefilter cannot see would silently stop being detected."""
    for m in filetype._SCRIPT_STRONG:
        assert any(p in m for p in filetype._SCRIPT_PREFILTER), m
    for m in filetype._MIME_MARKERS:
        assert b"ontent-" in m or b"ONTENT-" in m, m


def test_script_markers_still_detected_after_prefilter() -> None:
    for m in filetype._SCRIPT_STRONG:
        text = b"Some plain words first.\n" + m.upper() + b" and more\n"
        assert filetype.detect(text) is FileType.SCRIPT, m
    assert filetype.detect(b"Just a note (with parens) about shells.\n") is FileType.TEXT
    for m in filetype._MIME_MARKERS:
        assert filetype.has_mime_markers(b"x\n" + m + b" text/plain\n"), m
    assert not filetype.has_mime_markers(b"plain text with no headers\n")


def test_data_uri_found_in_any_case_of_base64() -> None:
    """Browsers take `;Base64,` like `;base64,`: the prefilter must not skip mixed case."""
    import base64

    from zerohour.scan import encodings

    payload = b"MZ" + bytes(range(256)) * 2
    b64 = base64.b64encode(payload)
    for marker in (b"base64", b"BASE64", b"Base64", b"bAsE64"):
        html = b'<a href="data:application/octet-stream;' + marker + b"," + b64 + b'">x</a>'
        found = [e.data for e in encodings.smuggled_blobs(html)]
        assert found == [payload], marker


@given(st.binary(max_size=300), st.text(alphabet="ABCXYZabcxyz0189+/", max_size=40))
def test_base64_decoder_equals_binascii(raw: bytes, letters: str) -> None:
    """The SIMD decoder gives binascii's result on every cleaned input (also non-canonical
    trailing bits and lengths that are not a multiple of 4)."""
    import binascii

    from zerohour.scan import encodings

    for text in (binascii.b2a_base64(raw, newline=False), letters.encode()):
        clean = text.translate(None, encodings._B64_JUNK)
        rem = len(clean) % 4
        ref = clean[:-1] if rem == 1 else clean + b"=" * ((4 - rem) % 4)
        assert encodings._b64_clean(clean) == (binascii.a2b_base64(ref) if ref else b"")
    assert encodings.base64_decode(binascii.b2a_base64(raw)) == raw


@given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"xy"]), max_size=30))
def test_dialects_equal_counting_definition(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    crlf = data.count(b"\r\n")
    want = [mime._LF]
    if data.count(b"\r") > crlf:
        want.append(mime._ANY)
    if crlf and data.count(b"\n") > crlf:
        want.append(mime._CRLF)
    assert mime.dialects_for(data) == tuple(want)


_BOUNDARY_PIECES = st.lists(
    st.sampled_from(["boundary", "BOUNDARY", "Bound", "ary", "*0*", "*1", "*", "=", '"', "'",
                     ";", " ", "x", "multipart/mixed", "(c)", "%41"]),
    max_size=12,
).map("".join)


@given(st.lists(_BOUNDARY_PIECES, max_size=3))
def test_boundary_prefilter_equals_full_parse(values: list[str]) -> None:
    assert mime._boundary_candidates(values) == list(
        mime._boundary_candidates_uncached(tuple(values)))


def test_boundary_found_in_any_case_and_rfc2231_form() -> None:
    assert mime._boundary_candidates(['multipart/mixed; BOUNDARY="XyZ"'])[0] == b"XyZ"
    assert b"abc" in mime._boundary_candidates(["multipart/mixed; boundary*0*=''abc"])
    assert mime._boundary_candidates(["text/plain; charset=utf-8"]) == []


def _base64_variants_reference(data: bytes) -> list[bytes]:
    """`base64_variants` as it was before the padding count moved to the tail (and the
    end-aligned reading of a one-line run, session 26)."""
    from zerohour.scan import encodings as e

    clean = data.translate(None, e._B64_JUNK)
    out = [e._b64_clean(clean)]
    pads = data.count(b"=")
    if pads and b"=" in data.rstrip(b"= \t\r\n"):
        kept = data.translate(None, e._B64_JUNK_KEEP_PAD).rstrip(b"=")
        chunks = e._PAD_RUN.split(kept)
        chunked = b"".join(e._b64_clean(c) for c in chunks if c)
        if chunked not in out:
            out.append(chunked)
        head = e._b64_clean(chunks[0]) if chunks else b""  # (round 20: where b64decode stops)
        if head and head not in out:
            out.append(head)
    if b"-" in data or b"_" in data:
        url = e.base64_decode(e._B64URL.sub(lambda m: b"+" if m.group() == b"-" else b"/", data))
        if url not in out:
            out.append(url)
    shift = (len(clean) + pads) % 4
    if shift and b"=" not in data.rstrip(b"= \t\r\n") and b"\n" not in data:
        aligned = e._b64_clean(clean[shift:])
        if aligned and aligned not in out:
            out.append(aligned)
    if (len(clean) + pads) % 4 or data.translate(None, e._B64_CLEAN_BODY):
        lines = b"".join(ln for ln in e._B64_LINE.findall(data) if len(ln) % 4 == 0)
        if lines:
            linewise = e._b64_clean(lines.replace(b"=", b""))
            if linewise not in out:
                out.append(linewise)
    return out


@given(st.lists(st.sampled_from([b"QUJD", b"RA", b"=", b"==", b"\r\n", b"\n", b" ", b"\t",
                                 b"-", b"_", b"!", b"Hello", b"x"]), max_size=25))
def test_base64_variants_equal_reference(pieces: list[bytes]) -> None:
    from zerohour.scan import encodings

    data = b"".join(pieces)
    assert encodings.base64_variants(data) == _base64_variants_reference(data)


# -- patterns searched for from a literal instead of tried at every byte (issue 11) ----------

_QP_REFERENCE = re.compile(rb"(?m)^[^\n]*(?:=[0-9A-Fa-f]{2}){2}[^\n]*(?:\n[^\n]*(?:=[0-9A-Fa-f]"
                           rb"{2}|=\r?$)[^\n]*)*")
_QP_PIECES = st.lists(st.sampled_from([b"=", b"A", b"4", b"f", b"\n", b"\r", b" ", b"x",
                                       b"=4D", b"=5A", b"=\r\n"]), max_size=40).map(b"".join)


@given(_QP_PIECES)
def test_quoted_printable_runs_equal_the_line_regex(text: bytes) -> None:
    assert list(textcarriers._qp_runs(text)) == [m.group() for m in _QP_REFERENCE.finditer(text)]


_RULE_PIECES = st.lists(st.sampled_from([b"{", b"}", b"@", b";", b"a", b" ", b"b"]),
                        max_size=30).map(b"".join)


@given(_RULE_PIECES)
def test_css_rules_found_from_a_boundary_equal_the_unanchored_regex(sheet: bytes) -> None:
    """The rule patterns only start after a brace (or `@`/`;`): the unanchored ones tried
    every byte of a brace-free stretch up to its end (quadratic: 40 KB ran 6.7 s)."""
    for ours, reference in ((htmlunhidden._RULE, rb"([^{}]*)\{([^{}]*)\}"),
                            (htmltables._RULE, rb"([^{}]*)\{([^{}]*)\}"),
                            (htmlprint._RULE, rb"([^{}@;]+)\{([^{}]*)\}")):
        assert [m.span() for m in ours.finditer(sheet)] == [
            m.span() for m in re.finditer(reference, sheet)]


@given(st.lists(st.sampled_from([b"(", b")", b",", b"a", b" "]), max_size=25).map(b"".join))
def test_selector_list_split_equals_the_lookahead_regex(text: bytes) -> None:
    reference = re.split(rb",(?![^()]*\))", text)  # (every selector: no cut)
    assert textual._selectors(text) == reference


_TOKEN_PIECES = st.lists(st.sampled_from([b"<", b">", b"a", b" ", b"\n", b"<b>", b"x" * 90]),
                         max_size=12).map(b"".join)


@given(_TOKEN_PIECES)
def test_long_text_token_equals_the_regex_definition(page: bytes) -> None:
    reference = any(re.search(rb"[^\s<>]{200}", m.group())
                    for m in re.finditer(rb"(?:^|>)[^<]{200,}", page))
    assert textual.long_text_token(page) == reference


_LINE_PIECES = st.lists(st.sampled_from([b"\n", b"\r\n", b" ", b"\t", b"A", b"#", b"Q" * 9,
                                         b"Zm9v" * 3]), max_size=30).map(b"".join)


@given(_LINE_PIECES)
def test_junked_token_lines_equal_the_line_regex(text: bytes) -> None:
    """Lines of one token of 16+ (and a last short one), LF or CRLF, as a `(?m)^` regex
    finds them."""
    line = rb"^[ \t]*[^\s]{16,}[ \t\r]*(?:\n|\Z)"
    reference = re.compile(rb"(?m)(?:" + line + rb")+(?:^[ \t]*[^\s]{1,15}[ \t\r]*(?=\n|\Z))?")
    ours = [m.group().translate(None, b" \t\r\n")
            for m in textcarriers._TOKEN_LINES.finditer(b"\n" + text)]
    assert ours == [m.group().translate(None, b" \t\r\n") for m in reference.finditer(text)]


# -- patterns made linear against hostile input (round 2 of the CPU hunt) --------------------

_CSS_PIECES = st.lists(st.sampled_from([b"a", b"-", b"--", b":", b" ", b";", b"0", b".", b"px",
                                        b"(", b")", b"x", b"=", b'"', b"'", b"/"]),
                       max_size=24).map(b"".join)


@given(_CSS_PIECES)
def test_names_read_from_their_start_equal_the_unanchored_patterns(text: bytes) -> None:
    """A name run read once from its first byte finds what the old patterns found (a suffix
    of a name never matched where the whole name did not, except after a `\\w` for `--`)."""
    pairs = [(htmllayout._DECL, rb"([\w-]+)\s*:\s*([^;]*)"),
             (counterstyles._DESCRIPTOR,
              rb"([\w-]+)\s*:\s*((?:[^;\"']|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')*)"),
             (svgtext._ATTR, rb"""([^\s=/>"']+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")]
    for ours, old in pairs:
        assert [m.groups() for m in ours.finditer(text)] == [
            m.groups() for m in re.finditer(old, text, ours.flags & re.S)], old
    assert [m.groups() for m in cssvalues._TRANSFORM_FUNCTION.finditer(text)] == [
        m.groups() for m in re.finditer(
            rb"([a-z0-9]+)\(([^()]*(?:\([^()]*\)[^()]*)*)\)", text, re.I)]


@given(_CSS_PIECES)
def test_possessive_numbers_equal_the_backtracking_ones(text: bytes) -> None:
    assert [m.groups() for m in cssvalues._SIMPLE.finditer(text)] == [
        m.groups() for m in re.finditer(rb"([-+]?(?:\d+\.?\d*|\.\d+))([a-z%]*)$", text)]
    old = (rb"(?:^|\s)((?:[-+]?(?:\d+\.?\d*|\.\d+)[a-z%]*|(?:xx?x?-)?(?:small|large)|"
           rb"medium|smaller|larger))\s*(?:/\s*[^\s]+\s*)?\s(?=\S)")
    assert [m.groups() for m in cssvalues._FONT_SIZE.finditer(text)] == [
        m.groups() for m in re.finditer(old, text, re.I)]


@given(st.lists(st.sampled_from([b"begin", b"end", b"beginbfchar", b"endbfchar", b" <41> ",
                                 b"x"]), max_size=16).map(b"".join))
def test_cmap_blocks_equal_the_lazy_regex(cmap: bytes) -> None:
    assert list(pdf._blocks(cmap, b"beginbfchar", b"endbfchar")) == [
        m.group(1) for m in re.finditer(rb"beginbfchar(.*?)endbfchar", cmap, re.S)]


@given(st.integers(0, 40), st.sampled_from([b"1px", b"1px [a] 2px", b"[a b] 1px [c]",
                                            b"[a] 1px [a]", b"repeat(2, 1px [n])"]))
def test_a_repeat_read_once_equals_reading_it_each_time(times: int, inner: bytes) -> None:
    value = b"[s] repeat(%d, %s) 3px" % (times, inner)
    count, names = cssvalues.tracks(value, 16.0, 800.0)
    # the reference: the repetition written out
    written = b"[s] " + b" ".join([inner] * times) + b" 3px"
    assert (count, names) == cssvalues.tracks(written, 16.0, 800.0)


#: the backtracking regex `_escape_runs` replaced (exponential on short runs of `\\ddd`)
_ESCAPE_RUN = re.compile(rb"(?:\\(?:[0-7]{1,4}|x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}"
                         rb"|U[0-9A-Fa-f]{1,8})|%u[0-9A-Fa-f]{4}|&#(?:[xX][0-9A-Fa-f]{1,6}"
                         rb"|[0-9]{1,7});?|[!-\[\]-~]){32,}")


@given(st.lists(st.sampled_from([b"\\", b"1", b"7", b"8", b"x", b"u", b"U", b"a", b"F", b"%",
                                 b"&#", b";", b" ", b"\\12", b"\\x4", b"%u12ab"]),
                max_size=30).map(b"".join))
def test_escape_runs_equal_the_backtracking_regex(text: bytes) -> None:
    assert [m.span() for m in textcarriers._escape_runs(text)] == [
        m.span() for m in _ESCAPE_RUN.finditer(text)]


@given(st.lists(st.sampled_from([b" ", b"\t", b"\\", b"+", b",", b";", b'"', b"'", b">", b")",
                                 b"]", b"}", b"|", b"a"]), max_size=12).map(b"".join),
       st.integers(0, 12))
def test_base64_line_suffix_equals_the_regex(line: bytes, start: int) -> None:
    start = min(start, len(line))
    assert textcarriers._suffix_start(line, start) == textcarriers._SUFFIX.search(
        line, start).start()  # type: ignore[union-attr]


_UNIVERSAL_SUBJECT = re.compile(rb"(\s*>\s*|\s+)\*$")  # what `_universal_subject` replaced


@settings(max_examples=500)
@given(st.lists(st.sampled_from([b" ", b"\t", b">", b"*", b"a", b".b", b"\n"]), max_size=12)
       .map(b"".join))
def test_universal_subject_equals_the_regex(selector: bytes) -> None:
    selector = selector.strip()  # (as `_compound` has it)
    m = _UNIVERSAL_SUBJECT.search(selector)
    assert textual._universal_subject(selector) == (None if m is None else m.start())


# -- round 21: many hiding rules (60,000 in a 2 MB sheet took 69 s) ---------------------------

_WORDS = st.sampled_from([b"a", b"b", b"hid", b"hide", b"c1", b"c12", b"x-y", b"<p", b"<div",
                          b"display", b"id", b"k"])
_TAGS = st.sampled_from([b"<p class=a>", b"<div class='hide c1'>", b"<p id=k>", b"</p>",
                         b"text c12 ", b"<span style='display:none'>", b"<x-y b>", b"<!--a-->",
                         b"<b class=\"x-y hid\">", b"<div>", b">", b" hide "])


@settings(max_examples=300, deadline=None)
@given(st.lists(_TAGS, max_size=40), st.sets(_WORDS, min_size=1))
def test_tags_with_many_words_finds_what_each_search_finds(
        pieces: list[bytes], words: set[bytes]) -> None:
    data = b"".join(pieces)
    lower = data.lower()
    few = textual._FEW_WORDS
    try:
        textual._FEW_WORDS = 10**9
        one_by_one = textual._tags_with(data, lower, words)
    finally:
        textual._FEW_WORDS = few
    assert textual._tags_with_many(lower, words) == one_by_one


_SELECTORS = st.sampled_from([b".a", b".hide", b"#k", b"p", b"div.c1", b"p.a.b", b"span",
                              b"[hidden]", b"*", b".A", b"#K", b"div:not(.x)", b"b.x-y",
                              b"p:nth-child(2)", b".c1"])
_ELEMENTS = st.sampled_from([(b"p", b" class=a"), (b"div", b" class='hide c1'"),
                             (b"p", b" id=k"), (b"span", b""), (b"b", b' class="x-y hid"'),
                             (b"div", b" class=C1 hidden"), (b"p", b" class='a b'"),
                             (b"i", b" id=K")])


@settings(max_examples=200, deadline=None)
@given(st.lists(_SELECTORS, min_size=1, max_size=40), _ELEMENTS)
def test_the_rules_an_element_may_match_decide_as_all_rules_do(
        selectors: list[bytes], element: tuple[bytes, bytes]) -> None:
    sheet = b"".join(s + b"{display:%s}" % (b"none" if i % 3 else b"inline")
                     for i, s in enumerate(selectors))
    whole = textual._hidden_compounds(b"<style>" + sheet + b"</style><p>x</p>")
    tag, attrs = element
    few = textual._FEW_COMPOUNDS
    try:
        textual._FEW_COMPOUNDS = 0  # (the index, whatever the count)
        relevant = textual._relevant(whole, tag, attrs)
    finally:
        textual._FEW_COMPOUNDS = few
    assert textual._hides(tag, attrs, relevant) == textual._hides(tag, attrs, whole)


@settings(max_examples=100, deadline=None)
@given(st.lists(_SELECTORS, min_size=1, max_size=30), st.lists(_ELEMENTS, min_size=1,
                                                               max_size=8))
def test_text_transform_decided_by_the_rules_an_element_may_match(
        selectors: list[bytes], elements: list[tuple[bytes, bytes]]) -> None:
    """`html_transformed` with the keyed rules (any count) gives what all rules give."""
    sheet = b"".join(s + b"{text-transform:%s}" % (b"uppercase", b"lowercase", b"none")[i % 3]
                     for i, s in enumerate(selectors))
    page = (b"<style>" + sheet + b"</style>" + b"".join(
        b"<%s%s>Word %d</%s>" % (t, a, i, t) for i, (t, a) in enumerate(elements)))
    few = textual._FEW_COMPOUNDS
    try:
        textual._FEW_COMPOUNDS = 10**9
        everything = textual.html_transformed(page)
        textual._FEW_COMPOUNDS = 0
        keyed = textual.html_transformed(page)
    finally:
        textual._FEW_COMPOUNDS = few
    assert keyed == everything
