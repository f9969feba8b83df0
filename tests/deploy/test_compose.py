"""compose.yaml and the Dockerfile: what can be checked without a Docker engine.

No engine runs on the build machine, so the image is never built here. What is checked: the
compose file parses (`docker compose config`, or Debian's `docker-compose config`), the
settings it gives the gateway are real settings that validate together with the image's own
environment, its commands parse with zerohour's CLI, and its provider-key step (how the
gateway gets the provider's public key) produces a key the gateway accepts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.gateway import run_cli, zerohour_cmd
from helpers.net import LOCALHOST, free_port, wait_for_port
from helpers.tools import tool
from zerohour import config
from zerohour.cli.main import build_parser
from zerohour.notices.keys import load_pinned_key

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
# Variables the code reads that are not settings (docs/settings.md, "Environment only").
ENV_ONLY = {"ZEROHOUR_CONFIG", "ZEROHOUR_CACHE_DIR", "ZEROHOUR_DB_DIR", "ZEROHOUR_PROVIDER_DIR"}


def compose_cmd() -> list[str]:
    """Docker's compose plugin when installed, else Debian's docker-compose (system-deps)."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return [tool("docker-compose")]


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    return subprocess.run(
        [*compose_cmd(), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    proc = compose_config({"POSTGRES_PASSWORD": "s3cret"})
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    out: dict[str, Any] = doc["services"]
    return out


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV assignments (`ENV A=1 \\ B=2` form)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for word in shlex.split(line[4:]):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def setting_env_names() -> set[str]:
    return {"ZEROHOUR_" + n.replace(".", "_").upper() for n in config.setting_names()}


def test_compose_parses_with_every_service(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "provider", "provider-key", "gateway"}
    gateway = services["gateway"]
    assert gateway["environment"]["PGPASSWORD"] == "s3cret"
    assert set(gateway["depends_on"]) == {"postgres", "provider-key"}
    for name in ("provider", "provider-key", "gateway"):
        assert services[name]["image"] == "zerohour:local"
        assert "build" in services[name]


def test_compose_refuses_to_start_without_a_database_password() -> None:
    proc = compose_config({})
    assert proc.returncode != 0
    assert "POSTGRES_PASSWORD" in proc.stderr


def test_the_gateway_environment_is_made_of_real_settings(
    services: dict[str, Any], tmp_path: Path
) -> None:
    """Unknown ZEROHOUR_* variables would be ignored silently; these must all be read, and
    with the image's own environment they make a valid configuration."""
    env = {**image_env(), **services["gateway"]["environment"]}
    names = {k for k in env if k.startswith("ZEROHOUR_")}
    assert "ZEROHOUR_STORE" in names
    assert sorted(names - setting_env_names() - ENV_ONLY) == []
    env["ZEROHOUR_DATA_DIR"] = str(tmp_path / "var")
    checked = run_cli("config", "check", "--json", env=env)
    assert checked.returncode == 0, checked.stderr
    cfg = json.loads(checked.stdout)
    assert cfg["store"].startswith("postgresql://zerohour")  # printed with the password masked
    assert cfg["store"].endswith("@postgres/zerohour")
    assert cfg["smtp"]["listen"] == "0.0.0.0:2525"
    assert cfg["notices"]["provider"] == "http://provider:8470"
    assert cfg["admin"]["listen"] == "0.0.0.0:8025"


def test_the_image_and_compose_commands_parse(services: dict[str, Any]) -> None:
    """ENTRYPOINT + CMD and each service's command are valid zerohour command lines."""
    text = DOCKERFILE.read_text()
    entry_line = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    cmd_line = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert entry_line is not None
    assert cmd_line is not None
    entry, cmd = json.loads(entry_line.group(1)), json.loads(cmd_line.group(1))
    assert entry == ["zerohour"]
    build_parser().parse_args(cmd)
    build_parser().parse_args(services["provider"]["command"])
    with pytest.raises(SystemExit):  # the check can fail
        build_parser().parse_args(["provider", "run", "--no-such-flag"])


def test_the_provider_key_step_gives_the_gateway_a_key_it_accepts(
    services: dict[str, Any], tmp_path: Path
) -> None:
    """Run the provider-key service's shell command against a real provider data folder
    (paths moved into the test) and load its output as the gateway would."""
    prov, shared = tmp_path / "provider", tmp_path / "shared"
    shared.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        zerohour_cmd("provider", "run", "--data-dir", str(prov), "--listen", f"{LOCALHOST}:{port}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for_port(port, timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    step = services["provider-key"]
    assert step["entrypoint"] == ["sh", "-c"]
    (script,) = step["command"]
    zerohour = " ".join(shlex.quote(a) for a in zerohour_cmd())
    script = (
        script.replace("/var/lib/zerohour-provider", str(prov))
        .replace("/var/lib/zerohour-shared", str(shared))
        .replace("zerohour provider", f"{zerohour} provider", 1)
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    key_path = services["gateway"]["environment"]["ZEROHOUR_NOTICES_PROVIDER_KEY"]
    assert key_path.startswith("/var/lib/zerohour-shared/")
    pinned = load_pinned_key(str(shared / Path(key_path).name))
    assert pinned.provider == "zerohour-lab"
