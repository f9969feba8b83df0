#!/usr/bin/env python3
"""Scan-engine benchmark: zerohour against clamscan and a private clamd, same corpus, same run.

Generates (deterministically, from --seed) an e-mail corpus and a file corpus plus ClamAV-format
databases (N random body signatures + M random hash signatures, with a few planted signatures so
that detection is checked too), then scans each corpus with every engine and prints, per engine:
database load time, scan time, MB/s, peak memory and detections, with the ratios against the
peers. A benchmark, not a test: it prints numbers and never asserts speed; it exits 1 only if an
engine's detections disagree with the planted ground truth.

    .venv/bin/python bench/scan.py --quick          # smoke run, a few minutes
    .venv/bin/python bench/scan.py                  # full: 2000 msgs + 200 MB, 1k/10k/100k + 1M
    .venv/bin/python bench/scan.py --real-size      # ClamAV-sized db: cold/cached/daily loads
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MemSampler, Stopwatch, loadavg, ratio, table

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
ZH_CLI = ROOT / ".venv" / "bin" / "zerohour"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GEN_VERSION = 5  # bump when the generator changes, so cached corpora are rebuilt

# ---------------------------------------------------------------------------------------------
# Corpus and database generation


@dataclass(frozen=True)
class GenParams:
    seed: int
    messages: int
    files_mb: int
    sizes: tuple[int, ...]
    hashes: int
    plants: int = 8
    #: --real-size: instead of the per-size databases, one shaped like ClamAV's official one
    #: (main + daily): (MD5 hashes, SHA-256 hashes, body signatures).
    real: tuple[int, int, int] | None = None


@dataclass
class Truth:
    """What the generator planted: path (relative to the corpus root) -> reason."""

    infected: dict[str, str] = field(default_factory=dict)


def _words(rng: random.Random, n: int = 4000) -> list[str]:
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    return ["".join(rng.choices(letters, weights, k=rng.randint(2, 10))) for _ in range(n)]


class TextGen:
    """Pseudo-prose from a seeded vocabulary (cheap, compressible like real text)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = _words(rng)

    def text(self, nbytes: int) -> str:
        out: list[str] = []
        size = 0
        while size < nbytes:
            line = " ".join(self.rng.choices(self.words, k=self.rng.randint(6, 13)))
            line = line[:1].upper() + line[1:] + "."
            out.append(line)
            size += len(line) + 1
        return "\n".join(out)[:nbytes]

    def html(self, nbytes: int) -> str:
        parts = ["<html><head><title>Report</title></head><body>"]
        size = len(parts[0])
        while size < nbytes:
            p = (
                f'<p style="font-family:Arial">{self.text(self.rng.randint(200, 600))}'
                f' <a href="https://example.com/{self.rng.choice(self.words)}">link</a></p>\n'
            )
            parts.append(p)
            size += len(p)
        parts.append("</body></html>")
        return "".join(parts)


def _b64(data: bytes) -> str:
    enc = base64.b64encode(data).decode()
    return "\r\n".join(enc[i : i + 76] for i in range(0, len(enc), 76))


def _qp(text: str) -> str:
    return binascii.b2a_qp(text.encode(), quotetabs=False).decode().replace("\n", "\r\n")


def _binary(rng: random.Random, n: int) -> bytes:
    """Binary-looking data: random runs mixed with zero padding and repeated blocks."""
    out = bytearray(b"\x7fZHB\x01\x00")
    while len(out) < n:
        k = rng.random()
        run = rng.randint(256, 4096)
        if k < 0.7:
            out += rng.randbytes(run)
        elif k < 0.85:
            out += bytes(run)
        else:
            out += out[-run:] if len(out) > run else rng.randbytes(run)
    return bytes(out[:n])


def _insert(data: bytes, sample: bytes, rng: random.Random) -> bytes:
    pos = rng.randint(8, max(8, len(data) - len(sample) - 1))
    return data[:pos] + sample + data[pos + len(sample) :]


def _zip(members: Sequence[tuple[str, bytes, bool]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, deflate in members:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            zf.writestr(info, data)
    return buf.getvalue()


def _message(
    rng: random.Random,
    tg: TextGen,
    i: int,
    infect: str | None,
    plants: list[bytes],
    hash_att: bytes | None,
) -> bytes:
    """One ~50 KB MIME message: text+html alternative, a binary, a zip, sometimes a QP text."""
    b1 = f"=_mixed_{i:06d}_{rng.getrandbits(32):08x}"
    b2 = f"=_alt_{i:06d}_{rng.getrandbits(32):08x}"
    subj = tg.text(rng.randint(20, 60)).replace("\n", " ")
    plain = tg.text(rng.randint(2500, 5000))
    html = tg.html(rng.randint(4000, 8000))
    binsz = rng.randint(8000, 16000)
    binary = _binary(rng, binsz)
    ztext = tg.text(rng.randint(8000, 14000)).encode()
    zbin = _binary(rng, rng.randint(3000, 8000))
    extra_eicar = False
    if infect == "plant-att":
        binary = _insert(binary, rng.choice(plants), rng)
    elif infect == "plant-zip":
        zbin = _insert(zbin, rng.choice(plants), rng)
    elif infect == "hash-att":
        assert hash_att is not None
        binary = hash_att
    elif infect == "eicar-att":
        extra_eicar = True
    zipdata = _zip(
        [("notes.txt", ztext, True), ("data.bin", zbin, rng.random() < 0.5)]
        + ([("eicar.com", EICAR, False)] if infect == "eicar-zip" else [])
    )
    parts = [
        f"From: Sender {i} <sender{i}@example.org>\r\n"
        f"To: Recipient <rcpt{i % 97}@example.net>\r\n"
        f"Subject: {subj}\r\n"
        f"Date: Sat, 28 Nov 2026 12:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <bench.{i}.{rng.getrandbits(48):012x}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{b1}"\r\n\r\n'
        "This is a multi-part message in MIME format.\r\n",
        f'--{b1}\r\nContent-Type: multipart/alternative; boundary="{b2}"\r\n\r\n',
        f"--{b2}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{_qp(plain)}\r\n",
        f"--{b2}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(html.encode())}\r\n",
        f"--{b2}--\r\n",
        f'--{b1}\r\nContent-Type: application/octet-stream; name="data{i}.bin"\r\n'
        f"Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="data{i}.bin"\r\n\r\n{_b64(binary)}\r\n',
        f'--{b1}\r\nContent-Type: application/zip; name="archive{i}.zip"\r\n'
        f"Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="archive{i}.zip"\r\n\r\n'
        f"{_b64(zipdata)}\r\n",
    ]
    if rng.random() < 0.5:
        parts.append(
            f'--{b1}\r\nContent-Type: text/plain; charset=utf-8; name="minutes.txt"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n"
            f'Content-Disposition: attachment; filename="minutes.txt"\r\n\r\n'
            f"{_qp(tg.text(rng.randint(3000, 8000)))}\r\n"
        )
    if extra_eicar:
        parts.append(
            f'--{b1}\r\nContent-Type: application/octet-stream; name="eicar.com"\r\n'
            f"Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="eicar.com"\r\n\r\n{_b64(EICAR)}\r\n'
        )
    parts.append(f"--{b1}--\r\n")
    return "".join(parts).encode()


def _rand_ndb(rng: random.Random, i: int) -> str:
    """A random body signature: 16-64 bytes, ~30% with one or two wildcards, some at offset 0."""
    n = rng.randint(16, 64)
    toks = [f"{b:02x}" for b in rng.randbytes(n)]
    if rng.random() < 0.3:
        first = rng.randint(4, n // 2 - 2)
        positions = [first] if rng.random() < 0.5 else [first, rng.randint(first + 4, n - 5)]
        for pos in positions:
            kind = rng.random()
            if kind < 0.5:
                toks[pos] = "??"
            elif kind < 0.8:
                lo = rng.randint(0, 4)
                toks[pos] = toks[pos] + f"{{{lo}-{lo + rng.randint(1, 8)}}}"
            else:
                toks[pos] = toks[pos] + "*"
    offset = "0" if rng.random() < 0.05 else "*"
    return f"Zh.Bench.Rand.{i}:0:{offset}:{''.join(toks)}"


#: ClamAV-like placements for the real-size database: (target, offset) with weights.
_REAL_PLACES = (
    (0, "*", 30), (1, "*", 20), (1, "EP+0", 6), (1, "EP+12,40", 3), (1, "S0+0", 2),
    (1, "SL+16", 1), (0, "0", 5), (0, "EOF-2048,2048", 2), (3, "*", 8), (7, "*", 8),
    (2, "*", 4), (6, "*", 3), (10, "*", 3), (4, "*", 2), (9, "0", 1), (1, "100,4096", 2),
)


def _real_ndb(rng: random.Random, name: str) -> str:
    """A body signature shaped like ClamAV's: binary or text bytes (text for HTML/ASCII
    targets), with `??`, nibbles, alternatives, bounded jumps `{n-m}` and unbounded `*`
    between parts of 6-20 bytes (ClamAV wants two fixed bytes in every part)."""
    target, offset, _w = rng.choices(_REAL_PLACES, [p[2] for p in _REAL_PLACES])[0]
    text = target in (3, 7) or rng.random() < 0.1
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789<>=/."
    parts: list[str] = []
    for k in range(rng.choice((1, 1, 2, 2, 3))):
        # text parts are longer: six random letters do turn up in a few MB of prose
        n = rng.randint(12, 24) if text else rng.randint(6, 20)
        raw = bytes(rng.choices(alphabet, k=n)) if text else rng.randbytes(n)
        toks = [f"{b:02x}" for b in raw]
        if rng.random() < 0.4:
            pos = rng.randint(4, n - 5) if text else rng.randint(2, n - 3)
            kind = rng.random()
            if kind < 0.6:
                toks[pos] = "??"
            elif kind < 0.8:
                toks[pos] = toks[pos][0] + "?"
            else:
                toks[pos] = f"({toks[pos]}|{rng.randbytes(1).hex()})"
        if k:
            if rng.random() < 0.75:
                lo = rng.randint(0, 8)
                parts.append(f"{{{lo}-{lo + rng.randint(1, 32)}}}")
            else:
                parts.append("*")
        parts.append("".join(toks))
    return f"{name}:{target}:{offset}:{''.join(parts)}"


def write_real_db(db: Path, rng: random.Random, head_hdb: Sequence[str],
                  head_hsb: Sequence[str], head_ndb: Sequence[str], md5: int, sha256: int,
                  body: int) -> None:
    """A database shaped like ClamAV's official one: `main.*` (90 %) and `daily.*` (10 %)
    as plain files (what a .cvd unpacks to). The planted signatures go into daily."""
    db.mkdir(parents=True)
    families = ["Win.Trojan", "Win.Malware", "Doc.Dropper", "Html.Phishing", "Unix.Trojan",
                "Pdf.Exploit", "Js.Downloader", "Email.Phishing", "Osx.Adware", "Win.Packed"]
    for part, share in (("main", 0.9), ("daily", 0.1)):
        with open(db / f"{part}.hdb", "w") as fh:
            if part == "daily":
                fh.writelines(row + "\n" for row in head_hdb)
            for n in range(int(md5 * share)):
                fam = families[n % len(families)]
                fh.write(f"{rng.randbytes(16).hex()}:{rng.randint(100, 10_000_000)}:"
                         f"{fam}.{part}-{n}-0\n")
        with open(db / f"{part}.hsb", "w") as fh:
            if part == "daily":
                fh.writelines(row + "\n" for row in head_hsb)
            for n in range(int(sha256 * share)):
                fam = families[n % len(families)]
                fh.write(f"{rng.randbytes(32).hex()}:{rng.randint(100, 10_000_000)}:"
                         f"{fam}.{part}-sha-{n}-0\n")
        with open(db / f"{part}.ndb", "w") as fh:
            if part == "daily":
                fh.writelines(row + "\n" for row in head_ndb)
            for n in range(int(body * share)):
                fh.write(_real_ndb(rng, f"{families[n % len(families)]}.{part}-body-{n}-0") + "\n")


def _plant_sig(k: int, sample: bytes) -> str:
    toks = [f"{b:02x}" for b in sample[8:56]]
    toks[20] = "??"
    return f"Zh.Bench.Plant.{k}:0:*:{''.join(toks)}"


def _size_label(n: int) -> str:
    return (
        f"{n // 1_000_000}M"
        if n >= 1_000_000 and n % 1_000_000 == 0
        else (f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))
    )


def parse_size(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1000, "m": 1_000_000}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def generate(work: Path, p: GenParams) -> Truth:
    """Build corpus and databases under `work`, reusing them if the parameters are unchanged."""
    manifest = work / "manifest.json"
    want = {"gen": GEN_VERSION, **asdict(p)}
    want["sizes"] = list(p.sizes)
    want["real"] = list(p.real) if p.real else None
    if manifest.exists():
        got = json.loads(manifest.read_text())
        have = dict(got.get("params", {}))
        # a db folder depends only on its own size, so a subset of the built sizes is reusable
        if set(want["sizes"]) <= set(have.get("sizes", [])):
            have["sizes"] = want["sizes"]
        if have == want:
            print(f"# reusing generated corpus and databases in {work}")
            return Truth(infected=got["truth"])
    print(f"# generating corpus and databases in {work} (seed {p.seed}) ...", flush=True)
    sw = Stopwatch()
    for sub in ("mail", "files", "db"):
        shutil.rmtree(work / sub, ignore_errors=True)
    rng = random.Random(p.seed)
    tg = TextGen(rng)
    plants = [rng.randbytes(64) for _ in range(p.plants)]
    truth = Truth()
    hash_rows_md5: list[str] = []
    hash_rows_sha256: list[str] = []

    # e-mail corpus
    mail = work / "mail"
    for d in range(0, p.messages, 500):
        (mail / f"{d // 500:03d}").mkdir(parents=True, exist_ok=True)
    kinds = ["plant-att", "plant-zip", "eicar-att", "eicar-zip", "hash-att"]
    n_infected = max(len(kinds), p.messages // 40)  # 2.5 %
    infected_idx = sorted(rng.sample(range(p.messages), n_infected))
    kind_of = {i: kinds[n % len(kinds)] for n, i in enumerate(infected_idx)}
    hk = 0
    for i in range(p.messages):
        infect = kind_of.get(i)
        hash_att = None
        if infect == "hash-att":
            hash_att = _binary(rng, rng.randint(8000, 16000))
            hash_rows_md5.append(
                f"{hashlib.md5(hash_att).hexdigest()}:{len(hash_att)}:Zh.Bench.Hash.{hk}"
            )
            hk += 1
        data = _message(rng, tg, i, infect, plants, hash_att)
        rel = f"mail/{i // 500:03d}/msg{i:06d}.eml"
        (work / rel).write_bytes(data)
        if infect:
            truth.infected[rel] = infect

    # file corpus: ~60 % binary, ~40 % text, 64 KB - 4 MB each
    files = work / "files"
    (files / "bin").mkdir(parents=True)
    (files / "txt").mkdir(parents=True)
    total, j = 0, 0
    budget = p.files_mb * 1024 * 1024
    while total < budget:
        size = min(int(rng.lognormvariate(13.3, 0.9)), 4 * 1024 * 1024)
        size = max(size, 64 * 1024)
        if rng.random() < 0.6:
            data = _binary(rng, size)
            rel = f"files/bin/f{j:05d}.bin"
        else:
            data = tg.text(size).encode()
            rel = f"files/txt/f{j:05d}.txt"
        if j % 25 == 7:
            data = _insert(data, rng.choice(plants), rng)
            truth.infected[rel] = "plant"
        elif j % 40 == 13 and rel.endswith(".bin"):
            hash_rows_sha256.append(
                f"{hashlib.sha256(data).hexdigest()}:{len(data)}:Zh.Bench.Hash.{hk}"
            )
            hk += 1
            truth.infected[rel] = "hash"
        (work / rel).write_bytes(data)
        total += len(data)
        j += 1
    for k in range(2):
        rel = f"files/txt/eicar{k}.com"
        (work / rel).write_bytes(EICAR)
        truth.infected[rel] = "eicar"

    db = work / "db"
    if p.real is not None:
        eicar_and_plants = ["Zh.Bench.Eicar:0:*:" + EICAR.hex()] + [
            _plant_sig(k, s) for k, s in enumerate(plants)]
        write_real_db(db / "real", rng, hash_rows_md5, hash_rows_sha256, eicar_and_plants,
                      *p.real)
        manifest.write_text(json.dumps({"params": want, "truth": truth.infected}))
        print(f"# generated in {sw.elapsed():.1f} s", flush=True)
        return truth
    # databases: one folder per body-signature count, all sharing the hash files (hard links)
    common = db / "common"
    common.mkdir(parents=True)
    half = p.hashes // 2
    with open(common / "bench.hdb", "w") as fh:
        fh.write("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n")
        fh.writelines(row + "\n" for row in hash_rows_md5)
        for n in range(half):
            fh.write(
                f"{rng.randbytes(16).hex()}:{rng.randint(100, 10_000_000)}:Zh.Bench.RandHash.{n}\n"
            )
    with open(common / "bench.hsb", "w") as fh:
        fh.writelines(row + "\n" for row in hash_rows_sha256)
        for n in range(half, p.hashes):
            fh.write(
                f"{rng.randbytes(32).hex()}:{rng.randint(100, 10_000_000)}:Zh.Bench.RandHash.{n}\n"
            )
    body = [_rand_ndb(rng, n) for n in range(max(p.sizes))]
    for size in p.sizes:
        size_dir = db / _size_label(size)
        size_dir.mkdir()
        for f in ("bench.hdb", "bench.hsb"):
            os.link(common / f, size_dir / f)
        with open(size_dir / "bench.ndb", "w") as fh:
            fh.write("Zh.Bench.Eicar:0:*:" + EICAR.hex() + "\n")
            fh.writelines(_plant_sig(k, s) + "\n" for k, s in enumerate(plants))
            fh.writelines(row + "\n" for row in body[: max(0, size - 1 - len(plants))])
    manifest.write_text(json.dumps({"params": want, "truth": truth.infected}))
    print(f"# generated in {sw.elapsed():.1f} s", flush=True)
    return truth


def corpus_bytes(path: Path) -> tuple[int, int]:
    n, total = 0, 0
    for f in iter_files(path):
        n += 1
        total += f.stat().st_size
    return n, total


def iter_files(path: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(path):
        for f in sorted(files):
            yield Path(dirpath) / f


# ---------------------------------------------------------------------------------------------
# Engines


@dataclass
class Result:
    engine: str
    load_s: float | None = None
    load_cached_s: float | None = None
    scan_s: float | None = None
    wall_s: float | None = None
    pss_mb: float | None = None
    hwm_mb: float | None = None
    detected: set[str] = field(default_factory=set)
    error: str | None = None
    note: str = ""
    cpu_s: float | None = None


def _parse_found(out: str, root: Path) -> set[str]:
    found: set[str] = set()
    for line in out.splitlines():
        line = line.strip("\x00").strip()
        if not line.endswith(" FOUND"):
            continue
        path = line.rsplit(": ", 1)[0]
        # clamd/clamscan print the member path for archives as "file.zip/..." only with extra
        # options; strip anything below the corpus file to be safe
        p = Path(path)
        try:
            rel = p.resolve().relative_to(root.resolve())
        except ValueError:
            continue
        found.add(str(Path(root.name) / rel))
    return found


def _run_measured(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 3600
) -> tuple[str, float, MemSampler, int]:
    sw = Stopwatch()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with MemSampler(proc.pid) as ms:
        out, err = proc.communicate(timeout=timeout)
    wall = sw.elapsed()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.strip()[-500:]}")
    return out, wall, ms, proc.returncode


def run_clamscan(db: Path, corpus: Path, empty: Path) -> Result:
    r = Result("clamscan")
    if not shutil.which("clamscan"):
        r.error = "not installed"
        return r
    try:
        _out, r.load_s, _ms, _rc = _run_measured(
            ["clamscan", "--no-summary", "-d", str(db), str(empty)]
        )
        out, r.wall_s, ms, _rc = _run_measured(
            ["clamscan", "--no-summary", "-d", str(db), "-r", str(corpus)]
        )
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        r.error = str(e)
        return r
    r.scan_s = max(r.wall_s - r.load_s, 1e-6)
    r.pss_mb, r.hwm_mb = ms.peak.pss_mb, ms.peak.hwm_mb
    r.detected = _parse_found(out, corpus)
    r.note = "scan = wall - load(empty file)"
    return r


class Clamd:
    """A private clamd on a Unix socket in the work folder, with its own config file."""

    def __init__(self, work: Path, db: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="clamd-", dir=work))
        self.sock = self.dir / "clamd.sock"
        (self.dir / "tmp").mkdir()
        self.conf = self.dir / "clamd.conf"
        self.conf.write_text(
            f"LocalSocket {self.sock}\n"
            f"DatabaseDirectory {db}\n"
            f"TemporaryDirectory {self.dir / 'tmp'}\n"
            f"LogFile {self.dir / 'clamd.log'}\n"
            f"PidFile {self.dir / 'clamd.pid'}\n"
            "Foreground yes\n"
            "MaxThreads 4\n"
            "SelfCheck 0\n"
            "ReadTimeout 600\n"
            "CommandReadTimeout 600\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 900) -> float:
        sw = Stopwatch()
        self.proc = subprocess.Popen(
            ["clamd", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        while sw.elapsed() < timeout:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"clamd exited {self.proc.returncode}: {err[-500:]}")
            try:
                if self.command(b"PING", timeout=2).strip() == "PONG":
                    return sw.elapsed()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("clamd did not answer PING in time")

    def command(self, cmd: bytes, timeout: float = 3600) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.sock))
            s.sendall(b"z" + cmd + b"\x00")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace").replace("\x00", "\n")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_clamd(work: Path, db: Path, corpora: list[Path]) -> dict[Path, Result]:
    """One clamd per database: load once, then MULTISCAN each corpus."""
    results = {c: Result("clamd") for c in corpora}
    if not shutil.which("clamd"):
        for r in results.values():
            r.error = "not installed"
        return results
    cd = Clamd(work, db)
    try:
        load = cd.start()
        assert cd.proc is not None
        with MemSampler(cd.proc.pid) as ms:
            ms.sample()
            base = (ms.peak.pss_mb, ms.peak.hwm_mb)
            for corpus in corpora:
                r = results[corpus]
                r.load_s = load
                sw = Stopwatch()
                out = cd.command(b"MULTISCAN " + str(corpus.resolve()).encode())
                r.scan_s = sw.elapsed()
                r.wall_s = r.scan_s
                ms.sample()
                r.pss_mb, r.hwm_mb = ms.peak.pss_mb, ms.peak.hwm_mb
                r.detected = _parse_found(out, corpus)
                if "ERROR" in out:
                    r.note = (
                        "errors: " + "; ".join(ln for ln in out.splitlines() if "ERROR" in ln)[:200]
                    )
        _ = base
    except (RuntimeError, OSError) as e:
        for r in results.values():
            r.error = str(e)
    finally:
        cd.stop()
    return results


#: Environment for every zerohour subprocess (PYTHONPATH of the source snapshot, if any).
ZH_ENV: dict[str, str] = {}


def snapshot_source(work: Path) -> str:
    """Copy src/zerohour so every zerohour run of this bench uses the same code.

    The engine's compiled-db cache is keyed by a digest of its own source; while the tree is
    being edited, a "cached" load would silently recompile. The copy shadows the editable
    install through PYTHONPATH.
    """
    dst = work / "src-snapshot"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(
        ROOT / "src" / "zerohour", dst / "zerohour", ignore=shutil.ignore_patterns("__pycache__")
    )
    ZH_ENV["PYTHONPATH"] = str(dst)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head or "?"


def _zh_available() -> str | None:
    try:
        proc = subprocess.run(
            [str(VENV_PY), "-c", "from zerohour.scan import Engine, load_database"],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, **ZH_ENV),
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    return None


def run_zerohour_api(
    work: Path, db: Path, corpus: Path, jobs: int, cache_dir: Path, cold: bool
) -> Result:
    """zerohour's library API in a separate process (so its memory is measured alone)."""
    r = Result(f"zerohour api x{jobs}")
    if cold:
        shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached_before = set(os.listdir(cache_dir))
    out_json = work / "zh-result.json"
    env = dict(os.environ, ZEROHOUR_CACHE_DIR=str(cache_dir), **ZH_ENV)
    cmd = [
        str(VENV_PY),
        str(Path(__file__).resolve()),
        "_zh-worker",
        "--db",
        str(db),
        "--corpus",
        str(corpus),
        "--jobs",
        str(jobs),
        "--out",
        str(out_json),
    ]
    if cold:
        cmd.append("--load-only")
    try:
        _out, r.wall_s, ms, _rc = _run_measured(cmd, env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        r.error = str(e)
        return r
    res = json.loads(out_json.read_text())
    r.load_s = res["load_s"]
    r.scan_s = res.get("scan_s")
    r.pss_mb, r.hwm_mb = ms.peak.pss_mb, ms.peak.hwm_mb
    r.detected = {str(Path(corpus.name) / p) for p in res.get("detected", [])}
    if res.get("errors"):
        r.note = f"{res['errors']} scan errors"
    if not cold and set(os.listdir(cache_dir)) - cached_before:
        # the engine's cache key includes its own source digest: code edited since the cold run
        r.note = (r.note + "; " if r.note else "") + "CACHE MISS (recompiled; code changed?)"
    return r


def run_zerohour_cli(db: Path, corpus: Path, cache_dir: Path) -> Result:
    r = Result("zerohour cli")
    env = dict(os.environ, ZEROHOUR_CACHE_DIR=str(cache_dir), **ZH_ENV)
    try:
        _out, r.load_s, _ms, _rc = _run_measured(
            [str(ZH_CLI), "scan", "--db", str(db), str(Path(__file__))], env=env
        )
        out, r.wall_s, ms, _rc = _run_measured(
            [str(ZH_CLI), "scan", "--db", str(db), "-r", "--no-summary", str(corpus)], env=env
        )
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        r.error = str(e)[:300]
        return r
    r.scan_s = max(r.wall_s - r.load_s, 1e-6)
    r.pss_mb, r.hwm_mb = ms.peak.pss_mb, ms.peak.hwm_mb
    r.detected = _parse_found(out, corpus)
    r.note = "one process; scan = wall - load"
    return r


# -- the worker process for the library API ---------------------------------------------------

_ENGINE: object = None


def _scan_one(path: str) -> tuple[str, list[str], str | None]:
    engine = _ENGINE
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        rep = engine.scan_bytes(data, path)  # type: ignore[attr-defined]
        return path, [f.name for f in rep.findings], None
    except Exception as e:  # a bench records engine failures instead of stopping
        return path, [], f"{type(e).__name__}: {e}"


def zh_worker(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="scan.py _zh-worker")
    ap.add_argument("--db", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--load-only", action="store_true")
    ap.add_argument("--profile", help="write cProfile stats of a single-process scan here")
    a = ap.parse_args(argv)
    global _ENGINE
    from zerohour.scan import Engine, load_database

    sw = Stopwatch()
    _ENGINE = Engine(load_database([Path(a.db)]))
    res: dict[str, object] = {"load_s": sw.elapsed()}
    if not a.load_only:
        corpus = Path(a.corpus)
        paths = [str(p) for p in iter_files(corpus)]
        detected: list[str] = []
        errors = 0
        sw = Stopwatch()
        if a.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            results = [_scan_one(p) for p in paths]
            prof.disable()
            prof.dump_stats(a.profile)
        elif a.jobs <= 1:
            results = [_scan_one(p) for p in paths]
        else:
            import multiprocessing as mp

            # fork after loading: workers share the compiled database pages copy-on-write
            with mp.get_context("fork").Pool(a.jobs) as pool:
                results = list(pool.imap_unordered(_scan_one, paths, chunksize=4))
        res["scan_s"] = sw.elapsed()
        first_err = None
        for path, names, err in results:
            if names:
                detected.append(str(Path(path).relative_to(corpus)))
            if err:
                errors += 1
                first_err = first_err or err
        res["detected"] = detected
        res["errors"] = errors
        if first_err:
            print(f"first scan error: {first_err}", file=sys.stderr)
    Path(a.out).write_text(json.dumps(res))
    return 0


# ---------------------------------------------------------------------------------------------
# Driver


def report(
    corpus_name: str,
    nfiles: int,
    nbytes: int,
    size_label: str,
    hashes: int,
    results: list[Result],
    truth: set[str],
) -> bool:
    mb = nbytes / 1e6
    print(
        f"\n## corpus {corpus_name}: {nfiles} files, {mb:.1f} MB; "
        f"db: {size_label} body + {_size_label(hashes)} hash signatures\n"
    )
    rows: list[list[object]] = []
    ok = True
    for r in results:
        if r.error:
            rows.append(
                [
                    r.engine,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    f"unavailable: {r.error[:120]}",
                ]
            )
            continue
        missed = truth - r.detected
        extra = r.detected - truth
        agree = "yes" if not missed and not extra else f"NO (-{len(missed)} +{len(extra)})"
        if missed or extra:
            ok = False
            ex = sorted(missed)[:3] + sorted(extra)[:3]
            r.note = (r.note + "; " if r.note else "") + "diff e.g. " + ", ".join(ex)
        rows.append(
            [
                r.engine,
                r.load_s,
                r.load_cached_s,
                r.scan_s,
                mb / r.scan_s if r.scan_s else None,
                r.pss_mb,
                r.hwm_mb,
                f"{len(r.detected)}/{len(truth)} {agree}",
                r.note,
            ]
        )
    print(
        table(
            [
                "engine",
                "db load s",
                "cached load s",
                "scan s",
                "MB/s",
                "peak PSS MB (tree)",
                "peak RSS MB (max proc)",
                "detections (agree)",
                "note",
            ],
            rows,
        )
    )
    by = {r.engine: r for r in results if not r.error}
    zh = [r for r in results if r.engine.startswith("zerohour") and not r.error]
    ratios = []
    for z in zh:
        for peer in ("clamd", "clamscan"):
            p = by.get(peer)
            if not p or not z.scan_s or not p.scan_s:
                continue
            ratios.append(
                [
                    f"{z.engine} / {peer}",
                    ratio(p.scan_s, z.scan_s),
                    ratio(z.pss_mb, p.pss_mb),
                    ratio(z.load_cached_s or z.load_s, p.load_s),
                ]
            )
    if ratios:
        print()
        print(table(["ratio", "throughput x", "memory x (PSS)", "load time x (cached)"], ratios))
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_zh-worker"]:
        return zh_worker(argv[1:])
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 200 messages, 20 MB of files, 1k body + 100k hash sigs",
    )
    ap.add_argument("--sizes", help="body signature counts (default 1k,10k,100k; quick: 1k)")
    ap.add_argument("--hashes", help="hash signature count (default 1M; quick: 100k)")
    ap.add_argument("--messages", type=int, help="e-mail corpus size (default 2000)")
    ap.add_argument("--files-mb", type=int, help="file corpus size in MB (default 200)")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument(
        "--work", type=Path, help="work folder (default bench/out/scan, quick: scan-quick)"
    )
    ap.add_argument(
        "--engines",
        default="clamscan,clamd,zerohour",
        help="comma list of: clamscan, clamd, zerohour, zerohour-cli",
    )
    ap.add_argument("--corpus", default="mail,files", help="comma list of: mail, files")
    ap.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 2,
        help="zerohour API process pool size (default: all cores)",
    )
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument(
        "--real-size",
        action="store_true",
        help="a database the size of ClamAV's official one (2M MD5 + 2M SHA-256 + 300k body "
        "signatures, main + daily): cold, cached and daily-update load times, peak memory "
        "and mail throughput against clamscan/clamd",
    )
    ap.add_argument("--real-counts", default="2M,2M,300k",
                    help="--real-size counts: MD5,SHA-256,body (default 2M,2M,300k)")
    ap.add_argument(
        "--no-snapshot",
        dest="snapshot",
        action="store_false",
        help="run zerohour from the live tree instead of a copy taken at start",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, cProfile zerohour scanning the first corpus in one process (first size)",
    )
    a = ap.parse_args(argv)
    sizes = tuple(
        parse_size(s) for s in (a.sizes or ("1k" if a.quick else "1k,10k,100k")).split(",")
    )
    real: tuple[int, int, int] | None = None
    if a.real_size:
        md5, sha, body = (parse_size(c) for c in a.real_counts.split(","))
        real = (md5, sha, body)
    params = GenParams(
        seed=a.seed,
        messages=a.messages or (200 if a.quick else 2000),
        files_mb=1 if real else a.files_mb or (20 if a.quick else 200),
        sizes=() if real else sizes,
        hashes=0 if real else parse_size(a.hashes or ("100k" if a.quick else "1M")),
        real=real,
    )
    default_work = "scan-real" if real else "scan-quick" if a.quick else "scan"
    work: Path = (a.work or ROOT / "bench" / "out" / default_work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    truth = generate(work, params)
    if a.generate_only:
        return 0
    if real is not None:
        if a.snapshot:
            print(f"# zerohour source: snapshot of {snapshot_source(work)}")
        ver = subprocess.run(["clamscan", "--version"], capture_output=True, text=True).stdout
        print(f"# machine: {os.cpu_count()} cores; clamav: {ver.strip()}; "
              f"load average {loadavg()}")
        return run_real_size(a, work, truth, real)
    engines = set(a.engines.split(","))
    corpora = [work / c for c in a.corpus.split(",")]
    empty = work / "empty.txt"
    empty.write_bytes(b"")
    if a.snapshot and engines & {"zerohour", "zerohour-cli"}:
        print(f"# zerohour source: snapshot of {snapshot_source(work)} in {work / 'src-snapshot'}")
    zh_err = _zh_available() if engines & {"zerohour", "zerohour-cli"} else None
    if shutil.which("clamscan"):
        ver = subprocess.run(["clamscan", "--version"], capture_output=True, text=True).stdout
        print(f"# machine: {os.cpu_count()} cores; clamav: {ver.strip()}")
    # warm the page cache so no engine pays for the disk
    for c in corpora:
        for f in iter_files(c):
            f.read_bytes()
    all_ok = True
    for size in sizes:
        label = _size_label(size)
        db = work / "db" / label
        per: dict[Path, list[Result]] = {c: [] for c in corpora}
        if "clamd" in engines:
            print(f"# [{label}] clamd ...", flush=True)
            for c, r in run_clamd(work, db, corpora).items():
                per[c].append(r)
        for c in corpora:
            if "clamscan" in engines:
                print(f"# [{label}] clamscan {c.name} ...", flush=True)
                per[c].append(run_clamscan(db, c, empty))
        cache = work / "zh-cache"
        if "zerohour" in engines:
            cold: Result | None = None
            if not zh_err:
                print(f"# [{label}] zerohour cold load ...", flush=True)
                cold = run_zerohour_api(work, db, corpora[0], a.jobs, cache, cold=True)
            for c in corpora:
                if zh_err:
                    per[c].append(Result(f"zerohour api x{a.jobs}", error=zh_err))
                    continue
                print(f"# [{label}] zerohour api {c.name} ...", flush=True)
                r = run_zerohour_api(work, db, c, a.jobs, cache, cold=False)
                if cold is not None and not cold.error:
                    r.load_cached_s, r.load_s = r.load_s, cold.load_s
                per[c].append(r)
        if "zerohour-cli" in engines:
            for c in corpora:
                if zh_err:
                    per[c].append(Result("zerohour cli", error=zh_err))
                    continue
                print(f"# [{label}] zerohour cli {c.name} ...", flush=True)
                per[c].append(run_zerohour_cli(db, c, cache))
        print(f"# load average now: {loadavg()} ({os.cpu_count()} cores)")
        for c in corpora:
            nfiles, nbytes = corpus_bytes(c)
            t = {p for p in truth.infected if p.startswith(c.name + "/")}
            all_ok &= report(c.name, nfiles, nbytes, label, params.hashes, per[c], t)
    print(
        "\nMB/s = corpus bytes / scan seconds (db load excluded). clamscan's scan time is its "
        "wall time minus its wall time on an empty file. Memory: PSS summed over the process "
        "tree (shared pages counted once), sampled every 50 ms; RSS = highest VmHWM of one "
        "process."
    )
    if a.profile and not zh_err:
        profile_zerohour(work, work / "db" / _size_label(sizes[0]), corpora[0])
    return 0 if all_ok else 1


# ---------------------------------------------------------------------------------------------
# --real-size: a database the size of ClamAV's official one


def _daily_update(src: Path, dst: Path, rng: random.Random) -> None:
    """`dst`: `src` after a daily update (main hard-linked unchanged, daily with new lines)."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.name.startswith("main."):
            os.link(f, dst / f.name)
        else:
            shutil.copyfile(f, dst / f.name)
    with open(dst / "daily.ndb", "a") as fh:
        fh.writelines(_real_ndb(rng, f"Win.Trojan.Update-{n}-0") + "\n" for n in range(500))
    with open(dst / "daily.hdb", "a") as fh:
        fh.writelines(f"{rng.randbytes(16).hex()}:{rng.randint(100, 10**6)}:Win.Trojan.Upd-{n}\n"
                      for n in range(5000))


def _zh_load(work: Path, db: Path, cache: Path, label: str) -> Result:
    """One zerohour load in its own process (compile workers included in its memory)."""
    r = Result(f"zerohour {label}")
    out_json = work / "zh-load.json"
    before = _children_cpu()
    env = dict(os.environ, ZEROHOUR_CACHE_DIR=str(cache), **ZH_ENV)
    cmd = [str(VENV_PY), str(Path(__file__).resolve()), "_zh-worker", "--db", str(db),
           "--corpus", str(db), "--out", str(out_json), "--load-only"]
    try:
        _out, r.wall_s, ms, _rc = _run_measured(cmd, env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        r.error = str(e)[:300]
        return r
    r.load_s = json.loads(out_json.read_text())["load_s"]
    r.pss_mb, r.hwm_mb = ms.peak.pss_mb, ms.peak.hwm_mb
    r.cpu_s = _children_cpu() - before
    return r


def _children_cpu() -> float:
    """User + system seconds of every finished child process (and theirs), so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _clamscan_load(db: Path, empty: Path) -> Result:
    r = Result("clamscan")
    before = _children_cpu()
    try:
        _out, r.load_s, ms, _rc = _run_measured(
            ["clamscan", "--no-summary", "-d", str(db), str(empty)])
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        r.error = str(e)[:300]
        return r
    r.pss_mb, r.hwm_mb = ms.peak.pss_mb, ms.peak.hwm_mb
    r.cpu_s = _children_cpu() - before
    return r


def run_real_size(a: argparse.Namespace, work: Path, truth: Truth, counts: tuple[int, ...]
                  ) -> int:
    """Load times (cold, cached, after a daily-only update), peak memory of the loading
    process tree and e-mail throughput, zerohour against clamscan and clamd, one run."""
    db = work / "db" / "real"
    empty = work / "empty.txt"
    empty.write_bytes(b"")
    mail = work / "mail"
    for f in iter_files(mail):
        f.read_bytes()
    for f in iter_files(db):
        f.read_bytes()
    label = f"{_size_label(counts[0])} MD5 + {_size_label(counts[1])} SHA-256 + " \
        f"{_size_label(counts[2])} body"
    print(f"# [real-size] clamscan load ({label}) ...", flush=True)
    clamscan = _clamscan_load(db, empty)
    print("# [real-size] clamd (load + MULTISCAN mail) ...", flush=True)
    clamd = run_clamd(work, db, [mail])[mail]
    cache = work / "zh-cache-real"
    shutil.rmtree(cache, ignore_errors=True)
    print("# [real-size] zerohour cold load ...", flush=True)
    cold = _zh_load(work, db, cache, "cold load")
    print("# [real-size] zerohour cached load ...", flush=True)
    cached = _zh_load(work, db, cache, "cached load")
    updated = work / "db" / "real-daily"
    _daily_update(db, updated, random.Random(a.seed + 1))
    print("# [real-size] zerohour load after a daily-only update ...", flush=True)
    daily = _zh_load(work, updated, cache, "daily update")
    print(f"# [real-size] zerohour api x{a.jobs} scanning mail ...", flush=True)
    scan = run_zerohour_api(work, db, mail, a.jobs, cache, cold=False)
    print(f"# load average now: {loadavg()} ({os.cpu_count()} cores)")
    nfiles, nbytes = corpus_bytes(mail)
    mb = nbytes / 1e6
    t = {p for p in truth.infected if p.startswith("mail/")}
    rows: list[list[object]] = []
    for r in (clamscan, clamd, cold, cached, daily, scan):
        if r.error:
            rows.append([r.engine, None, None, None, None, None,
                         f"unavailable: {r.error[:100]}"])
            continue
        det = ""
        if r.scan_s:
            miss, extra = t - r.detected, r.detected - t
            det = f"{len(r.detected)}/{len(t)} " + ("yes" if not miss and not extra
                                                    else f"NO (-{len(miss)} +{len(extra)})")
        rows.append([r.engine, r.load_s, r.cpu_s, mb / r.scan_s if r.scan_s else None,
                     r.pss_mb, r.hwm_mb, det])
    print(f"\n## real-size database: {label} signatures (main + daily); "
          f"corpus mail: {nfiles} files, {mb:.1f} MB\n")
    print(table(["engine", "load s", "load CPU s", "mail MB/s", "peak PSS MB (tree)",
                 "peak RSS MB (max proc)", "detections (agree)"], rows))
    ratios = [
        ["zerohour cold load / clamscan load (target <= 2)", ratio(cold.load_s, clamscan.load_s)],
        ["zerohour cold load CPU / clamscan load CPU", ratio(cold.cpu_s, clamscan.cpu_s)],
        ["zerohour cached load / clamscan load", ratio(cached.load_s, clamscan.load_s)],
        ["zerohour daily-update load / clamscan load", ratio(daily.load_s, clamscan.load_s)],
        ["zerohour cold-load peak PSS / clamscan's (target <= 1)",
         ratio(cold.pss_mb, clamscan.pss_mb)],
        ["zerohour cold-load peak RSS (max proc) / clamscan's",
         ratio(cold.hwm_mb, clamscan.hwm_mb)],
        [f"zerohour api x{a.jobs} mail throughput / clamd (target >= 3)",
         ratio(clamd.scan_s, scan.scan_s)],
    ]
    print()
    print(table(["ratio", "x"], ratios))
    print("\nLoad: wall time of a process that only loads the database (zerohour: the "
          "library's load_database, compile workers included; clamscan: a scan of an empty "
          "file). CPU: user + system seconds of the loading process and its children. Memory: the "
          "loading process tree, sampled every 50 ms. 'daily update': "
          "main unchanged, 500 body and 5000 MD5 signatures added to daily, same cache.")
    ok = not scan.error and scan.detected == t
    return 0 if ok else 1


def profile_zerohour(work: Path, db: Path, corpus: Path) -> None:
    """Where zerohour's scan time goes: cProfile of a single-process scan, top functions."""
    import pstats

    prof = work / "zh-scan.prof"
    env = dict(os.environ, ZEROHOUR_CACHE_DIR=str(work / "zh-cache"), **ZH_ENV)
    subprocess.run(
        [
            str(VENV_PY),
            str(Path(__file__).resolve()),
            "_zh-worker",
            "--db",
            str(db),
            "--corpus",
            str(corpus),
            "--jobs",
            "1",
            "--out",
            str(work / "zh-prof.json"),
            "--profile",
            str(prof),
        ],
        env=env,
        check=True,
    )
    print(
        f"\n## cProfile: zerohour scanning {corpus.name} with {db.name} in one process "
        f"(stats in {prof})\n"
    )
    st = pstats.Stats(str(prof), stream=sys.stdout)
    st.strip_dirs().sort_stats("tottime").print_stats(20)
    st.sort_stats("cumtime").print_stats(30)


if __name__ == "__main__":
    sys.exit(main())
