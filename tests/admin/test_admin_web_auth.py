"""Dashboard sessions and forms over real HTTP: login, cookies, fixation, CSRF, roles, revoke."""

from __future__ import annotations

import re

import httpx

from admin.conftest import AdminEnv, attachment_message, message
from zerohour.store.base import MessageState


async def login(c: httpx.AsyncClient, token: str) -> httpx.Response:
    """The browser's steps: GET the form (login cookie + hidden field), POST it."""
    page = await c.get("/login")
    field = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert field is not None
    return await c.post("/login", data={"token": token, "login_csrf": field.group(1)})


def session_set_by(r: httpx.Response) -> str:
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("zh_session="))
    return cookie.split(";")[0].split("=", 1)[1]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None, "page has no CSRF field"
    return m.group(1)


async def test_pages_need_a_session(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        for path in ("/", "/held", "/quarantine", "/queue", "/notices", "/audit", "/config"):
            r = await c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"] == "/login"
        r = await c.post("/actions/release", data={"queue_id": "ABC"})
        assert r.status_code == 303
        # a bearer token is for the API, not the dashboard
        r = await c.get("/", headers={"Authorization": f"Bearer {admin_env.admin_token}"})
        assert r.status_code == 303


async def test_login_sets_strict_httponly_cookie(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        r = await login(c, "zh_00000000_" + "y" * 43)
        assert r.status_code == 401
        assert "not valid" in r.text
        assert "zh_session" not in c.cookies
        r = await login(c, admin_env.admin_token)
        assert r.status_code == 303
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("zh_session="))
        attrs = {a.strip().lower() for a in cookie.split(";")}
        assert "httponly" in attrs
        assert "samesite=strict" in attrs
        assert "path=/" in attrs
        r = await c.get("/")
        assert r.status_code == 200
        assert "alice (admin)" in r.text
        audit = await c.get("/audit")
        assert "login" in audit.text


async def test_login_form_needs_its_double_submit_token(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        r = await c.post("/login", data={"token": admin_env.admin_token, "login_csrf": "forged"})
        assert r.status_code == 403
        assert "zh_session" not in c.cookies


async def test_session_fixation_is_impossible(admin_env: AdminEnv) -> None:
    async with admin_env.client() as attacker:
        await login(attacker, admin_env.read_token)
        planted = attacker.cookies["zh_session"]
    # the attacker's id planted in the victim's browser
    async with admin_env.client(cookies={"zh_session": planted}) as victim:
        r = await login(victim, admin_env.admin_token)
        assert r.status_code == 303
        assert session_set_by(r) != planted
    # the planted id no longer opens anything (it was dropped at the victim's login)
    async with admin_env.client(cookies={"zh_session": planted}) as attacker:
        r = await attacker.get("/")
        assert r.status_code == 303
    # an id the server never issued is never adopted either
    async with admin_env.client(cookies={"zh_session": "attacker-made-up"}) as c:
        r = await login(c, admin_env.admin_token)
        assert session_set_by(r) != "attacker-made-up"


async def test_cross_site_post_and_missing_csrf_are_refused(admin_env: AdminEnv) -> None:
    await admin_env.declare()
    await admin_env.sendmail(message("csrf target"))
    (qid,) = await admin_env.held_ids(1)
    async with admin_env.client() as c:
        await login(c, admin_env.admin_token)
        page = await c.get("/held")
        token = csrf_of(page.text)
        assert qid in page.text
        # a form on evil.example auto-submitted with the victim's cookie
        r = await c.post("/actions/release", data={"queue_id": qid, "csrf": token},
                         headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        r = await c.post("/actions/release", data={"queue_id": qid},
                         headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        # same origin but no / wrong CSRF token
        origin = admin_env.url
        r = await c.post("/actions/release", data={"queue_id": qid}, headers={"Origin": origin})
        assert r.status_code == 403
        r = await c.post("/actions/release", data={"queue_id": qid, "csrf": "x" * 43},
                         headers={"Origin": origin})
        assert r.status_code == 403
        assert (await admin_env.store.get_message(qid)).state is MessageState.HELD
        # and the real form works
        r = await c.post("/actions/release", data={"queue_id": qid, "csrf": token,
                                                   "next": "/held"}, headers={"Origin": origin})
        assert r.status_code == 303
        assert r.headers["location"] == "/held"
        page = await c.get("/held")
        assert "queued" in page.text  # the flash message
    assert (await admin_env.store.get_message(qid)).state in (
        MessageState.QUEUED, MessageState.DELIVERED)
    async with admin_env.client(admin_env.admin_token) as c:
        audit = (await c.get("/api/v1/audit", params={"limit": 100})).json()["items"]
    refused = [e for e in audit if e["result"] == "refused"]
    assert len(refused) == 4
    assert any(e["action"] == "web.release" and e["result"] == "ok" for e in audit)


async def test_read_role_session_cannot_act(admin_env: AdminEnv) -> None:
    await admin_env.declare()
    await admin_env.sendmail(message("read only"))
    (qid,) = await admin_env.held_ids(1)
    async with admin_env.client() as c:
        await login(c, admin_env.read_token)
        page = (await c.get("/held")).text
        assert qid in page
        assert 'class="release"' not in page  # no buttons it could not use
        token = csrf_of(page)  # (the logout form's) - posting anyway is refused below
        r = await c.post("/actions/delete", data={"queue_id": qid, "csrf": token},
                         headers={"Origin": admin_env.url})
        assert r.status_code == 403
        assert "can only look" in r.text
    assert (await admin_env.store.get_message(qid)).state is MessageState.HELD


async def test_revoking_the_token_ends_its_sessions(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        await login(c, admin_env.read_token)
        assert (await c.get("/")).status_code == 200
        admin_env.admin.ctx.auth.revoke(admin_env.read_token.split("_")[1])
        assert (await c.get("/")).status_code == 303


async def test_logout_needs_csrf_and_ends_the_session(admin_env: AdminEnv) -> None:
    async with admin_env.client() as c:
        await login(c, admin_env.admin_token)
        token = csrf_of((await c.get("/")).text)
        await c.post("/logout", data={"csrf": "wrong"}, headers={"Origin": admin_env.url})
        assert (await c.get("/")).status_code == 200  # a forged logout does nothing
        sid = c.cookies["zh_session"]
        await c.post("/logout", data={"csrf": token}, headers={"Origin": admin_env.url})
    async with admin_env.client(cookies={"zh_session": sid}) as c:
        assert (await c.get("/")).status_code == 303


async def test_message_page_never_renders_the_html_body(admin_env: AdminEnv) -> None:
    await admin_env.declare()
    evil = '<script>alert("owned")</script><img src="http://tracker.example/x.png">'
    await admin_env.sendmail(
        attachment_message("<b>bold subject</b>", b"MZ" + b"\0" * 200, "a.exe", html=evil)
    )
    (qid,) = await admin_env.held_ids(1)
    async with admin_env.client() as c:
        await login(c, admin_env.admin_token)
        r = await c.get(f"/messages/{qid}")
        assert r.status_code == 200
        html = r.text
        assert "<script>alert" not in html
        assert "tracker.example" not in html  # the body is not shown at all
        assert "&lt;b&gt;bold subject&lt;/b&gt;" in html  # headers shown as escaped text
        assert "text/html" in html  # the part is listed, not rendered
        assert "a.exe" in html
        assert "<b>bold subject</b>" not in html
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        raw = await c.get(f"/messages/{qid}/raw")
        assert raw.headers["content-disposition"].startswith("attachment;")
        assert raw.headers["content-type"] == "application/octet-stream"
        r = await c.get("/messages/ZZZ")
        assert r.status_code == 404
