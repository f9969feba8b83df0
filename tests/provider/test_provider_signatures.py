"""The provider's live signature set (issue 9, section 3 "A second bundle"), through the lab CLI
and the served bundles: publish adds, every bundle carries the whole live set, retire drops a
signature (listed in the signed manifest's `retired`), `signatures list` shows what is live, and
formats that would switch detection off cannot be published."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx

from notices.support import ProviderProc, zerohour


def line(content: bytes, name: str) -> str:
    return f"{hashlib.sha256(content).hexdigest()}:{len(content)}:{name}\n"


def served(p: ProviderProc, version: int) -> tuple[dict[str, object], dict[str, bytes]]:
    env = httpx.get(f"{p.url}/v1/signatures/{version}/manifest.json").json()
    manifest = json.loads(base64.b64decode(env["payload"]))
    files = {
        f["name"]: httpx.get(f"{p.url}/v1/signatures/{version}/{f['name']}").content
        for f in manifest["files"]
    }
    return manifest, files


def names(p: ProviderProc, *extra: str) -> dict[str, dict[str, object]]:
    out = json.loads(p.lab("signatures", "list", "--json", *extra).stdout)
    return {s["name"]: s for s in out["signatures"]}


def test_bundles_carry_the_live_set_and_retire_drops(
    provider_proc: ProviderProc, tmp_path: Path
) -> None:
    p = provider_proc
    (tmp_path / "one.hsb").write_text(line(b"one", "Test.One"))
    (tmp_path / "two.ndb").write_text("Test.Two:0:*:74776f2d76697275730a\n")
    p.lab("signatures", "publish", str(tmp_path / "one.hsb"))
    p.lab("signatures", "publish", str(tmp_path / "two.ndb"))
    manifest, files = served(p, 2)
    assert sorted(files) == ["one.hsb", "two.ndb"]  # bundle 2 still has bundle 1's signature
    assert files["one.hsb"] == line(b"one", "Test.One").encode()
    assert "retired" not in manifest
    assert set(names(p)) == {"Test.One", "Test.Two"}

    # the same name again replaces the signature; a new name in the same file accumulates
    (tmp_path / "one.hsb").write_text(line(b"one v2", "Test.One") + line(b"three", "Test.Three"))
    p.lab("signatures", "publish", str(tmp_path / "one.hsb"))
    _, files = served(p, 3)
    assert files["one.hsb"].decode().splitlines() == [
        line(b"one v2", "Test.One").strip(),
        line(b"three", "Test.Three").strip(),
    ]

    out = json.loads(p.lab("signatures", "retire", "Test.Three", "--json").stdout)
    assert out["version"] == 4
    manifest, files = served(p, 4)
    assert manifest["retired"] == ["Test.Three"]
    assert b"Test.Three" not in files["one.hsb"]
    assert set(names(p)) == {"Test.One", "Test.Two"}
    everything = names(p, "--all")
    assert everything["Test.Three"]["live"] is False
    assert everything["Test.Three"]["retired_in"] == 4
    human = p.lab("signatures", "list").stdout
    assert "bundle version 4: 2 live" in human

    # retired names stay listed in later bundles (a gateway that missed bundle 4 converges)
    (tmp_path / "four.hsb").write_text(line(b"four", "Test.Four"))
    p.lab("signatures", "publish", str(tmp_path / "four.hsb"))
    manifest, _ = served(p, 5)
    assert manifest["retired"] == ["Test.Three"]
    # publishing a retired name again makes it live (and no longer retired)
    (tmp_path / "three.hsb").write_text(line(b"three", "Test.Three"))
    p.lab("signatures", "publish", str(tmp_path / "three.hsb"))
    manifest, _ = served(p, 6)
    assert "retired" not in manifest
    assert "Test.Three" in names(p)


def test_formats_that_switch_detection_off_cannot_be_published(
    provider_proc: ProviderProc, tmp_path: Path
) -> None:
    for fname, text in [
        ("local.ign2", "Eicar-Test-Signature\n"),
        ("allow.fp", "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"),
        ("allow.sfp", "0" * 64 + ":68:X\n"),
        ("notes.txt", "x\n"),
    ]:
        (tmp_path / fname).write_text(text)
        res = zerohour(
            "provider", "signatures", "publish", str(tmp_path / fname),
            "--data-dir", str(provider_proc.data_dir),
        )
        assert res.returncode != 0, fname
        assert "only detection formats" in res.stderr, res.stderr
    (tmp_path / "bad.hsb").write_text("not a signature\n")
    res = zerohour(
        "provider", "signatures", "publish", str(tmp_path / "bad.hsb"),
        "--data-dir", str(provider_proc.data_dir),
    )
    assert res.returncode != 0
    assert "bad.hsb:1" in res.stderr
    res = zerohour(
        "provider", "signatures", "retire", "No.Such", "--data-dir", str(provider_proc.data_dir)
    )
    assert res.returncode != 0
    assert "not live" in res.stderr
    assert httpx.get(f"{provider_proc.url}/v1/signatures/latest").status_code == 404
