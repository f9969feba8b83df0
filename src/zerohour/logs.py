"""Logging set-up shared by the gateway and the provider: one line per event on stderr, as text
or as JSON (`log_format`), so a log shipper can take the lines without parsing our text.

Structured fields travel on the record as `extra={"fields": {...}}` (`gateway.maillog`): the
text form already shows them in its message, the JSON form adds them as keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

#: `log_format` values.
LOG_FORMATS = ("text", "json")
GATEWAY_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Keys of the JSON object that fields never overwrite.
_BASE = ("ts", "level", "logger", "msg")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's fields. `json.dumps`
    escapes every control character, so peer text can never end a line early."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in _BASE:
                    out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """`logging.Formatter` with the same `asctime` ("2026-12-07 16:03:45,123", local time),
    its date and time formatted once per second instead of once per record: `time.strftime`
    was a third of a mail-log line's cost (four lines per message)."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


class TickHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes once per event-loop iteration, not once per record.

    The mail log has about four lines per message; a `write(2)` for each was ~5 % of the
    gateway's event-loop time under load (py-spy, `bench/smtp.py`). Records logged on a thread
    with a running loop are buffered and written together by a callback at the end of the
    current iteration, so a line is out within the same loop turn (microseconds to a few ms
    later). Records at WARNING and above, and records from threads without a loop, write at
    once (after whatever is buffered, keeping the order)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._mutex = threading.Lock()
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        loop = asyncio._get_running_loop()
        with self._mutex:
            self._pending.append(line)
            if record.levelno < logging.WARNING and loop is not None:
                if not self._scheduled:
                    self._scheduled = True
                    loop.call_soon(self.drain)
                return
        self.drain()

    def drain(self) -> None:
        with self._mutex:
            self._scheduled = False
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
        self.acquire()
        try:
            with contextlib.suppress(Exception):  # a closed stream: nothing left to tell
                self.stream.write(text)
                super().flush()
        finally:
            self.release()

    def flush(self) -> None:
        self.drain()  # logging.shutdown() at exit: nothing buffered is left behind

    def close(self) -> None:
        self.drain()
        super().close()


def setup_logging(level: str = "info", fmt: str = "text", text_format: str = GATEWAY_TEXT) -> None:
    """Root logger to stderr in `fmt` ("text" or "json"), library chatter off."""
    handler = TickHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(text_format))
    # What no line of ours shows is not gathered per record (logging's documented switches:
    # the caller's frame, thread, process and multiprocessing names, ~40 % of a line's cost)
    shown = "" if fmt == "json" else text_format
    logging.logThreads = "%(thread" in shown
    logging.logProcesses = "%(process)" in shown
    logging.logMultiprocessing = "%(processName" in shown
    if not any(f"%({k}" in shown for k in ("pathname", "filename", "module", "lineno",
                                            "funcName", "stack_info")):
        logging._srcfile = None
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True
    )
    quiet_libraries()


def quiet_libraries() -> None:
    """Library chatter off unless it is a warning: aiosmtpd's per-command lines ("mail.log"),
    httpx/httpcore's one INFO line per request (a poll every minute, a bundle download...),
    asyncio's slow-callback notes; uvicorn is started at "warning" by its callers."""
    for name in ("mail.log", "mail.debug", "httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
