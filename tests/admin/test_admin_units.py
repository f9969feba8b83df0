"""One-layer unit tests: token store, sessions, metrics exposition, part tree bounds."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from zerohour.admin.auth import AuthStore, Principal, Role, SessionStore, check_csrf
from zerohour.admin.overview import Snapshot
from zerohour.admin.parts import MAX_NODES, part_tree
from zerohour.errors import AuthError, NotFoundError
from zerohour.metrics import (
    PROCESS_REGISTRY,
    SCAN_SECONDS,
    observe_clean_cache,
    observe_scan,
    render,
)


def test_tokens_hashed_roles_and_revocation(tmp_path: Path) -> None:
    auth = AuthStore(tmp_path)
    token, info = auth.create_token(Role.READ, "ops team")
    assert stat.S_IMODE((tmp_path / "admin.sqlite3").stat().st_mode) == 0o600
    assert token.startswith(f"zh_{info.id}_")
    assert token.split("_", 2)[2].encode() not in (tmp_path / "admin.sqlite3").read_bytes()
    who = auth.verify(token)
    assert who == Principal(info.id, "ops team", Role.READ)
    assert not who.can_act
    with pytest.raises(AuthError):
        auth.verify(token[:-1] + ("A" if token[-1] != "A" else "B"))  # wrong secret
    with pytest.raises(AuthError):
        auth.verify("not a token")
    auth.revoke(info.id)
    with pytest.raises(AuthError):
        auth.verify(token)
    with pytest.raises(NotFoundError):
        auth.revoke(info.id)  # already revoked
    with pytest.raises(AuthError):
        auth.create_token(Role.ADMIN, "<script>")


def test_bootstrap_writes_one_first_token(tmp_path: Path) -> None:
    auth = AuthStore(tmp_path)
    token = auth.bootstrap()
    assert token is not None
    path = tmp_path / "admin-token"
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.verify(token).role is Role.ADMIN
    assert auth.bootstrap() is None  # never again once a token exists


def test_sessions_new_id_each_time_expiry_and_csrf() -> None:
    who = Principal("abcd0123", "x", Role.ADMIN)
    store = SessionStore(idle=0.2, absolute=10)
    a, b = store.create(who), store.create(who)
    assert a.sid != b.sid
    assert a.csrf != b.csrf
    assert store.get(a.sid) is not None
    assert store.get("made-up") is None
    check_csrf(a, a.csrf)
    with pytest.raises(AuthError):
        check_csrf(a, b.csrf)
    with pytest.raises(AuthError):
        check_csrf(a, None)
    time.sleep(0.3)
    assert store.get(a.sid) is None  # idle too long
    store.drop_token("abcd0123")
    assert store.get(b.sid) is None


def _snap() -> Snapshot:
    return Snapshot(
        at=1000.0, counts={"held": 3, "delivered": 7}, held=3, held_oldest_age=42.0,
        quarantined=0, outbreaks=[], db={"version": "daily-1", "age_seconds": 60.0},
        queue_depth=2, queue_deferred=1, queue_retries=4,
        notices_by={("udp", "applied"): 2, ("udp", "replayed"): 1},
        notice_last={"udp": 990.0},
    )


def test_metrics_exposition_parses_and_has_every_family() -> None:
    before = SCAN_SECONDS._sum.get()  # type: ignore[attr-defined]
    observe_scan(0.02)
    observe_scan(-1)  # clamped, never a negative observation
    text = render(_snap()).decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("zerohour_messages", "zerohour_held_messages",
                 "zerohour_held_oldest_age_seconds", "zerohour_notices",
                 "zerohour_notice_last_applied_timestamp_seconds", "zerohour_db_info",
                 "zerohour_db_age_seconds", "zerohour_queue_depth", "zerohour_queue_retries",
                 "zerohour_scan_seconds"):
        assert name in fams, name
    held = {s.labels["state"]: s.value for s in fams["zerohour_messages"].samples}
    assert held["held"] == 3
    assert held["quarantined"] == 0
    notices = {(s.labels["transport"], s.labels["result"]): s.value
               for s in fams["zerohour_notices"].samples if s.name.endswith("_total")}
    assert notices == {("udp", "applied"): 2, ("udp", "replayed"): 1}
    assert fams["zerohour_held_oldest_age_seconds"].samples[0].value == 42.0
    assert SCAN_SECONDS._sum.get() == pytest.approx(before + 0.02)  # type: ignore[attr-defined]


def test_clean_cache_counts_take_only_what_a_worker_may_answer() -> None:
    """A scan worker's answer carries `[lookups, hits]`; a worker that misbehaves (it parses
    hostile files) must not make the counters fail, go back or take non-integers."""
    def counts() -> tuple[float, float]:
        fams = {f.name: f for f in text_string_to_metric_families(render(_snap()).decode())}
        return tuple(next(s.value for s in fams[name].samples if s.name.endswith("_total"))
                     for name in ("zerohour_scan_clean_cache_lookups",
                                  "zerohour_scan_clean_cache_hits"))  # type: ignore[return-value]

    before = counts()
    observe_clean_cache([5, 3])
    assert counts() == (before[0] + 5, before[1] + 3)
    for bad in (None, [1], [1, 2, 3], [-1, 0], [1.5, 0], ["1", "0"], [True, 0], {"a": 1}):
        observe_clean_cache(bad)
    assert counts() == (before[0] + 5, before[1] + 3)
    assert PROCESS_REGISTRY.get_sample_value("zerohour_scan_clean_cache_hits_total") == counts()[1]


def test_part_tree_is_bounded() -> None:
    parts = "".join(f"--B\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(800))
    raw = ("Subject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B"
           f"\r\n\r\n{parts}--B--\r\n").encode()
    tree = part_tree(raw)
    assert len(tree.children) == MAX_NODES  # the rest is cut, and said so
    assert tree.note == "part list truncated"


async def test_notice_tally_reads_only_new_entries(tmp_path: Path) -> None:
    from zerohour.admin.overview import NoticeTally
    from zerohour.store.base import NoticeLogEntry, Page
    from zerohour.store.sqlite import SqliteStore

    store = await SqliteStore.open(tmp_path / "s.sqlite3")
    try:
        for i in range(1500):  # more than one page
            await store.log_notice(NoticeLogEntry("lab", i, "heartbeat", "udp", "applied",
                                                  1000.0 + i))
        tally = NoticeTally()
        await tally.update(store)
        assert tally.total == 1500
        assert tally.last_applied == {"udp": 2499.0}
        reads: list[int] = []
        real = store.notice_log

        async def counting(page: Page) -> list[NoticeLogEntry]:
            reads.append(page.offset)
            return await real(page)

        store.notice_log = counting  # type: ignore[method-assign]
        await store.log_notice(NoticeLogEntry("lab", 1, "x", "stream", "bad_signature", 3000.0))
        await store.log_notice(NoticeLogEntry("lab", 2, "x", "stream", "applied", 3001.0))
        await tally.update(store)
        assert reads == [0]  # one page, not the whole log again
        assert tally.total == 1502
        assert tally.by[("stream", "bad_signature")] == 1
        assert tally.by[("udp", "applied")] == 1500
        assert tally.last_applied["stream"] == 3001.0
        await tally.update(store)
        assert tally.total == 1502  # nothing new, nothing counted twice
    finally:
        await store.aclose()
