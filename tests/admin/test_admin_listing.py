"""The lists' Subject, attachments (true types) and verdict, and their search, over real HTTP
against a real gateway: REST (`q`, a 400 JSON error on bad input) and the dashboard (escaping
of peer-supplied text)."""

from __future__ import annotations

import io
import zipfile

import markupsafe

from admin.conftest import EICAR, AdminEnv, attachment_message, message, wait_for
from admin.test_admin_web_auth import login
from zerohour.store.base import MessageState

API = "/api/v1"
EVIL_SUBJECT = '<script>alert("s")</script>'
EVIL_NAME = "<img src=x onerror=alert(1)>.zip"


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


async def test_held_list_shows_subject_true_types_and_searches(admin_env: AdminEnv) -> None:
    env = admin_env
    await env.declare()
    # named like a PDF, really a zip with a script inside
    await env.sendmail(attachment_message("Quarterly invoice", _zip(**{"run.js": b"var a;\n"}),
                                          "invoice.pdf"))
    await env.sendmail(message("lunch on friday"))
    await env.held_ids(2)
    async with env.client(env.read_token) as c:
        page = (await c.get(API + "/held")).json()
        by_subject = {i["subject"]: i for i in page["items"]}
        assert set(by_subject) == {"Quarterly invoice", "lunch on friday"}
        inv = by_subject["Quarterly invoice"]
        assert [(a["name"], a["true_type"], a["depth"]) for a in inv["attachments"]] == [
            ("invoice.pdf", "zip", 0),
            ("run.js", "text", 1),
        ]
        assert inv["verdict"] == "clean"
        assert by_subject["lunch on friday"]["attachments"] == []

        for q, want in (("INVOICE", {"Quarterly invoice"}), ("run.js", {"Quarterly invoice"}),
                        ("friday", {"lunch on friday"}), ("no such thing", set()),
                        ("", {"Quarterly invoice", "lunch on friday"})):
            r = await c.get(API + "/held", params={"q": q})
            assert r.status_code == 200, q
            body = r.json()
            assert {i["subject"] for i in body["items"]} == want, q
            assert body["total"] == len(want)

        for bad, why in (("x" * 201, "at most 200"), ("a\x00b", "control characters"),
                         ("tab\there", "control characters")):
            r = await c.get(API + "/held", params={"q": bad})
            assert r.status_code == 400, bad
            assert r.headers["content-type"].startswith("application/json")
            assert r.json()["error"] == "bad request"
            assert why in r.json()["detail"]
            r = await c.get(API + "/queue", params={"q": bad})
            assert r.status_code == 400


async def test_quarantine_list_shows_the_finding(admin_env: AdminEnv) -> None:
    env = admin_env
    await env.sendmail(attachment_message("bad one", _zip(**{"eicar.com": EICAR}), "docs.zip"))
    (qid,) = await env.held_ids(1, state=MessageState.QUARANTINED)
    async with env.client(env.read_token) as c:
        (item,) = (await c.get(API + "/quarantine", params={"q": "DOCS.zip"})).json()["items"]
    assert item["queue_id"] == qid
    assert item["verdict"] == "infected"
    assert item["findings"] == ["Eicar-Test-Signature"]
    # the engine stops at the first match: here the archive layer (its top layer is the queue id)
    assert [(m["name"], m["path"]) for m in item["matches"]] == [
        ("Eicar-Test-Signature", f"{qid}/docs.zip")
    ]
    assert [(a["name"], a["true_type"]) for a in item["attachments"]] == [("docs.zip", "zip")]


async def test_queue_lists_and_searches_subject(admin_env: AdminEnv) -> None:
    env = admin_env
    env.sink.data_reply = "451 4.3.0 try later"
    await env.sendmail(attachment_message("stuck report", _zip(**{"a.txt": b"hi\n"}), "r.pdf"))
    await env.sendmail(message("other stuck mail"))

    async def queued() -> list[dict[str, object]]:
        async with env.client(env.read_token) as c:
            items: list[dict[str, object]] = (await c.get(API + "/queue")).json()["items"]
        return items if len(items) == 2 else []

    assert await wait_for(queued)
    async with env.client(env.read_token) as c:
        body = (await c.get(API + "/queue", params={"q": "R.PDF"})).json()
    assert body["total"] == 1
    (item,) = body["items"]
    assert item["subject"] == "stuck report"
    assert [(a["name"], a["true_type"]) for a in item["attachments"]] == [
        ("r.pdf", "zip"),
        ("a.txt", "text"),
    ]
    assert item["verdict"] == "clean"


async def test_peer_supplied_subject_and_file_name_are_escaped(admin_env: AdminEnv) -> None:
    env = admin_env
    await env.declare()
    await env.sendmail(attachment_message(EVIL_SUBJECT, b"\x00\x01binary", f'"{EVIL_NAME}"'))
    (qid,) = await env.held_ids(1)
    stored = (await env.store.get_message(qid)).summary
    name = stored["attachments"][0][1]
    assert name == EVIL_NAME  # the hostile name reached the store as it was sent
    async with env.client() as c:
        await login(c, env.admin_token)
        for path in ("/held", f"/held?q={'<script>'}", f"/messages/{qid}"):
            r = await c.get(path)
            assert r.status_code == 200, path
            assert EVIL_SUBJECT not in r.text, path
            assert "<img src=x" not in r.text, path
            assert str(markupsafe.escape(EVIL_SUBJECT)) in r.text, path
        held = (await c.get("/held")).text
        assert "&lt;img src=x onerror=alert(1)&gt;.zip" in held
        r = await c.get("/held", params={"q": "a\x01"})
        assert r.status_code == 400
        assert "control characters" in r.text
