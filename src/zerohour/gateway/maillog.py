"""The mail log: one line per message event, keyed by the queue id, in Postfix's grammar, so
`grep QUEUEID` tells a message's story and the tools written for Postfix logs read ours:

    QUEUEID: client=unknown[IP], helo=<NAME>
    QUEUEID: from=<SENDER>, size=N, nrcpt=N, verdict=clean, scan=0.02
    QUEUEID: to=<RCPT>, relay=HOST[IP]:PORT, delay=0.31, delays=0/0.05/0.26, dsn=2.0.0,
        status=sent (250 2.0.0 Ok)          (one line; per recipient; also deferred, bounced)
    QUEUEID: actor=outbreak, status=released (...)      held, quarantined, rejected, discarded...
    QUEUEID: sender non-delivery notification: DSNID
    QUEUEID: removed

The client name is "unknown", as Postfix logs it with `smtpd_peername_lookup = no`: a reverse
lookup per message is work (and a DNS dependency) the gateway does not take on. Every value a
peer chose is passed through `receive.clean` (control characters escaped, length bounded), so
it cannot end a line or forge one. The same values go as `extra={"fields": ...}` to the JSON
format (`zerohour.logs`). Nothing is formatted when INFO is off.
"""

from __future__ import annotations

import logging
from typing import Any

from zerohour.gateway.receive import clean
from zerohour.logs import info_line
from zerohour.store.base import MessageState, RecipientStatus

log = logging.getLogger("zerohour.mail")

#: The `status=` word of each message state (message-level events).
STATUS: dict[MessageState, str] = {
    MessageState.RECEIVED: "received",
    MessageState.QUEUED: "queued",
    MessageState.HELD: "held",
    MessageState.QUARANTINED: "quarantined",
    MessageState.DISCARDED: "discarded",
    MessageState.REJECTED: "rejected",
    MessageState.DELIVERED: "sent",
    MessageState.BOUNCED: "bounced",
    MessageState.DELETED: "deleted",
}

#: Postfix's `status=` words for a recipient's delivery result.
RCPT_STATUS: dict[RecipientStatus, str] = {
    RecipientStatus.DELIVERED: "sent",
    RecipientStatus.DEFERRED: "deferred",
    RecipientStatus.BOUNCED: "bounced",
    RecipientStatus.PENDING: "pending",
}


def _emit(qid: str, text: str, fields: dict[str, Any]) -> None:
    info_line(log, f"{qid}: {text}", {"queue_id": qid, **fields})


def seconds(value: float) -> str:
    """Postfix's short delay form: two decimals at most, no trailing zeros ("0", "0.3", "12")."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{max(0.0, value):.2f}".rstrip("0").rstrip(".") or "0"


def client(qid: str, peer: str, helo: str) -> None:
    """At receipt: who sent it."""
    if not log.isEnabledFor(logging.INFO):
        return
    ip, name = clean(peer, 64), clean(helo, 100)
    _emit(
        qid,
        f"client=unknown[{ip}], helo=<{name}>",
        {"event": "client", "client": f"unknown[{ip}]", "client_ip": ip, "helo": name},
    )


def received(
    qid: str,
    sender: str,
    size: int,
    nrcpt: int,
    verdict: str = "",
    scan: float | None = None,
) -> None:
    """The envelope of a message taken in (and the scan that decided it, if one did)."""
    if not log.isEnabledFor(logging.INFO):
        return
    frm = clean(sender)
    text = f"from=<{frm}>, size={size}, nrcpt={nrcpt}"
    fields: dict[str, Any] = {"event": "received", "from": frm, "size": size, "nrcpt": nrcpt}
    if verdict:
        text += f", verdict={verdict}"
        fields["verdict"] = verdict
    if scan is not None:
        text += f", scan={seconds(scan)}"
        fields["scan"] = round(scan, 3)
    _emit(qid, text, fields)


def status(qid: str, word: str, detail: str, *, actor: str = "") -> None:
    """A message-level outcome: held, quarantined, rejected, released, discarded..."""
    if not log.isEnabledFor(logging.INFO):
        return
    why = clean(detail, 500)
    fields: dict[str, Any] = {"event": "status", "status": word, "detail": why}
    text = f"status={word} ({why})"
    if actor:
        text = f"actor={actor}, {text}"
        fields["actor"] = actor
    _emit(qid, text, fields)


def delivery(
    qid: str,
    rcpt: str,
    result: RecipientStatus,
    detail: str,
    *,
    relay: str,
    delay: float,
    delays: tuple[float, float, float],
) -> None:
    """One recipient's delivery attempt. `delays`: before the queue (scan, hold), in the queue
    (waiting, earlier attempts), this attempt (connection and transmission)."""
    if not log.isEnabledFor(logging.INFO):
        return
    to, why, word = clean(rcpt), clean(detail, 500), RCPT_STATUS[result]
    code, spent = dsn_of(result, detail), "/".join(seconds(d) for d in delays)
    hop = clean(relay or "none", 300)
    _emit(
        qid,
        f"to=<{to}>, relay={hop}, delay={seconds(delay)}, delays={spent}, dsn={code}, "
        f"status={word} ({why})",
        {
            "event": "delivery",
            "to": to,
            "relay": hop,
            "delay": round(delay, 3),
            "delays": spent,
            "dsn": code,
            "status": word,
            "detail": why,
        },
    )


def dsn_notice(qid: str, dsn_id: str) -> None:
    """A bounce message to the sender was queued (Postfix's wording)."""
    if not log.isEnabledFor(logging.INFO):
        return
    _emit(
        qid,
        f"sender non-delivery notification: {dsn_id}",
        {"event": "dsn", "dsn_id": dsn_id},
    )


def removed(qid: str) -> None:
    """The message is done here: its body left the spool."""
    if not log.isEnabledFor(logging.INFO):
        return
    _emit(qid, "removed", {"event": "removed"})


def dsn_of(result: RecipientStatus, detail: str) -> str:
    """The RFC 3463 code of a result: the next hop's enhanced code when its reply had one, else
    the class default (4.4.1 for a connection failure, 4.4.7 for an expired lifetime)."""
    code, _, rest = detail.partition(" ")
    esc = rest.split(" ", 1)[0]
    parts = esc.split(".")
    if (
        len(code) == 3
        and code.isdigit()
        and len(parts) == 3
        and all(p.isdigit() for p in parts)
        and parts[0] == code[0]
    ):
        return esc
    if detail.startswith("queue lifetime"):
        return "4.4.7"
    klass = {RecipientStatus.DELIVERED: "2", RecipientStatus.BOUNCED: "5"}.get(result, "4")
    if len(code) == 3 and code.isdigit() and code[0] in "245":
        klass = code[0]
    elif detail.startswith("connect"):
        return "4.4.1"
    return f"{klass}.0.0"
