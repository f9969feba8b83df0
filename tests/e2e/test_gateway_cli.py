"""`zerohour gateway run` as a subprocess with the admin CLI next to it on the same data folder:
an outbreak recorded in the store (as the notice listeners do) holds mail, `hold list/release`
work on it, `status` shows it, and a SIGTERM'd gateway delivers after restart what it queued."""

from __future__ import annotations

import json
import smtplib
import time
from pathlib import Path

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.outbreaks import declare
from helpers.sinks import RecordingSink
from zerohour.notices.model import OutbreakSpec, Scope

pytestmark = requires_gateway_marks()


def send(port: int, subject: str, attachment: bool = False) -> None:
    body = f"Subject: {subject}\r\nMessage-ID: <{subject}@cli.test>\r\n"
    if attachment:
        body += (
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n"
            "Content-Type: application/zip\r\nContent-Disposition: attachment; filename=a.zip\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n--B--\r\n"
        )
    else:
        body += "\r\nplain text\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("alice@sender.test", ["bob@example.test"], body.encode())



def wait_json(gw: object, *args: str, until: object, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    out: object = None
    while time.monotonic() < deadline:
        proc = gw.cli(*args, "--json")  # type: ignore[attr-defined]
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        if until(out):  # type: ignore[operator]
            return out
        time.sleep(0.3)
    return out


def test_outbreak_hold_list_release_via_cli(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(next_hop=sink.address, config_toml=gateway_toml())
    data_dir = gw.spec.data_dir
    declare(data_dir, OutbreakSpec("ob-cli", "CliWave", scope=Scope(has_attachment=True)))
    time.sleep(1.5)  # the gateway notices the change (store watch) within a second
    send(gw.port, "zipped", attachment=True)
    send(gw.port, "plain")
    assert sink.wait_for_ids({"<plain@cli.test>"}) == set()
    held = wait_json(gw, "hold", "list", "--outbreak", "ob-cli", until=lambda o: o["total"] == 1)
    assert held["total"] == 1  # type: ignore[index]
    qid = held["messages"][0]["queue_id"]  # type: ignore[index]
    assert held["messages"][0]["outbreaks"] == ["ob-cli"]  # type: ignore[index]
    status = json.loads(gw.cli("status", "--json").stdout)
    assert status["mode"] == "outbreak"
    assert status["held"] == 1
    assert status["outbreaks"][0]["outbreak_id"] == "ob-cli"
    assert status["starter_db"] is True
    shown = gw.cli("hold", "show", qid)
    assert shown.returncode == 0
    assert "ob-cli" in shown.stdout
    released = gw.cli("hold", "release", "--outbreak", "ob-cli")
    assert released.returncode == 0, released.stderr
    assert "queued" in released.stdout
    assert sink.wait_for_ids({"<zipped@cli.test>"}) == set()
    history = json.loads(gw.cli("hold", "show", qid, "--json").stdout)
    states = [e["state"] for e in history["events"]]
    assert states == ["held", "queued", "delivered"]


def test_sigterm_then_restart_delivers_what_was_queued(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    sink.stop()  # next hop down: mail stays queued
    gw = gateway_factory(next_hop=sink.address, config_toml=gateway_toml())
    for i in range(5):
        send(gw.port, f"queued-{i}")
    queue = json.loads(gw.cli("queue", "list", "--json").stdout)
    assert len(queue) == 5
    assert gw.stop() == 0  # clean shutdown on SIGTERM
    sink.start()
    gw.start()
    missing = sink.wait_for_ids({f"<queued-{i}@cli.test>" for i in range(5)})
    assert missing == set()
    assert "gateway.stopped" in gw.log()


def test_config_check_shows_merged_settings(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(start=False, config_toml=gateway_toml(smtp={"max_recipients": 7}))
    gw.spec.data_dir.parent.mkdir(parents=True, exist_ok=True)
    toml = gw.spec.data_dir.parent / "check.toml"
    toml.write_text(gateway_toml(smtp={"max_recipients": 7}))
    proc = gw.cli("config", "check", "--config", str(toml), "--next-hop", "127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(
        gw.cli("config", "check", "--config", str(toml), "--json").stdout
    )
    assert out["smtp"]["max_recipients"] == 7
    bad = gw.cli("config", "check", "--next-hop", "nonsense")
    assert bad.returncode == 2
    assert "delivery.next_hop" in bad.stderr


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def test_sigkill_leaves_no_scanner_processes(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(config_toml=gateway_toml())
    pid = gw.pid
    assert pid is not None
    send(gw.port, "warm")  # the pool is up
    family = _children(pid)
    for child in list(family):
        family |= _children(child)
    assert len(family) >= 2  # fork server and scanner workers (and a resource tracker)
    gw.kill()
    deadline = time.monotonic() + 10
    alive = family
    while time.monotonic() < deadline:
        alive = {p for p in family if Path(f"/proc/{p}").exists()}
        if not alive:
            break
        time.sleep(0.1)
    assert alive == set()
