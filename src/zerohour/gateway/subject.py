"""The Subject of a message, decoded, for the admin lists and their search.

Read in the scanner worker next to the scan (the body is already in memory there) and stored in
the scan summary, so a list page or a search never parses a spooled body. Only the header block
is parsed (bounded); RFC 2047 words are decoded; control characters become spaces. It is
peer-supplied text: the dashboard escapes it like any other.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import re

MAX_HEADER_BYTES = 256 * 1024
MAX_SUBJECT = 500
_END = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")


def subject_of(raw: bytes) -> str:
    """The decoded Subject ("" when there is none); never raises."""
    head = raw[:MAX_HEADER_BYTES]
    end = _END.search(head)
    if end is not None:
        head = head[: end.start()]
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
        value = msg.get("Subject")
        if value is None:
            return ""
        try:
            text = str(email.header.make_header(email.header.decode_header(str(value))))
        except (ValueError, LookupError, UnicodeError):
            text = str(value)
    except Exception:  # a hostile header block must not cost the scan its summary
        return ""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_SUBJECT else text[:MAX_SUBJECT] + "…"
