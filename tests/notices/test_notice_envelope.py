"""DSSE envelopes and keys: sign/verify, PAE, size caps before parsing, key files and text."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zerohour.errors import ConfigError, NoticeError
from zerohour.notices.envelope import (
    MAX_DATAGRAM,
    MAX_ENVELOPE,
    NOTICE_TYPE,
    open_envelope,
    pae,
    parse_envelope,
    sign,
)
from zerohour.notices.keys import (
    generate_key,
    keyid_of,
    load_key,
    load_or_generate_key,
    load_pinned_key,
    parse_public_key_text,
    public_key_text,
    raw_public,
)


def keys_of(*ks: Ed25519PrivateKey) -> dict[str, object]:
    return {keyid_of(k.public_key()): k.public_key() for k in ks}


def test_pae_matches_dsse_spec() -> None:
    # Example from the DSSE protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_roundtrip_and_keyid(key: Ed25519PrivateKey) -> None:
    env = sign(b'{"x":1}', key).to_bytes()
    keyid, payload = open_envelope(env, keys_of(key))  # type: ignore[arg-type]
    assert payload == b'{"x":1}'
    import hashlib

    assert keyid == hashlib.sha256(raw_public(key.public_key())).hexdigest()
    obj = json.loads(env)
    assert obj["payloadType"] == NOTICE_TYPE
    assert obj["signatures"][0]["keyid"] == keyid


def test_tampered_payload_is_bad_signature(key: Ed25519PrivateKey) -> None:
    obj = json.loads(sign(b'{"seq":1}', key).to_bytes())
    obj["payload"] = base64.b64encode(b'{"seq":2}').decode()
    with pytest.raises(NoticeError) as exc:
        open_envelope(json.dumps(obj).encode(), keys_of(key))  # type: ignore[arg-type]
    assert exc.value.reason == "bad_signature"


def test_payload_type_is_signed(key: Ed25519PrivateKey) -> None:
    obj = json.loads(sign(b"{}", key).to_bytes())
    obj["payloadType"] = "application/other"
    with pytest.raises(NoticeError) as exc:
        open_envelope(json.dumps(obj).encode(), keys_of(key), payload_type="application/other")  # type: ignore[arg-type]
    assert exc.value.reason == "bad_signature"


def test_unknown_key_and_unsigned(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(NoticeError) as exc:
        open_envelope(sign(b"{}", other).to_bytes(), keys_of(key))  # type: ignore[arg-type]
    assert exc.value.reason == "unknown_key"
    obj = json.loads(sign(b"{}", key).to_bytes())
    obj["signatures"] = []
    with pytest.raises(NoticeError) as exc:
        open_envelope(json.dumps(obj).encode(), keys_of(key))  # type: ignore[arg-type]
    assert exc.value.reason == "unsigned"


def test_signature_under_claimed_keyid_of_pinned_key_but_by_other_key(
    key: Ed25519PrivateKey,
) -> None:
    other = Ed25519PrivateKey.generate()
    obj = json.loads(sign(b"{}", other).to_bytes())
    obj["signatures"][0]["keyid"] = keyid_of(key.public_key())
    with pytest.raises(NoticeError) as exc:
        open_envelope(json.dumps(obj).encode(), keys_of(key))  # type: ignore[arg-type]
    assert exc.value.reason == "bad_signature"


def test_size_cap_checked_before_parsing() -> None:
    # Not JSON at all: if it were parsed first the reason would be "malformed".
    with pytest.raises(NoticeError) as exc:
        parse_envelope(b"x" * (MAX_ENVELOPE + 1))
    assert exc.value.reason == "oversize"
    with pytest.raises(NoticeError) as exc:
        parse_envelope(b"x" * (MAX_DATAGRAM + 1), MAX_DATAGRAM)
    assert exc.value.reason == "oversize"
    with pytest.raises(NoticeError) as exc:
        parse_envelope(b"x" * 100)
    assert exc.value.reason == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"payloadType":1}',
        b'{"payloadType":"t","payload":"!!"}',
        b'{"payloadType":"t","payload":"","signatures":[{"sig":"AA=="}]}',
    ],
)
def test_malformed_envelopes(raw: bytes) -> None:
    with pytest.raises(NoticeError) as exc:
        parse_envelope(raw)
    assert exc.value.reason == "malformed"


def test_key_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    k = generate_key(tmp_path / "d")
    path = tmp_path / "d" / "signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        generate_key(tmp_path / "d")
    assert raw_public(load_key(tmp_path / "d").public_key()) == raw_public(k.public_key())
    assert raw_public(load_or_generate_key(tmp_path / "d").public_key()) == raw_public(
        k.public_key()
    )


def test_public_key_text_and_file(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    text = public_key_text("example-av", key.public_key())
    pinned = parse_public_key_text(text)
    assert pinned.provider == "example-av"
    assert pinned.keyid == keyid_of(key.public_key())
    f = tmp_path / "key.txt"
    f.write_text(f"keyid {pinned.keyid}\n{text}\n\n")
    assert load_pinned_key(str(f)).keyid == pinned.keyid
    assert load_pinned_key(text).text() == text
    with pytest.raises(ConfigError):
        parse_public_key_text("example-av ed25519:AAAA")
    with pytest.raises(ConfigError):
        load_pinned_key(str(tmp_path / "missing"))


def test_depth_is_bounded_before_parsing() -> None:
    """`[[[[...` thousands deep is refused as `too_deep` by a scan, never a RecursionError."""
    from zerohour.notices.envelope import MAX_DEPTH, parse_envelope, too_deep

    with pytest.raises(NoticeError) as exc:
        parse_envelope(b"[" * 30_000 + b"]" * 30_000)
    assert exc.value.reason == "too_deep"
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert too_deep(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not too_deep(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[[[[[["}')
    assert too_deep(b"[" * 30_000)  # never closes: the parser would still recurse
    assert not too_deep(b'{"payload": "trunc')  # merely truncated: malformed, not deep
    with pytest.raises(NoticeError) as exc:
        parse_envelope(b'{"payload": [1, 2')
    assert exc.value.reason == "malformed"


def test_depth_scan_is_linear_on_hostile_quoting() -> None:
    import time

    from zerohour.notices.envelope import too_deep

    for hostile in (b'"\\' * 1_000_000, b'["' * 1_000_000, b"[]" * 1_000_000):
        began = time.monotonic()
        too_deep(hostile)
        assert time.monotonic() - began < 5.0  # quadratic would take hours
