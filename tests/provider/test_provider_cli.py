"""Provider lab CLI against a real data folder (and a real server where it matters)."""

from __future__ import annotations

import json
import stat
import struct
from pathlib import Path

import httpx

from notices.support import ProviderProc, zerohour
from zerohour.notices.keys import parse_public_key_text


def make_pe(text: bytes, data: bytes) -> bytes:
    """A two-section PE32 (.text, .data), file alignment 0x200."""

    def pad(b: bytes) -> bytes:
        return b + b"\x00" * (-len(b) % 0x200)

    text_raw, data_raw = pad(text), pad(data)
    dos = b"MZ" + b"\x00" * 58 + struct.pack("<I", 0x40)
    coff = struct.pack("<4sHHIIIHH", b"PE\x00\x00", 0x14C, 2, 0, 0, 0, 0xE0, 0x0102)
    opt = (
        struct.pack(
            "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
            0x10B,
            0,
            0,
            len(text_raw),
            len(data_raw),
            0,
            0x1000,
            0x1000,
            0x2000,
            0x400000,
            0x1000,
            0x200,
            4,
            0,
            0,
            0,
            4,
            0,
            0,
            0x4000,
            0x200,
            0,
            2,
            0,
            0x100000,
            0x1000,
            0x100000,
            0x1000,
            0,
            16,
        )
        + b"\x00" * 128
    )
    sec = struct.pack(
        "<8sIIIIIIHHI",
        b".text",
        len(text_raw),
        0x1000,
        len(text_raw),
        0x200,
        0,
        0,
        0,
        0,
        0x60000020,
    )
    sec += struct.pack(
        "<8sIIIIIIHHI",
        b".data",
        len(data_raw),
        0x2000,
        len(data_raw),
        0x200 + len(text_raw),
        0,
        0,
        0,
        0,
        0xC0000040,
    )
    return pad(dos + coff + opt + sec) + text_raw + data_raw


def seqs(url: str) -> list[int]:
    r = httpx.get(f"{url}/v1/notices", params={"after": 0, "limit": 500})
    r.raise_for_status()
    import base64

    return [json.loads(base64.b64decode(e["payload"]))["s"] for e in r.json()["notices"]]


def test_key_show_matches_running_server_and_files_are_private(
    provider_proc: ProviderProc,
) -> None:
    res = provider_proc.lab("key", "show")
    assert res.stdout.strip().splitlines()[-1] == provider_proc.key_text
    assert parse_public_key_text(provider_proc.key_text).provider == "zerohour-lab"
    mode = stat.S_IMODE((provider_proc.data_dir / "signing.key").stat().st_mode)
    assert mode == 0o600
    assert not (provider_proc.data_dir / "subscription.token").exists()  # per-gateway tokens now
    assert httpx.get(f"{provider_proc.url}/v1/key").text.strip() == provider_proc.key_text


def test_restart_keeps_seq_monotonic(tmp_path: Path) -> None:
    p = ProviderProc(tmp_path / "prov").start()
    try:
        p.declare("One")
        p.declare("Two")
        key = p.key_text
    finally:
        p.stop()
    p.declare("Three")  # lab command while the server is down
    p2 = ProviderProc(tmp_path / "prov").start()
    try:
        assert p2.key_text == key  # the key survives restarts
        p2.declare("Four")
        assert seqs(p2.url) == [1, 2, 3, 4]
    finally:
        p2.stop()


def test_declare_with_samples_scope_and_pe_sections(tmp_path: Path) -> None:
    d = tmp_path / "prov"
    exe = tmp_path / "evil.exe"
    exe.write_bytes(make_pe(b"\x90" * 100 + b"evil code", b"evil data"))
    res = zerohour(
        "provider",
        "outbreak",
        "declare",
        "--data-dir",
        str(d),
        "--name",
        "Evil.A",
        "--sample",
        str(exe),
        "--scope",
        "attachments,types=executable+archive",
        "--mode",
        "checksum",
        "--expires",
        "30m",
        "--json",
    )
    assert res.returncode == 2  # no such provider folder yet: refused, not created
    ProviderProc(d).start().stop()
    res = zerohour(
        "provider",
        "outbreak",
        "declare",
        "--data-dir",
        str(d),
        "--name",
        "Evil.A",
        "--sample",
        str(exe),
        "--scope",
        "attachments,types=executable+archive",
        "--mode",
        "checksum",
        "--expires",
        "30m",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["mode"] == "checksum"
    assert obj["scope"] == {"has_attachment": True, "file_types": ["executable", "archive"]}
    parts = {c["part"] for c in obj["checksums"]}
    assert parts == {"file", "pe-section:.text", "pe-section:.data"}
    import hashlib

    whole = [c for c in obj["checksums"] if c["part"] == "file" and c["algo"] == "sha256"]
    assert whole[0]["digest"] == hashlib.sha256(exe.read_bytes()).hexdigest()
    assert whole[0]["size"] == exe.stat().st_size


def test_lab_errors_exit_2(provider_proc: ProviderProc, tmp_path: Path) -> None:
    d = str(provider_proc.data_dir)
    assert zerohour("provider", "outbreak", "end", "--data-dir", d, "ob-nope").returncode == 2
    res = zerohour(
        "provider", "outbreak", "declare", "--data-dir", d, "--name", "X", "--mode", "checksum"
    )
    assert res.returncode == 2
    assert "needs at least one --sample" in res.stderr
    res = zerohour(
        "provider", "outbreak", "declare", "--data-dir", d, "--name", "X", "--scope", "types=bogus"
    )
    assert res.returncode == 2
    oid = provider_proc.declare("Y")
    provider_proc.lab("outbreak", "end", oid)
    assert zerohour("provider", "outbreak", "end", "--data-dir", d, oid).returncode == 2


def test_from_sample_prints_hsb_line(tmp_path: Path) -> None:
    f = tmp_path / "s.bin"
    f.write_bytes(b"malware sample")
    import hashlib

    res = zerohour("provider", "signatures", "from-sample", str(f), "--name", "Test.Sample")
    assert res.returncode == 0
    assert res.stdout.strip() == f"{hashlib.sha256(b'malware sample').hexdigest()}:14:Test.Sample"


def test_keys_verify_offline(provider_proc: ProviderProc, tmp_path: Path) -> None:
    provider_proc.declare("Z")
    env = httpx.get(f"{provider_proc.url}/v1/notices").json()["notices"][0]
    f = tmp_path / "n.json"
    f.write_text(json.dumps(env))
    res = zerohour("keys", "verify", str(f), "--key", provider_proc.key_text, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["t"] == "outbreak.declared"  # protocol v2: short keys
    other = "zerohour-lab ed25519:" + "A" * 43 + "="
    res = zerohour("keys", "verify", str(f), "--key", other)
    assert res.returncode == 1
    assert "unknown_key" in res.stdout
