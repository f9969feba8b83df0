"""DSSE envelopes: sign and verify over the pre-authentication encoding, never re-serialised JSON.

Order matters for safety: the size cap is checked on the raw bytes before any JSON parsing, and
the signature is checked before the payload is parsed (`payload.parse_payload` runs only on bytes
this module has authenticated).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from zerohour.errors import NoticeError
from zerohour.notices.keys import keyid_of

NOTICE_TYPE = "application/vnd.zerohour.notice+json"
MANIFEST_TYPE = "application/vnd.zerohour.manifest+json"
MAX_ENVELOPE = 64 * 1024
MAX_DATAGRAM = 1200
MAX_DEPTH = 32  # JSON nesting; the deepest legitimate document (a state notice) needs 6
_MAX_SIGNATURES = 4
# A string runs to its closing quote or, unterminated, to the end: possessive and anchored so
# the scan stays linear on hostile input such as `"\"\"\"...` (no retry from every quote).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = re.compile(rb"[\[{]+")


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when JSON `data` nests arrays/objects more than `limit` deep (or, unbalanced,
    opens that many levels). A cheap scan *before* parsing: `json.loads` recurses once per
    level, and a payload of `[[[[...` thousands deep raises RecursionError instead of a
    refusal. Strings are cut out first (a `[` inside a string is not nesting); then each round
    removes every innermost `[]`/`{}` pair, so `limit` rounds clear any document at most
    `limit` deep. At most `limit` C-speed passes over the brackets, no Python loop per byte
    (a 30 MB hostile poll page takes a few seconds at worst)."""
    rest = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for rounds in range(limit + 1):
        if not rest:
            return False
        shorter = rest.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(rest):
            # Unbalanced (truncated, or `[[[[` that never closes): not JSON, and the parser
            # will say so, but first it descends into the longest run of openers.
            run = max((len(m) for m in _OPENERS.findall(rest)), default=0)
            return rounds + run > limit
        rest = shorter
    return True


def loads_bounded(data: bytes, reason: str, what: str, limit: int = MAX_DEPTH) -> Any:
    """`json.loads` for untrusted bytes: depth checked first (NoticeError `too_deep`), parse
    errors become NoticeError(`reason`)."""
    if too_deep(data, limit):
        raise NoticeError("too_deep", f"{what} nests deeper than {limit}")
    try:
        return json.loads(data)
    except RecursionError:  # unreachable after the scan; never let it escape
        raise NoticeError("too_deep", f"{what} nests too deep") from None
    except (ValueError, UnicodeDecodeError):
        raise NoticeError(reason, f"{what} is not JSON") from None


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode("ascii")


def sign(
    payload: bytes,
    keys: Ed25519PrivateKey | list[Ed25519PrivateKey],
    payload_type: str = NOTICE_TYPE,
) -> Envelope:
    """Sign with one key, or several (during a key rotation both old and new sign)."""
    key_list = keys if isinstance(keys, list) else [keys]
    message = pae(payload_type, payload)
    sigs = tuple(Signature(keyid_of(k.public_key()), k.sign(message)) for k in key_list)
    return Envelope(payload_type, payload, sigs)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise NoticeError("malformed", f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NoticeError("malformed", f"{what} is not valid base64") from None


def parse_envelope(raw: bytes, max_size: int = MAX_ENVELOPE) -> Envelope:
    """Structural parse of an envelope; the size cap is enforced before JSON is touched."""
    if len(raw) > max_size:
        raise NoticeError("oversize", f"envelope of {len(raw)} bytes exceeds {max_size}")
    obj = loads_bounded(raw, "malformed", "envelope")
    if not isinstance(obj, dict):
        raise NoticeError("malformed", "envelope must be a JSON object")
    ptype = obj.get("payloadType")
    if not isinstance(ptype, str):
        raise NoticeError("malformed", "payloadType missing")
    payload = _b64(obj.get("payload"), "payload")
    raw_sigs = obj.get("signatures")
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise NoticeError("unsigned", "envelope carries no signature")
    if len(raw_sigs) > _MAX_SIGNATURES:
        raise NoticeError("malformed", "too many signatures")
    sigs: list[Signature] = []
    for s in raw_sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str):
            raise NoticeError("malformed", "signature entry needs a keyid")
        sigs.append(Signature(s["keyid"], _b64(s.get("sig"), "sig")))
    return Envelope(ptype, payload, tuple(sigs))


def verify(
    env: Envelope, keys: Mapping[str, Ed25519PublicKey], payload_type: str = NOTICE_TYPE
) -> tuple[str, bytes]:
    """Return (keyid, payload) if any signature is valid under a pinned key.

    Refusal reasons: `wrong_type`, `unknown_key` (no signature names a pinned key),
    `bad_signature` (a pinned key's signature does not verify).
    """
    if env.payload_type != payload_type:
        raise NoticeError("wrong_type", f"payloadType {env.payload_type[:80]!r}")
    message = pae(env.payload_type, env.payload)
    known = [s for s in env.signatures if s.keyid in keys]
    if not known:
        raise NoticeError("unknown_key", "no signature by a pinned key")
    for s in known:
        try:
            keys[s.keyid].verify(s.sig, message)
        except InvalidSignature:
            continue
        return s.keyid, env.payload
    raise NoticeError("bad_signature", "signature does not verify")


def open_envelope(
    raw: bytes,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    max_size: int = MAX_ENVELOPE,
    payload_type: str = NOTICE_TYPE,
) -> tuple[str, bytes]:
    """Size check, structural parse and signature check in the only safe order."""
    return verify(parse_envelope(raw, max_size), keys, payload_type)
