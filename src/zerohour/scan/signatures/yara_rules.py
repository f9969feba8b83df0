"""YARA rules (.yar, .yara) through yara-python, named `YARA.<rule>` as ClamAV names them.

All rule files of a database compile into one rule set (one namespace per file, so equal rule
names in two files do not clash; `include` is refused: a rule file never reads other files).
A file that does not compile is one warning and the others still load. The compiled set is
kept as yara's own serialised bytes, so the database stays picklable and disk-cacheable, and
is loaded back once per process on first use. Unlike ClamAV, which converts YARA rules into its
own logical signatures and refuses many (text strings, most conditions), every rule yara accepts
is evaluated here, with yara's semantics, on every layer.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence

import yara

from zerohour.errors import ScanLimitExceeded, SignatureSyntaxError
from zerohour.scan.limits import MAX_SCAN_TIME

PREFIX = "YARA."


def check_source(source: str) -> list[str]:
    """The rule names of one file; `SignatureSyntaxError` if yara cannot compile it."""
    try:
        rules = yara.compile(source=source, includes=False)
    except yara.Error as exc:
        raise SignatureSyntaxError(f"YARA: {exc}") from None
    return [r.identifier for r in rules]


class YaraRules:
    """A compiled rule set; pickles as yara's serialised bytes."""

    def __init__(self, blob: bytes, count: int, dropped: frozenset[str] = frozenset()) -> None:
        self.blob = blob
        self.count = count
        self.dropped = dropped  # rule names an ignore list retires
        self._rules: yara.Rules | None = None
        self._lock = threading.Lock()

    @classmethod
    def compile(cls, sources: Sequence[str], dropped: frozenset[str] = frozenset()) -> YaraRules:
        """One rule set from sources that each compiled alone (see `check_source`)."""
        rules = yara.compile(sources={f"f{i}": s for i, s in enumerate(sources)},
                             includes=False)
        buf = io.BytesIO()
        rules.save(file=buf)
        return cls(buf.getvalue(), sum(1 for r in rules if r.identifier not in dropped), dropped)

    def _loaded(self) -> yara.Rules:
        rules = self._rules
        if rules is None:
            with self._lock:
                if self._rules is None:
                    self._rules = yara.load(file=io.BytesIO(self.blob))
                rules = self._rules
        return rules

    def match(self, data: bytes, timeout: float) -> list[str]:
        """Names (`YARA.<rule>`) of the rules that match `data`, in rule order.

        Rules that run out of `timeout` (what is left of the scan's time) are the scan's
        MaxScanTime, not an error: a decoder's error in a guessed layer (a join, a carving) is
        muted as junk, and a timeout there, which the sender can aim at the layer that holds
        the payload, left that layer unmatched and the mail clean (round 31, R31-F7). A limit
        leaves the guess and is said at the layer above it."""
        try:
            hits = self._loaded().match(data=data, timeout=max(1, math.ceil(timeout)))
        except yara.TimeoutError:
            raise ScanLimitExceeded(MAX_SCAN_TIME, "YARA rules ran out of time") from None
        return [PREFIX + m.rule for m in hits if m.rule not in self.dropped]

    def __getstate__(self) -> tuple[bytes, int, frozenset[str]]:
        return (self.blob, self.count, self.dropped)

    def __setstate__(self, st: tuple[bytes, int, frozenset[str]]) -> None:
        self.blob, self.count, self.dropped = st
        self._rules = None
        self._lock = threading.Lock()
