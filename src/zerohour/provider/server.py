"""The provider's HTTP service: SSE stream, poll, signed state, subscriptions, bundles.

A watcher task reads new log entries (written by this process or by lab commands in another
process on the same data folder) as soon as the appender's wake datagram arrives
(`provider.wake`), wakes every stream, and pushes each new notice once over UDP and e-mail
(`pushed_seq` is durable, so a restart resumes pushing). It also re-reads the log every
`watch_interval` (1 s), in case a wake was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from zerohour.notices.bundle import MANIFEST_NAME
from zerohour.notices.envelope import MAX_DATAGRAM, too_deep
from zerohour.provider.log import Provider, Subscription, SubscriptionRefused
from zerohour.provider.push import Pusher, parse_hostport
from zerohour.provider.targets import PushPolicy, TargetRefused
from zerohour.provider.wake import WakeListener

log = logging.getLogger("zerohour.provider")
T = TypeVar("T")
_CACHE = 2000
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ADDR = re.compile(r"^[^\s@<>()\[\],;:\"]{1,64}@[A-Za-z0-9.-]{1,253}$")


class ProviderService:
    def __init__(
        self,
        data_dir: Path,
        *,
        name: str | None = None,
        heartbeat: float = 30.0,
        watch_interval: float = 1.0,
        smtp_relay: tuple[str, int] | None = None,
        policy: PushPolicy | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.heartbeat = heartbeat
        self.watch_interval = watch_interval
        # SQLite connections are per thread: one worker thread owns this process's connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provider-db")
        self.provider = Provider(data_dir, name=name)
        self.policy = policy or PushPolicy()
        self.pusher = Pusher(self.provider.name, smtp_relay, self.policy)
        self._changed: asyncio.Future[None] | None = None  # resolved when the head moves
        self._head = 0
        self._cache: dict[int, bytes] = {}
        self._hb: tuple[float, int, bytes] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.waker = WakeListener(data_dir, self._wake.set)
        self.app = Starlette(
            routes=[
                Route("/v1/notices", self.notices),
                Route("/v1/notices/stream", self.stream),
                Route("/v1/state", self.state),
                Route("/v1/subscriptions", self.subscribe, methods=["POST"]),
                Route("/v1/signatures/latest", self.latest),
                Route("/v1/signatures/{version:int}/{name}", self.bundle_file),
                Route("/v1/key", self.key),
            ],
            lifespan=self._lifespan,
        )

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- lifecycle ----------------------------------------------------------------------------
    def _lifespan(self, app: Starlette) -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def span(_: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.aclose()

        return span(app)

    async def start(self) -> None:
        # Rebind the connection to the worker thread.
        self.provider.close()
        self.provider = await self._db(Provider, self.data_dir)
        await self.pusher.start()
        self.waker.start()  # bound before the head is read: no append falls in between
        self._head = await self._db(self.provider.head)
        self._watcher = asyncio.create_task(self._watch())

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        self.waker.close()
        await self.pusher.aclose()
        await self._db(self.provider.close)
        self._executor.shutdown(wait=False)

    async def _watch(self) -> None:
        while True:
            self._wake.clear()  # a wake that arrives while we read starts another round
            try:
                await self._catch_up()
            except Exception:
                log.exception("provider.watch_failed")
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                # cancellation that arrives as the event is set, and aclose() waited forever
                async with asyncio.timeout(self.watch_interval):
                    await self._wake.wait()

    async def _catch_up(self) -> None:
        head = await self._db(self.provider.head)
        if head > self._head:
            for seq, env in await self._db(self.provider.after, self._head, _CACHE):
                self._cache[seq] = env
            for old in sorted(self._cache)[:-_CACHE]:
                del self._cache[old]
            self._head = head
            if self._changed is not None and not self._changed.done():
                self._changed.set_result(None)
            self._changed = None
        pushed = await self._db(self.provider.pushed_seq)
        if pushed < head:
            subs = await self._db(self.provider.subscriptions)
            for seq, env in await self._db(self.provider.after, pushed, 500):
                # the hint is signed only for a notice too large for one datagram
                hint = b""
                if len(env) > MAX_DATAGRAM:
                    hint = await self._db(self.provider.poll_hint, seq - 1)
                self.pusher.push(seq, env, hint, subs)
                pushed = seq
            await self._db(self.provider.mark_pushed, pushed)

    async def _after(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        if self._cache and after >= min(self._cache) - 1:
            seqs = sorted(s for s in self._cache if s > after)[:limit]
            return [(s, self._cache[s]) for s in seqs]
        return await self._db(self.provider.after, after, limit)

    async def _heartbeat(self) -> bytes:
        now = time.monotonic()
        if self._hb is None or self._hb[1] != self._head or now - self._hb[0] > self.heartbeat / 2:
            self._hb = (now, self._head, await self._db(self.provider.heartbeat))
        return self._hb[2]

    # -- routes -------------------------------------------------------------------------------
    @staticmethod
    def _after_param(request: Request) -> int:
        try:
            return max(0, int(request.query_params.get("after", "0")))
        except ValueError:
            return -1

    async def notices(self, request: Request) -> Response:
        after = self._after_param(request)
        try:
            limit = min(500, max(1, int(request.query_params.get("limit", "100"))))
        except ValueError:
            limit = -1
        if after < 0 or limit < 0:
            return JSONResponse({"error": "after and limit must be integers"}, status_code=400)
        rows = await self._after(after, limit)
        body = b'{"notices":[' + b",".join(env for _, env in rows) + b"]}"
        return Response(body, media_type="application/json")

    async def stream(self, request: Request) -> Response:
        after = self._after_param(request)
        if after < 0:
            return JSONResponse({"error": "after must be an integer"}, status_code=400)

        async def events() -> AsyncIterator[bytes]:
            nonlocal after
            yield b": zerohour notice stream\n\n"
            while True:
                rows = await self._after(after, 500)
                for seq, env in rows:
                    yield b"id: %d\ndata: %s\n\n" % (seq, env)
                    after = seq
                if len(rows) == 500:
                    continue
                if self._head > after:
                    continue
                if self._changed is None:
                    self._changed = asyncio.get_running_loop().create_future()
                try:
                    await asyncio.wait_for(asyncio.shield(self._changed), self.heartbeat)
                except TimeoutError:
                    yield b"event: heartbeat\ndata: %s\n\n" % await self._heartbeat()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def state(self, request: Request) -> Response:
        env = await self._db(self.provider.signed_state)
        return Response(env, media_type="application/json", headers={"Cache-Control": "no-store"})

    async def key(self, request: Request) -> Response:
        """Convenience only: gateways must pin the key out of band, never trust this answer."""
        pinned = await self._db(self.provider.current_key)
        return Response(pinned.text() + "\n", media_type="text/plain")

    async def subscribe(self, request: Request) -> Response:
        """Create or replace one gateway's subscription (docs/notices.md, "Subscriptions").

        401: no or unknown credential; 403: revoked credential, a target the push policy
        refuses, or a gateway id held by another credential; 400: a malformed request."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _error(401, "missing credential: Authorization: Bearer <gateway token>")
        found = await self._db(self.provider.credential, auth[7:].strip())
        if found is None:
            return _error(401, "unknown credential")
        credential, revoked = found
        if revoked:
            return JSONResponse({"error": "credential revoked"}, status_code=403)
        declared = request.headers.get("content-length") or "0"
        if not declared.isdigit() or int(declared) > 4096:
            return JSONResponse({"error": "body too large"}, status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 4096:
                return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            obj = None if too_deep(body) else json.loads(body)
        except ValueError:
            obj = None
        names = ("gateway_id", "udp", "control_address", "smtp")
        if not isinstance(obj, dict) or set(obj) - set(names):
            return _error(400, "body: a JSON object with gateway_id, udp, control_address, smtp")
        gid, udp, addr, smtp = (obj.get(k) for k in names)
        if not all(v is None or isinstance(v, str) for v in (gid, udp, addr, smtp)):
            return _error(400, "every field is a string")
        if gid is None:
            return _error(400, "gateway_id is required (the keyid of the gateway's key)")
        if udp is None and addr is None:
            return _error(400, "give udp or control_address")
        if smtp is not None and addr is None:
            return _error(400, "smtp needs control_address")
        if addr is not None and not _ADDR.match(addr):
            return _error(400, "control_address is not an address")
        source = request.client.host if request.client is not None else ""
        try:
            target = None
            if udp is not None:
                host, port = parse_hostport(udp)
                target = self.policy.udp_target(host, port, source)
            if smtp is not None:
                await self.policy.explicit_smtp(*parse_hostport(smtp, default_port=25))
        except TargetRefused as exc:
            log.warning("provider.subscription_refused credential=%s: %s", credential, exc)
            return _error(403, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        sub = Subscription(gid, target, addr, smtp, credential, source)
        try:
            replaced = await self._db(self.provider.subscribe, sub)
        except SubscriptionRefused as exc:
            return _error(403, str(exc))
        log.info(
            "provider.subscribed gateway=%s credential=%s udp=%s control=%s smtp=%s replaced=%s",
            gid[:16],
            credential,
            target,
            addr,
            smtp or "mx",
            replaced,
        )
        answer = {"id": gid, "udp": target, "control_address": addr, "smtp": smtp}
        return JSONResponse({**answer, "replaced": replaced}, status_code=200 if replaced else 201)

    async def latest(self, request: Request) -> Response:
        latest = await self._db(self.provider.latest_bundle)
        if latest is None:
            return JSONResponse({"error": "no bundle published"}, status_code=404)
        return JSONResponse(latest.to_json())

    async def bundle_file(self, request: Request) -> Response:
        version = int(request.path_params["version"])
        name = str(request.path_params["name"])
        if not _FILE.match(name):
            return JSONResponse({"error": "not found"}, status_code=404)
        path = self.data_dir / "bundles" / str(version) / name
        if not path.is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        media = "application/json" if name == MANIFEST_NAME else "application/octet-stream"
        return FileResponse(path, media_type=media)


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="zerohour"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(
    service: ProviderService, host: str, port: int, ready: Callable[[str], None]
) -> None:
    sock = bind(host, port)
    bound = sock.getsockname()
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
    config = uvicorn.Config(
        service.app,
        log_level="warning",
        log_config=None,  # our handler and format (text or JSON), not uvicorn's
        timeout_graceful_shutdown=1,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes only a flag)
            await asyncio.sleep(0.02)
        ready(url)

    task = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        task.cancel()
