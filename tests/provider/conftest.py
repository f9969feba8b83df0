"""Fixtures for notice tests: keys, a fixed clock, a real provider process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from notices.support import Clock, ProviderProc


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider_proc(tmp_path: Path) -> Iterator[ProviderProc]:
    # Everything runs on 127.0.0.1: approve loopback push targets (refused by default).
    extra = ("--heartbeat", "0.5", "--allow-push-target", "127.0.0.0/8")
    p = ProviderProc(tmp_path / "provider", extra).start()
    try:
        yield p
    finally:
        p.stop()
