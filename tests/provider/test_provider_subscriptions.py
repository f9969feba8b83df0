"""Subscriptions are keyed by the gateway's identity and made with per-gateway credentials
(issue 9, section 4): a restarted gateway replaces its subscription (pushes are not duplicated),
and a missing, unknown or revoked credential is refused with a JSON error."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from notices.support import MemorySink, ProviderProc, eventually, zerohour
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.keys import GATEWAY_KEY_FILE, gateway_id, load_pinned_key


def listeners_for(p: ProviderProc, token: str, identity: Path) -> NoticeListeners:
    cfg = ListenerConfig(
        p.url,
        load_pinned_key(p.key_text),
        stream=False,
        poll=False,
        poll_interval=3600,
        udp_listen=("127.0.0.1", 0),
        subscription_token=token,
        identity_dir=identity,
    )
    return NoticeListeners(cfg, MemorySink())


def gateways(p: ProviderProc) -> dict[str, object]:
    out: dict[str, object] = json.loads(p.lab("gateway", "list", "--json").stdout)
    return out


@pytest.fixture
async def closing() -> AsyncIterator[list[NoticeListeners]]:
    running: list[NoticeListeners] = []
    yield running
    for listeners in running:
        await listeners.aclose()


async def test_a_restarted_gateway_replaces_its_subscription(
    provider_proc: ProviderProc, tmp_path: Path, closing: list[NoticeListeners]
) -> None:
    token = provider_proc.gateway_token("acme-gw1")
    identity = tmp_path / "gw"
    for _ in range(3):  # three restarts of one gateway, each on a new UDP port
        old = listeners_for(provider_proc, token, identity)
        await old.start()
        assert old.subscription is not None
        await old.aclose()
    listeners = listeners_for(provider_proc, token, identity)
    closing.append(listeners)
    await listeners.start()
    assert listeners.subscription is not None
    assert listeners.subscription["replaced"] is True
    assert listeners.subscription["id"] == gateway_id(identity)
    listed = gateways(provider_proc)
    assert listeners.udp_address is not None
    assert listed["subscriptions"] == [
        {
            "gateway_id": gateway_id(identity),
            "credential": "acme-gw1",
            "source": "127.0.0.1",
            "udp": f"127.0.0.1:{listeners.udp_address[1]}",
            "control_address": None,
            "smtp": None,
        }
    ]
    oid = provider_proc.declare("Once.Worm")
    await eventually(lambda: oid in listeners.verifier.sink.outbreaks)  # type: ignore[attr-defined]
    assert listeners.udp.received == 1  # one subscription, one datagram
    key = identity / GATEWAY_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_credentials_missing_unknown_revoked_or_foreign(
    provider_proc: ProviderProc, tmp_path: Path
) -> None:
    url = f"{provider_proc.url}/v1/subscriptions"
    gid = gateway_id(tmp_path / "gw")
    body = {"gateway_id": gid, "udp": "127.0.0.1:9"}
    a = provider_proc.gateway_token("customer-a")
    b = provider_proc.gateway_token("customer-b")
    async with httpx.AsyncClient() as client:
        r = await client.post(url, json=body)
        assert (r.status_code, r.json()["error"][:18]) == (401, "missing credential")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await client.post(url, json=body, headers={"Authorization": "Bearer zhgw_guess"})
        assert (r.status_code, r.json()) == (401, {"error": "unknown credential"})
        r = await client.post(url, json=body, headers={"Authorization": f"Bearer {a}"})
        assert r.status_code == 201, r.text
        # Customer B cannot take over (or redirect) customer A's gateway.
        r = await client.post(url, json=body, headers={"Authorization": f"Bearer {b}"})
        assert r.status_code == 403
        assert "another credential" in r.json()["error"]
        res = zerohour(
            "provider", "gateway", "revoke", "customer-a", "--data-dir", str(provider_proc.data_dir)
        )
        assert res.returncode == 0, res.stderr
        assert "1 subscriptions dropped" in res.stdout
        r = await client.post(url, json=body, headers={"Authorization": f"Bearer {a}"})
        assert (r.status_code, r.json()) == (403, {"error": "credential revoked"})
    listed = gateways(provider_proc)
    assert listed["subscriptions"] == []
    creds: list[dict[str, object]] = listed["gateways"]  # type: ignore[assignment]
    states = {g["name"]: g["revoked_at"] is not None for g in creds}
    assert states == {"customer-a": True, "customer-b": False}
    dup = zerohour(
        "provider", "gateway", "add", "customer-b", "--data-dir", str(provider_proc.data_dir)
    )
    assert dup.returncode == 2  # names are unique; a token is never shown twice


def test_tokens_are_stored_hashed(provider_proc: ProviderProc) -> None:
    token = provider_proc.gateway_token("hashed")
    for f in provider_proc.data_dir.rglob("*"):  # database, WAL, keys
        assert not f.is_file() or token.encode() not in f.read_bytes(), f
    assert not (provider_proc.data_dir / "subscription.token").exists()
