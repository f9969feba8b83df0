"""Matcher: the anchored automaton path agrees with a naive regex search of the whole pattern."""

from __future__ import annotations

import pickle
import re
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerohour.scan.matcher import HAVE_AHOCORASICK, HAVE_HYPERSCAN, HS_PREFIX, Geometry, Matcher
from zerohour.scan.signatures.hexsig import Gap, Modifiers, TokKind, compile_pattern, tokenize
from zerohour.scan.signatures.model import BodySig, Target
from zerohour.scan.signatures.offset import ANY, parse_offset

BACKENDS = ["python"]
if HAVE_AHOCORASICK:
    BACKENDS.append("ahocorasick")
if HAVE_HYPERSCAN:
    BACKENDS.append("hyperscan")

ALPHABET = b"ab\x00\xff"


def _all(_t: Target) -> bool:
    return True


# Hex signature pieces over a tiny alphabet, so random data hits them often.
lit = st.binary(min_size=1, max_size=4).map(
    lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b).hex()
)
piece = st.one_of(
    lit, lit, lit,
    st.just("??"),
    st.sampled_from(["6?", "?1", "0?", "?f"]),
    # (a maximum of 0 means "unbounded" to ClamAV, so bounded gaps here have a maximum >= 1)
    st.integers(1, 3).map(lambda n: f"{{{n}}}"),
    st.integers(1, 3).map(lambda n: f"{{-{n}}}"),
    st.tuples(st.integers(0, 2), st.integers(1, 3)).map(lambda t: f"{{{t[0]}-{t[0] + t[1]}}}"),
    st.sampled_from(["(61|62)", "(00|ff)", "!(61|00)", "(6162|ff00)"]),
)


@st.composite
def signatures(draw: st.DrawFn) -> str:
    segments = []
    for _ in range(draw(st.integers(1, 3))):
        body = [draw(lit), *draw(st.lists(piece, max_size=3)), draw(lit)]
        segments.append("".join(body))
    gaps = [draw(st.sampled_from(["*", "{2-}", "{0-}"])) for _ in segments[1:]]
    out = segments[0]
    for gap, seg in zip(gaps, segments[1:], strict=True):
        out += gap + seg
    return out


data_st = st.binary(max_size=120).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))
noise = st.binary(max_size=40).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))


@st.composite
def instance(draw: st.DrawFn, sig: str) -> bytes:
    """Bytes matching `sig` (built token by token), so positives are common, not luck."""
    out = bytearray()
    for t in tokenize(sig):
        if isinstance(t, Gap):
            out += draw(noise)[: draw(st.integers(t.lo, t.lo + 5))].ljust(t.lo, b"a")
        elif t.kind is TokKind.LIT:
            out += t.lit
        elif t.kind is TokKind.ANY:
            out.append(draw(st.sampled_from(ALPHABET)))
        elif t.kind is TokKind.NIBBLE:
            out.append(t.value | (draw(st.integers(0, 255)) & ~t.mask & 0xFF))
        elif t.kind is TokKind.GAP:
            out += bytes(draw(st.integers(t.lo, t.hi)))
        elif t.negated:
            width = len(t.alts[0])
            cand = [bytes([b]) * width for b in ALPHABET + b"z"]
            out += draw(st.sampled_from([c for c in cand if c not in t.alts]))
        else:
            out += draw(st.sampled_from(t.alts))
    return bytes(out)


@st.composite
def sig_and_data(draw: st.DrawFn) -> tuple[str, bytes]:
    sig = draw(signatures())
    data = draw(noise) + draw(instance(sig)) + draw(noise)
    if data and draw(st.booleans()):  # sometimes break it: negatives near positives
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.sampled_from(ALPHABET))]) + data[i + 1 :]
    return sig, data


def naive_count(sig: str, data: bytes, nocase: bool = False) -> int:
    (pat,) = compile_pattern(sig, Modifiers(nocase=nocase))
    rx = pat.full_regex()
    return sum(1 for i in range(len(data) + 1) if rx.match(data, i))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(sig_and_data(), st.tuples(signatures(), data_st)))
def test_automaton_equals_naive_search(backend: str, case: tuple[str, bytes]) -> None:
    sig, data = case
    m = Matcher([BodySig("S", Target.ANY, ANY, sig)], backend=backend)
    found = m.scan(data, Geometry(len(data)), _all, counting=lambda _s: True)
    expected = naive_count(sig, data)
    if "*" in sig or "{2-}" in sig or "{0-}" in sig:
        assert bool(found) == bool(expected)  # multi-segment: existence
    else:
        assert found.get(0, 0) == expected  # one segment: every start counts


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None)
@given(sigs=st.lists(signatures(), min_size=1, max_size=6), data=data_st)
def test_many_signatures_at_once(backend: str, sigs: list[str], data: bytes) -> None:
    m = Matcher([BodySig(f"S{i}", Target.ANY, ANY, s) for i, s in enumerate(sigs)],
                backend=backend)
    found = m.scan(data, Geometry(len(data)), _all)
    assert set(found) == {i for i, s in enumerate(sigs) if naive_count(s, data)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_nocase_and_offsets(backend: str) -> None:
    sigs = [
        BodySig("nocase", Target.ANY, ANY, b"hello".hex(), Modifiers(nocase=True)),
        BodySig("at0", Target.ANY, parse_offset("0"), b"MZ".hex() + "??" + b"xy".hex()),
        BodySig("eof", Target.ANY, parse_offset("EOF-3"), b"END".hex()),
        BodySig("pe", Target.PE, ANY, b"PEONLY".hex()),
    ]
    m = Matcher(sigs, backend=backend)
    data = b"MZ\x00xy ... HeLLo ... PEONLY END"
    found = m.scan(data, Geometry(len(data)), lambda t: t is Target.ANY)
    assert set(found) == {0, 1, 2}
    shifted = b"-" + data + b"!"
    assert set(m.scan(shifted, Geometry(len(shifted)), _all)) == {0, 3}


def test_pickle_round_trip_keeps_results() -> None:
    sigs = [BodySig(f"S{i}", Target.ANY, ANY, (b"marker%03d" % i).hex()) for i in range(50)]
    m = Matcher(sigs)
    data = b"xx marker007 yy marker042"
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.backend_name == m.backend_name
    assert set(m2.scan(data, Geometry(len(data)), _all)) == {7, 42}


def test_threads_share_one_matcher() -> None:
    sigs = [BodySig(f"S{i}", Target.ANY, ANY, (b"needle%02d" % i).hex()) for i in range(20)]
    m = Matcher(sigs)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        data = b"hay " * 1000 + b"needle%02d" % i + b" hay" * 1000
        try:
            for _ in range(50):
                assert set(m.scan(data, Geometry(len(data)), _all)) == {i}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_unanchored_segment_is_found_by_regex_scan() -> None:
    sig = "6?6?6?"  # no fixed byte run at all
    m = Matcher([BodySig("U", Target.ANY, ANY, sig)])
    assert m.always  # scanned without the automaton
    assert m.scan(b"xx`ab", Geometry(5), _all) == {0: 1}
    assert m.scan(b"xx`a", Geometry(4), _all) == {}
    assert re.search(rb"[\x60-\x6f]{3}", b"xx`ab")


def test_weak_anchors_are_not_used() -> None:
    from zerohour.scan.signatures.hexsig import anchor_quality

    assert anchor_quality(b"\x00\x00") <= 0
    assert anchor_quality(b"  ") <= 0
    assert anchor_quality(b"AA") <= 0
    assert anchor_quality(b"MZ") > 0
    assert anchor_quality(b"\x00\x00\x00\x00") > 0  # long enough to be selective
    (pat,) = compile_pattern("0000??4d5a9000")
    assert pat.segments[0].anchor == b"MZ\x90\x00"


def test_many_hits_of_a_frequent_anchor_stay_cheap() -> None:
    """An anchor hit everywhere must not cost a verification per hit once one is found."""
    m = Matcher([BodySig("Z", Target.ANY, ANY, "4d5a??5045")])
    data = b"MZ" * 200_000 + b"MZxPE"
    assert m.scan(data, Geometry(len(data)), _all) == {0: 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_anchors_match_whole_never_on_their_prefix(backend: str) -> None:
    """Hyperscan looks for the first `HS_PREFIX` bytes of an anchor only: a layer holding
    just that prefix (or every anchor but one byte) must not match, the whole one must."""
    long_a, long_b = b"prefix-shared-A-tail", b"prefix-shared-B-tail"
    assert long_a[:HS_PREFIX] == long_b[:HS_PREFIX]
    sigs = [BodySig("A", Target.ANY, ANY, long_a.hex()),
            BodySig("B", Target.ANY, ANY, long_b.hex()),
            BodySig("I", Target.ANY, ANY, b"CaseLess-Anchor".hex(), Modifiers(nocase=True))]
    m = Matcher(sigs, backend=backend)
    for data, want in [
        (b"xx prefix-shared-A-tai yy caseless-ancho", {}),
        (b"xx prefix-shared-B-tail yy", {1: 1}),
        (b"prefix-shared-A-tail prefix-shared-A-tail CASELESS-ANCHOR", {0: 2, 2: 1}),
    ]:
        got = m.scan(data, Geometry(len(data)), _all, counting=lambda _s: True)
        assert got == want
