"""The Subject of a message, decoded, for the admin lists and their search.

Read in the scanner worker next to the scan (the body is already in memory there) and stored in
the scan summary, so a list page or a search never parses a spooled body. Only the header block
is parsed (bounded); RFC 2047 words are decoded; control characters become spaces. It is
peer-supplied text: the dashboard escapes it like any other.

Encoded words are decoded line by line up to each line's last `?=` (`scan.rfc2047`: a
Subject of words that never close cost 18 s at 160 KB through `decode_header`). The common
Subject (ASCII, no encoded words) is cut out with one regex: the `email` header
parser took ~190 us per message, about a tenth of the scan of a 5 KB message with an
attachment. Encoded or non-ASCII subjects still go through `email` (same result as before).
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import re

from zerohour.scan.rfc2047 import decoded_words

MAX_HEADER_BYTES = 256 * 1024
MAX_SUBJECT = 500
_MAX_ENCODED = 16 * 1024  # of a Subject's raw text, decoded (what makes 500 characters)
_END = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_SUBJECT = re.compile(rb"(?:\A|\n)subject:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I)


def subject_of(raw: bytes) -> str:
    """The decoded Subject ("" when there is none); never raises."""
    head = raw[:MAX_HEADER_BYTES]
    end = _END.search(head)
    if end is not None:
        head = head[: end.start()]
    quick = _SUBJECT.search(head)
    if quick is None and head.lower().find(b"subject") < 0:
        return ""
    if quick is not None and quick.group(1).isascii() and b"=?" not in quick.group(1):
        return _tidy(quick.group(1).decode("ascii"))
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
        value = msg.get("Subject")
        if value is None:
            return ""
        try:  # (a bounded read: only the first 500 characters are kept)
            words = decoded_words(str(value)[:_MAX_ENCODED])
            text = str(email.header.make_header(words))
        except (ValueError, LookupError, UnicodeError):
            text = str(value)
    except Exception:  # a hostile header block must not cost the scan its summary
        return ""
    return _tidy(text)


def _tidy(text: str) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_SUBJECT else text[:MAX_SUBJECT] + "…"
