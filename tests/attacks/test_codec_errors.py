"""Attack: odd charsets and encodings in part headers (RFC 2047 words, RFC 2231 parameters,
boundaries) made the MIME walker raise, and the engine kept nothing behind the bad header: the
EICAR in the next part went unscanned and the report was "clean plus an error". Every variant
must now find the payload; and an exception that still escapes a decoder must cost only its own
part (its siblings are scanned) and show up in `ScanReport.errors`."""

from __future__ import annotations

import base64
import codecs

import pytest

from zerohour.scan import Engine, load_database, mime
from zerohour.scan.database import default_db_dirs

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


def mail(param: str = "x=1", top: str = 'multipart/mixed; boundary="XX"') -> bytes:
    """A decoy part carrying `param` (Content-Type and Content-Disposition), then EICAR."""
    b64 = base64.encodebytes(EICAR).decode()
    return (
        "From: a@example.org\r\nTo: b@example.org\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {top}\r\n\r\n--XX\r\n"
        f"Content-Type: application/octet-stream; {param}\r\n"
        f"Content-Disposition: attachment; {param}\r\n\r\nhello\r\n--XX\r\n"
        'Content-Type: application/octet-stream; name="e.com"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n"
    ).encode()


PARAMS = {
    "rfc2047-idna": 'filename="=?idna?q?x?="',
    "rfc2047-punycode": 'filename="=?punycode?q?abc-99999999?="',
    "rfc2047-utf7-broken": 'filename="=?utf-7?q?+AGE-broken+?="',
    "rfc2047-rot13": 'filename="=?rot13?q?x?="',
    "rfc2047-hex": 'filename="=?hex?q?zz?="',
    "rfc2047-zlib": 'filename="=?zlib?b?eJw=?="',
    "rfc2047-base64-codec": 'filename="=?base64?q?x?="',
    "rfc2047-unicode-escape": 'filename="=?unicode_escape?q?=5Cx?="',
    "rfc2047-bad-base64": 'filename="=?utf-8?b?####?="',
    "rfc2231-bogus-charset": "filename*=bogus-charset''%41%42",
    "rfc2231-idna": "filename*=idna''%ff%41",
    "rfc2231-punycode": "filename*=punycode''abc-99999999",
    "rfc2231-bad-percent": "filename*=utf-8''%zz%4",
    "rfc2231-continued-punycode": "filename*0*=punycode''abc-; filename*1*=9999",
    "rfc2231-name-raw-unicode-escape": "name*=raw_unicode_escape''%5Cu12",
}
TOPS = {
    "boundary-punycode": "multipart/mixed; boundary*=punycode''abc-99999999",
    "boundary-punycode-and-plain": "multipart/mixed; boundary*=punycode''abc-99999999; "
    'boundary="XX"',
    "boundary-idna": "multipart/mixed; boundary*=idna''%ff; boundary=XX",
    "boundary-unicode-escape": "multipart/mixed; boundary*=unicode-escape''%5Cx; boundary=XX",
    "boundary-rot13-continued": "multipart/mixed; boundary*0*=rot13''KK; boundary=XX",
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_bad_codec_in_part_header_does_not_hide_the_next_part(engine: Engine, name: str) -> None:
    report = engine.scan_bytes(mail(PARAMS[name]))
    assert report.names == ("Eicar-Test-Signature",), (report.names, report.errors)


@pytest.mark.parametrize("name", sorted(TOPS))
def test_bad_codec_in_top_level_boundary(engine: Engine, name: str) -> None:
    report = engine.scan_bytes(mail(top=TOPS[name]))
    assert report.names == ("Eicar-Test-Signature",), (report.names, report.errors)


@pytest.mark.parametrize(
    "charset",
    ["idna", "punycode", "rot13", "hex", "zlib", "base64", "bz2", "uu", "quopri",
     "unicode_escape", "raw_unicode_escape", "undefined", "no-such-charset", "utf-8\x00"],
)
def test_decode_text_never_uses_a_non_charset_codec(charset: str) -> None:
    raw = b"\xff\x00abc-9999\\x"
    assert mime.decode_text(raw, charset) == raw.decode("latin-1")


def test_decode_text_keeps_real_charsets() -> None:
    assert mime.decode_text("é".encode(), "utf-8") == "é"
    assert mime.decode_text("é".encode("utf-16"), "UTF-16") == "é"
    assert mime.decode_text(codecs.encode("ü", "iso-8859-15"), "iso-8859-15") == "ü"
    assert mime.decode_text("日本".encode("iso2022_jp"), "iso-2022-jp") == "日本"


def test_exception_in_one_part_is_an_error_and_siblings_are_scanned(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unit test of the walker's containment: a decoder that still raises (a future bug) on the
    # decoy part's name costs that part only.
    real = mime._decode_words

    def explode(value: str) -> str:
        if "boom" in value:
            raise UnicodeError("decoder bug")
        return real(value)

    monkeypatch.setattr(mime, "_decode_words", explode)
    mime._filename_cached.cache_clear()
    report = engine.scan_bytes(mail('filename="boom.txt"'))
    assert report.names == ("Eicar-Test-Signature",)
    # The same with allmatch: the error is reported, not swallowed.
    every = Engine(engine.db, allmatch=True).scan_bytes(mail('filename="boom.txt"'))
    assert "Eicar-Test-Signature" in every.names
    assert any("decoder bug" in e for e in every.errors), every.errors
    mime._filename_cached.cache_clear()
