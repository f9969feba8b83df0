"""Recipient address verification at RCPT time: Postfix's `reject_unverified_recipient`.

Without a recipient table the gateway accepts any address at a relay domain, and the next hop's
"user unknown" later becomes a DSN to whatever sender a spammer forged (backscatter). With
`smtp.verify_recipients` each new recipient is probed at the next hop first: EHLO, MAIL FROM
`smtp.verify_sender` (`<>` by default), RCPT TO, then RSET and QUIT; never DATA. The answer is
kept in an in-memory cache (positive and negative answers separately, each with its own TTL;
a restart starts empty, as Postfix does without a verify database), temporary failures are not
cached, and concurrent RCPTs for one address share one probe.

Only a fixed next hop is probed: in MX mode our relay domains' MX is usually this gateway, so
config validation refuses `verify_recipients` without `delivery.next_hop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import aiosmtplib

from zerohour.config import Config, HostPort

log = logging.getLogger("zerohour.smtp")

#: cached answers at most, per kind; the oldest go first (a flood of invented addresses cannot
#: grow it, and cannot push out the "deliverable" answers: those are kept apart)
CACHE_MAX = 100_000
#: probe sessions open towards the next hop at once: one client's RCPT flood must not become a
#: connection flood against the next hop (Postfix's verify daemon probes through a bounded pool)
MAX_PROBES = 10


class Answer(enum.Enum):
    DELIVERABLE = "deliverable"  # the next hop said 2xx to RCPT
    UNDELIVERABLE = "undeliverable"  # 5xx
    UNKNOWN = "unknown"  # 4xx, timeout, no connection: try again later


@dataclass(frozen=True, slots=True)
class Verdict:
    answer: Answer
    detail: str  # the next hop's reply, or what went wrong
    cached: bool = False


class RecipientVerifier:
    """Probes `next_hop` for recipients and remembers the answers."""

    def __init__(
        self,
        next_hop: HostPort,
        *,
        hostname: str,
        sender: str = "",
        timeout: float = 10.0,
        positive_ttl: float = 7 * 86400.0,
        negative_ttl: float = 3 * 3600.0,
        starttls: bool = False,
        clock: Callable[[], float] = time.monotonic,
        cache_max: int = CACHE_MAX,
        max_probes: int = MAX_PROBES,
    ) -> None:
        self.next_hop = next_hop
        self.hostname = hostname
        self.sender = sender
        self.timeout = timeout
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self.starttls = starttls
        self.clock = clock
        self.cache_max = cache_max
        self.probes = 0  # probes started (sessions opened towards the next hop)
        self._caches: dict[Answer, OrderedDict[str, tuple[float, Verdict]]] = {
            Answer.DELIVERABLE: OrderedDict(),
            Answer.UNDELIVERABLE: OrderedDict(),
        }
        self._slots = asyncio.Semaphore(max_probes)
        self._inflight: dict[str, asyncio.Task[Verdict]] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> RecipientVerifier:
        s = cfg.smtp
        assert cfg.delivery.next_hop is not None  # config.validate refuses it otherwise
        return cls(
            cfg.delivery.next_hop,
            hostname=s.hostname,
            sender=s.verify_sender,
            timeout=s.verify_timeout,
            positive_ttl=s.verify_positive_ttl,
            negative_ttl=s.verify_negative_ttl,
            starttls=cfg.delivery.starttls,
        )

    async def verify(self, address: str) -> Verdict:
        """The next hop's answer for `address`: from the cache, a probe under way, or a new
        probe. Never raises for the next hop's failures (they are `Answer.UNKNOWN`)."""
        key = address.lower()
        for cache in self._caches.values():
            hit = cache.get(key)
            if hit is not None:
                expires, verdict = hit
                if expires > self.clock():
                    return Verdict(verdict.answer, verdict.detail, cached=True)
                del cache[key]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._probe_and_remember(key, address))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        # shield: a client hanging up mid-RCPT does not cancel the probe others wait for
        return await asyncio.shield(task)

    def forget(self) -> None:
        for cache in self._caches.values():
            cache.clear()

    async def aclose(self) -> None:
        """Cancel the probes under way (the gateway is stopping; their RCPTs are gone too)."""
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _probe_and_remember(self, key: str, address: str) -> Verdict:
        deadline = asyncio.get_running_loop().time() + self.timeout  # waiting for a slot too
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            verdict = Verdict(Answer.UNKNOWN, "too many address probes under way")
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    verdict = await self.probe(address)
            except TimeoutError:
                verdict = Verdict(
                    Answer.UNKNOWN, f"{self.next_hop}: timed out after {self.timeout:g} s"
                )
            finally:
                self._slots.release()
        ttl = {
            Answer.DELIVERABLE: self.positive_ttl,
            Answer.UNDELIVERABLE: self.negative_ttl,
        }.get(verdict.answer, 0.0)
        if ttl > 0:
            cache = self._caches[verdict.answer]
            cache[key] = (self.clock() + ttl, verdict)
            cache.move_to_end(key)
            while len(cache) > self.cache_max:
                cache.popitem(last=False)
        log.info(
            "smtp.verify rcpt=%s answer=%s detail=%s",
            _clean(address), verdict.answer.value, _clean(verdict.detail),
        )  # fmt: skip
        return verdict

    async def probe(self, address: str) -> Verdict:
        """One probe session, never reaching DATA."""
        self.probes += 1
        hop = self.next_hop
        client = aiosmtplib.SMTP(
            hostname=hop.host,
            port=hop.port,
            timeout=self.timeout,
            start_tls=None if self.starttls else False,
            validate_certs=False,
            local_hostname=self.hostname,
        )
        try:
            async with asyncio.timeout(self.timeout):
                await client.connect()
                await client.ehlo()
                utf8 = not address.isascii() or not self.sender.isascii()
                if utf8 and not client.supports_extension("smtputf8"):
                    return Verdict(
                        Answer.UNDELIVERABLE,
                        "553 5.6.7 next hop does not support SMTPUTF8 (non-ASCII address)",
                    )
                options = ["SMTPUTF8"] if utf8 else []
                encoding = "utf-8" if utf8 else "ascii"
                await client.mail(self.sender, options=options, encoding=encoding)
                reply = await client.rcpt(address, encoding=encoding)
                verdict = Verdict(Answer.DELIVERABLE, f"{reply.code} {reply.message}")
                with contextlib.suppress(aiosmtplib.SMTPException):
                    await client.rset()
                return verdict
        except aiosmtplib.SMTPRecipientRefused as exc:
            return _refused(exc.code, exc.message)
        except aiosmtplib.SMTPSenderRefused as exc:
            # the next hop refuses the probe sender: that says nothing about the recipient
            return Verdict(Answer.UNKNOWN, f"probe sender refused: {exc.code} {exc.message}")
        except aiosmtplib.SMTPResponseException as exc:
            return Verdict(Answer.UNKNOWN, f"{exc.code} {exc.message}")
        except TimeoutError:
            return Verdict(Answer.UNKNOWN, f"{hop}: timed out after {self.timeout:g} s")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Verdict(Answer.UNKNOWN, f"{hop}: {exc}")
        finally:
            await _quit(client)


def _refused(code: int, message: str) -> Verdict:
    if 500 <= code < 600:
        return Verdict(Answer.UNDELIVERABLE, f"{code} {message}")
    return Verdict(Answer.UNKNOWN, f"{code} {message}")


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        async with asyncio.timeout(2):
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _clean(text: str, limit: int = 200) -> str:
    s = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return s if len(s) <= limit else s[:limit] + "..."
