"""What the scan summary keeps for the admin lists: the Subject, each attachment layer with its
true type, and where each finding matched (read from a real engine scan, not a second parse)."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

from hypothesis import given
from hypothesis import strategies as st

from admin.conftest import EICAR
from zerohour.gateway.decide import MAX_LISTED_ATTACHMENTS, ScanSummary, summarize
from zerohour.gateway.subject import MAX_SUBJECT, subject_of
from zerohour.scan import Engine, default_db_dirs
from zerohour.scan.types import FileType, LayerInfo, ScanReport


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_subject_is_decoded_bounded_and_free_of_control_characters() -> None:
    assert subject_of(b"From: a@b\r\nSubject: plain one\r\n\r\nbody") == "plain one"
    assert subject_of(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\r\n\r\n") == "Grüße aus"
    assert subject_of(b"Subject: folded\r\n  line\r\n\r\n") == "folded   line"
    assert subject_of(b"Subject: a\x00b\x1bc\r\n\r\n") == "a b c"
    assert subject_of(b"From: a@b\r\n\r\nSubject: in the body\r\n") == ""
    assert subject_of(b"") == ""
    assert subject_of(b"Subject: =?bogus-charset?q?x?=\r\n\r\n") != ""  # raw, not an error
    long = subject_of(b"Subject: " + b"x" * 5000 + b"\r\n\r\n")
    assert len(long) == MAX_SUBJECT + 1
    assert long.endswith("…")


def _subject_by_email_parser(raw: bytes) -> str:
    """The reference: what the full `email` header parser makes of it (the slow path)."""
    import email.header
    import email.parser
    import email.policy
    import re

    head = raw[:256 * 1024]
    end = re.search(rb"\r?\n\r?\n", head)
    if end is not None:
        head = head[: end.start()]
    value = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head).get(
        "Subject")
    if value is None:
        return ""
    text = str(email.header.make_header(email.header.decode_header(str(value))))
    text = re.sub(r"[\x00-\x08\x0a-\x1f\x7f]+", " ", text).strip()
    return text if len(text) <= MAX_SUBJECT else text[:MAX_SUBJECT] + "…"


@given(
    before=st.lists(st.sampled_from([b"From: a@b", b"To: c@d", b"X-Subject: no",
                                     b"Subject-Line: no", b"Received: x\r\n\ty"]), max_size=3),
    name=st.sampled_from([b"Subject", b"subject", b"SUBJECT"]),
    value=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    folds=st.lists(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                           max_size=10), max_size=2),
    gap=st.sampled_from([b"", b" ", b"  ", b"\t"]),
)
def test_the_quick_subject_equals_the_email_parsers(
    before: list[bytes], name: bytes, value: str, folds: list[str], gap: bytes
) -> None:
    line = name + b":" + gap + value.encode() + b"".join(b"\r\n " + f.encode() for f in folds)
    raw = b"\r\n".join([*before, line, b"Subject: second"]) + b"\r\n\r\nbody\r\n"
    assert subject_of(raw) == _subject_by_email_parser(raw)


def test_summary_lists_attachments_with_true_types_and_finding_paths() -> None:
    m = EmailMessage()
    m["Subject"] = "invoice"
    m.set_content("see attached")
    # declared a PDF, really a zip holding the EICAR test file
    m.add_attachment(
        _zip(**{"x.com": EICAR}), maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    m.add_attachment(b"plain words\n", maintype="text", subtype="plain", filename="notes.txt")
    raw = m.as_bytes()
    engine = Engine.from_dirs(default_db_dirs(), allmatch=True)
    s = summarize(engine.scan_bytes(raw, "mail"), len(raw), subject_of(raw))
    assert s.subject == "invoice"
    listed = {(name, ftype) for _path, name, ftype, _size in s.attachments}
    assert ("invoice.pdf", "zip") in listed
    assert ("x.com", "text") in listed  # EICAR is printable: its true type is text
    assert ("notes.txt", "text") in listed
    assert "mail/invoice.pdf/x.com" in {p for p, *_ in s.attachments}
    assert ("Eicar-Test-Signature", "mail/invoice.pdf/x.com") in s.finding_paths
    # the stored form round-trips
    assert ScanSummary.from_json(s.to_json()) == s
    # an older stored summary (no such keys) still loads
    old = {
        k: v for k, v in s.to_json().items() if k not in ("subject", "attachments", "finding_paths")
    }
    assert ScanSummary.from_json(old).attachments == ()


def test_attachment_list_is_capped() -> None:
    many = _zip(**{f"m{i}.txt": b"x%d" % i for i in range(MAX_LISTED_ATTACHMENTS + 20)})
    m = EmailMessage()
    m.set_content("x")
    m.add_attachment(many, maintype="application", subtype="zip", filename="many.zip")
    raw = m.as_bytes()
    s = summarize(Engine.from_dirs(default_db_dirs()).scan_bytes(raw, "mail"), len(raw))
    assert len(s.attachments) == MAX_LISTED_ATTACHMENTS
    assert len(s.digests) > MAX_LISTED_ATTACHMENTS  # every layer is still hashed


def test_listed_names_carry_no_control_characters() -> None:
    """A NUL in a stored name would make PostgreSQL refuse the summary's JSON in a search."""
    layers = (
        LayerInfo("mail", 0, 9, "", "", FileType.MAIL),
        LayerInfo("mail/a", 1, 4, "", "", FileType.ZIP, "a\x00b\nc.zip", True),
    )
    s = summarize(ScanReport((), layers), 9)
    assert [a[1] for a in s.attachments] == ["a b c.zip"]
