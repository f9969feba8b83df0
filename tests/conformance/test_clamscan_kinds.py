"""Conformance with clamscan for the signature kinds and loader rules of issue 10 part 2:
.cvd integrity refusals, .ign2 MD5s, hash signature rules (`*` sizes, --allmatch, duplicates),
.cdb container metadata, YARA and .imp import hashes.

Every group runs clamscan and zerohour with --allmatch on the same database and samples and
requires the same set of names per sample (and the written-down expectation, so a change in
either engine fails here).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.cvd_factory import build_cvd, header_line, sign_md5, signing_keys
from zerohour.errors import DatabaseError
from zerohour.scan import Engine, load_database
from zerohour.scan.signatures import cvd

pytestmark = pytest.mark.needs_clamav

CLAMSCAN = shutil.which("clamscan")
TESTFILES = Path("/usr/share/clamav-testfiles")
needs_clamscan = pytest.mark.skipif(CLAMSCAN is None or not TESTFILES.is_dir(),
                                    reason="clamscan / clamav-testfiles not installed")


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def _clam_exe() -> bytes:
    return (TESTFILES / "clam.exe").read_bytes()


def _clamscan(db: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CLAMSCAN is not None
    return subprocess.run([CLAMSCAN, "--no-summary", *extra, "-d", str(db), "-r", str(target)],
                          capture_output=True, text=True, timeout=120)


# -- .cvd integrity: the same files are refused ----------------------------------------------


def _flip(d: bytes, at: int) -> bytes:
    return d[:at] + bytes([d[at] ^ 1]) + d[at + 1 :]


def _header(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda d: d[:512].replace(old, new, 1)[:512].ljust(512, b" ") + d[512:]


def _resigned_other_archive(d: bytes) -> bytes:
    """A valid header signature (test key) over an archive whose .hdb was changed."""
    tar = gzip.decompress(d[512:]).replace(b"Kinds.Cvd.Clam", b"Kinds.Cvd.Clan", 1)
    archive = gzip.compress(tar)
    h = cvd.parse_header(d[:512].decode().rstrip())
    m = md5(archive)
    head = header_line(h.version, h.sigs, h.flevel, m, sign_md5(m, signing_keys().header),
                       stime=h.stime)
    return head.encode().ljust(512, b" ") + archive


#: damage -> clamscan's message on stderr (clamscan 1.4.6).
DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "intact": (lambda d: d, "Can't verify database integrity"),
    "md5": (lambda d: _flip(d, 700), "Can't verify database integrity"),
    "dsig": (_header(b":zerohour-test", b"x:zerohour-test"), "Can't verify database integrity"),
    "truncated": (lambda d: d[: len(d) - 20], "Can't verify database integrity"),
    "short": (lambda d: d[:300], "Broken or not a CVD file"),
    "empty": (lambda d: b"", "Broken or not a CVD file"),
    "header": (lambda d: b"ClamAV-VDX" + d[10:], "Broken or not a CVD file"),
    "resigned": (_resigned_other_archive, "Can't verify database integrity"),
}


@needs_clamscan
@pytest.mark.parametrize("case", list(DAMAGES))
@pytest.mark.parametrize("suffix", [".cvd", ".cld"])
def test_clamscan_and_zerohour_refuse_the_same_containers(case: str, suffix: str,
                                                          tmp_path: Path) -> None:
    """clamscan refuses every container we can build (we cannot sign with Talos' key) and
    each damaged one; so must zerohour with ClamAV's keys. With the test keys, zerohour
    accepts exactly the undamaged ones: the refusals are for the damage, not the key."""
    exe = _clam_exe()
    data = build_cvd({"daily.hdb": f"{md5(exe)}:{len(exe)}:Kinds.Cvd.Clam\n".encode()})
    damage, message = DAMAGES[case]
    db = tmp_path / "db"
    db.mkdir()
    (db / f"daily{suffix}").write_bytes(damage(data))
    (tmp_path / "clam.exe").write_bytes(exe)
    proc = _clamscan(db / f"daily{suffix}", tmp_path / "clam.exe")
    assert proc.returncode == 2, proc.stdout
    if suffix == ".cvd" or case in ("short", "empty", "header"):
        assert message in proc.stderr, proc.stderr
    else:  # a .cld's header is not checked: clamscan stops at the .info signature
        assert "Incorrect digital signature" in proc.stderr or "Malformed" in proc.stderr
    with pytest.raises(DatabaseError, match="can't verify database integrity"):
        load_database([db], use_cache=False)
    # A .cld's header is freshclam's own, not checked (cvd.c skips it): a damaged header
    # signature, or a cut after the tar's end block (cli_tgzload stops there too) still load;
    # a flipped byte breaks the gzip stream, a changed .hdb the signed .info.
    accepts = case == "intact" or (suffix == ".cld" and case in ("dsig", "truncated"))
    if accepts:
        engine = Engine(load_database([db], use_cache=False, cvd_keys=signing_keys().public))
        assert engine.scan_bytes(exe).names == ("Kinds.Cvd.Clam",)
    else:
        with pytest.raises(DatabaseError, match="can't verify database integrity"):
            load_database([db], use_cache=False, cvd_keys=signing_keys().public)


# -- groups: same names per sample -------------------------------------------------------------


@dataclass
class Group:
    name: str
    db: dict[str, str]
    samples: dict[str, bytes]
    expect: dict[str, set[str]]
    clam_args: tuple[str, ...] = ()


def _zip(members: dict[str, bytes], tmp: Path, password: str | None = None) -> bytes:
    """A zip made by Info-ZIP's zip (a real tool; -P for traditional encryption)."""
    work = tmp / "zipwork"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name, data in members.items():
        (work / name).write_bytes(data)
    args = ["zip", "-q", "-X"] + (["-P", password] if password else []) + ["out.zip",
                                                                          *members]
    subprocess.run(args, cwd=work, check=True)
    return (work / "out.zip").read_bytes()


def _groups(tmp: Path) -> list[Group]:
    exe = _clam_exe()
    sha = hashlib.sha256(exe).hexdigest()
    h1, h2, h3 = (b"\x00\x01ign sample " + bytes([c]) * 30 for c in b"123")
    l1, l2, l3 = (f"{md5(h)}:{len(h)}:Ign.Sig{i}" for i, h in enumerate((h1, h2, h3), 1))
    ign_line = f"Ign.Ldb;Target:0;0;{b'IGNLDBMARK'.hex()}"
    ign_ndb = f"Ign.Ndb:0:*:{b'IGNNDBMARK'.hex()}"
    payload = b"MZ not really a program" + bytes(range(256))
    zips = {
        "zip_named": _zip({"invoice.exe": payload, "readme.txt": b"hello"}, tmp),
        "zip_encrypted": _zip({"invoice.exe": payload}, tmp, password="infected"),
        "zip_other": _zip({"notes.txt": payload}, tmp),
    }
    imp_string = b"kernel32.exitprocess,user32.messageboxa"
    inner_zip = _zip({"payload.bin": b"INTERMARK " * 50}, tmp)
    return [
        Group(
            "ign2-md5",
            {"a.hdb": "\n".join([l1, l2, l3]),
             "b.ndb": ign_ndb, "c.ldb": ign_line,
             "d.cdb": "\n".join([r"Ign.Cdb1:CL_TYPE_ZIP:*:one\.txt$:*:*:*:*:*:*",
                                 r"Ign.Cdb2:CL_TYPE_ZIP:*:two\.txt$:*:*:*:*:*:*"]),
             "e.yar": "\n".join(f'rule {r} {{ strings: $a = "{r.upper()}MARK" condition: $a }}'
                                for r in ("IgnYara1", "IgnYara2")),
             "x.ign2": "\n".join([
                 f"Ign.Sig1:{md5(l1.encode())}",  # the right line: retired
                 f"Ign.Sig2:{md5(b'some other line')}",  # a wrong MD5: still detects
                 f"Ign.Ndb:{md5(ign_ndb.encode())}",
                 f"Ign.Ldb:{md5(b'Ign.Ldb')}",  # an .ldb line hashes whole, not its name
                 f"Ign.Cdb1:{md5(b'Ign.Cdb1')}",  # .cdb: ClamAV hashes only the name
                 f"IgnYara1:{md5(b'IgnYara1')}",  # YARA: the rule name
                 f"IgnYara2:{md5(b'YARA.IgnYara2')}",  # not the reported name
             ])},
            {"one": h1, "two": h2, "three": h3, "ndb": b"\x00 IGNNDBMARK \x01",
             "ldb": b"\x00 IGNLDBMARK \x01",
             "zip": _zip({"one.txt": b"1", "two.txt": b"2"}, tmp),
             "yara": b"\x00 IGNYARA1MARK IGNYARA2MARK \x01"},
            {"one": set(), "two": {"Ign.Sig2"}, "three": {"Ign.Sig3"}, "ndb": set(),
             "ldb": {"Ign.Ldb"}, "zip": {"Ign.Cdb2"}, "yara": {"YARA.IgnYara2"}},
        ),
        Group(
            "hash-star-allmatch",
            # (Several names for one hash and size are not compared: which one ClamAV reports
            # depends on where its unstable sort and binary search land.)
            {"a.hdb": "\n".join([f"{md5(exe)}:{len(exe)}:Hash.Sized",
                                 f"{md5(exe)}:*:Hash.Star:73"]),
             "b.hsb": "\n".join([f"{sha}:*:Sha.Star:73",
                                 f"{sha}:{len(exe)}:Sha.Sized:1:300",
                                 f"{sha}:{len(exe)}:Sha.Retired:1:100"])},
            {"clam": exe, "other": exe + b"x"},
            {"clam": {"Hash.Sized", "Hash.Star", "Sha.Sized", "Sha.Star"}, "other": set()},
        ),
        Group(
            "cdb",
            {"a.cdb": "\n".join([
                r"Cdb.Name:CL_TYPE_ZIP:*:invoice\.exe$:*:*:*:*:*:*",
                f"Cdb.Size:CL_TYPE_ZIP:*:*:*:{len(payload)}:0:*:*:*",
                r"Cdb.Pos2:CL_TYPE_ZIP:*:\.txt$:*:*:*:2:*:*",
                r"Cdb.Enc:*:*:\.exe$:*:*:1:*:*:*",
                f"Cdb.Range:CL_TYPE_ZIP:*:*:*:{len(payload) - 1}-{len(payload) + 1}:*:*:*:*",
                r"Cdb.Rar:CL_TYPE_RAR:*:\.exe$:*:*:*:*:*:*",
                r"Cdb.Crc:CL_TYPE_ZIP:*:readme:*:*:*:*:00000001:*",
                r"Cdb.Future:CL_TYPE_ZIP:*:*:*:*:*:*:*:*:999",
            ])},
            zips,
            {"zip_named": {"Cdb.Name", "Cdb.Size", "Cdb.Pos2", "Cdb.Range", "Cdb.Crc"},
             "zip_encrypted": {"Cdb.Name", "Cdb.Enc", "Cdb.Range", "Heuristics.Encrypted.Zip"},
             "zip_other": {"Cdb.Size", "Cdb.Range"}},
            clam_args=("--alert-encrypted",),
        ),
        Group(
            "yara",
            {"r.yar": "\n".join([
                'rule KindsText { strings: $a = "KINDSYARAMARK" condition: $a }',
                "rule KindsHex { strings: $h = { 4B 49 4E 44 53 59 41 52 } condition: $h }",
                'rule KindsBoth { strings: $a = "ALPHAMARK" $b = "OMEGAMARK" '
                "condition: $a and $b }",
            ])},
            {"text": b"\x00 KINDSYARAMARK \x01", "both": b"\x00ALPHAMARK..OMEGAMARK\x01",
             "half": b"\x00ALPHAMARK....\x01", "none": b"\x00 nothing \x01"},
            {"text": {"YARA.KindsText", "YARA.KindsHex"}, "both": {"YARA.KindsBoth"},
             "half": set(), "none": set()},
        ),
        Group(
            "imp",
            {"a.imp": "\n".join([f"{md5(imp_string)}:{len(imp_string)}:Imp.Md5",
                                 f"{hashlib.sha256(imp_string).hexdigest()}:*:Imp.Sha256",
                                 f"{md5(imp_string)}:{len(imp_string) + 1}:Imp.WrongSize"])},
            {"clam": exe, "zip": (TESTFILES / "clam.zip").read_bytes(), "text": b"MZ only"},
            {"clam": {"Imp.Md5", "Imp.Sha256"}, "zip": {"Imp.Md5", "Imp.Sha256"},
             "text": set()},
        ),
        Group(
            # ClamAV types anything starting with MZ as CL_TYPE_MSEXE: target 1 applies, and it
            # is not normalised, so a PCRE without /i stays case-sensitive there; plain text is
            # matched as target 7 only in its normalised (lower-case) form.
            "mz-and-text-targets",
            {"a.ndb": "\n".join([f"T7.Upper:7:*:{b'EVILCODE'.hex()}",
                                  f"T1.Upper:1:*:{b'EVILCODE'.hex()}",
                                  f"T0.Lower:0:*:{b'evilcode'.hex()}"]),
             "b.ldb": "\n".join([
                 f"Pcre.Lower;Target:0;0&1;{b'header'.hex()};0/evilcode/",
                 f"Pcre.Upper;Target:0;0&1;{b'header'.hex()};0/EVILCODE/",
                 "Pcre.Mz;Target:0;0&1;4d5a;0/evilcode/",
             ])},
            {"mz_text": b"MZ some header bytes EVILCODE here\n",
             "mz_binary": b"MZ\x00\x01\x02 EVILCODE header\xff\n",
             # HTML behind MZ is MSEXE too: not normalised into nocomment/notags either.
             "mz_html": b"MZ<html><body>some header bytes EVILCODE here</body></html>\n",
             "text": b"XX some header bytes EVILCODE here\n"},
            {"mz_text": {"T1.Upper", "Pcre.Upper"}, "mz_binary": {"T1.Upper", "Pcre.Upper"},
             "mz_html": {"T1.Upper", "Pcre.Upper"},
             "text": {"T0.Lower", "Pcre.Upper", "Pcre.Lower"}},
        ),
        Group(
            # Intermediates: the container types above the layer, parent last; CL_TYPE_ANY is
            # skipped without using a level (ClamAV's quirk) but counts for the depth.
            "intermediates",
            {"a.ldb": "\n".join(
                f"Inter.{n};Engine:81-255,Target:0,Intermediates:{chain};0;{b'INTERMARK'.hex()}"
                for n, chain in (("Zip", "CL_TYPE_ZIP"), ("ZipZip", "CL_TYPE_ZIP>CL_TYPE_ZIP"),
                                 ("GzZip", "CL_TYPE_GZ>CL_TYPE_ZIP"),
                                 ("AnyZip", "CL_TYPE_ANY>CL_TYPE_ZIP"),
                                 ("ZipAny", "CL_TYPE_ZIP>CL_TYPE_ANY"),
                                 ("Tar", "CL_TYPE_POSIX_TAR")))},
            {"single": inner_zip, "outer": _zip({"inner.zip": inner_zip}, tmp),
             "gz": gzip.compress(inner_zip, mtime=0), "plain": b"INTERMARK " * 50},
            {"single": {"Inter.Zip"}, "outer": {"Inter.Zip", "Inter.ZipZip", "Inter.AnyZip",
                                                "Inter.ZipAny"},
             "gz": {"Inter.Zip", "Inter.GzZip", "Inter.AnyZip", "Inter.ZipAny"},
             "plain": set()},
        ),
        Group(
            # VI: the subsignature must start at a PE version-information string key; the
            # same bytes elsewhere (a value) do not count. Real PEs from clamav-testfiles.
            "vi",
            {"a.ldb": "\n".join([
                "Vi.Product;Engine:51-255,Target:1;0;VI:" + _utf16("ProductName")
                + "0000000063006c0061006d00",
                "Vi.ValueOnly;Engine:51-255,Target:1;0;VI:63006c0061006d00",
                "Vi.Plain;Engine:51-255,Target:1;0;63006c0061006d00",
                "Vi.Both;Engine:51-255,Target:1;0&1;4d5a;VI:" + _utf16("FileVersion"),
                "Vi.Count;Engine:51-255,Target:1;0>1;VI:" + _utf16("File"),
            ])},
            {"ismsi": (TESTFILES / "clam_ISmsi_ext.exe").read_bytes(),
             "autoit": (TESTFILES / "clam.ea06.exe").read_bytes(), "clam": exe},
            {"ismsi": {"Vi.Product", "Vi.Plain", "Vi.Both", "Vi.Count"},
             "autoit": {"Vi.Both"}, "clam": set()},
        ),
        Group(
            # Container names ClamAV's type of the parent, variants included (cpio formats,
            # POSIX vs old tar); ClamAV's own test files.
            "container-types",
            {"a.ldb": "\n".join(
                f"Cont.{n};Engine:81-255,Target:0,Container:CL_TYPE_{t};0;434c414d"
                for n, t in (("Newc", "CPIO_NEWC"), ("Odc", "CPIO_ODC"), ("Cab", "MSCAB"),
                             ("Arj", "ARJ"), ("Tar", "POSIX_TAR"), ("OldTar", "OLD_TAR")))},
            {name: (TESTFILES / name).read_bytes() for name in (
                "clam.newc.cpio", "clam.odc.cpio", "clam.bin-le.cpio", "clam.cab", "clam.arj",
                "clam.tar.gz")},
            {"clam.newc.cpio": {"Cont.Newc"}, "clam.odc.cpio": {"Cont.Odc"},
             "clam.bin-le.cpio": set(), "clam.cab": {"Cont.Cab"}, "clam.arj": {"Cont.Arj"},
             "clam.tar.gz": {"Cont.Tar"}},
        ),
        Group(
            # What each container's reader passes to cli_matchmeta: zip and ARJ the entry
            # number from 1 and the compressed size, cab and 7z 0 for both.
            "cdb-containers",
            {"a.cdb": "\n".join(
                [f"{n}.Pos{p}:CL_TYPE_{t}:*:*:*:*:*:{p}:*:*" for n, t in (
                    ("Z7", "7Z"), ("Arj", "ARJ"), ("Cab", "MSCAB")) for p in (0, 1)]
                + [f"{n}.Cs{c}:CL_TYPE_{t}:*:*:{c}:*:*:*:*:*" for n, t in (
                    ("Z7", "7Z"), ("Arj", "ARJ"), ("Cab", "MSCAB")) for c in ("0", "1-0")]
                + [r"Any.Name:*:*:clam\.exe$:*:544:0:*:*:*"])},
            {name: (TESTFILES / name).read_bytes() for name in ("clam.7z", "clam.arj",
                                                                "clam.cab")},
            {"clam.7z": {"Z7.Pos0", "Z7.Cs0", "Any.Name"},
             "clam.arj": {"Arj.Pos1", "Arj.Cs1-0", "Any.Name"},
             "clam.cab": {"Cab.Pos0", "Cab.Cs0", "Any.Name"}},
        ),
    ]


def _utf16(text: str) -> str:
    return text.encode("utf-16-le").hex()


def _names_clamscan(db: Path, samples: Path, extra: tuple[str, ...]) -> dict[str, set[str]]:
    proc = _clamscan(db, samples, "--allmatch", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    out: dict[str, set[str]] = {}
    for line in proc.stdout.splitlines():
        path, _, verdict = line.rpartition(": ")
        names = out.setdefault(Path(path).name, set())
        if verdict.endswith(" FOUND"):
            names.add(verdict[: -len(" FOUND")].removesuffix(".UNOFFICIAL"))
    return out


def _names_zerohour(db: Path, samples: Path) -> dict[str, set[str]]:
    # (prefixes=False: clamscan's hash semantics, as `zerohour scan` runs; the gateway also
    # hashes the prefixes of a PE whose end its headers do not tell, past clamscan)
    engine = Engine(load_database([db], strict=True, use_cache=False), allmatch=True,
                    prefixes=False)
    out = {}
    for p in sorted(samples.iterdir()):
        report = engine.scan_path(p)
        assert not report.errors, report.errors
        out[p.name] = set(report.names)
    return out


GROUP_NAMES = ["ign2-md5", "hash-star-allmatch", "cdb", "yara", "imp", "mz-and-text-targets",
               "intermediates", "vi",
               "container-types", "cdb-containers"]


@needs_clamscan
@pytest.mark.parametrize("name", GROUP_NAMES)
def test_same_names_as_clamscan(name: str, tmp_path: Path) -> None:
    group = next(g for g in _groups(tmp_path) if g.name == name)
    db, samples = tmp_path / "db", tmp_path / "samples"
    db.mkdir()
    samples.mkdir()
    for fname, text in group.db.items():
        (db / fname).write_text(text + "\n")
    for fname, data in group.samples.items():
        (samples / fname).write_bytes(data)
    clam = _names_clamscan(db, samples, group.clam_args)
    ours = _names_zerohour(db, samples)
    for sample, want in group.expect.items():
        assert clam.get(sample) == want, f"{sample}: clamscan says {clam.get(sample)}"
        assert ours.get(sample) == want, f"{sample}: zerohour says {ours.get(sample)}"


@needs_clamscan
@pytest.mark.parametrize(("ext", "line"), [
    ("hdb", "{m}:*:NoLevel"), ("hdb", "{m}:*:OldLevel:72"), ("hdb", "{m}:0:Zero"),
    ("ldb", "Unused.Subsig;Target:0;0;4d5a;434c414d"),  # highest ID 0, two subsignatures
])
def test_lines_clamscan_refuses_are_refused(ext: str, line: str, tmp_path: Path) -> None:
    exe = _clam_exe()
    db = tmp_path / "db"
    db.mkdir()
    (db / f"a.{ext}").write_text(line.format(m=md5(exe)) + "\n")
    (tmp_path / "clam.exe").write_bytes(exe)
    proc = _clamscan(db, tmp_path / "clam.exe")
    assert proc.returncode == 2
    assert "Malformed database" in proc.stderr
    with pytest.raises(DatabaseError):
        load_database([db], strict=True, use_cache=False)
    assert Engine(load_database([db], use_cache=False)).scan_bytes(exe).names == ()


def test_zip_members_are_noted_for_cdb(tmp_path: Path) -> None:
    """Without clamscan: what zip notes is what the directory says (and a stdlib zip)."""
    from zerohour.scan.archive import zip_children
    from zerohour.scan.limits import ScanContext
    from zerohour.scan.types import FileType

    buf = tmp_path / "z.zip"
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a/", b"")
        z.writestr("a/b.bin", b"x" * 100, compress_type=zipfile.ZIP_DEFLATED)
    ctx = ScanContext()
    list(zip_children(buf.read_bytes(), ctx))
    metas = [(m.container, m.name, m.size, m.encrypted, m.index) for m in ctx.members]
    assert metas == [(FileType.ZIP, "a/", 0, False, 0), (FileType.ZIP, "a/b.bin", 100, False, 1)]
    assert ctx.members[1].compressed_size is not None
    assert ctx.members[1].compressed_size < 100
