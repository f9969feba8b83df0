"""SMTP sinks that stand in for the gateway's next hop.

`RecordingSink` is an aiosmtpd server in the test process (a thread) that records every message;
it can be stopped and started again on the same port, which is how "next hop down, then up" is
tested. It can listen on any 127.0.0.x (MX hosts) and offer STARTTLS with a given certificate,
recording each message's TLS version (None: plaintext). `PostfixSmtpSink` runs Postfix's own
`smtp-sink` and counts the messages it dumps.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import signal
import ssl
import subprocess
import threading
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from helpers.net import LOCALHOST, free_port, wait_for_port, wait_until

SMTP_SINK = "/usr/sbin/smtp-sink"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the next hop saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls_version: str | None = None  # e.g. "TLSv1.3" when the session used STARTTLS

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.data, policy=email.policy.compat32)

    @property
    def message_id(self) -> str | None:
        value = self.message.get("Message-ID")
        return None if value is None else str(value).strip()

    def header(self, name: str) -> str | None:
        value = self.message.get(name)
        return None if value is None else str(value)


class _Recorder:
    """aiosmtpd handler: accept everything (or reply with a fixed code) and record it."""

    def __init__(self, sink: RecordingSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self._sink._lock:
            self._sink.rcpt_log.append((str(envelope.mail_from), address))
        refusal = self._sink.refuse_rcpts.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self._sink.data_delay:
            await asyncio.sleep(self._sink.data_delay)  # a slow next hop widens crash windows
        reply = self._sink.data_reply
        if reply is not None:
            return reply
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        tls = session.ssl["ssl_object"].version() if session.ssl else None
        self._sink.record(
            ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                data=bytes(content),
                tls_version=tls,
            )
        )
        return "250 2.0.0 Ok: recorded"


class _TrackingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, telling the sink which connections are open."""

    def __init__(self, sink: RecordingSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sink._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        # after STARTTLS both the TLS transport and the plain one under it were added
        for transport in (self.transport, self._original_transport):
            if transport is not None:
                self._sink._transports.discard(transport)
        super().connection_lost(exc)


class _TrackingController(Controller):
    def __init__(self, sink: RecordingSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink

    def factory(self) -> _TrackingSMTP:
        return _TrackingSMTP(self._sink, self.handler, **self.SMTP_kwargs)


class RecordingSink:
    """An aiosmtpd SMTP server on 127.0.0.1 that keeps every message it receives.

    `host`: another loopback address (an MX host); `tls`: (cert, key) PEM paths to offer
    STARTTLS with."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = LOCALHOST,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.data_reply: str | None = None  # e.g. "451 4.3.0 try later" to refuse DATA
        # recipient (lower case) -> reply, e.g. "550 5.1.1 no such user", to refuse at RCPT
        self.data_delay = 0.0  # seconds to wait before answering DATA
        self.refuse_rcpts: dict[str, str] = {}
        # every RCPT command seen, accepted or not: (MAIL FROM of its transaction, address)
        self.rcpt_log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._controller: Controller | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> RecordingSink:
        if self._controller is None:
            # Our own loop, closed in stop(): aiosmtpd's Controller never closes the one it makes.
            loop = asyncio.new_event_loop()
            extra: dict[str, Any] = {}
            if self.tls is not None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(*self.tls)
                extra["tls_context"] = context
            controller = _TrackingController(
                self,
                _Recorder(self),
                loop=loop,
                hostname=self.host,
                port=self.port,
                ready_timeout=10.0,
                data_size_limit=0,  # the sink must not judge size: the gateway does
                **extra,
            )
            try:
                controller.start()
            except BaseException:
                if not loop.is_closed():
                    loop.close()
                raise
            self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is None:
            return
        # Stop listening, then close client connections and let their close complete on the
        # loop: aiosmtpd's stop() only cancels tasks, leaving transports for the garbage
        # collector to warn about (a ResourceWarning, an error under filterwarnings=error, in
        # whichever later test the collector runs).
        drained = asyncio.run_coroutine_threadsafe(self._drain(controller), controller.loop)
        drained.result(timeout=10.0)
        controller.stop()

    async def _drain(self, controller: Controller) -> None:
        loop = asyncio.get_running_loop()
        server = getattr(controller, "server", None)
        if server is not None:
            # Accept no more, but let connections already accepted get their transport
            # before the server closes: on Python 3.11 a transport made after Server.close()
            # fails an assertion and leaks its socket.
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        for _ in range(500):
            for transport in list(self._transports):
                transport.close()
            accepting = [
                task
                for task in asyncio.all_tasks(loop)
                if getattr(task.get_coro(), "__qualname__", "").endswith("_accept_connection2")
            ]
            if not self._transports and not accepting:
                break
            await asyncio.sleep(0.01)
        if server is not None:
            server.close()

    def reset(self) -> None:
        """Forget received messages and refusal settings (a sink shared between tests)."""
        with self._lock:
            self._messages.clear()
            self.rcpt_log.clear()
        self.data_reply = None
        self.data_delay = 0.0
        self.refuse_rcpts.clear()

    def record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.messages if m.message_id is not None]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedMessage]:
        """Wait until at least `count` messages arrived; return what is there either way."""
        wait_until(lambda: len(self.messages) >= count, timeout=timeout)
        return self.messages

    def wait_for_ids(self, ids: set[str], timeout: float = 60.0) -> set[str]:
        """Wait until every Message-ID in `ids` arrived; return the ones still missing."""
        wait_until(lambda: ids <= set(self.message_ids()), timeout=timeout, interval=0.2)
        return ids - set(self.message_ids())

    def __enter__(self) -> RecordingSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostfixSmtpSink:
    """Postfix's `smtp-sink` as a subprocess, one dump file per message in `dump_dir`."""

    def __init__(self, dump_dir: Path, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.dump_dir = dump_dir
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which(SMTP_SINK) is not None or Path(SMTP_SINK).exists()

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def start(self) -> PostfixSmtpSink:
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        # -u root: smtp-sink insists on a user when started as root (it is, in CI); the dump
        # template's "%s." prefix plus smtp-sink's random suffix gives one file per message.
        self._proc = subprocess.Popen(
            [
                SMTP_SINK,
                "-u",
                "root",
                "-d",
                f"{self.dump_dir}/%s.",
                f"{LOCALHOST}:{self.port}",
                "64",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not wait_for_port(self.port, timeout=10.0):
            self.stop()
            raise RuntimeError(f"smtp-sink did not listen on {self.address}")
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()

    def dumps(self) -> list[bytes]:
        """Every dumped message (smtp-sink's own X-* and Received headers first)."""
        return [p.read_bytes() for p in sorted(self.dump_dir.iterdir()) if p.is_file()]

    def count(self) -> int:
        return len(self.dumps())

    def wait_for(self, count: int, timeout: float = 30.0) -> list[bytes]:
        """At least `count` dumps, each complete: smtp-sink creates a dump file when the
        transaction starts and writes it as data arrives, so a file that exists may still be
        growing (a test once read the third dump empty). Done when two looks 0.1 s apart see
        the same sizes."""
        last: list[int] = []

        def settled() -> bool:
            nonlocal last
            sizes = [len(d) for d in self.dumps()]
            done = len(sizes) >= count and sizes == last
            last = sizes
            return done

        wait_until(settled, timeout=timeout, interval=0.1)
        return self.dumps()

    def __enter__(self) -> PostfixSmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
