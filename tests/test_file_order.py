"""The suite's file order (tests/helpers/file_order.py): longest files first, new ones before
them, tests kept in order within a file; and the durations table it writes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from helpers import file_order


def _items(*nodeids: str) -> list[Any]:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def test_longest_files_first_unknown_before_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "file-durations.json"
    table.write_text(json.dumps({"tests/a.py": 1.0, "tests/b.py": 30.0, "tests/c.py": 5.0}))
    monkeypatch.setattr(file_order, "TABLE", table)
    items = _items(
        "tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t[x::y]", "tests/new.py::t",
        "tests/c.py::t1", "tests/b.py::t2", "tests/other_new.py::t",
    )
    file_order.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [
        "tests/new.py::t", "tests/other_new.py::t",  # unknown: first, in collection order
        "tests/b.py::t[x::y]", "tests/b.py::t2",
        "tests/c.py::t1",
        "tests/a.py::t1", "tests/a.py::t2",
    ]


def test_no_table_keeps_collection_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_order, "TABLE", tmp_path / "missing.json")
    items = _items("tests/z.py::t", "tests/a.py::t")
    file_order.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["tests/z.py::t", "tests/a.py::t"]


def _report(nodeid: str, duration: float) -> Any:
    return SimpleNamespace(nodeid=nodeid, duration=duration)


def test_write_durations_sums_every_phase_per_file_and_merges(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    out.write_text(json.dumps({"tests/a.py": 9.0, "tests/old.py": 4.0}))
    sums = file_order._Durations(out)
    for nodeid, d in (("tests/a.py::t1", 1.3), ("tests/a.py::t1", 0.5), ("tests/a.py::t2", 2.0),
                      ("tests/b.py::t", 0.5)):
        sums.pytest_runtest_logreport(_report(nodeid, d))
    sums.pytest_sessionfinish(pytest.ExitCode.TESTS_FAILED)
    assert json.loads(out.read_text()) == {
        "tests/a.py": 3.8, "tests/b.py": 0.5, "tests/old.py": 4.0,  # a's 9.0 replaced, old's kept
    }


def test_interrupted_run_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    sums = file_order._Durations(out)
    sums.pytest_runtest_logreport(_report("tests/a.py::t", 1.0))
    sums.pytest_sessionfinish(pytest.ExitCode.INTERRUPTED)
    assert not out.exists()


def test_a_table_that_is_no_table_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "file-durations.json"
    table.write_text("[1, 2]")
    monkeypatch.setattr(file_order, "TABLE", table)
    items = _items("tests/z.py::t", "tests/a.py::t")
    file_order.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["tests/z.py::t", "tests/a.py::t"]
