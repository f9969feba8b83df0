"""`zerohour demo`: the outbreak story, played live by real processes on one machine.

1. start an SMTP sink (the next hop), a provider and a gateway (127.0.0.1, ephemeral ports,
   temp folders); 2. normal mail: clean delivered, EICAR rejected; 3. the lab declares an
   outbreak: new mail is held, nothing infected is delivered (the "new virus" is unknown to the
   starter database); 4. the lab publishes a signature for the new virus: held infected mail goes
   to quarantine, held clean mail is delivered once; 5. the gateway restarts and the new virus is
   still refused (the installed signatures survive it); 6. a summary table and where to look.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zerohour.demo.mail import CLEAN_MARK, EICAR, INFECTED_MARK, build, new_virus_sample, sender
from zerohour.demo.stack import (
    GatewayOptions,
    GatewayProcess,
    MailSink,
    ProviderProcess,
    SendResult,
    send_mail,
    wait_for,
)
from zerohour.store.base import MessageFilter, MessageState
from zerohour.store.sqlite import SqliteStore

OUTBREAK_NAME = "Demo.NewWorm"


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    sent: int
    delivered: int
    held: int  # held while the outbreak was active (peak)
    quarantined: int
    rejected: int


@dataclass(frozen=True, slots=True)
class Summary:
    rows: tuple[Row, ...]
    infected_delivered: int
    clean_delivered_once: bool
    held_now: int
    data_dir: Path
    admin_url: str | None
    kept_after_restart: bool = True

    @property
    def ok(self) -> bool:
        return (
            self.infected_delivered == 0
            and self.clean_delivered_once
            and self.held_now == 0
            and self.kept_after_restart
        )

    def table(self) -> str:
        head = ("", "sent", "delivered", "held", "quarantined", "rejected")
        lines = [f"{head[0]:<10}" + "".join(f"{h:>13}" for h in head[1:])]
        for r in self.rows:
            cells = (r.sent, r.delivered, r.held, r.quarantined, r.rejected)
            lines.append(f"{r.kind:<10}" + "".join(f"{c:>13}" for c in cells))
        lines.append(f"infected delivered = {self.infected_delivered}")
        lines.append(
            "clean delivered exactly once: " + ("yes" if self.clean_delivered_once else "NO")
        )
        lines.append(
            "signatures kept over a restart: " + ("yes" if self.kept_after_restart else "NO")
        )
        return "\n".join(lines)


@dataclass
class _Tally:
    sent: dict[str, int] = field(default_factory=lambda: {"clean": 0, "infected": 0})
    rejected: dict[str, int] = field(default_factory=lambda: {"clean": 0, "infected": 0})
    held_peak: dict[str, int] = field(default_factory=lambda: {"clean": 0, "infected": 0})


class Story:
    def __init__(self, root: Path, say: Callable[[str], None], *, timeout: float = 120.0) -> None:
        self.root = root
        self._say = say
        self.timeout = timeout
        self.t0 = time.monotonic()
        self.sink = MailSink()
        self.provider = ProviderProcess(root / "provider", root / "logs" / "provider.log")
        self.gateway: GatewayProcess | None = None
        self.store: SqliteStore | None = None
        self.tally = _Tally()
        self.n = 0
        self.kept_after_restart = False

    def say(self, stage: str, text: str) -> None:
        self._say(f"[{time.monotonic() - self.t0:6.1f}s] {stage:<10} {text}")

    async def _send(self, kind: str, attachment: bytes | None, filename: str) -> SendResult:
        assert self.gateway is not None
        self.n += 1
        data = build(kind, self.n, attachment, filename)
        res = await asyncio.to_thread(send_mail, self.gateway.smtp_port, data, sender(kind, self.n))
        self.tally.sent[kind] += 1
        if not res.accepted:
            self.tally.rejected[kind] += 1
        verdict = "accepted (250)" if res.accepted else f"refused ({res.code} {res.reply[:60]})"
        self.say("send", f"{kind:<8} #{self.n} {filename:<12} -> {verdict}")
        return res

    async def _count(self, kind: str, state: MessageState) -> int:
        assert self.store is not None
        return await self.store.count_messages(MessageFilter(states=(state,), sender=f"{kind}-"))

    async def start(self) -> None:
        self.sink.start()
        self.say("sink", f"next hop listening on {self.sink.address}")
        await asyncio.to_thread(self.provider.start)
        assert self.provider.proc is not None
        self.say(
            "provider",
            f"{self.provider.url} (pid {self.provider.proc.pid})  key {self.provider.key_text}",
        )
        self.gateway = GatewayProcess(
            self.root / "gateway",
            self.root / "logs" / "gateway.log",
            self.provider,
            self.sink.address,
            GatewayOptions(admin=True),
        )
        await asyncio.to_thread(self.gateway.start)
        pid = self.gateway.proc.pid if self.gateway.proc else 0
        self.say(
            "gateway",
            f"SMTP on 127.0.0.1:{self.gateway.smtp_port}, notices by stream from the provider, "
            f"admin {self.gateway.admin_url} (pid {pid})",
        )
        self.store = await SqliteStore.open(self.gateway.data_dir / "zerohour.sqlite3")

    async def normal_mail(self) -> None:
        self.say("step 1", "normal operation: clean mail and EICAR")
        await self._send("clean", None, "(text)")
        await self._send("clean", b"quarterly report, nothing to see\n", "report.txt")
        await self._send("infected", EICAR, "eicar.com")
        await wait_for(lambda: self.sink.count(CLEAN_MARK) >= 2, self.timeout, "clean delivery")
        self.say("sink", f"{self.sink.count(CLEAN_MARK)} clean messages delivered")

    async def outbreak(self, sample: bytes) -> str:
        assert self.store is not None
        self.say("step 2", f"the lab declares outbreak {OUTBREAK_NAME} (mode hold, all mail)")
        t = time.monotonic()
        oid = await asyncio.to_thread(self.provider.declare, OUTBREAK_NAME)
        store = self.store

        async def known() -> bool:
            return any(o.spec.outbreak_id == oid for o in await store.outbreaks())

        await wait_for(known, self.timeout, "the gateway to apply the outbreak notice")
        self.say(
            "gateway",
            f"outbreak {oid} active {1000 * (time.monotonic() - t):.0f} ms "
            "after the lab command: mail is now held",
        )
        before = len(self.sink.snapshot())
        for _ in range(3):
            await self._send("clean", b"minutes of the meeting\n", "minutes.txt")
        await self._send("infected", sample, "invoice.exe")
        await self._send("infected", sample, "update.exe")
        await self._send("infected", EICAR, "eicar.com")  # known: still refused at once

        async def all_held() -> bool:
            clean = await self._count("clean", MessageState.HELD)
            infected = await self._count("infected", MessageState.HELD)
            return clean >= 3 and infected >= 2

        await wait_for(all_held, self.timeout, "the new mail to be held")
        for kind in ("clean", "infected"):
            self.tally.held_peak[kind] = await self._count(kind, MessageState.HELD)
        self.say(
            "gateway",
            f"held: {self.tally.held_peak['clean']} clean, {self.tally.held_peak['infected']} "
            f"infected; delivered since the notice: {len(self.sink.snapshot()) - before}",
        )
        return oid

    async def publish(self, oid: str, sample: bytes) -> None:
        assert self.gateway is not None
        self.say("step 3", "the lab writes a signature for the new virus and publishes it")
        sample_file = self.root / "new-virus.sample"
        sample_file.write_bytes(sample)
        await asyncio.to_thread(
            self.provider.publish_sample_signature,
            sample_file,
            OUTBREAK_NAME,
            oid,
            self.root / "provider-new.hsb",
        )

        async def released() -> bool:
            held = await self._count("clean", MessageState.HELD) + await self._count(
                "infected", MessageState.HELD
            )
            return held == 0 and self.sink.count(CLEAN_MARK) >= self.tally.sent["clean"]

        t = time.monotonic()
        await wait_for(released, self.timeout, "the held mail to be released")
        q = await self._count("infected", MessageState.QUARANTINED)
        self.say(
            "gateway",
            f"signature installed; held mail rescanned in {time.monotonic() - t:.1f} s: "
            f"{q} infected quarantined, clean delivered",
        )

    async def restart(self, sample: bytes) -> None:
        assert self.gateway is not None
        self.say("step 4", "the gateway restarts: are the installed signatures still there?")
        await asyncio.to_thread(self.gateway.stop)
        t = time.monotonic()
        await asyncio.to_thread(self.gateway.start)
        self.say("gateway", f"restarted in {time.monotonic() - t:.1f} s on the same data folder")
        res = await self._send("infected", sample, "invoice.exe")
        self.kept_after_restart = not res.accepted
        self.say(
            "gateway",
            "the new virus is still refused after the restart"
            if self.kept_after_restart
            else "the new virus was ACCEPTED after the restart: its signature was lost",
        )

    async def summary(self) -> Summary:
        assert self.store is not None
        assert self.gateway is not None
        delivered = {
            "clean": self.sink.count(CLEAN_MARK),
            "infected": self.sink.count(INFECTED_MARK),
        }
        rows = []
        for kind in ("clean", "infected"):
            rows.append(
                Row(
                    kind,
                    self.tally.sent[kind],
                    delivered[kind],
                    self.tally.held_peak[kind],
                    await self._count(kind, MessageState.QUARANTINED),
                    self.tally.rejected[kind],
                )
            )
        markers = [
            m.data.split(CLEAN_MARK + b"-", 1)[1].split(b":", 1)[0]
            for m in self.sink.snapshot()
            if CLEAN_MARK in m.data
        ]
        once = len(markers) == len(set(markers)) == self.tally.sent["clean"]
        held_now = (await self.store.count_by_state()).get(MessageState.HELD, 0)
        return Summary(
            tuple(rows),
            delivered["infected"],
            once,
            held_now,
            self.gateway.data_dir,
            self.gateway.admin_url,
            self.kept_after_restart,
        )

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()
            self.store = None
        if self.gateway is not None:
            await asyncio.to_thread(self.gateway.stop)
        await asyncio.to_thread(self.provider.stop)
        await asyncio.to_thread(self.sink.stop)

    async def play(self) -> Summary:
        try:
            await self.start()
            await self.normal_mail()
            sample = new_virus_sample()
            oid = await self.outbreak(sample)
            await self.publish(oid, sample)
            await self.restart(sample)
            return await self.summary()
        finally:
            self.say("stop", "stopping gateway, provider and sink")
            await self.aclose()


def next_steps(summary: Summary, root: Path, kept: bool) -> str:
    d = summary.data_dir
    if not kept:
        return (
            "Run `zerohour demo --keep` to keep the data folders and look around with:\n"
            "  zerohour status --data-dir DIR    zerohour quarantine list --data-dir DIR\n"
            "  zerohour hold list --data-dir DIR"
        )
    return "\n".join(
        [
            f"Data kept in {root} (logs in {root / 'logs'}). Look next:",
            f"  zerohour status --data-dir {d}",
            f"  zerohour quarantine list --data-dir {d}",
            f"  zerohour hold list --data-dir {d}",
            f"  zerohour admin token create --role read --data-dir {d}  # for the dashboard:",
            f"  zerohour gateway run --data-dir {d} --admin-listen 127.0.0.1:8025"
            " --listen 127.0.0.1:2525",
            f"  and open http://127.0.0.1:8025/ (during the demo it was {summary.admin_url})",
        ]
    )


def run_demo(keep: bool, timeout: float, say: Callable[[str], None] = print) -> int:
    """Play the story; 0 when nothing infected was delivered and all clean mail arrived once."""
    root = Path(tempfile.mkdtemp(prefix="zerohour-demo-"))
    story = Story(root, say, timeout=timeout)
    try:
        summary = asyncio.run(story.play())
    except KeyboardInterrupt:
        say("interrupted: every process was stopped")
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        return 130
    except BaseException:
        if not keep:
            say(f"(logs kept in {root / 'logs'})")
        raise
    say("")
    say(summary.table())
    say("")
    say(next_steps(summary, root, keep))
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    say("RESULT: " + ("OK" if summary.ok else "FAILED"))
    return 0 if summary.ok else 1
