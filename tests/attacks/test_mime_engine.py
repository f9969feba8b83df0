"""The MIME evasion corpus through the whole engine (public API), with both a hash and a body
signature for the payload; and, when clamscan is installed, the same corpus through ClamAV for
comparison: zerohour must find every case ClamAV finds (and, on this corpus, more)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from test_mime_evasion import CASES, CLEAN, EICAR  # type: ignore[import-not-found]

from zerohour.scan import Engine, load_database


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("db")
    (d / "t.hdb").write_text(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Zh.Test.Hash\n")
    (d / "t.ndb").write_text("Zh.Test.Body:0:*:" + EICAR[:40].hex() + "\n")
    return d


@pytest.fixture(scope="module")
def engine(db_dir: Path) -> Engine:
    return Engine(load_database([db_dir]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_finds_payload(engine: Engine, name: str) -> None:
    report = engine.scan_bytes(CASES[name](EICAR), name=name)
    assert report.infected, name
    assert set(report.names) & {"Zh.Test.Hash", "Zh.Test.Body"}
    clean = engine.scan_bytes(CASES[name](CLEAN), name=name)
    # an attached page whose script builds a download is never clean, whatever it builds
    # (zerohour.scan.scripted); every other carrier of a clean payload is
    assert clean.names == (("Heuristics.HTML.Script",) if name in SCRIPTED else ()), clean.names


#: Cases whose carrier is an attached HTML file running script.
SCRIPTED = {"html_smuggling_js_blob"}


@pytest.mark.needs_clamav
def test_we_find_everything_clamscan_finds(db_dir: Path, engine: Engine, tmp_path: Path) -> None:
    clamscan = shutil.which("clamscan")
    if clamscan is None:
        pytest.skip("clamscan not installed (scripts/system-deps installs it)")
    for name, build in CASES.items():
        (tmp_path / f"{name}.eml").write_bytes(build(EICAR))
    res = subprocess.run(
        [clamscan, "--no-summary", "-d", str(db_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    clam_found = {
        Path(line.split(":", 1)[0]).stem
        for line in res.stdout.splitlines()
        if line.endswith("FOUND")
    }
    assert clam_found, res.stdout + res.stderr  # the oracle itself works on this corpus
    ours = {name for name, build in CASES.items() if engine.scan_bytes(build(EICAR)).infected}
    assert clam_found <= ours
    assert ours == set(CASES)
