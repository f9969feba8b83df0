"""Protocol v2: the compact payload that lets a one-sample checksum declaration travel in one UDP
datagram (issue 9, section 4). v1 payloads are still accepted; v2 is as strict as v1."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from notices.support import PROVIDER, T0
from zerohour.errors import NoticeError
from zerohour.notices.envelope import MAX_DATAGRAM, sign
from zerohour.notices.model import Checksum, OutbreakMode, OutbreakSpec, Scope
from zerohour.notices.payload import NoticeType, ProviderState, build_payload, parse_payload

DATA = b"sample bytes of a new worm"
SECTION = b"\x90" * 100 + b"evil code"


def one_sample(sections: int = 1) -> OutbreakSpec:
    sums = [
        Checksum("sha256", hashlib.sha256(DATA).hexdigest(), len(DATA)),
        Checksum("md5", hashlib.md5(DATA).hexdigest(), len(DATA)),
    ]
    for i in range(sections):
        body = SECTION + bytes([i])
        part = f"pe-section:.sec{i}"
        sums.append(Checksum("sha256", hashlib.sha256(body).hexdigest(), len(body), part))
        sums.append(Checksum("md5", hashlib.md5(body).hexdigest(), len(body), part))
    scope = Scope(has_attachment=True, file_types=("executable", "archive"))
    return OutbreakSpec(
        "ob-20261203-a1b2c3", "Real.World.Worm", OutbreakMode.CHECKSUM, scope, tuple(sums)
    )


def envelope_size(spec: OutbreakSpec, version: int, keys: int = 1) -> int:
    payload = build_payload(
        provider="zerohour-lab",
        seq=123456,
        type=NoticeType.OUTBREAK_DECLARED,
        issued_at=T0,
        expires_at=T0 + timedelta(hours=1),
        body=spec,
        version=version,
    )
    return len(sign(payload, [Ed25519PrivateKey.generate() for _ in range(keys)]).to_bytes())


def test_one_sample_declaration_fits_a_datagram_in_v2_only() -> None:
    spec = one_sample(sections=2)  # sha256 + md5 + size of the file and of two PE sections
    assert envelope_size(spec, 1) > MAX_DATAGRAM  # v1: 1,5xx bytes, sent as a poll.hint
    assert envelope_size(spec, 2) <= MAX_DATAGRAM - 250  # room for names and more sections
    assert envelope_size(one_sample(sections=4), 2) <= MAX_DATAGRAM  # a small real PE


@pytest.mark.parametrize("version", [1, 2])
def test_roundtrip_is_lossless(version: int) -> None:
    spec = one_sample(sections=3)
    for body, ntype in (
        (spec, NoticeType.OUTBREAK_DECLARED),
        (OutbreakSpec("ob-2", "Hold.All"), NoticeType.OUTBREAK_UPDATED),
        (ProviderState(9, (spec, OutbreakSpec("ob-2", "Hold.All")), None), NoticeType.STATE),
    ):
        raw = build_payload(
            provider=PROVIDER,
            seq=9,
            type=ntype,
            issued_at=T0,
            expires_at=T0 + timedelta(minutes=5),
            body=body,
            version=version,
        )
        n = parse_payload(raw)
        assert (n.body, n.seq, n.issued_at, n.expires_at) == (
            body,
            9,
            T0,
            T0 + timedelta(minutes=5),
        )


def test_v2_wire_form_and_defaults_omitted() -> None:
    raw = build_payload(
        provider=PROVIDER,
        seq=1,
        type=NoticeType.OUTBREAK_DECLARED,
        issued_at=T0,
        expires_at=T0 + timedelta(hours=1),
        body=OutbreakSpec("ob-1", "W"),
    )
    assert json.loads(raw) == {
        "v": 2,
        "p": PROVIDER,
        "s": 1,
        "t": "outbreak.declared",
        "i": int(T0.timestamp()),
        "e": int(T0.timestamp()) + 3600,
        "b": {"id": "ob-1", "n": "W"},
    }
    sums = json.loads(
        build_payload(
            provider=PROVIDER,
            seq=1,
            type=NoticeType.OUTBREAK_DECLARED,
            issued_at=T0,
            expires_at=T0 + timedelta(hours=1),
            body=one_sample(1),
        )
    )["b"]["c"]
    digest = base64.urlsafe_b64encode(hashlib.sha256(DATA).digest()).rstrip(b"=").decode()
    assert sums[0] == ["", len(DATA), digest, sums[0][3]]
    assert sums[1][0] == ".sec0"
    assert (len(sums[1][2]), len(sums[1][3])) == (43, 22)


def _v2(body: object) -> bytes:
    return json.dumps(
        {
            "v": 2,
            "p": PROVIDER,
            "s": 1,
            "t": "outbreak.declared",
            "i": int(T0.timestamp()),
            "e": int(T0.timestamp()) + 60,
            "b": body,
        }
    ).encode()


def test_v2_is_strict() -> None:
    good_sha = base64.urlsafe_b64encode(b"\x01" * 32).rstrip(b"=").decode()
    assert parse_payload(
        _v2({"id": "ob-1", "n": "W", "m": "checksum", "c": [["", 5, good_sha, ""]]})
    )
    for bad in (
        {"id": "ob-1", "n": "W", "extra": 1},  # unknown key
        {"id": "ob-1"},  # name missing
        {"id": "ob-1", "n": "W", "m": "checksum"},  # checksum mode without checksums
        {"id": "ob-1", "n": "W", "c": [["", 5, "", ""]]},  # no digest
        {"id": "ob-1", "n": "W", "c": [["", 5, good_sha[:-1], ""]]},  # short digest
        {"id": "ob-1", "n": "W", "c": [["", 5, good_sha[:-1] + "B", ""]]},  # non-canonical
        {"id": "ob-1", "n": "W", "c": [["", 5, good_sha.replace("A", "+"), ""]]},  # not url-safe
        {"id": "ob-1", "n": "W", "c": [["bad name with spaces", 5, good_sha, ""]]},
        {"id": "ob-1", "n": "W", "c": [["", -1, good_sha, ""]]},
        {"id": "ob-1", "n": "W", "c": [["", 5, good_sha]]},
        {"id": "ob-1", "n": "W", "sc": {}},  # empty scope
        {"id": "ob-1", "n": "W", "sc": {"file_types": [["x"]]}},  # unhashable type name
        {"outbreak_id": "ob-1", "name": "W"},  # v1 keys in a v2 payload
    ):
        with pytest.raises(NoticeError) as exc:
            parse_payload(_v2(bad))
        assert exc.value.reason == "invalid_body", bad
    with pytest.raises(NoticeError):
        parse_payload(_v2({"id": "ob-1", "n": "W"}).replace(b'"i": ', b'"i": -'))
