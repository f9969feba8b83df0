"""`log_format` (issue 12): text or one JSON object per line, chosen by setting, environment or
flag; a wrong value is a clear error; the JSON form carries the structured fields of the mail
log and keeps a traceback on its one line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from zerohour.config import load
from zerohour.errors import ConfigError
from zerohour.gateway import maillog
from zerohour.gateway.receive import clean
from zerohour.logs import GATEWAY_TEXT, JsonFormatter, TextFormatter
from zerohour.store.base import RecipientStatus


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`script` run by this interpreter in a process of its own (logging set-up is global)."""
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=60, check=False)


def zerohour(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerohour", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_log_format_layers(tmp_path: Path) -> None:
    assert load(env={}).log_format == "text"
    f = tmp_path / "gw.toml"
    f.write_text('log_format = "json"\n')
    assert load(f, env={}).log_format == "json"
    assert load(f, env={"ZEROHOUR_LOG_FORMAT": "TEXT"}).log_format == "text"
    assert load(env={}, flags={"log_format": "json"}).log_format == "json"


def test_bad_log_format_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log_format: expected text or json, got 'xml'"):
        load(env={"ZEROHOUR_LOG_FORMAT": "xml"})
    f = tmp_path / "gw.toml"
    f.write_text('log_format = "syslog"\n')
    done = zerohour("config", "check", "--config", str(f), "--data-dir", str(tmp_path))
    assert done.returncode != 0
    assert "log_format: expected text or json, got 'syslog'" in done.stderr
    flag = zerohour("gateway", "run", "--log-format", "xml", "--data-dir", str(tmp_path))
    assert flag.returncode != 0
    assert "--log-format" in flag.stderr
    assert "invalid choice: 'xml'" in flag.stderr


def test_config_check_shows_the_flag(tmp_path: Path) -> None:
    done = zerohour(
        "config", "check", "--json", "--log-format", "json", "--data-dir", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["log_format"] == "json"


def _record(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if r.name == "zerohour.mail"]
    return record


def test_json_line_carries_the_mail_log_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="zerohour.mail")
    maillog.delivery(
        "Q1",
        "bob@example.test",
        RecipientStatus.BOUNCED,
        "550 5.1.1 <bob@example.test>: no such user\r\nINJECTED",
        relay="mx.example.test[192.0.2.7]:25",
        delay=3.456,
        delays=(0.0, 3.0, 0.456),
    )
    line = JsonFormatter().format(_record(caplog))
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["logger"] == "zerohour.mail"
    assert obj["level"] == "INFO"
    assert obj["queue_id"] == "Q1"
    assert (obj["to"], obj["status"], obj["dsn"]) == ("bob@example.test", "bounced", "5.1.1")
    assert (obj["relay"], obj["delay"], obj["delays"]) == (
        "mx.example.test[192.0.2.7]:25",
        3.456,
        "0/3/0.46",
    )
    assert obj["detail"] == "550 5.1.1 <bob@example.test>: no such user\\x0d\\x0aINJECTED"
    assert obj["msg"] == (
        "Q1: to=<bob@example.test>, relay=mx.example.test[192.0.2.7]:25, delay=3.46, "
        "delays=0/3/0.46, dsn=5.1.1, status=bounced "
        "(550 5.1.1 <bob@example.test>: no such user\\x0d\\x0aINJECTED)"
    )


def test_json_keeps_a_traceback_on_one_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = logging.getLogger("zerohour.test").makeRecord(
            "zerohour.test", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["msg"] == "failed x"
    assert "RuntimeError: boom\nsecond line" in obj["exc"]


@pytest.mark.parametrize(
    ("result", "detail", "dsn"),
    [
        (RecipientStatus.DELIVERED, "250 2.6.0 Ok", "2.6.0"),
        (RecipientStatus.DELIVERED, "250 Ok queued", "2.0.0"),
        (RecipientStatus.DEFERRED, "451 4.3.0 try later", "4.3.0"),
        (RecipientStatus.DEFERRED, "421 too busy", "4.0.0"),
        (RecipientStatus.DEFERRED, "connect to 127.0.0.1:1: refused", "4.4.1"),
        (RecipientStatus.BOUNCED, "550 5.1.1 unknown", "5.1.1"),
        (RecipientStatus.BOUNCED, "554 no", "5.0.0"),
        (RecipientStatus.BOUNCED, "queue lifetime exceeded: connect to x: refused", "4.4.7"),
        (RecipientStatus.BOUNCED, "MX lookup for x.test: NXDOMAIN", "5.0.0"),
    ],
)
def test_dsn_code_of_a_result(result: RecipientStatus, detail: str, dsn: str) -> None:
    assert maillog.dsn_of(result, detail) == dsn


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0"), (0.004, "0"), (0.3, "0.3"), (1.256, "1.26"), (12.0, "12"), (345.6, "346")],
)
def test_delay_numbers_are_short(value: float, text: str) -> None:
    assert maillog.seconds(value) == text


def test_lines_logged_in_one_loop_turn_are_written_together_and_in_order() -> None:
    """The gateway's handler writes once per event-loop iteration; warnings and lines from
    outside a loop go out at once, after what was buffered; nothing is left at exit."""
    script = (
        "import asyncio, logging, os, sys\n"
        "from zerohour.logs import setup_logging\n"
        "setup_logging()\n"
        "writes = []\n"
        "real = sys.stderr.write\n"
        "sys.stderr.write = lambda s: (writes.append(s), real(s))[1]\n"
        "log = logging.getLogger('t')\n"
        "async def main():\n"
        "    log.info('a'); log.info('b')\n"
        "    assert writes == [], writes\n"
        "    await asyncio.sleep(0)\n"
        "    assert len(writes) == 1 and writes[0].count('\\n') == 2, writes\n"
        "    log.info('c'); log.warning('d')\n"
        "    assert len(writes) == 2, writes\n"
        "    log.info('e')\n"
        "asyncio.run(main())\n"
        "log.info('f')\n"
    )
    r = _python(script)
    assert r.returncode == 0, r.stderr
    words = [line.rsplit(" ", 1)[-1] for line in r.stderr.splitlines()]
    assert words == ["a", "b", "c", "d", "e", "f"]


def test_text_lines_stamp_time_as_logging_does() -> None:
    # the cached date and time (`TextFormatter`) across second boundaries, against logging's own
    fmt, ours = logging.Formatter(GATEWAY_TEXT), TextFormatter(GATEWAY_TEXT)
    base = 1_796_000_000.0
    for t in (base + 0.0004, base + 0.9996, base + 1.0, base + 1.5, base + 0.25, base + 86400.7):
        record = logging.LogRecord("zerohour.mail", logging.INFO, "", 0, "A1: removed", (), None)
        record.created, record.msecs = t, (t - int(t)) * 1000 // 1 + 0.0
        assert ours.format(record) == fmt.format(record)
    record.msecs = 999.0
    assert ours.format(record) == fmt.format(record)
    assert ours.formatTime(record, "%H") == fmt.formatTime(record, "%H")


def test_records_skip_what_no_line_shows() -> None:
    script = (
        "import logging, multiprocessing, sys\n"
        "from zerohour.logs import setup_logging\n"
        "setup_logging(text_format=sys.argv[1])\n"
        "r = logging.getLogger('t').makeRecord('t', 20, 'f', 1, 'm', (), None)\n"
        "print(r.process, r.processName, r.thread, logging._srcfile is None)\n"
    )

    def run(text_format: str) -> str:
        out = _python(script, text_format)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run(GATEWAY_TEXT) == "None None None True"
    shown = run("%(process)d %(processName)s %(thread)d %(lineno)d %(message)s").split()
    assert shown[0].isdigit()
    assert shown[1] == "MainProcess"
    assert shown[2].isdigit()
    assert shown[3] == "False"


@pytest.mark.parametrize("formatter", [TextFormatter(GATEWAY_TEXT), JsonFormatter()])
def test_direct_lines_are_the_lines_logging_makes(formatter: logging.Formatter) -> None:
    fields = {"queue_id": "A1", "event": "received", "from": "a@b", "size": 5, "msg": "no"}
    for created in (1_796_000_000.0004, 1_796_000_000.9996, 1_796_000_001.5):
        record = logging.LogRecord("zerohour.mail", logging.INFO, "", 0, "%s", ("A1: x",), None)
        record.created, record.msecs = created, float(int((created - int(created)) * 1000))
        record.fields = fields
        line = formatter.line("zerohour.mail", "INFO", "A1: x", created, fields)  # type: ignore[attr-defined]
        assert line == formatter.format(record)


def test_text_formats_with_other_attributes_go_through_logging() -> None:
    assert TextFormatter(GATEWAY_TEXT).simple
    assert TextFormatter("%(asctime)s %(message)s").simple
    assert not TextFormatter("%(asctime)s %(process)d %(message)s").simple
    assert not TextFormatter("%(levelname)s 100%% %(message)s").simple


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_mail_log_lines_reach_the_handler_directly_and_through_logging(fmt: str) -> None:
    # the gateway's set-up writes directly; a second handler (an embedding application's, a
    # test's capture) makes every line go through logging, to both handlers
    script = (
        "import asyncio, io, logging, sys\n"
        "from zerohour.logs import setup_logging\n"
        "from zerohour.gateway import maillog\n"
        f"setup_logging(fmt={fmt!r})\n"
        "extra = io.StringIO()\n"
        "made = []\n"
        "make = logging.Logger.makeRecord\n"
        "logging.Logger.makeRecord = lambda *a, **k: made.append(1) or make(*a, **k)\n"
        "async def main():\n"
        "    maillog.client('Q1', '192.0.2.7', 'mx.example')\n"
        "    logging.getLogger('zerohour.mail').addHandler(logging.StreamHandler(extra))\n"
        "    maillog.removed('Q2')\n"
        "asyncio.run(main())\n"
        "logging.shutdown()\n"
        "print(len(made), extra.getvalue(), end='')\n"
    )
    out = _python(script)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 2
    assert out.stdout == "1 Q2: removed\n"  # one record made: the second line's
    if fmt == "text":
        assert lines[0].endswith(" INFO zerohour.mail Q1: client=unknown[192.0.2.7], "
                                 "helo=<mx.example>")
        assert lines[1].endswith(" INFO zerohour.mail Q2: removed")
        assert lines[0][:4].isdigit()
    else:
        first, second = (json.loads(x) for x in lines)
        assert first["msg"] == "Q1: client=unknown[192.0.2.7], helo=<mx.example>"
        assert first["queue_id"] == "Q1"
        assert first["event"] == "client"
        assert first["client_ip"] == "192.0.2.7"
        assert first["level"] == "INFO"
        assert first["logger"] == "zerohour.mail"
        assert second["event"] == "removed"


def test_peer_text_cannot_break_or_reorder_a_text_log_line() -> None:
    # C0/C1 controls, Unicode line and paragraph separators, bidirectional overrides
    text = "a\u2028b\u2029c\x85d\u202ee\u2066f\u200fg\r\n\x1b[31mh é 中"
    assert clean(text) == ("a\\u2028b\\u2029c\\x85d\\u202ee\\u2066f\\u200fg\\x0d\\x0a\\x1b[31m"
                           "h é 中")
    assert clean(text).splitlines() == [clean(text)]
