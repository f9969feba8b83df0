"""Attack: getting held mail out of the hold while its outbreak is still active.

Each of these delivered a worm before: the maximum hold time released it with no outbreak in
the decision; an administrator's release ignored a checksum notice naming the sample; in
attachment-only hold a zip carrying the worm was kept in the stripped copy; a queued message
pulled back for an attachment hold never got its stripped copy; and an unnamed executable part
was outside an `attachments, types=executable` scope. The hold is only released by a verdict
that knows the outbreak.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import struct
import zipfile
from pathlib import Path
from typing import Any

from gateway.conftest import (
    Running,
    attachment_message,
    make_config,
    message,
    start_gateway,
    wait_for,
)
from zerohour.config import HoldExpiry
from zerohour.notices.model import Checksum, OutbreakMode, OutbreakSpec, Scope
from zerohour.store.base import MessageFilter, MessageState


def _pe(body: bytes) -> bytes:
    """A minimal PE (MZ header pointing at a PE signature): true type `executable`."""
    dos = bytearray(0x80)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    dos[0x40:0x44] = b"PE\x00\x00"
    return bytes(dos) + b"\x00" * 256 + body


WORM = _pe(b"zero-day worm body " * 40)
DECOY = _pe(b"decoy " * 20)
EXE_SCOPE = Scope(has_attachment=True, file_types=("executable",))


async def in_state(run: Running, state: MessageState) -> list[Any]:
    store = run.gw.store
    assert store is not None
    return await store.list_messages(MessageFilter(states=(state,)))


def checksum_spec(oid: str = "ob-sum") -> OutbreakSpec:
    digest = hashlib.sha256(WORM).hexdigest()
    return OutbreakSpec(
        oid, "Wormwave", OutbreakMode.CHECKSUM, Scope.everything(),
        (Checksum("sha256", digest, len(WORM)),),
    )


async def test_max_hold_expiry_never_delivers_while_the_outbreak_is_active(
    gateway: Running, sink: Any
) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-h", "Holdwave", scope=EXE_SCOPE))
    raw = attachment_message("worm", WORM, "invoice.exe")
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], raw) == {}
    assert len(await in_state(gateway, MessageState.HELD)) == 1
    # a checksum outbreak naming this exact sample arrives too
    await gateway.gw.outbreaks.declare(checksum_spec())
    for expiry in (HoldExpiry.RELEASE, HoldExpiry.QUARANTINE):
        n = await gateway.gw.releaser.expire_held(-1.0, expiry)
        if n:
            break
    await asyncio.sleep(0.3)
    assert sink.messages == []
    q = await in_state(gateway, MessageState.QUARANTINED)
    assert len(q) == 1
    assert "Outbreak.Wormwave.Checksum" in q[0].findings


async def test_expiry_release_quarantines_what_an_active_outbreak_still_holds(
    gateway: Running, sink: Any
) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-h", "Holdwave", scope=EXE_SCOPE))
    raw = attachment_message("worm", WORM, "invoice.exe")
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], raw) == {}
    assert await gateway.gw.releaser.expire_held(-1.0, HoldExpiry.RELEASE) == 1
    await asyncio.sleep(0.3)
    assert sink.messages == []
    q = await in_state(gateway, MessageState.QUARANTINED)
    assert len(q) == 1
    assert "maximum hold time" in q[0].reason


def test_default_expiry_policy_is_quarantine(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "127.0.0.1:1")
    assert cfg.hold.expiry is HoldExpiry.QUARANTINE


async def test_admin_release_still_obeys_a_checksum_outbreak(
    gateway: Running, sink: Any
) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-h", "Holdwave", scope=EXE_SCOPE))
    raw = attachment_message("worm", WORM, "invoice.exe")
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], raw) == {}
    qid = (await in_state(gateway, MessageState.HELD))[0].queue_id
    await gateway.gw.outbreaks.declare(checksum_spec())
    res = await gateway.gw.releaser.release_message(qid, actor="alice")
    assert res.state is MessageState.QUARANTINED
    await asyncio.sleep(0.3)
    assert sink.messages == []


async def test_admin_release_overrides_only_a_scope_hold(gateway: Running, sink: Any) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-h", "Holdwave", scope=EXE_SCOPE))
    raw = attachment_message("tool", WORM, "tool.exe")
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], raw) == {}
    qid = (await in_state(gateway, MessageState.HELD))[0].queue_id
    res = await gateway.gw.releaser.release_message(qid, actor="alice")
    assert res.state is MessageState.QUEUED
    got = await wait_for(lambda: sink.messages)
    assert got[0].header("X-Zerohour-Scan").startswith("clean, released by alice")


async def test_forced_release_is_not_stamped_clean(gateway: Running, sink: Any) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-all", "All"))
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], message("x")) == {}
    qid = (await in_state(gateway, MessageState.HELD))[0].queue_id
    await gateway.gw.releaser.release_message(qid, actor="bob", force=True)
    got = await wait_for(lambda: sink.messages)
    trace = got[0].header("X-Zerohour-Scan")
    assert trace.startswith("released by bob, not rescanned")
    assert "clean" not in trace


def unnamed_exe_message() -> bytes:
    """An executable in a part with no name and no Content-Disposition: clients still offer it."""
    b64 = base64.encodebytes(WORM).decode().replace("\n", "\r\n").rstrip()
    return (
        "From: a@sender.test\r\nTo: b@example.test\r\nSubject: unnamed\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--BB\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--BB--\r\n"
    ).encode()


async def test_unnamed_executable_part_is_in_an_executable_scope(
    gateway: Running, sink: Any
) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-h", "Holdwave", scope=EXE_SCOPE))
    assert await gateway.sendmail(
        "a@sender.test", ["b@example.test"], unnamed_exe_message()
    ) == {}
    assert len(await in_state(gateway, MessageState.HELD)) == 1
    await asyncio.sleep(0.3)
    assert sink.messages == []


def zip_with_worm_and_decoy() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "see the tool")
        z.writestr("tool.exe", WORM)
    zipped = base64.encodebytes(buf.getvalue()).decode().replace("\n", "\r\n").rstrip()
    decoy = base64.encodebytes(DECOY).decode().replace("\n", "\r\n").rstrip()
    return (
        "From: a@sender.test\r\nTo: b@example.test\r\nSubject: zipped\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\nthe body text\r\n"
        "--BB\r\nContent-Type: application/zip\r\n"
        "Content-Disposition: attachment; filename=docs.zip\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{zipped}\r\n"
        "--BB\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=decoy.exe\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{decoy}\r\n--BB--\r\n"
    ).encode()


def _no_worm_in(data: bytes) -> bool:
    needle = base64.b64encode(WORM)[:40]
    return needle not in data.replace(b"\r\n", b"") and b"tool.exe" not in data


async def test_attachment_hold_never_sends_a_zip_carrying_the_worm(
    tmp_path: Path, sink: Any
) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"hold.mode": "attachments"})
    )
    try:
        await run.gw.outbreaks.declare(OutbreakSpec("ob-a", "Att", scope=EXE_SCOPE))
        raw = zip_with_worm_and_decoy()
        assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        got = await wait_for(lambda: sink.messages, timeout=5)
        for m in got:
            assert _no_worm_in(m.data)
        assert len(await in_state(run, MessageState.HELD)) == 1
    finally:
        await run.gw.stop()


async def test_queued_mail_pulled_into_attachment_hold_gets_its_stripped_copy(
    tmp_path: Path, sink: Any
) -> None:
    sink.stop()
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"hold.mode": "attachments"})
    )
    try:
        raw = attachment_message("early", WORM, "invoice.exe")
        assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        await run.gw.outbreaks.declare(OutbreakSpec("ob-a", "Att", scope=EXE_SCOPE))
        await asyncio.to_thread(sink.start)
        store = run.gw.store
        assert store is not None
        await store.retry_now(None, 1e12)
        got = await wait_for(lambda: sink.messages)
        assert len(got) == 1
        assert got[0].header("X-Zerohour-Held-Attachments") is not None
        assert _no_worm_in(got[0].data)
        assert len(await in_state(run, MessageState.HELD)) == 1
    finally:
        await run.gw.stop()
