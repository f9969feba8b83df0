"""`zerohour gateway run`: the SMTP gateway in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio

from zerohour.cli.config_cmd import add_config_flags, config_from_args


def _run(args: argparse.Namespace) -> int:
    from zerohour.compose import serve
    from zerohour.logs import setup_logging

    cfg = config_from_args(args)
    setup_logging(cfg.log_level, cfg.log_format)
    return asyncio.run(serve(cfg))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("gateway", help="run the SMTP gateway")
    gsub = p.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)
    run = gsub.add_parser(
        "run",
        help="receive, scan and relay mail",
        description="Receive mail over SMTP, spool it durably, scan it, and relay clean mail "
        "to the next hop. Settings: defaults < --config FILE < ZEROHOUR_* env < flags.",
    )
    add_config_flags(run)
    run.set_defaults(func=_run)
