"""Incremental database compile: pieces answer exactly like one compile of every file, a daily
change recompiles only daily's pieces, and the bulk hash parser agrees with the per-line one."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.errors import SignatureSyntaxError
from zerohour.scan import Engine, dbcompile, hashindex, load_database
from zerohour.scan.database import BuildOptions, Database, _build, _db_files
from zerohour.scan.hashindex import ANY_SIZE, bulk_hash_rows
from zerohour.scan.matcher import MatcherSet
from zerohour.scan.signatures.hdb import parse_hash_line
from zerohour.scan.signatures.model import FLEVEL

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of a few hundred bytes, so a small database is cut into many."""
    monkeypatch.setattr(dbcompile, "CHUNK", {".ndb": 300, ".ldb": 200})
    monkeypatch.setattr(dbcompile, "HASH_CHUNK", 400)


def _samples(rng: random.Random) -> Iterator[bytes]:
    """Layers that hit the database below: each marker alone, in text, several at once."""
    for i in range(40):
        yield f"body marker number {i:03d} end".encode()
        yield b"<html><body>" + f"TEXT SIG {i:03d} HERE".encode() + b"</body></html>"
        yield f"file-{i}".encode()
        yield b"x" * i + f"body marker number {i:03d} end".encode() + EICAR
    yield b"logic-a logic-b"
    yield b"logic-a"
    yield rng.randbytes(4096)


def _write_db(d: Path) -> Path:
    """Two sets of files (main, daily) with every cross-file effect: duplicate hashes (the
    last loaded wins), '*' sizes, an allow-list, an ignore list that drops a main signature,
    text signatures (normalised pass), logical signatures and a bad line."""
    d.mkdir(parents=True, exist_ok=True)
    main_hdb, daily_hdb, ndb_main, ndb_daily = [], [], [], []
    for i in range(40):
        data = f"file-{i}".encode()
        md5 = hashlib.md5(data).hexdigest()
        main_hdb.append(f"{md5}:{len(data)}:Main.Hash.{i}")
        if i % 5 == 0:
            daily_hdb.append(f"{md5}:{len(data)}:Daily.Hash.{i}")  # the later one wins
        if i % 7 == 0:
            daily_hdb.append(f"{md5}:*:Daily.Wild.{i}:73")
        ndb_main.append(f"Main.Body.{i}:0:*:{f'marker number {i:03d}'.encode().hex()}")
        ndb_main.append(f"Main.Text.{i}:3:*:{f'text sig {i:03d}'.encode().hex()}")
        if i % 3 == 0:
            ndb_daily.append(f"Daily.Body.{i}:0:*:{f'number {i:03d} end'.encode().hex()}")
    ndb_main.insert(17, "Broken.Line:0:*:4g")
    (d / "main.hdb").write_text("\n".join(main_hdb) + "\n")
    (d / "main.ndb").write_text("\n".join(ndb_main) + "\n")
    (d / "main.ldb").write_text(
        f"Main.Logic;Engine:51-255,Target:0;0&1;{b'logic-a'.hex()};{b'logic-b'.hex()}\n")
    (d / "daily.hdb").write_text("\n".join(daily_hdb) + "\n")
    (d / "daily.ndb").write_text("\n".join(ndb_daily) + f"\nDaily.Eicar:0:*:{EICAR.hex()}\n")
    (d / "daily.fp").write_text(f"{hashlib.md5(b'file-3').hexdigest()}:6:Allowed.File\n")
    (d / "daily.ign2").write_text("Main.Body.4\nMain.Hash.9\n")
    return d


def _one_compile(d: Path) -> Database:
    files = _db_files([d])
    return _build([d], files, [p.read_bytes() for p in files], "x" * 64, strict=False,
                  backend=None)


def _answers(db: Database, allmatch: bool) -> list[tuple[str, ...]]:
    eng = Engine(db, allmatch=allmatch)
    return [eng.scan_bytes(s).names for s in _samples(random.Random(5))]


@pytest.mark.usefixtures("tiny_pieces")
def test_pieces_answer_like_one_compile(tmp_path: Path) -> None:
    d = _write_db(tmp_path / "db")
    whole = _one_compile(d)
    pieced = load_database([d])
    assert isinstance(pieced.matcher, MatcherSet)
    assert len(pieced.matcher.parts) > 4  # really cut: several automatons
    for allmatch in (False, True):
        want = _answers(whole, allmatch)
        assert _answers(pieced, allmatch) == want
        assert any(want)  # the samples do hit
    assert pieced.counts == whole.counts
    assert pieced.skipped == whole.skipped
    assert [str(w) for w in pieced.warnings] == [str(w) for w in whole.warnings]
    assert pieced.ignored == whole.ignored
    # the cached load answers the same, from the same pieces
    again = load_database([d])
    assert again.from_cache
    assert _answers(again, True) == _answers(whole, True)


@pytest.mark.usefixtures("tiny_pieces")
def test_a_warning_keeps_its_line_number_in_a_later_piece(tmp_path: Path) -> None:
    d = _write_db(tmp_path / "db")
    (w,) = load_database([d]).warnings
    assert w.path.endswith("main.ndb")
    assert w.line == 18


@pytest.mark.usefixtures("tiny_pieces")
def test_a_daily_change_recompiles_only_daily(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    d = _write_db(tmp_path / "db")
    compiled: list[str] = []
    real = dbcompile._compile

    def spy(job: dbcompile._Job) -> Database | None:
        compiled.append(job.piece.path.name)
        return real(job)

    cut: list[str] = []
    real_cut = dbcompile._cut

    def cut_spy(p: Path, f: BinaryIO, chunk: int,
                offer: Callable[[dbcompile.Piece], None] | None = None,
                ) -> tuple[list[dbcompile.Piece], str]:
        cut.append(p.name)
        return real_cut(p, f, chunk, offer)

    monkeypatch.setattr(dbcompile, "_compile", spy)
    monkeypatch.setattr(dbcompile, "_cut", cut_spy)
    first = load_database([d])
    assert not first.from_cache
    assert {"main.hdb", "main.ndb", "daily.ndb"} <= set(compiled)
    compiled.clear()
    cut.clear()
    with (d / "daily.ndb").open("a") as f:
        f.write(f"Daily.New:0:*:{b'brand new marker'.hex()}\n")
    second = load_database([d])
    assert set(compiled) == {"daily.ndb"}
    assert cut == ["daily.ndb"]  # unchanged files are not even read again
    assert compiled.count("daily.ndb") < len(list(first.matcher.parts))  # type: ignore[attr-defined]
    assert Engine(second).scan_bytes(b"a brand new marker").names == ("Daily.New",)
    assert not Engine(first).scan_bytes(b"a brand new marker").infected
    compiled.clear()
    assert load_database([d]).from_cache
    assert compiled == []


def test_an_ignore_list_change_reaches_every_piece(tmp_path: Path) -> None:
    d = _write_db(tmp_path / "db")
    assert Engine(load_database([d])).scan_bytes(b"body marker number 004 end").names == ()
    (d / "daily.ign2").write_text("Main.Hash.9\n")
    assert Engine(load_database([d])).scan_bytes(b"body marker number 004 end").names == (
        "Main.Body.4",)


def test_compile_workers_give_the_same_database(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes (`python -m zerohour.scan.dbcompile`) build what this process would,
    with and without a cache to hand pieces over."""
    d = _write_db(tmp_path / "db")
    monkeypatch.setattr(dbcompile, "CHUNK", {".ndb": 300, ".ldb": 200})
    monkeypatch.setattr(dbcompile, "PARALLEL_MIN", 0)
    want = _answers(_one_compile(d), True)
    assert _answers(load_database([d], jobs=2), True) == want
    assert _answers(load_database([d], jobs=2, use_cache=False), True) == want


def test_worker_errors_reach_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _write_db(tmp_path / "db")
    monkeypatch.setattr(dbcompile, "PARALLEL_MIN", 0)
    with pytest.raises(SignatureSyntaxError, match=r"main\.ndb:18"):
        load_database([d], jobs=2, strict=True)


def test_prepare_fills_the_cache_for_the_next_load(tmp_path: Path) -> None:
    d = _write_db(tmp_path / "db")
    assert dbcompile.prepare([d], BuildOptions())
    db = load_database([d])
    assert db.from_cache
    assert Engine(db).scan_bytes(EICAR).names == ("Daily.Eicar",)


@pytest.mark.usefixtures("tiny_pieces")
def test_the_plan_offers_every_piece_once_body_files_first(tmp_path: Path) -> None:
    """Compiling starts while the plan still reads: each piece is handed over as it is cut,
    the costly body pieces before the hash ones, the other files' piece last."""
    d = _write_db(tmp_path / "db")
    offered: list[dbcompile.Piece] = []
    p = dbcompile.plan(_db_files([d]), offer=lambda pc, _plan: offered.append(pc))
    assert sorted(offered, key=repr) == sorted(p.pieces, key=repr)
    assert len(offered) == len(set(offered)) > 6
    kinds = [pc.path.suffix for pc in offered]
    assert kinds.index(".hdb") > max(i for i, k in enumerate(kinds) if k in (".ndb", ".ldb"))
    assert offered[-1].rest
    assert offered[-1] is p.pieces[-1]


@pytest.mark.usefixtures("tiny_pieces")
def test_a_file_with_other_line_breaks_compiles_as_one_piece(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CR seen only after some slices were cut (small read blocks): the file becomes one
    piece again, digest and line numbers those of the whole file."""
    monkeypatch.setattr(dbcompile, "_BLOCK", 64)
    d = _write_db(tmp_path / "db")
    ndb = d / "main.ndb"
    ndb.write_bytes(ndb.read_bytes() + b"Late.Cr:0:*:" + b"late cr marker".hex().encode()
                    + b"\r\n")
    p = dbcompile.plan(_db_files([d]), offer=lambda _pc, _plan: None)
    (whole,) = [pc for pc in p.pieces if pc.path == ndb]
    assert whole.digest == hashlib.sha256(ndb.read_bytes()).hexdigest()
    assert (whole.start, whole.end, whole.first_line) == (0, ndb.stat().st_size, 0)
    pieced = load_database([d])
    one = _one_compile(d)
    assert [str(w) for w in pieced.warnings] == [str(w) for w in one.warnings]
    assert _answers(pieced, True) == _answers(one, True)
    assert Engine(pieced).scan_bytes(b"a late cr marker").names == ("Late.Cr",)


def test_an_unchanged_file_keeps_its_digest_and_a_changed_one_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest of a file cut in slices is that of its slices: the same bytes give the same
    database digest, one changed byte anywhere a different one."""
    monkeypatch.setattr(dbcompile, "HASH_CHUNK", 400)
    d = _write_db(tmp_path / "db")
    first = dbcompile.plan(_db_files([d])).digest
    assert dbcompile.plan(_db_files([d])).digest == first
    hdb = d / "main.hdb"
    data = bytearray(hdb.read_bytes())
    data[len(data) // 2] ^= 1
    hdb.write_bytes(bytes(data))
    assert dbcompile.plan(_db_files([d])).digest != first


# -- the bulk hash parser ------------------------------------------------------------------

_HEX = st.text("0123456789abcdefABCDEF", min_size=32, max_size=32) | st.text(
    "0123456789abcdef", min_size=64, max_size=64) | st.text("0123456789abcdefg", max_size=40)
_LINE = st.tuples(
    _HEX,
    st.sampled_from(["1", "68", "*", "0", "4294967295", "12x", "007"]),
    st.sampled_from(["Name.A", "Name B", " Lead", "Trail ", "", "Ä.Name", "N:x"]),
    st.sampled_from(["", ":73", ":1", ":300", ":73:100", ":x", ":73:300"]),
).map(lambda t: f"{t[0]}:{t[1]}:{t[2]}{t[3]}")


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=20), st.sampled_from(["", "\n", "\n\n\n"]))
def test_bulk_parser_agrees_with_the_line_parser(lines: list[str], prefix: str) -> None:
    text = prefix + "\n".join(lines) + "\n"
    got = bulk_hash_rows(text, flevel=FLEVEL)
    want: list[tuple[str, bytes, int, str]] = []
    skipped = 0
    for line in lines:
        try:
            parsed = parse_hash_line(line.strip())
        except SignatureSyntaxError:
            assert got is None  # an error to report: only the line parser reports it
            return
        if parsed is None:
            skipped += 1
            continue
        kind, dig, size, name = parsed
        want.append((kind, dig, ANY_SIZE if size is None else size, name))
    if got is None:  # allowed to decline (odd but valid lines), never to differ
        return
    rows = [(kind, digests[i * len(digests) // len(names):(i + 1) * len(digests) // len(names)],
             sizes[i], n.decode())
            for kind, (digests, sizes, names) in got.columns.items() for i, n in enumerate(names)]
    assert sorted(rows) == sorted(want)
    assert got.flevel_skipped == skipped
    assert got.loaded == len(want)
    assert bulk_hash_rows(text.encode(), flevel=FLEVEL) == got  # the bytes a piece reads


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=20), st.booleans(), st.booleans())
def test_fast_columns_agree_with_the_regex_pass(lines: list[str], sections: bool,
                                                last_break: bool) -> None:
    """`_plain_columns` (bytes.split, no regex) takes a slice only when the regex pass would
    give the very same columns; else it declines and the regex pass decides."""
    if sections:
        lines = _section_order(lines)
    text = "\n".join(lines) + ("\n" if last_break else "")
    fast = hashindex._plain_columns(text.encode(), sections)
    if fast is not None:
        assert fast == hashindex._hash_rows(text, FLEVEL, sections, True)




_PLAIN_LINE = st.tuples(
    st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)
    | st.text("0123456789abcdef", min_size=64, max_size=64),
    st.integers(1, 0xFFFFFFFE).map(str) | st.sampled_from(["007", "0000000001"]),
    st.from_regex(r"[!-9;-~]([ !-9;-~]{0,12}[!-9;-~])?", fullmatch=True),
).map(":".join)

#: Plain lines but for one field: what the fast path must decline (or parse as the regex).
_MD5 = "44d88612fea8a8f36de82e1278abb02f"
_NEAR = [
    *(f"{h}:68:Eicar.A" for h in [_MD5.upper(), "f" * 64, "f" * 40, _MD5[:31], _MD5 + "0",
                                  "g" + _MD5[1:], "", " " + _MD5, _MD5 + " "]),
    *(f"{_MD5}:{z}:Eicar.A" for z in ["1", "4294967294", "0", "00", "4294967295", "12345678901",
                                     "0000000068", "*", "+5", " 5", "5 ", "1_0", "", "\u0663",
                                     "0x5"]),
    *(f"{_MD5}:68:{n}" for n in ["a b", "x", " Lead", "Trail ", "", "N:x", "\u00c4", "a\tb",
                                 "a\rb", "a\x7fb", "a\x0bb", "~!"]),
    *(f"{_MD5}:68:Eicar.A{x}" for x in [":73", ":73:300", ":", ":1"]),
    "", "# c", "x", ":", "::",
]
_NEAR_LINE = _PLAIN_LINE | st.sampled_from(_NEAR)


def _section_order(lines: list[str]) -> list[str]:
    """.mdb/.msb order: the size first."""
    return [":".join([f[1], f[0], *f[2:]]) if len(f) > 1 else line
            for line in lines for f in [line.split(":")]]


@pytest.mark.parametrize("sections", [False, True])
def test_fast_columns_decline_each_odd_field(sections: bool) -> None:
    """Each odd line before, after or between plain ones: the fast path declines it, or
    parses it exactly as the regex pass does."""
    plain = f"{_MD5}:68:Eicar.A"
    for odd in _NEAR:
        for lines in ([odd], [odd, plain], [plain, odd], [plain, odd, plain]):
            lines = _section_order(lines) if sections else lines
            text = "\n".join(lines) + "\n"
            fast = hashindex._plain_columns(text.encode(), sections)
            if fast is not None:
                assert fast == hashindex._hash_rows(text, FLEVEL, sections, True), lines


@settings(max_examples=500, deadline=None)
@given(st.lists(_NEAR_LINE, min_size=1, max_size=3), st.booleans())
def test_fast_columns_decline_what_the_regex_pass_would_not_take(lines: list[str],
                                                                sections: bool) -> None:
    text = "\n".join(_section_order(lines) if sections else lines) + "\n"
    fast = hashindex._plain_columns(text.encode(), sections)
    if fast is not None:
        assert fast == hashindex._hash_rows(text, FLEVEL, sections, True)


def test_fast_columns_need_three_fields_on_every_line() -> None:
    """Fields that line up over two lines (one with four, one with two) are not columns."""
    text = f"{_MD5}:1:A:{_MD5}\n2:B\n"
    assert hashindex._plain_columns(text.encode(), False) is None
    assert bulk_hash_rows(text.encode(), flevel=FLEVEL) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(_PLAIN_LINE, min_size=1, max_size=30))
def test_fast_columns_take_plain_lines(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    want = hashindex._hash_rows(text, FLEVEL, False, True)
    assert want is not None
    kinds = {len(line.split(":")[0]) for line in lines}
    fast = hashindex._plain_columns(text.encode(), False)
    if len(kinds) > 1:
        assert fast is None  # one digest kind per slice, else the regex pass
    else:
        assert fast == want


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE | st.sampled_from(["", "# note"]), min_size=1, max_size=30),
       st.integers(1, 200))
def test_bulk_parser_in_slices_agrees_with_one_pass(lines: list[str], slice_chars: int) -> None:
    """A piece's lines are parsed a few MB at a time (memory): cut anywhere between lines,
    the columns, counts and refusals are those of one pass."""
    text = "\n".join(lines) + "\n"
    whole = bulk_hash_rows(text, flevel=FLEVEL)
    was = hashindex._ROWS_SLICE
    hashindex._ROWS_SLICE = slice_chars
    try:
        sliced = bulk_hash_rows(text, flevel=FLEVEL)
    finally:
        hashindex._ROWS_SLICE = was
    assert sliced == whole


@pytest.mark.usefixtures("tiny_pieces")
def test_warnings_come_in_the_order_of_one_compile(tmp_path: Path) -> None:
    d = _write_db(tmp_path / "db")
    (d / "a.cud").write_bytes(b"whatever")  # a kind we know and do not load: a warning
    (d / "daily.ign2").write_text("Main.Body.4\nBad:Name:Too:Many\n")
    with (d / "daily.hdb").open("a") as f:
        f.write("nothex:12:Bad.Hash\n")
    pieced = load_database([d])
    whole = _one_compile(d)
    assert len(whole.warnings) == 4
    assert [str(w) for w in pieced.warnings] == [str(w) for w in whole.warnings]
