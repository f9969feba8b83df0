"""Delivery to the next hop: pooled sessions reused under load, pipelined transactions.

The next hop here is a small scripted SMTP server on a real 127.0.0.1 socket (in the test's
loop) that counts connections and records, per transaction, which commands had arrived before
it sent its first reply. Offering PIPELINING, it holds every reply of a transaction until its
DATA command is in (up to `hold` seconds): a client that waits for the MAIL reply before
sending RCPT shows up as a group of MAIL alone, so the group proves pipelining.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import Running, make_config, message, start_gateway, wait_for
from helpers.smtp import RawSmtp
from zerohour.gateway import deliver
from zerohour.gateway.relay_session import wire_body
from zerohour.store.base import MessageState, RecipientStatus


@dataclass
class Transaction:
    group: list[bytes]  # commands read before the hop's first reply in this transaction
    commands: list[bytes] = field(default_factory=list)
    data: bytes | None = None


class ScriptedHop:
    """A next hop that counts connections, QUITs and transactions."""

    def __init__(
        self,
        *,
        pipelining: bool = True,
        refuse: tuple[str, ...] = (),
        data_delay: float = 0.0,
        hold: float = 3.0,
        always_354: bool = False,
        closing: bool = False,
        chatter: bool = False,
    ) -> None:
        self.pipelining = pipelining
        self.refuse = {r.lower() for r in refuse}
        self.data_delay = data_delay
        self.hold = hold
        self.always_354 = always_354  # a broken server: 354 even with no recipient accepted
        self.closing = closing  # answer MAIL with 421 and hang up
        self.chatter = chatter  # a reply nobody asked for after each message
        self.connections = 0
        self.open = 0
        self.quits = 0
        self.transactions: list[Transaction] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> ScriptedHop:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def delivered(self) -> list[Transaction]:
        return [t for t in self.transactions if t.data]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        try:
            writer.write(b"220 hop.test ESMTP\r\n")
            while line := await reader.readline():
                cmd = line.rstrip(b"\r\n")
                verb = cmd[:4].upper()
                if verb == b"EHLO":
                    pipe = b"250-PIPELINING\r\n" if self.pipelining else b""
                    writer.write(b"250-hop.test\r\n" + pipe + b"250 8BITMIME\r\n")
                elif verb == b"QUIT":
                    self.quits += 1
                    writer.write(b"221 2.0.0 bye\r\n")
                    break
                elif verb == b"MAIL":
                    if not await self._transaction(cmd, reader, writer):
                        break
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()

    async def _transaction(
        self, mail: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        group = [mail]
        if self.pipelining:
            try:
                async with asyncio.timeout(self.hold):
                    while group[-1].upper() != b"DATA":
                        nxt = await reader.readline()
                        if not nxt:
                            return False
                        group.append(nxt.rstrip(b"\r\n"))
            except TimeoutError:
                pass  # not pipelined: answer what came
        tx = Transaction(group=list(group))
        self.transactions.append(tx)
        if self.closing:
            writer.write(b"421 4.3.2 hop.test shutting down\r\n")
            await writer.drain()
            return False
        pending = list(group)
        accepted = 0
        while True:
            if not pending:
                nxt = await reader.readline()
                if not nxt:
                    return False
                pending.append(nxt.rstrip(b"\r\n"))
            cmd = pending.pop(0)
            tx.commands.append(cmd)
            verb = cmd[:4].upper()
            if verb == b"MAIL":
                writer.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                addr = cmd.partition(b"<")[2].partition(b">")[0].decode().lower()
                if addr in self.refuse:
                    writer.write(b"550 5.1.1 no such user\r\n")
                else:
                    accepted += 1
                    writer.write(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                if not accepted and not self.always_354:
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                    return True
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                lines = []
                while (ln := await reader.readline()) != b".\r\n":
                    if not ln:
                        return False
                    lines.append(ln[1:] if ln.startswith(b".") else ln)
                tx.data = b"".join(lines)
                if self.data_delay:
                    await asyncio.sleep(self.data_delay)
                ok = accepted > 0
                writer.write(b"250 2.0.0 queued\r\n" if ok else b"554 5.5.1 nobody\r\n")
                if self.chatter:
                    writer.write(b"250 2.0.0 unasked\r\n")
                return True
            else:
                writer.write(b"250 2.0.0 ok\r\n" if verb == b"RSET" else b"503 5.5.1 order\r\n")
                if verb == b"RSET":
                    return True
            await writer.drain()


@pytest.fixture
async def hop() -> AsyncIterator[ScriptedHop]:
    server = await ScriptedHop().start()
    try:
        yield server
    finally:
        await server.stop()


async def _gateway(tmp_path: Path, hop: ScriptedHop, **flags: Any) -> Running:
    return await start_gateway(make_config(tmp_path / "data", hop.address, **flags))


async def _states(run: Running, n: int) -> dict[str, RecipientStatus]:
    """Recipient statuses of the `n` mail messages once none is queued any more."""
    store = run.gw.store
    assert store is not None

    async def done() -> list[Any]:
        recs = [r for r in await store.list_messages() if r.kind == "mail"]
        finished = [r for r in recs if r.state is not MessageState.QUEUED]
        return finished if len(finished) == n else []

    for _ in range(400):
        if recs := await done():
            return {r.address: r.status for m in recs for r in m.recipients}
        await asyncio.sleep(0.05)
    raise AssertionError("mail still queued")


async def test_pipelining_sends_mail_rcpts_and_data_in_one_group(
    tmp_path: Path, hop: ScriptedHop
) -> None:
    hop.refuse = {"nobody@example.test"}
    run = await _gateway(tmp_path, hop)
    try:
        rcpts = ["b@example.test", "nobody@example.test", "c@example.test"]
        await run.sendmail("a@sender.test", rcpts, message("piped"))
        states = await _states(run, 1)
    finally:
        await run.gw.stop()
    assert states == {
        "b@example.test": RecipientStatus.DELIVERED,
        "nobody@example.test": RecipientStatus.BOUNCED,
        "c@example.test": RecipientStatus.DELIVERED,
    }
    (tx,) = [t for t in hop.transactions if t.group[0].startswith(b"MAIL FROM:<a@sender.test>")]
    assert [c[:4] for c in tx.group] == [b"MAIL", b"RCPT", b"RCPT", b"RCPT", b"DATA"]
    assert tx.data is not None
    assert tx.data.startswith(b"X-Zerohour-Scan: clean; db=")
    assert b"Subject: piped\r\n" in tx.data


async def test_without_pipelining_one_command_per_reply(tmp_path: Path) -> None:
    hop = await ScriptedHop(pipelining=False).start()
    run = await _gateway(tmp_path, hop)
    try:
        await run.sendmail("a@sender.test", ["b@example.test", "c@example.test"], message("x"))
        states = await _states(run, 1)
    finally:
        await run.gw.stop()
        await hop.stop()
    assert set(states.values()) == {RecipientStatus.DELIVERED}
    (tx,) = hop.transactions
    assert tx.group == [tx.commands[0]]  # MAIL alone: the client waited for its reply
    assert [c[:4] for c in tx.commands] == [b"MAIL", b"RCPT", b"RCPT", b"DATA"]


async def test_a_lone_dot_when_354_follows_refused_recipients(tmp_path: Path) -> None:
    """RFC 2920 3.1: every RCPT refused but DATA answered 354 anyway: the client ends the
    data at once with a lone dot, and the session stays usable for the next message."""
    hop = await ScriptedHop(refuse=("nobody@example.test",), always_354=True).start()
    run = await _gateway(tmp_path, hop)
    try:
        await run.sendmail("<>", ["nobody@example.test"], message("refused"))
        await _states(run, 1)
        await run.sendmail("a@sender.test", ["b@example.test"], message("next"))
        states = await _states(run, 2)
    finally:
        await run.gw.stop()
        await hop.stop()
    assert states == {
        "nobody@example.test": RecipientStatus.BOUNCED,
        "b@example.test": RecipientStatus.DELIVERED,
    }
    refused, delivered = hop.transactions
    assert refused.data == b""  # the lone dot: no content sent
    assert delivered.data is not None
    assert b"Subject: next\r\n" in delivered.data
    assert hop.connections == 1


async def test_busy_queue_reuses_connections(tmp_path: Path) -> None:
    """Waves of more deliveries at once than the old idle cap (8), each slow at the next hop:
    after a wave every session goes idle at once, and the next wave must find them all there
    (the old cap closed the rest and reconnected): never more than `delivery.concurrency`."""
    hop = await ScriptedHop(data_delay=0.3).start()
    concurrency, waves = 12, 3
    run = await _gateway(tmp_path, hop, **{"delivery.concurrency": concurrency})
    try:
        for w in range(waves):
            await asyncio.gather(
                *(
                    run.sendmail("a@sender.test", ["b@example.test"], message(f"m{w}-{i}"))
                    for i in range(concurrency)
                )
            )
            n = (w + 1) * concurrency
            assert await wait_for(lambda n=n: len(hop.delivered()) >= n, timeout=60)
        states = await _states(run, waves * concurrency)
        opened = run.gw.queue.pool.opened
    finally:
        await run.gw.stop()
        await hop.stop()
    assert set(states.values()) == {RecipientStatus.DELIVERED}
    assert len(hop.delivered()) == waves * concurrency
    assert hop.connections == opened
    assert hop.connections <= concurrency, hop.connections
    assert len(hop.transactions) >= 2 * hop.connections  # several messages per connection


async def test_idle_sessions_are_closed_with_quit(
    tmp_path: Path, hop: ScriptedHop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliver, "IDLE_TIMEOUT", 0.2)
    run = await _gateway(tmp_path, hop)
    try:
        await run.sendmail("a@sender.test", ["b@example.test"], message("idle"))
        assert await wait_for(lambda: hop.delivered())
        assert await wait_for(lambda: hop.open == 0, timeout=10)
    finally:
        await run.gw.stop()
    assert hop.quits == 1
    assert hop.connections == 1


def test_wire_body_leaves_spooled_mail_as_is() -> None:
    spooled = b"Subject: x\r\n\r\nline\r\n" * 100
    wire, size = wire_body(spooled)
    assert wire is spooled  # not copied
    assert size == len(spooled)


def test_wire_body_stuffs_dots_and_fixes_line_ends() -> None:
    wire, size = wire_body(b".a\nb\r.c\r\n..d")
    assert wire == b"..a\r\nb\r\n..c\r\n...d\r\n"
    assert size == len(b".a\r\nb\r\n.c\r\n..d\r\n")  # RFC 1870: before dot-stuffing


async def test_envelope_sender_is_sent_as_received_not_reparsed(
    tmp_path: Path, hop: ScriptedHop
) -> None:
    """A quoted local part holding `<victim@...>` must not become the envelope sender
    `victim@...` at the next hop (aiosmtplib re-parsed it). With a CR in it the receiver
    refuses it outright (501 5.1.7: tests/attacks/test_smtp_envelope_and_junk.py)."""
    run = await _gateway(tmp_path, hop)
    sender = '"x <victim@example.test>"@sender.test'

    def send() -> None:
        with RawSmtp(run.port) as raw:
            assert raw.hello("client.test").code == 250
            bad = raw.cmd(b'MAIL FROM:<"x\r<victim@example.test>"@sender.test>')
            assert bad.code == 501, bad
            assert raw.cmd(f"MAIL FROM:<{sender}>".encode()).code == 250
            assert raw.cmd("RCPT TO:<b@example.test>").code == 250
            assert raw.cmd("DATA").code == 354
            raw.send(b"Subject: quoted\r\n\r\nhi\r\n.\r\n")
            assert raw.reply().code == 250

    try:
        await asyncio.to_thread(send)
        assert await wait_for(lambda: hop.delivered())
    finally:
        await run.gw.stop()
    (tx,) = hop.delivered()
    assert tx.commands[0] == b'MAIL FROM:<"x <victim@example.test>"@sender.test>'


async def test_421_and_hang_up_mid_group_defers_with_the_reply(tmp_path: Path) -> None:
    hop = await ScriptedHop(closing=True).start()
    run = await _gateway(tmp_path, hop, **{"delivery.retry_min": 30, "delivery.retry_max": 30})
    store = run.gw.store
    assert store is not None
    try:
        await run.sendmail("a@sender.test", ["b@example.test", "c@example.test"], message("x"))

        async def deferred() -> list[Any]:
            return [e for e in await store.queue_entries() if e.attempts >= 1]

        for _ in range(200):
            if await deferred():
                break
            await asyncio.sleep(0.05)
        (entry,) = await deferred()
        (rec,) = await store.list_messages()
    finally:
        await run.gw.stop()
        await hop.stop()
    assert entry.last_error.startswith("421 4.3.2 hop.test shutting down"), entry.last_error
    assert rec.state is MessageState.QUEUED
    assert {r.status for r in rec.recipients} == {RecipientStatus.DEFERRED}
    assert len(hop.transactions) == 1  # a fresh session, so no second try at once


async def test_a_session_out_of_step_is_not_reused(tmp_path: Path) -> None:
    """A reply nobody asked for would be read as the next MAIL's (and every reply after it
    shifted by one: DATA's 354 never seen, the recipient taken as delivered with no content
    sent): such a session is closed, and the next message goes on a new one."""
    hop = await ScriptedHop(chatter=True).start()
    run = await _gateway(tmp_path, hop)
    try:
        await run.sendmail("a@sender.test", ["b@example.test"], message("one"))
        assert await wait_for(lambda: hop.delivered())
        await run.sendmail("a@sender.test", ["c@example.test"], message("two"))
        states = await _states(run, 2)
    finally:
        await run.gw.stop()
        await hop.stop()
    assert states == {
        "b@example.test": RecipientStatus.DELIVERED,
        "c@example.test": RecipientStatus.DELIVERED,
    }
    assert [b"Subject: one\r\n" in (t.data or b"") for t in hop.transactions] == [True, False]
    assert b"Subject: two\r\n" in (hop.transactions[1].data or b"")
    assert hop.connections == 2
