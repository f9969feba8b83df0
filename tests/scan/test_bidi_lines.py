"""The visual reading of a line with bidi controls, run only where the controls reorder text:
the same result as the whole line's UAX #9 reading (a seeded differential test over lines of
letters, digits, neutrals, right-to-left letters and every control), at the cost of the
controlled span (a 540 KB line holding one override took seconds)."""

from __future__ import annotations

import random

from helpers import cpu
from zerohour.scan import bidi

ALPHABET = [*"ab XY12-.,:\t", "\u00e9", "\u0301", "\u05d0", "\u0627", "\u0661", "\u06f1",
            *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"]


def test_the_line_reading_equals_the_whole_paragraph_reading() -> None:
    rng = random.Random(20)
    for _ in range(40_000):
        pool = ALPHABET if rng.random() < 0.7 else list("abc .-1")
        line = "".join(rng.choice(pool) for _ in range(rng.randint(0, 18)))
        for base in (0, None, 1):
            assert bidi._visual_line(line, base, None) == bidi.visual_paragraph(line, base), (
                line, base)


def test_a_long_line_costs_its_controlled_span() -> None:
    big = "QUJD" * 135_000
    line = (big[:270_000] + "\u202eXYZ\u202c" + big[270_000:]).encode()
    t0 = cpu.process_time()
    shown = bidi.visual_text(line)
    assert cpu.process_time() - t0 < 1.0
    assert shown[0] == (big[:270_000] + "ZYX" + big[270_000:]).encode()
