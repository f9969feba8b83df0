"""Outbreaks for tests of a running gateway: recorded in its SQLite store, as the notice
listeners do (the gateway sees the store change within its watch interval)."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from pathlib import Path

from helpers.messages import clean_message
from zerohour.notices.model import OutbreakSpec
from zerohour.store.sqlite import SqliteStore


def declare(data_dir: Path, spec: OutbreakSpec) -> None:
    async def go() -> None:
        store = await SqliteStore.open(data_dir / "zerohour.sqlite3")
        try:
            await store.save_outbreak(spec, time.time())
        finally:
            await store.aclose()

    asyncio.run(go())


def with_zip(subject: str) -> EmailMessage:
    """A clean message with an (empty) zip attachment: what a has_attachment scope holds."""
    msg = clean_message(subject=subject)
    msg.add_attachment(
        b"PK\x05\x06" + bytes(18), maintype="application", subtype="zip", filename="a.zip"
    )
    return msg
