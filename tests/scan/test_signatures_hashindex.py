"""The compact hash index answers exactly like a dict of (kind, size, digest) -> first name."""

from __future__ import annotations

import hashlib
import pickle
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.scan import Engine, load_database
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
    last: dict[tuple[int | None, bytes], str] = {}  # ClamAV keeps the last one loaded
    for i, (d, s) in enumerate(rows):
        b.add("md5", d, s, f"N{i}")
        last[(s, d)] = f"N{i}"
    idx = b.build()
    for d, s in [*rows, (probe, size)]:
        q = size if s is None else s
        want = last.get((q, d)) or last.get((None, d))
        assert idx.lookup("md5", q, d) == want
        both = [n for n in (last.get((q, d)), last.get((None, d))) if n]
        assert idx.lookup_all("md5", q, d) == both


def test_key_straddling_two_records_is_not_a_hit() -> None:
    """The block search runs over the raw blob: a probe whose bytes happen to span the end of
    one record and the start of the next must not match there, and the real record must."""
    d1 = b"\x00" * 4 + bytes(range(1, 13))
    d2 = bytes(range(100, 116))
    b = HashIndexBuilder()
    b.add("md5", d1, 1, "A")
    b.add("md5", d2, 1, "B")
    # Records: be64(1) + d1, be64(1) + d2. Bytes 4..28 of the blob read as be64(2**32) + probe.
    probe = d1[4:] + b"\x00" * 4
    idx = b.build()
    assert idx.tables["md5"].records[4:28] == (2**32).to_bytes(8, "big") + probe
    assert idx.lookup("md5", 2**32, probe) is None
    b2 = HashIndexBuilder()
    b2.add("md5", d1, 1, "A")
    b2.add("md5", d2, 1, "B")
    b2.add("md5", probe, 2**32, "C")
    assert b2.build().lookup("md5", 2**32, probe) == "C"


def test_a_signature_name_that_is_not_utf8_loads_and_detects(tmp_path: Path) -> None:
    """A .hdb/.hsb line whose name has bytes that are not UTF-8 used to crash the whole load
    (UnicodeEncodeError; clamscan 1.4 panics on it): the signature loads and detects, the odd
    bytes shown as U+FFFD."""
    eicar = (rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
    (tmp_path / "a.hdb").write_bytes(
        hashlib.md5(eicar).hexdigest().encode() + b":68:Bad\xff\xfeName\n")
    (tmp_path / "a.hsb").write_bytes(
        hashlib.sha256(eicar).hexdigest().encode() + b":68:Odd\xffSha\n")
    engine = Engine(load_database([tmp_path]))
    report = engine.scan_bytes(eicar, "e.com")
    assert [f.name for f in report.findings] in (["Bad\ufffd\ufffdName"], ["Odd\ufffdSha"])
