"""The compact hash index answers exactly like a dict of (kind, size, digest) -> first name."""

from __future__ import annotations

import pickle
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.scan.hashindex import HashIndexBuilder

LEN = {"md5": 16, "sha1": 20, "sha256": 32}


def test_against_a_dict() -> None:
    rng = random.Random(7)
    b = HashIndexBuilder()
    ref: dict[tuple[str, int | None, bytes], str] = {}
    rows = []
    for i in range(20_000):
        kind = rng.choice(list(LEN))
        digest = rng.randbytes(LEN[kind])
        size = None if rng.random() < 0.05 else rng.randint(0, 50)
        rows.append((kind, digest, size))
        b.add(kind, digest, size, f"N{i}")
        ref.setdefault((kind, size, digest), f"N{i}")
    idx = pickle.loads(pickle.dumps(b.build()))
    assert idx.count() == 20_000
    for kind, digest, size in rows[::7]:
        probe = 3 if size is None else size
        want = ref.get((kind, probe, digest)) or ref.get((kind, None, digest))
        assert idx.lookup(kind, probe, digest) == want
    for _ in range(2000):
        kind = rng.choice(list(LEN))
        assert idx.lookup(kind, rng.randint(0, 50), rng.randbytes(LEN[kind])) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=16, max_size=16), st.integers(0, 3) | st.none()),
                max_size=300),
       st.binary(min_size=16, max_size=16), st.integers(0, 3))
def test_property_lookup(rows: list[tuple[bytes, int | None]], probe: bytes, size: int) -> None:
    b = HashIndexBuilder()
    first: dict[tuple[int | None, bytes], str] = {}
    for i, (d, s) in enumerate(rows):
        b.add("md5", d, s, f"N{i}")
        first.setdefault((s, d), f"N{i}")
    idx = b.build()
    for d, s in [*rows, (probe, size)]:
        q = size if s is None else s
        want = first.get((q, d)) or first.get((None, d))
        assert idx.lookup("md5", q, d) == want
