"""`zerohour.scan.htmlnorm` against its slow reference (`_htmlnorm_reference`, the module as
it was before its fast paths): both copies byte-identical, and the scan clock checked once per
chunk, for generated documents and for every HTML input of the other HTML tests.

The generated documents mix the shapes the fast paths take (plain text runs, simple tags,
`<!-- -->` comments, character references) with everything that must fall back to the exact
state machine: unquoted and oddly quoted values, broken references, `data:` URIs, `\\r`, NULs,
8-bit and UTF-8 bytes, script and style bodies, buffers past their 1024-byte bound, and long
documents whose 8191-byte chunk boundaries fall inside tags, references and comments.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from _htmlnorm_reference import normalise as reference_normalise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerohour.scan.htmlnorm import CHUNK, chunks, normalise

TESTS = Path(__file__).resolve().parents[1]


def _counting() -> tuple[list[int], Callable[[], None]]:
    calls = [0]

    def check() -> None:
        calls[0] += 1

    return calls, check


def assert_same(doc: bytes) -> None:
    new_calls, new_check = _counting()
    old_calls, old_check = _counting()
    new = normalise(doc, new_check)
    old = reference_normalise(doc, old_check)
    assert new[0] == old[0], ("nocomment", doc[:300])
    assert new[1] == old[1], ("notags", doc[:300])
    assert new_calls == old_calls, ("clock checks", doc[:300])


# -- generated documents ---------------------------------------------------------------------

_WS = st.sampled_from([b" ", b"  ", b"\t", b"\n", b"\r\n", b"\r", b"\x0b", b"\x0c", b" \r ",
                       b"\n\n\t  ", b" " * 40])
_UPPER_LOWER = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WORD_BYTES = _UPPER_LOWER + b"0123456789.,:;!?-_/()[]{}#$%*+=@^`|~'\"\\"
_word = st.binary(min_size=1, max_size=12).map(
    lambda b: bytes(_WORD_BYTES[x % len(_WORD_BYTES)] for x in b))
_high = st.one_of(
    st.binary(min_size=1, max_size=7).map(lambda b: bytes(x | 0x80 for x in b)),
    st.text(min_size=1, max_size=4).map(lambda s: s.encode()),
    st.sampled_from([b"\xc3\xa9", b"\xe4", b"\xa1C", b"\xa1D", b"\xa1O", b"\xa1x", b"\xa1",
                     b"\xe3\x80\x82", b"\xef\xbc\x8e", b"\xef\xb9\x92", b"\xf0\x9f\x98\x80",
                     b"\xe3\x80\x82\xe3\x80", b"\xc3\xa9\r", b"\xe4\x00\xe4"]),
)
_control = st.sampled_from([b"\x00", b"\x01", b"\x7f", b"\x00\x00", b"\x1b", b"\x08"])
_entity_name = st.one_of(
    st.sampled_from([b"amp", b"AMP", b"Amp", b"lt", b"gt", b"quot", b"apos", b"nbsp", b"copy",
                     b"euro", b"hellip", b"reg", b"nosuch", b"foo", b"iexcl", b"Agrave",
                     b"x", b"a-b", b"a:b", b"a_b", b"e" * 1030, b"E" * 1024, b"e" * 1023]),
    st.binary(min_size=1, max_size=10).map(
        lambda b: bytes(b"abcXYZ019_:-"[x % 12] for x in b)),
)
_digits = st.integers(min_value=0, max_value=10**25).map(lambda n: str(n).encode())
_hexdigits = st.integers(min_value=0, max_value=16**20).map(lambda n: b"%x" % n)
_entity = st.one_of(
    st.builds(lambda n, e: b"&" + n + e, _entity_name, st.sampled_from([b";", b"", b" ", b"<"])),
    st.builds(lambda d, e: b"&#" + d + e, _digits, st.sampled_from([b";", b"", b"x;", b" "])),
    st.builds(lambda x, h, e: b"&#" + x + h + e, st.sampled_from([b"x", b"X"]), _hexdigits,
              st.sampled_from([b";", b"", b"g;", b" "])),
    st.sampled_from([b"&", b"&;", b"&#;", b"&#x;", b"&#X;", b"&#0;", b"&#x110000;",
                     b"&#12290;", b"&#65279;", b"&#0x41;", b"&#99999999999999999999;",
                     b"&#65;", b"&#x41;", b"&#x3c;", b"&#60;", b"&#9;", b"&#10;", b"&#13;",
                     b"&#x20;", b"&#160;", b"&#255;", b"&#256;", b"&&amp;", b"&#&#65;"]),
)
_tag_name = st.one_of(
    st.sampled_from([b"a", b"A", b"img", b"IMG", b"p", b"td", b"table", b"br/", b"div",
                     b"b", b"script", b"SCRIPT", b"style", b"Style", b"/a", b"/script",
                     b"/style", b"/p", b"/STYLE", b"/Script", b"!DOCTYPE", b"!--", b"!",
                     b"/", b"?xml", b"t" * 1030, b"a\xc3\xa9", b"x&amp;"]),
    st.binary(min_size=1, max_size=8).map(lambda b: bytes(_UPPER_LOWER[x % 52] for x in b)),
)
_attr_name = st.one_of(
    st.sampled_from([b"href", b"HREF", b"src", b"Src", b"class", b"style", b"id", b"alt",
                     b"disabled", b"n" * 1030, b"a\"b", b"a'b", b"x&y", b"\xc3\xa9"]),
    st.binary(min_size=1, max_size=8).map(lambda b: bytes(_UPPER_LOWER[x % 52] for x in b)),
)
_value_piece = st.one_of(
    _word, _entity, _high, st.sampled_from([b" ", b"\t", b"\r", b"\\", b"\\\"", b"\\'", b"'",
                                            b'"', b">", b"<", b"=", b"&", b"%41", b"%",
                                            b"\x00", b"\n", b"  "]),
)
_value_body = st.lists(_value_piece, max_size=6).map(b"".join)
_data_uri = st.builds(
    lambda t, body: b"data:" + t + b"," + body,
    st.sampled_from([b"", b"text/plain", b"text/html;base64", b"TEXT/Plain;charset=x",
                     b"image/png;base64", b"a b", b"a\"b", b"a'b"]),
    st.lists(st.one_of(_word, _entity, st.sampled_from([b"%41", b"%4", b"%", b"%zz", b"\\",
                                                        b"%3C", b"\xc3\xa9", b"\r", b" "])),
             max_size=5).map(b"".join),
)
_value = st.one_of(
    st.builds(lambda v: b'"' + v + b'"', _value_body),
    st.builds(lambda v: b"'" + v + b"'", _value_body),
    _word, st.builds(lambda a, b: a + b, _word, _entity),
    st.builds(lambda v: b'"' + v + b'"', _data_uri),
    st.builds(lambda v: b"'" + v + b"'", _data_uri),
    _data_uri,
    st.sampled_from([b'""', b"''", b'"', b"'", b"", b'"data:"', b"data:", b'"dat', b'"datax',
                     b'"' + b"v" * 1030 + b'"', b"v" * 1030, b'"a b"', b"'a\"b'", b'"a\'b"',
                     b'"https://example.com/t?id=1&amp;u=7"', b'"HTTP://X.Y/Z"',
                     b'"abcdef&amp;x"', b'"abcde&amp;x"', b'"a&amp;bcdefg"', b'"\xc3\xa9"']),
)
_sep = st.sampled_from([b"", b" ", b"  ", b"\t", b"\n", b"\r", b" \r\n "])
_attr = st.one_of(
    st.builds(lambda n: n, _attr_name),
    st.builds(lambda n, s1, s2, v: n + s1 + b"=" + s2 + v, _attr_name, _sep, _sep, _value),
)
_tag = st.builds(
    lambda open_, lead, name, attrs, tail, close: open_ + lead + name + attrs + tail + close,
    st.sampled_from([b"<", b"<", b"<", b"</"]),
    st.sampled_from([b"", b"", b"", b" ", b"\r", b"\n "]),
    _tag_name,
    st.lists(st.builds(lambda s, a: s + a, st.sampled_from([b" ", b" ", b"  ", b"\n", b"\t",
                                                            b"\r", b" \r", b""]), _attr),
             max_size=5).map(b"".join),
    st.sampled_from([b"", b"", b" ", b"/", b" /", b"\r", b"\n"]),
    st.sampled_from([b">", b">", b">", b">", b"", b" >", b"\r>"]),
)
_comment = st.builds(
    lambda start, body, end: start + body + end,
    st.sampled_from([b"<!--", b"<!--", b"<!", b"< !--", b"<!-", b"<!DOCTYPE "]),
    st.lists(st.one_of(_word, _WS, _high, _entity,
                       st.sampled_from([b"<b>", b"'", b"--", b"-", b">"])), max_size=6)
    .map(b"".join),
    st.sampled_from([b"-->", b">", b"-- >", b"", b"->"]),
)
_script_body = st.lists(st.one_of(_word, _WS, _entity, _high, _control, _comment,
                                  st.sampled_from([b"'", b'"', b"<", b"<b>", b"</b>", b"a<b",
                                                   b"</", b"</scriptx>", b"< /script>",
                                                   b"if (a < b && c > d) { x = 'q'; }"])),
                        max_size=12).map(b"".join)
_script = st.builds(
    lambda open_, body, close: open_ + body + close,
    st.sampled_from([b"<script>", b"<SCRIPT type='text/javascript'>", b"<style>",
                     b"<style type=text/css>", b"<STYLE >", b"<script\n>", b"<script src=x>"]),
    _script_body,
    st.sampled_from([b"</script>", b"</style>", b"</SCRIPT >", b"</style >", b"</script",
                     b"", b"</ script>", b"</style\r>"]),
)
#: Well-formed tags, the fast path's shape (values long enough to hold references).
_URL_BYTES = _UPPER_LOWER + b"0123456789./:?#%-_~+,;!*()@$"
_plain_word = st.binary(min_size=1, max_size=10).map(
    lambda b: bytes(_URL_BYTES[x % len(_URL_BYTES)] for x in b))
_good_entity = st.one_of(
    st.builds(lambda n: b"&" + n + b";", _entity_name),
    st.builds(lambda d: b"&#" + d + b";", _digits),
    st.builds(lambda h: b"&#x" + h + b";", _hexdigits),
)
_plain_value = st.builds(
    lambda lead, rest: lead + rest,
    st.sampled_from([b"", b"https://example.com/t?id=", b"abcdef", b"abcde", b"x"]),
    st.lists(st.one_of(_plain_word, _plain_word, _good_entity, _entity,
                       st.sampled_from([b"&amp;", b"&#65;", b"&#x42;", b"&#8364;", b"&#12290;",
                                        b"&AMP;", b"&nosuch;", b"&#0;", b"&#x3C;", b"&#9;",
                                        b"&#200;", b"%20", b"data:x,y"])),
             min_size=1, max_size=6).map(b"".join),
)
_simple_tag = st.builds(
    lambda name, attrs, close: b"<" + name + attrs + close,
    st.one_of(_tag_name, st.sampled_from([b"a", b"img", b"td", b"p", b"/a", b"A", b"IMG"])),
    st.lists(st.builds(lambda sep, n, q, v: sep + n + b"=" + q + v + q,
                       st.sampled_from([b" ", b" ", b"\n", b"  "]),
                       st.one_of(_attr_name, st.sampled_from([b"href", b"src", b"HREF"])),
                       st.sampled_from([b'"', b'"', b"'", b""]), _plain_value),
             min_size=1, max_size=5).map(b"".join),
    st.sampled_from([b">", b">", b" >", b"\n>", b"/>"]),
)
_fragment = st.one_of(
    _word, _word, _word, _WS, _WS, _tag, _tag, _simple_tag, _simple_tag, _simple_tag,
    _entity, _entity, _high, _control, _comment, _script,
    st.sampled_from([b"<", b">", b"&", b"</", b"<!", b"=", b'"', b"'", b"\\",
                     b"<a href=\"http://e.x/?a&amp;b\">", b"<img src='Q.PNG'>", b"</a>",
                     b"<p class=\"x y\">", b"</p>", b"<br/>", b"<td nowrap>", b"< p >",
                     b"<img src=data:,q%41&amp;b>", b"<a href>", b"<img src=>", b"<a>",
                     b"<img>", b"</style>", b"</script>"]),
)
_body = st.lists(_fragment, min_size=1, max_size=40).map(b"".join)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A document; often one long enough that a chunk boundary falls near a chosen spot."""
    head = draw(st.sampled_from([b"", b"<html>", b"<!DOCTYPE html>\r\n<HTML><BODY>\n",
                                 b"\n\n  <html>"]))
    body = draw(_body)
    for tag in draw(st.lists(_simple_tag, max_size=6)):  # the common shape, more often
        at = draw(st.integers(0, len(body)))
        body = body[:at] + tag + body[at:]
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return head + body
    if kind == 1:  # a filler without whitespace: the first chunk ends exactly at CHUNK bytes
        filler = draw(st.sampled_from([b"x", b"<b>", b"&amp;", b"<p>q</p>", b"\xc3\xa9",
                                       b"<!--c-->", b"a\x00"]))
        room = CHUNK - len(head) - draw(st.integers(0, 200))
        pad = (filler * (room // len(filler) + 1))[:room]
        return head + pad + body + draw(_body)
    if kind == 2:  # filler with whitespace: the chunk is cut back after its last whitespace
        filler = draw(st.sampled_from([b"word ", b"<p>a b</p>\n", b"x\r\n", b"  ",
                                       b"<td class=c>v</td> "]))
        room = CHUNK - len(head) - draw(st.integers(0, 200))
        pad = (filler * (room // len(filler) + 1))[:room]
        return head + pad + body
    if kind == 3:  # the body repeated past several chunks
        return head + body * draw(st.integers(1, 60)) + draw(_body)
    if kind == 4:  # a style sheet or script open at a chunk boundary, its end tag near it
        opener = draw(st.sampled_from([b"<style>", b"<script>", b"<style type=x>"]))
        fill = draw(st.sampled_from([b"a", b"a b ", b"{x:y}", b"'q'"]))
        room = CHUNK - len(head) - len(opener) - draw(st.integers(0, 12))
        pad = (fill * (room // len(fill) + 1))[:room]
        closer = draw(st.sampled_from([b"</style>", b"</style >", b"</STYLE\n>", b"</script>",
                                       b"</style", b"<!-- x -->", b""]))
        return head + opener + pad + closer + body
    return head + body + draw(_body)


_COMMON_TAGS = [b"a", b"img", b"p", b"td", b"tr", b"table", b"div", b"span", b"br", b"b",
                b"font", b"A", b"IMG", b"TD", b"Table"]
_COMMON_ATTRS = [b"href", b"src", b"class", b"style", b"width", b"align", b"alt", b"HREF",
                 b"Src", b"cellpadding", b"id", b"nowrap"]
_mail_attr = st.builds(
    lambda sep, name, eq, q, value: sep + name + (eq + q + value + q if eq else b""),
    st.sampled_from([b" ", b" ", b" ", b"  ", b"\n", b"\r\n", b"\t"]),
    st.sampled_from(_COMMON_ATTRS),
    st.sampled_from([b"=", b"=", b"=", b"=", b" = ", b""]),
    st.sampled_from([b'"', b'"', b'"', b"'", b""]),
    st.one_of(_plain_value, _plain_word, st.sampled_from([
        b"100%", b"left", b"MsoNormal", b"color:#333;font-size:11pt", b"cid:LOGO.png",
        b"https://example.com/x?a=1&amp;b=2", b"abcdef&#65;x", b"abcdef&#0;x", b"abcdef&#256;",
        b"abcdef&#x4A;&#12290;&nosuch;&AMP;", b"HTTP://X.Y/Z", b"", b"DATA:x", b"data:,x",
        b"padding: 20px 10px", b"font-family: Helvetica, Arial, sans-serif;", b"a  b\n c ",
        b" a", b"a b=c", b"a\tb", b"x\r\n y", b"Click here"])),
)
_mail_tag = st.builds(
    lambda slash, name, attrs, close: b"<" + slash + name + attrs + close,
    st.sampled_from([b"", b"", b"/"]), st.sampled_from(_COMMON_TAGS),
    st.lists(_mail_attr, max_size=4).map(b"".join),
    st.sampled_from([b">", b">", b">", b" >", b"/>", b"\n>"]),
)
_mail_text = st.lists(
    st.one_of(_plain_word, _plain_word, _good_entity, _WS,
              st.sampled_from([b"caf\xc3\xa9", b"\xe2\x80\x93", b"\xe3\x80\x82",
                               b"&nbsp;", b"&copy;", b"&amp;", b"Hello", b"WORLD", b"\xa9",
                               b"\xa1C", b"it's", b'"q"'])),
    min_size=1, max_size=8).map(b"".join)
_mail_fragment = st.one_of(
    _mail_tag, _mail_tag, _mail_tag, _mail_text, _mail_text,
    st.builds(lambda body: b"<!--" + body + b"-->", _mail_text),
    st.builds(lambda o, body, c: o + body + c,
              st.sampled_from([b"<style>", b"<style type=\"text/css\">", b"<script>"]),
              _mail_text, st.sampled_from([b"</style>", b"</script>"])),
)


@st.composite
def mail_documents(draw: st.DrawFn) -> bytes:
    """Mostly well-formed, mail-like HTML (the fast paths' shapes), often over a chunk."""
    body = b"".join(draw(st.lists(_mail_fragment, min_size=1, max_size=30)))
    body = draw(st.sampled_from([body, body, body.replace(b"\n", b"\r\n"),
                                 body.replace(b" ", b"\n"), body.replace(b">", b">\r\n")]))
    repeat = draw(st.sampled_from([1, 1, 2, 5, 40, 200]))
    doc = b"<html><body>" + body * repeat
    if len(doc) < CHUNK and draw(st.booleans()):
        doc = b"<html>" + b"x" * (CHUNK - 6 - draw(st.integers(0, 40))) + body
    return doc


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mail_documents())
def test_generated_mail_documents(doc: bytes) -> None:
    assert_same(doc)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents())
def test_generated_documents(doc: bytes) -> None:
    assert_same(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(doc: bytes) -> None:
    assert_same(doc)


#: Pieces of mail-like HTML, for seeded random documents that cover the fast paths' edges
#: more evenly than generated ones.
MAIL_TOKENS = [
    b"<p>", b"</p>", b"<br>", b"<br/>", b"<td class=\"c1\" align=left>", b"</td>", b"<tr>",
    b"<table width=\"100%\" cellpadding=\"0\">", b"</table>", b"<span style='color:#1F497D'>",
    b"<p class=MsoNormal style='margin:0cm'>", b"<o:p>", b"</o:p>", b"<div\n  id=x\n>",
    b"<a href=\"https://example.com/t?id=1&amp;u=7\">", b"<a href=x>", b"<a>", b"<a href>",
    b"<a class=x href=\"y\" href=z>", b"<A HREF='HTTP://X.Y/Z'>", b"<a href=\"&#65;\">",
    b"<a href=\"abcdef&#65;&#0;x\">", b"<a href=\"abcdef&#x110000;\">", b"<a href=\"\">",
    b"<img src=\"cid:LOGO.png\" alt=Logo>", b"<img src='abcdef&nosuch;&AMP;'>", b"<img>",
    b"<IMG SRC=Q.png>", b"<img src=\"data:image/png;base64,QUJD\">", b"<img alt=a src=b>",
    b"</a>", b"<a href=\"" + b"L" * 1030 + b"\">", b"<p " + b"n" * 1030 + b"=1>",
    b"<!-- c -->", b"<!-- <a href=x> -->", b"<!>", b"<![if !supportLists]>", b"<!--\r\n-->",
    b"<style>p { color: 'red' }</style>", b"<script>var a = 'b';</script>", b"</script>",
    b"</style>", b"<style type=text/css>", b"&nbsp;", b"&amp;", b"&AMP;", b"&copy;", b"&lt;",
    b"&gt;", b"&#65;", b"&#x41;", b"&#8364;", b"&#12290;", b"&#65601;", b"&#0;", b"&#;",
    b"&nosuch;", b"&amp", b"&", b"Hello", b"WORLD", b"it's", b'"q"', b">", b"=", b"a=b",
    b"caf\xc3\xa9", b"\xe4", b"\xa1C", b"\xa1", b"\xe3\x80\x82", b"\xef\xbc\x8e",
    b"\xf0\x9f\x98\x80", b"\xc3", b"Gr\xc3\xbc\xc3\x9fe", b" ", b"  ", b"\n", b"\r\n", b"\t",
    b"\r", b"\x0b", b"\x01", b"\x7f", b"\\", b"<", b"</", b"< p>", b"<p >", b"<p\r>",
    b"\xc3\r", b"\xe3\x80\r\x82", b"<a href=\"abcdef&#200;x\">", b"<a href=\"abcdef&#x1F4A9;\">",
    b"<img src='abcdef&#x7f;'>",
    # Whitespace inside quoted values (ClamAV takes the rest of the tag as unquoted), \r in tags.
    b"<td style=\"padding: 20px 10px; font-family: Helvetica, Arial\">", b"<p title=\" a\">",
    b"<p title=\"a  b\n c \">", b"<p title=\"a\tb\">", b"<p title=\"a \tb\">", b"<p title=\"  \">",
    b"<p title=\"a\r\n b\">", b"<p title=\"a\r\tb\">", b"<a title=\"x y\" href=\"z\">",
    b"<a href=\"x y\">", b"<a href=\"a b c\" href=d>", b"<img alt=\"a b\" src=x>",
    b"<p title=\"a b=c\">", b"<p class=\"a b c\" id=x>", b"<p title=\"a b&amp;c\">",
    b"<p title=\"a &amp; b\">", b"<p title=\"a b c&amp;d\">", b"<p title=\"a b c=data:x\">",
    b"<p title=\"a b=data:x\">",
    b"<span style='font-family:\"Arial\",sans-serif'>", b"<p style='margin:0cm; x'>",
    b"<p style='a b c'>", b"<p t=' a '>", b"<p t='  '>", b"<p t='a\n\tb '>",
    b"<p t=\"it's a b\">", b"<p t='a\"b c d'>", b"<p t='a b\"c'>", b"<p t=\"a b 'c\">",
    b"<p t=\"x='y' z\">", b"<a title=\"it's\" href=\"x'y\">", b"<img src='x\"y'>",
    b"<a title='x y href z' href=q>", b"<a title=\"x y HREF\" href=q>", b"<a href=\" a \">",
    b"<img alt=\"a b c src d\" src=x>", b"<a href=\"abcdef&apos;'q r\">", b"<a href=\"a  b\n\">",
    b"<a href=\"" + b"L" * 1030 + b" b\">", b"<img src=\"x y\" style=\"a b\">",
    b"<a href=" + b"U" * 1030 + b">", b"<img src='" + b"S" * 1030 + b"'>",
    b"<a href=\"https://e.x/?a=1&amp;b=2\" target=\"_blank\" style=\"color: #06c; x: y;\">",
    b"<p title=\"a b\"c>", b"<p title=\"a b c\" =x>", b"<p title=\"data: x\">", b"<p t=\"a b >",
    b"<td\r\n style=\"a\">", b"<p a=\"x\"\rb>", b"<p\r>", b"<p\r\n>", b"<a\r href=x>", b"<a\rb>",
    b"<scr\ript>", b"<p cla\rss=x>", b"<p a=\r\"x\">",
]


def test_seeded_mail_token_documents() -> None:
    rng = random.Random(20240611)
    for _ in range(600):
        doc = b"<html>" + b"".join(rng.choice(MAIL_TOKENS) for _ in range(rng.randint(1, 60)))
        assert_same(doc)
    for _ in range(12):  # across chunks
        doc = b"<html>" + b"".join(rng.choice(MAIL_TOKENS) for _ in range(rng.randint(1500, 4000)))
        assert_same(doc)


# -- the inputs of the other HTML tests ------------------------------------------------------


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus() -> list[tuple[str, bytes]]:
    scan = _load(TESTS / "scan" / "test_htmlnorm.py", "_htmlnorm_tests_scan")
    conf = _load(TESTS / "conformance" / "test_clamscan_htmlnorm.py", "_htmlnorm_tests_conf")
    docs: list[tuple[str, bytes]] = [(f"copies{i}", d)
                                     for i, d in enumerate(scan.CLAMSCAN_COPIES)]
    docs += [(f"sample-{name}", d) for name, d in conf.SAMPLES.items()]
    docs += [(f"token{i}", t) for i, t in enumerate(conf.TOKENS)]
    # The seeded token soup of test_random_documents_are_byte_identical, as it builds it.
    rng = random.Random(20261204)
    tokens = conf.TOKENS
    soup = [b"<html>" + b"".join(rng.choice(tokens) for _ in range(rng.randint(1, 80)))
            for _ in range(250)]
    soup += [b"<html>" + b"".join(rng.choice([*tokens, b"a" * 900, b" " * 40])
                                  for _ in range(rng.randint(300, 1500))) for _ in range(8)]
    docs += [(f"soup{i}", d) for i, d in enumerate(soup)]
    for path in sorted((TESTS / "data").rglob("*")):
        if path.is_file() and path.suffix in (".eml", ".html", ".htm"):
            docs.append((path.name, path.read_bytes()))
    return docs


def _pages() -> list[tuple[str, bytes]]:
    """Newsletter-, text- and minified-shaped pages like the benchmark's."""
    rng = random.Random(1)
    words = (b"the quick brown fox jumps over lazy dog offer price unsubscribe click here "
             b"today").split()

    def para(n: int) -> bytes:
        return b" ".join(rng.choice(words) for _ in range(n))

    news = [b"<!DOCTYPE html><html><head><style>td { color: #333; font-family: Arial; }\n"
            b".x{margin:0}</style></head><body>"]
    for i in range(120):
        news.append(b'<table width="100%%" cellpadding="0" style="border:0"><tr>'
                    b'<td class="c%d" align="left"><a href="https://example.com/t?id=%d&amp;'
                    b'u=7">%s</a></td></tr></table>\n<p>%s &nbsp; &copy; caf\xc3\xa9</p>\n'
                    b"<!-- c%d -->\n" % (i, i, para(8), para(30), i))
    news.append(b"</body></html>")
    page = b"".join(news)
    text = (b"<html><body>" + b"".join(b"<p>%s</p>\n" % para(80) for _ in range(60))
            + b"</body></html>")
    return [("newsletter", page), ("text", text),
            ("minified", page.replace(b"\n", b"").replace(b"> <", b"><")),
            ("crlf", page.replace(b"\n", b"\r\n")), ("upper", page.upper())]


@pytest.mark.parametrize(("name", "doc"), _corpus() + _pages(), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_corpus(name: str, doc: bytes) -> None:
    assert_same(doc)


def test_every_chunk_offset_of_a_page() -> None:
    """Pages shifted byte by byte, so that a chunk boundary falls at each byte of a unit
    without whitespace (the chunk ends at CHUNK bytes) and after each whitespace of one with
    (the chunk is cut back after its last whitespace)."""
    dense = (b"<td>Hello<b>World</b>&amp;caf\xc3\xa9&#65;&#x42;&#12290;&nbsp&lt<!--note-->"
             b"<!x><a>link</a><img/src=x><script>var/**/a='b';</script><style>p{}</style>"
             b"</td>")
    spaced = (b'<td style="color:#333" class=c>Hello <b>World</b> &amp; caf\xc3\xa9 &#65;'
              b"&#x42;<!-- note --> <a href='https://e.example/x?y=1&amp;z=2'>link</a>"
              b"<img src=data:,x%41><script>var a = 'b';</script></td>\n")
    for unit in (dense, spaced):
        pad = b"x" * (CHUNK - 2 * len(unit))
        for shift in range(len(unit) + 1):
            doc = b"<html>" + pad[: len(pad) - shift] + unit * 4
            if unit is dense:
                assert len(chunks(doc)[0]) == CHUNK
            assert_same(doc)


#: Words in other scripts (2-, 3- and 4-byte UTF-8, legacy 8-bit, the ideographic full stop),
#: in attribute values and text: `_value` takes a value's 8-bit run in one step and
#: `_high_text` remembers words, both must write what the states write (chunk edges too).
_SCRIPT_WORDS = [w.encode() for w in (
    "привет", "новости", "שלום", "מבצע", "السلام", "Ελλάδα", "日本語の", "中文。", "한국어",
    "ﾃｽﾄ．", "😀😀", "café", "ü")] + [b"\xe4\xf6\xfc", b"\xa1C", b"\xa1", b"\xe3\x80\x82\xe3"]


def test_seeded_documents_in_other_scripts() -> None:
    rng = random.Random(20261205)

    def words(n: int) -> bytes:
        return b" ".join(rng.choice(_SCRIPT_WORDS) for _ in range(n))

    def token() -> bytes:
        quote = rng.choice([b'"', b"'", b""])
        value = words(rng.randint(1, 4)) if quote else rng.choice(_SCRIPT_WORDS)
        return rng.choice([
            b"<img src=x alt=" + quote + value + quote + b">",
            b"<a href=\"https://e.x/" + rng.choice(_SCRIPT_WORDS) + b"\" title=" + quote + value
            + quote + b">",
            b"<p>" + words(rng.randint(1, 12)) + b"</p>",
            rng.choice(MAIL_TOKENS),
        ])

    for _ in range(400):
        assert_same(b"<html>" + b"".join(token() for _ in range(rng.randint(1, 40))))
    for _ in range(8):  # across chunks
        assert_same(b"<html>" + b"".join(token() for _ in range(rng.randint(800, 2000))))


@pytest.mark.parametrize("tail", [b"", b"\r", b"\r\r", b" ", b"\r\n", b"x"])
@pytest.mark.parametrize("tag", [b'<img src=x alt="a b">', b'<p>a<img alt="a b" src=x>',
                                 b'<a href="x y">', b"<img src=x>", b'<img src=x alt="\xc3\xa9">',
                                 b'<img alt="\xc3\xa9" src=x>', b'<a href="\xd0\xbf\xd1\x80 y">'])
def test_tag_before_only_cr_at_a_chunk_end(tag: bytes, tail: bytes) -> None:
    """The states leave HTML_PROCESS_TAG to the byte after `>`, and `\\r` is none: a tag whose
    `>` only `\\r` follows in the chunk is processed in the next chunk, or never."""
    assert_same(tag + tail)
    for cut in range(len(tag) + 2):
        assert_same(b"<html>" + b"x" * (CHUNK - 6 - len(tag) + cut) + tag + tail + b"<p>z")


#: Pieces of tags `_loose_tag` walks: 8-bit values (whose last group of up to three bytes is
#: held over to the next value's first ASCII byte, in this tag or a later one), whitespace in
#: quoted values, quotes and backslashes inside values, `data:`, `>` inside a quoted value.
_LOOSE_WORDS = [w.encode() for w in ("привет", "שלום", "中文。", "😀", "café", "ü", "ﾃｽﾄ．")] + [
    b"\xa1", b"\xa1C", b"\xa1D", b"\xa1O", b"\xa1c", b"\xe3\x80\x82", b"\xef\xbc\x8e", b"\xe4",
    b"\xe4\xf6", b"data:x", b"DATA:", b"x", b"AbC", b"\\", b"\\\"", b"=", b"<", b"\x01", b"\x7f"]
_LOOSE_SEPS = [b" ", b"  ", b"\t", b"\n", b"\x0b", b"\x0c", b" \n ", b"\t "]


def _loose_document(rng: random.Random) -> bytes:
    def words(n: int) -> bytes:
        return rng.choice(_LOOSE_SEPS).join(rng.choice(_LOOSE_WORDS) for _ in range(n))

    def attr() -> bytes:
        name = rng.choice([b"alt", b"SRC", b"src", b"href", b"title", b"width", b"x\xd0\xb8",
                           b"w\"", b"'q"])
        kind = rng.randint(0, 9)
        if kind == 0:
            return name
        quote = rng.choice([b'"', b"'", b""])
        if kind < 4:
            value = words(rng.randint(1, 4))
        elif kind < 6:
            value = rng.choice([b"120", b"http://x/y", b"", b"data:,x", b"Cx", b"DOx", b"a\"b",
                                b"a'b", b"a>b"])
        else:
            value = rng.choice(_LOOSE_WORDS) + rng.choice([b"", b"x", b"120", b"C"])
        return (name + rng.choice([b"=", b"=", b" = ", b"=\n"]) + quote + value
                + rng.choice([quote, quote, quote, b"", b'"', b"'"]))

    def tag() -> bytes:
        return (b"<" + rng.choice([b"img", b"a", b"IMG", b"A", b"p", b"td", b"/a", b"x\xc3\xa9",
                                   b"style", b"script"])
                + b"".join(rng.choice(_LOOSE_SEPS) + attr() for _ in range(rng.randint(0, 5)))
                + rng.choice([b">", b">", b" >", b"\n>", b"/>"]))

    parts = [rng.choice([tag(), tag(), tag(), words(rng.randint(1, 3)), b"<p>t</p>", b" ", b"\r",
                         b"&amp;", b"</style>", b"</script>", b"<b>x</b>\r\n"])
             for _ in range(rng.randint(1, 25))]
    if rng.random() < 0.1:  # past a chunk boundary, at a varying offset
        parts = [b"x" * (CHUNK - rng.randint(0, 300))] + parts * rng.randint(1, 40)
    return b"<html>" + b"".join(parts)


def test_seeded_loose_tags() -> None:
    rng = random.Random(20261206)
    for _ in range(1500):
        assert_same(_loose_document(rng))



@pytest.mark.parametrize("text", [
    "abcпривет мир тест", "abc привет мир", "привет мир abc", "привет мир  abc\tx", "a мир b",
    "<a href=x>мир тест</a>", "<a href=x> мир тест</a>", "x<b>мир тест</b>y", "мир\t\tтест",
    "中文。 中文 。 ü", "&amp;мир тест&amp;", "<!-- c -->мир тест", "😀 ü a 😀 ü"])
def test_words_in_other_scripts_in_a_region(text: str) -> None:
    """A region takes 8-bit runs with a space between each together (text_space_written, which
    8-bit bytes leave as it was, decides which of those spaces notags.html has)."""
    for head in ("<p>", "<p>t", "<p>t ", ""):
        assert_same(("<html>" + head + text + " z").encode())


#: Region-shaped pieces (plain text and tags) and tags with 8-bit bytes in them, which a region
#: takes through `_walk_tag`: with the 8-bit group a value holds over to a later tag, links
#: with 8-bit bytes, and what ends a region before such a tag (`data:`, `&`, `\r` in a tag
#: walked while a group is held, a `>` in a quoted value).
_REGION_PIECES = [
    b"text", b"More Words", b" ", b"\n", b"\r\n", b"<p>", b"</p>", b"<a href=\"x\">", b"</a>",
    b"<img src=\"y\">", b"<td style=\"a b\">", b"<p title='it\"s'>", b"<!-- c -->",
    b"<!-- \xd0\xbc\xd0\xb8\xd1\x80 -->", b"<!-- \x01 <\x02> -->", b"&amp;", b"&lt;&#2;&gt;",
    b"&#1;", b"&copy;", b"<p class=\"abcdef&amp;x\">", b"<p\r\nclass=x>", b"<p a=\"b\"\rc=d>",
    b"<p t=\"x\">", b"<p t=\"\">", b"<p t=''>", b"<b>", b"<br/>", b"<p class=\"data:y\">",
]
_REGION_TAGS8 = [
    b"<img src=\"s\" alt=\"%s\">", b"<img alt=\"%s\" src=\"s\">", b"<a href=\"%s\">",
    b"<a title=\"%s\" href=x>", b"<p title=\"%s\">", b"<img alt=%s>", b"<x%s>", b"<p %s=1>",
    b"<img alt='%s' src=q width=\"120\">", b"<p title=\"%s\" class=\"data:q\">",
    b"<A HREF=\"http://e.x/%s\" style=\"a:b\">", b"<p t=\"%s >", b"<IMG SRC=%s>",
]


def _region_document(rng: random.Random) -> bytes:
    def word() -> bytes:
        return rng.choice(_LOOSE_WORDS[:12])

    def words() -> bytes:
        sep = rng.choice([b" ", b"  ", b"\n", b"\t"])
        return sep.join(word() for _ in range(rng.randint(1, 4)))

    parts = []
    for _ in range(rng.randint(1, 40)):
        k = rng.random()
        if k < 0.3:
            parts.append(rng.choice(_REGION_TAGS8) % words())
        elif k < 0.4:
            parts.append(words())
        else:
            parts.append(rng.choice(_REGION_PIECES))
    doc = b"<html>" + b"".join(parts)
    if rng.random() < 0.1:  # past a chunk boundary, at a varying offset
        doc = b"<html>" + b"x" * (CHUNK - rng.randint(0, 300)) + doc * rng.randint(1, 20)
    return doc


def test_seeded_regions_with_8bit_tags() -> None:
    rng = random.Random(20261207)
    for _ in range(1500):
        assert_same(_region_document(rng))
