#!/usr/bin/env python3
"""SMTP relay benchmark: zerohour's gateway against its peers, same messages, same run.

Postfix's smtp-source (20 sessions) sends N messages through a relay to Postfix's smtp-sink, for
each message kind (5 KB and 100 KB, plain and MIME with attachments). Relays measured:

  direct    smtp-source -> smtp-sink (the loopback limit)
  postfix   a private Postfix instance (queue + fsync, no scanning), relayhost = the sink
  amavisd   amavisd-new (Debian package) scanning with a private clamd, forwarding to the sink
  zerohour  `zerohour gateway run` (spool with fsync, scan, deliver) to the sink
  zerohour-nocache  the same with the scan workers' clean cache off (`scan.clean_cache_mb =
            0`): smtp-source sends one message over and over, so with the cache every part
            below the message is scanned once per worker; this row is the cost of mail whose
            parts are all new
  zerohour-pg  the same with `--store postgresql://...` (a cluster node: rows and bodies in a
            scratch PostgreSQL database, bench/pg.py); its CPU adds the PostgreSQL server's

msgs/s counts messages that reached the sink (end to end); "accept/s" is smtp-source's own rate.
A benchmark, not a test: it prints a table and ratios and never asserts a speed.

    .venv/bin/python bench/smtp.py --quick      # 500 messages per cell, 5 KB only
    .venv/bin/python bench/smtp.py              # 5000 messages per cell (amavisd: 1000)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
import random

import smtp_probe
from common import MemSampler, fmt, loadavg, process_tree, ratio, table
from newsletters import newsletter_mail
from pg import DEFAULT_URL, StatementLog, backend_cpu, postgres_cpu, scratch_database

from scan import EICAR, TextGen, _b64, _binary, _zip

ROOT = Path(__file__).resolve().parent.parent
ZH_CLI = ROOT / ".venv" / "bin" / "zerohour"
if not ZH_CLI.exists():  # a worktree without its own venv: the running interpreter's
    ZH_CLI = Path(sys.executable).with_name("zerohour")
SENDER = "sender@example.org"
RCPT = "rcpt@example.com"
RELAY_DOMAIN = "example.com"
CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_ROOM = 1100  # zerohour's smtp.max_sessions in the bench: 1,000 idle sessions and a new one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_banner(
    port: int, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something on 127.0.0.1:port answers with an SMTP 220 greeting."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                banner = s.recv(512).decode(errors="replace")
                s.sendall(b"QUIT\r\n")
                if banner.startswith("220"):
                    return
                last = banner
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"no 220 greeting on port {port}: {last[:200]}")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process tree: live processes plus the children they already reaped."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def own_cpu_s(pid: int) -> float:
    """CPU seconds of one process alone (utime+stime, not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:13]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


# ---------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Kind:
    name: str
    size: int
    mime: bool
    file: Path | None = None

    def source_args(self) -> list[str]:
        if self.file is not None:
            return ["-F", str(self.file)]
        return ["-l", str(self.size)]

    def body(self) -> bytes:
        """The message the latency probe sends (CRLF): the MIME file, or `size` plain bytes."""
        if self.file is not None:
            return self.file.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        head = f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: latency\r\n\r\n".encode()
        line = b"x" * 78 + b"\r\n"
        return head + line * max(1, (self.size - len(head)) // len(line))


def make_mime(path: Path, size: int, seed: int) -> None:
    """A multipart/mixed message of about `size` bytes: text, HTML, a binary and a zip."""
    rng = random.Random(seed)
    tg = TextGen(rng)
    att = max(size - 2500, 600)
    binary = _binary(rng, att * 45 // 100)
    zipped = _zip(
        [
            ("report.txt", tg.text(att // 4).encode(), True),
            ("table.bin", _binary(rng, att // 8), False),
        ]
    )
    b = f"=_bench_{seed}"
    text = (
        f"From: Bench <{SENDER}>\nTo: <{RCPT}>\nSubject: bench {size}\n"
        f"Date: Sun, 29 Nov 2026 03:00:00 +0000\nMessage-ID: <bench.{size}@example.org>\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{b}"\n\n'
        f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{tg.text(900)}\n"
        f'--{b}\nContent-Type: application/octet-stream; name="data.bin"\n'
        "Content-Transfer-Encoding: base64\n"
        f'Content-Disposition: attachment; filename="data.bin"\n\n{_b64(binary)}\n'
        f'--{b}\nContent-Type: application/zip; name="files.zip"\n'
        "Content-Transfer-Encoding: base64\n"
        f'Content-Disposition: attachment; filename="files.zip"\n\n{_b64(zipped)}\n'
        f"--{b}--\n"
    )
    path.write_text(text.replace("\r\n", "\n"))


def kinds(work: Path, quick: bool) -> list[Kind]:
    """5 KB and 100 KB, plain and MIME; and (not with `quick`) an HTML newsletter, the shape of
    most real mail and the costliest to scan (`newsletters.py`: every send is the same page, so
    only the no-clean-cache row shows what pages never seen before cost)."""
    out = []
    for size in (5 * 1024,) if quick else (5 * 1024, 100 * 1024):
        label = f"{size // 1024} KB"
        out.append(Kind(f"{label} plain", size, False))
        f = work / f"mime-{size}.eml"
        make_mime(f, size, seed=size)
        out.append(Kind(f"{label} MIME", size, True, f))
    if not quick:
        f = work / "newsletter.eml"
        f.write_bytes(newsletter_mail("English").replace(b"\r\n", b"\n"))  # as make_mime: LF
        out.append(Kind("100 KB HTML", f.stat().st_size, True, f))
    return out


# ---------------------------------------------------------------------------------------------
# The sink and the peers


class Sink:
    """smtp-sink with a running counter; counts messages it accepted (parsed from `mesg=N`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.count = 0
        self._buf = b""
        self.proc = subprocess.Popen(
            [
                "smtp-sink",
                "-c",
                "-u",
                "nobody",
                "-h",
                "sink.bench.local",
                f"127.0.0.1:{self.port}",
                "1024",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_banner(self.port, proc=self.proc)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            chunk = self.proc.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                return
            self._buf = (self._buf + chunk)[-256:]
            m = re.findall(rb"mesg=(\d+)", self._buf)
            if m:
                self.count = int(m[-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Relay:
    name = "relay"
    port = 0
    note = ""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> list[int]:
        """Roots of the process trees whose CPU and memory count for this relay."""
        return []


class Direct(Relay):
    name = "direct (smtp-source -> smtp-sink)"

    def __init__(self, sink: Sink) -> None:
        self.port = sink.port


class PostfixRelay(Relay):
    """A private Postfix instance in a temp folder: own config, queue and log; no chroot."""

    name = "postfix relay (queue+fsync, no scan)"

    def __init__(self, base: Path, sink_port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="postfix-", dir=base))
        os.chmod(self.dir, 0o755)
        self.etc = self.dir / "etc"
        self.etc.mkdir()
        self.port = free_port()
        q = self.dir / "queue"
        q.mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        (self.etc / "main.cf").write_text(
            "compatibility_level = 3.6\n"
            f"queue_directory = {q}\n"
            f"data_directory = {self.dir / 'data'}\n"
            f"maillog_file = {self.dir / 'maillog'}\n"
            f"maillog_file_prefixes = {self.dir}\n"
            "mail_owner = postfix\nsetgid_group = postdrop\n"
            "myhostname = relay.bench.local\nmydomain = bench.local\nmydestination =\n"
            "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
            f"relay_domains = {RELAY_DOMAIN}\n"
            f"relayhost = [127.0.0.1]:{sink_port}\n"
            "mynetworks = 127.0.0.0/8\n"
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
            "smtpd_client_connection_rate_limit = 0\n"
            "anvil_rate_time_unit = 60s\n"
            "default_process_limit = 100\n"
            "smtp_tls_security_level = none\nsmtpd_tls_security_level = none\n"
            "alias_maps =\nalias_database =\nbiff = no\n"
            "syslog_name = postfix-bench\n"
        )
        (self.etc / "master.cf").write_text(
            f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
            + "".join(
                f"{line}\n"
                for line in (
                    "pickup unix n - n 60 1 pickup",
                    "cleanup unix n - n - 0 cleanup",
                    "qmgr unix n - n 300 1 qmgr",
                    "rewrite unix - - n - - trivial-rewrite",
                    "bounce unix - - n - 0 bounce",
                    "defer unix - - n - 0 bounce",
                    "trace unix - - n - 0 bounce",
                    "verify unix - - n - 1 verify",
                    "flush unix n - n 1000? 0 flush",
                    "proxymap unix - - n - - proxymap",
                    "smtp unix - - n - - smtp",
                    "relay unix - - n - - smtp",
                    "showq unix n - n - - showq",
                    "error unix - - n - - error",
                    "retry unix - - n - - error",
                    "discard unix - - n - - discard",
                    "local unix - n n - - local",
                    "virtual unix - n n - - virtual",
                    "lmtp unix - - n - - lmtp",
                    "anvil unix - - n - 1 anvil",
                    "scache unix - - n - 1 scache",
                    "postlog unix-dgram n - n - 1 postlogd",
                )
            )
        )

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.etc), *args], capture_output=True, text=True, timeout=120
        )

    def start(self) -> None:
        r = self._postfix("start")
        if r.returncode != 0:
            log = self.dir / "maillog"
            tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
            raise RuntimeError(f"postfix start failed: {tail or r.stderr or r.stdout}")
        wait_banner(self.port)

    def pids(self) -> list[int]:
        try:
            return [int((self.dir / "queue" / "pid" / "master.pid").read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            return []

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateClamd:
    """clamd on a Unix socket that other users (amavis) may use."""

    def __init__(self, base: Path, db: Path) -> None:
        self.dir = base
        self.sock = base / "clamd.sock"
        conf = base / "clamd.conf"
        conf.write_text(
            f"LocalSocket {self.sock}\nLocalSocketMode 666\nDatabaseDirectory {db}\n"
            f"LogFile {base / 'clamd.log'}\nPidFile {base / 'clamd.pid'}\n"
            f"TemporaryDirectory {base}\nForeground yes\nSelfCheck 0\n"
        )
        self.proc = subprocess.Popen(
            ["clamd", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("clamd exited during start")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                    s.sendall(b"zPING\x00")
                    if s.recv(16).startswith(b"PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("clamd did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Amavisd(Relay):
    """amavisd-new with a private config: clamd scanning, no SpamAssassin, forward to the sink."""

    name = "amavisd-new + clamd"

    def __init__(self, base: Path, sink_port: int, db: Path, servers: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="amavis-", dir=base))
        os.chmod(self.dir, 0o755)
        for sub in ("tmp", "db", "var", "virusmails"):
            (self.dir / sub).mkdir()
        shutil.chown(self.dir / "tmp", "amavis", "amavis")
        for sub in ("db", "var", "virusmails"):
            shutil.chown(self.dir / sub, "amavis", "amavis")
        self.port = free_port()
        self.db = db
        self.sink_port = sink_port
        self.servers = servers
        self.log_level = int(os.environ.get("BENCH_AMAVIS_LOG_LEVEL", "0"))
        self.clamd: PrivateClamd | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.note = f"max_servers={servers}; clamd (own db) via CONTSCAN; no SpamAssassin"

    def _conf(self) -> Path:
        d = self.dir
        conf = d / "amavisd.conf"
        conf.write_text(
            f"""use strict;
$MYHOME = '{d / "var"}';
$TEMPBASE = '{d / "tmp"}';
$db_home = '{d / "db"}';
$QUARANTINEDIR = '{d / "virusmails"}';
$pid_file = '{d / "var" / "amavisd.pid"}';
$lock_file = '{d / "var" / "amavisd.lock"}';
$daemon_user = 'amavis'; $daemon_group = 'amavis';
$mydomain = 'bench.local'; $myhostname = 'amavis.bench.local';
$max_servers = {self.servers};
$inet_socket_bind = '127.0.0.1';
$inet_socket_port = {self.port};
@inet_acl = qw(127.0.0.1);
$forward_method = 'smtp:[127.0.0.1]:{self.sink_port}';
$notify_method = $forward_method;
$DO_SYSLOG = 0; $LOGFILE = '{d / "var" / "amavis.log"}'; $log_level = {self.log_level};
$enable_db = 0; $enable_global_cache = 0; $enable_dkim_verification = 0;
@bypass_spam_checks_maps = (1);
$final_virus_destiny = D_DISCARD;
$final_banned_destiny = D_PASS;
$final_spam_destiny = D_PASS;
$final_bad_header_destiny = D_PASS;
$virus_admin = undef;
@local_domains_maps = ( ['.{RELAY_DOMAIN}'] );
$ENV{{PATH}} = $path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/usr/bin:/bin';
$file = 'file'; $gzip = 'gzip'; $bzip2 = 'bzip2'; $pax = 'pax'; $cpio = 'cpio'; $ar = 'ar';
@av_scanners = (
  ['ClamAV-clamd', \\&ask_daemon, ["CONTSCAN {{}}\\n", "{self.dir / "clamd.sock"}"],
   qr/\\bOK$/m, qr/\\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m ],
);
@av_scanners_backup = ();
1;
"""
        )
        return conf

    def start(self) -> None:
        self.clamd = PrivateClamd(self.dir, self.db)
        conf = self._conf()
        self.proc = subprocess.Popen(
            ["amavisd", "-c", str(conf), "foreground"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "wb"),  # noqa: SIM115
        )
        try:
            wait_banner(self.port, timeout=120, proc=self.proc)
        except RuntimeError as e:
            err = (self.dir / "stderr.log").read_text(errors="replace")[-600:]
            raise RuntimeError(f"{e}; amavisd stderr: {err}") from None

    def pids(self) -> list[int]:
        return [p.pid for p in (self.proc, self.clamd.proc if self.clamd else None) if p]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.clamd:
            self.clamd.stop()
        if self.log_level:
            shutil.copy(self.dir / "var" / "amavis.log", Path(tempfile.gettempdir()) / "amavis.log")
        shutil.rmtree(self.dir, ignore_errors=True)


class ZerohourGateway(Relay):
    name = "zerohour gateway"

    def __init__(
        self,
        base: Path,
        sink_port: int,
        db: Path | None,
        extra: Sequence[str],
        store: str | None = None,
        workers: int = 1,
        clean_cache: bool = True,
    ) -> None:
        self.workers = workers
        self.env = {} if clean_cache else {"ZEROHOUR_SCAN_CLEAN_CACHE_MB": "0"}
        if workers != 1:
            extra = [*extra, "--workers", str(workers)]
        self.dir = Path(tempfile.mkdtemp(prefix="zerohour-", dir=base))
        self.port = free_port()
        self.cmd = [
            str(ZH_CLI),
            "gateway",
            "run",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--next-hop",
            f"127.0.0.1:{sink_port}",
            "--data-dir",
            str(self.dir / "data"),
            "--relay-domain",
            RELAY_DOMAIN,
            *(["--db", str(db)] if db else []),
            *(["--store", store] if store else []),
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.note = "db: " + (str(db) if db else "starter")
        self.uses_postgres = store is not None
        self.store = store
        self.statements: StatementLog | None = None
        if store is not None:
            self.name = "zerohour-pg gateway (PostgreSQL store)"
        if workers != 1:
            self.name = f"{self.name} ({workers} workers)"
        if not clean_cache:
            self.name = f"{self.name} (no clean cache)"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=open(self.dir / "stdout.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            # room for the idle-session probe (the default is Postfix's 100 smtpd processes)
            env={**os.environ, "ZEROHOUR_SMTP_MAX_SESSIONS": str(IDLE_ROOM), **self.env},
        )
        try:
            wait_banner(self.port, timeout=120, proc=self.proc)
            deadline = time.monotonic() + 120  # every SMTP process up before measuring
            log = self.dir / "stdout.log"
            while log.read_text(errors="replace").count("workers.ready") < self.workers - 1:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the SMTP worker processes did not start")
                time.sleep(0.1)
        except RuntimeError as e:
            out = (self.dir / "stdout.log").read_text(errors="replace")[-600:]
            raise RuntimeError(f"{e}; gateway output: {out}") from None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def backend_cpu(self) -> dict[int, float]:
        """CPU so far of the PostgreSQL backends serving this gateway (none for SQLite)."""
        if self.store is None:
            return {}
        database = self.store.split("?", 1)[0].rsplit("/", 1)[1]
        return backend_cpu(self.store, database)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Cell:
    relay: str
    kind: str
    messages: int = 0
    accept_s: float | None = None
    e2e_s: float | None = None
    delivered: int = 0
    cpu_s: float | None = None
    main_cpu_s: float | None = None  # of which the relay's main process (zerohour: SMTP, store,
    # delivery; the rest is its scan workers)
    db_cpu_s: float | None = None  # the PostgreSQL server's, for a relay that uses it
    backend_cpu_s: float | None = None  # of which the relay's own backends
    stmts: float | None = None  # statements per message the server executed (--count-statements)
    pss_mb: float | None = None
    error: str | None = None
    lat_p50: float | None = None  # end of DATA -> 250, ms, at half the cell's accept rate
    lat_p99: float | None = None

    @property
    def rate(self) -> float | None:
        return self.delivered / self.e2e_s if self.e2e_s and self.delivered else None

    @property
    def cpu_ms(self) -> float | None:
        """Per delivered message: the relay's process tree plus, for zerohour-pg, the
        PostgreSQL server's CPU."""
        if self.cpu_s is None or not self.delivered:
            return None
        return (self.cpu_s + (self.db_cpu_s or 0.0)) * 1000 / self.delivered

    @property
    def accept_rate(self) -> float | None:
        return self.messages / self.accept_s if self.accept_s else None


def smtp_source(port: int, kind: Kind, n: int, sessions: int, reuse: bool) -> float:
    cmd = [
        "smtp-source",
        "-s",
        str(sessions),
        "-m",
        str(n),
        "-f",
        SENDER,
        "-t",
        RCPT,
        "-M",
        "client.bench.local",
        *kind.source_args(),
    ]
    if reuse:
        cmd.append("-d")
    cmd.append(f"127.0.0.1:{port}")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"smtp-source: {(r.stderr or r.stdout).strip()[-300:]}")
    return time.perf_counter() - t0


def measure(
    relay: Relay, sink: Sink, kind: Kind, n: int, sessions: int, reuse: bool, stall: float
) -> Cell:
    cell = Cell(relay.name, kind.name, n)
    pids = relay.pids()
    pg = isinstance(relay, ZerohourGateway) and relay.uses_postgres
    stmts = relay.statements if isinstance(relay, ZerohourGateway) else None
    if stmts is not None:
        stmts.start()
    cpu0 = sum(tree_cpu_s(p) for p in pids)
    main0 = sum(own_cpu_s(p) for p in pids)
    db0 = postgres_cpu() if pg else 0.0
    own0 = relay.backend_cpu() if isinstance(relay, ZerohourGateway) else {}
    base = sink.count
    t0 = time.perf_counter()
    sampler = MemSampler(pids, interval=0.2) if pids else None
    if sampler:
        sampler.__enter__()
    try:
        cell.accept_s = smtp_source(relay.port, kind, n, sessions, reuse)
        last, last_t = sink.count, time.perf_counter()
        while sink.count - base < n:
            time.sleep(0.01)
            if sink.count != last:
                last, last_t = sink.count, time.perf_counter()
            elif time.perf_counter() - last_t > stall:
                cell.error = f"stalled: {sink.count - base}/{n} delivered"
                break
        cell.e2e_s = time.perf_counter() - t0
        cell.delivered = sink.count - base
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        cell.error = str(e)
    finally:
        if sampler:
            sampler.__exit__(None, None, None)
            cell.pss_mb = sampler.peak.pss_mb
    if pids:
        cell.cpu_s = sum(tree_cpu_s(p) for p in pids) - cpu0
        cell.main_cpu_s = sum(own_cpu_s(p) for p in pids) - main0
    if pg:
        cell.db_cpu_s = postgres_cpu() - db0
        assert isinstance(relay, ZerohourGateway)
        own1 = relay.backend_cpu()
        cell.backend_cpu_s = sum(t - own0.get(pid, 0.0) for pid, t in own1.items())
    if stmts is not None and cell.delivered:
        cell.stmts = stmts.count()[0] / cell.delivered
    return cell


def summarize_collapsed(path: Path, top: int = 25) -> str:
    """Top functions by own samples and by inclusive samples from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    lines = [f"py-spy: {total} samples"]
    for title, d in (("own", own), ("inclusive", incl)):
        lines.append(f"-- top by {title} samples")
        for f, n in sorted(d.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"{100 * n / max(total, 1):5.1f}%  {f}")
    return "\n".join(lines)


def run_relay(
    relay: Relay,
    sink: Sink,
    ks: list[Kind],
    n: int,
    sessions: int,
    reuse: bool,
    warmup: int,
    stall: float,
    py_spy: Path | None = None,
    latency: bool = False,
    idle: int = 0,
    idles: list[tuple[str, smtp_probe.Idle]] | None = None,
) -> list[Cell]:
    idles = [] if idles is None else idles
    print(f"# {relay.name} ...", flush=True)
    try:
        relay.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        relay.stop()
        return [Cell(relay.name, k.name, error=f"did not start: {e}") for k in ks]
    cells = []
    spy: subprocess.Popen[bytes] | None = None
    try:
        if warmup:
            measure(relay, sink, ks[0], warmup, sessions, reuse, stall)
        if py_spy and relay.pids():
            exe = os.environ.get("PY_SPY", "py-spy")
            spy = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(relay.pids()[0]),
                    "--subprocesses",
                    "--idle",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "-o",
                    str(py_spy),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        for k in ks:
            c = measure(relay, sink, k, n, sessions, reuse, stall)
            print(
                f"#   {k.name}: {c.rate or 0:.0f} msgs/s" + (f" ({c.error})" if c.error else ""),
                flush=True,
            )
            if latency and c.accept_rate and not c.error:
                rate = c.accept_rate / 2
                base = sink.count
                lat = smtp_probe.latency(
                    relay.port, k.body(), rate, max(100, min(1000, int(rate * 5))),
                    sessions=sessions,
                )  # fmt: skip
                c.lat_p50, c.lat_p99 = lat.p50_ms, lat.p99_ms
                deadline = time.monotonic() + stall  # its mail delivered before the next cell
                while sink.count - base < lat.ok and time.monotonic() < deadline:
                    time.sleep(0.05)
                print(f"#   {k.name}: latency at {rate:.0f}/s p50 {lat.p50_ms or 0:.1f} ms "
                      f"p99 {lat.p99_ms or 0:.1f} ms ({lat.ok}/{lat.sent} ok)", flush=True)
            cells.append(c)
        if idle and relay.pids():
            got = smtp_probe.idle_sessions(relay.port, idle, relay.pids())
            idles.append((relay.name, got))
            print(f"#   {idle} idle sessions: {got.opened} open, PSS {got.pss_before_mb:.0f} -> "
                  f"{got.pss_with_mb:.0f} MB, new client EHLO "
                  f"{got.new_client_ms or 0:.1f} ms {got.error}", flush=True)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            if py_spy and py_spy.exists():
                print(summarize_collapsed(py_spy), flush=True)
        relay.stop()
    return cells


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="500 messages, 5 KB kinds only")
    ap.add_argument(
        "--kinds",
        help="only these message kinds, comma-separated (e.g. '100 KB plain,5 KB MIME')",
    )
    ap.add_argument("--messages", type=int, help="messages per cell (default 5000)")
    ap.add_argument(
        "--slow-messages",
        type=int,
        help="messages per cell for amavisd (default min(messages, 1000))",
    )
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument(
        "--reuse", action="store_true", help="smtp-source -d: many messages per SMTP session"
    )
    ap.add_argument("--relays", default="direct,postfix,amavisd,zerohour")
    ap.add_argument(
        "--db",
        type=Path,
        help="signature folder for amavisd's clamd and zerohour "
        "(default: a small EICAR+test db for both)",
    )
    ap.add_argument("--amavis-servers", type=int, default=4)
    ap.add_argument(
        "--workers", default="1",
        help="zerohour's smtp.workers, comma-separated: one zerohour row per count (the curve)",
    )
    ap.add_argument(
        "--no-latency", action="store_true",
        help="skip the end-of-DATA -> 250 latency probe at half of each cell's rate",
    )
    ap.add_argument(
        "--idle", type=int, default=1000,
        help="idle SMTP sessions to open against zerohour (memory, new-client time; 0: skip)",
    )
    ap.add_argument(
        "--zh-arg",
        action="append",
        default=[],
        help="extra argument for `zerohour gateway run` (repeatable)",
    )
    ap.add_argument(
        "--pg-url",
        default=DEFAULT_URL,
        help="PostgreSQL server for the zerohour-pg relay (a scratch database is made)",
    )
    ap.add_argument(
        "--count-statements",
        action="store_true",
        help="zerohour-pg: log every statement (log_statement=all, costs server CPU) and "
        "print statements per message",
    )
    ap.add_argument(
        "--rounds", type=int, default=1,
        help="run every relay this many times, one after the other per round (the machine's "
        "speed drifts): the table shows each cell's median round and the range, the ratios "
        "are taken within each round (median and range), the latency probe runs in every "
        "round (median p99 and range); idle sessions and py-spy in the first round only",
    )
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "smtp")
    ap.add_argument(
        "--py-spy",
        type=Path,
        metavar="OUT",
        help="record the zerohour gateway with py-spy (collapsed stacks to OUT) and "
        "print its top functions; py-spy binary from $PY_SPY or PATH",
    )
    ap.add_argument(
        "--stall",
        type=float,
        default=60,
        help="give up on a cell after this many seconds without a delivery",
    )
    a = ap.parse_args(argv)
    n = a.messages or (500 if a.quick else 5000)
    slow_n = a.slow_messages or min(n, 1000)
    base = Path(tempfile.mkdtemp(prefix="zh-smtp-"))  # /tmp: the amavis user must reach it
    os.chmod(base, 0o755)
    work: Path = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    ks = kinds(work, a.quick)
    if a.kinds:
        wanted = {k.strip() for k in a.kinds.split(",")}
        unknown = wanted - {k.name for k in ks}
        if unknown:
            ap.error(f"unknown kinds: {', '.join(sorted(unknown))}")
        ks = [k for k in ks if k.name in wanted]
    db = a.db
    if db is None:
        db = base / "db"
        db.mkdir()
        (db / "bench.ndb").write_text(f"Zh.Bench.Eicar:0:*:{EICAR.hex()}\n")
        (db / "bench.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n")
        os.chmod(db, 0o755)
    relays = a.relays.split(",")
    if "zerohour" in relays:  # one run per worker count, in place of "zerohour"
        at = relays.index("zerohour")
        relays[at : at + 1] = [f"zerohour:{w}" for w in a.workers.split(",")]
    if a.idle:
        smtp_probe.raise_fd_limit(a.idle + 200)
    sink = Sink()
    idles: list[tuple[str, smtp_probe.Idle]] = []
    scratch = contextlib.ExitStack()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    rounds: list[list[Cell]] = []
    try:
        for rnd in range(a.rounds):
            rounds.append(
                run_round(a, ap, relays, base, sink, ks, db, n, slow_n, scratch, idles, rnd)
            )
    finally:
        scratch.close()
        sink.stop()
        shutil.rmtree(base, ignore_errors=True)
    cells = [median_cell([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    report(a, cells, rounds, idles, ks, n, slow_n)
    return 0


def run_round(
    a: argparse.Namespace,
    ap: argparse.ArgumentParser,
    relays: list[str],
    base: Path,
    sink: Sink,
    ks: list[Kind],
    db: Path,
    n: int,
    slow_n: int,
    scratch: contextlib.ExitStack,
    idles: list[tuple[str, smtp_probe.Idle]],
    rnd: int,
) -> list[Cell]:
    """Every relay once, on every kind (one round); the extras only in the first."""
    first = rnd == 0
    cells: list[Cell] = []
    if a.rounds > 1:
        print(f"# round {rnd + 1} of {a.rounds}", flush=True)
    for name in relays:
        relay: Relay
        count = n
        workers = 1
        if name.startswith("zerohour:"):
            name, workers = "zerohour", int(name.split(":", 1)[1])
        if name == "direct":
            relay = Direct(sink)
        elif name == "postfix":
            relay = PostfixRelay(base, sink.port)
        elif name == "amavisd":
            if not shutil.which("amavisd"):
                cells += [Cell("amavisd-new", k.name, error="not installed") for k in ks]
                continue
            relay = Amavisd(base, sink.port, db, a.amavis_servers)
            count = slow_n
        elif name == "zerohour":
            relay = ZerohourGateway(base, sink.port, a.db, a.zh_arg, workers=workers)
        elif name == "zerohour-nocache":
            relay = ZerohourGateway(base, sink.port, a.db, a.zh_arg, clean_cache=False)
        elif name == "zerohour-pg":
            url, stmts = scratch.enter_context(
                scratch_database(a.pg_url, count=a.count_statements)
            )
            relay = ZerohourGateway(base, sink.port, a.db, a.zh_arg, store=url)
            relay.statements = stmts
        else:
            ap.error(f"unknown relay {name}")
        cells += run_relay(
            relay,
            sink,
            ks,
            count,
            a.sessions,
            a.reuse,
            warmup=min(200, count // 5),
            stall=a.stall,
            py_spy=a.py_spy.resolve()
            if first and a.py_spy and name.startswith("zerohour") else None,
            latency=not a.no_latency
            and name in ("zerohour", "zerohour-nocache", "zerohour-pg", "postfix"),
            idle=a.idle if first and name == "zerohour" else 0,
            idles=idles,
        )
        scratch.close()  # the scratch database of a zerohour-pg relay
    return cells


def median_cell(same: list[Cell]) -> Cell:
    """Of one cell's rounds, the one with the median rate (its CPU and the rest with it: the
    figures of one run, not a mix); latency apart: the median p50 and p99 of the rounds, each
    probe a sample of its own (at most 1,000 messages, about 5 s: one stall decides a p99).
    Of an even count the upper middle, so a missing probe never makes the p99 look better."""
    ok = sorted((c for c in same if c.rate is not None), key=lambda c: c.rate or 0.0)
    if not ok:
        return same[0]
    p50s = sorted(x for c in same if (x := c.lat_p50) is not None)
    p99s = sorted(x for c in same if (x := c.lat_p99) is not None)
    return replace(_median(ok), lat_p50=_median(p50s, upper=True) if p50s else None,
                   lat_p99=_median(p99s, upper=True) if p99s else None)


T = TypeVar("T")


def _median(ordered: list[T], upper: bool = False) -> T:
    """The middle of a sorted list; of an even one, the lower middle (a round that ran), or
    with `upper` the upper one (a latency that must not look better than it was)."""
    return ordered[len(ordered) // 2 if upper else (len(ordered) - 1) // 2]


def _spread(values: list[float]) -> str | None:
    """`median (min-max)` of per-round figures, for the tables."""
    if not values:
        return None
    v = sorted(values)
    mid = _median(v)
    return f"{mid:.2f}" if len(v) == 1 else f"{mid:.2f} ({v[0]:.2f}-{v[-1]:.2f})"


def _range(values: Iterable[float]) -> str | None:
    """`min-max` of per-round figures (rates, p99s), for the cell table."""
    v = sorted(values)
    return f"{fmt(v[0])}-{fmt(v[-1])}" if v else None


def _cell(cells: list[Cell], relay: str, kind: str) -> Cell | None:
    return next((c for c in cells if c.relay == relay and c.kind == kind and not c.error), None)


def _peer(cells: list[Cell], peer: str, kind: str) -> Cell | None:
    """A peer's cell by the first word of its row name ("postfix", "zerohour-pg")."""
    return next((c for c in cells if c.relay.split()[0] == peer and c.kind == kind
                 and not c.error), None)


def report(
    a: argparse.Namespace,
    cells: list[Cell],
    rounds: list[list[Cell]],
    idles: list[tuple[str, smtp_probe.Idle]],
    ks: list[Kind],
    n: int,
    slow_n: int,
) -> None:
    """The tables: cells (each its median round), idle sessions, ratios within rounds."""
    many = f", median of {len(rounds)} rounds (range)" if len(rounds) > 1 else ""
    print(f"# load average now: {loadavg()} ({os.cpu_count()} cores)")
    print(
        f"\n## smtp-source -s {a.sessions}{' -d' if a.reuse else ''} -> relay -> smtp-sink; "
        f"{n} messages per cell ({slow_n} for amavisd); {os.cpu_count()} cores\n"
    )
    rows: list[list[object]] = []
    for i, c in enumerate(cells):
        rows.append(
            [
                c.relay,
                c.kind,
                c.delivered or None,
                c.rate,
                *([_range(x for r in rounds if (x := r[i].rate) is not None)] if many else []),
                c.accept_rate,
                c.cpu_ms,
                c.main_cpu_s * 1000 / c.delivered
                if c.main_cpu_s is not None and c.delivered
                else None,
                c.db_cpu_s * 1000 / c.delivered if c.db_cpu_s is not None and c.delivered else None,
                c.backend_cpu_s * 1000 / c.delivered
                if c.backend_cpu_s is not None and c.delivered
                else None,
                c.stmts,
                c.pss_mb,
                c.lat_p50,
                c.lat_p99,
                *([_range(x for r in rounds if (x := r[i].lat_p99) is not None)] if many else []),
                (c.error or "")[:160],
            ]
        )
    print(
        table(
            [
                "relay",
                "message",
                "delivered",
                "msgs/s (end to end)",
                *(["msgs/s of the rounds"] if many else []),
                "accept/s",
                "relay CPU ms/msg",
                "of which root process",
                "of which PostgreSQL",
                "of which its backends",
                "SQL stmts/msg",
                "peak PSS MB",
                "p50 ms (DATA end->250, half rate)",
                "p99 ms",
                *(["p99 ms of the rounds"] if many else []),
                "note",
            ],
            rows,
        )
    )
    if idles:
        print()
        print(table(
            ["relay", "idle sessions", "open", "tree PSS MB before", "tree PSS MB with them",
             "new client connect->EHLO 250 ms", "note"],
            [[name, i.sessions, i.opened, i.pss_before_mb, i.pss_with_mb, i.new_client_ms,
              i.error[:80]] for name, i in idles],
        ))
    rrows = []
    for k in ks:
        for relay_name in sorted({c.relay for c in cells if c.relay.startswith("zerohour")},
                                 key=len):
            if relay_name.startswith("zerohour-pg"):
                continue
            who = relay_name.replace("zerohour gateway", "zerohour").replace(" (", " ")
            who = who.rstrip(")")
            for peer, label in (
                ("direct", "loopback limit"),
                ("postfix", "plain Postfix relay"),
                ("amavisd-new", "amavisd-new"),
            ):
                pairs = [(_cell(r, relay_name, k.name), _peer(r, peer, k.name)) for r in rounds]
                rates = [x for z, p in pairs if z and p if (x := ratio(z.rate, p.rate))]
                cpus = [x for z, p in pairs if z and p if (x := ratio(z.cpu_ms, p.cpu_ms))]
                if rates:
                    rrows.append([k.name, f"{who} / {label}", _spread(rates), _spread(cpus)])
        pairs = [(_cell(r, "zerohour gateway", k.name), _peer(r, "zerohour-pg", k.name))
                 for r in rounds]
        pg_rates = [x for z, p in pairs if z and p if (x := ratio(p.rate, z.rate))]
        pg_cpus = [x for z, p in pairs if z and p if (x := ratio(p.cpu_ms, z.cpu_ms))]
        if pg_rates:
            rrows.append([k.name, "zerohour-pg / zerohour (PostgreSQL / SQLite store)",
                          _spread(pg_rates), _spread(pg_cpus)])
    if rrows:
        print()
        print(table(["message", "ratio", "msgs/s x" + many, "CPU/msg x" + many], rrows))
    print(
        "\nmsgs/s = messages that reached smtp-sink / seconds from the first connection to the "
        "last delivery. CPU = the relay's process tree (utime+stime incl. reaped children), "
        "plus for zerohour-pg every PostgreSQL server process (server-wide: other sessions "
        "count too; 'its backends' is the part of the gateway's own connections)."
    )


if __name__ == "__main__":
    sys.exit(main())
