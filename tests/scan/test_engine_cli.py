"""`zerohour scan`: clamscan's output lines and exit codes, stdin, folders, --json, --db-info."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MARK = b"CLITESTMARK01"


def run(args: list[str], tmp_path: Path, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, ZEROHOUR_CACHE_DIR=str(tmp_path / "cache"), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "zerohour", "scan", *args], input=stdin, capture_output=True,
        timeout=120, env=full_env,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    d = tmp_path / "db"
    d.mkdir()
    (d / "a.ndb").write_text(f"Cli.Mark:0:*:{MARK.hex()}\nBroken:0:*:4\n")
    return d


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "clean.txt").write_bytes(b"hello")
    (root / "sub" / "bad.bin").write_bytes(b"xx" + MARK)
    return root


def test_clean_file_exits_0(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), str(tree / "clean.txt")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{tree / 'clean.txt'}: OK\n"


def test_folder_is_recursive_and_found_exits_1(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), str(tree)], tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"{tree / 'clean.txt'}: OK",
        f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND",
    ]


def test_stdin(db: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "-"], tmp_path, stdin=b"zz" + MARK)
    assert (proc.returncode, proc.stdout) == (1, "stdin: Cli.Mark FOUND\n")


def test_missing_file_exits_2(db: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), str(tmp_path / "nope")], tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.endswith("ERROR\n")


def test_found_wins_over_error(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), str(tmp_path / "nope"), str(tree / "sub" / "bad.bin")],
               tmp_path)
    assert proc.returncode == 1


def test_json_output(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "--json", str(tree / "sub" / "bad.bin")], tmp_path)
    doc = json.loads(proc.stdout)
    assert doc["infected"] is True
    assert doc["findings"][0]["name"] == "Cli.Mark"


def test_db_info_lists_warnings_with_file_and_line(db: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "--db-info"], tmp_path)
    assert proc.returncode == 0
    assert "ndb: 1" in proc.stdout
    assert f"{db / 'a.ndb'}:2: odd number of hex digits" in proc.stdout
    proc = run(["--db", str(db), "--db-info", "--json"], tmp_path)
    info = json.loads(proc.stdout)
    assert info["counts"] == {"ndb": 1}
    assert info["warning_count"] == 1


def test_strict_refuses_bad_db(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "--strict", str(tree)], tmp_path)
    assert proc.returncode == 2
    assert "a.ndb:2:" in proc.stderr


def test_no_paths_is_an_error(db: Path, tmp_path: Path) -> None:
    assert run(["--db", str(db)], tmp_path).returncode == 2


def test_default_db_from_env(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run([str(tree / "sub" / "bad.bin")], tmp_path, env={"ZEROHOUR_DB_DIR": str(db)})
    assert proc.returncode == 1


def test_allmatch_prints_every_name(tmp_path: Path, tree: Path) -> None:
    d = tmp_path / "db2"
    d.mkdir()
    (d / "a.ndb").write_text(f"One:0:*:{MARK.hex()}\nTwo:0:*:{b'xx'.hex()}{MARK[:4].hex()}\n")
    proc = run(["--db", str(d), "--allmatch", str(tree / "sub" / "bad.bin")], tmp_path)
    assert proc.returncode == 1
    assert sorted(proc.stdout.splitlines()) == [
        f"{tree / 'sub' / 'bad.bin'}: One FOUND", f"{tree / 'sub' / 'bad.bin'}: Two FOUND"]
