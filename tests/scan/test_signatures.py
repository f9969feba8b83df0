"""Signature parsers: every format, good and bad lines, warnings with file:line, --strict."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from zerohour.errors import DatabaseError, SignatureSyntaxError
from zerohour.scan.database import load_database
from zerohour.scan.engine import Engine
from zerohour.scan.signatures.hdb import parse_hash_line
from zerohour.scan.signatures.hexsig import (
    TokKind,
    compile_pattern,
    prefilter,
    quick_prefilter,
    tokenize,
)
from zerohour.scan.signatures.ign2 import IgnoreList, parse_ignore_entry, parse_ignore_line
from zerohour.scan.signatures.ldb import Op, parse_expression, parse_ldb_line
from zerohour.scan.signatures.mdb import parse_section_line
from zerohour.scan.signatures.model import Target
from zerohour.scan.signatures.ndb import parse_ndb_line
from zerohour.scan.signatures.offset import OffsetKind, parse_offset

MD5 = "44d88612fea8a8f36de82e1278abb02f"


# -- hash formats ----------------------------------------------------------------------------


def test_hdb_line_with_size() -> None:
    kind, digest, size, name = parse_hash_line(f"{MD5}:68:Eicar") or ("", b"", 0, "")
    assert (kind, digest.hex(), size, name) == ("md5", MD5, 68, "Eicar")


@pytest.mark.parametrize(("hexlen", "kind"), [(32, "md5"), (40, "sha1"), (64, "sha256")])
def test_hash_kind_follows_length(hexlen: int, kind: str) -> None:
    parsed = parse_hash_line("a" * hexlen + ":*:Name:73")
    assert parsed is not None
    assert parsed[0] == kind
    assert parsed[2] is None  # `*`: any size


def test_hash_flevel_above_ours_is_skipped() -> None:
    assert parse_hash_line(f"{MD5}:68:Future:999") is None
    assert parse_hash_line(f"{MD5}:68:Past:73") is not None
    assert parse_hash_line(f"{MD5}:68:Retired:1:100") is None  # MaxFL below ours
    assert parse_hash_line(f"{MD5}:68:Current:1:300") is not None


@pytest.mark.parametrize("line", [f"{MD5}:*:NoLevel", f"{MD5}:*:OldLevel:72",
                                  f"{MD5}:0:ZeroSize", f"{MD5}:68:X:1:2:3"])
def test_hash_lines_clamav_refuses(line: str) -> None:
    """readdb.c cli_loadhash: '*' needs FLEVEL >= 73, a size of 0 and a sixth field are
    invalid (clamscan: "Malformed database"; the conformance suite checks clamscan agrees)."""
    with pytest.raises(SignatureSyntaxError):
        parse_hash_line(line)
    assert parse_hash_line(f"{MD5}:*:Imp", wildcard_needs_flevel=False) is not None


@pytest.mark.parametrize(
    "line",
    [f"{MD5}:68", f"{MD5[:-1]}:68:X", f"{'z' * 32}:68:X", f"{MD5}:big:X", f"{MD5}:68:",
     f"{MD5}:68:X:abc"],
)
def test_bad_hash_lines(line: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        parse_hash_line(line)


def test_mdb_has_size_first() -> None:
    parsed = parse_section_line(f"4096:{MD5}:Sect")
    assert parsed is not None
    assert parsed[2] == 4096
    with pytest.raises(SignatureSyntaxError):
        parse_section_line(f"{MD5}:4096:Sect")


def test_ign2_names() -> None:
    assert parse_ignore_line("Some.Sig") == "Some.Sig"
    assert parse_ignore_entry(f"Some.Sig:{MD5}") == ("Some.Sig", bytes.fromhex(MD5))
    assert parse_ignore_line("daily.ndb:12:Old.Sig", legacy=True) == "Old.Sig"
    assert parse_ignore_line("daily.ndb:12:Old.Sig") == "Old.Sig"  # ClamAV reads both alike
    for bad in (":", "Some.Sig:0123", "Some.Sig:" + "z" * 32, "a:b:c:d"):
        with pytest.raises(SignatureSyntaxError):
            parse_ignore_entry(bad)


def test_ign2_md5_is_the_md5_of_the_signature_line() -> None:
    """An .ign2 `Name:md5` retires only the line with that MD5 (readdb.c cli_chkign); a wrong
    MD5 retires nothing (clamscan agrees: tests/conformance/test_clamscan_kinds.py)."""
    ign = IgnoreList()
    line = f"{MD5}:68:Some.Sig"
    ign.add("Some.Sig", hashlib.md5(line.encode()).digest())
    ign.add("Other.Sig", bytes(16))
    ign.add("Any.Sig", None)
    assert ign.drops("Some.Sig", line)
    assert not ign.drops("Some.Sig", line + "0")
    assert not ign.drops("Other.Sig", f"{MD5}:68:Other.Sig")
    assert ign.drops("Any.Sig", "whatever")
    assert not ign.drops("Some", line)


# -- hex syntax and offsets ------------------------------------------------------------------


def test_tokenize_every_form() -> None:
    toks = tokenize("4142??a??b{3}{-2}{1-4}(61|6263)!(00|01)")
    kinds = [getattr(t, "kind", None) for t in toks]
    assert kinds == [TokKind.LIT, TokKind.ANY, TokKind.NIBBLE, TokKind.NIBBLE, TokKind.GAP,
                     TokKind.GAP, TokKind.GAP, TokKind.ALT, TokKind.ALT]


@pytest.mark.parametrize(
    "sig",
    ["", "414", "41zz", "4142{2", "4142(61|62", "*4142", "4142*", "4142**4344", "{2}4142",
     "4142!61", "4142(6|62)", "4142!(61|6263)", "4142[1-2]43", "4142{3-1}43", "(61)4142"],
)
def test_bad_hex_signatures(sig: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        compile_pattern(sig)


def test_segments_split_at_unbounded_gaps_and_pick_longest_anchor() -> None:
    (pat,) = compile_pattern("41??424344*45464748{5-}494a")
    assert [s.anchor for s in pat.segments] == [b"BCD", b"EFGH", b"IJ"]
    assert [g.lo for g in pat.gaps] == [0, 5]
    assert pat.segments[0].anchor_pre == (2, 2)


def test_zero_maximum_means_unbounded_like_clamav() -> None:
    for sig, lo in [("4142{0}4344", 0), ("4142{-0}4344", 0), ("4142{0-0}4344", 0),
                    ("4142{2-0}4344", 2), ("4142{3}*4344", 3), ("4142*{3}4344", 3)]:
        (pat,) = compile_pattern(sig)
        assert [g.lo for g in pat.gaps] == [lo], sig
        assert len(pat.segments) == 2


def test_wide_ascii_gives_two_variants() -> None:
    from zerohour.scan.signatures.hexsig import Modifiers

    pats = compile_pattern("4142", Modifiers(wide=True, ascii=True))
    assert [p.segments[0].anchor for p in pats] == [b"A\x00B\x00", b"AB"]


_ATOMS = st.sampled_from([
    "41", "4142", "6162636465", "AbCd", "00", "ff", "2020", "90909090", "6c6f6e6720746578",
    "??", "6?", "?1", "0?", "(61|62)", "(6162|63)", "(00|ff)",
])
_BOUNDED = st.sampled_from(["{2}", "{-3}", "{1-4}", "{0-2}", "{007-9}"])
_UNBOUNDED = st.sampled_from(["*", "{2-}", "{0-}"])
_ODD = st.sampled_from([
    "!(61|00)", "(61)", "(61|)", "(6|62)", "{0}", "{-0}", "{0-0}", "{4-1}", "{3-0}", "{-}",
    "{x}", "[1-2]", "4", "g1", "(", ")", "{", "|", "?", " ", "*", "{2}", "",
])


@st.composite
def _soup(draw: st.DrawFn) -> str:
    """Mostly plain signatures (segments of bytes and bounded gaps between unbounded gaps),
    now and then with something odd put anywhere."""
    parts: list[str] = []
    for k in range(draw(st.integers(1, 3))):
        if k:
            parts.append(draw(_UNBOUNDED))
        parts.append(draw(_ATOMS))
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                parts.append(draw(_BOUNDED))
            parts.append(draw(_ATOMS))
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), draw(_ODD))
    return "".join(parts)


@settings(max_examples=1500, deadline=None)
@given(_soup())
@example("4142??AbCd")  # equal anchors: the first wins
@example("41{-3}4142*4344(61|6263)4546{2-}6162636465")  # the best segment is a later one
@example("41424344{2}")  # a bounded gap at a segment's end, its start, or beside another
@example("{2}41424344")
@example("41424344{2}*45464748")
@example("41424344*{2}45464748")
@example("4142{2}{3}4344")
def test_quick_prefilter_agrees_with_the_compiled_pattern(text: str) -> None:
    """The anchor read straight from a plain signature's text is the compiled pattern's; the
    quick path never accepts what the parser refuses (it declines instead)."""
    quick = quick_prefilter(text)
    try:
        (pattern,) = compile_pattern(text)
    except SignatureSyntaxError:
        assert quick is None
        return
    assert quick is None or quick == prefilter(pattern)


@pytest.mark.parametrize("text", [
    "4142434445", "41??4243{2-5}44(45|4647)4849*6162636465{3-}7071727374",
    "6?4142434445?0{-4}41424344", "(00|ff)0102030405060708",
])
def test_plain_ndb_signatures_take_the_quick_path(text: str) -> None:
    sig = parse_ndb_line(f"Quick.Sig:0:*:{text}")
    assert sig is not None
    assert sig._patterns is None  # never compiled at load time
    assert sig.prefilters == (prefilter(compile_pattern(text)[0]),)


def test_a_long_bad_signature_is_refused_at_once() -> None:
    """The quick path's grammar has no nested repeats: a long hex run with one stray digit
    is declined in linear time (a backtracking regex would take ages), then refused."""
    with pytest.raises(SignatureSyntaxError, match="odd number of hex digits"):
        parse_ndb_line("Long.Bad:0:*:" + "41" * 4000 + "4")


@pytest.mark.parametrize(
    ("text", "kind", "value", "shift"),
    [("*", OffsetKind.ANY, 0, 0), ("10", OffsetKind.ABS, 10, 0), ("10,5", OffsetKind.ABS, 10, 5),
     ("EOF-8", OffsetKind.EOF, -8, 0), ("EP+4", OffsetKind.EP, 4, 0),
     ("EP-4,2", OffsetKind.EP, -4, 2), ("S2+16", OffsetKind.SECTION, 16, 0),
     ("SL+0", OffsetKind.LAST_SECTION, 0, 0)],
)
def test_offsets(text: str, kind: OffsetKind, value: int, shift: int) -> None:
    off = parse_offset(text)
    assert (off.kind, off.value, off.shift) == (kind, value, shift)


@pytest.mark.parametrize("text", ["", "x", "EOF+1", "EP*3", "10,x", "VI", "SE1"])
def test_bad_offsets(text: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        parse_offset(text)


def test_offset_resolution() -> None:
    assert parse_offset("EOF-4").resolve(10) == (6, 6)
    assert parse_offset("EOF-40").resolve(10) is None
    assert parse_offset("EP+1").resolve(100) is None  # not a PE
    assert parse_offset("EP+1,3").resolve(100, ep=50) == (51, 54)
    assert parse_offset("S1+2").resolve(100, sections=(10, 60)) == (62, 62)
    assert parse_offset("S2+2").resolve(100, sections=(10, 60)) is None


# -- ndb / ldb -------------------------------------------------------------------------------


def test_ndb_line() -> None:
    sig = parse_ndb_line("Name.X:1:EP+0:4142434445:51:255")
    assert sig is not None
    assert (sig.name, sig.target, sig.offset.kind) == ("Name.X", Target.PE, OffsetKind.EP)
    assert parse_ndb_line("Name.X:0:*:4142434445:999") is None  # needs a newer engine
    assert parse_ndb_line("Name.X:0:*:4142434445::10") is None  # only for older engines


@pytest.mark.parametrize(
    "line",
    ["Name:0:*", "Name:x:*:4142", "Name:99:*:4142", ":0:*:4142", "Name:0:foo:4142",
     "Name:0:*:41424", "Name:0:*:4142:1:2:3"],
)
def test_bad_ndb_lines(line: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        parse_ndb_line(line)


def test_expression_parse_and_evaluate() -> None:
    e = parse_expression("(0|1)&2")
    assert e.op is Op.AND
    assert e.evaluate([0, 1, 1])[0]
    assert not e.evaluate([1, 1, 0])[0]
    assert parse_expression("0=2").evaluate([2])[0]
    assert not parse_expression("0=2").evaluate([3])[0]
    assert parse_expression("0>2").evaluate([3])[0]
    assert parse_expression("0<2").evaluate([1])[0]
    assert parse_expression("0=0").evaluate([0])[0]
    assert parse_expression("(0|1|2)>1,2").evaluate([2, 0, 1])[0]
    assert not parse_expression("(0|1|2)>1,2").evaluate([3, 0, 0])[0]


def test_expression_follows_clamav_quirks() -> None:
    # no precedence: the first top-level operator splits, so 0|1&2 is 0|(1&2)
    assert parse_expression("0|1&2").evaluate([1, 0, 0])[0]
    assert not parse_expression("(0|1)&2").evaluate([1, 0, 0])[0]
    # inside parentheses the *last* operator splits: (0&1|2) is (0&1)|2
    assert parse_expression("(0&1|2)").evaluate([0, 0, 1])[0]
    # ",m" is ignored on a single subsignature, and "=0" is true when nothing matched
    assert parse_expression("0<2,2").evaluate([1])[0]
    assert parse_expression("0=0").evaluate([0])[0]
    # a false block with "=0" is true
    assert parse_expression("(0&1)=0").evaluate([1, 0])[0]


@pytest.mark.parametrize("expr", ["", "0&", "(0|1", "0|1)", "a", "0=", "0>1,", "0&&1"])
def test_bad_expressions(expr: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        parse_expression(expr)


def test_ldb_line() -> None:
    lsig = parse_ldb_line("L.X;Engine:51-255,Target:1,FileSize:10-2000;0&1;41424344::i;"
                          "EP+0:4546474849")
    assert lsig is not None
    assert lsig.target is Target.PE
    assert lsig.filesize == (10, 2000)
    assert lsig.subs[0].mods.nocase
    assert lsig.subs[1].offset.kind is OffsetKind.EP
    assert parse_ldb_line("L.Y;Engine:300-400,Target:0;0;41424344") is None


def test_ldb_target_description_attributes() -> None:
    lsig = parse_ldb_line("L.A;Engine:51-255,Target:1,Container:CL_TYPE_ZIP,EntryPoint:0-99,"
                          "NumberOfSections:2-3;0;41424344")
    assert lsig is not None
    assert (lsig.container, lsig.entry_point, lsig.sections) == ("zip", (0, 99), (2, 3))
    with pytest.raises(SignatureSyntaxError, match="container"):
        parse_ldb_line("L.B;Target:0,Container:CL_TYPE_NOPE;0;41424344")


def test_ldb_pcre_subsignature() -> None:
    lsig = parse_ldb_line("L.P;Engine:81-255,Target:0;0&1;41424344;0/ab[0-9]+c/i")
    assert lsig is not None
    assert len(lsig.pcres) == 1
    assert lsig.pcres[0][0] == 1


@pytest.mark.parametrize(
    "line",
    ["L;Target:0;0", "L;Engine:51-255;0;4142", "L;Target:0,IconGroup1:x;0;4142",
     "L;Target:0,Intermediates:1;0;4142",
     "L;Target:0;0&1;4142", "L;Target:0;0;${1-2}0$", "L;Target:0;0;4142::z",
     "L;Target:0;0;0/ab(/", "L;Target:0;0;0/abc/Z", "L;Target:0;0;0/abc/",
     "L;Target:0;0;4142(>>2#hb2#=0)"],
)
def test_bad_ldb_lines(line: str) -> None:
    with pytest.raises(SignatureSyntaxError):
        parse_ldb_line(line)


# -- the loader: warnings, strict, version ----------------------------------------------------


def _db(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "db"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_bad_line_is_a_warning_with_file_and_line(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": "# comment\nGood:0:*:41424344\nBad:0:*:4\n",
                       "b.hdb": f"{MD5}:68:Eicar\n"})
    db = load_database([d], use_cache=False)
    info = db.info()
    assert info.counts == {"ndb": 1, "hdb": 1}
    assert [str(w) for w in info.warnings] == [f"{d / 'a.ndb'}:3: odd number of hex digits"]
    assert info.skipped["invalid"] == 1


def test_strict_refuses_a_bad_line(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": "Good:0:*:41424344\nBad:0:*:4\n"})
    with pytest.raises(SignatureSyntaxError, match=r"a\.ndb:2:"):
        load_database([d], strict=True, use_cache=False)


def test_unsupported_file_kinds_are_reported(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": "Good:0:*:41424344\n", "x.pwdb": "X;Y;Z\n", "notes.txt": "hi",
                       "x.wdb": "X:Y:Z\nM:a:b\n", "b.cbc": "bytecode", "c.cfg": "DOCUMENT:0x1\n"})
    db = load_database([d], use_cache=False)
    msgs = [w.message for w in db.warnings]
    assert msgs == ["unsupported ClamAV database kind '.pwdb': file not loaded"]
    assert db.info().skipped == {"files": 1, "other files": 1, "phishing": 2, "bytecode": 1,
                                 "cfg": 1}
    with pytest.raises(DatabaseError):
        load_database([d], strict=True, use_cache=False)


def test_version_file_or_digest(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": "Good:0:*:41424344\n"})
    db = load_database([d], use_cache=False)
    assert db.version == f"local-{db.digest[:12]}"
    (d / "VERSION").write_text("2026.11.29-1\n")
    assert load_database([d], use_cache=False).version == "2026.11.29-1"


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError):
        load_database([tmp_path / "nope"], use_cache=False)


def test_unsupported_target_warns(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": "Swf:11:*:41424344\n"})
    db = load_database([d], use_cache=False)
    assert "target 11 not supported" in db.warnings[0].message
    assert db.n_body == 0


def test_graphics_target_is_clamavs_image_magic(tmp_path: Path) -> None:
    """Target 5 applies where ClamAV's magic says image (CL_TYPE_GRAPHICS, PNG, GIF, JPEG,
    TIFF), by the first bytes alone: clamscan 1.4.6 matches it in text starting "BM" too."""
    d = _db(tmp_path, {"a.ndb": "Gfx:5:*:726f636b73\n", "b.ldb": "GfxL;Target:5;0;726f636b73\n"})
    engine = Engine(load_database([d], use_cache=False), allmatch=True)
    for head in (b"BM", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff\xe0", b"II*\x00",
                 b"MM\x00*", b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        assert engine.scan_bytes(head + b"\x00 rocks \x01").names == ("Gfx", "GfxL"), head
    assert engine.scan_bytes(b"BMW rocks my world\n").names == ("Gfx", "GfxL")
    for other in (b"\x00BM rocks", b"GI rocks", b"M rocks", b"rocks"):
        assert engine.scan_bytes(other).names == (), other


def test_cvd_and_cld_containers_load(tmp_path: Path) -> None:
    """Signed containers (test keys) load with every member; see test_signatures_cvd.py for
    the verification itself."""
    from conformance.cvd_factory import build_cvd, signing_keys

    d = tmp_path / "db"
    d.mkdir()
    (d / "main.cvd").write_bytes(build_cvd({"main.ndb": b"Cvd.Sig:0:*:41424344\n",
                                            "main.wdb": b"X:Y:Z\n"}, name="main"))
    (d / "daily.cld").write_bytes(build_cvd({"daily.hdb": f"{MD5}:68:Cld.Hash\n".encode()},
                                            compress=False))
    db = load_database([d], use_cache=False, cvd_keys=signing_keys().public)
    assert db.info().counts == {"ndb": 1, "hdb": 1}
    assert db.info().skipped == {"phishing": 1, "info": 7, "other files": 2}
    assert len(db.info().containers) == 2
    (d / "broken.cvd").write_bytes(b"not a cvd")
    with pytest.raises(DatabaseError, match="can't verify database integrity"):
        load_database([d], use_cache=False, cvd_keys=signing_keys().public)
