"""The files OpenPGP messages carry when they are not encrypted: signed (`gpg -s`, compressed by
default), stored (`gpg --store`, compressed or not), armored (`-----BEGIN PGP MESSAGE-----`) or
binary, attached or inline. `gpg -d` prints the file without the sender's key (it only warns
that the signature cannot be checked), so round 9 delivered clam.exe in each.

Hand-written: the packet framing (RFC 4880 4.2, old and new formats, partial body lengths)
and the two packets that matter here, compressed data (5.6: ZIP, ZLIB, BZip2) and literal data
(5.9), are a few dozen lines; the Python OpenPGP libraries parse keys and crypto we do not
need. Messages encrypted to a person's key are left alone (the key is not ours, and mail
encrypted to its recipient is no container the gateway should refuse); one encrypted with a
passphrase only (`gpg -c`, the passphrase in the mail's text) is `Heuristics.Encrypted.OpenPGP`,
as an encrypted zip is (round 10).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from zerohour.errors import EncryptedContent
from zerohour.scan import encodings
from zerohour.scan.archive import bzip2_bounded, zlib_bounded
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

_COMPRESSED, _LITERAL, _SIGNATURE, _ONE_PASS, _MARKER = 8, 11, 2, 4, 10
_PUBLIC_KEY_SESSION, _PASSPHRASE_SESSION = 1, 3
_ENCRYPTED_DATA = frozenset({9, 18, 20})  # SED, SEIPD, AEAD
#: Packets a signed, stored or passphrase-encrypted message starts with (a binary layer is
#: tried only then).
_OPENING = frozenset({_COMPRESSED, _LITERAL, _ONE_PASS, _SIGNATURE, _MARKER,
                      _PASSPHRASE_SESSION})
_MAX_PACKETS = 4096
_MAX_NESTING = 4

_ARMOR = re.compile(rb"-----BEGIN PGP (?:MESSAGE|ARMORED FILE)(?:, PART [0-9/]+)?-----\r?\n")
_ARMOR_END = re.compile(rb"\r?\n-----END PGP ")
_HEADER_LINE = re.compile(rb"[ -~]+: [^\n]*\r?\n")


def armored(text: bytes) -> Iterator[bytes]:
    """The binary messages inside ASCII armor (armor headers and the CRC line dropped)."""
    if b"-----BEGIN PGP" not in text:
        return
    for m in _ARMOR.finditer(text):
        pos = m.end()
        while (h := _HEADER_LINE.match(text, pos)) is not None:
            pos = h.end()
        end = _ARMOR_END.search(text, pos)
        body = text[pos : end.start() if end else len(text)]
        lines = [ln.strip() for ln in body.splitlines()]
        lines = [ln for ln in lines if ln and not (ln.startswith(b"=") and len(ln) == 5)]
        # (leniently, as gpg reads armor: junk skipped, padding optional)
        yield encodings.base64_decode(b"".join(lines))


def looks_like_message(data: bytes) -> bool:
    """A binary layer that opens with an OpenPGP packet a signed or stored message starts
    with (checked further by `literal_files`)."""
    if len(data) < 4 or not data[0] & 0x80:
        return False
    tag = data[0] & 0x3F if data[0] & 0x40 else (data[0] >> 2) & 0x0F
    return tag in _OPENING


def literal_files(data: bytes, ctx: ScanContext, depth: int = 0) -> Iterator[Child]:
    """The literal data packets of a message, inside compressed packets too; a message that
    does not parse or decompress is `Heuristics.Broken.OpenPGP` (armor says what it is)."""
    yield from _literal_files(data, ctx, depth, quiet=False)


def sniffed_literal_files(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """`literal_files` of a binary layer that only opens like a message (`looks_like_message`:
    random bytes do, one time in a few dozen): nothing is said of one that does not parse."""
    yield from _literal_files(data, ctx, 0, quiet=True)


def _literal_files(data: bytes, ctx: ScanContext, depth: int, quiet: bool) -> Iterator[Child]:
    pos, n = 0, len(data)
    passphrase = to_a_key = False  # a symmetric-key / public-key session key packet was seen
    for _ in range(_MAX_PACKETS):
        ctx.check_time()
        if pos >= n or not data[pos] & 0x80:
            return
        parsed = _packet(data, pos)
        if parsed is None:
            if not quiet:
                ctx.broken("OpenPGP")
            return
        tag, body, pos = parsed
        if tag == _PUBLIC_KEY_SESSION:
            to_a_key = True
        elif tag == _PASSPHRASE_SESSION and _session_packet(body):
            passphrase = True
        elif tag in _ENCRYPTED_DATA and passphrase and not to_a_key:
            # `gpg -c`: opened with a passphrase (the mail tells it), like an encrypted zip
            raise EncryptedContent("OpenPGP")
        if tag == _COMPRESSED and body and depth < _MAX_NESTING:
            inner = _decompress(body[0], body[1:], ctx, quiet)
            if inner is None and not quiet:
                ctx.unsupported("OpenPGP", f"Compression{body[0]}")
            elif inner:
                yield from _literal_files(inner, ctx, depth + 1, quiet)
        elif tag == _LITERAL and len(body) >= 6:
            name_len = body[1]
            name = body[2 : 2 + name_len].decode("utf-8", "replace") or None
            content = body[2 + name_len + 4 :]
            if content:
                ctx.charge_child(len(content))
                yield Child(data=content, name=name, origin="openpgp-literal", is_attachment=True)


def _session_packet(body: bytes) -> bool:
    """A symmetric-key encrypted session key packet that holds together (RFC 9580 5.3):
    version 4 (cipher, S2K) or 5/6, a known cipher, a known S2K specifier."""
    if len(body) < 4:
        return False
    if body[0] == 4:
        return 1 <= body[1] <= 13 and body[2] in (0, 1, 3, 4)
    return body[0] in (5, 6)


def _packet(data: bytes, pos: int) -> tuple[int, bytes, int] | None:
    """(tag, body, offset after it) of the packet at `pos`; None if its header runs out."""
    c = data[pos]
    pos += 1
    if not c & 0x40:  # old format: the length's size is in the tag byte
        tag, kind = (c >> 2) & 0x0F, c & 3
        if kind == 3:
            return tag, data[pos:], len(data)  # indeterminate: to the end
        size = 1 << kind
        if pos + size > len(data):
            return None
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        return tag, data[pos : pos + length], pos + length
    tag = c & 0x3F
    parts: list[bytes] = []
    while True:  # new format, with partial body lengths (streamed data)
        if pos >= len(data):
            return None
        first = data[pos]
        if first < 192:
            length, pos = first, pos + 1
        elif first < 224:
            if pos + 2 > len(data):
                return None
            length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
        elif first == 255:
            if pos + 5 > len(data):
                return None
            length, pos = int.from_bytes(data[pos + 1 : pos + 5], "big"), pos + 5
        else:  # a partial length: this much, then another length
            length = 1 << (first & 0x1F)
            parts.append(data[pos + 1 : pos + 1 + length])
            pos += 1 + length
            continue
        parts.append(data[pos : pos + length])
        return tag, b"".join(parts), pos + length


def _decompress(algorithm: int, body: bytes, ctx: ScanContext, quiet: bool) -> bytes | None:
    """A compressed packet's content (bounded); None for an algorithm we do not know."""
    if algorithm == 0:
        return body
    if algorithm in (1, 2):  # ZIP is raw deflate, ZLIB has the zlib header
        out, _end, complete = zlib_bounded(body, -15 if algorithm == 1 else 15, ctx)
    elif algorithm == 3:
        out, complete = bzip2_bounded(body, ctx)
    else:
        return None
    if not complete and not quiet:
        ctx.broken("OpenPGP")
    return out
