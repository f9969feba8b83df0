"""deploy/systemd: the units are valid for systemd, hardened, and their commands really run.

`systemd-analyze verify` parses a unit as systemd would (and checks that ExecStart's binary
exists); it reports misspelt keys and bad values as warnings with exit status 0, so any output
at all counts as a failure here. The units point at /opt/zerohour (the documented install);
the tests copy them with ExecStart pointing at this virtualenv's `zerohour` script.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.gateway import zerohour_cmd
from helpers.net import LOCALHOST, free_port, wait_for_port, wait_until
from helpers.tools import tool

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/zerohour/bin/zerohour"
GATEWAY = "zerohour-gateway.service"
PROVIDER = "zerohour-provider.service"


def entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment of a unit file, in order."""
    out, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(unit: str, key: str) -> list[str]:
    return [v for _, k, v in entries((UNITS / unit).read_text()) if k == key]


def local_copy(unit: str, folder: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this venv's console script."""
    script = Path(sys.executable).parent / "zerohour"
    assert script.is_file(), f"{script}: the venv's console script is missing"
    body = (UNITS / unit).read_text() if text is None else text
    path = folder / unit
    path.write_text(body.replace(INSTALLED, str(script)))
    return path


def verify(path: Path) -> str:
    """What `systemd-analyze verify` says about the unit ('' when it is clean)."""
    proc = subprocess.run(
        [tool("systemd-analyze"), "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return (
        f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}".strip()
        if (proc.returncode or proc.stdout or proc.stderr)
        else ""
    )


def exec_args(unit: str) -> list[str]:
    """ExecStart's arguments after the zerohour binary."""
    (line,) = values(unit, "ExecStart")
    argv = shlex.split(line)
    assert argv[0] == INSTALLED
    return argv[1:]


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """`args` with `option`'s value replaced (the option must be there)."""
    i = args.index(option)
    return [*args[: i + 1], value, *args[i + 2 :]]


@pytest.mark.parametrize("unit", [GATEWAY, PROVIDER])
def test_systemd_accepts_the_unit(unit: str, tmp_path: Path) -> None:
    assert verify(local_copy(unit, tmp_path)) == ""


def test_a_broken_unit_is_reported(tmp_path: Path) -> None:
    """The check above can fail: a bad value and a misspelt key, which systemd only warns
    about (exit status 0), and the uninstalled /opt path."""
    text = (UNITS / GATEWAY).read_text()
    broken = text.replace("Restart=on-failure", "Restart=sometimes\nProtectSytem=strict")
    assert broken != text
    report = verify(local_copy(GATEWAY, tmp_path, broken))
    assert "sometimes" in report
    assert "ProtectSytem" in report
    as_shipped = tmp_path / "shipped"
    as_shipped.mkdir()
    (as_shipped / GATEWAY).write_text(text)
    assert INSTALLED in verify(as_shipped / GATEWAY)


@pytest.mark.parametrize("unit", [GATEWAY, PROVIDER])
def test_the_unit_drops_privileges_and_is_hardened(unit: str, tmp_path: Path) -> None:
    """A dedicated user, a read-only system but the data folder, and systemd's own exposure
    score at most 3.0 of 10 (`systemd-analyze security`: 'OK' or better)."""
    (user,) = values(unit, "User")
    assert user.startswith("zerohour")
    assert values(unit, "NoNewPrivileges") == ["yes"]
    assert values(unit, "ProtectSystem") == ["strict"]
    assert values(unit, "PrivateTmp") == ["yes"]
    assert values(unit, "Restart") == ["on-failure"]
    (state,) = values(unit, "StateDirectory")
    assert f"--data-dir /var/lib/{state}" in values(unit, "ExecStart")[0]
    proc = subprocess.run(
        [
            tool("systemd-analyze"),
            "security",
            "--offline=yes",
            "--threshold=30",
            str(local_copy(unit, tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert score is not None, proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exposure {score.group(1)}:\n{proc.stdout[-3000:]}"


def test_the_gateway_binds_port_25_by_capability_only() -> None:
    assert values(GATEWAY, "AmbientCapabilities") == ["CAP_NET_BIND_SERVICE"]
    assert values(GATEWAY, "CapabilityBoundingSet") == ["CAP_NET_BIND_SERVICE"]
    assert values(PROVIDER, "CapabilityBoundingSet") == [""]


def test_the_gateway_command_runs_reloads_on_sighup_and_stops(tmp_path: Path) -> None:
    """The unit's ExecStart (config file: deploy/gateway.toml, the documented starting point;
    listen address, data folder and database redirected into the test) starts a gateway;
    ExecReload's SIGHUP reloads its database; systemd's SIGTERM stops it with status 0 (not a
    failure that Restart=on-failure would restart)."""
    assert values(GATEWAY, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    args = with_option(exec_args(GATEWAY), "--config", str(ROOT / "deploy" / "gateway.toml"))
    args = with_option(args, "--data-dir", str(tmp_path / "var"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROHOUR_")}
    for line in values(GATEWAY, "Environment"):
        key, _, _ = line.partition("=")
        env[key] = str(tmp_path / "cache")  # the unit's ZEROHOUR_CACHE_DIR, here
    env |= {
        "ZEROHOUR_SMTP_LISTEN": f"{LOCALHOST}:{port}",
        "ZEROHOUR_ADMIN_LISTEN": "off",
        "ZEROHOUR_SCAN_DB_DIRS": "",  # the starter database, not this machine's ClamAV
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            zerohour_cmd(*args), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        listening = wait_for_port(port, timeout=120)
        assert listening, log_path.read_text()
        proc.send_signal(signal.SIGHUP)
        reloaded = wait_until(lambda: "source=SIGHUP" in log_path.read_text(), timeout=60)
        assert reloaded, log_path.read_text()
        proc.send_signal(signal.SIGTERM)
        (stop,) = values(GATEWAY, "TimeoutStopSec")
        assert proc.wait(timeout=float(stop.rstrip("s"))) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_the_provider_command_runs_and_stops(tmp_path: Path) -> None:
    """The provider has no SIGTERM handler: it dies of the signal, which systemd counts as a
    clean stop (not a failure to restart), like exit status 0."""
    port = free_port()
    args = with_option(exec_args(PROVIDER), "--data-dir", str(tmp_path / "prov"))
    args = with_option(args, "--listen", f"{LOCALHOST}:{port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROHOUR_")}
    log_path = tmp_path / "provider.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            zerohour_cmd(*args), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        assert wait_for_port(port, timeout=60), log_path.read_text()
        proc.send_signal(signal.SIGTERM)
        (stop,) = values(PROVIDER, "TimeoutStopSec")
        status = proc.wait(timeout=float(stop.rstrip("s")))
        assert status in {0, -signal.SIGTERM}, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
