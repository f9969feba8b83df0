"""The loop's side of the scanner pipe (`_Worker.exchange`): multiprocessing's framing, JSON
answers only (a taken-over worker must not reach the gateway through pickle), EOF on death."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from zerohour.gateway.scanner import _Generation, _Worker


class _Proc:
    pid = 0
    exitcode = 0

    def join(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


def _worker(answer: Any) -> tuple[_Worker, Any, threading.Thread]:
    parent, child = multiprocessing.Pipe(duplex=True)
    seen: list[Any] = []

    def serve() -> None:
        seen.append(child.recv())
        if answer is None:
            child.close()
        else:
            child.send_bytes(answer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    w = _Worker(_Proc(), parent, _Generation((), 1))  # type: ignore[arg-type]
    return w, seen, t


def _ask(w: _Worker, msg: object) -> Any:
    """One exchange, then the worker reaped on the same loop (its transport closed there: one
    left open would warn when collected, in whatever test runs then)."""

    async def run() -> Any:
        try:
            return await w.exchange(msg)
        finally:
            w.reap()
            for _ in range(3):  # close, then connection_lost
                await asyncio.sleep(0)

    return asyncio.run(run())


def test_request_and_json_answer_round_trip_in_multiprocessing_framing() -> None:
    body = os.urandom(300_000)  # larger than one socket buffer: written as the worker reads
    w, seen, t = _worker(json.dumps({"size": len(body), "findings": []}).encode())
    answer = _ask(w, (body, "q"))
    t.join(5)
    assert answer == {"size": len(body), "findings": []}
    assert seen == [(body, "q")]


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(os.environ["ZH_EVIL"]), "pwned"))


def test_a_pickled_answer_is_never_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    marker = tmp_path / "evil"
    monkeypatch.setenv("ZH_EVIL", str(marker))
    w, _seen, t = _worker(pickle.dumps(_Evil()))
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        _ask(w, (b"x", None))
    t.join(5)
    assert not marker.exists()


def test_a_worker_that_closes_its_pipe_is_eof() -> None:
    w, _seen, t = _worker(None)
    with pytest.raises(EOFError):
        _ask(w, (b"x", None))
    t.join(5)
