"""The admin REST API over real HTTP (httpx -> uvicorn on 127.0.0.1) against a real gateway."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
import zipfile

from admin.conftest import EICAR, AdminEnv, attachment_message, message, wait_for
from zerohour.admin.context import redact
from zerohour.store.base import MessageState, NoticeLogEntry

API = "/api/v1"


async def test_no_token_is_401_with_json_error(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        for path in ("/status", "/held", "/queue", "/config", "/audit"):
            r = await c.get(API + path)
            assert r.status_code == 401, path
            body = r.json()
            assert body["error"] == "unauthorized"
            assert "Bearer" in body["detail"]
        r = await c.get("/metrics")
        assert r.status_code == 401
    async with admin_env.client("zh_00000000_" + "x" * 43) as c:
        r = await c.get(API + "/status")
        assert r.status_code == 401
        assert r.json()["detail"] == "invalid or revoked token"


async def test_revoked_token_stops_working_at_once(admin_env: AdminEnv) -> None:
    token_id = admin_env.read_token.split("_")[1]
    async with admin_env.client(admin_env.read_token) as c:
        assert (await c.get(API + "/whoami")).json()["role"] == "read"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zerohour", "admin", "token", "revoke", token_id,
            "--data-dir", str(admin_env.gw.cfg.data_dir),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        assert token_id in out.decode()
        r = await c.get(API + "/whoami")
        assert r.status_code == 401


async def test_read_only_token_cannot_release_and_is_audited(admin_env: AdminEnv) -> None:
    await admin_env.declare()
    await admin_env.sendmail(message("held for read test"))
    (qid,) = await admin_env.held_ids(1)
    async with admin_env.client(admin_env.read_token) as c:
        assert (await c.get(API + "/held")).json()["total"] == 1  # may look
        for action in ("release", "delete"):
            r = await c.post(f"{API}/held/{qid}/{action}")
            assert r.status_code == 403
            assert r.json()["error"] == "forbidden"
        r = await c.post(f"{API}/held/bulk", json={"outbreak": "ob-1", "action": "release"})
        assert r.status_code == 403
        r = await c.post(f"{API}/queue/retry")
        assert r.status_code == 403
    assert (await admin_env.store.get_message(qid)).state is MessageState.HELD
    async with admin_env.client(admin_env.admin_token) as c:
        audit = (await c.get(API + "/audit")).json()
    denied = [e for e in audit["items"] if e["result"] == "denied"]
    assert {e["action"] for e in denied} >= {"held.release", "held.delete", "held.bulk_release"}
    assert all(e["actor"] == "admin:rita" and e["role"] == "read" for e in denied)
    assert all(e["remote"] == "127.0.0.1" for e in denied)


async def test_release_delivers_to_the_next_hop_and_is_audited(admin_env: AdminEnv) -> None:
    await admin_env.declare()
    await admin_env.sendmail(message("release me"))
    (qid,) = await admin_env.held_ids(1)
    assert admin_env.sink.messages == []
    async with admin_env.client(admin_env.admin_token) as c:
        r = await c.post(f"{API}/held/{qid}/release")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "queued"
        assert "released by admin:alice" in body["reason"]
        got = await wait_for(lambda: admin_env.sink.messages)
        assert got[0].header("Subject") == "release me"
        rec = await wait_for(lambda: _state_is(admin_env, qid, MessageState.DELIVERED))
        assert rec
        detail = (await c.get(f"{API}/messages/{qid}")).json()
        actors = [(e["state"], e["actor"]) for e in detail["events"]]
        assert ("queued", "admin:alice") in actors
        assert actors[-1][0] == "delivered"
        # releasing again is a conflict, not a crash
        r = await c.get(f"{API}/held/{qid}")
        assert r.status_code == 404
        audit = (await c.get(API + "/audit")).json()["items"]
    ok = [e for e in audit if e["action"] == "held.release" and e["result"] == "ok"]
    assert len(ok) == 1
    assert ok[0]["target"] == qid
    assert ok[0]["actor"] == "admin:alice"
    assert ok[0]["detail"]["result"]["state"] == "queued"


async def _state_is(env: AdminEnv, qid: str, state: MessageState) -> bool:
    return bool((await env.store.get_message(qid)).state is state)


async def test_delete_and_bulk_release_by_outbreak(admin_env: AdminEnv) -> None:
    await admin_env.declare("ob-a", "Worm.A")
    for i in range(3):
        await admin_env.sendmail(message(f"bulk {i}"))
    ids = await admin_env.held_ids(3)
    async with admin_env.client(admin_env.admin_token) as c:
        r = await c.post(f"{API}/held/{ids[0]}/delete")
        assert r.status_code == 200
        assert r.json()["state"] == "deleted"
        assert not await admin_env.gw.bodies.exists(ids[0])
        r = await c.post(f"{API}/held/bulk", json={"outbreak": "ob-a", "action": "release"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["matched"] == 2
        assert out["results"] == {"queued": 2}
        assert out["errors"] == []
        r = await c.post(f"{API}/held/bulk", json={"outbreak": "no such!", "action": "release"})
        assert r.status_code == 422
    got = await wait_for(lambda: len(admin_env.sink.messages) >= 2 and admin_env.sink.messages)
    assert sorted(m.header("Subject") for m in got) == ["bulk 0", "bulk 1"]


async def test_held_filters_and_paging(admin_env: AdminEnv) -> None:
    await admin_env.declare()
    await admin_env.sendmail(message("small"), sender="carol@one.test")
    await admin_env.sendmail(message("big", body=("x" * 99 + "\r\n") * 50), sender="dave@two.test",
                             rcpts=("zed@example.test",))
    await admin_env.sendmail(message("third"), sender="carol@one.test")
    await admin_env.held_ids(3)
    async with admin_env.client(admin_env.read_token) as c:
        async def held(**params: object) -> dict[str, object]:
            r = await c.get(API + "/held", params=params)
            assert r.status_code == 200, r.text
            return dict(r.json())

        assert (await held())["total"] == 3
        assert (await held(sender="CAROL@"))["total"] == 2
        assert (await held(recipient="zed@"))["total"] == 1
        assert (await held(min_size=4000))["total"] == 1
        assert (await held(max_size=4000))["total"] == 2
        assert (await held(outbreak="ob-1"))["total"] == 3
        assert (await held(outbreak="other"))["total"] == 0
        assert (await held(min_age=3600))["total"] == 0
        assert (await held(max_age=3600))["total"] == 3
        page = await held(limit=2, offset=0)
        page2 = await held(limit=2, offset=2)
        assert page["total"] == page2["total"] == 3
        assert len(page["items"]) == 2  # type: ignore[arg-type]
        assert len(page2["items"]) == 1  # type: ignore[arg-type]
        r = await c.get(API + "/held", params={"limit": 0})
        assert r.status_code == 422
        assert r.json()["error"] == "invalid request"
        r = await c.get(API + "/held/NOTHEX")
        assert r.status_code == 422
        r = await c.get(API + "/held/ABCDEF0123")
        assert r.status_code == 404
        assert r.json()["error"] == "not found"


async def test_quarantine_detail_parts_and_raw_download(admin_env: AdminEnv) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
        z.writestr("eicar.com", EICAR)
    data = attachment_message("zipped", buf.getvalue(), "invoice.zip",
                              html="<script>alert(1)</script><b>hi</b>")
    await admin_env.sendmail(data)
    (qid,) = await admin_env.held_ids(1, MessageState.QUARANTINED)
    async with admin_env.client(admin_env.read_token) as c:
        lst = (await c.get(API + "/quarantine")).json()
        assert lst["total"] == 1
        assert lst["items"][0]["findings"] == ["Eicar-Test-Signature"]
        d = (await c.get(f"{API}/quarantine/{qid}")).json()
        assert {"name": "Subject", "value": "zipped"} in d["headers"]
        tree = d["parts"]
        assert tree["content_type"] == "multipart/mixed"
        kinds = [(p["content_type"], p["true_type"]) for p in tree["children"]]
        assert ("text/html", "html") in kinds
        zip_node = next(p for p in tree["children"] if p["filename"] == "invoice.zip")
        assert zip_node["true_type"] == "zip"
        assert zip_node["size"] == len(buf.getvalue())
        members = {m["filename"]: m for m in zip_node["children"]}
        assert members["eicar.com"]["size"] == len(EICAR)
        assert members["readme.txt"]["true_type"] == "text"
        r = await c.get(f"{API}/messages/{qid}/raw")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["content-disposition"] == f'attachment; filename="{qid}.eml"'
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content.endswith(data)
        # a quarantined virus stays quarantined on release: the rescan finds it again
    async with admin_env.client(admin_env.admin_token) as c:
        r = await c.post(f"{API}/quarantine/{qid}/release")
        assert r.status_code == 200
        assert r.json()["state"] == "quarantined"
        r = await c.post(f"{API}/quarantine/{qid}/delete")
        assert r.json()["state"] == "deleted"
    assert admin_env.sink.messages == []


async def test_queue_retry_and_bounce(admin_env: AdminEnv) -> None:
    admin_env.sink.data_reply = "451 4.3.0 try later"
    await admin_env.sendmail(message("stuck"), sender="owner@sender.test")

    async def deferred() -> list[dict[str, object]]:
        async with admin_env.client(admin_env.read_token) as c:
            items = (await c.get(API + "/queue")).json()["items"]
        return [i for i in items if int(i["attempts"]) >= 1]

    items = await wait_for(deferred)
    assert items, "the message should have been deferred"
    qid = str(items[0]["queue_id"])
    assert "451" in str(items[0]["last_error"])
    async with admin_env.client(admin_env.admin_token) as c:
        r = await c.post(f"{API}/queue/{qid}/retry")
        assert r.status_code == 200
        assert r.json() == {"retried": 1}
        r = await c.post(f"{API}/queue/ABCDEF/retry")
        assert r.status_code == 404
        for _ in range(50):  # the queue may hold a lease while it retries; bounce between
            r = await c.post(f"{API}/queue/{qid}/bounce")
            if r.status_code != 409 or "right now" not in r.text:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "bounced"
        rec = await admin_env.store.get_message(qid)
        assert rec.state is MessageState.BOUNCED
        assert rec.recipients[0].status.value == "bounced"
        r = await c.post(f"{API}/queue/{qid}/bounce")
        assert r.status_code == 409
    admin_env.sink.data_reply = None
    got = await wait_for(lambda: admin_env.sink.messages)  # the DSN, to the original sender
    assert got[0].rcpt_tos == ("owner@sender.test",)
    assert got[0].mail_from in ("", "<>")  # the null sender
    assert "bounced by admin:alice" in got[0].data.decode()


async def test_notices_database_config_outbreaks_status(admin_env: AdminEnv) -> None:
    now = time.time()
    for i, (transport, result) in enumerate(
        [("stream", "applied"), ("udp", "applied"), ("udp", "bad_signature"), ("poll", "applied")]
    ):
        await admin_env.store.log_notice(
            NoticeLogEntry("lab", i + 1, "heartbeat", transport, result, now - 60 + i)
        )
    await admin_env.declare("ob-9", "Macro.X")
    async with admin_env.client(admin_env.read_token) as c:
        n = (await c.get(API + "/notices", params={"limit": 3})).json()
        assert n["total"] == 4
        assert len(n["items"]) == 3
        assert n["items"][0]["transport"] == "poll"
        db = (await c.get(API + "/database")).json()
        assert db["version"] == admin_env.gw.outbreaks.installed_version
        assert db["age_seconds"] >= 0
        cfg = (await c.get(API + "/config")).json()
        assert cfg["smtp"]["listen"].startswith("127.0.0.1")
        ob = (await c.get(API + "/outbreaks")).json()
        assert [o["outbreak_id"] for o in ob["items"]] == ["ob-9"]
        st = (await c.get(API + "/status")).json()
        assert st["outbreak_active"] is True
        assert set(st["notices"]["last_applied"]) == {"stream", "udp", "poll"}
        m = (await c.get("/metrics")).text
    assert 'zerohour_notices_total{result="bad_signature",transport="udp"} 1.0' in m
    assert 'zerohour_notices_total{result="applied",transport="udp"} 1.0' in m
    assert "zerohour_outbreaks_active 1.0" in m


def test_redact_hides_secret_looking_values() -> None:
    cfg = {"smtp": {"listen": "x", "tls_key": "/k.pem", "password": "p"},
           "auth": {"api_token": "t", "empty_secret": ""}, "list": [{"private": 1}]}
    out = redact(cfg)
    assert out["smtp"] == {"listen": "x", "tls_key": "***redacted***",
                           "password": "***redacted***"}
    assert out["auth"] == {"api_token": "***redacted***", "empty_secret": ""}
    assert out["list"] == [{"private": "***redacted***"}]


async def test_security_headers_and_openapi(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        r = await c.get(API + "/openapi.json")
        assert r.status_code == 200
        paths = r.json()["paths"]
        for p in ("/api/v1/held", "/api/v1/held/{qid}/release", "/api/v1/quarantine/bulk",
                  "/api/v1/queue/{qid}/bounce", "/api/v1/notices", "/api/v1/config",
                  "/api/v1/database", "/api/v1/outbreaks", "/api/v1/status"):
            assert p in paths, p
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert (await c.get("/docs")).status_code == 404  # no CDN-loading docs page
