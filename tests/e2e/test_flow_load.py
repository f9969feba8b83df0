"""Concurrency end to end: Postfix's smtp-source (10 parallel sessions) -> gateway ->
Postfix's smtp-sink. Every message accepted is delivered exactly once (no crash here, so no
duplicates either), and a session-reusing client (-d) works the same."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from helpers.gateway import GatewayFactory, requires_gateway_marks
from helpers.sinks import PostfixSmtpSink

pytestmark = [*requires_gateway_marks(), pytest.mark.needs_postfix]

SMTP_SOURCE = "/usr/sbin/smtp-source"
COUNT = 200


@pytest.mark.parametrize("reuse", [False, True], ids=["new-session-each", "reuse-session"])
def test_smtp_source_parallel_sessions_all_delivered_once(
    gateway_factory: GatewayFactory, postfix_sink: PostfixSmtpSink, tmp_path: Path, reuse: bool
) -> None:
    gw = gateway_factory(next_hop=postfix_sink.address)
    args = [
        SMTP_SOURCE,
        "-s",
        "10",
        "-m",
        str(COUNT),
        "-l",
        "5000",
        "-c",
        "-f",
        "alice@sender.test",
        "-t",
        "bob@example.test",
        "-M",
        "source.e2e.test",
    ]
    if reuse:
        args.append("-d")
    done = subprocess.run(
        [*args, f"127.0.0.1:{gw.port}"], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    dumps = postfix_sink.wait_for(COUNT, timeout=120)
    assert len(dumps) == COUNT
    assert all(b"X-Zerohour-Scan: clean; db=" in d for d in dumps)
    time.sleep(2.0)  # a duplicate delivery would show up as an extra dump
    assert postfix_sink.count() == COUNT, "a message was delivered twice"
