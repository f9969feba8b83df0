"""An outbreak's timeline and counts: from a real gateway's hold and release over the REST API,
and the reading of the audit trail on a real store (quarantined on rescan, still held, an id
that is a prefix of another's)."""

from __future__ import annotations

import time
from pathlib import Path

from admin.conftest import AdminEnv, message, wait_for
from admin.test_admin_web_auth import login
from zerohour.admin.timeline import names_outbreak, outbreak_timeline
from zerohour.notices.model import OutbreakSpec
from zerohour.store.base import MessageRecord, MessageState, NoticeLogEntry, Recipient
from zerohour.store.sqlite import SqliteStore

API = "/api/v1"


async def test_timeline_of_a_hold_and_its_release(admin_env: AdminEnv) -> None:
    env = admin_env
    await env.declare("ob-7", "Invoice.Worm")
    for i in range(3):
        await env.sendmail(message(f"held {i}"))
    ids = await env.held_ids(3)
    async with env.client(env.admin_token) as c:
        r = await c.post(f"{API}/held/{ids[0]}/delete")
        assert r.status_code == 200
        # nothing covered it yet: no signatures, not ended, nothing released but the delete
        tl = (await c.get(f"{API}/outbreaks/ob-7/timeline")).json()
        assert tl["counts"] == {
            "held": 3,
            "released_clean": 0,
            "quarantined": 0,
            "deleted": 1,
            "still_held": 2,
            "checksum_quarantined": 0,
        }
        steps = {s["step"]: s for s in tl["steps"]}
        assert steps["signatures_installed"]["at"] is None
        assert steps["ended"]["at"] is None

    # the provider's signatures cover it: the notice is logged, the outbreak ends, mail released
    covered_at = time.time()
    await env.store.log_notice(
        NoticeLogEntry(
            "lab",
            9,
            "signatures.published",
            "stream",
            "applied",
            covered_at,
            {"version": 42, "covers": ["ob-7"]},
        )
    )
    await env.gw.outbreaks.end("ob-7", "covered by signatures 42")
    await env.gw.releaser.release_outbreak("ob-7", actor="notice")
    await wait_for(lambda: len(env.sink.messages) == 2)

    async with env.client(env.read_token) as c:
        tl = (await c.get(f"{API}/outbreaks/ob-7/timeline")).json()
        assert tl["active"] is False
        assert tl["counts"] == {
            "held": 3,
            "released_clean": 2,
            "quarantined": 0,
            "deleted": 1,
            "still_held": 0,
            "checksum_quarantined": 0,
        }
        steps = [(s["step"], s["at"] is not None) for s in tl["steps"]]
        assert steps == [
            ("declared", True),
            ("first_held", True),
            ("signatures_installed", True),
            ("ended", True),
            ("last_released", True),
        ]
        at = {s["step"]: s["at"] for s in tl["steps"]}
        assert at["declared"] <= at["first_held"] <= at["signatures_installed"]
        assert at["signatures_installed"] <= at["ended"] <= at["last_released"]
        assert "42" in next(s["detail"] for s in tl["steps"] if s["step"] == "signatures_installed")
        assert (await c.get(f"{API}/outbreaks/nope/timeline")).status_code == 404
        r = await c.get(f"{API}/outbreaks/{'x' * 65}/timeline")
        assert r.status_code == 422
    async with env.client() as c:
        await login(c, env.admin_token)
        page = (await c.get("/outbreaks/ob-7")).text
        assert 'data-step="signatures_installed"' in page
        assert "signature bundle 42" in page
        assert (await c.get("/outbreaks/nope")).status_code == 404
        assert "/outbreaks/ob-7" in (await c.get("/outbreaks")).text


def test_reasons_name_outbreaks_exactly() -> None:
    assert names_outbreak("held for outbreak ob-1", "ob-1") == "held"
    assert names_outbreak("held for outbreak ob-10, ob-2", "ob-1") == ""
    assert names_outbreak("rescan with db 5: still held for outbreak ob-2, ob-1", "ob-1") == "held"
    assert names_outbreak("outbreak ob-1 checksum match", "ob-1") == "checksum"
    assert names_outbreak("outbreak ob-10 checksum match", "ob-1") == ""
    assert names_outbreak("released by admin:a: clean with db 5", "ob-1") == ""


async def test_counts_from_the_audit_trail(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.sqlite3")
    try:
        await store.save_outbreak(OutbreakSpec("ob-1", "W"), 100.0)

        def rec(qid: str, state: MessageState, tags: tuple[str, ...]) -> MessageRecord:
            return MessageRecord(qid, "a@x", (Recipient("b@y"),), 1, 110.0, state, hold_tags=tags)

        held = MessageState.HELD
        await store.add_message(rec("A", held, ("ob-1",)), reason="held for outbreak ob-1")
        await store.transition(
            "A",
            MessageState.QUARANTINED,
            actor="notice",
            hold_tags=(),
            reason="rescan with db 9: infected: Worm.W",
        )
        await store.add_message(rec("B", held, ("ob-1",)), reason="held for outbreak ob-1")
        await store.add_message(rec("C", held, ("ob-10",)), reason="held for outbreak ob-10")
        await store.add_message(
            rec("D", MessageState.QUARANTINED, ("ob-1",)), reason="outbreak ob-1 checksum match"
        )
        await store.add_message(
            rec("E", held, ("ob-1", "ob-2")), reason="held for outbreak ob-2, ob-1"
        )
        await store.transition(
            "E",
            held,
            actor="notice",
            hold_tags=("ob-2",),
            reason="rescan with db 9: still held for outbreak ob-2",
        )
        tl = await outbreak_timeline(store, "ob-1")
        assert tl["counts"] == {
            "held": 3,
            "released_clean": 0,
            "quarantined": 1,
            "deleted": 0,
            "still_held": 2,
            "checksum_quarantined": 1,
        }
        assert tl["steps"][0] == {"step": "declared", "at": 100.0, "detail": "W"}
    finally:
        await store.aclose()
