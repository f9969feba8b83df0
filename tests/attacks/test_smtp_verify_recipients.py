"""Backscatter without a recipient table: `smtp.verify_recipients` (`--verify-recipients`, Postfix's
reject_unverified_recipient) probes the next hop for each new recipient of a relay domain at RCPT
time (EHLO, MAIL FROM:<>, RCPT TO, RSET, QUIT; never DATA) and answers with what it said:
550 5.1.1 for a 5xx, 450 4.1.1 for a 4xx, a timeout or a next hop that is down, and the address
is accepted for a 2xx. Answers are cached (positive and negative apart, each with a TTL), and
concurrent RCPTs for one address share one probe. The next hop here is a real aiosmtpd server
(the gateway's delivery next hop too) or a scripted one on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks, run_cli
from helpers.messages import clean_message, wire_bytes
from helpers.net import LOCALHOST, free_port
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp
from zerohour import config
from zerohour.config import HostPort
from zerohour.errors import ConfigError
from zerohour.gateway.verify import Answer, RecipientVerifier

pytestmark = requires_gateway_marks()

VERIFY = {"verify_recipients": True, "verify_timeout": 3.0}


def _refuse(sink: RecordingSink) -> None:
    sink.refuse_rcpts["gone@example.test"] = "550 5.1.1 <gone@example.test>: User unknown"
    sink.refuse_rcpts["busy@example.test"] = "450 4.2.1 <busy@example.test>: try again later"


def _rcpt(port: int, *addrs: str) -> list[tuple[int, str]]:
    with RawSmtp(port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<forged@elsewhere.test>").code == 250
        out = []
        for a in addrs:
            reply = raw.cmd(f"RCPT TO:<{a}>")
            out.append((reply.code, str(reply)))
        return out


def _probes(sink: RecordingSink, addr: str) -> list[tuple[str, str]]:
    return [(f, a) for f, a in sink.rcpt_log if a.lower() == addr.lower()]


def test_unknown_550_known_250_and_the_bad_recipient_never_reaches_data(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    _refuse(sink)
    gw = gateway_factory(next_hop=sink.address, config_toml=gateway_toml(smtp=VERIFY))
    msg = clean_message(subject="verified")
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<forged@elsewhere.test>").code == 250
        good = raw.cmd("RCPT TO:<bob@example.test>")
        assert good.code == 250, str(good)
        bad = raw.cmd("RCPT TO:<gone@example.test>")
        assert (bad.code, bad.enhanced) == (550, "5.1.1"), str(bad)
        assert "<gone@example.test>: Recipient address rejected: undeliverable address" in str(bad)
        assert "User unknown" in str(bad)  # the next hop's words, for the sender's postmaster
        assert raw.cmd("DATA").code == 354
        raw.send(wire_bytes(msg) + b".\r\n")
        assert raw.reply(timeout=30).code == 250
    assert not sink.wait_for_ids({str(msg["Message-ID"])}, timeout=60)
    delivered = [m for m in sink.messages if m.message_id == msg["Message-ID"]]
    assert [m.rcpt_tos for m in delivered] == [("bob@example.test",)]
    assert all("gone@example.test" not in m.rcpt_tos for m in sink.messages)
    # The probes: null sender, one per address, and the probes themselves never sent DATA
    # (the only message the next hop got is the real one, after the client's DATA).
    assert _probes(sink, "gone@example.test") == [("<>", "gone@example.test")]
    assert ("<>", "bob@example.test") in sink.rcpt_log
    assert len(sink.messages) == 1


def test_4xx_from_the_next_hop_is_450_and_not_cached(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    _refuse(sink)
    gw = gateway_factory(next_hop=sink.address, config_toml=gateway_toml(smtp=VERIFY))
    [(code, text)] = _rcpt(gw.port, "busy@example.test")
    assert code == 450, text
    assert "4.1.1" in text
    assert "unverified address: address verification failed" in text
    assert "try again later" in text
    del sink.refuse_rcpts["busy@example.test"]  # the next hop recovers
    assert _rcpt(gw.port, "busy@example.test")[0][0] == 250
    assert len(_probes(sink, "busy@example.test")) == 2


def test_the_cache_answers_the_second_time_without_a_probe(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    _refuse(sink)
    gw = gateway_factory(next_hop=sink.address, config_toml=gateway_toml(smtp=VERIFY))
    for _ in range(3):
        assert [c for c, _ in _rcpt(gw.port, "gone@example.test", "bob@example.test")] == [
            550,
            250,
        ]
    # The same answers three times, case ignored; the next hop was asked once per address.
    assert _rcpt(gw.port, "GONE@Example.Test")[0][0] == 550
    assert len(_probes(sink, "gone@example.test")) == 1
    assert len(_probes(sink, "bob@example.test")) == 1


def test_next_hop_down_is_450(gateway_factory: GatewayFactory) -> None:
    down = f"{LOCALHOST}:{free_port()}"  # nothing listens there
    gw = gateway_factory(next_hop=down, config_toml=gateway_toml(smtp=VERIFY))
    [(code, text)] = _rcpt(gw.port, "bob@example.test")
    assert code == 450, text
    assert "4.1.1" in text
    assert "address verification failed" in text


def test_only_relay_domain_recipients_of_untrusted_clients_are_probed(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    _refuse(sink)
    gw = gateway_factory(
        next_hop=sink.address,
        config_toml=gateway_toml(smtp={**VERIFY, "mynetworks": ["127.0.0.2/32"]}),
    )
    # a relay attempt is refused by the relay check before any probe
    assert _rcpt(gw.port, "victim@elsewhere.test")[0][0] == 554
    assert sink.rcpt_log == []
    # a trusted client (127.0.0.2 here) is not probed: its mail is ours to bounce
    with RawSmtp(gw.port, source=("127.0.0.2", 0)) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert raw.cmd("RCPT TO:<gone@example.test>").code == 250
    assert sink.rcpt_log == []


def test_the_cli_flag_turns_it_on_and_mx_mode_is_refused() -> None:
    done = run_cli(
        "config", "check", "--json", "--verify-recipients", "--next-hop", "127.0.0.1:10025"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["smtp"]["verify_recipients"] is True
    done = run_cli("config", "check", "--verify-recipients", "--next-hop", "mx")
    assert done.returncode == 2
    assert "smtp.verify_recipients needs a fixed delivery.next_hop" in done.stderr


@pytest.mark.parametrize("sender", ["two words@x.test", "no-at-sign", "<a@x.test>", "a@"])
def test_a_bad_probe_sender_is_a_clear_error(sender: str) -> None:
    with pytest.raises(ConfigError, match=r"smtp\.verify_sender"):
        config.load(env={}, flags={"smtp.verify_sender": sender})


# the verifier on its own, against a scripted next hop ------------------------------------------


@dataclass
class ScriptedHop:
    """A minimal SMTP server on a real socket: RCPT answers from `answers` (250 otherwise),
    the greeting held back until `greet` is set; counts sessions and RCPTs."""

    answers: dict[str, str] = field(default_factory=dict)
    greet: asyncio.Event = field(default_factory=asyncio.Event)
    sessions: int = 0
    rcpts: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            await self.greet.wait()
            writer.write(b"220 hop.test ESMTP\r\n")
            while line := await reader.readline():
                cmd = line.decode().strip()
                self.commands.append(cmd.split(":")[0].split(" ")[0].upper())
                verb = self.commands[-1]
                if verb == "EHLO":
                    reply = "250-hop.test\r\n250 PIPELINING"
                elif verb == "RCPT":
                    addr = cmd.split("<", 1)[1].rstrip(">")
                    self.rcpts.append(addr)
                    reply = self.answers.get(addr, "250 2.1.5 Ok")
                elif verb == "QUIT":
                    writer.write(b"221 2.0.0 Bye\r\n")
                    break
                elif verb in ("MAIL", "RSET", "NOOP"):
                    reply = "250 2.0.0 Ok"
                else:
                    reply = "502 5.5.1 not here"
                writer.write(reply.encode() + b"\r\n")
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def hop() -> AsyncIterator[ScriptedHop]:
    h = ScriptedHop()
    h.greet.set()
    server = await asyncio.start_server(h.handle, LOCALHOST, 0)
    h.port = server.sockets[0].getsockname()[1]
    try:
        yield h
    finally:
        server.close()
        await server.wait_closed()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verifier(hop: ScriptedHop, **kw: object) -> RecipientVerifier:
    return RecipientVerifier(HostPort(LOCALHOST, hop.port), hostname="gw.test", **kw)  # type: ignore[arg-type]


async def test_concurrent_rcpts_for_one_address_share_one_probe(hop: ScriptedHop) -> None:
    hop.greet.clear()  # every probe waits for the greeting: all callers arrive meanwhile
    v = _verifier(hop)
    calls = [asyncio.create_task(v.verify("carol@example.test")) for _ in range(20)]
    calls.append(asyncio.create_task(v.verify("Carol@Example.TEST")))
    await asyncio.sleep(0.2)
    hop.greet.set()
    verdicts = await asyncio.gather(*calls)
    assert {x.answer for x in verdicts} == {Answer.DELIVERABLE}
    assert hop.sessions == 1
    assert hop.rcpts == ["carol@example.test"]
    assert "DATA" not in hop.commands
    assert hop.commands[-2:] == ["RSET", "QUIT"]


async def test_positive_and_negative_answers_expire_after_their_own_ttl(
    hop: ScriptedHop,
) -> None:
    hop.answers["gone@example.test"] = "550 5.1.1 no such user"
    clock = Clock()
    v = _verifier(hop, positive_ttl=100.0, negative_ttl=10.0, clock=clock)
    assert (await v.verify("gone@example.test")).answer is Answer.UNDELIVERABLE
    assert (await v.verify("bob@example.test")).answer is Answer.DELIVERABLE
    clock.now += 9
    assert (await v.verify("gone@example.test")).cached
    assert (await v.verify("bob@example.test")).cached
    assert hop.sessions == 2
    clock.now += 2  # the negative answer expired, the positive one not yet
    again = await v.verify("gone@example.test")
    assert (again.answer, again.cached) == (Answer.UNDELIVERABLE, False)
    assert (await v.verify("bob@example.test")).cached
    clock.now += 90
    assert not (await v.verify("bob@example.test")).cached
    assert hop.sessions == 4


async def test_a_next_hop_that_never_greets_times_out_as_unknown(hop: ScriptedHop) -> None:
    hop.greet.clear()
    v = _verifier(hop, timeout=0.5)
    verdict = await v.verify("bob@example.test")
    assert verdict.answer is Answer.UNKNOWN
    assert "timed out" in verdict.detail
    hop.greet.set()
    assert (await v.verify("bob@example.test")).answer is Answer.DELIVERABLE  # not cached


async def test_aclose_cancels_probes_under_way(hop: ScriptedHop) -> None:
    hop.greet.clear()
    v = _verifier(hop)
    waiting = asyncio.create_task(v.verify("bob@example.test"))
    await asyncio.sleep(0.2)
    await v.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert hop.sessions == 1


async def test_an_rcpt_flood_opens_at_most_max_probes_sessions(hop: ScriptedHop) -> None:
    """Red-team finding: 1,000 pipelined RCPTs opened a probe session each, all at once, against
    the next hop. Probes now share a bounded pool of sessions."""
    hop.greet.clear()  # every probe waits at the greeting: count how many are open together
    v = _verifier(hop, max_probes=3)
    calls = [asyncio.create_task(v.verify(f"user{i}@example.test")) for i in range(12)]
    await asyncio.sleep(0.3)
    assert hop.sessions == 3
    hop.greet.set()
    verdicts = await asyncio.gather(*calls)
    assert {x.answer for x in verdicts} == {Answer.DELIVERABLE}
    assert hop.sessions == 12


async def test_a_wait_for_a_probe_slot_past_the_timeout_is_unknown(hop: ScriptedHop) -> None:
    hop.greet.clear()  # the one slot stays busy until its probe times out
    v = _verifier(hop, max_probes=1, timeout=0.3)
    verdicts = await asyncio.gather(*(v.verify(f"u{i}@example.test") for i in range(3)))
    assert {x.answer for x in verdicts} == {Answer.UNKNOWN}  # 450 at RCPT, never cached
    assert any("too many address probes" in x.detail for x in verdicts), verdicts
    assert hop.sessions <= 2


async def test_invented_addresses_cannot_push_out_the_deliverable_answers(
    hop: ScriptedHop,
) -> None:
    """Red-team finding: 110,000 probes for invented addresses evicted bob's cached
    "deliverable" answer (one shared cache). Answers of each kind are kept apart now."""
    v = _verifier(hop, cache_max=3)
    assert (await v.verify("bob@example.test")).answer is Answer.DELIVERABLE
    for i in range(10):
        hop.answers[f"nobody{i}@example.test"] = "550 5.1.1 no such user"
        assert (await v.verify(f"nobody{i}@example.test")).answer is Answer.UNDELIVERABLE
    assert (await v.verify("bob@example.test")).cached
    assert hop.sessions == 11
