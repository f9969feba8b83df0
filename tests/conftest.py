"""Shared fixtures: small and general (ports, SMTP sinks, gateway subprocesses, Postfix).

The helpers live in `tests/helpers/` (importable as `helpers`); fixtures here only start
things and make sure they are stopped, with the gateway log printed when a test fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, GatewaySpec, gateway_toml
from helpers.net import free_port
from helpers.sinks import PostfixSmtpSink, RecordingSink

pytest_plugins = ["helpers.file_order"]  # longest files first (tests/file-durations.json)

_REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORT_KEY, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORT_KEY, {})
    return any(r.failed for r in reports.values())


@pytest.fixture
def unused_port() -> int:
    """A TCP port on 127.0.0.1 that was free when the test started."""
    return free_port()


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    """An aiosmtpd next hop in the test process, recording every message."""
    server = RecordingSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postfix_sink(tmp_path: Path) -> Iterator[PostfixSmtpSink]:
    """Postfix's smtp-sink as next hop, one dump file per message."""
    server = PostfixSmtpSink(tmp_path / "smtp-sink").start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _gateways(base: Path, failed: Callable[[], bool]) -> Iterator[GatewayFactory]:
    """A factory of gateway subprocesses under `base`; all stopped on exit, logs printed
    when `failed()` says a test using them failed."""
    started: list[GatewayProcess] = []

    def factory(*, start: bool = True, name: str = "gw", **kwargs: Any) -> GatewayProcess:
        kwargs.setdefault("data_dir", base / name / "data")
        kwargs.setdefault("config_toml", gateway_toml())
        # Hermetic: the compiled-database cache stays under the test's folder, not ~/.cache.
        kwargs["env"] = {"ZEROHOUR_CACHE_DIR": str(base / "db-cache"), **kwargs.get("env", {})}
        spec = GatewaySpec(**kwargs)
        proc = GatewayProcess(spec, log_path=base / f"{name}.log")
        started.append(proc)
        return proc.start() if start else proc

    try:
        yield factory
    finally:
        for proc in started:
            proc.stop()
        if failed():
            for proc in started:
                print(f"----- gateway log {proc.log_path} -----\n{proc.log()[-20000:]}")


@pytest.fixture
def gateway_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GatewayFactory]:
    """Start gateways (`factory(next_hop=..., config_toml=gateway_toml(...))`); all stopped after.

    On failure the gateway log is printed (pytest shows it under "Captured stdout teardown").
    """
    with _gateways(tmp_path, lambda: _failed(request)) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_gateway_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GatewayFactory]:
    """Like `gateway_factory`, shared by a module's tests (each gateway start costs seconds)."""
    failed_before = request.session.testsfailed
    base = tmp_path_factory.mktemp("gateways")
    with _gateways(base, lambda: request.session.testsfailed > failed_before) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_sink() -> Iterator[RecordingSink]:
    """A next hop shared by a module; use `fresh_sink` in tests to start from empty."""
    server = RecordingSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_sink(module_sink: RecordingSink) -> RecordingSink:
    """The module's sink, emptied and reset to accept everything."""
    module_sink.reset()
    return module_sink
