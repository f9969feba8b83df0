"""`zerohour scan`: clamscan's output lines, summary, options and exit codes; --json, --db-info;
the CLI -> Limits mapping (clamscan's defaults, which must not reach the gateway); the hard
per-file deadline. clamscan itself is the oracle in tests/conformance/test_clamscan_cli.py."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from zerohour.cli.scan_options import LimitOptions, number_value, size_value
from zerohour.gateway.scanner import LocalScanner
from zerohour.scan import Engine, Limits, load_database

MARK = b"CLITESTMARK01"
ZIP = shutil.which("zip")


def run(args: list[str], tmp_path: Path, stdin: bytes | None = None,
        env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, ZEROHOUR_CACHE_DIR=str(tmp_path / "cache"), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "zerohour", "scan", *args], input=stdin, capture_output=True,
        timeout=120, env=full_env, cwd=cwd,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def nested(levels: int) -> bytes:
    """The mark `levels` zips deep (1: a zip holding the mark)."""
    data = b"xx" + MARK
    for i in range(levels):
        data = zip_of({f"level{i}": data})
    return data


#: A zip cut inside its only member's (incompressible) data: nothing after the cut is there.
BROKEN_ZIP = zip_of({"a.bin": random.Random(1).randbytes(5000) + MARK})[:300]



def with_method(data: bytes, method: int) -> bytes:
    """A one-member zip with its compression method (local and central header) replaced."""
    out = bytearray(data)
    out[8:10] = struct.pack("<H", method)
    cd = out.index(b"PK\x01\x02")
    out[cd + 10 : cd + 12] = struct.pack("<H", method)
    return bytes(out)


#: A deflated member labelled WavPack (method 97), which nobody decodes: clamscan passes it as
#: clean, we can say so (Heuristics.Unsupported.Zip.WavPack, with --alert-unsupported).
UNSUPPORTED_ZIP = with_method(zip_of({"m.bin": b"x" * 100 + MARK}), 97)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    d = tmp_path / "db"
    d.mkdir()
    (d / "a.ndb").write_text(f"Cli.Mark:0:*:{MARK.hex()}\nBroken:0:*:4\n")
    return d


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "clean.txt").write_bytes(b"hello")
    (root / "sub" / "bad.bin").write_bytes(b"xx" + MARK)
    return root


@pytest.fixture
def encrypted_zip(tmp_path: Path) -> Path:
    if ZIP is None:
        pytest.skip("zip not installed (scripts/system-deps)")
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "inner.bin").write_bytes(b"xx" + MARK)
    out = tmp_path / "enc.zip"
    subprocess.run([ZIP, "-q", "-P", "secret", str(out), "inner.bin"], cwd=tmp_path / "enc",
                   check=True)
    return out


# -- output lines and exit codes ----------------------------------------------------------------


def test_clean_file_exits_0(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--no-summary", "--db", str(db), str(tree / "clean.txt")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{tree / 'clean.txt'}: OK\n"


def test_folder_needs_r_to_descend(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--no-summary", "-d", str(db), str(tree)], tmp_path)
    assert (proc.returncode, proc.stdout) == (0, f"{tree / 'clean.txt'}: OK\n")
    for flag in ("-r", "--recursive", "--recursive=yes", "--recursive=TRUE", "--recursive=1"):
        proc = run(["--no-summary", "-d", str(db), flag, str(tree)], tmp_path)
        assert proc.returncode == 1, flag
        assert proc.stdout.splitlines() == [
            f"{tree / 'clean.txt'}: OK",
            f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND",
        ], flag
    # clamscan keeps an option's first occurrence
    proc = run(["--no-summary", "-d", str(db), "--recursive=no", "-r", f"{tree}/"], tmp_path)
    assert (proc.returncode, proc.stdout) == (0, f"{tree / 'clean.txt'}: OK\n")
    proc = run(["--no-summary", "-d", str(db), "-r", "--recursive=No", str(tree)], tmp_path)
    assert proc.returncode == 1


def test_paths_among_options(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run([str(tree / "clean.txt"), "--no-summary", "-d", str(db),
                str(tree / "sub" / "bad.bin"), "-i"], tmp_path)
    assert (proc.returncode, proc.stdout) == (1, f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND\n")


def test_bad_boolean_value_is_clamscans_error(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["-d", str(db), "--recursive=maybe", str(tree)], tmp_path)
    assert proc.returncode == 2
    assert "Incorrect argument format for option --recursive" in proc.stderr
    proc = run(["-d", str(db), "--max-filesize=1.5M", str(tree)], tmp_path)
    assert proc.returncode == 2
    assert "Incorrect argument format for option --max-filesize" in proc.stderr


def test_stdin(db: Path, tmp_path: Path) -> None:
    proc = run(["--no-summary", "--db", str(db), "-"], tmp_path, stdin=b"zz" + MARK)
    assert (proc.returncode, proc.stdout) == (1, "stdin: Cli.Mark FOUND\n")
    proc = run(["--no-summary", "--db", str(db), "-"], tmp_path, stdin=b"")
    assert (proc.returncode, proc.stdout) == (0, "stdin: OK\n")


def test_missing_file_is_clamscans_warning_and_exit_2(db: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    proc = run(["--no-summary", "--db", str(db), str(missing)], tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"{missing}: No such file or directory",
                                        f"WARNING: {missing}: Can't access file"]


def test_found_wins_over_error(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), str(tmp_path / "nope"), str(tree / "sub" / "bad.bin")],
               tmp_path)
    assert proc.returncode == 1


def test_empty_files_symlinks_infected_and_ok_suppression(db: Path, tree: Path,
                                                         tmp_path: Path) -> None:
    (tree / "empty").write_bytes(b"")
    (tree / "link").symlink_to(tree / "sub" / "bad.bin")
    base = ["--no-summary", "-d", str(db), "-r"]
    proc = run([*base, str(tree)], tmp_path)
    assert proc.stdout.splitlines() == [
        f"{tree / 'clean.txt'}: OK", f"{tree / 'empty'}: Empty file",
        f"{tree / 'link'}: Symbolic link", f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND"]
    proc = run([*base, "-o", str(tree)], tmp_path)  # -o keeps "Empty file", as clamscan
    assert proc.stdout.splitlines() == [
        f"{tree / 'empty'}: Empty file", f"{tree / 'link'}: Symbolic link",
        f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND"]
    proc = run([*base, "-i", str(tree)], tmp_path)
    assert proc.stdout.splitlines() == [f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND"]
    proc = run(["--no-summary", "-d", str(db), str(tree / "link")], tmp_path)  # named: followed
    assert proc.stdout == f"{tree / 'link'}: Cli.Mark FOUND\n"


SUMMARY = re.compile(
    r"\n----------- SCAN SUMMARY -----------\n"
    r"Known viruses: (\d+)\nEngine version: \S+\nScanned directories: (\d+)\n"
    r"Scanned files: (\d+)\nInfected files: (\d+)\n"
    r"Data scanned: \d+\.\d\d MB\nData read: \d+\.\d\d MB \(ratio \d+\.\d\d:1\)\n"
    r"Time: \d+\.\d{3} sec \(\d+ m \d+ s\)\n"
    r"Start Date: \d{4}:\d\d:\d\d \d\d:\d\d:\d\d\nEnd Date:   \d{4}:\d\d:\d\d \d\d:\d\d:\d\d\n$")


def test_summary_block(db: Path, tree: Path, tmp_path: Path) -> None:
    (tree / "empty").write_bytes(b"")
    (tree / "big.bin").write_bytes(b"y" * 3 * 4096)
    proc = run(["-d", str(db), "-r", str(tree)], tmp_path)
    m = SUMMARY.search(proc.stdout)
    assert m is not None, proc.stdout
    # one .ndb signature loaded (the bad line is skipped); 2 folders; empty files don't count
    assert m.groups() == ("1", "2", "3", "1")
    assert "Data read: 0.01 MB (ratio 1.00:1)" in proc.stdout  # 3 blocks of 4 KiB
    assert "SCAN SUMMARY" not in run(
        ["-d", str(db), "--no-summary", str(tree)], tmp_path).stdout
    assert "SCAN SUMMARY" in run(["-d", str(db), "--no-summary=no", str(tree)], tmp_path).stdout


def test_no_path_scans_the_current_folder(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--no-summary", "-d", str(db)], tmp_path, cwd=tree)
    assert (proc.returncode, proc.stdout) == (0, f"{tree / 'clean.txt'}: OK\n")


def test_json_output(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "--json", str(tree / "sub" / "bad.bin")], tmp_path)
    doc = json.loads(proc.stdout)
    assert doc["infected"] is True
    assert doc["findings"][0]["name"] == "Cli.Mark"


def test_gen_json_with_debug(db: Path, tmp_path: Path) -> None:
    sample = tmp_path / "n.zip"
    sample.write_bytes(nested(2))
    proc = run(["--no-summary", "-d", str(db), "--gen-json", str(sample)], tmp_path)
    assert "CLAMJSON" not in proc.stderr  # as clamscan: only shown with --debug
    proc = run(["--no-summary", "-d", str(db), "--gen-json", "--debug", str(sample)], tmp_path)
    assert proc.stdout == f"{sample}: Cli.Mark FOUND\n"
    text = proc.stderr[proc.stderr.index("zerohour debug: {") + len("zerohour debug: "):]
    doc, _ = json.JSONDecoder().raw_decode(text)
    assert doc["Magic"] == "CLAMJSONv0"
    assert doc["RootFileType"] == "CL_TYPE_ZIP"
    inner = doc["ContainedObjects"][0]
    assert inner["FileName"] == "level1"
    assert inner["FileType"] == "CL_TYPE_ZIP"
    assert inner["ContainedObjects"][0]["Viruses"] == ["Cli.Mark"]


def test_version(tmp_path: Path) -> None:
    proc = run(["-V"], tmp_path)
    assert proc.returncode == 0
    assert re.fullmatch(r"zerohour \S+\n", proc.stdout)


def test_db_info_lists_warnings_with_file_and_line(db: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "--db-info"], tmp_path)
    assert proc.returncode == 0
    assert "ndb: 1" in proc.stdout
    assert f"{db / 'a.ndb'}:2: odd number of hex digits" in proc.stdout
    proc = run(["--db", str(db), "--db-info", "--json"], tmp_path)
    info = json.loads(proc.stdout)
    assert info["counts"] == {"ndb": 1}
    assert info["warning_count"] == 1


def test_strict_refuses_bad_db(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run(["--db", str(db), "--strict", str(tree)], tmp_path)
    assert proc.returncode == 2
    assert "a.ndb:2:" in proc.stderr


def test_database_file_and_repeated(db: Path, tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.ndb"
    other.write_text(f"Other.Hello:0:*:{b'hello'.hex()}\n")
    proc = run(["-d", str(db / "a.ndb"), f"--database={other}", "-r", str(tree)], tmp_path)
    assert proc.returncode == 1
    assert f"{tree / 'clean.txt'}: Other.Hello FOUND" in proc.stdout
    assert f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND" in proc.stdout
    assert "Known viruses: 2\n" in proc.stdout


def test_default_db_from_env(db: Path, tree: Path, tmp_path: Path) -> None:
    proc = run([str(tree / "sub" / "bad.bin")], tmp_path, env={"ZEROHOUR_DB_DIR": str(db)})
    assert proc.returncode == 1


def test_allmatch_prints_every_name(tmp_path: Path, tree: Path) -> None:
    d = tmp_path / "db2"
    d.mkdir()
    (d / "a.ndb").write_text(f"One:0:*:{MARK.hex()}\nTwo:0:*:{b'xx'.hex()}{MARK[:4].hex()}\n")
    for flag in ("--allmatch", "-z"):
        proc = run(["--no-summary", "--db", str(d), flag, str(tree / "sub" / "bad.bin")],
                   tmp_path)
        assert proc.returncode == 1
        assert sorted(proc.stdout.splitlines()) == [
            f"{tree / 'sub' / 'bad.bin'}: One FOUND", f"{tree / 'sub' / 'bad.bin'}: Two FOUND"]


# -- limits and alerts: clamscan's defaults on the command line -----------------------------------


def test_limits_are_findings_only_with_alert_exceeds_max(db: Path, tmp_path: Path) -> None:
    deep = tmp_path / "deep.zip"
    deep.write_bytes(nested(3))  # the mark is at level 4 (the zip itself is level 1)
    base = ["--no-summary", "-d", str(db), str(deep)]
    assert run([*base, "--max-recursion=4"], tmp_path).stdout.endswith("Cli.Mark FOUND\n")
    proc = run([*base, "--max-recursion=3"], tmp_path)
    assert (proc.returncode, proc.stdout) == (0, f"{deep}: OK\n")  # skipped, assumed clean
    proc = run([*base, "--max-recursion=3", "--alert-exceeds-max"], tmp_path)
    assert proc.stdout == f"{deep}: Heuristics.Limits.Exceeded.MaxRecursion FOUND\n"
    proc = run([*base, "--max-files=3", "--alert-exceeds-max=yes"], tmp_path)
    assert proc.stdout == f"{deep}: Heuristics.Limits.Exceeded.MaxFiles FOUND\n"
    proc = run([*base, "--max-filesize=100", "--alert-exceeds-max"], tmp_path)
    assert proc.stdout == f"{deep}: Heuristics.Limits.Exceeded.MaxFileSize FOUND\n"
    proc = run([*base, "--max-filesize=1k", "--max-scansize=100", "--alert-exceeds-max"],
               tmp_path)
    assert proc.stdout == f"{deep}: Heuristics.Limits.Exceeded.MaxScanSize FOUND\n"


def test_encrypted_archive_only_with_alert(db: Path, encrypted_zip: Path, tmp_path: Path) -> None:
    base = ["--no-summary", "-d", str(db), str(encrypted_zip)]
    assert run(base, tmp_path).stdout == f"{encrypted_zip}: OK\n"
    assert run([*base, "--alert-encrypted-doc"], tmp_path).stdout == f"{encrypted_zip}: OK\n"
    for flag in ("--alert-encrypted", "--alert-encrypted-archive=yes"):
        proc = run([*base, flag], tmp_path)
        assert (proc.returncode, proc.stdout) == (
            1, f"{encrypted_zip}: Heuristics.Encrypted.Zip FOUND\n"), flag


def test_heuristic_precedence(db: Path, encrypted_zip: Path, tmp_path: Path) -> None:
    """By default a signature found after a heuristic finding is what is reported (clamscan);
    with --heuristic-scan-precedence the first heuristic finding ends the scan."""
    outer = tmp_path / "outer.zip"
    outer.write_bytes(zip_of({"a-enc.zip": encrypted_zip.read_bytes(), "b.bin": b"x" + MARK}))
    base = ["--no-summary", "-d", str(db), "--alert-encrypted", str(outer)]
    assert run(base, tmp_path).stdout == f"{outer}: Cli.Mark FOUND\n"
    proc = run([*base, "--heuristic-scan-precedence"], tmp_path)
    assert proc.stdout == f"{outer}: Heuristics.Encrypted.Zip FOUND\n"
    proc = run([*base, "-z"], tmp_path)
    assert sorted(proc.stdout.splitlines()) == [
        f"{outer}: Cli.Mark FOUND", f"{outer}: Heuristics.Encrypted.Zip FOUND"], proc.stderr


def test_broken_and_unsupported_are_opt_in(db: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(BROKEN_ZIP)
    base = ["--no-summary", "-d", str(db), str(broken)]
    assert run(base, tmp_path).stdout == f"{broken}: OK\n"
    assert run([*base, "--alert-broken"], tmp_path).stdout == \
        f"{broken}: Heuristics.Broken.Zip FOUND\n"
    wavpack = tmp_path / "wavpack.zip"
    wavpack.write_bytes(UNSUPPORTED_ZIP)
    base = ["--no-summary", "-d", str(db), str(wavpack)]
    assert run(base, tmp_path).stdout == f"{wavpack}: OK\n"
    assert run([*base, "--alert-unsupported"], tmp_path).stdout == \
        f"{wavpack}: Heuristics.Unsupported.Zip.WavPack FOUND\n"


def test_value_syntax() -> None:
    size = size_value("--max-filesize")
    assert [size(v) for v in ("0", "100", "1k", "1K", "2m", "1G", "0144")] == [
        0, 100, 1024, 1024, 2 * 1024**2, 1024**3, 100]
    for bad in ("0x64", "1.5M", "1MB", "-1", "", " 5", "1T", "09"):
        with pytest.raises(argparse.ArgumentTypeError):
            size(bad)
    num = number_value("--max-files")
    assert (num("03"), num("10")) == (3, 10)
    for bad in ("0x3", "1k", "-1", "abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            num(bad)


def test_cli_limits_mapping() -> None:
    lim = LimitOptions().limits()
    alerts = (lim.alert_exceeds_max, lim.alert_encrypted, lim.alert_encrypted_doc,
              lim.alert_broken, lim.alert_unsupported)
    assert alerts == (False,) * 5
    # clamscan counts the file itself in --max-files and --max-recursion; the engine does not
    assert (lim.max_files, lim.max_recursion) == (9_999, 16)
    assert (lim.max_file_size, lim.max_scan_size, lim.max_scan_time) == (
        100 * 1024**2, 400 * 1024**2, 120.0)
    no_limit = LimitOptions(max_filesize=0, max_scansize=0, max_files=0, max_scantime_ms=0,
                            max_recursion=0).limits()
    assert no_limit.max_files > 10**15
    assert no_limit.max_scan_size > 10**15
    assert no_limit.max_file_size == 2**31 - 1
    assert no_limit.max_recursion == 16
    assert LimitOptions(max_scantime_ms=0).hard_deadline() is None
    assert LimitOptions(max_scantime_ms=500).hard_deadline() == 1.5
    assert LimitOptions(max_scantime_ms=120_000).hard_deadline() == 240.0


def test_gateway_engines_keep_fail_closed_defaults(db: Path, encrypted_zip: Path,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clamscan defaults never reach the gateway: its workers and the admin/CLI
    release rescan (LocalScanner, same `_init_worker`) build `Engine(db)` with `Limits()`,
    whose alerts are all on."""
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", str(tmp_path / "cache"))
    lim = Limits()
    alerts = (lim.alert_exceeds_max, lim.alert_encrypted, lim.alert_encrypted_doc,
              lim.alert_broken, lim.alert_unsupported)
    assert alerts == (True,) * 5
    deep = nested(Limits().max_recursion + 2)
    samples = {"enc": encrypted_zip.read_bytes(), "broken": BROKEN_ZIP, "deep": deep,
               "unsupported": UNSUPPORTED_ZIP}
    expect = {"enc": "Heuristics.Encrypted.Zip", "broken": "Heuristics.Broken.Zip",
              "deep": "Heuristics.Limits.Exceeded.MaxRecursion",
              "unsupported": "Heuristics.Unsupported.Zip.WavPack"}

    async def scan_all() -> dict[str, tuple[str, ...]]:
        scanner = LocalScanner([db])
        try:
            return {k: (await scanner.scan(v, k)).findings for k, v in samples.items()}
        finally:
            await scanner.aclose()

    found = asyncio.run(scan_all())
    assert found == {k: (v,) for k, v in expect.items()}
    cli = Engine(load_database([db]), limits=LimitOptions().limits())
    assert all(not cli.scan_bytes(v, k).findings for k, v in samples.items())


# -- actions -------------------------------------------------------------------------------------


def test_move_copy_remove(db: Path, tree: Path, tmp_path: Path) -> None:
    bad = tree / "sub" / "bad.bin"
    q = tmp_path / "q"
    q.mkdir()
    real_q = Path(os.path.realpath(q))
    proc = run(["--no-summary", "-d", str(db), f"--copy={q}", str(bad)], tmp_path)
    assert proc.stdout.splitlines() == [
        f"{bad}: Cli.Mark FOUND",
        f"{bad} (real path: '{os.path.realpath(bad)}'): copied to '{real_q / 'bad.bin'}'"]
    proc = run(["--no-summary", "-d", str(db), "--move", str(q), "-r", str(tree)], tmp_path)
    assert proc.stdout.splitlines()[-1] == (
        f"{bad} (real path: '{os.path.realpath(bad)}'): moved to '{real_q / 'bad.bin.001'}'")
    assert not bad.exists()
    assert (tree / "clean.txt").exists()
    assert sorted(p.name for p in q.iterdir()) == ["bad.bin", "bad.bin.001"]
    victim = tree / "victim.bin"
    victim.write_bytes(b"x" + MARK)
    proc = run(["--no-summary", "-d", str(db), "--remove", str(victim), str(tree / "clean.txt")],
               tmp_path)
    assert f"{victim} (real path: '{os.path.realpath(victim)}'): Removed." in proc.stdout
    assert not victim.exists()
    assert (tree / "clean.txt").exists()
    proc = run(["-d", str(db), "--move", str(tmp_path / "nowhere"), str(tree)], tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == f"action_setup: Failed to get realpath of {tmp_path / 'nowhere'}\n"


# -- the time limit inside a regular expression, and the hard per-file deadline -----------------

# `(a|aa)+b` against a run of a's without a b backtracks exponentially (48 a's: hours), and
# the regex never looks at the engine's clock: a timer signal interrupts it (`scan.alarm`,
# halfway between --max-scantime and the hard deadline, twice it).
BACKTRACK = "Zh.Test.Backtrack;Engine:51-255,Target:0;0&1;616161616161;0/(a|aa)+b/\n"


def test_backtracking_pcre_is_held_to_max_scantime(db: Path, tree: Path,
                                                   tmp_path: Path) -> None:
    """As clamscan (whose PCRE match limit stops it): the file is OK, the run goes on; with
    --alert-exceeds-max it is the time limit. Before the timer, only the deadline's kill
    stopped it ("scan deadline exceeded" ERROR)."""
    (db / "slow.ldb").write_text(BACKTRACK)
    slow = tmp_path / "slow.txt"
    slow.write_bytes(b"a" * 48 + b"c")
    started = time.monotonic()
    proc = run(["--no-summary", "-d", str(db), "--max-scantime=1000", str(slow),
                str(tree / "clean.txt"), str(tree / "sub" / "bad.bin")], tmp_path)
    assert time.monotonic() - started < 30
    assert proc.stdout.splitlines() == [
        f"{slow}: OK",
        f"{tree / 'clean.txt'}: OK",
        f"{tree / 'sub' / 'bad.bin'}: Cli.Mark FOUND"]
    assert proc.returncode == 1
    proc = run(["--no-summary", "-d", str(db), "--max-scantime=500", "--alert-exceeds-max",
                str(slow)], tmp_path)
    assert proc.stdout == f"{slow}: Heuristics.Limits.Exceeded.MaxScanTime FOUND\n"
    assert proc.returncode == 1


class _Stuck:
    """An engine whose scan never returns to Python code (signals blocked: as a C library
    that never looks at them), for the deadline's own test."""

    limits = Limits(max_scan_time=0.5)

    def scan_bytes(self, data: bytes, name: str) -> object:
        import signal

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
        raise AssertionError("not killed")


def test_what_the_timer_cannot_stop_the_deadline_kills() -> None:
    from zerohour.cli.scan_deadline import DEADLINE_EXCEEDED, DeadlineScanner
    from zerohour.errors import ScanError

    scanner = DeadlineScanner(_Stuck(), 1.5)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ScanError, match=DEADLINE_EXCEEDED):
        scanner.scan_bytes(b"x", "x")
    assert time.monotonic() - started < 10
    scanner.close()
