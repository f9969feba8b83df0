"""UDP listener: one signed envelope per datagram (at most 1,200 bytes, checked before parsing)."""

from __future__ import annotations

import asyncio
import logging

from zerohour.notices.verify import NoticeVerifier, Transport

log = logging.getLogger("zerohour.notices.udp")
MAX_IN_FLIGHT = 256


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, listener: UdpListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.listener.received += 1
        if len(self.listener.tasks) >= MAX_IN_FLIGHT:  # a flood: drop, count, stay responsive
            self.listener.verifier.tally(Transport.UDP, "overload", None)
            return
        task = asyncio.get_running_loop().create_task(self.listener.submit(data))
        self.listener.tasks.add(task)
        task.add_done_callback(self.listener.tasks.discard)


class UdpListener:
    def __init__(self, verifier: NoticeVerifier) -> None:
        self.verifier = verifier
        self.received = 0
        self.tasks: set[asyncio.Task[object]] = set()
        self._transport: asyncio.DatagramTransport | None = None

    async def submit(self, data: bytes) -> None:
        """One datagram; whatever happens, the listener keeps receiving (supervised)."""
        try:
            await self.verifier.submit(data, Transport.UDP)
        except Exception:
            self.verifier.tally(Transport.UDP, "internal_error", None)
            log.exception("notice.udp_submit_failed")

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(host, port)
        )
        addr = self._transport.get_extra_info("sockname")
        return str(addr[0]), int(addr[1])

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)
