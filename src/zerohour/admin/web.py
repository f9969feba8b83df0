"""The dashboard: server-rendered pages (Jinja2, autoescaped), one small script, no CDN.

Login takes a token and opens a server-side session: a new random session id every time (a
cookie planted before login is never adopted), cookie `HttpOnly; SameSite=Strict`. Every form
carries the session's CSRF token (synchroniser pattern; the login form uses a double-submit
cookie), and a POST whose `Origin` is not this site is refused before anything else. Actions need
the admin role and are audited like API calls. Message bodies are never rendered: the detail page
shows headers as text and the part tree; the raw message is only a download.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from zerohour.admin.api import (
    MAX_AGE,
    MAX_SIZE,
    QUEUE_ID,
    build_filter,
    bulk_action,
    message_detail,
    message_json,
    queue_matching,
    raw_response,
    read_body,
)
from zerohour.admin.auth import Session, TokenInfo, check_csrf
from zerohour.admin.context import ActionResult, AdminContext, redact
from zerohour.admin.listing import search_text
from zerohour.admin.overview import CHART_STATES, snapshot
from zerohour.errors import AuthError, NotFoundError, QueryError, ZerohourError
from zerohour.store.base import MessageState, Page

HERE = Path(__file__).parent
SESSION_COOKIE = "zh_session"
LOGIN_COOKIE = "zh_login"
PAGE_SIZE = 50
_templates = Jinja2Templates(directory=str(HERE / "templates"))
_CHART_COLORS = {
    "delivered": "#2e7d32",
    "held": "#ef6c00",
    "quarantined": "#c62828",
    "rejected": "#6a1b9a",
    "bounced": "#546e7a",
}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


_templates.env.filters["age"] = _age
_templates.env.filters["when"] = _when
_templates.env.filters["size"] = _size


def _chart(buckets: list[dict[str, int]]) -> dict[str, Any]:
    """Stacked bars (one per 5 minutes) as SVG rectangles, computed here, drawn by the template."""
    width, height, pad = 600, 160, 20
    n = max(1, len(buckets))
    top = max([sum(b.values()) for b in buckets] + [1])
    bw = (width - 2 * pad) / n
    rects = []
    for i, b in enumerate(buckets):
        y = float(height - pad)
        for st in CHART_STATES:
            v = b.get(st.value, 0)
            if not v:
                continue
            h = (height - 2 * pad) * v / top
            y -= h
            rects.append({"x": round(pad + i * bw + 2, 1), "y": round(y, 1),
                          "w": round(bw - 4, 1), "h": round(h, 1),
                          "color": _CHART_COLORS[st.value], "title": f"{st.value}: {v}"})
    return {"width": width, "height": height, "rects": rects, "top": top,
            "legend": [(s.value, _CHART_COLORS[s.value]) for s in CHART_STATES],
            "total": {s.value: sum(b.get(s.value, 0) for b in buckets) for s in CHART_STATES}}


class _Flash:
    def __init__(self) -> None:
        self._by_sid: dict[str, list[tuple[str, str]]] = {}

    def add(self, sid: str, kind: str, text: str) -> None:
        self._by_sid.setdefault(sid, []).append((kind, text))

    def pop(self, sid: str) -> list[tuple[str, str]]:
        return self._by_sid.pop(sid, [])


async def not_found_page(request: Request) -> Response:
    return _templates.TemplateResponse(
        request, "error.html", {"title": "Not found", "message": "No such page.",
                                "session": None, "csrf": ""}, status_code=404,
    )


def _same_origin(request: Request) -> bool:
    """A browser sends Origin on every cross-site POST; when present it must be us."""
    origin = request.headers.get("origin")
    if origin is None:
        fetch_site = request.headers.get("sec-fetch-site")
        return fetch_site in (None, "same-origin", "none")
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def mount_web(app: FastAPI, ctx: AdminContext) -> None:
    flash = _Flash()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def remote(request: Request) -> str:
        return request.client.host if request.client else ""

    async def current(request: Request) -> Session | None:
        s = ctx.sessions.get(request.cookies.get(SESSION_COOKIE))
        if s is None:
            return None
        try:
            info = await _token_info(ctx, s.principal.token_id)
        except NotFoundError:
            info = None
        if info is None or info.revoked_at is not None:
            ctx.sessions.drop_token(s.principal.token_id)
            return None
        return s

    async def render(
        request: Request, name: str, session: Session | None, status: int = 200, **kw: Any
    ) -> Response:
        active = await ctx.store.outbreaks(active_only=True) if session else []
        context = {
            "active_outbreaks": active,
            "session": session,
            "csrf": session.csrf if session else "",
            "flashes": flash.pop(session.sid) if session else [],
            "nav": kw.pop("nav", ""),
            **kw,
        }
        return _templates.TemplateResponse(request, name, context, status_code=status)

    def to_login() -> Response:
        return RedirectResponse("/login", status_code=303)

    def page(
        fn: Callable[[Request, Session], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapper(request: Request) -> Response:
            s = await current(request)
            if s is None:
                return to_login()
            return await fn(request, s)

        return wrapper

    def action(
        name: str, fn: Callable[[Request, Session, dict[str, str]], Awaitable[tuple[str, str]]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A form POST: same origin, session, CSRF, admin role, audit; then back to `next`."""

        async def wrapper(request: Request) -> Response:
            if not _same_origin(request):
                await ctx.auth.aaudit(None, name, "", "refused",
                                      {"why": "cross-site form post"}, remote(request))
                return await render(request, "error.html", None, 403, title="Refused",
                              message="Cross-site form posts are refused.")
            s = await current(request)
            if s is None:
                return to_login()
            form = {k: str(v) for k, v in (await request.form()).items()}
            try:
                check_csrf(s, form.get("csrf"))
            except AuthError as exc:
                await ctx.auth.aaudit(s.principal, name, "", "refused", {"why": "csrf"},
                                      remote(request))
                return await render(request, "error.html", s, 403, title="Refused",
                                    message=str(exc))
            target = form.get("queue_id") or form.get("outbreak") or ""
            if not s.principal.can_act:
                await ctx.auth.aaudit(s.principal, name, target, "denied", None, remote(request))
                return await render(request, "error.html", s, 403, title="Forbidden",
                              message=f"Your token's role ({s.principal.role.value}) "
                              "can only look, not act.")
            try:
                kind, text = await fn(request, s, form)
                await ctx.auth.aaudit(s.principal, name, target, "ok", {"result": text},
                                      remote(request))
            except ZerohourError as exc:
                kind, text = "error", str(exc)
                await ctx.auth.aaudit(s.principal, name, target, "failed", {"error": text},
                                      remote(request))
            flash.add(s.sid, kind, text)
            nxt = form.get("next", "/")
            if not nxt.startswith("/") or nxt.startswith("//"):
                nxt = "/"
            return RedirectResponse(nxt, status_code=303)

        return wrapper

    # -- login / logout ---------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        resp = await render(request, "login.html", None, login_csrf=token, error="")
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=ctx.secure_cookies, path="/login", max_age=1800)
        return resp

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return await render(request, "error.html", None, 403, title="Refused",
                          message="Cross-site form posts are refused.")
        form = {k: str(v) for k, v in (await request.form()).items()}
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, form.get("login_csrf", "")):
            return await render(request, "error.html", None, 403, title="Refused",
                          message="Login form expired; reload it and try again.")
        try:
            who = await ctx.auth.averify(form.get("token", ""))
        except AuthError:
            await ctx.auth.aaudit(None, "login", "", "failed", None, remote(request))
            resp = await render(request, "login.html", None, 401, login_csrf=cookie,
                          error="That token is not valid.")
            return resp
        ctx.sessions.drop(request.cookies.get(SESSION_COOKIE))  # never adopt an old id
        s = ctx.sessions.create(who)
        await ctx.auth.aaudit(who, "login", "", "ok", None, remote(request))
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(SESSION_COOKIE, s.sid, httponly=True, samesite="strict",
                        secure=ctx.secure_cookies, path="/")
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        s = await current(request)
        if s is not None:
            form = await request.form()
            if not _same_origin(request) or not hmac.compare_digest(
                s.csrf, str(form.get("csrf", ""))
            ):
                return await render(request, "error.html", s, 403, title="Refused",
                                    message="Log out with the button on the page.")
            ctx.sessions.drop(s.sid)
            await ctx.auth.aaudit(s.principal, "logout", "", "ok", None, remote(request))
        resp = to_login()
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    # -- pages ------------------------------------------------------------------------------

    async def overview(request: Request, s: Session) -> Response:
        snap = await snapshot(ctx.store, ctx.installed_version, tally=ctx.notices)
        return await render(request, "overview.html", s, nav="overview", snap=snap,
                      chart=_chart(snap.chart), now=snap.at)

    async def message_list(
        request: Request, s: Session, state: MessageState, nav: str, title: str
    ) -> Response:
        q = request.query_params
        now = time.time()

        def num(key: str, kind: type, hi: float) -> Any:
            v = q.get(key, "").strip()
            try:
                x = kind(v) if v else None
            except ValueError:
                return None
            return x if x is None or 0 <= x <= hi else None

        try:
            text = search_text(q.get("q"))
        except QueryError as exc:
            return await render(
                request, "messages.html", s, 400, nav=nav, title=title, state=state.value,
                base=f"/{nav}", items=[], total=0, offset=0, page_size=PAGE_SIZE, q=q,
                outbreaks=[], prev_url="", next_url="", here=f"/{nav}", query_error=str(exc),
            )
        flt = build_filter(
            state,
            q.get("outbreak", "")[:64] or None,
            q.get("sender", "")[:320] or None,
            q.get("recipient", "")[:320] or None,
            num("min_age", float, MAX_AGE),
            num("max_age", float, MAX_AGE),
            num("min_size", int, MAX_SIZE),
            num("max_size", int, MAX_SIZE),
            now,
            text,
        )
        offset = num("offset", int, 10**9) or 0
        recs = await ctx.store.list_messages(flt, Page(limit=PAGE_SIZE, offset=offset))
        total = await ctx.store.count_messages(flt)
        outbreaks = await ctx.store.outbreaks(active_only=False)
        params = {k: v for k, v in q.items() if k != "offset" and v}
        return await render(
            request, "messages.html", s, nav=nav, title=title, state=state.value,
            base=f"/{nav}", items=[message_json(r, now) for r in recs], total=total,
            offset=offset, page_size=PAGE_SIZE, q=q, outbreaks=outbreaks,
            prev_url=(f"/{nav}?" + urlencode({**params, "offset": max(0, offset - PAGE_SIZE)}))
            if offset else "",
            next_url=(f"/{nav}?" + urlencode({**params, "offset": offset + PAGE_SIZE}))
            if offset + PAGE_SIZE < total else "",
            here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        )

    async def held(request: Request, s: Session) -> Response:
        return await message_list(request, s, MessageState.HELD, "held", "Held mail")

    async def quarantine(request: Request, s: Session) -> Response:
        return await message_list(request, s, MessageState.QUARANTINED, "quarantine",
                                  "Quarantine")

    async def detail(request: Request, s: Session) -> Response:
        qid = request.path_params["qid"]
        if not re.match(QUEUE_ID, qid):
            return await render(request, "error.html", s, 404, title="Not found",
                          message="No such message.")
        try:
            rec = await ctx.store.get_message(qid)
        except NotFoundError:
            return await render(request, "error.html", s, 404, title="Not found",
                          message="No such message.")
        d = await message_detail(ctx, rec)
        rows: list[tuple[int, dict[str, Any]]] = []

        def walk(node: dict[str, Any] | None, depth: int) -> None:
            if node is None:
                return
            rows.append((depth, node))
            for c in node.get("children", []):
                walk(c, depth + 1)

        walk(d["parts"], 0)
        return await render(request, "message.html", s, nav=rec.state.value, m=d, parts=rows,
                      here=f"/messages/{qid}")

    async def download(request: Request, s: Session) -> Response:
        qid = request.path_params["qid"]
        if not re.match(QUEUE_ID, qid):
            return await render(request, "error.html", s, 404, title="Not found",
                          message="No such message.")
        try:
            await ctx.store.get_message(qid)
            data = await read_body(ctx, qid)
        except NotFoundError:
            return await render(request, "error.html", s, 404, title="Not found",
                          message="The message body is no longer kept.")
        await ctx.auth.aaudit(s.principal, "message.download", qid, "ok", None, remote(request))
        return raw_response(qid, data)

    async def queue(request: Request, s: Session) -> Response:
        qp = request.query_params
        try:
            text = search_text(qp.get("q"))
        except QueryError as exc:
            return await render(request, "queue.html", s, 400, nav="queue", rows=[], total=0,
                                offset=0, page_size=PAGE_SIZE, now=time.time(), q=qp,
                                query_error=str(exc), more="")
        entries = await queue_matching(ctx, text)
        try:
            offset = max(0, int(qp.get("offset", "0")))
        except ValueError:
            offset = 0
        rows = []
        for e in entries[offset : offset + PAGE_SIZE]:
            try:
                rec = message_json(await ctx.store.get_message(e.queue_id))
            except NotFoundError:
                rec = None
            rows.append({"e": e, "m": rec})
        more = urlencode({"q": text}) + "&" if text else ""
        return await render(request, "queue.html", s, nav="queue", rows=rows, total=len(entries),
                            offset=offset, page_size=PAGE_SIZE, now=time.time(), q=qp,
                            query_error="", more=more)

    async def notices(request: Request, s: Session) -> Response:
        try:
            offset = max(0, min(10**9, int(request.query_params.get("offset", "0"))))
        except ValueError:
            offset = 0
        entries = await ctx.store.notice_log(Page(limit=PAGE_SIZE, offset=offset))
        total = (await ctx.notices.update(ctx.store)).total
        return await render(request, "notices.html", s, nav="notices", entries=entries, total=total,
                      offset=offset, page_size=PAGE_SIZE)

    async def audit(request: Request, s: Session) -> Response:
        try:
            offset = max(0, min(10**9, int(request.query_params.get("offset", "0"))))
        except ValueError:
            offset = 0
        entries, total = await ctx.auth.aaudit_log(PAGE_SIZE, offset)
        return await render(request, "audit.html", s, nav="audit", entries=entries, total=total,
                      offset=offset, page_size=PAGE_SIZE)

    async def outbreaks(request: Request, s: Session) -> Response:
        recs = await ctx.store.outbreaks(active_only=False)
        recs.sort(key=lambda o: o.declared_at, reverse=True)
        return await render(request, "outbreaks.html", s, nav="outbreaks", outbreaks=recs)

    async def outbreak(request: Request, s: Session) -> Response:
        from zerohour.admin.api import OUTBREAK_ID
        from zerohour.admin.timeline import outbreak_timeline

        oid = request.path_params["oid"]
        try:
            if not re.match(OUTBREAK_ID, oid):
                raise NotFoundError(oid)
            tl = await outbreak_timeline(ctx.store, oid)
        except NotFoundError:
            return await render(request, "error.html", s, 404, title="Not found",
                                message="No such outbreak.")
        return await render(request, "outbreak.html", s, nav="outbreaks", tl=tl)

    async def config(request: Request, s: Session) -> Response:
        text = json.dumps(redact(ctx.config), indent=2, sort_keys=True)
        return await render(request, "config.html", s, nav="config", text=text)

    for path, fn in (
        ("/", overview),
        ("/held", held),
        ("/quarantine", quarantine),
        ("/messages/{qid}", detail),
        ("/messages/{qid}/raw", download),
        ("/queue", queue),
        ("/notices", notices),
        ("/audit", audit),
        ("/outbreaks", outbreaks),
        ("/outbreaks/{oid}", outbreak),
        ("/config", config),
    ):
        app.add_api_route(path, page(fn), methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)

    # -- actions ----------------------------------------------------------------------------

    def _qid(form: dict[str, str]) -> str:
        qid = form.get("queue_id", "")
        if not re.match(QUEUE_ID, qid):
            raise NotFoundError(f"invalid queue id {qid[:40]!r}")
        return qid

    async def do_release(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        qid = _qid(form)
        res: ActionResult = await ctx.actions.release(qid, actor=s.principal.actor)
        return "ok", f"{qid}: {res.state} ({res.reason})"

    async def do_delete(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        qid = _qid(form)
        res = await ctx.actions.delete(qid, actor=s.principal.actor)
        return "ok", f"{qid}: {res.state}"

    def do_bulk(state: MessageState) -> Callable[..., Awaitable[tuple[str, str]]]:
        async def go(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
            outbreak = form.get("outbreak", "")
            act = form.get("action", "")
            if not outbreak or act not in ("release", "delete"):
                raise NotFoundError("choose an outbreak and release or delete")
            out = await bulk_action(ctx, state, outbreak, act, s.principal.actor)
            res = ", ".join(f"{k}: {v}" for k, v in sorted(out["results"].items())) or "nothing"
            kind = "error" if out["errors"] else "ok"
            return kind, (f"{act} for outbreak {outbreak}: {out['matched']} matched; {res}"
                          + (f"; {len(out['errors'])} failed" if out["errors"] else ""))

        return go

    async def do_retry(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        qid = form.get("queue_id") or None
        if qid is not None:
            qid = _qid(form)
        n = await ctx.actions.retry(qid, actor=s.principal.actor)
        return "ok", f"{n} message(s) due now"

    async def do_bounce(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        qid = _qid(form)
        res = await ctx.actions.bounce(qid, actor=s.principal.actor)
        return "ok", f"{qid}: {res.state}"

    for path, name, fn2 in (
        ("/actions/release", "web.release", do_release),
        ("/actions/delete", "web.delete", do_delete),
        ("/actions/held-bulk", "web.held_bulk", do_bulk(MessageState.HELD)),
        ("/actions/quarantine-bulk", "web.quarantine_bulk", do_bulk(MessageState.QUARANTINED)),
        ("/actions/retry", "web.retry", do_retry),
        ("/actions/bounce", "web.bounce", do_bounce),
    ):
        app.add_api_route(path, action(name, fn2), methods=["POST"], include_in_schema=False)


async def _token_info(ctx: AdminContext, token_id: str) -> TokenInfo:
    return await asyncio.to_thread(ctx.auth.get, token_id)
