"""`zerohour provider ...`: run the provider service and drive it from the lab."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zerohour.errors import ConfigError
from zerohour.notices.model import OutbreakMode

DEFAULT_DATA_DIR = "zerohour-provider"
DEFAULT_LISTEN = "127.0.0.1:8470"


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("ZEROHOUR_PROVIDER_DIR", DEFAULT_DATA_DIR))


def _out(args: argparse.Namespace, human: list[str], obj: dict[str, Any]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, sort_keys=True))
    else:
        for line in human:
            print(line)


def _open(args: argparse.Namespace) -> Any:
    from zerohour.provider.log import Provider

    return Provider(_data_dir(args), create=False)


def cmd_run(args: argparse.Namespace) -> int:
    from zerohour.logs import setup_logging
    from zerohour.provider.push import parse_hostport
    from zerohour.provider.server import ProviderService, serve

    setup_logging("info", args.log_format, "%(asctime)s %(levelname)s %(message)s")
    try:
        host, port = parse_hostport(args.listen)
        relay = parse_hostport(args.smtp_relay, default_port=25) if args.smtp_relay else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.heartbeat <= 0:
        raise ConfigError("--heartbeat must be positive")
    from zerohour.provider.targets import PushPolicy, parse_networks

    try:
        dns_server = parse_hostport(args.dns_server, default_port=53) if args.dns_server else None
        policy = PushPolicy(parse_networks(args.allow_push_target), dns_server)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    service = ProviderService(
        _data_dir(args), name=args.name, heartbeat=args.heartbeat, smtp_relay=relay, policy=policy
    )
    key_text = service.provider.current_key().text()

    def ready(url: str) -> None:
        print(f"provider {service.provider.name} listening on {url}", flush=True)
        print(f"data dir {service.data_dir}", flush=True)
        print(key_text, flush=True)

    asyncio.run(serve(service, host, port, ready))
    return 0


def cmd_gateway_add(args: argparse.Namespace) -> int:
    p = _open(args)
    try:
        token = p.add_gateway(args.name)
    finally:
        p.close()
    _out(
        args,
        [
            f"gateway {args.name}: give it this token (shown once; the provider keeps a hash):",
            f"  zerohour gateway run ... --subscription-token {token}",
            token,
        ],
        {"name": args.name, "token": token},
    )
    return 0


def cmd_gateway_revoke(args: argparse.Namespace) -> int:
    p = _open(args)
    try:
        dropped = p.revoke_gateway(args.name)
    finally:
        p.close()
    _out(
        args,
        [f"revoked gateway {args.name} ({dropped} subscriptions dropped)"],
        {"name": args.name, "subscriptions_dropped": dropped},
    )
    return 0


def cmd_gateway_list(args: argparse.Namespace) -> int:
    p = _open(args)
    try:
        creds = p.gateways()
        subs = p.subscriptions()
    finally:
        p.close()
    human = [f"{'NAME':<24} {'CREATED':<26} {'SUBS':>4}  STATE"]
    for c in creds:
        state = "active" if c.revoked_at is None else f"revoked {c.revoked_at}"
        human.append(f"{c.name:<24} {c.created_at:<26} {c.subscriptions:>4}  {state}")
    for sub in subs:
        smtp = sub.smtp or ("mx" if sub.control_address else "-")
        human.append(
            f"  {sub.credential}: gateway {sub.id[:16]} from {sub.source}: udp={sub.udp or '-'}"
            f" control={sub.control_address or '-'} smtp={smtp}"
        )
    _out(
        args,
        human,
        {
            "gateways": [
                {
                    "name": c.name,
                    "created_at": c.created_at,
                    "revoked_at": c.revoked_at,
                    "subscriptions": c.subscriptions,
                }
                for c in creds
            ],
            "subscriptions": [
                {
                    "gateway_id": sub.id,
                    "credential": sub.credential,
                    "source": sub.source,
                    "udp": sub.udp,
                    "control_address": sub.control_address,
                    "smtp": sub.smtp,
                }
                for sub in subs
            ],
        },
    )
    return 0


def cmd_key_show(args: argparse.Namespace) -> int:
    p = _open(args)
    try:
        pinned = p.current_key()
    finally:
        p.close()
    _out(
        args,
        [f"keyid {pinned.keyid}", pinned.text()],
        {"provider": pinned.provider, "keyid": pinned.keyid, "key": pinned.text()},
    )
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    from zerohour.provider.lab import parse_duration

    when = datetime.now(UTC).replace(microsecond=0)
    if args.after:
        when += parse_duration(args.after)
    p = _open(args)
    try:
        rot = p.rotate_key(when)
        text = f"{p.name} ed25519:{rot.next_public_key}"
    finally:
        p.close()
    _out(
        args,
        [f"next key {rot.next_keyid} valid from {when.isoformat()}", text],
        {"next_keyid": rot.next_keyid, "valid_from": when.isoformat(), "key": text},
    )
    return 0


def cmd_declare(args: argparse.Namespace) -> int:
    from zerohour.provider.lab import declare, parse_duration, parse_scope

    lifetime = parse_duration(args.expires) if args.expires else None
    p = _open(args)
    try:
        kwargs: dict[str, Any] = {}
        if lifetime is not None:
            kwargs["lifetime"] = lifetime
        seq, spec = declare(
            p,
            name=args.name,
            samples=[Path(s) for s in args.sample],
            scope=parse_scope(args.scope),
            mode=OutbreakMode(args.mode),
            **kwargs,
        )
    finally:
        p.close()
    _out(
        args,
        [
            f"declared {spec.name} (seq {seq}, mode {spec.mode.value}, "
            f"{len(spec.checksums)} checksums)",
            spec.outbreak_id,
        ],
        {"seq": seq, **spec.to_json()},
    )
    return 0


def cmd_end(args: argparse.Namespace) -> int:
    from zerohour.provider.lab import end

    p = _open(args)
    try:
        seq = end(p, args.outbreak_id, args.reason)
    finally:
        p.close()
    _out(
        args,
        [f"ended {args.outbreak_id} (seq {seq})"],
        {"seq": seq, "outbreak_id": args.outbreak_id},
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from zerohour.provider.lab import publish

    p = _open(args)
    try:
        seq, pub = publish(p, [Path(f) for f in args.files], args.covers)
    finally:
        p.close()
    _out(
        args,
        [f"published signatures version {pub.version} (seq {seq})", str(pub.version)],
        {"seq": seq, **pub.to_json()},
    )
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    from zerohour.provider.lab import retire

    p = _open(args)
    try:
        seq, pub = retire(p, args.names, args.reason)
    finally:
        p.close()
    _out(
        args,
        [
            f"retired {', '.join(args.names)}: published signatures version {pub.version}"
            f" (seq {seq})",
            str(pub.version),
        ],
        {"seq": seq, "retired": list(args.names), **pub.to_json()},
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    p = _open(args)
    try:
        sigs = p.signatures(retired=args.all)
        latest = p.latest_bundle()
    finally:
        p.close()
    version = latest.version if latest else 0
    human = [f"bundle version {version}: {sum(s.retired_in is None for s in sigs)} live"]
    human.append(f"{'NAME':<40} {'FILE':<20} {'VERSION':>7}  STATE")
    for s in sigs:
        state = "live" if s.retired_in is None else f"retired in {s.retired_in} ({s.reason})"
        human.append(f"{s.name:<40} {s.file:<20} {s.version:>7}  {state}")
    _out(
        args,
        human,
        {
            "version": version,
            "signatures": [
                {
                    "name": s.name,
                    "file": s.file,
                    "version": s.version,
                    "live": s.retired_in is None,
                    "retired_in": s.retired_in,
                    "reason": s.reason,
                }
                for s in sigs
            ],
        },
    )
    return 0


def cmd_from_sample(args: argparse.Namespace) -> int:
    from zerohour.provider.lab import hsb_line

    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"no such file {path}")
    print(hsb_line(path, args.name))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prov = sub.add_parser("provider", help="run the notice provider and act on it from the lab")
    psub = prov.add_subparsers(dest="provider_command", metavar="ACTION", required=True)

    def data(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help=f"provider data folder (default ./{DEFAULT_DATA_DIR})")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    run = psub.add_parser("run", help="serve notices (SSE, poll, UDP, e-mail) and bundles")
    data(run)
    run.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT (port 0: any free one)")
    run.add_argument("--name", help="provider name, fixed at first run (default zerohour-lab)")
    run.add_argument("--heartbeat", type=float, default=30.0, help="stream heartbeat seconds")
    run.add_argument(
        "--smtp-relay",
        help="HOST:PORT to send control mail through (default: the MX of each control address)",
    )
    run.add_argument(
        "--allow-push-target", action="append", default=[], metavar="CIDR",
        help="also push UDP/control mail to addresses in CIDR (repeatable); by default UDP goes "
        "only to the subscriber's own public address and mail only to public MX hosts",
    )
    run.add_argument("--dns-server", metavar="IP[:PORT]", help="resolver for MX lookups")
    run.add_argument(
        "--log-format", choices=("text", "json"), default="text",
        help="log lines as text (default) or one JSON object per line",
    )
    run.set_defaults(func=cmd_run)

    gw = psub.add_parser("gateway", help="per-gateway credentials for subscriptions")
    gsub = gw.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)
    gadd = gsub.add_parser("add", help="create a credential; prints the gateway's token last")
    data(gadd)
    gadd.add_argument("name")
    gadd.set_defaults(func=cmd_gateway_add)
    grev = gsub.add_parser("revoke", help="revoke a credential and drop its subscriptions")
    data(grev)
    grev.add_argument("name")
    grev.set_defaults(func=cmd_gateway_revoke)
    glist = gsub.add_parser("list", help="credentials and subscriptions")
    data(glist)
    glist.set_defaults(func=cmd_gateway_list)

    key = psub.add_parser("key", help="the provider's signing key")
    ksub = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    show = ksub.add_parser("show", help="print the public key gateways pin (last line)")
    data(show)
    show.set_defaults(func=cmd_key_show)
    rotate = ksub.add_parser("rotate", help="create the next key and announce it (key.rotated)")
    data(rotate)
    rotate.add_argument("--after", help="hand over after this duration (default now)")
    rotate.set_defaults(func=cmd_key_rotate)

    ob = psub.add_parser("outbreak", help="declare or end an outbreak")
    osub = ob.add_subparsers(dest="outbreak_command", metavar="ACTION", required=True)
    dec = osub.add_parser("declare", help="declare an outbreak (prints its id last)")
    data(dec)
    dec.add_argument("--name", required=True)
    dec.add_argument("--sample", action="append", default=[], metavar="FILE")
    dec.add_argument(
        "--scope", help="all | attachments,types=executable+archive,min_size=N,max_size=N"
    )
    dec.add_argument("--mode", choices=[m.value for m in OutbreakMode], default="hold")
    dec.add_argument("--expires", help="notice validity, e.g. 30m, 2h (default 1h)")
    dec.set_defaults(func=cmd_declare)
    end = osub.add_parser("end", help="end an outbreak (outbreak.ended)")
    data(end)
    end.add_argument("outbreak_id")
    end.add_argument("--reason", default="ended by the lab")
    end.set_defaults(func=cmd_end)

    sig = psub.add_parser("signatures", help="publish signature bundles")
    ssub = sig.add_subparsers(dest="signatures_command", metavar="ACTION", required=True)
    pub = ssub.add_parser(
        "publish", help="add signatures to the live set; publish it as the next bundle version"
    )
    data(pub)
    pub.add_argument("files", nargs="+", metavar="FILE")
    pub.add_argument("--covers", action="append", default=[], metavar="OUTBREAK_ID")
    pub.set_defaults(func=cmd_publish)
    ret = ssub.add_parser(
        "retire", help="drop live signatures (false positives) in the next bundle version"
    )
    data(ret)
    ret.add_argument("names", nargs="+", metavar="NAME")
    ret.add_argument("--reason", default="false positive")
    ret.set_defaults(func=cmd_retire)
    lst = ssub.add_parser("list", help="the live signature set (what every gateway has)")
    data(lst)
    lst.add_argument("--all", action="store_true", help="retired signatures too")
    lst.set_defaults(func=cmd_list)
    fs = ssub.add_parser("from-sample", help="print a .hsb line (sha256:size:Name)")
    fs.add_argument("file")
    fs.add_argument("--name", required=True)
    fs.set_defaults(func=cmd_from_sample)
