"""The processes of an outbreak story on one machine: a provider, a gateway and an SMTP sink.

Used by `zerohour demo`, `bench/outbreak.py` and the real-process end-to-end tests. The provider
and the gateway are real `python -m zerohour ... run` subprocesses on 127.0.0.1 with ephemeral
ports; the sink is an aiosmtpd server in a thread of this process (the gateway's next hop). Every
part is stopped by `aclose()`, which callers put in a `finally` so Ctrl-C stops them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from zerohour.errors import ZerohourError

LOCALHOST = "127.0.0.1"


class DemoError(ZerohourError):
    """A part of the demo stack failed to start or a step did not finish in time."""


def zerohour_argv(*args: str) -> list[str]:
    """The argv that runs this zerohour with this interpreter (works inside any venv)."""
    return [sys.executable, "-m", "zerohour", *args]


def free_port() -> int:
    """An ephemeral port that was free a moment ago (for flags that need a fixed port)."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run one `zerohour ...` command to completion; a non-zero exit is a `DemoError`."""
    res = subprocess.run(
        zerohour_argv(*args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if res.returncode != 0:
        raise DemoError(f"zerohour {' '.join(args[:3])} failed ({res.returncode}): {res.stderr}")
    return res


def _pump(stream: IO[str], sink: Callable[[str], Any]) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                sink(line)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


class _Process:
    """A `zerohour` subprocess whose stdout lines are collected and stderr goes to a log file."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl-C goes to the demo, which stops us in order
            )
        assert self.proc.stdout is not None
        self._threads = [_pump(self.proc.stdout, self.lines.put)]

    def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (
                self.proc is not None and self.proc.poll() is not None and self.lines.empty()
            ):
                raise DemoError(
                    f"{self.argv[3:5]} did not start; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if predicate(line):
                return line

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group (the process and its scanner workers): a crash."""
        if self.proc is not None:
            self._kill_group()
        self._reap()

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: pgid == pid

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, SIGKILL after `grace` seconds; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self._reap()

    def _reap(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        code = proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (worker processes)
        for t in self._threads:
            t.join(timeout=5)
        if proc.stdout is not None and not any(t.is_alive() for t in self._threads):
            proc.stdout.close()  # never while a reader holds it: close() would block
        return code


class ProviderProcess(_Process):
    """`zerohour provider run` plus the lab commands acting on its data folder."""

    def __init__(self, data_dir: Path, log_path: Path, extra: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.extra = tuple(extra)
        self.listen = f"{LOCALHOST}:0"
        self.url = ""
        self.key_text = ""
        self._token = ""
        super().__init__([], log_path)

    def start(self, timeout: float = 60.0) -> ProviderProcess:
        self.argv = zerohour_argv(
            "provider",
            "run",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.listen,
            "--allow-push-target",  # everything runs on 127.0.0.1: approve loopback targets
            "127.0.0.0/8",
            *self.extra,
        )
        self.spawn()
        first = self.wait_line(lambda s: "listening on" in s, timeout)
        self.url = first.split()[-1]
        self.key_text = self.wait_line(lambda s: "ed25519:" in s, timeout).strip()
        self.listen = self.url.removeprefix("http://")  # a restart reuses the port
        return self

    @property
    def token(self) -> str:
        """A per-gateway credential (`provider gateway add`), made once for this stack."""
        if not self._token:
            name = f"demo-gw-{os.getpid()}-{time.monotonic_ns()}"
            self._token = self.lab("gateway", "add", name).strip().splitlines()[-1]
        return self._token

    def lab(self, *args: str) -> str:
        """`zerohour provider <args> --data-dir DIR`; returns stdout."""
        return run_cli("provider", *args, "--data-dir", str(self.data_dir)).stdout

    def declare(self, name: str, *extra: str) -> str:
        """Declare an outbreak; returns its id (the command's last line)."""
        return self.lab("outbreak", "declare", "--name", name, *extra).strip().splitlines()[-1]

    def publish_sample_signature(self, sample: Path, name: str, covers: str, out: Path) -> None:
        """`signatures from-sample` then `signatures publish --covers`."""
        line = run_cli("provider", "signatures", "from-sample", str(sample), "--name", name)
        out.write_text(line.stdout.strip().splitlines()[-1] + "\n")
        self.lab("signatures", "publish", str(out), "--covers", covers)

    def end(self, outbreak_id: str) -> None:
        self.lab("outbreak", "end", outbreak_id)


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """What differs between stacks: transports, policy, extra TOML."""

    stream: bool = True
    poll_interval: float = 60.0
    udp: bool = False
    control_address: str | None = None
    admin: bool = False
    provider_url: str | None = None  # default: the provider's own URL (tests put a proxy here)
    toml: str = ""


GATEWAY_TOML = """\
spool_minfree = 0

[smtp]
hostname = "gw.demo.test"

[delivery]
retry_min = 0.2
retry_max = 1.0
poll_interval = 0.05
starttls = false
"""


class GatewayProcess(_Process):
    """`zerohour gateway run` wired to a provider and a next hop."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        provider: ProviderProcess,
        next_hop: str,
        options: GatewayOptions,
    ) -> None:
        self.data_dir = data_dir
        self.provider = provider
        self.next_hop = next_hop
        self.options = options
        self.listen = f"{LOCALHOST}:0"
        self.smtp_port = 0
        self.admin_url: str | None = None
        self.udp_port = free_port() if options.udp else 0
        self.admin_port = free_port() if options.admin else 0
        super().__init__([], log_path)

    def start(self, timeout: float = 90.0) -> GatewayProcess:
        o = self.options
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir.parent / f"{self.data_dir.name}.toml"
        conf.write_text(
            GATEWAY_TOML + f"\n[notices]\npoll_interval = {o.poll_interval!r}\n" + o.toml
        )
        args = [
            "gateway",
            "run",
            "--config",
            str(conf),
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.listen,
            "--next-hop",
            self.next_hop,
            "--relay-domain",
            "example.test",
            "--provider",
            o.provider_url or self.provider.url,
            "--provider-key",
            self.provider.key_text,
            f"--subscription-token={self.provider.token}",
            "--admin-listen",
            f"{LOCALHOST}:{self.admin_port}" if o.admin else "off",
        ]
        if o.udp:
            args += ["--udp-listen", f"{LOCALHOST}:{self.udp_port}"]
        if o.control_address:
            if self.listen.endswith(":0"):  # the provider must know where to deliver
                self.listen = f"{LOCALHOST}:{free_port()}"
                args[args.index("--listen") + 1] = self.listen
            args += ["--control-address", o.control_address, "--control-smtp", self.listen]
        self.argv = zerohour_argv(*args)
        self.spawn()
        line = self.wait_line(lambda s: "gateway listening on" in s, timeout)
        self.smtp_port = int(line.strip().rsplit(":", 1)[1])
        self.listen = f"{LOCALHOST}:{self.smtp_port}"  # a restart reuses the port
        if o.admin:
            self.admin_url = f"http://{LOCALHOST}:{self.admin_port}/"
        return self

    def cli(self, *args: str) -> str:
        """`zerohour <args> --data-dir DIR` (e.g. `hold list --json`); returns stdout."""
        return run_cli(*args, "--data-dir", str(self.data_dir)).stdout


@dataclass
class SinkMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float


class _SinkHandler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.sink.lock:
            self.sink.messages.append(
                SinkMessage(
                    str(envelope.mail_from),
                    tuple(str(r) for r in envelope.rcpt_tos),
                    bytes(content),
                    time.monotonic(),
                )
            )
        return "250 2.0.0 Ok: kept"


@dataclass
class MailSink:
    """The next hop: an aiosmtpd server in a thread that keeps every message in memory."""

    messages: list[SinkMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None
    port: int = 0

    def start(self) -> MailSink:
        self.port = free_port()
        self._controller = Controller(
            _SinkHandler(self),
            hostname=LOCALHOST,
            port=self.port,
            data_size_limit=0,
            ready_timeout=30,
        )
        self._controller.start()
        return self

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def snapshot(self) -> list[SinkMessage]:
        with self.lock:
            return list(self.messages)

    def count(self, marker: bytes) -> int:
        return sum(1 for m in self.snapshot() if marker in m.data)

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None


@dataclass(frozen=True, slots=True)
class SendResult:
    accepted: bool
    code: int
    reply: str


def send_mail(
    port: int, data: bytes, sender: str = "sender@outside.test", rcpt: str = "user@example.test"
) -> SendResult:
    """One SMTP transaction to the gateway (blocking: call it via `asyncio.to_thread`)."""
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=60) as s:
            s.sendmail(sender, [rcpt], data)
        return SendResult(True, 250, "")
    except smtplib.SMTPDataError as exc:
        err = exc.smtp_error
        return SendResult(
            False, exc.smtp_code, err.decode(errors="replace") if isinstance(err, bytes) else err
        )
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return SendResult(False, code, reply)


async def wait_for(
    predicate: Callable[[], Any], limit: float, what: str, interval: float = 0.05
) -> Any:
    """Poll an async or plain predicate until it returns something truthy."""
    deadline = time.monotonic() + limit
    while True:
        got = predicate()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {limit:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
