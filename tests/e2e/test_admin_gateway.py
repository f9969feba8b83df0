"""`zerohour gateway run` (a real subprocess) serves the admin API next to SMTP: first-run
token file, a token made with the CLI while it runs, status, metrics, release of real mail."""

from __future__ import annotations

import os
import smtplib
import stat
import time
from pathlib import Path
from typing import Any

import httpx

from helpers.gateway import GatewayFactory, requires_gateway_marks
from helpers.net import free_port, wait_for_port, wait_until
from helpers.sinks import RecordingSink

pytestmark = requires_gateway_marks()


def _send(port: int, subject: str) -> None:
    data = f"From: a@sender.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("a@sender.test", ["b@example.test"], data.encode())


def test_gateway_run_serves_admin(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    admin_port = free_port()
    gw = gateway_factory(
        next_hop=sink.address, env={"ZEROHOUR_ADMIN_LISTEN": f"127.0.0.1:{admin_port}"}
    )
    assert wait_for_port(admin_port, timeout=30), gw.log()
    data_dir: Path = gw.spec.data_dir
    first = data_dir / "admin-token"
    assert wait_until(first.exists, timeout=10)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "admin.sqlite3").stat().st_mode) == 0o600
    token = first.read_text().strip()
    # only a hash is stored: the secret never appears in the token database
    secret = token.split("_", 2)[2]
    assert secret.encode() not in (data_dir / "admin.sqlite3").read_bytes()

    base = f"http://127.0.0.1:{admin_port}"
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/api/v1/status").status_code == 401
        st = c.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert st.status_code == 200, st.text
        assert st.json()["outbreak_active"] is False

        # a read token created with the CLI while the gateway runs works at once
        made = gw.cli("admin", "token", "create", "--role", "read", "--name", "grafana", "--json")
        assert made.returncode == 0, made.stderr
        import json

        read = json.loads(made.stdout)["token"]
        hdr = {"Authorization": f"Bearer {read}"}
        assert c.get("/api/v1/whoami", headers=hdr).json()["actor"] == "admin:grafana"

        _send(gw.port, "through")
        assert wait_until(lambda: sink.messages, timeout=30)

        def delivered() -> Any:
            m = c.get("/metrics", headers=hdr).text
            return 'zerohour_messages{state="delivered"} 1.0' in m and m

        metrics = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not metrics:
            metrics = delivered()
            time.sleep(0.1)
        assert metrics, c.get("/metrics", headers=hdr).text
        assert "zerohour_db_info{version=" in metrics
        assert "zerohour_scan_seconds_bucket" in metrics
        assert "zerohour_scan_clean_cache_lookups_total" in metrics  # counts: test_clean_cache
        # The delivered message was scanned by this gateway: the histogram counted it.
        count = [ln for ln in metrics.splitlines() if ln.startswith("zerohour_scan_seconds_count")]
        assert count, metrics
        assert float(count[0].split()[-1]) >= 1, count

        revoke = gw.cli("admin", "token", "revoke", read.split("_")[1])
        assert revoke.returncode == 0, revoke.stderr
        assert c.get("/api/v1/whoami", headers=hdr).status_code == 401
        audit = c.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"}).json()
        actions = [e["action"] for e in audit["items"]]
        assert "token.create" in actions
        assert "token.revoke" in actions
    assert gw.stop() == 0
    assert os.path.exists(data_dir / "admin.sqlite3")
