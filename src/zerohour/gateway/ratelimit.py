"""Per-client event rates, as Postfix's anvil counts them.

anvil counts events (new connections, MAIL commands) per client address in a fixed window of
`anvil_rate_time_unit` that starts at the address's first event; the count starts again once
the window has passed. A refused event counts too, so a client that keeps hammering stays
refused until it pauses for a whole window. Windows that have passed are dropped from time to
time, so memory follows the number of recently active addresses, not every address ever seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_SWEEP_AT = 10_000  # addresses held before windows that have passed are dropped


class ClientRates:
    """Events per address in the current window."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._counts: dict[str, tuple[float, int]] = {}  # address -> (window start, events)
        self._sweep_at = _SWEEP_AT

    def hit(self, address: str) -> int:
        """Count one event for `address`; the number of events in its window, this one too."""
        now = self.clock()
        start, count = self._counts.get(address, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        self._counts[address] = (start, count)
        if len(self._counts) > self._sweep_at:
            self._sweep(now)
        return count

    def _sweep(self, now: float) -> None:
        self._counts = {a: v for a, v in self._counts.items() if now - v[0] < self.window}
        self._sweep_at = max(_SWEEP_AT, 2 * len(self._counts))  # amortised: no sweep per hit

    def __len__(self) -> int:
        return len(self._counts)
