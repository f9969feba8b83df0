"""The content of an opaque-signed S/MIME message (`application/pkcs7-mime;
smime-type=signed-data`, `smime.p7m`): a CMS SignedData whose encapsulated content is a whole
MIME entity, attachments included.

Mail clients (Thunderbird, Outlook, Apple Mail) unwrap it and show the attachments inside; to a
scanner that does not, it is one opaque binary blob holding base64 text. This is a small BER
reader for exactly that path (ContentInfo -> SignedData -> encapContentInfo -> eContent),
definite and indefinite lengths, the content as one OCTET STRING or in constructed chunks
(what `openssl cms -stream` writes). Signatures are not checked: an unsigned or badly signed
message shows its attachments all the same. Enveloped (encrypted) S/MIME cannot be opened
without the recipient's key and is left alone, unless a password opens it: when a recipient
is a password (`openssl cms -encrypt -pwri_password`, the password in the mail's text) or a
pre-shared key, it is a container the sender hands a password for, as an encrypted zip is
(`password_only`: `Heuristics.Encrypted.CMS`).
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.scan.encodings import Check

#: OID 1.2.840.113549.1.7.2 (id-signedData), DER-encoded with its tag and length.
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")
#: id-envelopedData (1.2.840.113549.1.7.3) and id-ct-authEnvelopedData (1.2.840.113549.1.9.16.1.23)
_ENVELOPED_OIDS = (bytes.fromhex("06092a864886f70d010703"),
                   bytes.fromhex("060b2a864886f70d0109100117"))
#: RecipientInfo choices opened by what the sender shares rather than by a certificate:
#: kekri ([2], a pre-shared key) and pwri ([3], a password); ktri (a SEQUENCE), kari ([1]) and
#: ori ([4]: RFC 9629's KEM recipients among them) are a recipient's own key
_SHARED_SECRETS = frozenset({0xA2, 0xA3})
_MAX_DEPTH = 32
_MAX_ITEMS = 1 << 20


class _Bad(Exception):
    """Not BER, or not the structure we follow."""


class _Reader:
    def __init__(self, data: bytes, check: Check) -> None:
        self.data = data
        self.check = check
        self.items = 0
        self.ends: dict[int, int] = {}  # an indefinite item's content start -> its end

    def header(self, pos: int) -> tuple[int, int, int | None]:
        """(tag, content start, content length or None for indefinite) of the item at pos."""
        data = self.data
        self.items += 1
        if self.items > _MAX_ITEMS:
            raise _Bad
        if self.check is not None and not self.items % 4096:
            self.check()
        if pos + 2 > len(data):
            raise _Bad
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:  # high tag number: base-128 digits
            while pos < len(data) and data[pos] & 0x80:
                pos += 1
            pos += 1
        if pos >= len(data):
            raise _Bad
        first = data[pos]
        pos += 1
        if first < 0x80:
            return tag, pos, first
        if first == 0x80:
            return tag, pos, None
        n = first & 0x7F
        if n > 8 or pos + n > len(data):
            raise _Bad
        length = int.from_bytes(data[pos : pos + n], "big")
        if pos + n + length > len(data):
            raise _Bad
        return tag, pos + n, length

    def children(self, start: int, length: int | None, depth: int
                 ) -> Iterator[tuple[int, int, int | None, int]]:
        """(tag, content start, content length, end) of each item inside a constructed one."""
        if depth > _MAX_DEPTH:
            raise _Bad
        end = None if length is None else start + length
        pos = start
        while True:
            if end is not None and pos >= end:
                return
            if end is None and self.data[pos : pos + 2] == b"\x00\x00":
                return
            tag, cstart, clen = self.header(pos)
            item_end = self.end(tag, cstart, clen, depth + 1)
            yield tag, cstart, clen, item_end
            pos = item_end

    def end(self, tag: int, start: int, length: int | None, depth: int) -> int:
        """Where an item ends (after its end-of-contents octets when indefinite); each
        indefinite item is walked once (round 5: every level walked its content again, and
        400,000 empty chunks passed the item cap)."""
        if length is not None:
            return start + length
        if not tag & 0x20:
            raise _Bad  # indefinite length on a primitive item
        known = self.ends.get(start)
        if known is not None:
            return known
        pos = start
        for _tag, _cstart, _clen, item_end in self.children(start, None, depth):
            pos = item_end
        if self.data[pos : pos + 2] != b"\x00\x00":
            raise _Bad
        self.ends[start] = pos + 2
        return pos + 2

    def first(self, start: int, length: int | None, depth: int, count: int
              ) -> list[tuple[int, int, int | None, int]]:
        out = []
        for item in self.children(start, length, depth):
            out.append(item)
            if len(out) == count:
                break
        return out

    def octets(self, tag: int, start: int, length: int | None, depth: int) -> bytes:
        """An OCTET STRING's value, primitive or constructed (chunks joined)."""
        if tag == 0x04 and length is not None:
            return self.data[start : start + length]
        if tag != 0x24:
            raise _Bad
        return b"".join(self.octets(t, s, n, depth + 1)
                        for t, s, n, _ in self.children(start, length, depth))


def _content(r: _Reader, oids: tuple[bytes, ...]) -> tuple[int, int | None] | None:
    """The SEQUENCE a CMS ContentInfo of one of these content types holds in its [0]
    EXPLICIT content: (its content start, length), else None. The type is compared by the
    OID's value, whatever its length octets (round 5: BER's long forms, `30 84 00 00 ..` and
    `06 81 09`, which OpenSSL reads, hid it from a comparison of DER bytes)."""
    data = r.data
    values = [oid[2:] for oid in oids]
    if data[:1] != b"\x30" or not any(v in data[:64] for v in values):
        return None
    _tag, start, length = r.header(0)
    info = r.first(start, length, 1, 2)  # ContentInfo: contentType, [0] content
    if (len(info) < 2 or info[0][0] != 0x06 or info[0][2] is None
            or data[info[0][1] : info[0][1] + info[0][2]] not in values or info[1][0] != 0xA0):
        return None
    inner = r.first(info[1][1], info[1][2], 2, 1)
    if not inner or inner[0][0] != 0x30:
        return None
    return inner[0][1], inner[0][2]


def signed_content(data: bytes, check: Check = None) -> bytes | None:
    """The encapsulated content of a CMS SignedData (opaque-signed S/MIME), else None."""
    r = _Reader(data, check)
    try:
        sd = _content(r, (SIGNED_DATA_OID,))
        if sd is None:
            return None
        fields = r.first(*sd, 3, 3)  # version, digestAlgorithms, encapContentInfo...
        if len(fields) < 3 or fields[2][0] != 0x30:
            return None
        encap = r.first(fields[2][1], fields[2][2], 4, 2)  # eContentType, [0] eContent
        if len(encap) < 2 or encap[1][0] != 0xA0:
            return None  # detached signature: the content travels beside it, in clear
        inner = r.first(encap[1][1], encap[1][2], 5, 1)
        if not inner:
            return None
        t, s, n, _ = inner[0]
        return r.octets(t, s, n, 6)
    except (_Bad, IndexError, RecursionError):
        return None


def password_only(data: bytes, check: Check = None) -> bool:
    """A CMS EnvelopedData or AuthEnvelopedData (encrypted S/MIME) that a password or a
    pre-shared key opens: a recipient of that kind, whatever others it names (round 5: a
    throwaway certificate beside the password). One whose structure cannot be read to its
    recipients counts too (fail closed: a reader's cap must not pass it as clean)."""
    r = _Reader(data, check)
    try:
        env = _content(r, _ENVELOPED_OIDS)
    except (_Bad, IndexError, RecursionError):
        return False
    if env is None:
        return False
    try:
        # version, [0] originatorInfo OPTIONAL, recipientInfos (a SET)
        fields = r.first(*env, 3, 3)
        infos = next((f for f in fields[1:] if f[0] == 0x31), None)
        if infos is None:
            return True
        kinds = {tag for tag, _s, _n, _e in r.children(infos[1], infos[2], 4)}
    except (_Bad, IndexError, RecursionError):
        return True
    return bool(kinds & _SHARED_SECRETS)
