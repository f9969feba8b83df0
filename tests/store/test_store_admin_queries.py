"""The store's admin read queries, on every backend (SQLite and PostgreSQL, conftest.py):
search by Subject / attachment name (`MessageFilter.text`) and an outbreak's event trail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from zerohour.store.base import (
    MessageFilter,
    MessageRecord,
    MessageState,
    Recipient,
    Store,
)

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[Store]:
    s = await opener()
    try:
        yield s
    finally:
        await s.aclose()


def rec(
    qid: str,
    summary: dict[str, Any] | None,
    state: MessageState = MessageState.HELD,
    at: float = 1000.0,
    tags: tuple[str, ...] = (),
) -> MessageRecord:
    return MessageRecord(
        queue_id=qid,
        sender="a@x.test",
        recipients=(Recipient("b@example.test"),),
        size=10,
        received_at=at,
        state=state,
        summary=summary,
        hold_tags=tags,
    )


def summary(subject: str, *names: str) -> dict[str, Any]:
    return {
        "size": 10,
        "db_version": "v1",
        "subject": subject,
        "attachments": [[f"mail/{n}", n, "zip", 5] for n in names],
    }


async def _ids(store: Store, text: str, *states: MessageState) -> set[str]:
    flt = MessageFilter(states=states, text=text)
    got = {r.queue_id for r in await store.list_messages(flt)}
    assert await store.count_messages(flt) == len(got)
    return got


async def test_text_filter_matches_subject_or_attachment_name(store: Store) -> None:
    await store.add_message(rec("A1", summary("Quarterly INVOICE", "report.pdf")), reason="h")
    await store.add_message(rec("A2", summary("hello", "Invoice_2024.ZIP", "x.exe")), reason="h")
    await store.add_message(rec("A3", summary("Grüße aus Köln")), reason="h")
    await store.add_message(rec("A4", None), reason="h")  # not scanned: no summary at all
    await store.add_message(rec("A5", {"size": 10}), reason="h")  # an older summary
    await store.add_message(rec("Q1", summary("invoice", "i.zip"), MessageState.QUEUED), reason="q")

    assert await _ids(store, "invoice", MessageState.HELD) == {"A1", "A2"}
    assert await _ids(store, "invoice") == {"A1", "A2", "Q1"}
    assert await _ids(store, "X.EXE", MessageState.HELD) == {"A2"}
    assert await _ids(store, "report", MessageState.HELD) == {"A1"}
    assert await _ids(store, "KÖLN", MessageState.HELD) == {"A3"}  # not only ASCII folds
    assert await _ids(store, "zip", MessageState.HELD) == {"A2"}  # a name, not the true type
    assert await _ids(store, "nothing like it", MessageState.HELD) == set()
    # a LIKE wildcard is a plain character here
    assert await _ids(store, "%", MessageState.HELD) == set()
    assert await _ids(store, "_", MessageState.HELD) == {"A2"}


async def test_outbreak_events_returns_the_trail_of_each_message_it_touched(
    store: Store,
) -> None:
    await store.add_message(
        rec("H1", None, at=1.0, tags=("ob-1",)), reason="held for outbreak ob-1"
    )
    await store.transition(
        "H1",
        MessageState.QUEUED,
        reason="released by notice: clean",
        actor="notice",
        hold_tags=(),
        queue_due=5.0,
    )
    await store.add_message(
        rec("H2", None, at=2.0, tags=("ob-1",)), reason="held for outbreak ob-7, ob-1"
    )
    await store.add_message(
        rec("C1", None, MessageState.QUARANTINED, at=3.0, tags=("ob-1",)),
        reason="outbreak ob-1 checksum match",
    )
    # tagged with it now, though no reason names it (an attachment-hold copy's first event)
    await store.add_message(rec("T1", None, at=4.0, tags=("ob-1",)), reason="copy of H1")
    await store.add_message(
        rec("N1", None, at=5.0, tags=("ob-2",)), reason="held for outbreak ob-2"
    )
    await store.add_message(rec("D1", None, MessageState.QUEUED, at=6.0), reason="clean")

    events = await store.outbreak_events("ob-1")
    assert {e.queue_id for e in events} == {"H1", "H2", "C1", "T1"}
    assert [e.state for e in events if e.queue_id == "H1"] == [
        MessageState.HELD,
        MessageState.QUEUED,
    ]
    assert [e.queue_id for e in events][:1] == ["H1"]  # oldest first
    assert len(await store.outbreak_events("ob-1", limit=2)) == 2
    assert await store.outbreak_events("ob-nothing") == []
