"""Latency and idle-session probes for bench/smtp.py (a benchmark helper, not a test).

- `latency()`: sends messages at a fixed rate over a pool of SMTP sessions and times each from
  the end of DATA (the final ".") to the server's reply: the "end of DATA to 250" latency a
  sending MTA sees. Run at half of the relay's measured maximum, as issue 11 asks.
- `idle_sessions()`: opens N SMTP sessions that only read the greeting and stay idle, samples
  the relay's process-tree PSS, then times a new client's connect -> greeting -> EHLO reply.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass

from common import MemSampler


def raise_fd_limit(want: int) -> None:
    """Sockets for N idle sessions (inherited by relays started afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _reply(reader: asyncio.StreamReader) -> bytes:
    """One complete (possibly multi-line) SMTP reply."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if line[3:4] != b"-":
            return line


@dataclass
class Latency:
    sent: int
    ok: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    rate: float


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _latency(
    port: int, body: bytes, rate: float, count: int, sessions: int, rcpt: str, sender: str
) -> Latency:
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    samples: list[float] = []
    errors = 0
    data = body.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await _reply(reader)
            writer.write(b"EHLO latency.bench.local\r\n")
            await _reply(reader)
            while await queue.get() is not None:
                writer.write(f"MAIL FROM:<{sender}>\r\n".encode())
                await _reply(reader)
                writer.write(f"RCPT TO:<{rcpt}>\r\n".encode())
                await _reply(reader)
                writer.write(b"DATA\r\n")
                await _reply(reader)
                writer.write(data)
                await writer.drain()
                t0 = time.perf_counter()
                writer.write(b".\r\n")
                line = await _reply(reader)
                if line.startswith(b"250"):
                    samples.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1
            writer.write(b"QUIT\r\n")
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(sessions)]
    start = time.perf_counter()
    for i in range(count):  # paced: message i starts at i / rate
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(start + i / rate)
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks, return_exceptions=True)
    return Latency(count, len(samples), _pct(samples, 0.5), _pct(samples, 0.99),
                   max(samples) if samples else None, rate)


def latency(
    port: int, body: bytes, rate: float, count: int, *, sessions: int = 20,
    rcpt: str = "rcpt@example.com", sender: str = "sender@example.org",
) -> Latency:
    return asyncio.run(_latency(port, body, rate, count, sessions, rcpt, sender))


@dataclass
class Idle:
    sessions: int
    opened: int
    pss_before_mb: float
    pss_with_mb: float
    new_client_ms: float | None
    error: str = ""


async def _idle(port: int, n: int, pids: list[int]) -> Idle:
    before = MemSampler(pids)
    before.sample()
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    error = ""
    try:
        for i in range(n):
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                greeting = await asyncio.wait_for(_reply(r), 10)
            except (OSError, TimeoutError, ConnectionError) as exc:
                error = f"session {i}: {exc}"
                break
            if not greeting.startswith(b"220"):
                error = f"session {i}: {greeting[:80]!r}"
                w.close()
                break
            conns.append((r, w))
        await asyncio.sleep(1.0)
        with_ = MemSampler(pids)
        with_.sample()
        t0 = time.perf_counter()
        new_ms: float | None = None
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(_reply(r), 10)
            w.write(b"EHLO new.bench.local\r\n")
            line = await asyncio.wait_for(_reply(r), 10)
            if line.startswith(b"250"):
                new_ms = (time.perf_counter() - t0) * 1000
            w.close()
        except (OSError, TimeoutError, ConnectionError) as exc:
            error = error or f"new client: {exc}"
    finally:
        for _, w in conns:
            w.close()
    return Idle(n, len(conns), before.peak.pss_mb, with_.peak.pss_mb, new_ms, error)


def idle_sessions(port: int, n: int, pids: list[int]) -> Idle:
    return asyncio.run(_idle(port, n, pids))
