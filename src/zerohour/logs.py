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
import re
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

    def line(self, name: str, levelname: str, msg: str, created: float,
             fields: dict[str, Any]) -> str:
        """What `format` makes of a record with these values and no exception (`info_line`)."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": levelname,
            "logger": name,
            "msg": msg,
        }
        for key, value in fields.items():
            if key not in _BASE:
                out[key] = value
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """`logging.Formatter` with the same `asctime` ("2026-12-07 16:03:45,123", local time),
    its date and time formatted once per second instead of once per record: `time.strftime`
    was a third of a mail-log line's cost (four lines per message)."""

    _second = -1
    _stamp = ""

    def __init__(self, fmt: str = GATEWAY_TEXT) -> None:
        super().__init__(fmt)
        self._text = fmt
        #: the format needs no more than `line` fills in (no other record attribute, no "%%")
        self.simple = "%" not in _FIELD.sub("", fmt)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._time(record.created, int(record.msecs))

    def _time(self, created: float, msecs: int) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{msecs:03d}"

    def line(self, name: str, levelname: str, msg: str, created: float,
             fields: dict[str, Any]) -> str:
        """What `format` makes of a record with these values (`simple` formats only)."""
        asctime = self._time(created, int((created - int(created)) * 1000))
        return self._text % {"asctime": asctime, "levelname": levelname, "name": name,
                            "message": msg}  # as logging's PercentStyle fills it in


#: the record attributes `TextFormatter.line` fills in
_FIELD = re.compile(r"%\((?:asctime|levelname|name|message)\)s")


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
        self.push(line, record.levelno)

    def push(self, line: str, levelno: int) -> None:
        """Buffer one formatted line (with its terminator) as `emit` does."""
        loop = asyncio._get_running_loop()
        with self._mutex:
            self._pending.append(line)
            if levelno < logging.WARNING and loop is not None:
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


#: the handler `setup_logging` installed, while `info_line` may write to it directly
_direct: TickHandler | None = None


def info_line(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """`logger.info("%s", msg, extra={"fields": fields})` for the mail log's lines (four per
    message, bench/smtp.py: 10 % of the gateway's event loop through `logging`).

    While the logging set-up is still the one `setup_logging` made (the logger and its parents
    without handlers or filters, the root with our handler alone, a format of ours), the line is
    formatted and handed to that handler directly: the same text, without a `LogRecord` and
    its dispatch. Any other set-up (a test's capture, an embedding application's handlers)
    goes through `logging` as usual. The caller checks `isEnabledFor(INFO)` first."""
    handler = _direct
    if handler is None or handler.filters or handler.level > logging.INFO:
        logger.info("%s", msg, extra={"fields": fields})
        return
    root = logging.root
    node: logging.Logger | None = logger
    while node is not None and node is not root:
        if node.handlers or node.filters or not node.propagate or node.disabled:
            logger.info("%s", msg, extra={"fields": fields})
            return
        node = node.parent
    formatter = handler.formatter
    if (node is not root or root.filters or len(root.handlers) != 1
            or root.handlers[0] is not handler
            or not (type(formatter) is JsonFormatter
                    or (type(formatter) is TextFormatter and formatter.simple))):
        logger.info("%s", msg, extra={"fields": fields})
        return
    line = formatter.line(logger.name, "INFO", msg, time.time(), fields)
    handler.push(line + handler.terminator, logging.INFO)


def setup_logging(level: str = "info", fmt: str = "text", text_format: str = GATEWAY_TEXT) -> None:
    """Root logger to stderr in `fmt` ("text" or "json"), library chatter off."""
    global _direct
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
    _direct = handler
    quiet_libraries()


def quiet_libraries() -> None:
    """Library chatter off unless it is a warning: aiosmtpd's per-command lines ("mail.log"),
    httpx/httpcore's one INFO line per request (a poll every minute, a bundle download...),
    asyncio's slow-callback notes; uvicorn is started at "warning" by its callers."""
    for name in ("mail.log", "mail.debug", "httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
