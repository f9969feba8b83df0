"""Where verified notices take effect: the `OutbreakSink` Protocol and an in-memory sink.

The verifier decides *whether* a notice applies; a sink decides *what it does*. Each effect
method receives the notice's `Receipt`, and a durable sink must commit the receipt (the new
`last_seq`, the payload digest, the transport) in the **same transaction** as the effect: seq and
state move together, so a crash can neither apply a notice twice nor skip one.
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


@dataclass
class MemorySink:
    """An in-memory `OutbreakSink`: the reference behaviour and the unit-test fake."""

    outbreaks: dict[str, OutbreakSpec] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)
    published: list[SignaturesPublished] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    receipts: list[Receipt] = field(default_factory=list)
    fail_next: bool = False

    async def load_ledger(self) -> Ledger:
        return self.ledger

    def _commit(self, receipt: Receipt, **changes: object) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("sink failure (test)")
        digests = dict(self.ledger.digests)
        if receipt.type.logged:
            digests[receipt.seq] = receipt.digest
        rotations = self.ledger.rotations
        if isinstance(changes.get("rotation"), KeyRotated):
            rotations = (*rotations, changes["rotation"])  # type: ignore[arg-type]
        sig_version = changes.get("signatures_version", self.ledger.signatures_version)
        assert isinstance(sig_version, int)
        self.ledger = Ledger(
            max(self.ledger.last_seq, receipt.seq), digests, rotations, sig_version
        )
        self.receipts.append(receipt)

    async def declare(self, spec: OutbreakSpec, receipt: Receipt) -> None:
        self._commit(receipt)
        self.outbreaks[spec.outbreak_id] = spec

    async def update(self, spec: OutbreakSpec, receipt: Receipt) -> None:
        self._commit(receipt)
        self.outbreaks[spec.outbreak_id] = spec

    async def end(self, outbreak_id: str, reason: str, receipt: Receipt) -> None:
        self._commit(receipt)
        if self.outbreaks.pop(outbreak_id, None) is not None:
            self.ended.append((outbreak_id, reason))

    async def signatures_published(self, published: SignaturesPublished, receipt: Receipt) -> None:
        self._commit(receipt, signatures_version=published.version)
        self.published.append(published)
        for oid in published.covers:
            if self.outbreaks.pop(oid, None) is not None:
                self.ended.append((oid, f"covered by signatures {published.version}"))

    async def key_rotated(self, rotation: KeyRotated, receipt: Receipt) -> None:
        self._commit(receipt, rotation=rotation)

    async def converge(self, state: ProviderState, receipt: Receipt) -> None:
        newer = state.signatures is not None and (
            state.signatures_version > self.ledger.signatures_version
        )
        version = max(self.ledger.signatures_version, state.signatures_version)
        self._commit(receipt, signatures_version=version)
        if newer and state.signatures is not None:
            self.published.append(state.signatures)
        for oid in list(self.outbreaks):
            if oid not in state.active:
                del self.outbreaks[oid]
                self.ended.append((oid, "converged"))
        for spec in state.outbreaks:
            self.outbreaks[spec.outbreak_id] = spec

    async def skip(self, receipt: Receipt, reason: str) -> None:
        self._commit(receipt)
