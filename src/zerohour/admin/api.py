"""The admin REST API (FastAPI), plus the app factory that also mounts the dashboard and metrics.

- `/api/v1/...`: bearer-token JSON API (roles: read, admin). Every list pages with `limit`,
  `offset` and returns `total`. Errors are `{"error": ..., "detail": ...}` with a 4xx status.
- `/metrics`: Prometheus exposition (any valid token).
- `/`, `/held`, ...: the server-rendered dashboard (`admin.web`, session cookie + CSRF).
- `/api/v1/openapi.json`: the OpenAPI document (public; the interactive docs are off because
  they load scripts from a CDN).

Message actions go through `ctx.actions` (the gateway's releaser and queue), and every one,
allowed or refused, is written to the admin audit log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from zerohour import __version__
from zerohour.admin import schemas as S
from zerohour.admin.auth import Principal
from zerohour.admin.context import ActionResult, AdminContext, redact
from zerohour.admin.listing import attachments, matches, search_text, subject
from zerohour.admin.overview import all_queue, db_info, outbreak_json, snapshot
from zerohour.errors import AuthError, NotFoundError, StoreError, ZerohourError
from zerohour.store.base import (
    MessageFilter,
    MessageRecord,
    MessageState,
    Page,
    QueueEntry,
)

API = "/api/v1"
QUEUE_ID = r"^[0-9A-F]{1,40}$"
OUTBREAK_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_OFFSET = 1_000_000_000
MAX_SIZE = 2**53
MAX_AGE = 10 * 365 * 86400.0
BULK_MAX = 10_000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes browsers send Origin: null
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class ApiError(Exception):
    """An error reply: status, short error, human detail."""

    def __init__(self, status: int, error: str, detail: Any = "") -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


_ERRORS = {
    403: "read-only token",
    404: "unknown, or not in that state",
    409: "wrong state, or lost a race",
}


def errs(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI error responses (all `{"error", "detail"}`) for a route."""
    return {c: {"model": S.ErrorOut, "description": _ERRORS[c]} for c in codes}


def error_response(status: int, error: str, detail: Any = "") -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _status_of(exc: ZerohourError) -> tuple[int, str]:
    if isinstance(exc, NotFoundError):
        return 404, "not found"
    if isinstance(exc, AuthError):
        return 401, "unauthorized"
    if isinstance(exc, StoreError):
        return 409, "conflict"
    return 400, "bad request"


# -- values -----------------------------------------------------------------------------------


def message_json(rec: MessageRecord, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "queue_id": rec.queue_id,
        "kind": rec.kind,
        "state": rec.state.value,
        "sender": rec.sender,
        "recipients": [
            {"address": r.address, "status": r.status.value, "last_error": r.last_error}
            for r in rec.recipients
        ],
        "size": rec.size,
        "received_at": rec.received_at,
        "age_seconds": max(0.0, now - rec.received_at),
        "updated_at": rec.updated_at,
        "verdict": rec.verdict,
        "findings": list(rec.findings),
        "db_version": rec.db_version,
        "reason": rec.reason,
        "hold_tags": list(rec.hold_tags),
        "peer": rec.peer,
        "helo": rec.helo,
        "subject": subject(rec.summary),
        "attachments": attachments(rec.summary),
        "matches": matches(rec.summary),
    }


def page_json(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


class ReleaseBody(BaseModel):
    force: bool = Field(False, description="deliver without rescanning (audited)")


class BulkBody(BaseModel):
    outbreak: str = Field(..., pattern=OUTBREAK_ID, description="outbreak id")
    action: Literal["release", "delete"]


Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]
QueueId = Annotated[str, Path(pattern=QUEUE_ID, description="queue id (upper-case hex)")]
OutbreakId = Annotated[str, Path(pattern=OUTBREAK_ID, description="outbreak id")]
#: validated by `listing.search_text` (a 400 with a JSON error, not FastAPI's 422)
SearchQ = Annotated[
    str | None,
    Query(description="case-insensitive text in the Subject or an attachment's name "
          "(at most 200 characters, no control characters)"),
]


def build_filter(
    state: MessageState,
    outbreak: str | None,
    sender: str | None,
    recipient: str | None,
    min_age: float | None,
    max_age: float | None,
    min_size: int | None,
    max_size: int | None,
    now: float,
    text: str | None = None,
) -> MessageFilter:
    return MessageFilter(
        states=(state,),
        outbreak_id=outbreak or None,
        sender=sender or None,
        recipient=recipient or None,
        min_size=min_size,
        max_size=max_size,
        received_before=(now - min_age) if min_age is not None else None,
        received_after=(now - max_age) if max_age is not None else None,
        text=text,
    )


# -- the app ------------------------------------------------------------------------------------


def create_admin_app(ctx: AdminContext, *, web: bool = True) -> FastAPI:
    """The admin ASGI app for `ctx`: API, metrics and (unless `web=False`) the dashboard."""
    app = FastAPI(
        title="zerohour admin API",
        version=__version__,
        description="Held mail, quarantine, delivery queue, outbreaks, notices, audit. "
        "Authenticate with `Authorization: Bearer <token>` (`zerohour admin token create`).",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API}/openapi.json",
    )
    app.state.ctx = ctx

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.error, exc.detail)

    @app.exception_handler(ZerohourError)
    async def _zh_error(request: Request, exc: ZerohourError) -> Response:
        status, error = _status_of(exc)
        return error_response(status, error, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return error_response(422, "invalid request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if web and not request.url.path.startswith(API) and exc.status_code == 404:
            from zerohour.admin.web import not_found_page

            return await not_found_page(request)
        return error_response(exc.status_code, str(exc.detail).lower(), str(exc.detail))

    app.include_router(api_router(ctx))

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        await authenticate(ctx, request)
        from zerohour.metrics import CONTENT_TYPE, render

        snap = await snapshot(ctx.store, ctx.installed_version, chart=False,
                              tally=ctx.notices)
        return Response(render(snap), media_type=CONTENT_TYPE)

    if web:
        from zerohour.admin.web import mount_web

        mount_web(app, ctx)
    return app


async def authenticate(ctx: AdminContext, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    try:
        return await ctx.auth.averify(token)
    except AuthError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


async def _reader(request: Request) -> Principal:
    return await authenticate(request.app.state.ctx, request)


Reader = Annotated[Principal, Depends(_reader)]


def api_router(ctx: AdminContext) -> APIRouter:
    r = APIRouter(
        prefix=API,
        responses={
            400: {"model": S.ErrorOut, "description": "unreadable request body"},
            401: {"model": S.ErrorOut, "description": "no or bad token"},
            422: {"model": S.ErrorOut, "description": "invalid parameters"},
        },
    )

    def remote(request: Request) -> str:
        return request.client.host if request.client else ""

    async def act(
        who: Principal,
        request: Request,
        action: str,
        target: str,
        fn: Callable[[], Awaitable[Any]],
        detail: dict[str, Any] | None = None,
    ) -> Any:
        """Authorise (admin role), run, audit the outcome either way."""
        if not who.can_act:
            await ctx.auth.aaudit(who, action, target, "denied", detail, remote(request))
            raise ApiError(403, "forbidden", f"role {who.role.value} cannot {action}")
        try:
            out = await fn()
        except ZerohourError as exc:
            await ctx.auth.aaudit(
                who, action, target, "failed", {**(detail or {}), "error": str(exc)},
                remote(request),
            )
            raise
        result = out.to_json() if isinstance(out, ActionResult) else out
        await ctx.auth.aaudit(
            who, action, target, "ok", {**(detail or {}), "result": result}, remote(request)
        )
        return result

    @r.get("/status", summary="gateway status: outbreaks, held, queue, database, notices")
    async def status(who: Reader) -> dict[str, Any]:
        snap = await snapshot(ctx.store, ctx.installed_version, tally=ctx.notices)
        out = snap.status_json()
        out["admin"] = {"you": who.actor, "role": who.role.value}
        return out

    @r.get("/outbreaks", summary="outbreaks (active by default)", response_model=S.OutbreakPage)
    async def outbreaks(
        who: Reader,
        limit: Limit = 50,
        offset: Offset = 0,
        active: Annotated[bool, Query(description="only active ones")] = True,
    ) -> dict[str, Any]:
        recs = await ctx.store.outbreaks(active_only=active)
        recs.sort(key=lambda o: o.declared_at, reverse=True)
        items = [outbreak_json(o) for o in recs[offset : offset + limit]]
        return page_json(items, len(recs), limit, offset)

    @r.get("/outbreaks/{oid}/timeline",
           summary="an outbreak's timeline (declared, first held, signatures, released) and "
           "what became of the mail it held", response_model=S.TimelineOut,
           responses=errs(404))
    async def timeline(who: Reader, oid: OutbreakId) -> dict[str, Any]:
        from zerohour.admin.timeline import outbreak_timeline

        return await outbreak_timeline(ctx.store, oid)

    def message_routes(prefix: str, state: MessageState, label: str) -> None:
        async def get_in_state(qid: str) -> MessageRecord:
            rec = await ctx.store.get_message(qid)
            if rec.state is not state:
                raise ApiError(404, "not found", f"message {qid} is not {label} ({rec.state})")
            return rec

        @r.get(f"/{prefix}", summary=f"{label} messages (newest first), filtered",
               response_model=S.MessagePage)
        async def list_(
            who: Reader,
            limit: Limit = 50,
            offset: Offset = 0,
            outbreak: Annotated[str | None, Query(max_length=64)] = None,
            sender: Annotated[str | None, Query(max_length=320)] = None,
            recipient: Annotated[str | None, Query(max_length=320)] = None,
            min_age: Annotated[float | None, Query(ge=0, le=MAX_AGE)] = None,
            max_age: Annotated[float | None, Query(ge=0, le=MAX_AGE)] = None,
            min_size: Annotated[int | None, Query(ge=0, le=MAX_SIZE)] = None,
            max_size: Annotated[int | None, Query(ge=0, le=MAX_SIZE)] = None,
            q: SearchQ = None,
        ) -> dict[str, Any]:
            now = time.time()
            flt = build_filter(
                state, outbreak, sender, recipient, min_age, max_age, min_size, max_size, now,
                search_text(q),
            )
            recs = await ctx.store.list_messages(flt, Page(limit=limit, offset=offset))
            total = await ctx.store.count_messages(flt)
            return page_json([message_json(x, now) for x in recs], total, limit, offset)

        @r.get(f"/{prefix}/{{qid}}", summary=f"one {label} message: headers, part tree, events",
               response_model=S.MessageDetail,
               responses=errs(404))
        async def show(who: Reader, qid: QueueId) -> dict[str, Any]:
            rec = await get_in_state(qid)
            return await message_detail(ctx, rec)

        @r.post(f"/{prefix}/{{qid}}/release", summary=f"release a {label} message (rescan first)",
                response_model=S.ActionOut,
                responses=errs(403, 404, 409))
        async def release(
            who: Reader, request: Request, qid: QueueId, body: ReleaseBody | None = None
        ) -> Any:
            force = bool(body and body.force)

            async def go() -> ActionResult:
                await get_in_state(qid)
                return await ctx.actions.release(qid, actor=who.actor, force=force)

            return await act(who, request, f"{prefix}.release", qid, go, {"force": force})

        @r.post(f"/{prefix}/{{qid}}/delete", summary=f"delete a {label} message",
                response_model=S.ActionOut,
                responses=errs(403, 404, 409))
        async def delete(who: Reader, request: Request, qid: QueueId) -> Any:
            async def go() -> ActionResult:
                await get_in_state(qid)
                return await ctx.actions.delete(qid, actor=who.actor)

            return await act(who, request, f"{prefix}.delete", qid, go)

        @r.post(f"/{prefix}/bulk", summary=f"release or delete every {label} message of an "
                "outbreak", response_model=S.BulkOut, responses=errs(403))
        async def bulk(who: Reader, request: Request, body: BulkBody) -> Any:
            async def go() -> dict[str, Any]:
                return await bulk_action(ctx, state, body.outbreak, body.action, who.actor)

            return await act(
                who, request, f"{prefix}.bulk_{body.action}", body.outbreak, go,
                {"outbreak": body.outbreak},
            )

    message_routes("held", MessageState.HELD, "held")
    message_routes("quarantine", MessageState.QUARANTINED, "quarantined")

    @r.get("/messages/{qid}", summary="any message by queue id: record, headers, parts, events",
           response_model=S.MessageDetail,
           responses=errs(404))
    async def message(who: Reader, qid: QueueId) -> dict[str, Any]:
        return await message_detail(ctx, await ctx.store.get_message(qid))

    @r.get("/messages/{qid}/raw", summary="the raw message, as a download (never rendered)",
           responses=errs(404))
    async def raw(who: Reader, request: Request, qid: QueueId) -> Response:
        await ctx.store.get_message(qid)
        data = await read_body(ctx, qid)
        await ctx.auth.aaudit(who, "message.download", qid, "ok", None, remote(request))
        return raw_response(qid, data)

    @r.get("/queue", summary="the delivery queue", response_model=S.QueuePage)
    async def queue(
        who: Reader, limit: Limit = 50, offset: Offset = 0, q: SearchQ = None
    ) -> dict[str, Any]:
        entries = await queue_matching(ctx, search_text(q))
        items = []
        for e in entries[offset : offset + limit]:
            item: dict[str, Any] = {
                "queue_id": e.queue_id,
                "due": e.due,
                "attempts": e.attempts,
                "last_error": e.last_error,
                "leased_by": e.lease_owner if e.lease_expiry > time.time() else "",
            }
            try:
                rec = await ctx.store.get_message(e.queue_id)
                item.update(sender=rec.sender, size=rec.size, kind=rec.kind,
                            recipients=list(rec.pending_recipients),
                            received_at=rec.received_at, subject=subject(rec.summary),
                            attachments=attachments(rec.summary), verdict=rec.verdict,
                            findings=list(rec.findings))
            except NotFoundError:
                pass
            items.append(item)
        return page_json(items, len(entries), limit, offset)

    @r.post("/queue/retry", summary="make every queued message due now",
            response_model=S.RetryOut,
            responses=errs(403))
    async def retry_all(who: Reader, request: Request) -> Any:
        async def go() -> dict[str, int]:
            return {"retried": await ctx.actions.retry(None, actor=who.actor)}

        return await act(who, request, "queue.retry_all", "*", go)

    @r.post("/queue/{qid}/retry", summary="make one queued message due now",
            response_model=S.RetryOut,
            responses=errs(403, 404, 409))
    async def retry(who: Reader, request: Request, qid: QueueId) -> Any:
        async def go() -> dict[str, int]:
            return {"retried": await ctx.actions.retry(qid, actor=who.actor)}

        return await act(who, request, "queue.retry", qid, go)

    @r.post("/queue/{qid}/bounce", summary="give up: bounce the pending recipients (DSN)",
            response_model=S.ActionOut,
            responses=errs(403, 404, 409))
    async def bounce(who: Reader, request: Request, qid: QueueId) -> Any:
        async def go() -> ActionResult:
            return await ctx.actions.bounce(qid, actor=who.actor)

        return await act(who, request, "queue.bounce", qid, go)

    @r.get("/notices", summary="the notice log (newest first)", response_model=S.NoticePage)
    async def notices(who: Reader, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        entries = await ctx.store.notice_log(Page(limit=limit, offset=offset))
        total = (await ctx.notices.update(ctx.store)).total
        items = [
            {"provider": n.provider, "seq": n.seq, "kind": n.kind, "transport": n.transport,
             "result": n.result, "at": n.at, "detail": dict(n.detail)}
            for n in entries
        ]
        return page_json(items, total, limit, offset)

    @r.get("/database", summary="installed signature database: version, folders, age",
           response_model=S.DatabaseOut)
    async def database(who: Reader) -> dict[str, Any]:
        return await db_info(ctx.store, ctx.installed_version)

    @r.get("/config", summary="the effective configuration (read-only, secrets redacted)")
    async def config(who: Reader) -> dict[str, Any]:
        out: dict[str, Any] = redact(ctx.config)
        return out

    @r.get("/audit", summary="the admin audit log (newest first)", response_model=S.AuditPage)
    async def audit(who: Reader, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        entries, total = await ctx.auth.aaudit_log(limit, offset)
        return page_json([e.to_json() for e in entries], total, limit, offset)

    @r.get("/whoami", summary="the caller's token name and role", response_model=S.WhoAmI)
    async def whoami(who: Reader) -> dict[str, str]:
        return {"actor": who.actor, "token_id": who.token_id, "role": who.role.value}

    return r


# -- shared by API and web --------------------------------------------------------------------


async def queue_matching(ctx: AdminContext, text: str | None) -> list[QueueEntry]:
    """The delivery queue by due time; with `text`, only entries whose message matches it
    (one store search over queued mail, not a lookup per entry)."""
    entries = await all_queue(ctx.store)
    if text is not None:
        flt = MessageFilter(states=(MessageState.QUEUED,), text=text)
        hits = {r.queue_id for r in await ctx.store.list_messages(flt, Page(limit=BULK_MAX))}
        entries = [e for e in entries if e.queue_id in hits]
    entries.sort(key=lambda e: e.due)
    return entries


async def read_body(ctx: AdminContext, qid: str) -> bytes:
    if ctx.bodies is None:
        raise NotFoundError("no message bodies here")
    return await ctx.bodies.read(qid)


def raw_response(qid: str, data: bytes) -> Response:
    """The raw message only ever as a download, with a type no browser renders."""
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{qid}.eml"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


async def message_detail(ctx: AdminContext, rec: MessageRecord) -> dict[str, Any]:
    from zerohour.admin.matched import findings_by_layer, mark
    from zerohour.admin.parts import headers, part_tree

    out = message_json(rec)
    tags = set(rec.hold_tags)
    specs = [o.spec for o in await ctx.store.outbreaks(active_only=False)
             if o.spec.outbreak_id in tags]
    found = findings_by_layer(rec.summary, specs)
    out["matches"] = mark(None, found)
    out["summary"] = dict(rec.summary) if rec.summary else None
    out["events"] = [
        {"at": e.at, "state": e.state.value, "reason": e.reason, "actor": e.actor}
        for e in await ctx.store.events(rec.queue_id)
    ]
    out["body_available"] = False
    out["headers"] = []
    out["parts"] = None
    try:
        data = await read_body(ctx, rec.queue_id)
    except NotFoundError:
        return out
    out["body_available"] = True
    hdrs, tree = await asyncio.to_thread(lambda: (headers(data), part_tree(data)))
    out["headers"] = [{"name": k, "value": v} for k, v in hdrs]
    out["parts"] = tree.to_json()
    out["matches"] = mark(out["parts"], found)
    return out


async def bulk_action(
    ctx: AdminContext, state: MessageState, outbreak: str, action: str, actor: str
) -> dict[str, Any]:
    """Release or delete every message in `state` tagged with `outbreak`, one by one (each
    gets its own rescan and events); failures are counted, not fatal."""
    flt = MessageFilter(states=(state,), outbreak_id=outbreak)
    recs = await ctx.store.list_messages(flt, Page(limit=BULK_MAX))
    results: dict[str, int] = {}
    errors: list[dict[str, str]] = []
    for rec in recs:
        try:
            if action == "release":
                res = await ctx.actions.release(rec.queue_id, actor=actor)
            else:
                res = await ctx.actions.delete(rec.queue_id, actor=actor)
            results[res.state] = results.get(res.state, 0) + 1
        except ZerohourError as exc:
            errors.append({"queue_id": rec.queue_id, "error": str(exc)})
    return {"outbreak": outbreak, "action": action, "matched": len(recs), "results": results,
            "errors": errors}
