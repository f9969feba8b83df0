"""Body-signature matching: a multi-pattern automaton on literal anchors, verified around hits.

Every signature segment (see `signatures.hexsig`) contributes its anchor, its most selective run
of fixed bytes, to one automaton: Hyperscan when installed (every byte escaped `\\xHH`, since its
literal mode stops at NUL), else pyahocorasick, else a pure-Python `bytes.find` loop. A hit only
makes a segment a candidate; the segment's regex confirms it at the starts the anchor allows, and
segments are chained across their unbounded gaps. Segments without a usable anchor are found by
regex scan (rare in practice).

The matcher pickles compactly (flat arrays, Hyperscan's own serialised database) so the disk
cache skips compilation; Hyperscan scratch space is per thread, so one `Matcher` serves many
threads.

The normalised-text pass uses the same automaton (`NormView`), restricted to the signatures
that can match normalised text, instead of compiling a second one. A database compiled in
parts has one matcher per part; `MatcherSet` makes them answer as one, with the indexes a
single matcher over all parts would give (every part's .ndb signatures first, then every
part's .ldb subsignatures).
"""

from __future__ import annotations

import bisect
import threading
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Protocol

from zerohour.scan.signatures.hexsig import (
    HexPattern,
    Segment,
    bytes_regex,
)
from zerohour.scan.signatures.model import BodySig, SigTable, Target

try:  # pragma: no cover - depends on the platform
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover
    HAVE_HYPERSCAN = False
try:
    import ahocorasick

    HAVE_AHOCORASICK = True
except ImportError:  # pragma: no cover
    HAVE_AHOCORASICK = False


#: Targets the normalised pass can match (see `zerohour.scan.engine.NORMALISED_TARGETS`).
NORMALISED_PASS_TARGETS = frozenset({Target.ANY, Target.HTML, Target.ASCII})


def default_backend() -> str:
    if HAVE_HYPERSCAN:
        return "hyperscan"
    if HAVE_AHOCORASICK:
        return "ahocorasick"
    return "python"


@dataclass(frozen=True, slots=True)
class Geometry:
    """What offsets are resolved against: layer size and, for PE layers, EP and section starts."""

    size: int
    ep: int | None = None
    sections: tuple[int, ...] = ()


Occ = tuple[int, int]  # (start, end) of one segment occurrence


class _Backend(ABC):
    @abstractmethod
    def scan(self, data: bytes) -> dict[int, list[int]]:
        """Anchor id -> end offsets (exclusive) of every occurrence."""


#: Hyperscan gets the first this many bytes of each anchor: every hit is confirmed by
#: `bytes.find` of the whole anchor anyway, and literals of at most 8 bytes compile about a
#: fifth faster (one 64-bit confirm, no long-literal table), a large part of a cold load.
HS_PREFIX = 8


class _HyperscanBackend(_Backend):
    """Hyperscan says *which* anchors occur (one report each: `HS_FLAG_SINGLEMATCH` compiles
    faster and never floods the callback with a frequent anchor), from their first
    `HS_PREFIX` bytes; every occurrence of those (whole) is then found with `bytes.find`, in
    C: an anchor whose prefix occurs without the rest has no occurrence."""

    def __init__(self, anchors: Sequence[tuple[bytes, bool]], blob: bytes | None,
                 anchor: Callable[[int], tuple[bytes, bool]]) -> None:
        self._local = threading.local()
        self._anchor = anchor
        self.db: Any = None
        if blob is not None:
            self.db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
        elif anchors:
            exprs = [bytes_regex(a[:HS_PREFIX]).encode("ascii") for a, _ in anchors]
            one = hyperscan.HS_FLAG_SINGLEMATCH
            flags = [one | hyperscan.HS_FLAG_CASELESS if nc else one for _, nc in anchors]
            self.db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.db.compile(expressions=exprs, ids=list(range(len(exprs))),
                            elements=len(exprs), flags=flags)

    def dump(self) -> bytes | None:
        return bytes(hyperscan.dumpb(self.db)) if self.db is not None else None

    def scan(self, data: bytes) -> dict[int, list[int]]:
        hits: dict[int, list[int]] = {}
        if self.db is None or not data:
            return hits
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self.db)

        seen: list[int] = []

        def on_match(aid: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            seen.append(aid)

        self.db.scan(data, match_event_handler=on_match, scratch=scratch)
        lowered: bytes | None = None
        for aid in seen:
            a, nocase = self._anchor(aid)
            hay = data
            if nocase:
                if lowered is None:
                    lowered = data.lower()
                hay = lowered
            ends = []
            i = hay.find(a)
            while i >= 0:
                ends.append(i + len(a))
                i = hay.find(a, i + 1)
            if ends:
                hits[aid] = ends
        return hits


class _AhoBackend(_Backend):
    def __init__(self, anchors: Sequence[tuple[bytes, bool]]) -> None:
        self.exact: Any = None
        self.nocase: Any = None
        for aid, (a, nc) in enumerate(anchors):
            key = (a.lower() if nc else a).decode("latin-1")
            if nc:
                if self.nocase is None:
                    self.nocase = ahocorasick.Automaton()
                self.nocase.add_word(key, aid)
            else:
                if self.exact is None:
                    self.exact = ahocorasick.Automaton()
                self.exact.add_word(key, aid)
        for auto in (self.exact, self.nocase):
            if auto is not None:
                auto.make_automaton()

    def scan(self, data: bytes) -> dict[int, list[int]]:
        hits: dict[int, list[int]] = {}
        if self.exact is not None:
            for end, aid in self.exact.iter(data.decode("latin-1")):
                hits.setdefault(aid, []).append(end + 1)
        if self.nocase is not None:
            for end, aid in self.nocase.iter(data.lower().decode("latin-1")):
                hits.setdefault(aid, []).append(end + 1)
        return hits


class _PythonBackend(_Backend):
    def __init__(self, anchors: Sequence[tuple[bytes, bool]]) -> None:
        self.anchors = [(a.lower() if nc else a, nc) for a, nc in anchors]

    def scan(self, data: bytes) -> dict[int, list[int]]:
        hits: dict[int, list[int]] = {}
        lowered: bytes | None = None
        for aid, (a, nc) in enumerate(self.anchors):
            hay = data
            if nc:
                if lowered is None:
                    lowered = data.lower()
                hay = lowered
            i = hay.find(a)
            while i >= 0:
                hits.setdefault(aid, []).append(i + len(a))
                i = hay.find(a, i + 1)
        return hits


class Matcher:
    """Finds which body signatures match a buffer, and how often (for logical counts).

    Entries are *patterns* (a signature has two with `::wa`); everything the scan loop needs
    before a hit lives in flat arrays (anchors, anchor -> (pattern, segment) references,
    anchored-segment counts), so a 100k-signature matcher pickles and loads in milliseconds.
    Signatures recompile their patterns only when one of their anchors is hit.
    """

    def __init__(self, sigs: Sequence[BodySig], backend: str | None = None) -> None:
        self.backend_name = backend or default_backend()
        anchor_ids: dict[tuple[bytes, bool], int] = {}
        anchors: list[tuple[bytes, bool]] = []
        refs: list[tuple[int, int, int]] = []  # (anchor, pattern entry, segment)
        self.pe_sig = array("I")
        self.pe_var = array("B")
        self.pe_need = array("H")
        self.always = array("I")
        #: 1 for signatures the normalised-text pass considers (see `NormView`).
        self.norm_sig = bytearray(len(sigs))
        for si, sig in enumerate(sigs):
            pres = sig.prefilters
            if sig.target in NORMALISED_PASS_TARGETS and any(p.normalisable for p in pres):
                self.norm_sig[si] = 1
            for v, pre in enumerate(pres):
                pe = len(self.pe_sig)
                self.pe_sig.append(si)
                self.pe_var.append(v)
                # One anchor per pattern, its most selective (`hexsig.prefilter`).
                if pre.segment < 0:
                    self.pe_need.append(0)
                    self.always.append(pe)
                    continue
                key = (pre.anchor.lower() if pre.nocase else pre.anchor, pre.nocase)
                aid = anchor_ids.get(key)
                if aid is None:
                    aid = anchor_ids[key] = len(anchors)
                    anchors.append(key)
                refs.append((aid, pe, pre.segment))
                self.pe_need.append(1)
            sig.forget()
        anchor_ids.clear()
        refs.sort()
        self.ref_start = array("I", [0] * (len(anchors) + 1))
        for aid, _pe, _s in refs:
            self.ref_start[aid + 1] += 1
        for i in range(len(anchors)):
            self.ref_start[i + 1] += self.ref_start[i]
        self.ref_pe = array("I", (r[1] for r in refs))
        self.ref_seg = array("H", (r[2] for r in refs))
        self.anchor_len = array("H", (len(a) for a, _ in anchors))
        self.anchor_blob = b"".join(a for a, _ in anchors)
        self.anchor_nocase = bytes(int(nc) for _, nc in anchors)
        self.sigs = SigTable(sigs)
        self._anchor_pos: array[int] | None = None
        self._backend = self._make_backend(anchors, None)

    def _anchor(self, aid: int) -> tuple[bytes, bool]:
        pos = self._anchor_pos
        if pos is None:
            pos = self._anchor_pos = array("Q", accumulate(self.anchor_len, initial=0))
        return self.anchor_blob[pos[aid] : pos[aid + 1]], bool(self.anchor_nocase[aid])

    def anchors(self) -> list[tuple[bytes, bool]]:
        out = []
        pos = 0
        for i, n in enumerate(self.anchor_len):
            out.append((self.anchor_blob[pos : pos + n], bool(self.anchor_nocase[i])))
            pos += n
        return out

    def _make_backend(self, anchors: list[tuple[bytes, bool]] | None,
                      blob: bytes | None) -> _Backend:
        if self.backend_name == "hyperscan" and HAVE_HYPERSCAN:
            return _HyperscanBackend(() if blob is not None else anchors
                                     if anchors is not None else self.anchors(), blob,
                                     self._anchor)
        anchors = anchors if anchors is not None else self.anchors()
        if self.backend_name in ("hyperscan", "ahocorasick") and HAVE_AHOCORASICK:
            self.backend_name = "ahocorasick"
            return _AhoBackend(anchors)
        self.backend_name = "python"
        return _PythonBackend(anchors)

    _ARRAYS = ("pe_sig", "pe_var", "pe_need", "always", "ref_start", "ref_pe", "ref_seg",
               "anchor_len")

    def __getstate__(self) -> dict[str, Any]:
        blob = None
        if isinstance(self._backend, _HyperscanBackend):
            blob = self._backend.dump()
        st: dict[str, Any] = {k: getattr(self, k) for k in self._ARRAYS}
        st.update(sigs=self.sigs, backend_name=self.backend_name, anchor_blob=self.anchor_blob,
                  anchor_nocase=self.anchor_nocase, hs_blob=blob, norm_sig=bytes(self.norm_sig))
        return st

    def __setstate__(self, st: dict[str, Any]) -> None:
        self.norm_sig = bytearray(st["norm_sig"])
        self._anchor_pos = None
        for k in (*self._ARRAYS, "sigs", "backend_name", "anchor_blob", "anchor_nocase"):
            setattr(self, k, st[k])
        has_hs = st["hs_blob"] is not None or not len(self.anchor_len)
        self._backend = self._make_backend(None, st["hs_blob"] if has_hs else None)

    # -- scanning ---------------------------------------------------------------------------

    def scan(
        self,
        data: bytes,
        geometry: Geometry,
        applies: Callable[[Target], bool],
        counting: Callable[[int], bool] = lambda _s: False,
        first_only: bool = False,
        normalised: bool = False,
    ) -> dict[int, int]:
        """Signature index -> match count (capped at 1 unless `counting(index)`), for every
        signature whose target `applies` to this layer. With `first_only`, stop at the first.
        `normalised`: only the signatures that can match normalised text."""
        hits = self._backend.scan(data) if len(self.anchor_len) else {}
        cand: dict[int, dict[int, list[int]]] = {}
        ref_start, ref_pe, ref_seg = self.ref_start, self.ref_pe, self.ref_seg
        for aid, ends in hits.items():
            alen = self.anchor_len[aid]
            starts = [end - alen for end in ends]
            for k in range(ref_start[aid], ref_start[aid + 1]):
                pe = ref_pe[k]
                d = cand.get(pe)
                if d is None:
                    cand[pe] = {ref_seg[k]: starts}
                else:
                    d[ref_seg[k]] = starts
        for pe in self.always:
            cand.setdefault(pe, {})
        found: dict[int, int] = {}
        for pe in sorted(cand):
            seg_hits = cand[pe]
            if len(seg_hits) < self.pe_need[pe]:
                continue
            si = self.pe_sig[pe]
            if normalised and not self.norm_sig[si]:
                continue
            if not applies(self.sigs.target(si)):
                continue
            want_all = counting(si)
            if si in found and not want_all:
                continue
            sig = self.sigs[si]
            window = sig.offset.resolve(geometry.size, geometry.ep, geometry.sections)
            if window is None:
                continue
            n = _count_pattern(data, sig.patterns[self.pe_var[pe]], seg_hits, window, want_all)
            if n:
                found[si] = found.get(si, 0) + n
                if first_only:
                    break
        return found


    @property
    def has_norm(self) -> bool:
        return any(self.norm_sig)


class SigLookup(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> BodySig: ...

    def name(self, i: int) -> str: ...

    def target(self, i: int) -> Target: ...


class BodyMatcher(Protocol):
    """What the engine needs of a matcher: a `Matcher`, a `MatcherSet` or a `NormView`."""

    backend_name: str

    @property
    def sigs(self) -> SigLookup: ...

    def scan(self, data: bytes, geometry: Geometry, applies: Callable[[Target], bool],
             counting: Callable[[int], bool] = ..., first_only: bool = ...,
             normalised: bool = ...) -> dict[int, int]: ...


class MatcherSet:
    """The matchers of a database's parts, answering with one index space.

    `parts` are (matcher, number of its entries that are .ndb signatures), in load order.
    Global index: the .ndb entries of every part in order, then the .ldb subsignature entries
    of every part in order: what one matcher over all the parts' signatures would number.
    """

    def __init__(self, parts: Sequence[tuple[Matcher, int]]) -> None:
        self.parts = [(m, nb) for m, nb in parts if len(m.sigs)]
        self.backend_name = parts[0][0].backend_name if parts else default_backend()
        self.n_body = sum(nb for _m, nb in self.parts)
        self.body_off = array("Q")
        self.sub_off = array("Q")
        b = s = 0
        for m, nb in self.parts:
            self.body_off.append(b)
            self.sub_off.append(self.n_body + s)
            b += nb
            s += len(m.sigs) - nb
        self.total = self.n_body + s

    @property
    def sigs(self) -> SigLookup:
        return _SetSigs(self)

    def local(self, i: int) -> tuple[Matcher, int]:
        """The part and its own index of global entry `i`."""
        if i < self.n_body:
            k = bisect.bisect_right(self.body_off, i) - 1
            return self.parts[k][0], i - self.body_off[k]
        k = bisect.bisect_right(self.sub_off, i) - 1
        return self.parts[k][0], self.parts[k][1] + i - self.sub_off[k]

    def scan(self, data: bytes, geometry: Geometry, applies: Callable[[Target], bool],
             counting: Callable[[int], bool] = lambda _s: False, first_only: bool = False,
             normalised: bool = False) -> dict[int, int]:
        found: dict[int, int] = {}
        for k, (m, nb) in enumerate(self.parts):
            boff, soff = self.body_off[k], self.sub_off[k] - nb

            def glob(i: int, boff: int = boff, soff: int = soff, nb: int = nb) -> int:
                return boff + i if i < nb else soff + i

            def count_local(i: int, glob: Callable[[int], int] = glob) -> bool:
                return counting(glob(i))

            hits = m.scan(data, geometry, applies, count_local, first_only, normalised)
            for i, n in hits.items():
                found[glob(i)] = n
            if first_only and found:
                break  # first_only is for databases of .ndb signatures only: part order wins
        return found

    @property
    def has_norm(self) -> bool:
        return any(m.has_norm for m, _nb in self.parts)


class _SetSigs:
    def __init__(self, ms: MatcherSet) -> None:
        self.ms = ms

    def __len__(self) -> int:
        return self.ms.total

    def __getitem__(self, i: int) -> BodySig:
        m, j = self.ms.local(i)
        return m.sigs[j]

    def name(self, i: int) -> str:
        m, j = self.ms.local(i)
        return m.sigs.name(j)

    def target(self, i: int) -> Target:
        m, j = self.ms.local(i)
        return m.sigs.target(j)


class NormView:
    """The normalised-text pass over a matcher: same automaton, same indexes, only the
    signatures that can match normalised text."""

    def __init__(self, base: Matcher | MatcherSet) -> None:
        self.base = base
        self.backend_name = base.backend_name

    @property
    def sigs(self) -> SigLookup:
        return self.base.sigs

    def scan(self, data: bytes, geometry: Geometry, applies: Callable[[Target], bool],
             counting: Callable[[int], bool] = lambda _s: False, first_only: bool = False,
             normalised: bool = True) -> dict[int, int]:
        return self.base.scan(data, geometry, applies, counting, first_only, True)


def _iter_occ(data: bytes, seg: Segment, anchor_starts: list[int] | None, lo: int,
              hi: int) -> Iterator[Occ]:
    """Occurrences of `seg` starting in [lo, hi], by increasing start, each start once.

    Lazy, so callers that need one match (or the earliest end) stop early: a frequent anchor
    costs verification only until the first success.
    """
    rx = seg.regex
    if anchor_starts is not None:
        pre_lo, pre_hi = seg.anchor_pre
        tried = lo - 1
        for a in sorted(anchor_starts):
            first = max(a - pre_hi, tried + 1, 0)
            last = min(a - pre_lo, hi)
            for st in range(first, last + 1):
                m = rx.match(data, st)
                if m is not None:
                    yield st, m.end()
            tried = max(tried, last)
        return
    if hi - lo < 4096:
        for st in range(lo, min(hi, len(data)) + 1):
            m = rx.match(data, st)
            if m is not None:
                yield st, m.end()
        return
    for m in seg.scan_regex.finditer(data, lo):
        if m.start() > hi:
            return
        yield m.start(), m.start() + len(m.group(1))


def _min_end(occ: Iterator[Occ], min_len: int) -> int | None:
    """Earliest end among the occurrences (stops once later starts cannot end earlier)."""
    best: int | None = None
    for st, end in occ:
        if best is not None and st + min_len >= best:
            break
        if best is None or end < best:
            best = end
    return best


def _count_pattern(data: bytes, pat: HexPattern, seg_hits: dict[int, list[int]],
                   window: tuple[int, int], all_: bool) -> int:
    """How many times the pattern matches (1 at most unless `all_`).

    One segment: every start counts. Several: like ClamAV, every occurrence of the *last*
    segment that a chain of the earlier ones (in order, gaps respected) can reach counts.
    """
    segs = pat.segments

    def occ(i: int, lo: int, hi: int) -> Iterator[Occ]:
        return _iter_occ(data, segs[i], seg_hits.get(i) if segs[i].anchor else None, lo, hi)

    last = len(segs) - 1
    lo, hi = window
    for i in range(last):
        reach = _min_end(occ(i, lo, hi), segs[i].min_len)
        if reach is None:
            return 0
        lo, hi = reach + pat.gaps[i].lo, len(data)
    it = occ(last, lo, hi)
    if not all_:
        return 1 if next(it, None) is not None else 0
    return sum(1 for _ in it)
