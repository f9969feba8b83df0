"""A freshclam update the gateway cannot verify is refused and the engine it has keeps scanning.

The operator's --db folder gets a tampered daily.cvd (as a man in the middle or a damaged
mirror would leave it): the reload fails with "can't verify database integrity", the gateway
keeps its previous engine and version, and that engine still detects what it detected.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from conformance.cvd_factory import build_cvd
from gateway.conftest import attachment_message, make_config, start_gateway
from zerohour.scan.database import starter_db_dir

SAMPLE = b"MZ\x90\x00" + b"known before the update " * 30


async def test_tampered_cvd_reload_keeps_the_old_engine(tmp_path: Path, sink: Any) -> None:
    db = tmp_path / "db"
    shutil.copytree(starter_db_dir(), db)
    sha = hashlib.sha256(SAMPLE).hexdigest()
    (db / "local.hsb").write_text(f"{sha}:{len(SAMPLE)}:Zerohour.Test.Known\n")
    cfg = make_config(tmp_path / "d", sink.address, **{"scan.db_dirs": [str(db)]})
    run = await start_gateway(cfg)
    try:
        scanner = run.gw.scanner
        before = scanner.version
        raw = attachment_message("known", SAMPLE, "x.bin")
        assert (await scanner.scan(raw)).findings == ("Zerohour.Test.Known",)

        cvd = build_cvd({"daily.hdb": b"0" * 32 + b":5:Zerohour.Test.Unverified\n"})
        cvd = cvd[:600] + bytes([cvd[600] ^ 1]) + cvd[601:]
        (db / "daily.cvd").write_bytes(cvd)
        assert await run.gw.signatures.reload("test: a damaged freshclam download") == before
        assert scanner.version == before
        summary = await scanner.scan(raw)
        assert summary.db_version == before
        assert summary.findings == ("Zerohour.Test.Known",)

        # An intact container signed by someone other than ClamAV is refused the same way.
        (db / "daily.cvd").write_bytes(build_cvd({"daily.hdb": b"0" * 32 + b":5:X.Y\n"}))
        assert await run.gw.signatures.reload("test: not signed by ClamAV") == before
        (db / "daily.cvd").unlink()
        (db / "more.hsb").write_text(f"{'1' * 64}:5:Zerohour.Test.More\n")
        assert await run.gw.signatures.reload("test: a good update") != before
    finally:
        await run.gw.stop()
