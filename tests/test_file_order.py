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
    file_order.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == [
        "tests/new.py::t", "tests/other_new.py::t",  # unknown: first, in collection order
        "tests/b.py::t[x::y]", "tests/b.py::t2",
        "tests/c.py::t1",
        "tests/a.py::t1", "tests/a.py::t2",
    ]


def test_no_table_keeps_collection_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_order, "TABLE", tmp_path / "missing.json")
    items = _items("tests/z.py::t", "tests/a.py::t")
    file_order.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == ["tests/z.py::t", "tests/a.py::t"]


def test_write_durations_sums_every_phase_per_file(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    sums = file_order._Durations(out)
    for nodeid, d in (("tests/a.py::t1", 1.25), ("tests/a.py::t2", 2.0), ("tests/b.py::t", 0.5)):
        sums.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=d))  # type: ignore[arg-type]
    sums.pytest_sessionfinish()
    assert json.loads(out.read_text()) == {"tests/a.py": 3.2, "tests/b.py": 0.5}
