"""What the admin app needs from the gateway, as one value: `AdminContext`.

The admin app never changes message state by itself: release, delete, retry and bounce go through
`AdminActions`, whose gateway implementation (`GatewayActions`) calls the gateway's own
`Releaser` (rescan, audit events) and delivery queue, exactly as the CLI does. Tests and other
hosts can pass any object with the same methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zerohour.admin.auth import AuthStore, SessionStore
from zerohour.admin.overview import NoticeTally
from zerohour.errors import StoreError
from zerohour.store.base import MessageState, RecipientStatus, Store

if TYPE_CHECKING:
    from zerohour.config import Config
    from zerohour.gateway.deliver import DeliveryQueue
    from zerohour.gateway.outbreak.release import Releaser
    from zerohour.gateway.outbreak.state import OutbreakState
    from zerohour.store.bodies import BodyStore


class RunningGateway(Protocol):
    """What the admin surfaces use of a started gateway (`gateway.app.Gateway` is one): the
    admin package never imports the gateway's wiring, the composition root hands it over."""

    cfg: Config
    store: Store | None
    bodies: BodyStore
    outbreaks: OutbreakState
    releaser: Releaser
    queue: DeliveryQueue


@dataclass(frozen=True, slots=True)
class ActionResult:
    queue_id: str
    state: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"queue_id": self.queue_id, "state": self.state, "reason": self.reason}


class AdminActions(Protocol):
    """Message actions an administrator can take (each one appends the message's events)."""

    async def release(self, queue_id: str, *, actor: str, force: bool = False) -> ActionResult:
        """Rescan (unless `force`) and deliver a held or quarantined message."""

    async def delete(self, queue_id: str, *, actor: str) -> ActionResult: ...

    async def retry(self, queue_id: str | None, *, actor: str) -> int:
        """Make one (None: every) queued message due now; returns how many."""

    async def bounce(self, queue_id: str, *, actor: str) -> ActionResult:
        """Give up on a queued message: its pending recipients bounce (DSN to the sender)."""


def _secretish(key: str) -> bool:
    k = key.lower()
    return any(w in k for w in ("password", "secret", "token", "private", "credential")) or (
        k.endswith("_key") or k == "key"
    )


def redact(obj: Any) -> Any:
    """A copy of a JSON-like config with every secret-looking value replaced."""
    if isinstance(obj, Mapping):
        return {
            str(k): ("***redacted***" if _secretish(str(k)) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    return obj


@dataclass(frozen=True)
class AdminContext:
    """Everything the admin API, dashboard and metrics read or call."""

    store: Store
    data_dir: Path
    config: Mapping[str, Any]  # plain config (Config.to_dict()); redacted before it is shown
    actions: AdminActions
    auth: AuthStore
    bodies: BodyStore | None = None  # message bodies (spool folder, or the cluster database)
    installed_version: Callable[[], str] = lambda: ""
    sessions: SessionStore = field(default_factory=SessionStore)
    notices: NoticeTally = field(default_factory=NoticeTally)
    started_at: float = field(default_factory=time.time)
    secure_cookies: bool = False  # set True behind TLS: cookies get the Secure flag

    @classmethod
    def from_gateway(cls, gw: RunningGateway, **kwargs: Any) -> AdminContext:
        """The context for a started `Gateway` (call after `gw.start()`)."""
        assert gw.store is not None, "start the gateway first"
        return cls(
            store=gw.store,
            data_dir=gw.cfg.data_dir,
            config=gw.cfg.to_dict(),
            actions=GatewayActions(gw),
            auth=AuthStore(gw.cfg.data_dir),
            bodies=_bodies(gw),
            installed_version=lambda: gw.outbreaks.installed_version,
            **kwargs,
        )


def _bodies(gw: RunningGateway) -> BodyStore:
    """Where the gateway keeps bodies (its spool folder, or the cluster database)."""
    return gw.bodies


class GatewayActions:
    """`AdminActions` on a running `Gateway`: its releaser, its queue, its spool."""

    def __init__(self, gw: RunningGateway) -> None:
        self.gw = gw

    @property
    def _store(self) -> Store:
        assert self.gw.store is not None
        return self.gw.store

    async def release(self, queue_id: str, *, actor: str, force: bool = False) -> ActionResult:
        res = await self.gw.releaser.release_message(queue_id, force=force, actor=actor)
        return ActionResult(res.queue_id, res.state.value, res.reason)

    async def delete(self, queue_id: str, *, actor: str) -> ActionResult:
        await self.gw.releaser.delete_message(queue_id, actor=actor)
        return ActionResult(queue_id, MessageState.DELETED.value, f"deleted by {actor}")

    async def retry(self, queue_id: str | None, *, actor: str) -> int:
        if queue_id is not None:
            rec = await self._store.get_message(queue_id)
            if rec.state is not MessageState.QUEUED:
                raise StoreError(f"message {queue_id} is {rec.state.value}: not in the queue")
        n = await self._store.retry_now(queue_id, time.time())
        self.gw.queue.wake()
        return n

    async def bounce(self, queue_id: str, *, actor: str) -> ActionResult:
        """The same steps as a permanent failure (recipients bounced, the queue's DSN to the
        sender, message final, body removed), refused while a delivery holds the lease."""

        store = self._store
        rec = await store.get_message(queue_id)
        if rec.state is not MessageState.QUEUED:
            raise StoreError(f"message {queue_id} is {rec.state.value}: not in the queue")
        entry = await store.queue_entry(queue_id)
        now = time.time()
        if entry is not None and entry.lease_owner and entry.lease_expiry > now:
            raise StoreError(f"message {queue_id} is being delivered right now; try again")
        why = f"bounced by {actor}"
        failed = {r: why for r in rec.pending_recipients}
        # the state change first (it fails if the queue got there before us), then the DSN
        await store.transition(
            queue_id,
            MessageState.BOUNCED,
            reason=why,
            actor=actor,
            expect=(MessageState.QUEUED,),
            queue_due=None,
        )
        await store.set_recipients(
            queue_id, {r: (RecipientStatus.BOUNCED, why) for r in failed}
        )
        if failed and rec.kind == "mail":
            await self.gw.queue.send_dsn(rec, failed, actor=actor)
        await _bodies(self.gw).delete(queue_id)
        return ActionResult(queue_id, MessageState.BOUNCED.value, why)
