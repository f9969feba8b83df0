"""`zerohour admin ...` as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def zh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zerohour", *args], capture_output=True,
                          text=True, timeout=60)


def test_token_create_list_revoke_audit(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    made = zh("admin", "token", "create", "--role", "admin", "--name", "night shift",
              "--data-dir", d)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[0]
    assert token.startswith("zh_")
    assert "shown only once" in made.stdout
    tid = token.split("_")[1]
    listed = zh("admin", "token", "list", "--data-dir", d, "--json")
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["role"], r["revoked_at"]) for r in rows] == [
        (tid, "night shift", "admin", None)]
    assert token.split("_", 2)[2] not in listed.stdout  # never the secret again
    assert zh("admin", "token", "revoke", tid, "--data-dir", d).returncode == 0
    again = zh("admin", "token", "revoke", tid, "--data-dir", d)
    assert again.returncode == 2
    assert "no active token" in again.stderr
    human = zh("admin", "token", "list", "--data-dir", d)
    assert "revoked" in human.stdout
    bad = zh("admin", "token", "create", "--role", "root", "--data-dir", d)
    assert bad.returncode == 2
    audit = json.loads(zh("admin", "audit", "--data-dir", d, "--json").stdout)
    assert [e["action"] for e in audit["items"]] == ["token.revoke", "token.create"]
    assert audit["items"][0]["actor"] == "cli"
