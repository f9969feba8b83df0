"""The wheel carries everything the code reads at run time, and runs from a clean install.

The tests run zerohour from the source tree, where every data file is present whether or not
the packaging lists it; only a built and installed wheel shows a file the package-data
globs miss (the store migrations were missing: a pip-installed gateway could not open its
store).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "zerohour"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _source_data_files() -> set[str]:
    """Every non-Python file of the package in the source tree, as wheel member names."""
    out = set()
    for path in PACKAGE.rglob("*"):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in {".py", ".pyc"}:
            continue
        out.add("zerohour/" + path.relative_to(PACKAGE).as_posix())
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline from a copy of the checkout (the build writes build/ and
    *.egg-info next to the sources; the checkout stays as it is)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = base / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("zerohour-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own (dependencies come from this venv)."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def _run(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, with only the install folder ahead of the venv's
    site-packages: no checkout's src on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROHOUR_")}
    env["PYTHONPATH"] = str(installed)
    env["ZEROHOUR_CACHE_DIR"] = str(cwd / "db-cache")
    return subprocess.run(
        [str(installed / "bin" / "zerohour"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_the_wheel_carries_every_data_file_of_the_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = _source_data_files()
    # The checks below would pass vacuously if the walk found nothing.
    assert "zerohour/data/db/starter.hdb" in wanted
    assert any(n.startswith("zerohour/store/migrations/") for n in wanted)
    assert any(n.startswith("zerohour/admin/templates/") for n in wanted)
    assert sorted(wanted - names) == []


def test_the_installed_wheel_runs_from_its_own_files(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("zerohour ")
    probe = subprocess.run(
        [sys.executable, "-c", "import zerohour; print(zerohour.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )
    assert Path(probe.stdout.strip()).is_relative_to(installed), probe.stdout + probe.stderr


def test_the_installed_wheel_scans_with_its_starter_database(
    installed: Path, tmp_path: Path
) -> None:
    (tmp_path / "eicar.com").write_bytes(EICAR)
    (tmp_path / "clean.txt").write_bytes(b"hello\n")
    proc = _run(installed, "scan", "eicar.com", "clean.txt", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "eicar.com: Eicar-Test-Signature FOUND" in proc.stdout
    assert "clean.txt: OK" in proc.stdout


def test_the_installed_wheel_creates_its_store(installed: Path, tmp_path: Path) -> None:
    """`zerohour status` opens (and so migrates) a new SQLite store: the .sql migrations and
    the code that finds them must be in the wheel."""
    proc = _run(installed, "status", "--data-dir", str(tmp_path / "var"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "var" / "zerohour.sqlite3").is_file()
