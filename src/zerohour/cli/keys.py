"""`zerohour keys ...`: inspect a pinned provider key and verify notice envelopes offline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zerohour.errors import ConfigError, NoticeError


def cmd_show(args: argparse.Namespace) -> int:
    from zerohour.notices.keys import load_pinned_key

    pinned = load_pinned_key(args.key)
    if args.json:
        print(
            json.dumps({"provider": pinned.provider, "keyid": pinned.keyid, "key": pinned.text()})
        )
    else:
        print(f"provider {pinned.provider}")
        print(f"keyid {pinned.keyid}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify an envelope file against a pinned key; print the payload (exit 1 if refused)."""
    from zerohour.notices.envelope import open_envelope
    from zerohour.notices.keys import load_pinned_key
    from zerohour.notices.payload import parse_payload

    pinned = load_pinned_key(args.key)
    try:
        raw = Path(args.envelope).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.envelope}: {exc.strerror}") from None
    try:
        _, payload = open_envelope(raw, {pinned.keyid: pinned.public_key})
        notice = parse_payload(payload)
    except NoticeError as exc:
        print(f"refused: {exc.reason}: {exc}")
        return 1
    if notice.provider != pinned.provider:
        print("refused: wrong_provider")
        return 1
    print(json.dumps(json.loads(payload), indent=None if args.json else 2, sort_keys=True))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="inspect provider keys and verify notices offline")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    show = ksub.add_parser("show", help="provider name and key id of a pinned key")
    show.add_argument("key", help="key text '<provider> ed25519:<base64>' or a file holding it")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    ver = ksub.add_parser("verify", help="verify a notice envelope file and print its payload")
    ver.add_argument("envelope")
    ver.add_argument("--key", required=True, help="pinned key text or file")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_verify)
