"""Shared test support for notices, provider and notice-attack tests (`from notices.support`)."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zerohour.notices.envelope import sign
from zerohour.notices.keys import PinnedKey
from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import (
    Body,
    KeyRotated,
    NoticeType,
    ProviderState,
    SignaturesPublished,
    build_payload,
)
from zerohour.notices.sink import Ledger, Receipt

PROVIDER = "test-av"
T0 = datetime(2026, 11, 29, 1, 0, 0, tzinfo=UTC)


def spec(oid: str = "ob-1", name: str = "Test.Worm") -> OutbreakSpec:
    return OutbreakSpec(oid, name)


def envelope(
    key: Ed25519PrivateKey | list[Ed25519PrivateKey],
    seq: int,
    body: Body,
    ntype: NoticeType = NoticeType.OUTBREAK_DECLARED,
    *,
    provider: str = PROVIDER,
    issued: datetime = T0,
    lifetime: timedelta = timedelta(hours=1),
) -> bytes:
    payload = build_payload(
        provider=provider,
        seq=seq,
        type=ntype,
        issued_at=issued,
        expires_at=issued + lifetime,
        body=body,
    )
    return sign(payload, key).to_bytes()


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def pinned(key: Ed25519PrivateKey, provider: str = PROVIDER) -> PinnedKey:
    return PinnedKey(provider, key.public_key())


async def eventually(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def zerohour(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerohour", *args], capture_output=True, text=True, timeout=timeout
    )


@dataclass
class ProviderProc:
    """A real `zerohour provider run` on 127.0.0.1 with an ephemeral port."""

    data_dir: Path
    extra: tuple[str, ...] = ()
    listen: str = "127.0.0.1:0"
    url: str = ""
    key_text: str = ""
    proc: subprocess.Popen[str] | None = None
    stderr: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> ProviderProc:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zerohour",
                "provider",
                "run",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                self.listen,
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.threads = [
            _pump(self.proc.stdout, lines.put),
            _pump(self.proc.stderr, self.stderr.append),
        ]
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < 3:
            try:
                got.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                self.stop()
                raise RuntimeError("provider did not start: " + "".join(self.stderr)) from None
        self.url = got[0].split()[-1]
        self.key_text = got[2].strip()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            for t in self.threads:
                t.join(timeout=10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()

    def lab(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `zerohour provider <args> --data-dir <dir>` and require success."""
        res = zerohour("provider", *args, "--data-dir", str(self.data_dir))
        assert res.returncode == 0, res.stderr
        return res

    def gateway_token(self, name: str = "") -> str:
        """A per-gateway credential: `provider gateway add NAME` (the token is its last line)."""
        name = name or f"gw-{time.monotonic_ns()}"
        return self.lab("gateway", "add", name).stdout.strip().splitlines()[-1]

    def declare(self, name: str = "Test.Worm", *extra: str) -> str:
        return (
            self.lab("outbreak", "declare", "--name", name, *extra).stdout.strip().splitlines()[-1]
        )


def _pump(stream: IO[str], sink: Callable[[str], Any]) -> threading.Thread:
    def run() -> None:
        for line in stream:
            sink(line)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@dataclass
class MemorySink:
    """An in-memory `OutbreakSink` (the unit-test fake): commits each receipt with its effect;
    `fail_next` makes the next effect raise, as a sink whose transaction fails would."""

    outbreaks: dict[str, OutbreakSpec] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)
    published: list[SignaturesPublished] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    receipts: list[Receipt] = field(default_factory=list)
    fail_next: bool = False

    async def load_ledger(self) -> Ledger:
        return self.ledger

    def _commit(self, receipt: Receipt, **changes: object) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("sink failure (test)")
        digests = dict(self.ledger.digests)
        if receipt.type.logged:
            digests[receipt.seq] = receipt.digest
        rotations = self.ledger.rotations
        if isinstance(changes.get("rotation"), KeyRotated):
            rotations = (*rotations, changes["rotation"])  # type: ignore[arg-type]
        sig_version = changes.get("signatures_version", self.ledger.signatures_version)
        assert isinstance(sig_version, int)
        self.ledger = Ledger(
            max(self.ledger.last_seq, receipt.seq), digests, rotations, sig_version
        )
        self.receipts.append(receipt)

    async def declare(self, spec: OutbreakSpec, receipt: Receipt) -> None:
        self._commit(receipt)
        self.outbreaks[spec.outbreak_id] = spec

    async def update(self, spec: OutbreakSpec, receipt: Receipt) -> None:
        self._commit(receipt)
        self.outbreaks[spec.outbreak_id] = spec

    async def end(self, outbreak_id: str, reason: str, receipt: Receipt) -> None:
        self._commit(receipt)
        if self.outbreaks.pop(outbreak_id, None) is not None:
            self.ended.append((outbreak_id, reason))

    async def signatures_published(self, published: SignaturesPublished, receipt: Receipt) -> None:
        self._commit(receipt, signatures_version=published.version)
        self.published.append(published)
        for oid in published.covers:
            if self.outbreaks.pop(oid, None) is not None:
                self.ended.append((oid, f"covered by signatures {published.version}"))

    async def key_rotated(self, rotation: KeyRotated, receipt: Receipt) -> None:
        self._commit(receipt, rotation=rotation)

    async def converge(self, state: ProviderState, receipt: Receipt) -> None:
        newer = state.signatures is not None and (
            state.signatures_version > self.ledger.signatures_version
        )
        version = max(self.ledger.signatures_version, state.signatures_version)
        self._commit(receipt, signatures_version=version)
        if newer and state.signatures is not None:
            self.published.append(state.signatures)
        for oid in list(self.outbreaks):
            if oid not in state.active:
                del self.outbreaks[oid]
                self.ended.append((oid, "converged"))
        for spec in state.outbreaks:
            self.outbreaks[spec.outbreak_id] = spec

    async def skip(self, receipt: Receipt, reason: str) -> None:
        self._commit(receipt)
