"""`zerohour demo`: provider, gateway and sink on this machine; an outbreak from start to end."""

from __future__ import annotations

import argparse


def _demo(args: argparse.Namespace) -> int:
    from zerohour.demo.story import run_demo

    def say(line: str) -> None:
        print(line, flush=True)

    return run_demo(keep=args.keep, timeout=args.timeout, say=say)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="play an outbreak on this machine (provider, gateway, sink)",
        description="Start a provider, a gateway and an SMTP sink on 127.0.0.1 (temp folders, "
        "ephemeral ports), send clean and infected mail, declare an outbreak (mail is held), "
        "publish a signature (held mail is rescanned: infected to quarantine, clean delivered), "
        "and print a summary. Everything is stopped at the end, also on Ctrl-C. Exit 0 when no "
        "infected message was delivered and every clean message arrived exactly once.",
    )
    p.add_argument("--keep", action="store_true", help="keep the data folders and logs")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds allowed for each step (default 120)"
    )
    p.set_defaults(func=_demo)
