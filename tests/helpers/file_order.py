"""Longest test files first, so the suite's wall time is not set by a slow file started last.

pytest-xdist (`--dist loadfile`) hands out whole files in collection order when
`--no-loadscope-reorder` is given (its default orders them by test count, which puts the
slow end-to-end files with few tests at the end, on one worker, while the other idles).
`tests/file-durations.json` holds each file's seconds from an earlier run; files it does not
know (new ones) go first, since nothing says they are short. A stale table only costs time,
never a result. Refresh it with `scripts/test --write-durations tests/file-durations.json`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parents[1] / "file-durations.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--write-durations",
        metavar="PATH",
        help="after the run, merge each test file's seconds (setup, call, teardown) into the "
        "JSON table at PATH (tests/file-durations.json: the order of the next runs)",
    )


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _read(path: Path) -> dict[str, float]:
    """The table, or nothing when it is missing or not a table of seconds."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {f: float(s) for f, s in table.items() if isinstance(s, (int, float))}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unknown files first, then known ones by seconds, longest first. The sort is stable:
    ties and the tests of one file keep their collection order (xdist groups a file's tests
    wherever they stand, in the order of each file's first test)."""
    known = _read(TABLE)
    if known:
        items.sort(key=lambda it: -known.get(_file(it.nodeid), float("inf")))


class _Durations:
    """Sums each file's report durations; on the controller it sees every worker's reports."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[_file(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        """Merge (a run of some files keeps the others' seconds); an interrupted run's
        partial sums would make its last file look short, so it writes nothing."""
        if exitstatus == pytest.ExitCode.INTERRUPTED or not self.seconds:
            return
        table = _read(self.out) | {f: round(s, 1) for f, s in self.seconds.items()}
        self.out.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    out = config.getoption("--write-durations")
    if out and not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        config.pluginmanager.register(_Durations(Path(out)), "file-durations")
