"""The kinds beyond hashes and body signatures: .cdb, YARA, .imp, .ftm, the .ldb features added
with them (Intermediates, VI; fuzzy_img is in test_signatures_fuzzy_img.py), and how --db-info
counts them. clamscan's agreement is in tests/conformance/test_clamscan_kinds.py."""

from __future__ import annotations

import base64
import pickle
import struct
from pathlib import Path

import pytest

from zerohour.errors import SignatureSyntaxError
from zerohour.scan import Engine, load_database
from zerohour.scan.limits import Limits
from zerohour.scan.signatures.cdb import UnknownHere, parse_cdb_line
from zerohour.scan.signatures.ftm import SkippedFtm, parse_ftm_line
from zerohour.scan.signatures.ldb import NotEvaluated, parse_ldb_line
from zerohour.scan.signatures.yara_rules import YaraRules
from zerohour.scan.types import FileType, MemberMeta


def _db(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "db"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def _meta(name: str | None = "a/evil.exe", size: int | None = 100, enc: bool = False,
          index: int = 0, container: FileType = FileType.ZIP) -> MemberMeta:
    return MemberMeta(container, name, size, 50, 0x1234, enc, index)


def test_cdb_fields() -> None:
    sig = parse_cdb_line(r"C.X:CL_TYPE_ZIP:100-0:evil\.exe$:*:90-110:0:1:*:*")
    assert sig is not None
    assert sig.matches(_meta(), 150)
    assert not sig.matches(_meta(), 99)  # container smaller than the open range's start
    assert not sig.matches(_meta(size=200), 150)
    assert not sig.matches(_meta(enc=True), 150)
    assert not sig.matches(_meta(index=1), 150)  # FilePos counts from 1
    assert not sig.matches(_meta(name=None), 150)
    assert not sig.matches(_meta(container=FileType.TAR), 150)
    assert parse_cdb_line("C.F:*:*:*:*:*:*:*:*:*:999") is None
    assert parse_cdb_line("C.F:*:*:*:*:*:*:*:*:*:1:100") is None
    with pytest.raises(UnknownHere):
        parse_cdb_line("C.S:CL_TYPE_SWF:*:*:*:*:*:*:*:*")
    for bad in ("C.B:CL_TYPE_NOPE:*:*:*:*:*:*:*:*", "C.B:*:*:(:*:*:*:*:*:*",
                "C.B:*:*:*:*:*:2:*:*:*", "C.B:*:x:*:*:*:*:*:*:*", "C.B:*:*:*"):
        with pytest.raises(SignatureSyntaxError):
            parse_cdb_line(bad)


def test_ftm_records() -> None:
    sig = parse_ftm_line("0:0:4d5a:DOS EXE:CL_TYPE_ANY:CL_TYPE_MSEXE")
    assert sig is not None
    assert sig.applies(b"MZxx", FileType.BINARY)
    assert not sig.applies(b"ZMxx", FileType.BINARY)
    assert parse_ftm_line("0:0:4d5a:New:CL_TYPE_ANY:CL_TYPE_MSEXE:999") is None
    for skipped in ("1:*:4d5a:Body:CL_TYPE_ANY:CL_TYPE_MSEXE",
                    "0:0:4d5a:Swf:CL_TYPE_ANY:CL_TYPE_SWF"):
        with pytest.raises(SkippedFtm):
            parse_ftm_line(skipped)
    with pytest.raises(SignatureSyntaxError):
        parse_ftm_line("0:0:4d5a:X:CL_TYPE_ANY:CL_TYPE_WHAT")


def test_ldb_intermediates_and_not_evaluated_kinds() -> None:
    lsig = parse_ldb_line("I;Target:0,Intermediates:CL_TYPE_ANY>CL_TYPE_ZIP;0;41424344")
    assert lsig is not None
    assert lsig.intermediates == (None, "zip")
    assert lsig.intermediates_hold(("gzip", "zip"))
    assert not lsig.intermediates_hold(("zip",))  # too shallow: ANY still needs a level
    assert not lsig.intermediates_hold(("zip", "gzip"))
    fuzzy = parse_ldb_line("F;Engine:150-255,Target:0;0;fuzzy_img#af2ad01ed42993c7#0")
    assert fuzzy is not None
    assert fuzzy.fuzzy == ((0, bytes.fromhex("af2ad01ed42993c7")),)
    vi = parse_ldb_line("V;Target:1;0&1;4d5a;VI:560065007200730069006f006e00")
    assert vi is not None
    assert vi.vi == (1,)
    with pytest.raises(NotEvaluated, match="CL_TYPE_SWF"):
        parse_ldb_line("S;Target:0,Intermediates:CL_TYPE_SWF;0;41424344")


def test_db_info_counts_new_kinds(tmp_path: Path) -> None:
    d = _db(tmp_path, {
        "a.ldb": "F;Engine:150-255,Target:0;0;fuzzy_img#af2ad01ed42993c7#0\n"
                 "Ok;Target:0;0;41424344\n",
        "b.cdb": "C.S:CL_TYPE_SWF:*:*:*:*:*:*:*:*\nC.Z:CL_TYPE_ZIP:*:*:*:*:*:*:*:*\n",
        "c.ftm": "1:*:4d5a:Body:CL_TYPE_ANY:CL_TYPE_MSEXE\n",
        "d.yara": 'rule R { strings: $a = "x1x2x3" condition: $a }\n',
        "e.yar": "rule Broken { condition: \n",
        "f.ign2": "R\n",
    })
    info = load_database([d], use_cache=False).info()
    assert info.counts == {"ldb": 2, "cdb": 1, "ign2": 1}  # fuzzy_img is evaluated
    assert info.skipped == {"cdb container type CL_TYPE_SWF": 1,
                            "ftm body or partition magic": 1, "ignored": 1, "invalid": 1}
    assert [w.path for w in info.warnings] == [str(d / "e.yar")]


def test_yara_rules_pickle_and_match(tmp_path: Path) -> None:
    rules = YaraRules.compile(['rule A { strings: $a = "MARK1" condition: $a }',
                               'rule A { strings: $a = "MARK2" condition: $a }'],
                              dropped=frozenset())
    again = pickle.loads(pickle.dumps(rules))
    assert again.count == 2
    assert again.match(b"..MARK2..", timeout=5) == ["YARA.A"]
    d = _db(tmp_path, {"r.yar": 'rule Y { strings: $a = "YARAMARK" condition: $a }\n'})
    engine = pickle.loads(pickle.dumps(Engine(load_database([d], use_cache=False))))
    assert engine.scan_bytes(b"\x00YARAMARK\x01").names == ("YARA.Y",)


_SLOW = """rule Slow_MZ {
    condition:
        uint16(0) == 0x5A4D and filesize > 50000 and
        for any i in (0..filesize) : ( for any j in (0..filesize) :
            ( uint8(i) == 0xFE and uint8(j) == 0xFD and i == j ) )
}
"""


def test_yara_rules_out_of_time_in_a_guess_are_the_time_limit(tmp_path: Path) -> None:
    """R31-F7: a marker cut over two attachments is whole only in the join guess, where an
    operator's slow rule (the sender aims it: an MZ head, a long tail) timed out. The timeout
    was a decoder error in a guess, muted, and the guess's body signatures never ran: clean.
    It is the scan's MaxScanTime now."""
    marker = b"a marker cut in two, whole only when the attachments are joined"
    head = b"MZ" + bytes(20) + marker[:30]
    tail = marker[30:] + bytes((i * 7919) % 251 for i in range(60_000))
    mail = (b"From: a@x.test\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            + b"".join(b"--b\r\nContent-Type: application/octet-stream\r\n"
                       b'Content-Disposition: attachment; filename="%s"\r\n'
                       b"Content-Transfer-Encoding: base64\r\n\r\n" % name
                       + base64.encodebytes(part).replace(b"\n", b"\r\n")
                       for name, part in ((b"logo.dat", head), (b"notes.dat", tail)))
            + b"--b--\r\n")
    plain = _db(tmp_path / "plain", {"m.ndb": f"Cut.Marker:0:*:{marker.hex()}\n"})
    assert Engine(load_database([plain], use_cache=False)).scan_bytes(mail).names == (
        "Cut.Marker",)  # the join finds it
    slow = _db(tmp_path / "slow", {"m.ndb": f"Cut.Marker:0:*:{marker.hex()}\n",
                                   "slow.yar": _SLOW})
    found = Engine(load_database([slow], use_cache=False),
                   Limits(max_scan_time=2)).scan_bytes(mail)
    assert found.names == ("Heuristics.Limits.Exceeded.MaxScanTime",)


def _pe_with_imports(dll: bytes, funcs: list[bytes | int]) -> bytes:
    """A PE32 with one section holding an import directory (names and ordinals)."""
    base = 0x1000
    sec = bytearray(0x200)
    names_off = 0x100
    thunks_off = 0x40
    pos = names_off
    thunks = []
    for f in funcs:
        if isinstance(f, int):
            thunks.append(0x80000000 | f)
        else:
            thunks.append(base + pos)
            sec[pos + 2 : pos + 2 + len(f)] = f
            pos += 2 + len(f) + 1
    dll_off = pos + 1
    sec[dll_off : dll_off + len(dll)] = dll
    for i, t in enumerate([*thunks, 0]):
        struct.pack_into("<I", sec, thunks_off + 4 * i, t)
    struct.pack_into("<IIIII", sec, 0, base + thunks_off, 0, 0, base + dll_off, base + thunks_off)
    dos = b"MZ" + b"\x00" * 58 + struct.pack("<I", 0x40)
    coff = struct.pack("<4sHHIIIHH", b"PE\x00\x00", 0x14C, 1, 0, 0, 0, 0xE0, 0x0102)
    dirs = bytearray(128)
    struct.pack_into("<II", dirs, 8, base, 40)
    opt = struct.pack("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", 0x10B, 0, 0, 0x200, 0, 0, base,
                      base, 0, 0x400000, 0x1000, 0x200, 4, 0, 0, 0, 4, 0, 0, 0x2000, 0x200,
                      0, 2, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16) + bytes(dirs)
    sh = struct.pack("<8sIIIIIIHHI", b".idata", 0x200, base, 0x200, 0x200, 0, 0, 0, 0,
                     0xC0000040)
    head = dos + coff + opt + sh
    return head.ljust(0x200, b"\x00") + bytes(sec) + b"\x00" * 0x200


def test_import_hash_string_follows_pe_c() -> None:
    from zerohour.scan import pe
    from zerohour.scan.signatures.imp import import_string

    data = _pe_with_imports(b"KERNEL32.dll", [b"ExitProcess", 17, b"GetTickCount"])
    info = pe.parse(data)
    assert info is not None
    assert import_string(data, info) == b"kernel32.exitprocess,kernel32.ord17," \
                                        b"kernel32.gettickcount"
    bad = _pe_with_imports(b"x.sys.bak", [b"Bad-Name"])
    assert import_string(bad, pe.parse(bad) or info) is None  # a '-' voids the whole hash
    odd = _pe_with_imports(b"lib.so", [b"F"])
    assert import_string(odd, pe.parse(odd) or info) == b"lib.so.f"
