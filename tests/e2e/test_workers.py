"""`smtp.workers = 2`: two SMTP processes on one port (SO_REUSEPORT), one SQLite store and spool.

Proves: both processes take connections and every message is delivered once; a worker killed
with SIGKILL while mail is in flight loses no message that got a 250 and is restarted; an
outbreak recorded in the store holds mail in every process; SIGTERM stops them all; control
mail a worker receives reaches the main process's hook.
"""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.messages import RECIPIENT, SENDER, clean_message, wire_bytes
from helpers.net import LOCALHOST, wait_until
from helpers.outbreaks import declare, with_zip
from helpers.sinks import RecordingSink
from zerohour.gateway.workers import ControlRelay, forward_control
from zerohour.notices.model import OutbreakSpec, Scope

pytestmark = requires_gateway_marks()


def _workers(gw: GatewayProcess, count: int = 1, timeout: float = 60) -> list[int]:
    """Pids of the ready worker processes (log lines `workers.ready index=N pid=P`)."""
    assert wait_until(
        lambda: len(set(re.findall(r"workers\.ready index=\d+ pid=(\d+)", gw.log()))) >= count,
        timeout=timeout,
    ), gw.log()[-3000:]
    return [int(p) for p in re.findall(r"workers\.ready index=\d+ pid=(\d+)", gw.log())]


def _started(pid: int) -> int | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, started: int | None = None) -> bool:
    """True while `pid` runs and is not a zombie; with `started`, only the same process counts.

    A SIGKILLed process takes a moment to tear down, and under process churn its pid can be
    reused, so callers poll and pass the start time they saw.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "State:\tZ" in status or "State:\tX" in status:
        return False
    return started is None or _started(pid) == started


def _server_pids(port: int) -> set[int]:
    """Pids owning the accepted (server side) sockets of established sessions on `port`."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def _start(gateway_factory: GatewayFactory, sink: RecordingSink) -> GatewayProcess:
    return gateway_factory(next_hop=sink.address, config_toml=gateway_toml(smtp={"workers": 2}))


def _send(port: int, msg: EmailMessage) -> tuple[int, str]:
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=20) as c:
            c.ehlo("workers.e2e.test")
            c.mail(SENDER)
            c.rcpt(RECIPIENT)
            code, text = c.data(wire_bytes(msg))
            return code, text.decode("utf-8", "replace")
    except (OSError, smtplib.SMTPException) as exc:
        return 0, repr(exc)


def test_two_processes_share_the_port_and_deliver_every_message_once(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = _start(gateway_factory, sink)
    (worker,) = _workers(gw)
    assert gw.pid is not None
    sessions = []
    try:
        for _ in range(24):  # held open: the kernel spreads them over both listeners
            c = smtplib.SMTP(LOCALHOST, gw.port, timeout=20)
            c.ehlo("spread.e2e.test")
            sessions.append(c)
        owners = _server_pids(gw.port)
        assert owners == {gw.pid, worker}, (owners, gw.pid, worker)
        sent = []
        for i, c in enumerate(sessions):
            msg = clean_message(subject=f"spread {i}")
            c.sendmail(SENDER, [RECIPIENT], wire_bytes(msg))
            sent.append(str(msg["Message-ID"]))
    finally:
        for c in sessions:
            c.close()
    assert not sink.wait_for_ids(set(sent), timeout=60)
    assert sorted(sink.message_ids()) == sorted(sent), "each message delivered exactly once"


def test_a_killed_worker_loses_nothing_and_is_restarted(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = _start(gateway_factory, sink)
    (worker,) = _workers(gw)
    born = _started(worker)
    accepted: set[str] = set()
    broken = 0
    stop = threading.Event()

    def kill_soon() -> None:
        time.sleep(1.0)
        os.kill(worker, signal.SIGKILL)
        stop.set()

    killer = threading.Thread(target=kill_soon, daemon=True)
    killer.start()
    i = 0
    while not stop.is_set() or i < 80:
        msg = clean_message(subject=f"worker crash {i}")
        i += 1
        for _ in range(20):
            code, text = _send(gw.port, msg)
            if code == 250:
                accepted.add(str(msg["Message-ID"]))
                break
            broken += 1
            assert code == 0 or 400 <= code < 500, text
            time.sleep(0.05)
    killer.join()
    assert wait_until(lambda: not _alive(worker, born), timeout=10)
    new = _workers(gw, count=2)
    assert new[-1] != worker
    assert "workers.died index=1" in gw.log()
    missing = sink.wait_for_ids(accepted, timeout=120)
    assert not missing, f"{len(missing)} message(s) got 250 but never arrived: {missing}"




def test_an_outbreak_holds_mail_in_every_process(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = _start(gateway_factory, sink)
    (worker,) = _workers(gw)
    wave = OutbreakSpec("ob-w", "WorkerWave", scope=Scope(has_attachment=True))
    declare(gw.spec.data_dir, wave)
    time.sleep(0.5)  # each process polls the store every 50 ms
    sessions = []
    try:
        for _ in range(16):
            c = smtplib.SMTP(LOCALHOST, gw.port, timeout=20)
            c.ehlo("outbreak.e2e.test")
            sessions.append(c)
        assert _server_pids(gw.port) == {gw.pid, worker}
        zipped = []
        for i, c in enumerate(sessions):
            msg = with_zip(f"zipped {i}")
            c.sendmail(SENDER, [RECIPIENT], wire_bytes(msg))
            zipped.append(str(msg["Message-ID"]))
    finally:
        for c in sessions:
            c.close()
    plain = clean_message(subject="plain after the zips")
    assert _send(gw.port, plain)[0] == 250
    assert not sink.wait_for_ids({str(plain["Message-ID"])}, timeout=60)
    assert not set(zipped) & set(sink.message_ids()), "a worker delivered held mail"
    held = json.loads(gw.cli("hold", "list", "--outbreak", "ob-w", "--json").stdout)
    assert held["total"] == 16, held


def test_sigterm_stops_every_process(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    gw = _start(gateway_factory, sink)
    (worker,) = _workers(gw)
    assert gw.stop(grace=30) == 0, gw.log()[-3000:]
    assert wait_until(lambda: not _alive(worker), timeout=10)
    assert "gateway.stopped" in gw.log()


def test_main_process_killed_takes_its_workers_along(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = _start(gateway_factory, sink)
    (worker,) = _workers(gw)
    gw.kill()
    assert wait_until(lambda: not _alive(worker), timeout=10), "an orphaned worker kept the port"
    gw.start()
    msg = clean_message(subject="after the restart")
    assert _send(gw.port, msg)[0] == 250
    assert not sink.wait_for_ids({str(msg["Message-ID"])}, timeout=60)


def test_bad_worker_settings_are_clear_errors(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(start=False)
    gw.spec.data_dir.parent.mkdir(parents=True, exist_ok=True)
    bad = gw.cli("config", "check", "--workers", "-1")
    assert bad.returncode == 2
    assert "smtp.workers" in bad.stderr


async def test_control_mail_reaches_the_main_process_hook() -> None:
    got: list[bytes] = []
    relay = ControlRelay(lambda msg: _record(got, msg.data))
    await relay.start()
    try:
        await forward_control(os.getpid())(type("M", (), {"data": b"notice bytes"})())
    finally:
        await relay.stop()
    assert got == [b"notice bytes"]


async def _record(got: list[bytes], data: bytes) -> None:
    got.append(data)
