"""`decide()` is pure: these are plain unit tests over values."""

from __future__ import annotations

import pytest

from zerohour.config import HoldMode, InfectedPolicy
from zerohour.gateway.decide import (
    Action,
    Digest,
    Policy,
    ScanSummary,
    decide,
    summarize,
)
from zerohour.notices.model import Checksum, OutbreakMode, OutbreakSpec, Scope
from zerohour.scan.types import FileType, Finding, LayerInfo, ScanReport, SectionDigest

MD5 = "0" * 32
SHA = "a" * 64


def clean(**kw: object) -> ScanSummary:
    base: dict[str, object] = {"size": 1000, "db_version": "v1"}
    base.update(kw)
    return ScanSummary(**base)  # type: ignore[arg-type]


def test_clean_mail_is_delivered() -> None:
    d = decide(clean(), [], Policy())
    assert d.action is Action.DELIVER


def test_scan_error_tempfails_unless_policy_delivers_unscanned() -> None:
    failed = ScanSummary.failed(10, "boom")
    assert decide(failed, [], Policy()).action is Action.TEMPFAIL
    assert decide(None, [], Policy()).action is Action.TEMPFAIL
    assert decide(failed, [], Policy(deliver_unscanned=True)).action is Action.DELIVER


def test_infected_follows_policy_and_never_rejects_after_250() -> None:
    s = clean(findings=("Eicar-Test-Signature",))
    assert decide(s, [], Policy()).action is Action.REJECT
    assert decide(s, [], Policy()).names == ("Eicar-Test-Signature",)
    q = Policy(infected=InfectedPolicy.QUARANTINE)
    assert decide(s, [], q).action is Action.QUARANTINE
    assert decide(s, [], Policy(infected=InfectedPolicy.DISCARD)).action is Action.DISCARD
    assert decide(s, [], Policy(can_reject=False)).action is Action.QUARANTINE


def test_checksum_match_quarantines_as_outbreak_name() -> None:
    spec = OutbreakSpec(
        "ob1", "Wave7", OutbreakMode.CHECKSUM, Scope.everything(),
        (Checksum("sha256", SHA, 68),),
    )
    s = clean(digests=(Digest("file", 68, MD5, SHA, "m/x.exe"),))
    d = decide(s, [spec], Policy())
    assert d.action is Action.QUARANTINE
    assert d.names == ("Outbreak.Wave7.Checksum",)
    assert d.outbreak_ids == ("ob1",)
    # size given and different: no match
    other = clean(digests=(Digest("file", 69, MD5, SHA, "m/x.exe"),))
    assert decide(other, [spec], Policy()).action is Action.DELIVER


def test_pe_section_checksum_matches_only_that_part() -> None:
    spec = OutbreakSpec(
        "ob2", "Sect", OutbreakMode.CHECKSUM, Scope.everything(),
        (Checksum("md5", MD5, None, "pe-section:.text"),),
    )
    s = clean(digests=(Digest("pe-section:.text", 512, MD5, SHA),))
    assert decide(s, [spec], Policy()).action is Action.QUARANTINE
    s2 = clean(digests=(Digest("file", 512, MD5, SHA),))  # same digest, whole file: no
    assert decide(s2, [spec], Policy()).action is Action.DELIVER


def test_hold_scope_rules() -> None:
    everything = OutbreakSpec("all", "All")
    att = OutbreakSpec("att", "Att", scope=Scope(has_attachment=True))
    exe = OutbreakSpec("exe", "Exe", scope=Scope(file_types=("executable",)))
    big = OutbreakSpec("big", "Big", scope=Scope(min_size=5000))
    plain = clean()
    with_exe = clean(has_attachment=True, categories=("executable",))
    with_zip = clean(has_attachment=True, categories=("archive",))
    assert decide(plain, [everything], Policy()).outbreak_ids == ("all",)
    assert decide(plain, [att], Policy()).action is Action.DELIVER
    assert decide(with_zip, [att], Policy()).action is Action.HOLD
    assert decide(with_zip, [exe], Policy()).action is Action.DELIVER
    d = decide(with_exe, [att, exe, big], Policy())
    assert d.action is Action.HOLD
    assert d.outbreak_ids == ("att", "exe")
    assert decide(clean(size=6000), [big], Policy()).action is Action.HOLD


def test_hold_attachments_mode_only_for_attachment_scopes() -> None:
    att = OutbreakSpec("att", "Att", scope=Scope(has_attachment=True))
    pol = Policy(hold_mode=HoldMode.ATTACHMENTS)
    s = clean(has_attachment=True, categories=("archive",))
    assert decide(s, [att], pol).action is Action.HOLD_ATTACHMENTS
    assert decide(s, [OutbreakSpec("all", "All")], pol).action is Action.HOLD


def test_precedence_virus_over_checksum_over_hold() -> None:
    spec = OutbreakSpec(
        "ob", "W", OutbreakMode.HOLD, Scope.everything(), (Checksum("md5", MD5),)
    )
    s = clean(findings=("Real.Sig",), digests=(Digest("file", 1, MD5, SHA),))
    assert decide(s, [spec], Policy()).action is Action.REJECT
    s2 = clean(digests=(Digest("file", 1, MD5, SHA),))
    assert decide(s2, [spec], Policy()).action is Action.QUARANTINE


def test_decide_is_pure() -> None:
    spec = OutbreakSpec("att", "Att", scope=Scope(has_attachment=True))
    s = clean(has_attachment=True)
    assert decide(s, [spec], Policy()) == decide(s, [spec], Policy())


def test_summary_roundtrips_json_and_summarize_reads_layers() -> None:
    report = ScanReport(
        findings=(Finding("X", "m/a.exe"),),
        layers=(
            LayerInfo("m", 0, 500, MD5, SHA, FileType.MAIL),
            LayerInfo("m/a.zip", 1, 300, MD5, SHA, FileType.ZIP, "a.zip", True),
            LayerInfo(
                "m/a.zip/b.exe", 2, 200, MD5, SHA, FileType.PE, "b.exe", False,
                (SectionDigest(".text", 100, MD5, SHA),),
            ),
            LayerInfo("m/body", 1, 20, MD5, SHA, FileType.HTML),
        ),
        db_version="v9",
    )
    s = summarize(report, 500)
    assert s.has_attachment
    assert s.categories == ("archive", "executable")  # the inline HTML body is not one
    assert s.findings == ("X",)
    assert any(d.part == "pe-section:.text" for d in s.digests)
    assert ScanSummary.from_json(s.to_json()) == s


def test_any_engine_error_is_a_scan_error_even_with_layers_scanned() -> None:
    """A codec error deep in the message used to be ignored because the top layer existed."""
    report = ScanReport(
        (),
        (LayerInfo("m", 0, 100, MD5, SHA, FileType.MAIL),),
        "v1",
        0.0,
        ("m/part2: internal error LookupError: unknown encoding: idna",),
    )
    summary = summarize(report, 100)
    assert summary.error
    assert decide(summary, [], Policy()).action is Action.TEMPFAIL
    after_250 = decide(summary, [], Policy(can_reject=False))
    assert after_250.action is Action.QUARANTINE  # ours since the 250: never delivered
    assert after_250.names == ("Heuristics.ScanError",)


def test_non_text_part_without_a_name_is_an_attachment_for_scope() -> None:
    report = ScanReport(
        (),
        (
            LayerInfo("m", 0, 900, MD5, SHA, FileType.MAIL),
            LayerInfo("m/part1", 1, 10, MD5, SHA, FileType.TEXT),
            LayerInfo("m/part2", 1, 800, MD5, SHA, FileType.PE),
        ),
        "v1",
    )
    summary = summarize(report, 900)
    assert summary.has_attachment
    assert summary.categories == ("executable",)
    spec = OutbreakSpec("ob", "X", scope=Scope(has_attachment=True, file_types=("executable",)))
    assert decide(summary, [spec], Policy()).action is Action.HOLD


#: Every container the engine opens, by its scope category: the carriers campaigns moved to
#: (ISO/IMG, OneNote, CAB...) were opened by the engine but had no category in the decision,
#: so an outbreak scoped `types=archive` (or the delay queue's default types) let them through.
_CATEGORY_OF = {
    "archive": (FileType.ZIP, FileType.TAR, FileType.GZIP, FileType.BZIP2, FileType.XZ,
                FileType.SEVENZIP, FileType.RAR, FileType.CAB, FileType.ARJ, FileType.LZH,
                FileType.ALZ, FileType.CPIO, FileType.XAR, FileType.AR, FileType.ISO,
                FileType.SIS, FileType.SZDD, FileType.ZSTD, FileType.LZ4, FileType.LZMA,
                FileType.CHM, FileType.WIM, FileType.VHD, FileType.DMG, FileType.SQUASHFS,
                FileType.FSIMAGE, FileType.COMPRESS, FileType.RPM, FileType.LZIP,
                FileType.LZOP, FileType.DISKIMAGE, FileType.VMDISK, FileType.SWF,
                FileType.BZIP3, FileType.LRZIP, FileType.ZPAQ, FileType.WARC, FileType.FLV),
    "office-macro": (FileType.OLE2, FileType.OOXML, FileType.RTF, FileType.ONENOTE),
    "executable": (FileType.PE, FileType.ELF, FileType.MACHO),
}


@pytest.mark.parametrize(
    ("ft", "cat"), [(ft, cat) for cat, fts in _CATEGORY_OF.items() for ft in fts],
    ids=lambda v: str(getattr(v, "value", v)),
)
def test_every_opened_container_is_in_its_scope_category(ft: FileType, cat: str) -> None:
    report = ScanReport(
        (),
        (LayerInfo("m", 0, 900, MD5, SHA, FileType.MAIL),
         LayerInfo("m/part2", 1, 800, MD5, SHA, ft, "x", True)),
        "v1",
    )
    summary = summarize(report, 900)
    assert summary.categories == (cat,)
    spec = OutbreakSpec("ob", "X", scope=Scope(has_attachment=True, file_types=(cat,)))
    assert decide(summary, [spec], Policy()).action is Action.HOLD


def test_every_file_type_is_categorised_or_deliberately_not() -> None:
    """A new FileType must be placed: in a category, or here with the reason it has none."""
    uncategorised = {FileType.BINARY, FileType.TEXT, FileType.MAIL}  # no scope names them
    placed = {ft for fts in _CATEGORY_OF.values() for ft in fts} | uncategorised | {
        FileType.SCRIPT, FileType.PDF, FileType.HTML}
    assert set(FileType) == placed
