"""MIME evasion corpus: malformed or ambiguous mail that clients still open must not hide its
attachment. Each case carries the EICAR test string base64- (or otherwise) encoded, so the raw
message never contains it; the decomposition must produce a layer that does. A clean control of
every case (same structure, harmless payload) must yield no EICAR.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import pytest

from zerohour.scan import decompose, filetype
from zerohour.scan.limits import ScanContext

# Assembled at run time so that the repository never holds the literal test string.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLEAN = b"Just a harmless attachment, nothing to see here. " * 2


def layers(data: bytes) -> list[bytes]:
    """Every layer the engine would scan (root first), walked the way the engine walks."""
    ctx = ScanContext()
    out: list[bytes] = []

    def walk(blob: bytes, name: str | None) -> None:
        out.append(blob)
        ft = filetype.detect(blob)
        with ctx.descend():
            for child in decompose.children(blob, ft, ctx, name):
                walk(child.data, child.name)

    walk(data, None)
    return out


def b64(payload: bytes, width: int = 76) -> bytes:
    enc = base64.b64encode(payload)
    return b"\r\n".join(enc[i : i + width] for i in range(0, len(enc), width)) + b"\r\n"


HEAD = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\nMIME-Version: 1.0\r\n"


def _mp(ctype: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return HEAD + extra + b"Content-Type: " + ctype + b"\r\n\r\n" + body


def _part(payload: bytes, *, cte: bytes = b"base64", headers: bytes = b"") -> bytes:
    enc = b64(payload) if cte == b"base64" else payload
    return (
        b'Content-Type: application/octet-stream; name="x.com"\r\n'
        b"Content-Transfer-Encoding: " + cte + b"\r\n" + headers + b"\r\n" + enc
    )


def case_baseline(p: bytes) -> bytes:
    body = b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX\r\n" + _part(p) + b"--XX--\r\n"
    return _mp(b'multipart/mixed; boundary="XX"', body)


def case_duplicate_boundary_last(p: bytes) -> bytes:
    body = b"--real\r\n" + _part(p) + b"--real--\r\n"
    return _mp(b'multipart/mixed; boundary="decoy"; boundary="real"', body)


def case_duplicate_boundary_first(p: bytes) -> bytes:
    body = b"--real\r\n" + _part(p) + b"--real--\r\n"
    return _mp(b'multipart/mixed; boundary="real"; boundary="decoy"', body)


def case_quoted_escaped_boundary(p: bytes) -> bytes:
    body = b"--real\r\n" + _part(p) + b"--real--\r\n"
    return _mp(b'multipart/mixed; boundary="re\\al"', body)


def case_raw_quoted_boundary(p: bytes) -> bytes:
    # A client that does not unquote takes the quotes as part of the boundary.
    body = b'--"q"\r\n' + _part(p) + b'--"q"--\r\n'
    return _mp(b'multipart/mixed; boundary=""q""', body)


def case_single_quoted_boundary(p: bytes) -> bytes:
    body = b"--XX\r\n" + _part(p) + b"--XX--\r\n"
    return _mp(b"multipart/mixed; boundary='XX'", body)


def case_duplicate_content_type_text_first(p: bytes) -> bytes:
    body = b"--XX\r\n" + _part(p) + b"--XX--\r\n"
    return HEAD + (
        b"Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" + body
    )


def case_duplicate_content_type_multipart_first(p: bytes) -> bytes:
    body = b"--XX\r\n" + _part(p) + b"--XX--\r\n"
    return HEAD + (
        b"Content-Type: multipart/mixed; boundary=decoy\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n" + body
    )


def case_duplicate_cte(p: bytes) -> bytes:
    part = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 7bit\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(p)
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_duplicate_cte_reversed(p: bytes) -> bytes:
    part = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + b64(p)
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_base64_junk_chars(p: bytes) -> bytes:
    enc = base64.b64encode(p)
    junky = b"".join(enc[i : i + 5] + b"!*" for i in range(0, len(enc), 5))
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + junky + b"\r\n--XX--\r\n")


def case_base64_missing_padding(p: bytes) -> bytes:
    enc = base64.b64encode(p + b"!").rstrip(b"=")
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + enc + b"\r\n--XX--\r\n")


def case_base64_inner_whitespace(p: bytes) -> bytes:
    enc = base64.b64encode(p)
    spaced = b" \t ".join(enc[i : i + 7] for i in range(0, len(enc), 7))
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + spaced + b"\r\n--XX--\r\n")


def case_base64_padding_inside(p: bytes) -> bytes:
    # A decoy chunk with padding first: decoders that stop at '=' see only the decoy.
    enc = base64.b64encode(b"ab") + base64.b64encode(p)
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + enc + b"\r\n--XX--\r\n")


def case_rfc2231_boundary(p: bytes) -> bytes:
    body = b"--real-b\r\n" + _part(p) + b"--real-b--\r\n"
    return _mp(b"multipart/mixed; boundary*=utf-8''real%2Db", body)


def case_rfc2231_continued_boundary(p: bytes) -> bytes:
    body = b"--realbound\r\n" + _part(p) + b"--realbound--\r\n"
    return _mp(b'multipart/mixed; boundary="decoy"; boundary*0="real"; boundary*1="bound"', body)


def case_rfc2231_filename(p: bytes) -> bytes:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*0*=utf-8''x%2E; filename*1=com\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(p)
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_missing_final_boundary(p: bytes) -> bytes:
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + _part(p))


def case_missing_blank_line_top(p: bytes) -> bytes:
    return (
        HEAD + b"Content-Type: multipart/mixed; boundary=XX\r\n--XX\r\n" + _part(p) + b"--XX--\r\n"
    )


def case_missing_blank_line_part(p: bytes) -> bytes:
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" + b64(
        p
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_folded_boundary_rfc(p: bytes) -> bytes:
    body = b"--ab cd\r\n" + _part(p) + b"--ab cd--\r\n"
    return HEAD + b'Content-Type: multipart/mixed; boundary="ab\r\n cd"\r\n\r\n' + body


def case_folded_boundary_tight(p: bytes) -> bytes:
    body = b"--abcd\r\n" + _part(p) + b"--abcd--\r\n"
    return HEAD + b'Content-Type: multipart/mixed; boundary="ab\r\n cd"\r\n\r\n' + body


def case_folded_header_name_line(p: bytes) -> bytes:
    body = b"--XX\r\n" + _part(p) + b"--XX--\r\n"
    return HEAD + b"Content-Type:\r\n multipart/mixed;\r\n\tboundary=XX\r\n\r\n" + body


def case_bare_lf(p: bytes) -> bytes:
    return case_baseline(p).replace(b"\r\n", b"\n")


def case_bare_cr(p: bytes) -> bytes:
    return case_baseline(p).replace(b"\r\n", b"\r")


def case_mixed_line_ends(p: bytes) -> bytes:
    # CRLF headers, but the delimiters end in bare LF.
    body = b"--XX\n" + _part(p) + b"--XX--\n"
    return _mp(b"multipart/mixed; boundary=XX", body)


def case_nested_rfc822(p: bytes) -> bytes:
    inner = case_baseline(p)
    part = b"Content-Type: message/rfc822\r\n\r\n" + inner
    return _mp(b"multipart/mixed; boundary=OUT", b"--OUT\r\n" + part + b"\r\n--OUT--\r\n")


def case_nested_rfc822_base64(p: bytes) -> bytes:
    inner = case_baseline(p)
    part = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(inner)
    return _mp(b"multipart/mixed; boundary=OUT", b"--OUT\r\n" + part + b"--OUT--\r\n")


def case_deep_nesting(p: bytes) -> bytes:
    body = b"--L5\r\n" + _part(p) + b"--L5--\r\n"
    for level in range(4, -1, -1):
        inner = b"Content-Type: multipart/mixed; boundary=L%d\r\n\r\n" % (level + 1) + body
        body = b"--L%d\r\n" % level + inner + b"\r\n--L%d--\r\n" % level
    return _mp(b"multipart/mixed; boundary=L0", body)


def case_multipart_without_boundary(p: bytes) -> bytes:
    body = b"--guess\r\n" + _part(p) + b"--guess--\r\n"
    return _mp(b"multipart/mixed", body)


def case_declared_boundary_absent(p: bytes) -> bytes:
    body = b"--other\r\n" + _part(p) + b"--other--\r\n"
    return _mp(b"multipart/mixed; boundary=nothere", body)


def case_content_after_close(p: bytes) -> bytes:
    body = (
        b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n--XX\r\n"
        + _part(p)
        + b"--XX--\r\n"
    )
    return _mp(b"multipart/mixed; boundary=XX", body)


def case_epilogue_part(p: bytes) -> bytes:
    body = b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n" + _part(p)
    return _mp(b"multipart/mixed; boundary=XX", body)


def case_encoded_multipart(p: bytes) -> bytes:
    inner = b"--XX\r\n" + _part(p) + b"--XX--\r\n"
    return HEAD + (
        b"Content-Type: multipart/mixed; boundary=XX\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64(inner)
    )


@pytest.mark.parametrize(
    "cte", [b"base-64", b"x-base64", b"base64 (really)", b'"base64"', b"BASE64"]
)
def test_odd_cte_spellings(cte: bytes) -> None:
    mail = _mp(
        b"multipart/mixed; boundary=XX",
        b"--XX\r\n"
        + _part(EICAR, cte=b"base64").replace(
            b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: " + cte
        )
        + b"--XX--\r\n",
    )
    assert any(EICAR in x for x in layers(mail)[1:])


def case_unknown_cte_base64_body(p: bytes) -> bytes:
    part = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + b64(p)
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_headerless_part(p: bytes) -> bytes:
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n\r\n" + b64(p) + b"--XX--\r\n")


def case_no_semicolon(p: bytes) -> bytes:
    return _mp(b"multipart/mixed boundary=XX", b"--XX\r\n" + _part(p) + b"--XX--\r\n")


def case_delimiter_trailing_junk(p: bytes) -> bytes:
    return _mp(b"multipart/mixed; boundary=XX", b"--XX junk\r\n" + _part(p) + b"--XX-- junk\r\n")


def case_space_before_colon(p: bytes) -> bytes:
    body = b"--XX\r\n" + _part(p) + b"--XX--\r\n"
    return HEAD + b"Content-Type : multipart/mixed; boundary=XX\r\n\r\n" + body


def case_uppercase_names(p: bytes) -> bytes:
    part = b"CONTENT-TYPE: APPLICATION/OCTET-STREAM\r\nCONTENT-TRANSFER-ENCODING: BASE64\r\n\r\n"
    return (
        HEAD
        + b"CONTENT-TYPE: MULTIPART/MIXED; BOUNDARY=XX\r\n\r\n--XX\r\n"
        + part
        + b64(p)
        + (b"--XX--\r\n")
    )


def case_quoted_printable(p: bytes) -> bytes:
    qp = binascii.b2a_qp(p, quotetabs=True)
    qp = qp[:20] + b"=\r\n" + qp[20:]  # a soft line break splits the payload
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + qp + b"\r\n--XX--\r\n")


def case_qp_fully_encoded(p: bytes) -> bytes:
    qp = b"".join(b"=%02x" % c for c in p)  # lowercase hex, every byte escaped
    part = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + qp + b"\r\n--XX--\r\n")


def case_uuencode_in_body(p: bytes) -> bytes:
    uu = b"".join(binascii.b2a_uu(p[i : i + 45]) for i in range(0, len(p), 45))
    return (
        HEAD
        + b"Content-Type: text/plain\r\n\r\nsee file\r\nbegin 644 x.com\r\n"
        + uu
        + b"`\r\nend\r\n"
    )


def case_uuencode_cte(p: bytes) -> bytes:
    uu = b"".join(binascii.b2a_uu(p[i : i + 45]) for i in range(0, len(p), 45))
    part = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    )
    return _mp(
        b"multipart/mixed; boundary=XX",
        b"--XX\r\n" + part + b"begin 644 x\r\n" + uu + b"end\r\n--XX--\r\n",
    )


def case_yenc(p: bytes) -> bytes:
    enc = bytearray()
    for c in p:
        o = (c + 42) & 0xFF
        if o in (0, 10, 13, 61):
            enc += bytes((61, (o + 64) & 0xFF))
        else:
            enc.append(o)
    body = (
        b"=ybegin line=128 size=%d name=x.com\r\n" % len(p)
        + bytes(enc)
        + b"\r\n=yend size=%d\r\n" % len(p)
    )
    return HEAD + b"Content-Type: text/plain\r\n\r\n" + body


def case_single_part_base64(p: bytes) -> bytes:
    return (
        HEAD
        + b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64(p)
    )


def case_mbox_from_line(p: bytes) -> bytes:
    return b"From someone@example.org Mon Jan  1 00:00:00 2024\r\n" + case_baseline(p)


def case_attachment_is_zip(p: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.com", p)
    return case_baseline(buf.getvalue())


def _binhex(name: bytes, data: bytes) -> bytes:
    alphabet = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
    raw = bytes((len(name),)) + name + b"\x00TEXTttxt\x00\x00" + len(data).to_bytes(4, "big")
    raw += bytes(6) + data + bytes(4)
    raw = raw.replace(b"\x90", b"\x90\x00")
    nbits = len(raw) * 8
    pad = (-nbits) % 6
    bits = int.from_bytes(raw, "big") << pad
    n = (nbits + pad) // 6
    chars = bytes(alphabet[(bits >> (6 * (n - 1 - i))) & 63] for i in range(n))
    return b"\r\n".join(chars[i : i + 64] for i in range(0, len(chars), 64))


def case_binhex_in_body(p: bytes) -> bytes:
    text = b"(This file must be converted with BinHex 4.0)\r\n:" + _binhex(b"x.com", p) + b":\r\n"
    return HEAD + b"Content-Type: text/plain\r\n\r\nfile follows\r\n" + text


def case_binhex_part_without_marker(p: bytes) -> bytes:
    part = (
        b"Content-Type: application/mac-binhex40; name=x.hqx\r\n\r\n:" + _binhex(b"x", p) + b":\r\n"
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_tnef_winmail(p: bytes) -> bytes:
    import struct

    def attr(level: int, attr_id: int, body: bytes) -> bytes:
        return struct.pack("<BII", level, attr_id, len(body)) + body + b"\x00\x00"

    blob = b"\x78\x9f\x3e\x22\x01\x00" + attr(2, 0x00018010, b"x.com\x00") + attr(2, 0x0006800F, p)
    part = (
        b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(blob)
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_html_smuggling_data_uri(p: bytes) -> bytes:
    html = (
        b"<html><body><a download='x.com' href='data:application/octet-stream;base64,"
        + base64.b64encode(p)
        + b"'>open</a></body></html>"
    )
    part = b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(html)
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")


def case_html_smuggling_js_blob(p: bytes) -> bytes:
    html = (
        b'<html><body><script>var b = atob("'
        + base64.b64encode(p)
        + b'"); var blob = new Blob([b]);</script></body></html>'
    )
    part = (
        b"Content-Type: text/html; name=invoice.html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + b64(html) + b"--XX--\r\n")


def case_base64_junk_line_shifts_alignment(p: bytes) -> bytes:
    # A junk line of alphabet letters: a one-stream decoder is shifted by 5 sextets.
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    body = b"Hello\r\n" + b64(p)
    return _mp(b"multipart/mixed; boundary=XX", b"--XX\r\n" + part + body + b"--XX--\r\n")


def case_nested_same_boundary(p: bytes) -> bytes:
    inner = b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n" + _part(p)
    body = b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX\r\n" + inner + b"--XX--\r\n"
    return _mp(b"multipart/mixed; boundary=XX", body)


def case_known_headers_pushed_far_down(p: bytes) -> bytes:
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 60) for i in range(200))
    return filler + case_baseline(p)


def case_preamble_line_before_headers(p: bytes) -> bytes:
    return b"garbage line that is not a header\r\n" + case_baseline(p)


CASES: dict[str, Callable[[bytes], bytes]] = {
    name[len("case_") :]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_attachment_is_found(name: str) -> None:
    mail = CASES[name](EICAR)
    assert EICAR not in mail, "the raw message must not hold the plain payload"
    found = [x for x in layers(mail)[1:] if EICAR in x]
    assert found, f"{name}: EICAR not among the decomposed layers"


@pytest.mark.parametrize("name", sorted(CASES))
def test_clean_control_yields_no_eicar(name: str) -> None:
    mail = CASES[name](CLEAN)
    all_layers = layers(mail)
    assert not any(EICAR in x for x in all_layers)
    assert any(CLEAN in x for x in all_layers[1:]), f"{name}: clean payload not decoded either"
