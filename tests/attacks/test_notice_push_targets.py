"""A subscriber cannot make the provider send UDP or SMTP to hosts it does not control
(reflection, SSRF), and cannot amplify pushes towards one target (issue 9, section 4).

The provider pushes UDP only to the address the subscription request came from, SMTP only to
the control address's MX or an operator-approved host, and nothing to loopback, private,
link-local or multicast addresses unless `--allow-push-target` approves them. Everything here
runs on 127.0.0.0/8, so "another source" is 127.0.0.2 (a client bound to it)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notices.support import ProviderProc
from zerohour.provider.log import Subscription
from zerohour.provider.push import Pusher
from zerohour.provider.targets import PushPolicy, TokenBuckets

GID = "ab" * 32
TOKENS: dict[str, str] = {}  # one credential per provider (one customer)


@pytest.fixture
def strict_provider(tmp_path: Path) -> Iterator[ProviderProc]:
    """No approved networks: the default policy."""
    p = ProviderProc(tmp_path / "strict").start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def approving_provider(tmp_path: Path) -> Iterator[ProviderProc]:
    """Approves 127.0.0.2 only (a lab network, say), not the rest of loopback."""
    p = ProviderProc(tmp_path / "approving", ("--allow-push-target", "127.0.0.2/32")).start()
    try:
        yield p
    finally:
        p.stop()


async def subscribe(
    p: ProviderProc, body: dict[str, str], source: str = "127.0.0.1"
) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(
            f"{p.url}/v1/subscriptions",
            json={"gateway_id": GID, **body},
            headers={"Authorization": f"Bearer {TOKENS.setdefault(p.url, p.gateway_token())}"},
        )


async def test_loopback_private_and_foreign_targets_are_refused_by_default(
    strict_provider: ProviderProc,
) -> None:
    for udp in ("127.0.0.1:9999", "0.0.0.0:9999", "10.1.2.3:9999", "169.254.1.1:9", "8.8.8.8:53"):
        r = await subscribe(strict_provider, {"udp": udp})
        assert r.status_code == 403, (udp, r.text)
        assert r.json()["error"].startswith("udp:")
    for smtp in ("127.0.0.1:25", "0.0.0.0:25", "10.0.0.1:25", "localhost:25"):
        r = await subscribe(strict_provider, {"control_address": "n@gw.test", "smtp": smtp})
        assert r.status_code == 403, (smtp, r.text)
    r = await subscribe(strict_provider, {"udp": "gw.example.com:9999"})
    assert r.status_code == 403  # names are never resolved for UDP
    # Without an explicit host, control mail goes to the domain's MX: accepted (checked later).
    r = await subscribe(strict_provider, {"control_address": "n@gw.test"})
    assert r.status_code == 201
    assert r.json()["smtp"] is None


async def test_a_target_registered_from_another_source_is_refused(
    approving_provider: ProviderProc,
) -> None:
    # From 127.0.0.2, naming 127.0.0.1 (not the source, not approved): reflection, refused.
    r = await subscribe(approving_provider, {"udp": "127.0.0.1:9999"}, source="127.0.0.2")
    assert r.status_code == 403
    assert "only to the address the subscription came from" in r.json()["error"]
    # The approved address itself, or the wildcard (= the source), is accepted.
    r = await subscribe(approving_provider, {"udp": "127.0.0.2:9999"}, source="127.0.0.2")
    assert (r.status_code, r.json()["udp"]) == (201, "127.0.0.2:9999")
    r = await subscribe(approving_provider, {"udp": "0.0.0.0:9998"}, source="127.0.0.2")
    assert (r.status_code, r.json()["udp"]) == (200, "127.0.0.2:9998")
    # From 127.0.0.1 (loopback, not approved), even its own address is refused.
    r = await subscribe(approving_provider, {"udp": "127.0.0.1:9999"}, source="127.0.0.1")
    assert r.status_code == 403
    r = await subscribe(
        approving_provider, {"control_address": "n@gw.test", "smtp": "127.0.0.1:25"}
    )
    assert r.status_code == 403
    r = await subscribe(
        approving_provider, {"control_address": "n@gw.test", "smtp": "127.0.0.2:2525"}
    )
    assert r.status_code == 200  # an operator-approved host (replacing the subscription)


async def test_pushes_to_one_target_are_rate_limited_and_deduplicated() -> None:
    """A notice flood, or many subscriptions naming one target, cannot be amplified."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    target = f"127.0.0.1:{rx.getsockname()[1]}"
    pusher = Pusher(
        "test-av",
        policy=PushPolicy(),
        udp_buckets=TokenBuckets(rate=0.001, burst=5),
    )
    await pusher.start()
    try:
        subs = [Subscription(f"{i:064x}", target, None, None) for i in range(10)]
        for seq in range(1, 51):  # 50 notices x 10 subscriptions naming the same target
            pusher.push(seq, b"notice %d" % seq, b"hint", subs)
        await asyncio.sleep(0.3)
        got = []
        while True:
            try:
                got.append(rx.recv(2048))
            except BlockingIOError:
                break
    finally:
        await pusher.aclose()
        rx.close()
    assert got == [b"notice %d" % n for n in range(1, 6)]  # the burst, once per notice
    assert pusher.sent["udp"] == 5
    assert pusher.sent["udp_limited"] == 45
