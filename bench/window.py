#!/usr/bin/env python3
"""The window: one simulated virus campaign against every protection policy, on real processes.

What zerohour is for is the window between a new virus's first sighting and its signature: how
many infected messages get through, and what protection costs clean mail. Each policy runs on
its own real stack (`zerohour provider run` when it has a provider, `zerohour gateway run`, an
SMTP sink) and receives the same seeded traffic over SMTP:

- clean mail, a Poisson stream (`--clean-rate` per simulated minute); half of it carries a zip
  holding a PE executable, the true types of the virus;
- the campaign: at T0 a burst (`--burst` messages in one minute), then a trickle
  (`--trickle` per minute); every one carries the same zipped PE sample;
- T1 = T0 + 20 min: the provider's lab declares the outbreak (in this process, through the
  same lab call the CLI makes); T2 = T0 + 4 h: the signature ships (a signed bundle for gateways
  with a provider; for the others the operator's database folder gets it and the gateway is
  told to reload, the freshclam path). Traffic stops 5 minutes after T2; the run goes on until
  `--tail` minutes after T2 so delayed mail drains.

Policies: `none` (no provider); `delay` (no provider, `hold.delay` = 30 min for mail with risky
attachments); `poll` (the gateway learns only by polling every 5 minutes: `notices.stream =
false`, no UDP, `notices.poll_interval` = 5 min, as Cisco's outbreak filters do); `stream` and
`udp` (zerohour push, each transport alone for UDP); `checksum` (the notice carries the
sample's checksums: no hold, matching mail is quarantined); `attachments` (`hold.mode =
attachments`: the body goes out at once, the attachment waits).

The clock is compressed: one simulated minute is `--scale` wall seconds (1.0 by default,
0.05 with --quick), and every interval and timeout of the simulation (traffic, T1, T2, the poll
interval, the delay, the gateway's default 60 s poll) is scaled the same way. Processing is
not: SMTP, scanning and notice delivery take the milliseconds they take. So times are reported
as real-life equivalents: a clean message's delay is its wall delay plus the time it spent held
stretched back to real time; exposure (from the declaration until the gateway holds) is wall
time for push, and stretched back for the poll (its interval is simulated).

Measures per policy: infected messages delivered before T1, between T1 and the gateway learning
of the outbreak (for policies without a provider: the signature at T2), and after; exposure;
clean mail's delay (p50, p99, max, until the complete message arrives; and p99 until its first
copy arrives: with `attachments` the body copy); clean messages held; infected messages
quarantined before and after T2. After the campaign, `--probes` more declarations measure
exposure p50/p99 on the same stack.

    .venv/bin/python bench/window.py --quick                  # ~2-3 min smoke run
    .venv/bin/python bench/window.py --doc docs/window.md     # full: ~40 min; writes the doc
    .venv/bin/python bench/window.py --policies none,stream --scale 0.5

A benchmark, not a test: it prints a table and never asserts. The last line:
`window: infected after notice <n> (push), exposure p99 <ms> ms (push), clean delay p99 <s> s
(checksum mode)`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import os
import random
import shutil
import signal
import smtplib
import sqlite3
import struct
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import loadavg, table

from zerohour.demo.gate import POLL, STREAM, ProviderGate
from zerohour.demo.stack import (
    LOCALHOST,
    GatewayOptions,
    GatewayProcess,
    MailSink,
    ProviderProcess,
    zerohour_argv,
)
from zerohour.notices.model import OutbreakMode
from zerohour.provider import lab
from zerohour.provider.log import Provider
from zerohour.scan.database import starter_db_dir

T1_MIN = 20.0  # declaration, minutes after T0
T2_MIN = 240.0  # signature, minutes after T0
WARMUP_MIN = 10.0  # clean traffic before T0
TRAFFIC_AFTER_T2 = 5.0  # traffic stops this many minutes after T2
DELAY_MIN = 30.0  # the delay queue's timer
POLL_MIN = 5.0  # the poll-only policy's interval
POLL_PROBES = 10  # exposure probes for the poll policy (each waits about half an interval)
GATEWAY_POLL_S = 60.0  # the gateway's default poll interval (real seconds), for push policies
SCOPE = "types=executable"  # what the lab declares for hold-mode outbreaks
VIRUS_NAME = "Sim.Worm.Window"
POLICIES = ("none", "delay", "poll", "stream", "udp", "checksum", "attachments")
PUSH = ("stream", "udp", "checksum", "attachments")


# -- traffic -----------------------------------------------------------------------------------


def pad(b: bytes, n: int = 0x200) -> bytes:
    return b + b"\x00" * (-len(b) % n or 0) if b else b"\x00" * n


def make_pe(text: bytes, data: bytes) -> bytes:
    """A two-section PE32 (as tests/conformance/samples.py builds it): true type executable."""
    text_raw, data_raw = pad(text), pad(data)
    dos = b"MZ" + b"\x00" * 58 + struct.pack("<I", 0x40)
    coff = struct.pack("<4sHHIIIHH", b"PE\x00\x00", 0x14C, 2, 0, 0, 0, 0xE0, 0x0102)
    opt = struct.pack(
        "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
        0x10B, 0, 0, len(text_raw), len(data_raw), 0, 0x1000, 0x1000, 0x2000,
        0x400000, 0x1000, 0x200, 4, 0, 0, 0, 4, 0, 0, 0x3000 + 0x1000 * (len(text_raw) >> 12),
        0x200, 0, 2, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16,
    ) + b"\x00" * 128  # fmt: skip
    text_off = 0x200
    data_off = text_off + len(text_raw)
    sec = struct.pack(
        "<8sIIIIIIHHI", b".text", len(text_raw), 0x1000, len(text_raw), text_off,
        0, 0, 0, 0, 0x60000020,
    )  # fmt: skip
    sec += struct.pack(
        "<8sIIIIIIHHI", b".data", len(data_raw), 0x2000, len(data_raw), data_off,
        0, 0, 0, 0, 0xC0000040,
    )  # fmt: skip
    return pad(dos + coff + opt + sec) + text_raw + data_raw


def zipped(member: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2026, 12, 1, 9, 0, 0))
        z.writestr(info, member, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def mime(subject: str, text: str, attachment: tuple[str, bytes] | None) -> tuple[bytes, bytes]:
    """A message and the fingerprint of its attachment (b"" without one): the first base64
    line, present in the delivered message only when the attachment is."""
    head = (
        f"From: sender@outside.test\r\nTo: user@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@outside.test>\r\nMIME-Version: 1.0\r\n"
    )
    if attachment is None:
        return (head + f"Content-Type: text/plain\r\n\r\n{text}\r\n").encode(), b""
    name, data = attachment
    lines = base64.encodebytes(data).decode().splitlines()
    return (
        head + "Content-Type: multipart/mixed; boundary=SIM\r\n\r\n--SIM\r\n"
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--SIM\r\n"
        f'Content-Type: application/zip; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + "\r\n".join(lines) + "\r\n--SIM--\r\n"
    ).encode(), lines[0].encode()


@dataclass(frozen=True)
class Msg:
    id: str  # the envelope sender's local part: sim-<id>@outside.test
    at: float  # simulated minutes from T0
    virus: bool
    data: bytes
    fingerprint: bytes

    @property
    def sender(self) -> str:
        return f"sim-{self.id}@outside.test"


@dataclass(frozen=True)
class Traffic:
    messages: tuple[Msg, ...]
    sample: bytes  # the virus's PE


INVOICE = "Please pay the attached invoice."


def traffic(seed: int, clean_rate: float, burst: int, trickle: float) -> Traffic:
    rnd = random.Random(seed)
    sample = make_pe(b"\x55\x8b\xec" + rnd.randbytes(900), b"window campaign " * 40)
    virus_zip = zipped(sample, "invoice.exe")
    end = T2_MIN + TRAFFIC_AFTER_T2
    out: list[Msg] = []
    t, n = -WARMUP_MIN, 0
    while True:
        t += rnd.expovariate(clean_rate)
        if t >= end:
            break
        n += 1
        att = None
        if rnd.random() < 0.5:
            pe = make_pe(rnd.randbytes(rnd.randint(500, 3000)), rnd.randbytes(800))
            att = (f"report-{n}.zip", zipped(pe, f"report-{n}.exe"))
        data, fp = mime(f"clean {n}", "Quarterly figures attached, as promised.", att)
        out.append(Msg(f"c{n:05d}", t, False, data, fp))
    v = 0
    for _ in range(burst):
        v += 1
        data, fp = mime(f"invoice {v}", INVOICE, ("invoice.zip", virus_zip))
        out.append(Msg(f"v{v:05d}", rnd.uniform(0.0, 1.0), True, data, fp))
    t = 1.0
    while True:
        t += rnd.expovariate(trickle)
        if t >= end:
            break
        v += 1
        data, fp = mime(f"invoice {v}", INVOICE, ("invoice.zip", virus_zip))
        out.append(Msg(f"v{v:05d}", t, True, data, fp))
    return Traffic(tuple(sorted(out, key=lambda m: m.at)), sample)


# -- the stack for one policy --------------------------------------------------------------------


class LocalGateway(GatewayProcess):
    """`zerohour gateway run` with no provider at all (policies none and delay)."""

    def start(self, timeout: float = 90.0) -> LocalGateway:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir.parent / f"{self.data_dir.name}.toml"
        conf.write_text(GATEWAY_TOML + self.options.toml)
        self.argv = zerohour_argv(
            "gateway", "run", "--config", str(conf), "--data-dir", str(self.data_dir),
            "--listen", self.listen, "--next-hop", self.next_hop,
            "--relay-domain", "example.test", "--admin-listen", "off",
        )  # fmt: skip
        self.spawn()
        line = self.wait_line(lambda s: "gateway listening on" in s, timeout)
        self.smtp_port = int(line.strip().rsplit(":", 1)[1])
        return self


GATEWAY_TOML = """\
spool_minfree = 0

[smtp]
hostname = "gw.window.test"

[delivery]
retry_min = 0.2
retry_max = 1.0
poll_interval = 0.05
starttls = false
"""


@dataclass
class Clock:
    """Simulated minutes from T0 <-> wall time (time.time())."""

    start: float  # wall time of simulated minute -WARMUP_MIN
    scale: float  # wall seconds per simulated minute

    def wall(self, sim_min: float) -> float:
        return self.start + (sim_min + WARMUP_MIN) * self.scale

    def sim(self, wall: float) -> float:
        return (wall - self.start) / self.scale - WARMUP_MIN

    @property
    def stretch(self) -> float:
        """Real seconds per wall second (60 / scale)."""
        return 60.0 / self.scale


@dataclass
class Stack:
    policy: str
    root: Path
    scale: float
    db_dir: Path
    sink: MailSink = field(default_factory=MailSink)
    provider: ProviderProcess | None = None
    gate: ProviderGate | None = None
    gateway: GatewayProcess | None = None
    lab: Provider | None = None

    def start(self) -> Stack:
        p, s = self.policy, self.scale
        self.sink.start()
        scan = f'[scan]\ninfected = "quarantine"\nworkers = 1\ndb_dirs = ["{self.db_dir}"]\n'
        hold = ""
        if p == "delay":
            hold = f"[hold]\ndelay = {DELAY_MIN * s!r}\n"
        if p == "attachments":
            hold = '[hold]\nmode = "attachments"\n'
        if p in ("none", "delay"):
            self.gateway = LocalGateway(
                self.root / "gateway", self.root / "gateway.log",
                ProviderProcess(self.root / "unused", self.root / "unused.log"),
                self.sink.address, GatewayOptions(toml=scan + hold),
            ).start()  # fmt: skip
            return self
        self.provider = ProviderProcess(
            self.root / "provider", self.root / "provider.log", ("--heartbeat", "30")
        ).start()
        poll = max(0.1, GATEWAY_POLL_S / 60 * s)
        notices = ""
        url = None
        udp = p == "udp"
        if p == "poll":
            poll = POLL_MIN * s
            notices = "stream = false\n"
        if udp:  # UDP alone: the stream and the poll are refused by a gate
            self.gate = ProviderGate(self.provider.url, (STREAM, *POLL)).start()
            url = self.gate.url
        opts = GatewayOptions(
            poll_interval=poll, udp=udp, provider_url=url, toml=notices + scan + hold
        )
        self.gateway = GatewayProcess(
            self.root / "gateway", self.root / "gateway.log", self.provider,
            self.sink.address, opts,
        ).start()  # fmt: skip
        if udp:
            deadline = time.monotonic() + 60
            while "notice.subscribed" not in self.gateway.log_path.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway did not subscribe:\n" + self.gateway.log_tail())
                time.sleep(0.05)
        self.lab = Provider(self.provider.data_dir, create=False)
        return self

    def close(self) -> None:
        if self.lab is not None:
            self.lab.close()
        if self.gateway is not None:
            self.gateway.stop()
        if self.provider is not None:
            self.provider.stop()
        if self.gate is not None:
            self.gate.stop()
        self.sink.stop()

    @property
    def store_path(self) -> Path:
        assert self.gateway is not None
        return self.gateway.data_dir / "zerohour.sqlite3"


@contextlib.contextmanager
def stack(policy: str, root: Path, scale: float, db_dir: Path) -> Iterator[Stack]:
    s = Stack(policy, root, scale, db_dir)
    try:
        yield s.start()
    finally:
        s.close()


def send(port: int, msg: Msg) -> tuple[float, float, int]:
    """One SMTP transaction; (wall time before connecting, after the reply, reply code)."""
    t0 = time.time()
    try:
        with smtplib.SMTP(LOCALHOST, port, timeout=60) as s:
            s.sendmail(msg.sender, ["user@example.test"], msg.data)
        code = 250
    except smtplib.SMTPResponseException as exc:
        code = exc.smtp_code
    except (smtplib.SMTPException, OSError):
        code = 0
    return t0, time.time(), code


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Run:
    policy: str
    clock: Clock
    sent: dict[str, tuple[float, float, int]]  # id -> (t_submit, t_reply, code)
    t1_wall: float | None  # the declaration's commit
    t2_wall: float
    learned_wall: float | None  # the outbreak is in the gateway's store; else the signature
    by_notice: bool  # learned from a notice (else: from the signature, or never)
    arrivals: dict[str, list[tuple[float, bool]]]  # id -> [(wall, complete)] at the sink
    held: Intervals  # id -> when the original was held (wall)
    quarantined: dict[str, float]  # id -> wall time of its quarantine
    states: dict[str, str]  # id -> final state of the original
    probes_ms: list[float]  # exposure of the probe declarations (wall ms)
    during_release_ms: float | None  # a probe declared just after the bundle (wall ms)


def sleep_until(wall: float) -> None:
    while (left := wall - time.time()) > 0:
        time.sleep(min(left, 0.5))


def run_policy(
    policy: str, tr: Traffic, root: Path, scale: float, tail: float, probes: int
) -> Run:
    db_dir = root / "db"
    shutil.copytree(starter_db_dir(), db_dir)
    sample = root / "invoice.exe"
    sample.write_bytes(tr.sample)
    sig = root / "window.hsb"
    sig.write_text(f"{hashlib.sha256(tr.sample).hexdigest()}:{len(tr.sample)}:{VIRUS_NAME}\n")
    with stack(policy, root, scale, db_dir) as st:
        gw = st.gateway
        assert gw is not None
        warm = Msg("warm", 0, False, mime("warm", "warm up", None)[0], b"")
        send(gw.smtp_port, warm)
        deadline = time.monotonic() + 60
        while not st.sink.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        clock = Clock(time.time() + 1.0, scale)
        sent: dict[str, tuple[float, float, int]] = {}
        outbreak: list[str] = []
        t1_wall: list[float] = []

        def declare() -> None:
            assert st.lab is not None
            mode = OutbreakMode.CHECKSUM if policy == "checksum" else OutbreakMode.HOLD
            t1_wall.append(time.time())  # the lab declares: its append is part of exposure
            _, spec = lab.declare(
                st.lab, name=VIRUS_NAME, samples=[sample] if policy == "checksum" else [],
                scope=lab.parse_scope("all" if policy == "checksum" else SCOPE), mode=mode,
            )  # fmt: skip
            outbreak.append(spec.outbreak_id)

        sig_live: list[float] = []
        during: list[float] = []
        releasing = threading.Thread(
            target=probe_during_release,
            args=(st.provider.data_dir if st.provider else root, st.store_path, during),
            daemon=True,
        )

        def ship() -> None:
            before = db_meta(st.store_path, "db.installed_version")
            threading.Thread(
                target=watch_meta, args=(st.store_path, "db.installed_version", before, sig_live),
                daemon=True,
            ).start()  # fmt: skip
            if st.lab is not None and outbreak:
                lab.publish(st.lab, [sig], outbreak)
                assert st.provider is not None
                releasing.start()
                return
            shutil.copy(sig, db_dir / sig.name)  # the operator's database update
            assert gw.proc is not None
            os.kill(gw.proc.pid, signal.SIGHUP)

        controls: list[tuple[float, Callable[[], None]]] = [(T2_MIN, ship)]
        if st.lab is not None:
            controls.append((T1_MIN, declare))
        events: list[tuple[float, int, object]] = [(m.at, 1, m) for m in tr.messages]
        events += [(t, 0, fn) for t, fn in controls]
        events.sort(key=lambda e: (e[0], e[1]))
        t2_wall = clock.wall(T2_MIN)
        with ThreadPoolExecutor(max_workers=8) as pool:

            def one(m: Msg) -> None:
                sent[m.id] = send(gw.smtp_port, m)

            for at, _, what in events:
                sleep_until(clock.wall(at))
                if isinstance(what, Msg):
                    pool.submit(one, what)
                else:
                    if what is ship:
                        t2_wall = time.time()
                    what()  # type: ignore[operator]
        sleep_until(clock.wall(T2_MIN + tail))
        settle(st, outbreak[0] if outbreak else None)
        learned = learned_at(st.store_path, outbreak[0]) if outbreak else None
        by_notice = learned is not None
        if learned is None and sig_live:
            learned = sig_live[0]  # without a provider, the signature is what it learns
        if releasing.ident is not None:
            releasing.join(timeout=120)
        poll = POLL_MIN * scale if policy == "poll" else 0.0
        n = min(probes, POLL_PROBES) if poll else probes  # each takes half an interval
        probe_ms = exposure_probes(st, n, poll, len(tr.messages))
        # the store first: a message delivered in between is then in the sink, not lost
        held, quarantined, states = store_outcomes(st.store_path)
        arrivals: dict[str, list[tuple[float, bool]]] = {}
        fp = {m.id: m.fingerprint for m in tr.messages}
        off = time.time() - time.monotonic()
        for sm in st.sink.snapshot():
            mid = sm.mail_from.removeprefix("sim-").split("@", 1)[0]
            if mid not in fp:
                continue
            complete = not fp[mid] or fp[mid] in sm.data
            arrivals.setdefault(mid, []).append((sm.at + off, complete))
    return Run(
        policy, clock, sent, t1_wall[0] if t1_wall else None, t2_wall, learned, by_notice,
        arrivals, held, quarantined, states, probe_ms, during[0] if during else None,
    )  # fmt: skip


def settle(st: Stack, outbreak_id: str | None, limit: float = 120.0) -> None:
    """Wait until nothing is being received or queued (deliveries done) and nothing is held
    for the campaign's outbreak any more (its release after the bundle is over: the gateway
    applies the next notice only after that release, which would skew the probes)."""
    deadline = time.monotonic() + limit
    with contextlib.closing(sqlite3.connect(st.store_path, timeout=30)) as db:
        while time.monotonic() < deadline:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM messages WHERE state IN ('received', 'queued')"
            ).fetchone()
            (h,) = db.execute(
                "SELECT COUNT(*) FROM messages m JOIN hold_tags t USING (queue_id)"
                " WHERE m.state='held' AND t.outbreak_id=?",
                (outbreak_id or "",),
            ).fetchone()
            if n == 0 and h == 0:
                return
            time.sleep(0.1)


def db_meta(store: Path, key: str) -> str | None:
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as db:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def watch_meta(store: Path, key: str, before: str | None, out: list[float]) -> None:
    """Note the wall time `key` moves (the new database is loaded): the signature is live."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if db_meta(store, key) != before:
            out.append(time.time())
            return
        time.sleep(0.002)


def learned_at(store: Path, outbreak_id: str) -> float | None:
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as db:
        row = db.execute(
            "SELECT declared_at FROM outbreaks WHERE outbreak_id=?", (outbreak_id,)
        ).fetchone()
    return None if row is None else float(row[0])


def probe_during_release(provider_dir: Path, store: Path, out: list[float]) -> None:
    """A second outbreak declared 0.2 s after the signature bundle: while the gateway installs
    the bundle and rescans what it held (wall ms until the gateway's store has it)."""
    time.sleep(0.2)
    p = Provider(provider_dir, create=False)  # SQLite connections stay in their thread
    try:
        t0 = time.perf_counter()
        _, spec = lab.declare(p, name="Probe.During.Release", scope=lab.parse_scope("types=pdf"))
        query = "SELECT 1 FROM outbreaks WHERE outbreak_id=? AND ended_at IS NULL"
        with contextlib.closing(sqlite3.connect(store, timeout=30)) as db:
            while db.execute(query, (spec.outbreak_id,)).fetchone() is None:
                if time.perf_counter() - t0 > 110:
                    return
                time.sleep(0.0002)
        out.append((time.perf_counter() - t0) * 1000)
        lab.end(p, spec.outbreak_id)
    finally:
        p.close()


def exposure_probes(st: Stack, n: int, poll: float, seed: int) -> list[float]:
    """Declare and end `n` probe outbreaks (scope pdf: the traffic has stopped anyway) and time
    each from the lab's call until the gateway's store has it (wall ms; a SQLite reader polling
    every 0.2 ms). With a poll, each waits a random part of the interval first: declared right
    after the previous probe was seen, every probe would wait a whole interval."""
    if st.lab is None or n <= 0:
        return []
    rnd = random.Random(seed)
    out: list[float] = []
    query = "SELECT 1 FROM outbreaks WHERE outbreak_id=? AND ended_at IS NULL"
    with contextlib.closing(sqlite3.connect(st.store_path, timeout=30)) as db:
        for i in range(n):
            time.sleep(rnd.uniform(0, poll))
            t0 = time.perf_counter()
            _, spec = lab.declare(st.lab, name=f"Probe.{i}", scope=lab.parse_scope("types=pdf"))
            while db.execute(query, (spec.outbreak_id,)).fetchone() is None:
                if time.perf_counter() - t0 > 60 + 3 * poll:
                    raise RuntimeError("probe never applied")
                time.sleep(0.0002)
            out.append((time.perf_counter() - t0) * 1000)
            lab.end(st.lab, spec.outbreak_id)
            while db.execute(
                "SELECT 1 FROM outbreaks WHERE outbreak_id=? AND ended_at IS NULL",
                (spec.outbreak_id,),
            ).fetchone():
                time.sleep(0.002)
            time.sleep(0.05)
    return out


Intervals = dict[str, list[tuple[float, float]]]


def store_outcomes(store: Path) -> tuple[Intervals, dict[str, float], dict[str, str]]:
    """Per original message (by its sim id): when it was held (wall start, end), when it was
    quarantined, its final state."""
    held: Intervals = {}
    quarantined: dict[str, float] = {}
    states: dict[str, str] = {}
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as db:
        ids = {
            q: s.removeprefix("sim-").split("@", 1)[0]
            for q, s in db.execute("SELECT queue_id, sender FROM messages WHERE kind='mail'")
        }
        for q, st in db.execute("SELECT queue_id, state FROM messages WHERE kind='mail'"):
            states[ids[q]] = st
        since: dict[str, float] = {}
        for q, at, st in db.execute("SELECT queue_id, at, state FROM events ORDER BY id"):
            mid = ids.get(q)
            if mid is None:
                continue
            if mid in since:
                held.setdefault(mid, []).append((since.pop(mid), at))
            if st == "held":
                since[mid] = at
            if st == "quarantined":
                quarantined[mid] = at
        end = time.time()
        for mid, at in since.items():  # still held
            held.setdefault(mid, []).append((at, end))
    return held, quarantined, states


# -- measures ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


@dataclass
class Measures:
    policy: str
    infected: int
    before_t1: int
    t1_to_learned: int
    after_learned: int
    learned_label: str
    exposure_s: float | None  # real-life equivalent
    exposure_wall_ms: float | None
    clean_p50: float | None  # real-life seconds until the complete message arrived
    clean_p99: float | None
    clean_max: float | None
    first_p99: float | None  # until its first copy arrived
    clean_held: int
    clean: int
    quarantined_before_t2: int
    quarantined_after_t2: int
    probes_s: list[float]  # exposure of the probe declarations, real-life seconds
    during_release_s: float | None  # exposure of a declaration during the T2 release
    probes_wall_ms: list[float]
    lost: int  # sent (250) but neither delivered, held nor quarantined: must be 0
    timeline: list[tuple[float, int]]  # (sim minute, infected delivered so far)
    held_timeline: list[tuple[float, int]]  # (sim minute, clean messages held at that time)


def measure(r: Run, tr: Traffic) -> Measures:
    c = r.clock
    clock_bound = r.policy == "poll"
    learned = r.learned_wall if r.learned_wall is not None else r.t2_wall
    t1 = r.t1_wall if r.t1_wall is not None else c.wall(T1_MIN)
    first_full: dict[str, float] = {}
    first_any: dict[str, float] = {}
    for mid, arr in r.arrivals.items():
        first_any[mid] = min(t for t, _ in arr)
        full = [t for t, ok in arr if ok]
        if full:
            first_full[mid] = min(full)
    infected = [m for m in tr.messages if m.virus]
    delivered_v = sorted(first_full[m.id] for m in infected if m.id in first_full)
    before = sum(1 for t in delivered_v if t < t1)
    between = sum(1 for t in delivered_v if t1 <= t <= learned)
    after = sum(1 for t in delivered_v if t > learned)
    exposure_wall = learned - t1 if r.by_notice else None
    if exposure_wall is not None:
        exposure = exposure_wall * (c.stretch if clock_bound else 1.0)
    else:
        exposure = (learned - t1) * c.stretch  # nothing learns before the signature

    def trigger(start: float) -> float:
        """When the simulated clock ended a hold that began at `start`: the delay's timer, or
        the signature shipping at T2. What follows (bundle install, rescans) is processing."""
        return start + DELAY_MIN * c.scale if r.policy == "delay" else r.t2_wall

    def clocked(mid: str) -> float:
        """Wall seconds of simulated time the message spent held."""
        return sum(max(0.0, min(e, trigger(s)) - s) for s, e in r.held.get(mid, []))

    def real(mid: str, arrived: float) -> float:
        return arrived - r.sent[mid][0] + clocked(mid) * (c.stretch - 1.0)

    clean = [m for m in tr.messages if not m.virus and r.sent.get(m.id, (0, 0, 0))[2] == 250]
    full_d = [real(m.id, first_full[m.id]) for m in clean if m.id in first_full]

    def first(mid: str) -> float:
        """Until the first copy: the complete message, or a copy sent while it was held."""
        t = first_any[mid]
        if mid in first_full and first_full[mid] <= t:
            return real(mid, t)
        return t - r.sent[mid][0]

    first_d = [first(m.id) for m in clean if m.id in first_any]
    t2 = r.t2_wall
    q_before = sum(1 for m in infected if m.id in r.quarantined and r.quarantined[m.id] < t2)
    q_after = sum(1 for m in infected if m.id in r.quarantined and r.quarantined[m.id] >= t2)
    accepted = [m for m in tr.messages if r.sent.get(m.id, (0, 0, 0))[2] == 250]
    waiting = ("held", "queued", "received")  # at the end of the run: not lost, not yet out
    lost = sum(
        1 for m in accepted
        if m.id not in first_full and m.id not in r.quarantined
        and r.states.get(m.id) not in waiting
    )  # fmt: skip
    timeline = [(c.sim(t), i + 1) for i, t in enumerate(delivered_v)]
    # clean messages in the hold over time
    marks: list[tuple[float, int]] = []
    held_ids = {m.id for m in clean if r.held.get(m.id)}
    for m in clean:
        for start, end in r.held.get(m.id, []):
            part = max(0.0, min(end, trigger(start)) - start)
            marks.append((c.sim(start), 1))
            marks.append((c.sim(start + part) + (end - start - part) / 60, -1))
    marks.sort()
    level, held_tl = 0, [(-WARMUP_MIN, 0)]
    for t, d in marks:
        level += d
        held_tl.append((t, level))
    return Measures(
        r.policy, len(infected), before, between, after,
        "notice applied" if r.by_notice else "signature live",
        exposure, None if exposure_wall is None else exposure_wall * 1000,
        pct(full_d, 0.5), pct(full_d, 0.99), max(full_d) if full_d else None, pct(first_d, 0.99),
        len(held_ids), len(clean), q_before, q_after,
        [x / 1000 * (c.stretch if clock_bound else 1.0) for x in r.probes_ms],
        # a poll mixes processing and its (simulated) interval here: not shown
        None if r.during_release_ms is None or clock_bound else r.during_release_ms / 1000,
        r.probes_ms,
        lost, timeline, held_tl,
    )  # fmt: skip


# -- output --------------------------------------------------------------------------------------


def human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


LABELS = {
    "none": "1. no protection",
    "delay": f"2. delay queue {DELAY_MIN:.0f} min",
    "poll": f"3. poll every {POLL_MIN:.0f} min only",
    "stream": "4a. zerohour push (stream)",
    "udp": "4b. zerohour push (UDP)",
    "checksum": "5. zerohour checksum mode",
    "attachments": "6. zerohour attachment-only hold",
}


def rows(ms: list[Measures]) -> list[list[object]]:
    out: list[list[object]] = []
    for m in ms:
        probes = "-"
        if m.probes_s:
            lo, hi = pct(m.probes_s, 0.5), pct(m.probes_s, 0.99)
            probes = f"{human(lo)} / {human(hi)} (n={len(m.probes_s)})"
        out.append(
            [
                LABELS[m.policy], f"{m.before_t1}", f"{m.t1_to_learned}", f"{m.after_learned}",
                human(m.exposure_s), probes, human(m.during_release_s),
                human(m.clean_p50), human(m.clean_p99),
                human(m.clean_max), human(m.first_p99), f"{m.clean_held}/{m.clean}",
                f"{m.quarantined_before_t2}", f"{m.quarantined_after_t2}",
                f"{m.infected}" + (f" ({m.lost} messages lost!)" if m.lost else ""),
            ]
        )  # fmt: skip
    return out


HEADERS = [
    "policy", "infected delivered before T1", "T1 to learning", "after learning",
    "exposure", "exposure p50 / p99 (probes)", "exposure during the T2 release",
    "clean delay p50", "clean delay p99",
    "clean delay max", "first copy p99", "clean held", "infected quarantined before T2",
    "infected quarantined after T2", "infected sent",
]


def plot(ms: list[Measures], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})  # fmt: skip
    end = T2_MIN + TRAFFIC_AFTER_T2 + 30
    for m in ms:
        xs = [-WARMUP_MIN] + [t for t, _ in m.timeline] + [end]
        ys = [0] + [n for _, n in m.timeline] + [m.timeline[-1][1] if m.timeline else 0]
        label = f"{LABELS[m.policy]}: {len(m.timeline)} delivered"
        top.step(xs, ys, where="post", label=label, linewidth=1.6)
        hx = [t for t, _ in m.held_timeline] + [end]
        hy = [n for _, n in m.held_timeline] + [m.held_timeline[-1][1]]
        bottom.step(hx, hy, where="post", linewidth=1.4)
    marks = (
        (0, "T0 campaign", 0.97), (T1_MIN, "T1 declared", 0.90), (T2_MIN, "T2 signature", 0.97)
    )
    for ax in (top, bottom):
        for x, name, y in marks:
            ax.axvline(x, color="0.4", linestyle="--", linewidth=0.8)
            if ax is top:
                ax.text(x + 2, y, name, transform=ax.get_xaxis_transform(), va="top",
                        fontsize=9, color="0.25")  # fmt: skip
        ax.grid(alpha=0.25)
    top.set_ylabel("infected messages delivered (cumulative)")
    top.set_title(title, fontsize=11)
    top.legend(loc="upper left", bbox_to_anchor=(0.12, 0.86), fontsize=8.5)
    bottom.set_ylabel("clean messages in the hold")
    bottom.set_xlabel("simulated minutes from T0 (first infected message)")
    bottom.set_xlim(-WARMUP_MIN, end)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="scale 0.05 s/min, 8 probes, 2 at once: ~2 min"
    )
    ap.add_argument("--scale", type=float, default=None, help="wall seconds per simulated minute")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--clean-rate", type=float, default=2.0, help="clean messages per minute")
    ap.add_argument("--burst", type=int, default=40, help="infected messages in T0's minute")
    ap.add_argument("--trickle", type=float, default=0.5, help="infected messages per minute")
    ap.add_argument("--tail", type=float, default=40.0, help="minutes simulated after T2")
    ap.add_argument("--probes", type=int, default=None, help="exposure probes per policy")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument(
        "--jobs", type=int, default=None, help="policies run at once (1; --quick: 2)"
    )
    ap.add_argument("--svg", type=Path, default=None, help="the timeline picture (SVG)")
    ap.add_argument("--doc", type=Path, default=None, help="write this Markdown page too")
    args = ap.parse_args(argv)
    scale = args.scale if args.scale is not None else (0.05 if args.quick else 1.0)
    probes = args.probes if args.probes is not None else (8 if args.quick else 30)
    chosen = [p for p in args.policies.split(",") if p]
    bad = set(chosen) - set(POLICIES)
    if bad:
        ap.error(f"unknown policies {sorted(bad)}; choose from {', '.join(POLICIES)}")
    tr = traffic(args.seed, args.clean_rate, args.burst, args.trickle)
    root = Path(tempfile.mkdtemp(prefix="zerohour-bench-window-"))
    n_clean = sum(1 for m in tr.messages if not m.virus)
    n_virus = len(tr.messages) - n_clean
    sim_total = WARMUP_MIN + T2_MIN + args.tail
    load_before = loadavg()
    print(
        f"data in {root}; load {load_before}; {os.cpu_count()} CPUs\n"
        f"clock: 1 simulated minute = {scale:g} s of wall time ({60 / scale:g}x); every "
        f"interval and timeout of the simulation is scaled the same way (T1 = T0 + "
        f"{T1_MIN:g} min, T2 = T0 + {T2_MIN:g} min, delay {DELAY_MIN:g} min = "
        f"{DELAY_MIN * scale:g} s, poll {POLL_MIN:g} min = {POLL_MIN * scale:g} s); "
        f"processing is not\n"
        f"traffic (seed {args.seed}): {n_clean} clean (half with a zipped PE), {n_virus} "
        f"infected; {sim_total:g} simulated minutes = {sim_total * scale:.0f} s per policy",
        flush=True,
    )
    def one(p: str) -> Measures:
        t = time.monotonic()
        print(f"policy {p} ...", flush=True)
        r = run_policy(p, tr, root / p, scale, args.tail, probes if p != "none" else 0)
        lag = [
            (r.sent[m.id][0] - r.clock.wall(m.at)) / scale for m in tr.messages if m.id in r.sent
        ]  # simulated minutes each message left after its schedule: the sender keeping up
        print(
            f"  {p} done in {time.monotonic() - t:.0f} s; sending lagged the schedule by "
            f"p50 {pct(lag, 0.5) or 0:.2f}, p99 {pct(lag, 0.99) or 0:.2f}, max {max(lag):.2f} "
            "simulated minutes",
            flush=True,
        )
        return measure(r, tr)

    jobs = args.jobs if args.jobs is not None else (2 if args.quick else 1)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, chosen))
    title = (
        f"One campaign, {n_virus} infected and {n_clean} clean messages "
        f"(seed {args.seed}, 1 min = {scale:g} s)"
    )
    print()
    out = table(HEADERS, rows(results))
    print(out)
    load_after = loadavg()
    print(
        "\nTimes are real-life equivalents (see the docstring); exposure probes are wall "
        f"milliseconds (for the poll: stretched back). load after: {load_after}"
    )
    svg = args.svg or (args.doc.with_suffix(".svg") if args.doc else root / "window.svg")
    plot(results, svg, title)
    plot(results, root / "window.png", title)  # to look at without an SVG viewer
    print(f"picture: {svg} (and {root / 'window.png'})")
    if args.doc:
        write_doc(args.doc, svg, out, argv, scale, load_before, load_after, tr, args)
        print(f"doc: {args.doc}")
    by = {m.policy: m for m in results}
    push, cs = by.get("stream"), by.get("checksum")
    n_after = "-" if push is None else str(push.t1_to_learned + push.after_learned)
    p99 = None
    if push is not None:
        campaign = [] if push.exposure_wall_ms is None else [push.exposure_wall_ms]
        p99 = pct(push.probes_wall_ms + campaign, 0.99)
    exp = "-" if p99 is None else f"{p99:.1f}"
    delay = "-" if cs is None or cs.clean_p99 is None else f"{cs.clean_p99:.2f}"
    print(
        f"window: infected after notice {n_after} (push), exposure p99 {exp} ms (push), "
        f"clean delay p99 {delay} s (checksum mode)"
    )
    return 0


def write_doc(
    path: Path, svg: Path, out: str, argv: list[str] | None, scale: float, load_before: str,
    load_after: str, tr: Traffic, args: argparse.Namespace,
) -> None:  # fmt: skip
    given = argv if argv is not None else sys.argv[1:]
    cmd = " ".join([".venv/bin/python bench/window.py", *given])
    rel = os.path.relpath(svg, path.parent)
    text = DOC.format(
        cmd=cmd, table=out, svg=rel, scale=scale, stretch=60 / scale,
        load_before=load_before, load_after=load_after, cpus=os.cpu_count(),
        clean=sum(1 for m in tr.messages if not m.virus),
        virus=sum(1 for m in tr.messages if m.virus), seed=args.seed,
    )  # fmt: skip
    marker = "<!-- findings -->"
    if path.exists() and marker in path.read_text():
        text += path.read_text().split(marker, 1)[1]  # keep the hand-written findings
    else:
        text += "\n" + marker + "\n"
    path.write_text(text)


DOC = """# The window: one campaign against every protection policy

What an outbreak gateway exists for is the window between a new virus's first sighting (T0)
and its signature (T2): how many infected messages get through in that time, and what the
protection costs clean mail. `bench/window.py` runs one simulated campaign, with the same
seeded traffic, against seven policies, each on its own real stack (provider, gateway, SMTP
sink on 127.0.0.1), and measures both.

![infected mail delivered over time, per policy; clean mail in the hold]({svg})

Made by:

```sh
{cmd}
```

{table}

- **Traffic** (seed {seed}): {clean} clean messages (2 a minute; half carry a zip holding a
  PE executable, the virus's true types) and {virus} infected ones (a burst of 40 in T0's
  minute, then one every 2 minutes), all over SMTP. The lab declares at T1 = T0 + 20 min
  (hold-mode outbreaks with scope `types=executable`; checksum mode with the sample's
  checksums); the signature ships at T2 = T0 + 4 h (a signed bundle; for the gateways without a
  provider, the operator's database folder and a reload).
- **Clock**: 1 simulated minute = {scale:g} s of wall time ({stretch:g}x). Every interval and
  timeout of the simulation is scaled (traffic, T1, T2, the delay queue's 30 min, the 5-minute
  poll, the gateway's default 60 s poll); processing is not. Delays are real-life
  equivalents: wall delay plus the time held, stretched back. Exposure (declaration to the
  gateway holding) is wall time for push, stretched back for the poll.
- **Columns**: infected messages delivered (complete, with the virus) before T1, between T1
  and the moment the gateway learned (the notice applied; without a provider, the signature
  at T2) and after; exposure of the campaign's declaration; exposure p50/p99 of probe
  declarations made on the same stack after the campaign; clean delay until the complete
  message arrived (p50, p99, max) and until its first copy arrived (with the attachment-only
  hold, the body); clean messages that were held; infected messages quarantined before and
  after T2 (by an outbreak checksum, or by the signature: at T2 held mail is rescanned); and the
  exposure of a second declaration made 0.2 s after the signature bundle, while the gateway
  installs it and rescans what it held.
- **Policies as configuration** (gateway side): delay queue `[hold] delay = 1800` (types:
  `hold.delay_types`, by default executable, archive, office-macro, script); poll only
  `[notices] stream = false` and `poll_interval = 300`, with no `udp_listen` or
  `control_address`; push over UDP alone: `udp_listen` (the bench refuses the stream and the
  poll in front of the provider); attachment-only hold `[hold] mode = "attachments"`; checksum
  mode is the lab's choice: `zerohour provider outbreak declare --mode checksum --sample FILE`.
- **Machine**: {cpus} CPUs, load average {load_before} before and {load_after} after the run
  (other work was running).
"""


if __name__ == "__main__":
    sys.exit(main())
