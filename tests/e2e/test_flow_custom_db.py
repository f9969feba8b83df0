"""`--db DIR`: the gateway scans with ClamAV-format files from a folder (here: one .hdb hash
signature and one .ndb body pattern written by the test), not only the bundled starter db."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, requires_gateway_marks
from helpers.messages import clean_message
from helpers.sinks import RecordingSink

pytestmark = requires_gateway_marks()


def test_custom_clamav_db_detects_its_own_signatures(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    blob = os.urandom(2048)
    marker = b"ZEROHOUR-E2E-BODY-PATTERN-" + os.urandom(8).hex().encode()
    db = tmp_path / "db"
    db.mkdir()
    (db / "e2e.hdb").write_text(f"{hashlib.md5(blob).hexdigest()}:{len(blob)}:E2E.Test.Hash\n")
    (db / "e2e.ndb").write_text(f"E2E.Test.Body:0:*:{marker.hex()}\n")
    gw = gateway_factory(next_hop=sink.address, db_dir=db)

    hashed = clean_message(subject="hash signature")
    hashed.add_attachment(blob, maintype="application", subtype="octet-stream", filename="x.bin")
    reply = smtplib_send(gw.port, hashed)
    assert (reply.code, reply.enhanced) == (554, "5.7.1"), str(reply)
    assert "E2E.Test.Hash" in reply.text

    body = clean_message(subject="body signature", body=f"see {marker.decode()} here\n")
    reply = smtplib_send(gw.port, body)
    assert (reply.code, reply.enhanced) == (554, "5.7.1"), str(reply)
    assert "E2E.Test.Body" in reply.text

    clean = clean_message(subject="nothing matches")
    assert smtplib_send(gw.port, clean).code == 250
    assert not sink.wait_for_ids({str(clean["Message-ID"])})
    trace = sink.messages[0].header("X-Zerohour-Scan")
    assert trace is not None
    assert trace.strip().startswith("clean; db=")
    assert sink.message_ids() == [clean["Message-ID"]]
