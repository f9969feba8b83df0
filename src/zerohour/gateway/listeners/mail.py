"""Control-address mail: extract the signed notice part; nothing else in the mail is trusted.

The gateway's receive step hands each message addressed to the control address to
`MailNoticeReceiver.handle` (and never delivers it). From, Subject, Date and the other headers
play no part in the decision: only the envelope's signature does.
"""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import Message

from zerohour.notices.envelope import MAX_ENVELOPE, NOTICE_TYPE
from zerohour.notices.verify import NoticeVerifier, Outcome, Result, Transport

log = logging.getLogger("zerohour.notices.mail")
MAX_PARTS = 50


def extract_notices(message: bytes) -> list[bytes]:
    """Decoded bodies of every `application/vnd.zerohour.notice+json` part (at most a few)."""
    msg: Message = email.message_from_bytes(message, policy=email.policy.compat32)
    found: list[bytes] = []
    for n, part in enumerate(msg.walk()):
        if n > MAX_PARTS:
            break
        if part.get_content_type() != NOTICE_TYPE:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            found.append(payload[: MAX_ENVELOPE + 1])  # one byte over: counted as oversize
    return found


class MailNoticeReceiver:
    def __init__(self, verifier: NoticeVerifier) -> None:
        self.verifier = verifier

    async def handle(self, message: bytes) -> list[Outcome]:
        """Feed every notice part; a mail with none is counted as `no_notice`."""
        try:
            parts = extract_notices(message)
        except Exception:  # a message the parser chokes on must not break the receive step
            log.exception("notice.mail_parse_failed")
            parts = []
        if not parts:
            self.verifier.tally(Transport.MAIL, "no_notice", None)
            return [Outcome(Result.REJECTED, "no_notice")]
        outcomes: list[Outcome] = []
        for p in parts[:4]:
            try:
                outcomes.append(await self.verifier.submit(p, Transport.MAIL))
            except Exception:
                self.verifier.tally(Transport.MAIL, "internal_error", None)
                log.exception("notice.mail_submit_failed")
                outcomes.append(Outcome(Result.REJECTED, "internal_error"))
        return outcomes
