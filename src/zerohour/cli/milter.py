"""`zerohour milter run`: the gateway behind Postfix's `smtpd_milters`, in the foreground until
SIGTERM/SIGINT. The same store, scanner, outbreak listeners and admin server as `gateway run`;
Postfix's smtpd receives the mail and we answer its milter protocol instead of SMTP."""

from __future__ import annotations

import argparse
import asyncio

from zerohour.cli.config_cmd import add_config_flags, config_from_args

DEFAULT_LISTEN = "127.0.0.1:10029"


def _run(args: argparse.Namespace) -> int:
    from zerohour.compose import serve
    from zerohour.config import HostPort
    from zerohour.logs import setup_logging

    listen = HostPort.parse(args.listen or DEFAULT_LISTEN, "--listen")
    args.listen = None  # not the SMTP listener's address: there is none in milter mode
    cfg = config_from_args(args)
    setup_logging(cfg.log_level, cfg.log_format)
    return asyncio.run(serve(cfg, milter=listen))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("milter", help="run as a Postfix milter (smtpd_milters)")
    msub = p.add_subparsers(dest="milter_command", metavar="COMMAND", required=True)
    run = msub.add_parser(
        "run",
        help="scan what Postfix's smtpd passes, refuse viruses in the SMTP dialogue",
        description="Answer Postfix's milter protocol (main.cf: smtpd_milters = "
        f"inet:{DEFAULT_LISTEN}). Viruses get 554 5.7.1 in Postfix's SMTP dialogue; clean mail "
        "is accepted with an X-Zerohour-Scan header; mail held for an outbreak or quarantined "
        "is kept in zerohour's store (Postfix discards its copy) and released through "
        "--next-hop: a Postfix smtpd without milters, e.g. 127.0.0.1:10026. "
        "Settings: defaults < --config FILE < ZEROHOUR_* env < flags.",
    )
    add_config_flags(run, listen_help=f"milter listen HOST:PORT (default {DEFAULT_LISTEN})")
    run.set_defaults(func=_run)
