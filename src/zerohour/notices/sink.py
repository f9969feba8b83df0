"""Where verified notices take effect: the `OutbreakSink` Protocol, `Receipt` and `Ledger`.

This is the interface between the verifier (`notices.verify`, the rules every gateway keeps) and
whatever holds a gateway's outbreak state; it lives in `notices/` so that the verifier imports
nothing from the gateway. The verifier decides *whether* a notice applies; a sink decides *what
it does*. Each effect method receives the notice's `Receipt`, and a durable sink must commit the
receipt (the new `last_seq`, the payload digest, the transport) in the **same transaction** as
the effect: seq and state move together, so a crash can neither apply a notice twice nor skip
one. The test fake `MemorySink` lives in `tests/notices/support.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import KeyRotated, NoticeType, ProviderState, SignaturesPublished


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the sink records with an effect. For `converge`, `seq` is the state's `state_seq`."""

    seq: int
    digest: str
    type: NoticeType
    keyid: str
    transport: str


@dataclass(frozen=True, slots=True)
class Ledger:
    """The verifier's durable memory, loaded once at start-up from the sink."""

    last_seq: int = 0
    digests: dict[int, str] = field(default_factory=dict)
    rotations: tuple[KeyRotated, ...] = ()
    signatures_version: int = 0


class OutbreakSink(Protocol):
    """The gateway's outbreak state as the notice verifier drives it.

    Raising from an effect method means "not applied": the receipt is not committed, the
    verifier does not advance, and the notice is applied again when it next arrives (a poll).
    """

    async def load_ledger(self) -> Ledger: ...

    async def declare(self, spec: OutbreakSpec, receipt: Receipt) -> None: ...

    async def update(self, spec: OutbreakSpec, receipt: Receipt) -> None: ...

    async def end(self, outbreak_id: str, reason: str, receipt: Receipt) -> None: ...

    async def signatures_published(self, published: SignaturesPublished, receipt: Receipt) -> None:
        """Fetch, verify and install the bundle (see `notices.bundle`), then release."""
        ...

    async def key_rotated(self, rotation: KeyRotated, receipt: Receipt) -> None: ...

    async def converge(self, state: ProviderState, receipt: Receipt) -> None:
        """Make active outbreaks equal `state.outbreaks` (declare, update, end) and install
        `state.signatures` if newer than the installed version."""
        ...

    async def skip(self, receipt: Receipt, reason: str) -> None:
        """Advance past an authentic, in-order notice whose effect is refused (e.g. a
        signatures version not newer than the installed one)."""
        ...
