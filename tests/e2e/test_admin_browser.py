"""The dashboard in real headless Chromium (Debian's, driven by Playwright; never downloaded).

A person can look at the screenshots in `test-artifacts/screenshots/`.
"""

from __future__ import annotations

import asyncio
import http.server
import io
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from admin.conftest import EICAR, AdminEnv, admin_env, attachment_message, message, wait_for
from zerohour.store.base import MessageState, NoticeLogEntry

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.needs_browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (scripts/system-deps installs it)",
    ),
]
__all__ = ["admin_env"]  # the fixture, shared with tests/admin


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def _page(browser: object, errors: list[str]) -> object:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = await ctx.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    return page


async def _login(page: object, env: AdminEnv) -> None:
    await page.goto(env.url + "/")  # type: ignore[attr-defined]
    assert page.url.endswith("/login")  # type: ignore[attr-defined]
    await page.fill("#token", env.admin_token)  # type: ignore[attr-defined]
    await page.click("#login")  # type: ignore[attr-defined]
    await page.wait_for_url(env.url + "/")  # type: ignore[attr-defined]


async def test_login_banner_release_reaches_the_sink(admin_env: AdminEnv, browser: object) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = admin_env
    now = __import__("time").time()
    await env.store.log_notice(
        NoticeLogEntry("lab", 1, "outbreak.declared", "stream", "applied", now - 30)
    )
    await env.store.log_notice(NoticeLogEntry("lab", 2, "heartbeat", "udp", "applied", now - 5))
    await env.declare("ob-2026-11", "Invoice.Worm")
    await env.sendmail(
        message("quarterly invoice", sender="billing@sender.test"), sender="billing@sender.test"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("invoice.js", "var x = 1;\n")
    # named like a PDF, really a zip: the part tree shows the true type
    await env.sendmail(attachment_message("payload", buf.getvalue(), "invoice.pdf"))
    ids = await env.held_ids(2)
    errors: list[str] = []
    page = await _page(browser, errors)
    p = page  # playwright's Page; typed loosely on purpose (no stubs needed)
    await _login(p, env)  # type: ignore[arg-type]

    banner = p.locator("#outbreak-banner")  # type: ignore[attr-defined]
    assert await banner.is_visible()
    text = await banner.inner_text()
    assert "OUTBREAK ACTIVE" in text
    assert "Invoice.Worm" in text
    assert await p.locator("#held-count").inner_text() == "2"  # type: ignore[attr-defined]
    await p.screenshot(path=str(SHOTS / "overview.png"), full_page=True)  # type: ignore[attr-defined]

    await p.click("nav >> text=Held")  # type: ignore[attr-defined]
    await p.wait_for_url(env.url + "/held")  # type: ignore[attr-defined]
    senders = {i: (await env.store.get_message(i)).sender for i in ids}
    target = next(i for i in ids if senders[i] == "billing@sender.test")
    row = p.locator(f'tr[data-queue-id="{target}"]')  # type: ignore[attr-defined]
    assert await row.is_visible()
    await p.screenshot(path=str(SHOTS / "held.png"), full_page=True)  # type: ignore[attr-defined]
    await row.locator("button.release").click()
    await p.wait_for_selector(".flash")  # type: ignore[attr-defined]
    flash = await p.locator(".flash").first.inner_text()  # type: ignore[attr-defined]
    assert target in flash
    assert "queued" in flash

    got = await wait_for(lambda: env.sink.messages)
    assert [m.header("Subject") for m in got] == ["quarterly invoice"]
    assert got[0].mail_from == "billing@sender.test"
    await p.screenshot(path=str(SHOTS / "held-after-release.png"), full_page=True)  # type: ignore[attr-defined]

    other = next(i for i in ids if i != target)
    await p.click(f"a >> text={other}")  # type: ignore[attr-defined]
    await p.wait_for_url(env.url + f"/messages/{other}")  # type: ignore[attr-defined]
    parts = await p.locator("table.parts").inner_text()  # type: ignore[attr-defined]
    assert "invoice.pdf" in parts
    assert "zip" in parts.split()  # the true type, detected from content
    assert "invoice.js" in parts  # the archive member
    await p.screenshot(path=str(SHOTS / "message.png"), full_page=True)  # type: ignore[attr-defined]

    await p.click("nav >> text=Audit")  # type: ignore[attr-defined]
    audit = await p.locator("#audit").inner_text()  # type: ignore[attr-defined]
    assert "web.release" in audit
    assert "admin:alice" in audit
    await p.screenshot(path=str(SHOTS / "audit.png"), full_page=True)  # type: ignore[attr-defined]

    for nav in ("Quarantine", "Queue", "Notices", "Config", "Overview"):
        await p.click(f"nav >> text={nav}")  # type: ignore[attr-defined]
        await p.wait_for_load_state()  # type: ignore[attr-defined]
    assert errors == []  # no script errors, no CSP violations on any page


class _Evil(http.server.BaseHTTPRequestHandler):
    """A page on another origin that auto-posts a release form to the dashboard."""

    target = ""
    queue_id = ""

    def do_GET(self) -> None:
        body = (
            f'<html><body><form id="f" method="post" action="{self.target}/actions/release">'
            f'<input name="queue_id" value="{self.queue_id}"></form>'
            '<script>document.getElementById("f").submit()</script></body></html>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def evil_server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


async def test_cross_site_form_post_in_a_real_browser_is_refused(
    admin_env: AdminEnv, browser: object, evil_server: http.server.ThreadingHTTPServer
) -> None:
    env = admin_env
    await env.declare()
    await env.sendmail(message("do not release"))
    (qid,) = await env.held_ids(1)
    errors: list[str] = []
    page = await _page(browser, errors)
    await _login(page, env)  # type: ignore[arg-type]
    _Evil.target = env.url
    _Evil.queue_id = qid
    port = evil_server.server_address[1]
    # same site (127.0.0.1), other origin: the browser sends the session cookie, so only the
    # server's Origin check stands between the page and the release
    await page.goto(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]
    await page.wait_for_url(env.url + "/actions/release")  # type: ignore[attr-defined]
    assert "Cross-site form posts are refused" in await page.content()  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "cross-site-refused.png"))  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    assert (await env.store.get_message(qid)).state is MessageState.HELD
    assert env.sink.messages == []


async def test_lists_search_tree_and_outbreak_timeline(
    admin_env: AdminEnv, browser: object
) -> None:
    """Subject, true types and search on the held list; hostile text stays text; the matched
    layer is marked in the tree; the outbreak page shows its timeline."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = admin_env
    await env.declare("ob-tl", "Timeline.Worm")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("run.js", "var x = 1;\n")
    await env.sendmail(attachment_message("<img src=x onerror=alert(1)> invoice", buf.getvalue(),
                                          "invoice.pdf"))
    await env.sendmail(message("lunch on friday"))
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.exe", EICAR)
    await env.sendmail(attachment_message("infected one", evil.getvalue(), "docs.zip"))
    await env.held_ids(2)
    (bad,) = await env.held_ids(1, state=MessageState.QUARANTINED)
    errors: list[str] = []
    p = await _page(browser, errors)
    await _login(p, env)  # type: ignore[arg-type]

    await p.goto(env.url + "/held")  # type: ignore[attr-defined]
    table = await p.locator("table.list").inner_text()  # type: ignore[attr-defined]
    assert "<img src=x onerror=alert(1)> invoice" in table  # shown as text, not an element
    assert await p.locator("table.list img").count() == 0  # type: ignore[attr-defined]
    assert "invoice.pdf zip" in table  # the true type, detected from content
    assert "run.js text" in table
    await p.fill("#q", "RUN.JS")  # type: ignore[attr-defined]
    await p.click("form.search button[type=submit]")  # type: ignore[attr-defined]
    await p.wait_for_url("**/held?**")  # type: ignore[attr-defined]
    rows = await p.locator("table.list tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert len(rows) == 1
    assert "invoice" in rows[0]
    await p.screenshot(path=str(SHOTS / "held-search.png"), full_page=True)  # type: ignore[attr-defined]

    await p.goto(env.url + "/quarantine")  # type: ignore[attr-defined]
    assert "Eicar-Test-Signature" in await p.locator("table.list").inner_text()  # type: ignore[attr-defined]
    await p.click(f"a >> text={bad}")  # type: ignore[attr-defined]
    await p.wait_for_url(env.url + f"/messages/{bad}")  # type: ignore[attr-defined]
    marked = p.locator("table.parts tr.matched")  # type: ignore[attr-defined]
    assert await marked.count() == 1
    assert "x.exe" in await marked.inner_text()
    assert "matched: Eicar-Test-Signature" in await marked.inner_text()
    assert "docs.zip" in await p.locator("table.parts tr.on-path").last.inner_text()  # type: ignore[attr-defined]
    assert "message › 2 › x.exe" in await p.locator("#matches").inner_text()  # type: ignore[attr-defined]
    await p.screenshot(path=str(SHOTS / "message-matched.png"), full_page=True)  # type: ignore[attr-defined]

    await p.click("nav >> text=Outbreaks")  # type: ignore[attr-defined]
    await p.click("a >> text=ob-tl")  # type: ignore[attr-defined]
    await p.wait_for_url(env.url + "/outbreaks/ob-tl")  # type: ignore[attr-defined]
    steps = p.locator("#timeline li")  # type: ignore[attr-defined]
    assert await steps.count() == 5
    assert "Declared" in await steps.nth(0).inner_text()
    assert "First message held" in await steps.nth(1).inner_text()
    assert "not yet" in await steps.nth(2).inner_text()  # no signatures yet
    counts = await p.locator("#counts").inner_text()  # type: ignore[attr-defined]
    assert "Held\t2" in counts
    assert "Still held\t2" in counts
    await p.screenshot(path=str(SHOTS / "outbreak-timeline.png"), full_page=True)  # type: ignore[attr-defined]
    assert errors == []
