"""One pure function from (scan result, active outbreaks, policy) to what happens to a message.

`decide()` reads a `ScanSummary` rather than the engine's full `ScanReport`: the summary keeps
exactly what a decision needs (findings, size, attachment presence, true file-type categories,
every layer's digests) and is stored with the message, so the delivery queue can re-decide before
every attempt (an outbreak declared after the message was scanned) without rescanning it.

Order of precedence: scanner error, then signature findings, then outbreak checksums (quarantine
as `Outbreak.<name>.Checksum`), then hold-mode outbreaks whose scope matches, then delivery.

Fail closed: a scan that could not take the whole message apart (any engine error, even with
the top layer scanned) is an error, never "clean". Before the 250 it is a tempfail (451 4.3.0);
after the 250 it is a quarantine, unless the operator chose `scan.deliver_unscanned`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from zerohour.config import HoldMode, InfectedPolicy
from zerohour.notices.model import Checksum, OutbreakMode, OutbreakSpec
from zerohour.scan.filetype import type_category
from zerohour.scan.types import FileType, LayerInfo, ScanReport

#: The finding name a message quarantined for a failed scan carries.
SCAN_ERROR_NAME = "Heuristics.ScanError"


class Action(StrEnum):
    DELIVER = "deliver"
    HOLD = "hold"
    HOLD_ATTACHMENTS = "hold_attachments"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    DISCARD = "discard"
    TEMPFAIL = "tempfail"


@dataclass(frozen=True, slots=True)
class Policy:
    infected: InfectedPolicy = InfectedPolicy.REJECT
    hold_mode: HoldMode = HoldMode.WHOLE
    deliver_unscanned: bool = False
    can_reject: bool = True  # False once the 250 went out: a reject becomes a quarantine


@dataclass(frozen=True, slots=True)
class Digest:
    """A layer's (or a PE section's, `part="pe-section:<name>"`) hashes."""

    part: str
    size: int
    md5: str
    sha256: str
    path: str = ""


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """What `decide()` needs from a scan, small enough to store with the message."""

    size: int
    db_version: str
    findings: tuple[str, ...] = ()
    error: str = ""  # non-empty: the scan failed
    has_attachment: bool = False
    categories: tuple[str, ...] = ()  # true-type categories of attachments and their members
    digests: tuple[Digest, ...] = ()
    attachment_paths: tuple[str, ...] = ()
    # For the admin lists and search only (decide() never reads them): the Subject, each
    # attachment layer (path, name, true type, size; capped) and where each finding matched.
    subject: str = ""
    attachments: tuple[tuple[str, str, str, int], ...] = ()
    finding_paths: tuple[tuple[str, str], ...] = ()

    @property
    def infected(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "db_version": self.db_version,
            "findings": list(self.findings),
            "error": self.error,
            "has_attachment": self.has_attachment,
            "categories": list(self.categories),
            "digests": [[d.part, d.size, d.md5, d.sha256, d.path] for d in self.digests],
            "attachment_paths": list(self.attachment_paths),
            "subject": self.subject,
            "attachments": [list(a) for a in self.attachments],
            "finding_paths": [list(f) for f in self.finding_paths],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ScanSummary:
        return cls(
            size=int(obj["size"]),
            db_version=str(obj.get("db_version", "")),
            findings=tuple(obj.get("findings", ())),
            error=str(obj.get("error", "")),
            has_attachment=bool(obj.get("has_attachment", False)),
            categories=tuple(obj.get("categories", ())),
            digests=tuple(Digest(*d) for d in obj.get("digests", ())),
            attachment_paths=tuple(obj.get("attachment_paths", ())),
            subject=str(obj.get("subject", "")),
            attachments=tuple(
                (str(a[0]), str(a[1]), str(a[2]), int(a[3])) for a in obj.get("attachments", ())
            ),
            finding_paths=tuple((str(f[0]), str(f[1])) for f in obj.get("finding_paths", ())),
        )

    @classmethod
    def failed(cls, size: int, error: str, db_version: str = "") -> ScanSummary:
        return cls(size=size, db_version=db_version, error=error or "scan failed")


#: True types a mail client shows inline as text; any other leaf below the top is offered as an
#: attachment whether or not it has a name or a Content-Disposition.
_INLINE_TYPES = frozenset({FileType.TEXT, FileType.HTML, FileType.MAIL})


def _is_attachment_root(layer: LayerInfo) -> bool:
    return layer.is_attachment or (layer.depth >= 1 and layer.filetype not in _INLINE_TYPES)


#: At most this many attachment layers are listed in a summary (the digests keep them all).
MAX_LISTED_ATTACHMENTS = 100


def summarize(report: ScanReport, size: int, subject: str = "") -> ScanSummary:
    """Reduce an engine report to a `ScanSummary` (done once, in the scanner process).

    For scope, an attachment is what a mail client would offer as one: a named part, a part
    with `Content-Disposition: attachment`, or any non-text part (its true type by content).
    """
    att_roots = [ly.path for ly in report.layers if _is_attachment_root(ly)]

    def in_attachment(layer: LayerInfo) -> bool:
        return _is_attachment_root(layer) or any(
            layer.path.startswith(root + "/") for root in att_roots
        )

    cats: set[str] = set()
    digests: list[Digest] = []
    listed: list[tuple[str, str, str, int]] = []
    for ly in report.layers:
        digests.append(Digest("file", ly.size, ly.md5, ly.sha256, ly.path))
        for sec in ly.pe_sections:
            digests.append(Digest(f"pe-section:{sec.name}", sec.size, sec.md5, sec.sha256, ly.path))
        if in_attachment(ly):
            if len(listed) < MAX_LISTED_ATTACHMENTS:
                name = "".join(ch if ch >= " " else " " for ch in ly.name or "")[:300]
                listed.append((ly.path, name, ly.filetype.value, ly.size))
            c = type_category(ly.filetype)
            if c:
                cats.add(c)
    return ScanSummary(
        size=size,
        db_version=report.db_version,
        findings=report.names,
        error="; ".join(report.errors),
        has_attachment=bool(att_roots),
        categories=tuple(sorted(cats)),
        digests=tuple(digests),
        attachment_paths=tuple(att_roots),
        subject=subject,
        attachments=tuple(listed),
        finding_paths=tuple((f.name, f.path) for f in report.findings),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    names: tuple[str, ...] = ()  # virus or outbreak finding names
    outbreak_ids: tuple[str, ...] = ()  # the outbreaks holding the message


def _checksum_matches(c: Checksum, d: Digest) -> bool:
    if c.part != d.part:
        return False
    if c.size is not None and c.size != d.size:
        return False
    return (d.sha256 if c.algo == "sha256" else d.md5) == c.digest


def in_scope(spec: OutbreakSpec, s: ScanSummary) -> bool:
    """Does a hold-mode outbreak's scope cover this message? (`all` wins; else every criterion.)"""
    sc = spec.scope
    if sc.all:
        return True
    if sc.has_attachment and not s.has_attachment:
        return False
    if sc.file_types and not set(sc.file_types) & set(s.categories):
        return False
    if sc.min_size is not None and s.size < sc.min_size:
        return False
    return not (sc.max_size is not None and s.size > sc.max_size)


def decide(
    report: ScanSummary | None, outbreaks: Iterable[OutbreakSpec], policy: Policy
) -> Decision:
    """The whole decision, pure: same inputs, same `Decision`."""
    if report is None or report.error:
        why = "not scanned" if report is None else f"scan error: {report.error}"
        if policy.deliver_unscanned:
            return Decision(Action.DELIVER, f"{why}; delivered unscanned by policy")
        if not policy.can_reject:  # ours since the 250: never delivered unscanned
            return Decision(Action.QUARANTINE, why, (SCAN_ERROR_NAME,))
        return Decision(Action.TEMPFAIL, why)
    if report.infected:
        act = {
            InfectedPolicy.REJECT: Action.REJECT,
            InfectedPolicy.QUARANTINE: Action.QUARANTINE,
            InfectedPolicy.DISCARD: Action.DISCARD,
        }[policy.infected]
        if act is Action.REJECT and not policy.can_reject:
            act = Action.QUARANTINE
        return Decision(act, "infected: " + ", ".join(report.findings), report.findings)
    specs: Sequence[OutbreakSpec] = list(outbreaks)
    for spec in specs:
        for c in spec.checksums:
            if any(_checksum_matches(c, d) for d in report.digests):
                name = f"Outbreak.{spec.name}.Checksum"
                return Decision(
                    Action.QUARANTINE,
                    f"outbreak {spec.outbreak_id} checksum match",
                    (name,),
                    (spec.outbreak_id,),
                )
    holding = tuple(
        spec.outbreak_id
        for spec in specs
        if spec.mode is OutbreakMode.HOLD and in_scope(spec, report)
    )
    if holding:
        action = Action.HOLD
        partial = all(not spec.scope.all for spec in specs if spec.outbreak_id in holding)
        if policy.hold_mode is HoldMode.ATTACHMENTS and partial and report.has_attachment:
            action = Action.HOLD_ATTACHMENTS
        return Decision(action, "held for outbreak " + ", ".join(holding), (), holding)
    return Decision(Action.DELIVER, "clean")
