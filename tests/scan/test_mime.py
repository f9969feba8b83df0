"""The MIME walker's pieces: headers, parameters (RFC 2231), encodings, leaves and names; and
hypothesis-generated / mutated messages never crash it."""

from __future__ import annotations

import base64
import contextlib
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import decompose, filetype, mime
from zerohour.scan.limits import Limits, ScanContext


def leaves(data: bytes, ctx: ScanContext | None = None) -> list[tuple[bytes, str | None, bool]]:
    return [(c.data, c.name, c.is_attachment) for c in mime.children(data, ctx or ScanContext())]


def test_split_headers_folding_and_body() -> None:
    data = b"A: 1\r\nB: two\r\n  folded\r\nC:3\r\n\r\nbody\r\n"
    headers, at = mime.split_headers(data)
    assert [h.name for h in headers] == [b"a", b"b", b"c"]
    assert headers[1].values() == ["two  folded", "twofolded"]
    assert data[at:] == b"body\r\n"


def test_split_headers_missing_blank_line() -> None:
    data = b"Content-Type: text/plain\r\nthis is body\r\n"
    headers, at = mime.split_headers(data)
    assert len(headers) == 1
    assert data[at:] == b"this is body\r\n"


def test_params_quoting_comments_and_2231() -> None:
    p = mime.parse_params('Multipart/Mixed (c); boundary="a\\"b;c" (comment); name=x')
    assert p.main == "multipart/mixed"
    assert p.get_all("boundary")[0] == 'a"b;c'
    assert p.get_all("name")[0] == "x"
    p = mime.parse_params("a/b; filename*=UTF-8''%E2%82%AC%20rates.exe")
    assert "€ rates.exe" in p.get_all("filename")
    p = mime.parse_params('a/b; boundary*0="ab"; boundary*1*=%63d; boundary*2="ef"')
    assert "abcdef" in p.get_all("boundary")


def test_well_formed_message_from_stdlib() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "hello"
    msg.set_content("plain text body\n")
    msg.add_alternative("<p>html body</p>", subtype="html")
    msg.add_attachment(
        b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="data.bin"
    )
    msg.add_attachment(
        "qp text é\n" * 20, subtype="plain", cte="quoted-printable", filename="t.txt"
    )
    got = leaves(bytes(msg))
    datas = [d for d, _, _ in got]
    assert b"plain text body\n" in datas
    assert any(b"<p>html body</p>" in d for d in datas)
    assert (b"\x00\x01binary", "data.bin", True) in got
    assert ("qp text é\n" * 20).encode() in datas
    assert len(datas) == len(set(datas))


def test_rfc2047_filename() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        b'Content-Type: application/octet-stream; name="=?utf-8?b?w6kuZXhl?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"xyz") + b"\r\n--B--\r\n"
    )
    assert leaves(data) == [(b"xyz", "é.exe", True)]


def test_identical_leaves_yielded_once() -> None:
    part = b"--B\r\nContent-Type: text/plain\r\n\r\nsame\r\n"
    data = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + part * 5 + b"--B--\r\n"
    assert leaves(data) == [(b"same", None, False)]


def test_nesting_is_bounded() -> None:
    body = b"leaf\r\n"
    for i in range(30):
        body = (
            (b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i))
            + body
            + (b"\r\n--b%d--\r\n" % i)
        )
    with pytest.raises(ScanLimitExceeded) as exc:
        leaves(body, ScanContext(Limits(max_recursion=17)))
    assert exc.value.which == "MaxRecursion"


def test_single_dialect_for_clean_mail() -> None:
    assert [d.name for d in mime.dialects_for(b"A: b\r\n\r\nc\r\n")] == ["lf"]
    assert [d.name for d in mime.dialects_for(b"A: b\n\nc\n")] == ["lf"]
    assert [d.name for d in mime.dialects_for(b"A: b\r\rc\r")] == ["lf", "any"]
    assert [d.name for d in mime.dialects_for(b"A: b\r\n\nc\r\n")] == ["lf", "crlf"]


header_names = st.sampled_from(
    ["Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Subject", "X-Y"]
)
header_values = st.one_of(
    st.sampled_from(
        [
            "multipart/mixed; boundary=B",
            'multipart/alternative; boundary="C"',
            "base64",
            "quoted-printable",
            "text/plain",
            "message/rfc822",
            "attachment; filename*=x''%41",
            "multipart/mixed",
            "x-uuencode",
            "boundary*0=B; boundary*1=C",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)


@st.composite
def entities(draw: st.DrawFn, depth: int = 0) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=4))
    head = b"".join(n.encode() + b": " + v.encode() + eol for n, v in headers)
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from([b"B", b"C", b"BC"]))
        parts = draw(st.lists(entities(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary + eol + p + eol for p in parts)
        if draw(st.booleans()):
            body += b"--" + boundary + b"--" + eol
    else:
        body = draw(
            st.one_of(
                st.binary(max_size=200),
                st.binary(max_size=150).map(base64.encodebytes),
            )
        )
    return head + (eol if draw(st.booleans()) else b"") + body


@settings(max_examples=300, deadline=None)
@given(entities())
def test_generated_structures_never_crash(data: bytes) -> None:
    with contextlib.suppress(ScanLimitExceeded):
        for child in mime.children(data, ScanContext()):
            assert child.data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_mail_never_crashes(data: st.DataObject) -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.c"
    msg.set_content("text\n")
    msg.add_attachment(b"\x00payload" * 30, maintype="application", subtype="zip", filename="z.zip")
    buf = bytearray(bytes(msg))
    for _ in range(data.draw(st.integers(1, 15))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.sampled_from(b'\r\n-=";: \x00AZaz'))
    with contextlib.suppress(ScanLimitExceeded):
        list(mime.children(bytes(buf[: data.draw(st.integers(0, len(buf)))]), ScanContext()))


# --- differential: every leaf the stdlib parser sees, we see too ------------------------------

_texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=300
)


@st.composite
def stdlib_messages(draw: st.DrawFn) -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = draw(st.text(alphabet="abc xyz", max_size=20))
    msg.set_content(
        draw(_texts) + "\n", cte=draw(st.sampled_from(["quoted-printable", "base64", None]))
    )
    if draw(st.booleans()):
        msg.add_alternative("<p>" + draw(_texts) + "</p>\n", subtype="html")
    for i in range(draw(st.integers(0, 3))):
        payload = draw(st.binary(min_size=1, max_size=300))
        msg.add_attachment(
            payload, maintype="application", subtype="octet-stream", filename=f"f{i}.bin"
        )
    if draw(st.booleans()):
        inner = EmailMessage()
        inner["Subject"] = "inner"
        inner.set_content(draw(_texts) + "\n")
        inner.add_attachment(
            draw(st.binary(min_size=1, max_size=100)),
            maintype="application",
            subtype="x-y",
            filename="in.bin",
        )
        msg.add_attachment(inner)
    for i, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"==b{i}==")  # no random boundaries inside a strategy
    data = bytes(msg)
    return data.replace(b"\n", b"\r\n") if draw(st.booleans()) else data


@settings(max_examples=150, deadline=None)
@given(stdlib_messages())
def test_every_stdlib_leaf_is_ours(data: bytes) -> None:
    import email
    import email.policy

    ours: set[bytes] = set()
    ctx = ScanContext()

    def walk(blob: bytes) -> None:  # as the engine walks: nested messages are layers
        ours.add(blob)
        with ctx.descend():
            for child in decompose.children(blob, filetype.detect(blob), ctx):
                walk(child.data)

    walk(data)
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)

    def leaves_of(m: email.message.Message) -> list[bytes]:
        out: list[bytes] = []
        for part in m.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                out.append(payload)
        return out

    for leaf in leaves_of(parsed):
        assert leaf in ours or leaf.replace(b"\r\n", b"\n") in {
            o.replace(b"\r\n", b"\n") for o in ours
        }


def _mbox_message(i: int, body: bytes, ctype: bytes = b"text/plain") -> bytes:
    return (b"From a@example.org Mon Jan  1 00:00:00 2024\n"
            b"From: a@example.org\nSubject: m%d\nContent-Type: %s\n\n%s\n" % (i, ctype, body))


def test_every_message_of_an_mbox_is_walked() -> None:
    # The second message used to be a text body of the first, the third a level deeper...:
    # an attachment in message 30 was past the recursion limit, and the mbox was "clean".
    payload = b"\x00attachment in the last message\xff" * 4
    body = (b"--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            + base64.encodebytes(payload) + b"--B--\n")
    mbox = b"".join(_mbox_message(i, b"hello %d" % i) for i in range(29))
    mbox += _mbox_message(30, body, b"multipart/mixed; boundary=B")
    assert len(mime.mbox_messages(mbox)) == 30
    assert payload in [data for data, _, _ in leaves(mbox)]


def test_mbox_split_only_for_mbox_files() -> None:
    assert mime.mbox_messages(b"From: a@b\n\nFrom here on\nFrom me\n") == []
    assert mime.mbox_messages(_mbox_message(0, b"one message only")) == []


def test_decoy_boundaries_do_not_push_the_last_one_out() -> None:
    params = "; ".join(f"boundary=d{i}" for i in range(30))
    cands = mime._boundary_candidates([f"multipart/mixed; {params}; boundary=real"])
    assert b"d0" in cands
    assert b"real" in cands
    many = [f"multipart/mixed; boundary=h{i}" for i in range(30)] + ["multipart/mixed; boundary=z"]
    assert b"z" in mime._boundary_candidates(many)


def test_every_transfer_encoding_kind_is_kept() -> None:
    values = ["7bit", "8bit", "binary", "quoted-printable", "x-uue", "base64"]
    assert mime._cte_tokens(values) == [
        "7bit", "8bit", "binary", "quoted-printable", "uuencode", "base64"]
