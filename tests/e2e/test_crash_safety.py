"""Crash safety: SIGKILL the gateway at random moments while a client sends; restart it on
the same data dir each time. Every message that got a 250 must reach the sink (at least once).

RFC 5321 §6.1: after the 250 the gateway owns the message. A duplicate after a crash between
delivery and bookkeeping is allowed (at-least-once), a loss is not.
"""

from __future__ import annotations

import random
import smtplib
import threading
import time

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, requires_gateway_marks
from helpers.messages import RECIPIENT, SENDER, clean_message, wire_bytes
from helpers.net import LOCALHOST, wait_until
from helpers.sinks import RecordingSink

pytestmark = [*requires_gateway_marks(), pytest.mark.slow]

MESSAGES = 60
MAX_MESSAGES = 2000
KILLS = 6


def _send_once(port: int, data: bytes) -> tuple[int, str]:
    """One transaction; (code, text) of the DATA reply, or (0, why) when the session broke."""
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=20) as client:
            client.ehlo("crash.e2e.test")
            code, _ = client.mail(SENDER)
            if code != 250:
                return code, "MAIL refused"
            code, _ = client.rcpt(RECIPIENT)
            if code != 250:
                return code, "RCPT refused"
            code, text = client.data(data)
            return code, text.decode("utf-8", "replace")
    except (OSError, smtplib.SMTPException) as exc:
        return 0, repr(exc)


class Killer(threading.Thread):
    """Kills the gateway after random short delays and restarts it, `KILLS` times."""

    def __init__(self, gw: GatewayProcess, seed: int) -> None:
        super().__init__(daemon=True)
        self.gw = gw
        self.rng = random.Random(seed)
        self.kills = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(KILLS):
                time.sleep(self.rng.uniform(0.05, 1.2))
                self.gw.kill()
                self.kills += 1
                self.gw.start()
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_loses_no_accepted_message(
    gateway_factory: GatewayFactory, sink: RecordingSink, seed: int
) -> None:
    gw = gateway_factory(next_hop=sink.address)
    killer = Killer(gw, seed)
    accepted: dict[str, str] = {}  # Message-ID -> the 250 reply text
    sent: set[str] = set()
    broken = 0  # transactions cut short by a kill (or refused while restarting)
    killer.start()
    # Keep sending until the killer is done, so every kill lands while mail is in flight.
    while len(sent) < MESSAGES or (killer.is_alive() and len(sent) < MAX_MESSAGES):
        msg = clean_message(subject=f"crash {seed}/{len(sent)}")
        mid = str(msg["Message-ID"])
        sent.add(mid)
        data = wire_bytes(msg)
        for _attempt in range(50):
            code, text = _send_once(gw.port, data)
            if code == 250:
                accepted[mid] = text
                break
            broken += 1
            # Broken session (killed), or a 4xx while restarting: the client retries, as an MTA
            # would. A 5xx would be a bug: clean mail must never be refused permanently.
            assert code == 0 or 400 <= code < 500, f"{mid}: {code} {text}"
            wait_until(gw.accepting, timeout=30, interval=0.05)
    killer.join(timeout=120)
    assert killer.error is None, f"restart failed: {killer.error!r}\n{gw.log()[-5000:]}"
    assert killer.kills == KILLS
    assert broken >= 1, "no kill ever interrupted the client: the test proved nothing"
    if not gw.alive():
        gw.start()
    assert set(accepted) == sent, "every message is eventually accepted after retries"
    missing = sink.wait_for_ids(set(accepted), timeout=120)
    assert not missing, f"{len(missing)} message(s) got 250 but never reached the sink: {missing}"
    assert set(sink.message_ids()) <= sent


def test_sigterm_stops_cleanly_and_the_queue_survives(gateway_factory: GatewayFactory) -> None:
    """SIGTERM is the operator's stop: a prompt, clean exit (code 0), an interrupted client
    session is not delivered half-written, and queued mail is delivered after the restart."""
    hop = RecordingSink()  # down: everything stays queued
    gw = gateway_factory(next_hop=hop.address)
    queued = [clean_message(subject=f"queued before stop {i}") for i in range(5)]
    for msg in queued:
        code, text = _send_once(gw.port, wire_bytes(msg))
        assert code == 250, text
    with smtplib.SMTP(LOCALHOST, gw.port, timeout=20) as client:  # a session left mid-DATA
        client.ehlo("stop.e2e.test")
        client.mail(SENDER)
        client.rcpt(RECIPIENT)
        client.putcmd("DATA")
        assert client.getreply()[0] == 354
        client.send(b"Subject: half\r\nMessage-ID: <half@e2e.test>\r\n\r\nhalf a bo")
        assert gw.stop(grace=15.0) == 0, f"unclean exit on SIGTERM:\n{gw.log()[-3000:]}"
    hop.start()
    try:
        gw.start()
        missing = hop.wait_for_ids({str(m["Message-ID"]) for m in queued}, timeout=60)
        assert not missing, f"queued mail lost over a SIGTERM restart: {missing}"
        assert "<half@e2e.test>" not in hop.message_ids()
    finally:
        hop.stop()


def test_sigkill_during_delivery_loses_nothing(gateway_factory: GatewayFactory) -> None:
    """Kills while the queue is being delivered to a slow next hop: between "next hop said 250"
    and "recorded as delivered" a copy may go out twice, but none may be dropped.

    (Mail claimed by the killed process is retried once its queue lease expires, 60 s at
    least, which is what makes this test slow.)"""
    hop = RecordingSink()  # down while the mail is accepted, so all of it is queued
    hop.data_delay = 1.0
    gw = gateway_factory(next_hop=hop.address)
    ids = set()
    for i in range(60):
        msg = clean_message(subject=f"delivery crash {i}")
        code, text = _send_once(gw.port, wire_bytes(msg))
        assert code == 250, text
        ids.add(str(msg["Message-ID"]))
    hop.start()
    try:
        rng = random.Random(7)
        delivered_at_kills = []
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.0))
            delivered_at_kills.append(len(hop.messages))
            gw.kill()
            gw.start()
        assert delivered_at_kills[0] < len(ids), "delivery was over before the first kill"
        missing = hop.wait_for_ids(ids, timeout=120)
        assert not missing, f"{len(missing)} accepted message(s) lost by a crash during delivery"
        assert set(hop.message_ids()) == ids
    finally:
        hop.stop()


def test_sigterm_with_deliveries_in_flight_redelivers_promptly_after_restart(
    gateway_factory: GatewayFactory,
) -> None:
    """A graceful stop while deliveries hang at the next hop must not leave that mail claimed
    by the stopped process: after the restart it goes out at once (Postfix's queue manager
    puts its active queue back on start), not after a lease of minutes."""
    hop = RecordingSink().start()
    hop.data_delay = 30.0  # every delivery hangs in DATA: all of them are in flight
    try:
        gw = gateway_factory(next_hop=hop.address)
        ids = set()
        for i in range(5):
            msg = clean_message(subject=f"in flight at stop {i}")
            code, text = _send_once(gw.port, wire_bytes(msg))
            assert code == 250, text
            ids.add(str(msg["Message-ID"]))
        time.sleep(1.0)  # let the queue claim them and start the (hanging) transactions
        assert gw.stop(grace=30.0) == 0, gw.log()[-3000:]
        hop.data_delay = 0.0
        gw.start()
        missing = hop.wait_for_ids(ids, timeout=20)
        assert not missing, (
            f"{len(missing)} message(s) in flight at SIGTERM not redelivered within 20 s of the "
            "restart (still leased to the stopped process?)"
        )
    finally:
        hop.stop()
