"""Durable gateway state: the `Store` protocol (base) and its SQLite implementation."""

from zerohour.store.base import Store
from zerohour.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store"]
