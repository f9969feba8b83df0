"""The clean cache (`scan.cleancache`): a part found clean in one message is not taken apart
again in the next, and the verdict and the report are what a full scan gives. Each test primes
the cache with clean mail, then scans mail whose verdict depends on the primed parts: joins
across containers, zlib dictionaries, limits, the database. The oracle is the same engine
without a cache (and, for the joins and dictionaries, the recipient's tools in the tests those
cases come from: `test_joined_volumes`, `test_zlib_dictionary`)."""

from __future__ import annotations

import base64
import hashlib
import random
import struct
import subprocess
from pathlib import Path

import pytest

from conformance.samples import make_tar, make_zip
from helpers.tools import tool
from scan.conftest import CLAM, CLAM_NAME
from scan.test_zlib_dictionary import _deflate, _mail, _near_clam, _part
from zerohour.errors import ScanLimitExceeded
from zerohour.gateway.scanner import ScannerPool
from zerohour.metrics import PROCESS_REGISTRY
from zerohour.scan import Engine, load_database, zlibdict
from zerohour.scan.cleancache import Clean, CleanCache
from zerohour.scan.limits import _MAX_DICTIONARY_BYTES, Limits, Notes, ScanContext

MiB = 1024 * 1024
# Wang and Yu's 128-byte MD5 collision (2004): two blocks, one MD5, whatever follows them.
_WANG_A = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70")
_WANG_B = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70")


@pytest.fixture
def cached(clam_engine: Engine) -> Engine:
    """A fresh engine with a cache, on the database of `clam_engine` (which has none)."""
    return Engine(clam_engine.db, clean_cache=16 * MiB)


def _html(body: bytes) -> bytes:
    return (b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + body + b"\r\n")


def _samples(tmp_path: Path) -> list[bytes]:
    rng = random.Random(7)
    words = b" ".join(rng.choice([b"offer", b"report", b"meeting", b"quarter", b"team"])
                      for _ in range(3000))
    out = []
    for size in (1000, 60_000):  # the shape of bench/smtp.py's MIME kinds
        out.append(_mail(_html(b"<html><body><p>" + words[:size // 10] + b"</p></body></html>"),
                         _part("data.bin", rng.randbytes(size * 45 // 100)),
                         _part("files.zip", make_zip({"report.txt": words[:size // 4],
                                                  "table.bin": rng.randbytes(size // 8)}))))
    lines = b"".join(base64.b64encode(rng.randbytes(57)) + b"\r\n" for _ in range(60))
    out.append(b"From: a@x.test\r\nSubject: t\r\n\r\n" + lines)  # text that reads as base64
    out.append(_mail(_part("docs.zip", make_zip({"a.txt": b"hello " * 300,
                                              "inner.zip": make_zip({"b.txt": b"x" * 999})}))))
    return out


def test_a_replayed_subtree_reports_what_a_full_scan_does(
        clam_engine: Engine, cached: Engine, tmp_path: Path) -> None:
    assert cached.clean is not None
    for data in _samples(tmp_path):
        full = clam_engine.scan_bytes(data, "m")
        first = cached.scan_bytes(data, "m")
        hits = cached.clean.hits
        again = cached.scan_bytes(data, "m")
        assert cached.clean.hits > hits  # the second scan was answered from the cache...
        for report in (first, again):  # ...with every layer, digests and places included
            assert report.layers == full.layers
            assert report.names == full.names == ()
            assert report.errors == full.errors == ()
    # a part seen elsewhere: its subtree at its new place and depth
    inner = make_zip({"deep.txt": b"some words " * 200})
    cached.scan_bytes(_mail(_part("x.zip", inner)), "m")
    nested = _mail(_part("outer.zip", make_zip({"x.zip": inner})))
    assert cached.scan_bytes(nested, "m").layers == clam_engine.scan_bytes(nested, "m").layers


def test_a_cached_part_is_found_when_a_signature_knows_it(clam_engine: Engine) -> None:
    """Clean is no longer clean once the bytes are clam.exe's: the key is the SHA-256."""
    cached = Engine(clam_engine.db, clean_cache=16 * MiB)
    near = _near_clam()
    assert cached.scan_bytes(_mail(_part("a.exe", near)), "m").names == ()
    assert cached.scan_bytes(_mail(_part("a.exe", CLAM.read_bytes())), "m").names == (
        CLAM_NAME,)


@pytest.mark.parametrize("order", ["dictionary first", "dictionary last"])
def test_a_cached_part_is_still_a_zlib_dictionary(cached: Engine, order: str) -> None:
    """The dictionary attachment was scanned clean alone; in the next mail a stream names it."""
    near = _near_clam()
    assert cached.scan_bytes(_mail(_part("key.bin", near))).names == ()
    parts = [_part("key.bin", near), _part("data.zz", _deflate(CLAM.read_bytes(), near))]
    if order == "dictionary last":
        parts.reverse()
    assert cached.scan_bytes(_mail(*parts)).names == (CLAM_NAME,)
    assert cached.clean is not None
    assert cached.clean.hits  # (key.bin came from the cache)


def test_cached_parts_are_still_pieces_of_a_split_file(cached: Engine, tmp_path: Path) -> None:
    """Round 15's case: `xaa`, `xac`... in a tar, `xab`, `xad`... in a zip. Each archive was
    scanned clean alone first; together they make clam.exe (`cat x*`)."""
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    subprocess.run([tool("split"), "-b", "150", str(CLAM)], cwd=pieces, check=True)
    names = sorted(p.name for p in pieces.iterdir())
    tar = make_tar({n: (pieces / n).read_bytes() for n in names[0::2]})
    zipped = make_zip({n: (pieces / n).read_bytes() for n in names[1::2]})
    assert cached.scan_bytes(_mail(_part("a.tar", tar)), "m").names == ()
    assert cached.scan_bytes(_mail(_part("b.zip", zipped)), "m").names == ()
    assert cached.scan_bytes(_mail(_part("a.tar", tar), _part("b.zip", zipped)),
                             "m").names == (CLAM_NAME,)


def test_a_replay_that_would_pass_a_limit_is_scanned_instead(clam_engine: Engine) -> None:
    """MaxFiles: the cached zip's files still count; past the limit the scan meets it."""
    limits = Limits(max_files=2100)
    plain = Engine(clam_engine.db, limits)
    cached = Engine(clam_engine.db, limits, clean_cache=16 * MiB)
    small = make_zip({f"f{i}.txt": b"text %d" % i for i in range(40)})
    big = make_zip({f"g{i}.txt": b"data %d" % i for i in range(2080)})
    assert cached.scan_bytes(_mail(_part("small.zip", small)), "m").names == ()
    mail = _mail(_part("big.zip", big), _part("small.zip", small))
    expected = plain.scan_bytes(mail, "m")
    assert expected.names == ("Heuristics.Limits.Exceeded.MaxFiles",)
    assert cached.scan_bytes(mail, "m").names == expected.names


def test_an_md5_twin_of_a_clean_part_is_scanned(tmp_path: Path) -> None:
    """Two attachments of one name and one MD5 (Wang and Yu's collision blocks, then the same
    bytes): the second is no twin of the first, cached or not. A signature knows 12 bytes of
    the second block only."""
    tail = b" and the rest of the file" * 20
    a, b = _WANG_A + tail, _WANG_B + tail
    assert hashlib.md5(a).digest() == hashlib.md5(b).digest()
    assert a != b
    (tmp_path / "twin.ndb").write_text(f"Md5.Twin.Test:0:*:{_WANG_B[14:26].hex()}\n")
    db = load_database([tmp_path])
    mail = _mail(_part("same.bin", a), _part("same.bin", b))
    for engine in (Engine(db), Engine(db, clean_cache=16 * MiB)):
        assert engine.scan_bytes(_mail(_part("same.bin", a)), "m").names == ()
        assert engine.scan_bytes(mail, "m").names == ("Md5.Twin.Test",)


def test_the_cache_keeps_within_its_bytes(clam_engine: Engine) -> None:
    cached = Engine(clam_engine.db, clean_cache=MiB)
    assert cached.clean is not None
    rng = random.Random(3)
    for i in range(60):
        cached.scan_bytes(_mail(_part(f"p{i}.bin", rng.randbytes(40_000))), "m")
        assert cached.clean.size <= MiB
    assert 0 < len(cached.clean) < 60
    # an entry over an eighth of the cache is not kept
    cache = CleanCache(1000)
    cache.put(("k",), Clean("m", 1, (), Notes(dictionaries=[b"x" * 200]), 0, 0, 0))
    assert len(cache) == 0


async def test_a_new_database_in_the_gateway_forgets_what_was_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's workers cache by default; a reload brings new workers with an empty
    cache, so held mail rescanned under a new signature is judged by it."""
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", str(tmp_path / "cache"))
    marker = b"a marker only the update knows, in an attachment"
    old, new = tmp_path / "old", tmp_path / "new"
    for d, sigs in ((old, ""), (new, f"New.Mark:0:*:{marker.hex()}\n")):
        d.mkdir()
        (d / "VERSION").write_text(d.name + "\n")
        (d / "local.ndb").write_text(sigs or f"Other:0:*:{b'nothing here'.hex()}\n")
    mail = _mail(_part("report.txt", b"header\r\n" + marker + b"\r\n"))
    pool = ScannerPool([old], workers=1, clean_cache=8 * MiB)

    def counts() -> list[float]:  # what /metrics shows (`observe_clean_cache`)
        return [PROCESS_REGISTRY.get_sample_value(f"zerohour_scan_clean_cache_{n}_total") or 0.0
                for n in ("lookups", "hits")]

    async def scan() -> tuple[bool, bool, bool]:
        """(infected, looked up, replayed)"""
        before = counts()
        infected = (await pool.scan(mail, "m")).infected
        after = counts()
        return infected, after[0] > before[0], after[1] > before[1]

    try:
        await pool.warm()
        assert await scan() == (False, True, False)  # looked up, not there yet
        assert await scan() == (False, True, True)  # the attachment was replayed
        assert await pool.swap([new]) == "new"
        assert await scan() == (True, True, False)  # a new worker, an empty cache
    finally:
        await pool.aclose()


# -- round 29 (an attack on the cache, helper 85): what a replay charges, and silent caps ----


def test_a_replay_does_not_count_what_the_scan_skips_as_twins(clam_engine: Engine) -> None:
    """F3 (and the cause of F1, F2): six archives each holding one same inner zip, each
    scanned alone first. Without the cache the inner zip is scanned once and skipped as a
    twin in the other five; replays counted its 500 files six times, passed MaxFiles and
    refused clean mail (and, in F1 and F2, spent the budgets of dictionaries and joins so
    that clam.exe got through)."""
    limits = Limits(max_files=2600)
    plain = Engine(clam_engine.db, limits)
    cached = Engine(clam_engine.db, limits, clean_cache=64 * MiB)
    inner = make_zip({f"m{i}.txt": b"member %d" % i for i in range(500)})
    outers = [make_zip({"inner.zip": inner, f"readme{k}.txt": b"archive %d" % k}) for k in range(6)]
    for k, outer in enumerate(outers):
        assert cached.scan_bytes(_mail(_part(f"o{k}.zip", outer)), "m").names == ()
    mail = _mail(*(_part(f"o{k}.zip", outer) for k, outer in enumerate(outers)))
    full = plain.scan_bytes(mail, "m")
    assert full.names == ()
    replayed = cached.scan_bytes(mail, "m")
    assert replayed.names == ()
    assert replayed.layers == full.layers


def test_a_join_the_file_limit_leaves_unmade_is_the_limit(clam_engine: Engine) -> None:
    """F5 (no cache): 296 members of a zip, then clam.exe cut in two attachments, with 300
    files allowed (9,996 of ClamAV's 10,000 in the attack): the join of the pieces was
    skipped without a word."""
    clam = CLAM.read_bytes()
    engine = Engine(clam_engine.db, Limits(max_files=300))
    pieces = (_part("part_one.bin", clam[:300]), _part("part_two.bin", clam[300:]))
    big = make_zip({f"f{j}": b"%d" % j for j in range(296)})
    assert engine.scan_bytes(_mail(_part("big.zip", big), *pieces), "m").names == (
        "Heuristics.Limits.Exceeded.MaxFiles",)
    small = make_zip({f"f{j}": b"%d" % j for j in range(295)})  # room for the join: it is made
    assert engine.scan_bytes(_mail(_part("big.zip", small), *pieces), "m").names == (
        CLAM_NAME,)


def test_pieces_after_a_thousand_other_names_are_joined(clam_engine: Engine) -> None:
    """F6 (no cache): `clam.exe.001` and `clam.exe.002` in two zips after a zip of 1,100
    names; only the first 1,024 names were kept for joins across containers."""
    clam = CLAM.read_bytes()
    big = make_zip({f"f{j}.txt": b"%d" % j for j in range(1100)})
    mail = _mail(_part("big.zip", big), _part("a.zip", make_zip({"clam.exe.001": clam[:300]})),
                 _part("b.zip", make_zip({"clam.exe.002": clam[300:]})))
    assert clam_engine.scan_bytes(mail, "m").names == (CLAM_NAME,)


def test_a_dictionary_the_budget_left_out_is_the_limit() -> None:
    """F7 (no cache): 16 MiB of distinct logs, padded to leave less room than the dictionary
    needs, then the dictionary; the stream that names it was a token in the body (a guess,
    so reading it without its dictionary said nothing). A stream left without its dictionary
    when one was left out is the scan-size limit."""
    near = b"X" + CLAM.read_bytes()[1:] + b"\n"
    stream = _deflate(CLAM.read_bytes(), near)
    ctx = ScanContext()
    ctx.dictionary_bytes = _MAX_DICTIONARY_BYTES - len(near) + 1
    ctx.note_dictionary(near)
    assert ctx.dictionaries_dropped
    assert list(zlibdict.children(stream, ctx)) == []
    with pytest.raises(ScanLimitExceeded, match="dictionaries"):
        list(zlibdict.late_children(ctx))
    ctx = ScanContext()  # the same stream and dictionary with room: clam.exe
    assert list(zlibdict.children(stream, ctx)) == []
    ctx.note_dictionary(near)
    assert [c.data for c in zlibdict.late_children(ctx)] == [CLAM.read_bytes()]


def test_an_entry_costs_its_paths() -> None:
    """F4: 1,000 members under two folders with 60,000-character names held 1.5 GB in a
    worker whose cache counted 32 MiB; an entry's cost is at least what its strings hold."""
    from zerohour.scan.types import FileType, LayerInfo

    path = "m/" + "N" * 60_000 + "/" + "M" * 60_000
    layers = tuple(LayerInfo(f"{path}/f{i}", 3, 1, "0" * 32, "0" * 64, FileType.TEXT, f"f{i}")
                   for i in range(10))
    entry = Clean(path, 2, layers, Notes(), 10, 10, 0)
    assert entry.cost >= sum(len(ly.path) for ly in layers)


# -- round 30 (a second attack on the cache, helper 86) ---------------------------------------


def _pe32(code: bytes, data: bytes, tag: bytes = b"") -> bytes:
    """A 32-bit PE: `.text` (writable, the entry point) at 0x1000 and `.data` at 0x2000, 1 KiB
    each (a compact port of the attack's builder)."""
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    coff = struct.pack("<HHIIIHH", 0x14C, 2, 0, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    struct.pack_into("<HBBIIIIII", opt, 0, 0x10B, 6, 0, 0x200, 0x200, 0, 0x1000, 0x1000, 0x2000)
    struct.pack_into("<III", opt, 28, 0x400000, 0x1000, 0x200)
    struct.pack_into("<HHHHHH", opt, 40, 4, 0, 0, 0, 4, 0)
    struct.pack_into("<IIII", opt, 56, 0x3000, 0x200, 0, 2)
    struct.pack_into("<IIIIII", opt, 72, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)

    def section(name: bytes, va: int, raw: int, flags: int) -> bytes:
        return struct.pack("<8sIIIIIIHHI", name, 0x1000, va, 0x400, raw, 0, 0, 0, 0, flags)

    head = (bytes(dos) + b"PE\0\0" + coff + bytes(opt)
            + section(b".text", 0x1000, 0x200, 0xE0000020)
            + section(b".data", 0x2000, 0x600, 0xC0000040) + tag).ljust(0x200, b"\0")
    return head + code.ljust(0x400, b"\x90") + data.ljust(0x400, b"\0")


def _xor_stub(payload: bytes, key: int = 0x55) -> bytes:
    """A stub that XOR-decodes `.data` (code, then `payload`) and runs the code it wrote."""
    plain = b"\x31\xc0\x89\x00" + b"\x90" * 12 + payload
    code = (b"\xbe" + struct.pack("<I", 0x402000) + b"\xb9" + struct.pack("<I", len(plain))
            + b"\x80\x36" + bytes([key]) + b"\x46\xe2\xfa"
            + b"\xb8" + struct.pack("<I", 0x402000) + b"\xff\xe0")
    return _pe32(code, bytes(b ^ key for b in plain))


def test_a_stub_the_emulator_budget_leaves_unrun_is_not_clean(clam_engine: Engine) -> None:
    """F1, F2: 16 decoys that look packed spend the runs of unknown stubs; the 17th, which
    decodes clam.exe, was neither run nor reported, and so cached as clean: the same file
    alone in the next mail was delivered."""
    decoys = [_pe32(b"\x31\xc0\x89\x00", b"", b"decoy%04d" % i) for i in range(16)]
    target = _xor_stub(CLAM.read_bytes())
    assert clam_engine.scan_bytes(target, "setup.exe").names == (CLAM_NAME,)
    prime = _mail(*(_part(f"d{i}.exe", d) for i, d in enumerate(decoys)),
                  _part("setup.exe", target))
    cached = Engine(clam_engine.db, clean_cache=16 * MiB)
    for engine in (clam_engine, cached):
        assert engine.scan_bytes(prime, "m").names == ("Heuristics.Unsupported.Packer.Stub",)
    assert cached.scan_bytes(_mail(_part("setup.exe", target)), "m").names == (CLAM_NAME,)


@pytest.mark.parametrize("where", ["zip", "mail"])
def test_volumes_after_a_thousand_other_names_are_joined(clam_engine: Engine,
                                                          where: str) -> None:
    """F3 (no cache): `tool.exe.001` and `.002` after 1,030 other members of their zip, or
    other attachments of their mail; the first 1,024 names only were kept."""
    clam = CLAM.read_bytes()
    others = {f"f{j}.txt": b"%d" % j for j in range(1030)}
    pieces = {"tool.exe.001": clam[:300], "tool.exe.002": clam[300:]}
    if where == "zip":
        mail = _mail(_part("all.zip", make_zip({**others, **pieces})))
    else:
        mail = _mail(*(_part(n, d) for n, d in {**others, **pieces}.items()))
    assert clam_engine.scan_bytes(mail, "m").names == (CLAM_NAME,)
