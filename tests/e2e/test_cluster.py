"""A cluster: three `zerohour gateway run --store postgresql://...` processes on one database.

They share the held buffer, quarantine, delivery queue, outbreak state and (in PostgreSQL) the
message bodies. What must hold (issue 6): mail through any node is delivered once; an outbreak
applied on one node holds mail on every node within 1 s (LISTEN/NOTIFY); a release through any
node delivers mail another node held; SIGKILL of one node under load loses no message that got
a 250 (its leased work is taken over when the lease expires; at most one duplicate each).

The outbreak is written to the shared store the way a node applying a notice writes it
(`save_outbreak` in the store, which NOTIFYs): what is tested is the fan-out to the nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.messages import RECIPIENT, SENDER, clean_message, wire_bytes
from helpers.net import LOCALHOST, wait_until
from helpers.postgres import fresh_schema
from helpers.sinks import RecordingSink
from zerohour.notices.model import OutbreakSpec
from zerohour.store.base import MessageFilter, MessageState
from zerohour.store.postgres import PostgresStore


def _gateway_has_store_flag() -> bool:
    try:
        from zerohour.cli.config_cmd import add_config_flags
    except ImportError:
        return False
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return "--store" in parser._option_string_actions


pytestmark = [
    *requires_gateway_marks(),
    pytest.mark.needs_postgres,
    pytest.mark.skipif(
        not _gateway_has_store_flag(),
        reason="`gateway run --store` is not wired yet (docs/cluster.md, 'Wiring')",
    ),
]

NODES = 3


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The shared store; `application_name` tags the nodes' connections in pg_stat_activity."""
    with fresh_schema("zh_cluster") as url:
        yield f"{url}&application_name=zh-node-{secrets.token_hex(4)}"


def listeners(url: str) -> int:
    """How many of the nodes' connections are LISTENing (subscribed to state changes)."""
    name = url.rsplit("application_name=", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name=%s AND query LIKE 'LISTEN%%'",
            (name,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def cluster(
    pg_url: str, gateway_factory: GatewayFactory, sink: RecordingSink
) -> list[GatewayProcess]:
    """Three nodes on one schema (requested first, so it is dropped after the nodes stop)."""
    toml = gateway_toml(root={"store": pg_url})
    nodes = [
        gateway_factory(name=f"node{i}", next_hop=sink.address, config_toml=toml, start=False)
        for i in range(NODES)
    ]
    threads = [threading.Thread(target=n.start) for n in nodes]  # start together: one migration
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in nodes:
        assert n.accepting(), n.log()
    # up = subscribed: every node LISTENs (a node subscribes right after its port opens)
    assert wait_until(lambda: listeners(pg_url) >= NODES, timeout=30)
    return nodes


def send(port: int, message_id: str) -> int:
    """One transaction; the DATA reply code, or 0 when the session broke."""
    data = wire_bytes(clean_message(message_id=message_id))
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=30) as client:
            client.ehlo("cluster.e2e.test")
            if client.mail(SENDER)[0] != 250 or client.rcpt(RECIPIENT)[0] != 250:
                return 0
            return int(client.data(data)[0])
    except (OSError, smtplib.SMTPException):
        return 0


def in_store(url: str, fn: Callable[[PostgresStore], Any]) -> Any:
    """Run `fn(store)` against the shared database from the test process."""

    async def go() -> Any:
        store = await PostgresStore.open(url, max_size=1)
        try:
            return await fn(store)
        finally:
            await store.aclose()

    return asyncio.run(go())


def test_mail_through_any_node_is_delivered_exactly_once(
    cluster: list[GatewayProcess], sink: RecordingSink, pg_url: str
) -> None:
    ids = {f"<cluster.{i}.{n.port}@e2e.test>" for i in range(5) for n in cluster}
    for i, mid in enumerate(sorted(ids)):
        assert send(cluster[i % NODES].port, mid) == 250
    assert sink.wait_for_ids(ids, timeout=60) == set()
    time.sleep(1.0)  # a duplicate would arrive now
    counts = Counter(m for m in sink.message_ids() if m in ids)
    assert set(counts.values()) == {1}
    delivered = in_store(
        pg_url,
        lambda s: s.count_messages(MessageFilter(states=(MessageState.DELIVERED,))),
    )
    assert delivered == len(ids)


def test_outbreak_on_one_node_holds_on_every_node_and_releases_anywhere(
    cluster: list[GatewayProcess], sink: RecordingSink, pg_url: str
) -> None:
    spec = OutbreakSpec("ob-cluster", "ClusterWave")
    in_store(pg_url, lambda s: s.save_outbreak(spec, time.time()))
    time.sleep(1.0)  # the requirement: every node holds mail within 1 s
    ids = [f"<held.{i}@e2e.test>" for i in range(NODES)]
    for node, mid in zip(cluster, ids, strict=True):
        assert send(node.port, mid) == 250
    held = in_store(pg_url, lambda s: s.held_for("ob-cluster"))
    assert len(held) == NODES, "a node delivered mail the outbreak should hold"
    time.sleep(1.0)
    assert not set(ids) & set(sink.message_ids())
    # every node sees the whole shared hold buffer
    for node in cluster:
        out = node.cli("hold", "list", "--json", "--store", pg_url)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["total"] == NODES
    # release through node 0: mail that nodes 1 and 2 received (their bodies are shared)
    out = cluster[0].cli("hold", "release", "--force", "--store", pg_url, *held)
    assert out.returncode == 0, out.stderr
    assert sink.wait_for_ids(set(ids), timeout=60) == set()


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sigkill_one_node_under_load_loses_nothing(
    cluster: list[GatewayProcess], sink: RecordingSink, pg_url: str
) -> None:
    victim = cluster[1]
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        i = 0
        while not stop.is_set():
            mid = f"<load.{worker}.{i}@e2e.test>"
            node = cluster[(worker + i) % NODES]
            if node.alive() and send(node.port, mid) == 250:
                with lock:
                    accepted.append(mid)
            i += 1

    workers = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for w in workers:
        w.start()
    try:
        assert wait_until(lambda: len(accepted) >= 60, timeout=120)
        victim.kill()  # SIGKILL, not restarted: the others must finish its work
        count_at_kill = len(accepted)
        assert wait_until(lambda: len(accepted) >= count_at_kill + 30, timeout=120)
    finally:
        stop.set()
        for w in workers:
            w.join()
    ids = set(accepted)
    # the victim's leased deliveries wait for their lease to expire (60 s by default)
    missing = sink.wait_for_ids(ids, timeout=240)
    assert missing == set(), f"{len(missing)} accepted messages never delivered"
    counts = Counter(m for m in sink.message_ids() if m in ids)
    assert max(counts.values()) <= 2  # at most one duplicate per message after the crash


def _virus_mail(sample: bytes, n: int) -> bytes:
    from zerohour.demo.mail import build

    return build("infected", n, sample, "a.bin")


def _send_bytes(port: int, data: bytes) -> int:
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=30) as client:
            client.ehlo("cluster.e2e.test")
            if client.mail(SENDER)[0] != 250 or client.rcpt(RECIPIENT)[0] != 250:
                return 0
            return int(client.data(data)[0])
    except smtplib.SMTPDataError as exc:
        return int(exc.smtp_code)
    except (OSError, smtplib.SMTPException):
        return 0


def _installed_at(log: str, source: str) -> float:
    """The log time of `scan.db_installed ... bundle=1 source=<source>` (epoch seconds)."""
    from datetime import datetime

    for line in log.splitlines():
        if "scan.db_installed" in line and "bundle=1 " in line and f"source={source}" in line:
            stamp = " ".join(line.split()[:2])
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise AssertionError(f"no bundle install from {source} logged")


def test_a_bundle_installed_on_one_node_protects_every_node(
    pg_url: str, gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Any
) -> None:
    """Node A hears the provider; node B has no provider configured. A published signature
    installs on A, goes into the shared store, and B rejects the virus within about a second;
    both still have it after a restart, with nothing configured to fetch it again."""
    import hashlib

    from zerohour.demo.mail import new_virus_sample
    from zerohour.demo.stack import ProviderProcess

    provider = ProviderProcess(tmp_path / "provider", tmp_path / "provider.log").start()
    try:
        notices = {"provider": provider.url, "provider_key": provider.key_text}
        node_a = gateway_factory(
            name="node-a",
            next_hop=sink.address,
            config_toml=gateway_toml(root={"store": pg_url}, notices=notices),
        )
        node_b = gateway_factory(
            name="node-b", next_hop=sink.address, config_toml=gateway_toml(root={"store": pg_url})
        )
        assert wait_until(lambda: listeners(pg_url) >= 2, timeout=30)
        virus = new_virus_sample()
        assert _send_bytes(node_b.port, _virus_mail(virus, 1)) == 250  # unknown yet
        sig = tmp_path / "cluster.hsb"
        sig.write_text(f"{hashlib.sha256(virus).hexdigest()}:{len(virus)}:Test.Cluster.Virus\n")
        provider.lab("signatures", "publish", str(sig))

        n = 1

        def rejects(node: GatewayProcess) -> bool:
            nonlocal n
            n += 1
            return _send_bytes(node.port, _virus_mail(virus, n)) == 554

        assert wait_until(lambda: rejects(node_a), timeout=60), node_a.log()[-3000:]
        t_a = time.time()
        assert wait_until(lambda: rejects(node_b), timeout=10), "node B accepted the virus"
        first_reject = time.time() - t_a
        assert in_store(pg_url, lambda s: s.bundle_version()) == 1
        for node in (node_a, node_b):  # the log line follows the swap by a store round trip
            assert wait_until(lambda n=node: "bundle=1 source=" in n.log(), timeout=10)
        lag = _installed_at(node_b.log(), "store") - _installed_at(node_a.log(), "notice")
        print(f"cluster convergence: node B swapped {lag * 1000:.0f} ms after node A; "
              f"first 554 from B {first_reject * 1000:.0f} ms after the first from A")
        # node B wrote the bundle into its own data folder: a restart keeps it
        node_b.stop()
        node_b.start()
        assert _send_bytes(node_b.port, _virus_mail(virus, 100)) == 554
    finally:
        provider.stop()
