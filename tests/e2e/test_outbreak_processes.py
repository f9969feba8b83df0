"""The outbreak story across real processes: `python -m zerohour provider run`, `python -m
zerohour gateway run`, the lab commands and the gateway's CLI as subprocesses, a real SMTP sink.

Per transport alone (stream, poll, UDP, e-mail to the control address): declare -> mail held
(`hold list --json` shows it) -> `signatures from-sample` + `publish --covers` -> released. No
infected message reaches the sink after the notice arrived; every clean one arrives exactly once.
Also: `outbreak end` releases, checksum mode quarantines at once, a gateway restarted mid-outbreak
keeps its state and held mail and catches up a notice published while it was down, and `zerohour
status --json` reports what an operator needs.

The gateway has no switch to turn its stream client or poller off, so "the others off" is done
with `ProviderGate`, a pass-through in front of the provider that refuses the stream and/or poll
endpoints (subscriptions and bundle downloads pass).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.samples import make_pe
from zerohour.demo.gate import POLL, STREAM, ProviderGate
from zerohour.demo.mail import CLEAN_MARK, INFECTED_MARK, build, new_virus_sample, sender
from zerohour.demo.stack import (
    GatewayOptions,
    GatewayProcess,
    MailSink,
    ProviderProcess,
    SendResult,
    run_cli,
    send_mail,
)
from zerohour.store.base import MessageState
from zerohour.store.sqlite import SqliteStore

pytestmark = [pytest.mark.timeout(300)]

CONTROL = "notices@example.test"


@dataclass(frozen=True)
class Transport:
    options: GatewayOptions
    blocked: tuple[str, ...]  # endpoints the gate refuses; () = no gate
    subscribes: bool = False


TRANSPORTS: dict[str, Transport] = {
    # Stream alone: the poller only runs its start-up check (long interval), before any notice.
    "stream": Transport(GatewayOptions(poll_interval=3600.0), ()),
    "poll": Transport(GatewayOptions(poll_interval=0.3), (STREAM,)),
    "udp": Transport(GatewayOptions(poll_interval=3600.0, udp=True), (STREAM, *POLL), True),
    "mail": Transport(
        GatewayOptions(poll_interval=3600.0, control_address=CONTROL), (STREAM, *POLL), True
    ),
}


class Stack:
    """Provider, optional gate, gateway and sink in `root`; `close()` stops them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sink = MailSink().start()
        self.provider = ProviderProcess(
            root / "provider", root / "provider.log", ("--heartbeat", "0.5")
        ).start()
        self.gate: ProviderGate | None = None
        self.gateway: GatewayProcess | None = None
        self.n = 0

    def start_gateway(self, transport: Transport | None = None) -> GatewayProcess:
        t = transport or Transport(GatewayOptions(poll_interval=1.0), ())
        options = t.options
        if t.blocked:
            self.gate = ProviderGate(self.provider.url, t.blocked).start()
            options = GatewayOptions(**{**_fields(options), "provider_url": self.gate.url})
        gw = GatewayProcess(
            self.root / "gateway",
            self.root / "gateway.log",
            self.provider,
            self.sink.address,
            options,
        )
        self.gateway = gw.start()
        if t.subscribes:
            wait(lambda: "notice.subscribed" in gw.log_path.read_text(), "subscription", gw)
        return gw

    @property
    def gw(self) -> GatewayProcess:
        assert self.gateway is not None
        return self.gateway

    def send(self, kind: str, attachment: bytes | None = None) -> SendResult:
        self.n += 1
        data = build(kind, self.n, attachment, "a.bin")
        res = send_mail(self.gw.smtp_port, data, sender(kind, self.n))
        assert res.accepted, res
        return res

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.gw.cli(*args, "--json"))

    def counts(self) -> dict[MessageState, int]:
        async def go() -> dict[MessageState, int]:
            store = await SqliteStore.open(self.gw.data_dir / "zerohour.sqlite3")
            try:
                return await store.count_by_state()
            finally:
                await store.aclose()

        return asyncio.run(go())

    def active(self) -> set[str]:
        return {o["outbreak_id"] for o in self.cli_json("status")["outbreaks"]}

    def delivered(self, mark: bytes) -> list[bytes]:
        """The `<mark>-<n>` ids of sink messages carrying `mark` (one per delivery)."""
        return [
            m.data.split(mark + b"-", 1)[1].split(b":", 1)[0]
            for m in self.sink.snapshot()
            if mark in m.data
        ]

    def close(self) -> None:
        for part in (self.gateway, self.provider):
            if part is not None:
                part.stop()
        if self.gate is not None:
            self.gate.stop()
        self.sink.stop()


def _fields(o: GatewayOptions) -> dict[str, Any]:
    return {k: getattr(o, k) for k in o.__dataclass_fields__}


def wait(
    predicate: Callable[[], object],
    what: str,
    gw: GatewayProcess | None = None,
    limit: float = 90.0,
) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            tail = gw.log_tail(40) if gw is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.close()


def held(s: Stack) -> int:
    return s.counts().get(MessageState.HELD, 0)


def declare_and_wait(s: Stack, name: str, *extra: str) -> str:
    oid = s.provider.declare(name, *extra)
    wait(lambda: oid in s.active(), f"outbreak {oid} applied", s.gw)
    return oid


def publish(s: Stack, sample: bytes, name: str, oid: str) -> None:
    path = s.root / "sample.bin"
    path.write_bytes(sample)
    s.provider.publish_sample_signature(path, name, oid, s.root / "sig.hsb")


@pytest.mark.parametrize("name", list(TRANSPORTS))
def test_transport_alone_declare_hold_publish_release(stack: Stack, name: str) -> None:
    transport = TRANSPORTS[name]
    stack.start_gateway(transport)
    sample = new_virus_sample()
    oid = declare_and_wait(stack, "E2E.Proc.Worm")
    for _ in range(2):
        stack.send("clean")
        stack.send("infected", sample)
    wait(lambda: held(stack) == 4, "4 messages held", stack.gw)

    listed = stack.cli_json("hold", "list")
    assert listed["total"] == 4
    assert {m["state"] for m in listed["messages"]} == {"held"}
    assert all(oid in json.dumps(m["outbreaks"]) for m in listed["messages"]), listed
    status = stack.cli_json("status")
    assert status["mode"] == "outbreak"
    assert [o["outbreak_id"] for o in status["outbreaks"]] == [oid]
    assert status["held"] == 4
    assert status["oldest_held_at"] <= status["now"]
    assert stack.sink.snapshot() == []  # nothing delivered while the outbreak holds

    publish(stack, sample, "E2E.Proc.Worm.Sig", oid)
    wait(
        lambda: held(stack) == 0 and len(stack.delivered(CLEAN_MARK)) >= 2,
        "release after the signature",
        stack.gw,
    )
    time.sleep(1.0)  # a duplicate delivery would show up here
    assert stack.delivered(INFECTED_MARK) == []  # every infected message arrived after the notice
    clean = stack.delivered(CLEAN_MARK)
    assert sorted(clean) == [b"1", b"3"]  # each clean message exactly once
    quarantined = stack.cli_json("quarantine", "list")
    assert quarantined["total"] == 2
    assert {f for m in quarantined["messages"] for f in m["findings"]} == {"E2E.Proc.Worm.Sig"}

    status = stack.cli_json("status")
    assert status["mode"] == "normal"
    assert status["outbreaks"] == []
    assert status["db_version"] == "1"
    notices = status["notices"]
    assert notices[name]["seq"] == 2, notices
    assert notices[name]["kind"] == "signatures.published"
    assert notices[name]["result"] == "applied"
    others = {t for t, n in notices.items() if t not in (name, "state") and n["seq"] > 0}
    assert others == set(), notices  # the other transports carried nothing
    if transport.blocked:
        assert stack.gate is not None
        assert stack.gate.refused > 0  # the switched-off transports really tried and failed


def test_outbreak_end_releases_held_mail(stack: Stack) -> None:
    stack.start_gateway()
    sample = new_virus_sample()
    oid = declare_and_wait(stack, "E2E.End.Worm")
    stack.send("clean")
    stack.send("infected", sample)  # no signature will ever name it: end means rescan+release
    wait(lambda: held(stack) == 2, "2 held", stack.gw)
    assert stack.sink.snapshot() == []
    stack.provider.end(oid)
    wait(lambda: held(stack) == 0 and len(stack.sink.snapshot()) == 2, "release on end", stack.gw)
    time.sleep(1.0)
    assert stack.delivered(CLEAN_MARK) == [b"1"]
    assert stack.delivered(INFECTED_MARK) == [b"2"]  # clean by the current database
    assert stack.active() == set()
    # New mail is no longer held.
    stack.send("clean")
    wait(lambda: len(stack.sink.snapshot()) == 3, "normal delivery after the end", stack.gw)


def test_checksum_mode_quarantines_matching_mail_at_once(stack: Stack) -> None:
    stack.start_gateway()
    sample = new_virus_sample()
    path = stack.root / "sample.exe"
    path.write_bytes(sample)
    declare_and_wait(stack, "E2E.Sum", "--mode", "checksum", "--sample", str(path))
    stack.send("infected", sample)
    stack.send("clean", b"an unrelated attachment\n")
    wait(
        lambda: (
            stack.counts().get(MessageState.QUARANTINED, 0) == 1 and len(stack.sink.snapshot()) == 1
        ),
        "checksum quarantine and clean delivery",
        stack.gw,
    )
    assert held(stack) == 0  # checksum mode screens; it does not hold all mail
    q = stack.cli_json("quarantine", "list")
    assert [m["findings"] for m in q["messages"]] == [["Outbreak.E2E.Sum.Checksum"]]
    assert stack.delivered(INFECTED_MARK) == []
    assert stack.delivered(CLEAN_MARK) == [b"2"]


def test_udp_alone_carries_a_checksum_declaration_and_quarantines(stack: Stack) -> None:
    """Issue 9, section 4: a checksum declaration from one PE sample (file and section
    digests) fits one datagram (protocol v2), so a gateway with stream and poll both refused
    gets it over UDP alone and quarantines the sample at once."""
    stack.start_gateway(TRANSPORTS["udp"])
    sample = make_pe(b"\x90" * 100 + os.urandom(64), b"udp worm data")
    path = stack.root / "sample.exe"
    path.write_bytes(sample)
    declare_and_wait(stack, "E2E.Udp.Sum", "--mode", "checksum", "--sample", str(path))
    stack.send("infected", sample)
    stack.send("clean", b"an unrelated attachment\n")
    wait(
        lambda: (
            stack.counts().get(MessageState.QUARANTINED, 0) == 1 and len(stack.sink.snapshot()) == 1
        ),
        "checksum quarantine over UDP",
        stack.gw,
    )
    assert stack.delivered(INFECTED_MARK) == []
    notices = stack.cli_json("status")["notices"]
    assert notices["udp"]["kind"] == "outbreak.declared", notices
    assert notices["udp"]["result"] == "applied"
    assert stack.gate is not None
    assert stack.gate.refused > 0  # stream and poll really were unavailable


@pytest.mark.slow
def test_restart_mid_outbreak_keeps_state_and_catches_up(stack: Stack) -> None:
    gw = stack.start_gateway()
    sample = new_virus_sample()
    oid = declare_and_wait(stack, "E2E.Restart.Worm")
    stack.send("clean")
    stack.send("infected", sample)
    wait(lambda: held(stack) == 2, "2 held", gw)

    gw.kill()  # a crash, mid-outbreak
    status = json.loads(run_cli("status", "--json", "--data-dir", str(gw.data_dir)).stdout)
    assert [o["outbreak_id"] for o in status["outbreaks"]] == [oid]
    assert status["held"] == 2

    gw.start()  # same data dir and port
    stack.send("clean")  # the outbreak state survived: still held
    wait(lambda: held(stack) == 3, "3 held after the restart", gw)
    assert stack.sink.snapshot() == []

    gw.kill()
    publish(stack, sample, "E2E.Restart.Sig", oid)  # nobody is listening now
    gw.start()  # start-up poll / stream replay catch the missed notice up
    wait(
        lambda: held(stack) == 0 and len(stack.delivered(CLEAN_MARK)) >= 2,
        "release after catch-up",
        gw,
    )
    time.sleep(1.0)
    assert sorted(stack.delivered(CLEAN_MARK)) == [b"1", b"3"]
    assert stack.delivered(INFECTED_MARK) == []
    assert stack.counts().get(MessageState.QUARANTINED, 0) == 1
    status = stack.cli_json("status")
    assert status["db_version"] == "1"
    assert status["mode"] == "normal"


def test_gateway_records_notice_freshness_for_status(stack: Stack) -> None:
    """The gateway process writes its notice freshness into the store (for `zerohour status`,
    another process): per-transport last heard, seq, and stale or not."""
    from zerohour.gateway.listeners.wiring import FRESHNESS_KEY

    stack.start_gateway()

    def fresh() -> dict[str, Any] | None:
        async def go() -> str | None:
            store = await SqliteStore.open(stack.gw.data_dir / "zerohour.sqlite3")
            try:
                return await store.get_meta(FRESHNESS_KEY)
            finally:
                await store.aclose()

        raw = asyncio.run(go())
        return json.loads(raw) if raw else None

    wait(lambda: (f := fresh()) is not None and "stream" in f["last_heard"], "freshness", stack.gw)
    oid = stack.provider.declare("E2E.Fresh")
    wait(lambda: (f := fresh()) is not None and f["last_seq"] == 1, "seq 1 recorded", stack.gw)
    got = fresh()
    assert got is not None
    assert got["stale"] is False
    assert got["freshness_s"] > 0
    assert got["last_heard"]["stream"] <= got["updated_at"]
    assert oid in stack.active()


def test_status_reports_staleness(stack: Stack) -> None:
    """Issue 4: status shows the last notice per transport and whether the gateway has heard
    from its provider within the freshness window (silence is not safety)."""
    stack.start_gateway()
    wait(lambda: stack.cli_json("status")["notices"], "a first notice/state", stack.gw)
    status = stack.cli_json("status")
    assert status["db_version"]
    assert "stale" in json.dumps(status), status
