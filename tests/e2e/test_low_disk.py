"""Low disk: below the configured free-space minimum the gateway answers 452 4.3.1 (Postfix's
queue_minfree) instead of a 250 it could not keep, and mail it already accepted is not lost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message
from helpers.sinks import RecordingSink
from helpers.tmpfs import small_tmpfs

pytestmark = requires_gateway_marks()

PETABYTE = 10**15


def assert_insufficient_storage(code: int, enhanced: str, text: str) -> None:
    assert (code, enhanced) == (452, "4.3.1"), f"{code} {text}"


def test_minfree_above_free_space_gives_452_and_keeps_queued_mail(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    hop = RecordingSink()  # down while the first messages are accepted
    data_dir = tmp_path / "gw" / "data"
    gw = gateway_factory(next_hop=hop.address, data_dir=data_dir)
    queued = [clean_message(subject=f"before low disk {i}") for i in range(3)]
    for msg in queued:
        assert smtplib_send(gw.port, msg).code == 250
    gw.stop()

    # Same data dir, now with a free-space minimum no disk can meet.
    low = gateway_factory(
        next_hop=hop.address,
        data_dir=data_dir,
        name="gw-low",
        config_toml=gateway_toml(root={"spool_minfree": PETABYTE}),
    )
    refused = clean_message(subject="while low on disk")
    reply = smtplib_send(low.port, refused)
    assert_insufficient_storage(reply.code, reply.enhanced, reply.text)

    hop.start()
    try:
        missing = hop.wait_for_ids({str(m["Message-ID"]) for m in queued}, timeout=60)
        assert not missing, f"queued mail lost while low on disk: {missing}"
        assert refused["Message-ID"] not in hop.message_ids()
    finally:
        hop.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted under tmp_path (root only), unmounted after the test."""
    with small_tmpfs(tmp_path / "small-disk", "16m") as mnt:
        yield mnt


def test_filling_the_disk_gives_452_then_recovers(
    small_disk: Path, gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """A real file system running out: 452 4.3.1 while full, 250 again once space is freed."""
    gw = gateway_factory(
        next_hop=sink.address,
        data_dir=small_disk / "data",
        config_toml=gateway_toml(root={"spool_minfree": 4 * 1024 * 1024}),
    )
    before = clean_message(subject="before the disk fills")
    assert smtplib_send(gw.port, before).code == 250

    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - 2 * 1024 * 1024))  # leave 2 MiB < 4 MiB minimum
    during = clean_message(subject="while the disk is full")
    reply = smtplib_send(gw.port, during)
    assert_insufficient_storage(reply.code, reply.enhanced, reply.text)

    filler.unlink()
    time.sleep(0.2)
    after = clean_message(subject="after space was freed")
    assert smtplib_send(gw.port, after).code == 250
    missing = sink.wait_for_ids({str(before["Message-ID"]), str(after["Message-ID"])})
    assert not missing
    assert during["Message-ID"] not in sink.message_ids()
