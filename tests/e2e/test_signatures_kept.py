"""Installed signatures are never lost (issue 9, section 3), with real processes: `zerohour
provider run`, `zerohour gateway run`, the lab CLI and an SMTP sink.

- A restarted gateway still rejects what its installed bundle detects (it loads
  `<data>/db/current` at start, not only the configured folders).
- Bundles accumulate: after bundle 2 the virus of bundle 1 is still rejected; retiring a
  signature (a false positive) re-releases the mail it alone had quarantined, after a rescan.
- The operator's `--db` folders are reloaded when a file changes, on SIGHUP and on
  `zerohour reload`, and the new version is logged.
- A signed bundle cannot switch detection off: a `.ign2` naming EICAR is refused, EICAR stays
  rejected, and later notices still apply.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from zerohour.demo.mail import EICAR, build, new_virus_sample, sender
from zerohour.demo.stack import (
    GatewayOptions,
    GatewayProcess,
    MailSink,
    ProviderProcess,
    SendResult,
    run_cli,
    send_mail,
    zerohour_argv,
)

pytestmark = [pytest.mark.timeout(300)]


class Stack:
    def __init__(self, root: Path, toml: str = "") -> None:
        self.root = root
        self.sink = MailSink().start()
        self.provider = ProviderProcess(
            root / "provider", root / "provider.log", ("--heartbeat", "0.5")
        ).start()
        self.gw = GatewayProcess(
            root / "gateway",
            root / "gateway.log",
            self.provider,
            self.sink.address,
            GatewayOptions(poll_interval=1.0, toml=toml),
        ).start()
        self.n = 0

    def send(self, attachment: bytes, kind: str = "infected") -> SendResult:
        self.n += 1
        return send_mail(
            self.gw.smtp_port, build(kind, self.n, attachment, "a.bin"), sender(kind, self.n)
        )

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.gw.cli("status", "--json"))
        return out

    def publish(self, *lines: str, covers: str | None = None, name: str = "sig.hsb") -> None:
        path = self.root / name
        path.write_text("".join(f"{line}\n" for line in lines))
        extra = ("--covers", covers) if covers else ()
        self.provider.lab("signatures", "publish", str(path), *extra)

    def close(self) -> None:
        self.gw.stop()
        self.provider.stop()
        self.sink.stop()


def hsb(sample: bytes, name: str) -> str:
    return f"{hashlib.sha256(sample).hexdigest()}:{len(sample)}:{name}"


def wait(predicate: Callable[[], object], what: str, s: Stack, limit: float = 60.0) -> float:
    """Wait until `predicate()` is truthy; return the seconds it took."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"timed out waiting for {what}\n{s.gw.log_tail(40)}")
        time.sleep(0.1)
    return time.monotonic() - t0


def rejected(res: SendResult) -> bool:
    return not res.accepted and res.code == 554


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_restart_keeps_the_installed_bundle(stack: Stack) -> None:
    virus = new_virus_sample()
    assert stack.send(virus).accepted  # unknown yet
    stack.publish(hsb(virus, "Test.Restart.Virus"))
    wait(lambda: stack.status()["db_version"] == "1", "bundle 1 installed", stack)
    assert rejected(stack.send(virus))

    stack.gw.stop()
    stack.gw.start()  # same data folder and port
    res = stack.send(virus)
    assert rejected(res), f"a restarted gateway forgot bundle 1: {res}"
    assert "Test.Restart.Virus" in res.reply
    assert stack.status()["db_version"] == "1"
    assert rejected(stack.send(EICAR))  # and the configured (starter) database still loads

    stack.gw.kill()  # a crash, too
    stack.gw.start()
    assert rejected(stack.send(virus))


def test_admin_release_after_a_restart_rescans_with_the_bundle(stack: Stack) -> None:
    """Sibling: `zerohour quarantine release` (another process) rescans with the folders the
    gateway recorded in the store; after a restart those must still include the bundle."""
    virus = new_virus_sample()
    oid = stack.provider.declare("Test.Release.Wave")
    wait(lambda: stack.status()["mode"] == "outbreak", "outbreak applied", stack)
    assert stack.send(virus).accepted
    wait(lambda: stack.status()["held"] == 1, "held", stack)
    stack.publish(hsb(virus, "Test.Release.Virus"), covers=oid)
    listed = lambda: json.loads(stack.gw.cli("quarantine", "list", "--json"))  # noqa: E731
    wait(lambda: listed()["total"] == 1, "quarantined by the bundle", stack)
    qid = listed()["messages"][0]["queue_id"]
    stack.gw.stop()
    stack.gw.start()
    res = subprocess.run(
        zerohour_argv("quarantine", "release", qid, "--data-dir", str(stack.gw.data_dir)),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert res.returncode == 1, res.stdout + res.stderr  # still infected: stays put
    assert "Test.Release.Virus" in res.stdout
    time.sleep(1.0)
    assert stack.sink.count(b"ZH-DEMO-INFECTED") == 0


def test_bundles_accumulate_and_a_retirement_releases_quarantined_mail(stack: Stack) -> None:
    one, two = new_virus_sample(), new_virus_sample()
    stack.publish(hsb(one, "Test.Accumulate.One"), name="one.hsb")
    wait(lambda: stack.status()["db_version"] == "1", "bundle 1", stack)
    stack.publish(hsb(two, "Test.Accumulate.Two"), name="two.hsb")
    wait(lambda: stack.status()["db_version"] == "2", "bundle 2", stack)
    assert rejected(stack.send(one)), "bundle 2 replaced bundle 1"
    assert rejected(stack.send(two))
    live = json.loads(stack.provider.lab("signatures", "list", "--json"))
    assert {s["name"] for s in live["signatures"]} == {"Test.Accumulate.One", "Test.Accumulate.Two"}

    # A false positive: the lab's signature caught a harmless attachment held in an outbreak.
    harmless = b"quarterly figures, nothing to see " + os.urandom(64)
    oid = stack.provider.declare("Test.FP.Wave")
    wait(lambda: stack.status()["mode"] == "outbreak", "outbreak applied", stack)
    assert stack.send(harmless, "clean").accepted
    wait(lambda: stack.status()["held"] == 1, "held", stack)
    stack.publish(hsb(harmless, "Test.Accumulate.FP"), covers=oid, name="fp.hsb")
    quarantined = lambda: json.loads(stack.gw.cli("quarantine", "list", "--json"))["total"]  # noqa: E731
    wait(lambda: quarantined() == 1, "the harmless mail quarantined", stack)
    assert stack.sink.count(b"ZH-DEMO-CLEAN") == 0

    stack.provider.lab("signatures", "retire", "Test.Accumulate.FP", "--reason", "false positive")
    wait(lambda: stack.status()["db_version"] == "4", "bundle 4 (the retirement)", stack)
    wait(lambda: stack.sink.count(b"ZH-DEMO-CLEAN") == 1, "re-released after a rescan", stack)
    assert quarantined() == 0
    assert stack.send(harmless, "clean").accepted  # the retired signature is gone
    assert rejected(stack.send(one))  # the others are not
    assert rejected(stack.send(two))
    listed = json.loads(stack.provider.lab("signatures", "list", "--all", "--json"))
    fp = [s for s in listed["signatures"] if s["name"] == "Test.Accumulate.FP"]
    assert [(s["live"], s["retired_in"]) for s in fp] == [(False, 4)]


def test_operator_db_folder_reloads_on_change_sighup_and_reload_command(tmp_path: Path) -> None:
    db = tmp_path / "freshclam-db"
    db.mkdir()
    (db / "eicar.ndb").write_text(
        "Eicar-Test-Signature:0:*:"
        + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE".hex()
        + "\n"
    )
    stack = Stack(tmp_path, toml=f'\n[scan]\ndb_dirs = ["{db}"]\n')
    try:
        viruses = [new_virus_sample() for _ in range(3)]
        assert all(stack.send(v).accepted for v in viruses)

        # 1. freshclam replaces a file (write + rename): applied within seconds, logged
        tmp = db / ".daily.hsb.tmp"
        tmp.write_text(hsb(viruses[0], "Test.Local.One") + "\n")
        tmp.rename(db / "daily.hsb")
        took = wait(lambda: rejected(stack.send(viruses[0])), "folder change applied", stack)
        print(f"db folder change applied after {took:.1f} s")
        assert took < 15, took
        logged = "scan.db_installed version=local-"
        wait(lambda: f"{logged}" in stack.gw.log_tail(200).split("source=start")[-1], "log", stack)
        assert "source=db folder changed" in stack.gw.log_tail(200)

        # 2. SIGHUP (the file's mtime and size kept, so only the signal can bring it)
        st = (db / "daily.hsb").stat()
        same_size = hsb(viruses[1], "Test.Local.Two") + "\n"
        assert len(same_size) == st.st_size
        with open(db / "daily.hsb", "r+") as fh:  # in place: same inode
            fh.write(same_size)
        os.utime(db / "daily.hsb", ns=(st.st_atime_ns, st.st_mtime_ns))
        time.sleep(3)
        assert stack.send(viruses[1]).accepted  # not noticed: nothing told the gateway
        assert stack.gw.proc is not None
        stack.gw.proc.send_signal(signal.SIGHUP)
        wait(lambda: rejected(stack.send(viruses[1])), "SIGHUP reload", stack)
        wait(lambda: "source=SIGHUP" in stack.gw.log_tail(200), "SIGHUP logged", stack)

        # 3. `zerohour reload --data-dir` (through the store: works for a cluster too)
        st = (db / "daily.hsb").stat()
        with open(db / "daily.hsb", "r+") as fh:
            fh.write(hsb(viruses[2], "Test.Local.Six") + "\n")
        os.utime(db / "daily.hsb", ns=(st.st_atime_ns, st.st_mtime_ns))
        time.sleep(3)
        assert stack.send(viruses[2]).accepted
        run_cli("reload", "--data-dir", str(stack.gw.data_dir))
        wait(lambda: rejected(stack.send(viruses[2])), "zerohour reload", stack)
        wait(lambda: "source=zerohour reload" in stack.gw.log_tail(200), "reload logged", stack)
        assert rejected(stack.send(EICAR))
    finally:
        stack.close()


def _signed_bundle(provider_dir: Path, files: dict[str, bytes]) -> None:
    """Publish a bundle the lab CLI would refuse, signed with the provider's real key: what a
    compromised or careless lab pipeline could send."""
    from datetime import UTC, datetime, timedelta

    from zerohour.notices.bundle import MANIFEST_NAME, BundleFile, Manifest
    from zerohour.notices.envelope import MANIFEST_TYPE, sign
    from zerohour.notices.payload import NoticeType, SignaturesPublished
    from zerohour.provider.log import Provider

    p = Provider(provider_dir, create=False)
    try:
        latest = p.latest_bundle()
        version = (latest.version if latest else 0) + 1
        out = provider_dir / "bundles" / str(version)
        out.mkdir(parents=True)
        for name, data in files.items():
            (out / name).write_bytes(data)
        now = datetime.now(UTC).replace(microsecond=0)
        entries = tuple(
            BundleFile(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in files.items()
        )
        manifest = Manifest(p.name, version, now, now + timedelta(days=1), entries)
        env = sign(manifest.to_payload(), p.signing_keys(), MANIFEST_TYPE).to_bytes()
        (out / MANIFEST_NAME).write_bytes(env)
        published = SignaturesPublished(
            version,
            f"/v1/signatures/{version}/{MANIFEST_NAME}",
            hashlib.sha256(env).hexdigest(),
            len(env),
            (),
        )
        p.append(NoticeType.SIGNATURES_PUBLISHED, published)
    finally:
        p.close()


def test_a_signed_ignore_list_cannot_switch_eicar_off(stack: Stack) -> None:
    assert rejected(stack.send(EICAR))
    _signed_bundle(
        stack.provider.data_dir,
        {"local.ign2": b"Eicar-Test-Signature\n", "x.hsb": b"0" * 64 + b":5:Test.X\n"},
    )
    wait(
        lambda: "bundle_refused" in stack.gw.log_tail(100) or stack.status()["db_version"] == "1",
        "the bundle handled",
        stack,
    )
    assert rejected(stack.send(EICAR)), "a provider bundle switched EICAR detection off"
    status = stack.status()
    assert status["db_version"] != "1"
    # the refusal is counted in the notice log, and the notice stream is not blocked by it
    virus = new_virus_sample()
    stack.publish(hsb(virus, "Test.After.Refusal"))
    wait(lambda: stack.status()["db_version"] == "2", "bundle 2 after the refused one", stack)
    assert rejected(stack.send(virus))
    assert rejected(stack.send(EICAR))
    # a .fp allow-list is refused the same way
    allow = b"44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"
    _signed_bundle(stack.provider.data_dir, {"allow.fp": allow})
    wait(lambda: stack.gw.log_tail(200).count("bundle_refused") >= 2, "the .fp refused", stack)
    assert rejected(stack.send(EICAR))
    assert stack.status()["db_version"] == "2"
