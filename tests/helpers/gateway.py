"""The gateway as a black box: `python -m zerohour gateway run ...` in a subprocess.

Only the command-line contract of issue 3 is used here. Extra settings go into a TOML file
passed with `--config` (key names are the gateway's; see `zerohour config check`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from helpers.net import LOCALHOST, free_port, port_accepts, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def zerohour_cmd(*args: str) -> list[str]:
    """The argv that runs the zerohour CLI with the test interpreter."""
    return [sys.executable, "-m", "zerohour", *args]


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run one `zerohour ...` command to completion and return its result."""
    return subprocess.run(
        zerohour_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@dataclass
class GatewaySpec:
    """What to start: the flags of `gateway run` plus an optional TOML config body."""

    data_dir: Path
    next_hop: str | None = None
    relay_domains: Sequence[str] = ("example.test",)
    mynetworks: Sequence[str] = ()
    config_toml: str = ""
    db_dir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    mode: str = "gateway"  # or "milter": `milter run`, `port` is the milter listener


class GatewayProcess:
    """One gateway subprocess; restartable on the same data dir and port (crash tests)."""

    def __init__(self, spec: GatewaySpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def address(self) -> tuple[str, int]:
        return (LOCALHOST, self.spec.port)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def argv(self) -> list[str]:
        spec = self.spec
        args = [
            spec.mode,
            "run",
            "--data-dir",
            str(spec.data_dir),
            "--listen",
            f"{LOCALHOST}:{spec.port}",
        ]
        if spec.config_toml:
            config = spec.data_dir.parent / f"{spec.data_dir.name}-gateway.toml"
            config.write_text(spec.config_toml)
            args += ["--config", str(config)]
        if spec.next_hop:
            args += ["--next-hop", spec.next_hop]
        for domain in spec.relay_domains:
            args += ["--relay-domain", domain]
        for cidr in spec.mynetworks:
            args += ["--mynetworks", cidr]
        if spec.db_dir is not None:
            args += ["--db", str(spec.db_dir)]
        return zerohour_cmd(*args)

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        """Start and wait until the SMTP port accepts connections (or the process died)."""
        self.spec.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.spec.env},
                cwd=self.spec.data_dir.parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"gateway exited with {self._proc.returncode} before listening:\n"
                    f"{self.log()[-4000:]}"
                )
            if wait_for_port(self.spec.port, timeout=0.2):
                return self
        self.stop()
        raise RuntimeError(
            f"gateway did not listen on port {self.spec.port}:\n{self.log()[-4000:]}"
        )

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def accepting(self) -> bool:
        return self.alive() and port_accepts(self.spec.port)

    def kill(self) -> None:
        """SIGKILL: the crash the spool must survive."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def restart(self) -> GatewayProcess:
        self.kill()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run another CLI command (e.g. `quarantine list --json`) against this data dir."""
        return run_cli(
            *args, "--data-dir", str(self.spec.data_dir), env=self.spec.env, timeout=timeout
        )


class GatewayFactory(Protocol):
    """The `gateway_factory` fixture: start a gateway from `GatewaySpec` fields."""

    def __call__(self, *, start: bool = True, name: str = "gw", **spec: Any) -> GatewayProcess: ...


def requires_gateway_marks() -> list[pytest.MarkDecorator]:
    """Marks for tests that drive `zerohour gateway run` (skipped only while it is unbuilt)."""
    try:
        missing = importlib.util.find_spec("zerohour.cli.gateway") is None
    except ModuleNotFoundError:
        missing = True
    return [
        pytest.mark.skipif(missing, reason="`zerohour gateway` is not built yet (issue 3)"),
        pytest.mark.timeout(240),
    ]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


# Settings that make a gateway testable: quick retries, idle polling short, no STARTTLS to the
# sink, no admin server, and trusted networks that do NOT include 127.0.0.1 (so relay policy is
# really tested).
TEST_SETTINGS: dict[str, dict[str, object]] = {
    "": {"spool_minfree": 1024 * 1024},
    "smtp": {"mynetworks": ["192.0.2.0/24"], "hostname": "gw.e2e.test"},
    "admin": {"listen": "off"},  # no fixed port 8025 grabbed by SMTP tests
    "delivery": {
        "retry_min": 0.5,
        "retry_max": 2.0,
        "poll_interval": 0.1,
        "connect_timeout": 5.0,
        "timeout": 30.0,
        "starttls": False,
    },
}


def gateway_toml(**overrides: dict[str, object]) -> str:
    """TOML for `--config`: TEST_SETTINGS with per-section overrides (`root=` for top level)."""
    sections = {sec: dict(keys) for sec, keys in TEST_SETTINGS.items()}
    for sec, keys in overrides.items():
        sections.setdefault("" if sec == "root" else sec, {}).update(keys)
    lines = [f"{k} = {_toml_value(v)}" for k, v in sections.pop("", {}).items()]
    for sec, keys in sections.items():
        lines.append(f"\n[{sec}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"
