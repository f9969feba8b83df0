"""Fixtures of the scan tests: an engine whose database knows ClamAV's test file clam.exe by
its MD5, the payload most carrier tests hide (`/usr/share/clamav-testfiles`, system-deps)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from zerohour.scan import Engine, load_database
from zerohour.scan.database import default_db_dirs

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
CLAM_NAME = "Clam.Test.File"


@pytest.fixture(scope="module")
def clam_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    if not CLAM.exists():
        pytest.fail("clamav-testfiles not installed (scripts/system-deps installs it)")
    d = tmp_path_factory.mktemp("clamdb")
    clam = CLAM.read_bytes()
    (d / "clam.hdb").write_text(f"{hashlib.md5(clam).hexdigest()}:{len(clam)}:{CLAM_NAME}\n")
    return Engine(load_database([d]))


@pytest.fixture(scope="module")
def clam_code_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of clam.exe's MD5 (.hdb, `ClamAV-Test-File`) and of 24 bytes of its
    entry-point code (.ndb, `Clam.Code`): the code is found wherever an unpacker gives back
    clam.exe's code, whole file or not."""
    if not CLAM.exists():
        pytest.fail("clamav-testfiles not installed (scripts/system-deps installs it)")
    clam = CLAM.read_bytes()
    d = tmp_path_factory.mktemp("clamcode")
    md5 = hashlib.md5(clam, usedforsecurity=False).hexdigest()
    (d / "clam.hdb").write_text(f"{md5}:{len(clam)}:ClamAV-Test-File\n")
    (d / "clam.ndb").write_text(f"Clam.Code:0:*:{clam[0x40:0x58].hex()}\n")
    return d


EICAR_NAME = "Test.Eicar"


@pytest.fixture(scope="module")
def eicar_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine whose database knows the EICAR test string by its bytes (.ndb), wherever
    a reading gives it whole."""
    from helpers.messages import EICAR

    d = tmp_path_factory.mktemp("eicardb")
    (d / "eicar.ndb").write_text(f"{EICAR_NAME}:0:*:{EICAR.hex()}\n")
    return Engine(load_database([d]))


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The engine on the starter database, as the gateway runs it out of the box (it knows
    EICAR: `Eicar-Test-Signature`). Older modules define their own of the same name."""
    return Engine(load_database(default_db_dirs()))
