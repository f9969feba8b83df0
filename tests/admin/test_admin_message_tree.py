"""The message page's MIME tree with the layer that matched marked, over real HTTP against a
real gateway: a signature finding inside an archive, and an outbreak checksum quarantine."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

from admin.conftest import EICAR, AdminEnv, attachment_message
from admin.test_admin_web_auth import login
from zerohour.notices.model import Checksum, OutbreakMode, OutbreakSpec, Scope
from zerohour.store.base import MessageState

API = "/api/v1"


def _deflated(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for c in node["children"]:
        out.extend(_nodes(c))
    return out


async def test_signature_finding_in_an_archive_member_is_marked(admin_env: AdminEnv) -> None:
    env = admin_env
    payload = _deflated(**{"readme.txt": b"nothing here\n", "x.exe": EICAR})
    await env.sendmail(attachment_message("infected", payload, "invoice.pdf"))
    (qid,) = await env.held_ids(1, state=MessageState.QUARANTINED)
    async with env.client(env.read_token) as c:
        d = (await c.get(f"{API}/quarantine/{qid}")).json()
    by_path = {n["path"]: n for n in _nodes(d["parts"])}
    member = by_path["message/2/x.exe"]
    assert member["matched"] == ["Eicar-Test-Signature"]
    assert member["true_type"] == "text"
    archive = by_path["message/2"]
    assert archive["filename"] == "invoice.pdf"
    assert archive["content_type"] == "application/octet-stream"
    assert archive["true_type"] == "zip"
    assert archive["matched"] == []
    assert archive["contains_match"] is True
    assert by_path["message"]["contains_match"] is True
    assert by_path["message/2/readme.txt"]["matched"] == []
    assert by_path["message/2/readme.txt"]["contains_match"] is False
    assert by_path["message/1"]["matched"] == []
    assert d["matches"] == [
        {
            "name": "Eicar-Test-Signature",
            "path": f"{qid}/invoice.pdf/x.exe",
            "sha256": hashlib.sha256(EICAR).hexdigest(),
            "part_path": "message/2/x.exe",
        }
    ]

    async with env.client() as c:
        await login(c, env.admin_token)
        page = (await c.get(f"/messages/{qid}")).text
    assert 'class="matched" data-path="message/2/x.exe"' in page
    assert 'class="on-path" data-path="message/2"' in page
    assert "message › 2 › x.exe" in page


async def test_outbreak_checksum_quarantine_marks_the_layer(admin_env: AdminEnv) -> None:
    env = admin_env
    bad = b"MZ not really a program, but the outbreak's file\n" * 3
    spec = OutbreakSpec(
        "ob-sum",
        "Sum.Worm",
        OutbreakMode.CHECKSUM,
        Scope.everything(),
        (Checksum("sha256", hashlib.sha256(bad).hexdigest(), len(bad)),),
    )
    await env.gw.outbreaks.declare(spec)
    await env.sendmail(attachment_message("checksum", _deflated(**{"w.bin": bad}), "w.zip"))
    (qid,) = await env.held_ids(1, state=MessageState.QUARANTINED)
    async with env.client(env.read_token) as c:
        d = (await c.get(f"{API}/messages/{qid}")).json()
    assert d["reason"] == "outbreak ob-sum checksum match"
    by_path = {n["path"]: n for n in _nodes(d["parts"])}
    assert by_path["message/2/w.bin"]["matched"] == ["Outbreak.Sum.Worm.Checksum"]
    assert by_path["message/2"]["contains_match"] is True
    assert [(m["name"], m["part_path"]) for m in d["matches"]] == [
        ("Outbreak.Sum.Worm.Checksum", "message/2/w.bin")
    ]
