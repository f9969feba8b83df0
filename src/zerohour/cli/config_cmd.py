"""`zerohour config check`: print the merged configuration (defaults < file < env < flags).

Also home of the flags every gateway-side command shares (`add_config_flags`,
`config_from_args`), so `gateway run`, `config check`, `quarantine`, `queue` and `hold` read the
same settings the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from zerohour import config


def add_config_flags(
    p: argparse.ArgumentParser,
    *,
    gateway: bool = True,
    listen_help: str = "SMTP listen HOST:PORT (default 127.0.0.1:2525)",
) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--data-dir", help="data folder (store, spool); default ./var")
    p.add_argument(
        "--store", metavar="URL|PATH",
        help="postgresql://... for a cluster of gateways, or a SQLite file "
        "(default <data-dir>/zerohour.sqlite3)",
    )
    if not gateway:
        return
    p.add_argument(
        "--log-format", choices=("text", "json"),
        help="log lines as text (default) or one JSON object per line",
    )
    p.add_argument("--listen", help=listen_help)
    p.add_argument(
        "--workers", type=int, metavar="N",
        help="SMTP processes sharing the listen port (smtp.workers; 0: one per core)",
    )
    p.add_argument("--next-hop", help="relay to HOST:PORT, or 'mx' for MX lookup")
    p.add_argument(
        "--relay-domain", action="append", default=None, metavar="DOMAIN",
        help="accept mail for DOMAIN from anywhere (repeatable)",
    )
    p.add_argument(
        "--relay-recipients", metavar="FILE",
        help="the recipients of the relay domains that exist (addresses and @domain lines, "
        "re-read on change); others get 550 5.1.1 at RCPT (Postfix's relay_recipient_maps)",
    )
    p.add_argument(
        "--verify-recipients", action="store_const", const=True, default=None,
        help="probe the next hop for each new recipient of the relay domains at RCPT time "
        "(cached); undeliverable ones get 550 5.1.1 (Postfix's reject_unverified_recipient)",
    )
    p.add_argument(
        "--mynetworks", action="append", default=None, metavar="CIDR",
        help="trusted client networks that may relay anywhere (repeatable; replaces the "
        "default 127.0.0.0/8 ::1/128; 'none' for no trusted network)",
    )
    p.add_argument(
        "--db", action="append", default=None, metavar="DIR",
        help="ClamAV-format signature folder (repeatable; default: the bundled starter db)",
    )
    p.add_argument(
        "--admin-listen", metavar="HOST:PORT",
        help="admin API and dashboard (default 127.0.0.1:8025 if free; 'off' to disable)",
    )
    p.add_argument("--provider", metavar="URL", help="outbreak notice provider base URL")
    p.add_argument("--provider-key", metavar="KEY|FILE", help="the provider's pinned public key")
    p.add_argument("--udp-listen", metavar="HOST:PORT", help="receive notices over UDP here")
    p.add_argument(
        "--control-address", metavar="ADDR",
        help="mail to this address is a notice: consumed, never delivered",
    )
    p.add_argument(
        "--control-smtp", metavar="HOST:PORT",
        help="where the provider should deliver control mail (default: the MX of the control "
        "address's domain)",
    )
    p.add_argument("--subscription-token", metavar="TOKEN",
                   help="this gateway's credential (`zerohour provider gateway add NAME`), "
                   "needed by --udp-listen and --control-address")


def config_from_args(args: argparse.Namespace) -> config.Config:
    flags: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "store": getattr(args, "store", None),
    }
    if hasattr(args, "listen"):
        nets = args.mynetworks
        if nets is not None and [n.lower() for n in nets] == ["none"]:
            nets = []
        flags.update(
            {
                "log_format": args.log_format,
                "smtp.listen": args.listen,
                "smtp.workers": args.workers,
                "delivery.next_hop": args.next_hop,
                "smtp.relay_domains": args.relay_domain,
                "smtp.relay_recipients": args.relay_recipients,
                "smtp.verify_recipients": args.verify_recipients,
                "smtp.mynetworks": nets,
                "scan.db_dirs": args.db,
                "admin.listen": args.admin_listen,
                "notices.provider": args.provider,
                "notices.provider_key": args.provider_key,
                "notices.udp_listen": args.udp_listen,
                "notices.control_address": args.control_address,
                "notices.control_smtp": args.control_smtp,
                "notices.subscription_token": args.subscription_token,
            }
        )
    return config.load(file=args.config, flags=flags)


def _check(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    data = cfg.to_dict()
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    for section, values in data.items():
        if isinstance(values, dict):
            for key, value in values.items():
                print(f"{section}.{key} = {json.dumps(value)}")
        else:
            print(f"{section} = {json.dumps(values)}")
    print("configuration OK")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="configuration commands")
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    check = csub.add_parser("check", help="validate and print the merged configuration")
    add_config_flags(check)
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(func=_check)
