"""Round 20: base64 (or hex) as one column of lines a recipient cuts out with one tool.

Numbered lines whose number is itself base64 characters (`000 chunk`, `[001] chunk`,
`NNN|chunk`, `line N<TAB>chunk`), lines behind a fixed word (`REM `, `// `, `data: `) or
inside a shell line (`echo chunk >> f.b64`), a CSV column between decoy columns, two
columns read one after the other, `#` decoy lines between the lines, and numbered lines
stored shuffled (`sort -n | cut`). Each test runs the recipient's tool as the oracle and
checks it rebuilds clam.exe byte for byte; controls: numbered prose, C++ comments, batch
files, CSV and hash lists stay undecoded, and 5 MB of them cost little."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import cpu
from scan.conftest import CLAM, CLAM_NAME
from zerohour.scan import Engine, textcarriers

_B64 = base64.b64encode(CLAM.read_bytes()).decode()
_HEX = CLAM.read_bytes().hex()


def _chunks(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)]


def _decoys(n: int, width: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [base64.b64encode(rng.randbytes(width * 3 // 4)).decode() for _ in range(n)]


def _lines(fmt: Callable[[int, str], str], width: int = 60, text: str = _B64) -> str:
    return "".join(fmt(i, c) + "\n" for i, c in enumerate(_chunks(text, width)))


def _shuffled(text: str, seed: int = 7) -> str:
    lines = text.splitlines(keepends=True)
    random.Random(seed).shuffle(lines)
    return "".join(lines)


_TWO_COLUMNS = _chunks(_B64, 60)
_HALF = (len(_TWO_COLUMNS) + 1) // 2

#: (body, the recipient's command: a shell pipeline of ONE decoding tool after `cut`/`sed`)
CASES: dict[str, tuple[str, str]] = {
    "b74 NNN chunk": (_lines(lambda i, c: f"{i:03d} {c}"), "cut -d' ' -f2 | base64 -d"),
    "b78 [NNN] chunk": (_lines(lambda i, c: f"[{i + 1:03d}] {c}"), "cut -d' ' -f2 | base64 -d"),
    "b79 line N<TAB>chunk": (_lines(lambda i, c: f"line {i + 1}\t{c}"), "cut -f2 | base64 -d"),
    "b90 NNN|chunk": (_lines(lambda i, c: f"{i:03d}|{c}"), "cut -d'|' -f2 | base64 -d"),
    "b80 // chunk": (_lines(lambda i, c: f"// {c}"), "cut -c4- | base64 -d"),
    "b81 REM chunk": (_lines(lambda i, c: f"REM {c}"), "sed 's/^REM //' | base64 -d"),
    "b82 echo chunk >> f.b64": (_lines(lambda i, c: f"echo {c} >> f.b64"),
                                "sed -n 's/^echo \\(.*\\) >> f.b64$/\\1/p' | base64 -d"),
    "b85 data: chunk": (_lines(lambda i, c: f"data: {c}"), "sed 's/^data: //' | base64 -d"),
    "b86 NNN hex": (_lines(lambda i, c: f"{i:03d} {c}", 64, _HEX), "cut -d' ' -f2 | xxd -r -p"),
    "b30 CSV column 3 of decoys": (
        "".join(f"{a},{b},{c}\n" for a, b, c in zip(
            _decoys(40, 40, 1), _decoys(40, 40, 2), _chunks(_B64, 40), strict=False)),
        "cut -d, -f3 | base64 -d"),
    "b15 two columns": (
        "".join(f"{a}\t{b}\n" for a, b in zip(
            _TWO_COLUMNS[:_HALF], [*_TWO_COLUMNS[_HALF:], ""], strict=True)),
        "tee t >/dev/null; (cut -f1 t; cut -f2 t) | base64 -d"),
    "b29 # decoy lines": (
        "".join(f"# {d}\n{c}\n" for d, c in zip(_decoys(20, 64, 3), _chunks(_B64, 64),
                                                 strict=False)),
        "grep -v '^#' | base64 -d"),
    "b42 NNN chunk shuffled": (_shuffled(_lines(lambda i, c: f"{i:03d} {c}")),
                               "sort -n | cut -d' ' -f2 | base64 -d"),
    "b14 word-keyed shuffled": (
        _shuffled("".join(f"{k} {c}\n" for k, c in zip(
            sorted("".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=8))
                   for i in range(20)), _chunks(_B64, 60), strict=False))),
        "LC_ALL=C sort | cut -d' ' -f2 | base64 -d"),
    "b41 N,chunk shuffled": (_shuffled(_lines(lambda i, c: f"{i},{c}", 40)),
                             "sort -t, -k1,1n | cut -d, -f2 | base64 -d"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_column_the_recipient_cuts_out_is_decoded(
        clam_engine: Engine, tmp_path: Path, case: str) -> None:
    body, command = CASES[case]
    out = subprocess.run(["sh", "-c", command], input=body.encode(), cwd=tmp_path,
                         capture_output=True, check=True)
    assert out.stdout == CLAM.read_bytes(), case  # the oracle: the recipient's tool
    msg = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\nHello,\r\n\r\n" + \
        body.replace("\n", "\r\n").encode() + b"\r\nBye\r\n"
    assert clam_engine.scan_bytes(msg).names == (CLAM_NAME,), case
    assert clam_engine.scan_bytes(body.encode(), "data.txt").names == (CLAM_NAME,), case


def _fill(line: Callable[[int], bytes], size: int) -> bytes:
    out: list[bytes] = []
    n = i = 0
    while n < size:
        out.append(line(i))
        n += len(out[-1])
        i += 1
    return b"".join(out)


CONTROLS: dict[str, Callable[[int], bytes]] = {
    "numbered prose": lambda i: b"%d. The committee reviewed item %d and agreed to go on.\n"
                                % (i, i),
    "C++ with // comments": lambda i: b"// Checksum of block %d before sending it\n"
                                      b"int x%d = compute(buf, LEN_%d);\n" % (i, i, i),
    "batch file with REM lines": lambda i: b"REM step %d: copy the files to the share\n"
                                           b"COPY C:\\DATA\\F%d.TXT \\\\SRV\\SHARE\\\n" % (i, i),
    "CSV": lambda i: b"%d,%s,ACCT%08d,%d.%02d,EUR\n" % (
        i, hashlib.md5(b"%d" % i).hexdigest()[:12].upper().encode(), i * 7, i % 997, i % 100),
    "sha1sum output": lambda i: b"%s  file%d\n" % (hashlib.sha1(b"%d" % i).hexdigest().encode(),
                                                   i),
}


@pytest.mark.parametrize("kind", CONTROLS)
def test_ordinary_columns_stay_text(clam_engine: Engine, kind: str) -> None:
    small = _fill(CONTROLS[kind], 20_000)
    assert not list(textcarriers._columns(small)), kind
    report = clam_engine.scan_bytes(small, "data.txt")
    assert report.names == (), kind
    if kind != "CSV":  # (its ACCT and hex codes were decoded as groups before this round)
        assert len(report.layers) == 1, kind
    big = _fill(CONTROLS[kind], 5 << 20)
    t0 = cpu.process_time()
    found = list(textcarriers._columns(big))
    assert cpu.process_time() - t0 < 5.0, kind  # (the whole text read as if dense)
    assert not found, kind


# -- round 20 b11, b70: percent-encoding and a Python bytes literal ---------------------------

_PERCENT = urllib.parse.quote(CLAM.read_bytes(), safe="")
_ORACLES = {  # the recipient's one standard decoder (python3's standard library)
    "b11 percent-encoded, wrapped at 76": (
        "\n".join(_chunks(_PERCENT, 76)) + "\n",
        "import sys, urllib.parse; sys.stdout.buffer.write(urllib.parse.unquote_to_bytes("
        "sys.stdin.read().replace(chr(10), '')))"),
    "b70 bytes repr": (
        repr(CLAM.read_bytes()) + "\n",
        "import ast, sys; sys.stdout.buffer.write(ast.literal_eval(sys.stdin.read()))"),
}


@pytest.mark.parametrize("case", _ORACLES)
def test_an_encoding_python_decodes_is_decoded(
        clam_engine: Engine, tmp_path: Path, case: str) -> None:
    body, program = _ORACLES[case]
    out = subprocess.run([sys.executable, "-c", program], input=body.encode(),
                         capture_output=True, check=True)
    assert out.stdout == CLAM.read_bytes(), case
    msg = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\nHello,\r\n\r\n" + \
        body.replace("\n", "\r\n").encode() + b"\r\nBye\r\n"
    assert clam_engine.scan_bytes(msg).names == (CLAM_NAME,), case
    assert clam_engine.scan_bytes(body.encode(), "data.txt").names == (CLAM_NAME,), case


def test_urls_and_percentages_stay_text() -> None:
    urls = b"".join(b"https://x.test/search?q=caf%%C3%%A9%%20au%%20lait%%2Fmenu&page=%d&s=%%7E%d\n"
                    % (i, i) for i in range(2000))
    shares = b"".join(b"%d%%,%d%%,%d%%,%d%%,%d%%\n" % (i, i + 1, i + 2, i + 3, i + 4)
                      for i in range(2000))
    code = b"".join(b"x%d = b'\\x00\\x01' + b'abc'  # flags %d\n" % (i, i) for i in range(2000))
    for text in (urls, shares, code):
        assert not list(textcarriers._percent_lines(text))
        assert not list(textcarriers._bytes_literals(text))
    t0 = cpu.process_time()
    for text in (urls, shares):
        assert not list(textcarriers._percent_lines(text * 60))  # ~5 MB
    assert cpu.process_time() - t0 < 5.0


# -- round 20 b40: JSON records of a counter and a chunk, shuffled -----------------------------

def _json_chunks() -> str:
    records = [{"i": i, "d": c} for i, c in enumerate(_chunks(_B64, 40))]
    random.Random(5).shuffle(records)
    return "[\n" + ",\n".join(json.dumps(r, indent=0) for r in records) + "\n]\n"


def test_shuffled_json_records_are_sorted_by_their_number(
        clam_engine: Engine, tmp_path: Path) -> None:
    body = _json_chunks()
    out = subprocess.run(["sh", "-c", "jq -r 'sort_by(.i)[].d' | base64 -d"],
                         input=body.encode(), capture_output=True, check=True)
    assert out.stdout == CLAM.read_bytes()  # the oracle: jq
    msg = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\nHello,\r\n\r\n" + \
        body.replace("\n", "\r\n").encode() + b"\r\nBye\r\n"
    assert clam_engine.scan_bytes(msg).names == (CLAM_NAME,)
    assert clam_engine.scan_bytes(body.encode(), "data.json").names == (CLAM_NAME,)


def test_json_records_of_codes_stay_text() -> None:
    text = json.dumps([{"id": i, "sku": f"SKU{i:07d}X"} for i in range(3000)], indent=1).encode()
    assert not list(textcarriers._json_records(text))
    t0 = cpu.process_time()
    assert not list(textcarriers._json_records(text * 30))  # ~4 MB
    assert cpu.process_time() - t0 < 5.0
