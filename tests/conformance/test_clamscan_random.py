"""Differential test: random .ndb signatures and random files, zerohour vs clamscan --allmatch.

Signatures use every hex construct over a four-letter alphabet so that matches are common;
those clamscan refuses (it has length rules of its own) are dropped first, one clamscan call
each. Then one clamscan run over all samples gives the oracle's set of names per file.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from zerohour.scan import Engine, load_database

pytestmark = pytest.mark.needs_clamav
CLAMSCAN = shutil.which("clamscan")
ALPHABET = b"abcd"


def _signature(rng: random.Random) -> str:
    def lit(n: int) -> str:
        return bytes(rng.choice(ALPHABET) for _ in range(n)).hex()

    def piece() -> str:
        r = rng.random()
        if r < 0.15:
            return "??"
        if r < 0.25:
            return rng.choice(["6?", "?1", "?3"])
        if r < 0.35:
            return f"{{{rng.randint(0, 3)}}}"
        if r < 0.45:
            return f"{{-{rng.randint(0, 3)}}}"
        if r < 0.55:
            a = rng.randint(0, 2)
            return f"{{{a}-{rng.choice([0, a + rng.randint(1, 3)])}}}"
        if r < 0.7:
            return rng.choice(["(61|62)", "(63|64)", "!(61|62)", "(6162|6364)"])
        return lit(rng.randint(2, 3))

    segs = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        body = [lit(rng.randint(2, 4))]
        body += [piece() for _ in range(rng.randint(0, 3))]
        body.append(lit(rng.randint(2, 4)))
        segs.append("".join(body))
    out = segs[0]
    for s in segs[1:]:
        out += rng.choice(["*", "{2-}", "*"]) + s
    return out


def _accepted_by_clamscan(sig: str, work: Path) -> bool:
    assert CLAMSCAN is not None
    db = work / "probe"
    db.mkdir(exist_ok=True)
    (db / "t.ndb").write_text(f"T:0:*:{sig}\n")
    proc = subprocess.run([CLAMSCAN, "--no-summary", "-d", str(db), str(db / "t.ndb")],
                          capture_output=True, timeout=60)
    return proc.returncode != 2


@pytest.mark.skipif(CLAMSCAN is None, reason="clamscan not installed (scripts/system-deps)")
@pytest.mark.parametrize("seed", [11, 12])
def test_random_signatures_agree_with_clamscan(seed: int, tmp_path: Path) -> None:
    assert CLAMSCAN is not None
    rng = random.Random(seed)
    sigs = [s for s in (_signature(rng) for _ in range(60)) if _accepted_by_clamscan(s, tmp_path)]
    assert len(sigs) > 40
    db, samples = tmp_path / "db", tmp_path / "samples"
    db.mkdir()
    samples.mkdir()
    (db / "r.ndb").write_text("".join(f"R{i}:0:*:{s}\n" for i, s in enumerate(sigs)))
    for j in range(150):
        body = bytes(rng.choice(ALPHABET + b"x") for _ in range(rng.randint(50, 400)))
        (samples / f"f{j:03d}").write_bytes(b"\x00\x01\xfe" + body + b"\x00\xff")
    proc = subprocess.run([CLAMSCAN, "--no-summary", "--allmatch", "-d", str(db), str(samples)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    clam: dict[str, set[str]] = defaultdict(set)
    for line in proc.stdout.splitlines():
        path, _, verdict = line.rpartition(": ")
        if verdict.endswith(" FOUND"):
            clam[Path(path).name].add(verdict[: -len(" FOUND")].removesuffix(".UNOFFICIAL"))
    engine = Engine(load_database([db], strict=True, use_cache=False), allmatch=True)
    ours = {p.name: set(engine.scan_path(p).names) for p in samples.iterdir()}
    assert sum(1 for v in clam.values() if v) >= 20  # the test has positives to compare
    mismatches = {name: (clam.get(name, set()), found) for name, found in ours.items()
                  if found != clam.get(name, set())}
    assert not mismatches


def _expression(rng: random.Random, n: int, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.35:
        out = str(rng.randrange(n))
    else:
        op = rng.choice("&|")
        out = "(" + op.join(_expression(rng, n, depth + 1) for _ in range(rng.randint(2, 3))) + ")"
    if rng.random() < 0.35:
        out += rng.choice("=><") + str(rng.randint(0, 3))
        if rng.random() < 0.3:
            out += f",{rng.randint(1, 2)}"
    return out


@pytest.mark.skipif(CLAMSCAN is None, reason="clamscan not installed (scripts/system-deps)")
@pytest.mark.parametrize("seed", [21, 22])
def test_random_logical_signatures_agree_with_clamscan(seed: int, tmp_path: Path) -> None:
    """Expressions (ClamAV's odd operator grouping, counts, `,m`, zero-match truths) and
    `::i`/`::w`/`::wa` subsignatures, on text samples with upper- and lower-case letters."""
    assert CLAMSCAN is not None
    rng = random.Random(seed)
    lines = []
    for i in range(40):
        n = rng.randint(1, 4)
        subs = [bytes(rng.choice(ALPHABET) for _ in range(rng.randint(3, 4))).hex()
                + rng.choice(["", "", "", "", "::i", "::w", "::wa"]) for _ in range(n)]
        line = f"L{i};Engine:51-255,Target:0;{_expression(rng, n)};" + ";".join(subs)
        probe = tmp_path / "probe"
        probe.mkdir(exist_ok=True)
        (probe / "t.ldb").write_text(line + "\n")
        ok = subprocess.run([CLAMSCAN, "--no-summary", "-d", str(probe), str(probe / "t.ldb")],
                            capture_output=True, timeout=60).returncode != 2
        if ok:
            lines.append(line)
    assert len(lines) > 25
    db, samples = tmp_path / "db", tmp_path / "samples"
    db.mkdir()
    samples.mkdir()
    (db / "r.ldb").write_text("\n".join(lines) + "\n")
    for j in range(150):
        # Plain text (both engines also match it normalised, i.e. lower-cased); wide text is
        # left out: clamscan's treatment of binary data holding UTF-16 differs (see docs).
        body = bytes(rng.choice(ALPHABET + b"ABx") for _ in range(rng.randint(20, 300)))
        (samples / f"f{j:03d}").write_bytes(body)
    proc = subprocess.run([CLAMSCAN, "--no-summary", "--allmatch", "-d", str(db), str(samples)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    clam: dict[str, set[str]] = defaultdict(set)
    for line in proc.stdout.splitlines():
        path, _, verdict = line.rpartition(": ")
        if verdict.endswith(" FOUND"):
            clam[Path(path).name].add(verdict[: -len(" FOUND")].removesuffix(".UNOFFICIAL"))
    engine = Engine(load_database([db], strict=True, use_cache=False), allmatch=True)
    ours = {p.name: set(engine.scan_path(p).names) for p in samples.iterdir()}
    mismatches = {name: (clam.get(name, set()), found) for name, found in ours.items()
                  if found != clam.get(name, set())}
    assert not mismatches
