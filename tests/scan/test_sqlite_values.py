"""SQLite database attachments (round 20 a07): a file in a BLOB larger than a page is cut by
overflow-page pointers in the raw bytes, while the recipient's `sqlite3 x.db "SELECT
writefile(...)"` gives it back whole. Databases are made and read back with the sqlite3 CLI;
the engine must find clam.exe in them, say `Broken` of a damaged one, and run nothing the
schema names (views, generated columns) however hostile it is."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
from pathlib import Path

import pytest

from helpers import cpu
from helpers.tools import tool
from scan.conftest import CLAM, CLAM_NAME
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.sqlitedb import values


def _db(tmp_path: Path, sql: str, name: str = "data.db") -> Path:
    path = tmp_path / name
    path.unlink(missing_ok=True)
    subprocess.run([tool("sqlite3"), str(path), sql], check=True, capture_output=True,
                   cwd=tmp_path)
    return path


def _small_pages(tmp_path: Path) -> Path:
    (tmp_path / "clam.exe").write_bytes(CLAM.read_bytes())
    return _db(tmp_path, "PRAGMA page_size=512; CREATE TABLE files(name TEXT, data BLOB);"
               " INSERT INTO files VALUES ('note', 'hello');"
               " INSERT INTO files VALUES ('clam.exe', readfile('clam.exe'));")


def test_a_blob_cut_into_overflow_pages_is_found(clam_engine: Engine, tmp_path: Path) -> None:
    db = _small_pages(tmp_path)
    data = db.read_bytes()
    assert CLAM.read_bytes() not in data  # 544 bytes over 512-byte pages: not one run
    subprocess.run([tool("sqlite3"), str(db), "SELECT writefile('out.exe', data) FROM files"
                    " WHERE name = 'clam.exe'"], check=True, capture_output=True, cwd=tmp_path)
    assert (tmp_path / "out.exe").read_bytes() == CLAM.read_bytes()  # the recipient's way
    assert clam_engine.scan_bytes(data, "data.db").names == (CLAM_NAME,)
    mail = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: db\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/vnd.sqlite3\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"data.db\"\r\n\r\n"
            + base64.encodebytes(data).replace(b"\n", b"\r\n"))
    assert clam_engine.scan_bytes(mail).names == (CLAM_NAME,)


def test_base64_text_in_a_column_is_found(clam_engine: Engine, tmp_path: Path) -> None:
    b64 = base64.b64encode(CLAM.read_bytes()).decode()
    db = _db(tmp_path, "PRAGMA page_size=512; CREATE TABLE t(body TEXT);"
             f" INSERT INTO t VALUES ('{b64}');")
    assert clam_engine.scan_bytes(db.read_bytes(), "t.db").names == (CLAM_NAME,)


def test_values_are_named_and_short_ones_left_to_the_raw_scan(tmp_path: Path) -> None:
    got = [(c.name, c.data) for c in values(_small_pages(tmp_path).read_bytes(), ScanContext())]
    assert got == [("files.data", CLAM.read_bytes())]  # 'note', 'hello': too short


def test_a_damaged_database_is_broken(clam_engine: Engine, tmp_path: Path) -> None:
    data = _small_pages(tmp_path).read_bytes()
    assert clam_engine.scan_bytes(data[:1024], "cut.db").names == ("Heuristics.Broken.SQLite",)
    garbage = data[:100] + bytes(range(256)) * 8
    assert clam_engine.scan_bytes(garbage, "bad.db").names == ("Heuristics.Broken.SQLite",)


def test_a_clean_database_is_clean(clam_engine: Engine, tmp_path: Path) -> None:
    db = _db(tmp_path, "CREATE TABLE people(name TEXT, photo BLOB, bio TEXT);"
             " CREATE VIRTUAL TABLE docs USING fts5(body);"
             " INSERT INTO docs VALUES ('a searchable document about nothing in particular');"
             " INSERT INTO people VALUES ('ann', randomblob(3000), printf('%.200c', 'x'));"
             " CREATE INDEX people_name ON people(name);")
    report = clam_engine.scan_bytes(db.read_bytes(), "people.db")
    assert report.names == ()
    assert not report.errors


def test_a_database_in_wal_mode_is_read(clam_engine: Engine, tmp_path: Path) -> None:
    """A database left in WAL mode (its header says so; the mailed file has no -wal beside
    it, and sqlite3 opens it all the same) is read, not called broken."""
    (tmp_path / "clam.exe").write_bytes(CLAM.read_bytes())
    db = _db(tmp_path, "PRAGMA page_size=512; PRAGMA journal_mode=WAL; CREATE TABLE f(d BLOB);"
             " INSERT INTO f VALUES (readfile('clam.exe')); PRAGMA wal_checkpoint(TRUNCATE);")
    data = db.read_bytes()
    assert data[18:20] == b"\x02\x02"
    assert clam_engine.scan_bytes(data, "wal.db").names == (CLAM_NAME,)


def test_the_schema_runs_nothing(clam_engine: Engine, tmp_path: Path) -> None:
    """A view that never ends, a generated column calling a function, a trigger: none of it
    runs when the database is read (only stored columns of tables are selected)."""
    db = _db(tmp_path, "CREATE TABLE t(a INTEGER, b BLOB GENERATED ALWAYS AS"
             " (zeroblob(a)) VIRTUAL, c BLOB);"
             " INSERT INTO t(a, c) VALUES (1000000000, x'00112233445566778899aabbccddeeff');"
             " CREATE VIEW forever AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
             " SELECT i + 1 FROM n) SELECT i FROM n;"
             " CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT * FROM forever; END;")
    t0 = cpu.process_time()
    got = [(c.name, len(c.data)) for c in values(db.read_bytes(), ScanContext())]
    assert cpu.process_time() - t0 < 5
    assert got == [("t.c", 16)]
    assert clam_engine.scan_bytes(db.read_bytes(), "t.db").names == ()


def test_many_rows_stay_within_the_scan_clock(tmp_path: Path) -> None:
    db = _db(tmp_path, "CREATE TABLE t(v INTEGER); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
             " SELECT i + 1 FROM n LIMIT 300000) INSERT INTO t SELECT i FROM n;")
    ctx = ScanContext(Limits(max_scan_time=0.05))  # a scan almost out of time
    with pytest.raises(ScanLimitExceeded):
        list(values(db.read_bytes(), ctx))


def test_a_stored_generated_column_is_read(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 5: clam.exe only in a STORED generated column (its value is in the file, cut
    over overflow pages; `SELECT x` gives it). Virtual generated columns stay unread."""
    clam = CLAM.read_bytes()
    path = tmp_path / "g.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size=512")
    conn.execute("CREATE TABLE t(a BLOB, x BLOB AS (CAST(replace(a, x'dead', x'') AS BLOB))"
                 " STORED)")
    conn.execute("INSERT INTO t(a) VALUES (?)", (clam[:2] + b"\xde\xad" + clam[2:],))
    conn.commit()
    assert conn.execute("SELECT x FROM t").fetchone()[0] == clam
    conn.close()
    data = path.read_bytes()
    assert clam not in data
    assert clam_engine.scan_bytes(data, "g.db").names == (CLAM_NAME,)


def test_an_applications_own_collation_is_no_damage(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 5: Android's databases index with `COLLATE LOCALIZED`, which SQLite here does not
    know; `quick_check` failed on it and the file was called broken."""
    path = tmp_path / "contacts2.db"
    conn = sqlite3.connect(path)
    conn.create_collation("LOCALIZED", lambda a, b: (a > b) - (a < b))
    conn.executescript("CREATE TABLE android_metadata(locale TEXT);"
                       " INSERT INTO android_metadata VALUES ('en_US');"
                       " CREATE TABLE c(n TEXT COLLATE LOCALIZED);"
                       " CREATE INDEX ci ON c(n COLLATE LOCALIZED);"
                       " INSERT INTO c VALUES ('Alice');")
    conn.commit()
    conn.close()
    report = clam_engine.scan_bytes(path.read_bytes(), "contacts2.db")
    assert report.names == ()
    assert not report.errors
