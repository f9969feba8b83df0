""".cvd/.cld verification (zerohour.scan.signatures.cvd): ClamAV's keys and algorithms, every
way a container can be damaged, and what a refused container does to a database load.

Containers are built by tests/conformance/cvd_factory.py and signed with a test key (ClamAV's
private keys are not ours); ClamAV's public keys must refuse every one of them, and must accept
a real header ClamAV signed. clamscan's verdicts on the same damaged files are compared in
tests/conformance/test_clamscan_kinds.py.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.cvd_factory import build_cvd, header_line, make_tar, sign_md5, signing_keys
from zerohour.errors import DatabaseError
from zerohour.scan import Engine, load_database
from zerohour.scan.signatures import cvd

EXE = Path("/usr/share/clamav-testfiles/clam.exe")
CLAM = EXE.read_bytes() if EXE.exists() else b"MZ stand-in for clam.exe" + bytes(200)
HDB = f"{hashlib.md5(CLAM).hexdigest()}:{len(CLAM)}:Cvd.Test.Clam\n".encode()

#: The header of ClamAV's published daily.cvd version 25784 (16 Apr 2020), signed by Talos.
REAL_HEADER = (
    "ClamAV-VDB:16 Apr 2020 07-58 -0400:25784:2267600:63:92baacd59fd26e6bcf03077add78d209:"
    "4Jp9JtGJY6nUk8JHDQQpQeBwlfXqskvhXL+vesDNqAeWCmjbudU+Hy/Nj4/BH2vl70c/R5B/VYY+eqqCQo6o7V"
    "GLqLJr/E+19gejqMp/iRcuHrtnLw6V/x3UjO3/qYVSlcJvAjtMI7FK32wjB+Sp8kaS/ZbfaFQp6trRQhisjqf:"
    "raynman:1587038339"
)
KEYS = signing_keys().public


def test_clamav_key_verifies_a_real_talos_signature() -> None:
    h = cvd.parse_header(REAL_HEADER)
    assert (h.version, h.sigs, h.flevel, h.builder, h.stime) == (25784, 2267600, 63, "raynman",
                                                                 1587038339)
    assert cvd.versig(h.md5, h.dsig, cvd.CLAMAV_KEYS.header)
    other = h.md5[:-1] + ("0" if h.md5[-1] != "0" else "1")
    assert not cvd.versig(other, h.dsig, cvd.CLAMAV_KEYS.header)
    assert not cvd.versig(h.md5, h.dsig[:-1], cvd.CLAMAV_KEYS.header)
    assert not cvd.versig(h.md5, h.dsig + "!", cvd.CLAMAV_KEYS.header)  # not a digit


def test_signed_with_the_test_key_loads_and_clamav_key_refuses_it() -> None:
    data = build_cvd({"daily.hdb": HDB})
    box = cvd.unpack(data, cld=False, keys=KEYS)
    assert [n for n, _ in box.members] == ["COPYING", "daily.info", "daily.hdb"]
    assert box.header.version == 27000
    with pytest.raises(DatabaseError, match="can't verify database integrity: bad digital"):
        cvd.unpack(data, cld=False)
    # A .cld skips the header, but its .info signature is ClamAV's too.
    with pytest.raises(DatabaseError, match=r"incorrect digital signature in the \.info"):
        cvd.unpack(data, cld=True)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def _resign(data: bytes, archive: bytes) -> bytes:
    """`data`'s header, re-signed (test key) for `archive`: damage behind a valid signature."""
    h = cvd.parse_header(data[:512].decode().rstrip())
    md5 = hashlib.md5(archive).hexdigest()
    head = header_line(h.version, h.sigs, h.flevel, md5, sign_md5(md5, signing_keys().header),
                       stime=h.stime)
    return head.encode().ljust(512, b" ") + archive


def _in_header(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda d: d[:512].replace(old, new, 1)[:512].ljust(512, b" ") + d[512:]


def _tar_of(data: bytes) -> bytes:
    return gzip.decompress(data[512:])


@pytest.mark.parametrize(("damage", "why"), [
    (lambda d: _flip(d, 700), "MD5 of the archive"),
    (lambda d: d[: len(d) - 20], "MD5 of the archive"),
    (lambda d: d[:300], "can't read the 512-byte header"),
    (lambda d: b"", "can't read the 512-byte header"),
    (lambda d: b"ClamAV-VDX" + d[10:], "no ClamAV-VDB header"),
    (_in_header(b":zerohour-test", b"x:zerohour-test"), "bad digital signature"),
    (_in_header(b":zerohour-test:1764806400", b""), "can't parse the builder name"),
    (_in_header(b":zerohour-test:1764806400", b":zerohour-test:1764806401"),
     "describes another version"),
])
def test_damaged_cvd_is_refused(damage: Callable[[bytes], bytes], why: str) -> None:
    data = build_cvd({"daily.hdb": HDB})
    with pytest.raises(DatabaseError, match=f"can't verify database integrity: .*{why}"):
        cvd.unpack(damage(data), cld=False, keys=KEYS)


def test_member_must_match_the_signed_info() -> None:
    good = build_cvd({"daily.hdb": HDB, "daily.ndb": b"N:0:*:41424344\n"})
    tar = _tar_of(good)
    # The .hdb changed after signing (same length), the archive re-signed: the .info catches it.
    bad = gzip.compress(tar.replace(HDB[:8], b"00000000", 1))
    with pytest.raises(DatabaseError, match=r"invalid checksum for daily\.hdb"):
        cvd.unpack(_resign(good, bad), cld=False, keys=KEYS)
    with pytest.raises(DatabaseError, match=r"invalid checksum for daily\.hdb"):
        cvd.unpack(_resign(good, bad), cld=True, keys=KEYS)


def test_info_signature_version_and_listing() -> None:
    unsigned = build_cvd({"daily.hdb": HDB}, sign_info=False)
    with pytest.raises(DatabaseError, match=r"digital signature not found in the \.info"):
        cvd.unpack(unsigned, cld=True, keys=KEYS)
    # A member the signed .info does not list, smuggled into a re-signed archive.
    good = build_cvd({"daily.hdb": HDB})
    members = cvd.unpack(good, cld=False, keys=KEYS).members
    smuggled = make_tar([*members, ("daily.ndb", b"N:0:*:41424344\n")])
    with pytest.raises(DatabaseError, match=r"daily\.ndb is not listed in the \.info"):
        cvd.unpack(_resign(good, gzip.compress(smuggled)), cld=False, keys=KEYS)
    # No .info at all; a path with a slash.
    for bad, why in ((make_tar(list(members[2:])), "no .info index"),
                     (make_tar([*members, ("sub/x.ndb", b"")]), "slash separators")):
        with pytest.raises(DatabaseError, match=why):
            cvd.unpack(_resign(good, gzip.compress(bad)), cld=False, keys=KEYS)


def test_info_must_describe_this_header() -> None:
    data = build_cvd({"daily.hdb": HDB}, version=27001)
    archive = data[512:]
    md5 = hashlib.md5(archive).hexdigest()
    head = header_line(27002, 1, 90, md5, sign_md5(md5, signing_keys().header))
    with pytest.raises(DatabaseError, match="describes another version"):
        cvd.unpack(head.encode().ljust(512, b" ") + archive, cld=False, keys=KEYS)


def test_plain_tar_container_and_no_info() -> None:
    plain = build_cvd({"daily.hdb": HDB}, compress=False)
    assert plain[512:519] == b"COPYING"
    assert len(cvd.unpack(plain, cld=False, keys=KEYS).members) == 3


def test_unpacked_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    big = build_cvd({"daily.ndb": b"N:0:*:41424344\n" * 40000})
    monkeypatch.setattr(cvd, "MAX_UNPACKED", 100_000)
    with pytest.raises(DatabaseError, match="unpacks to more than"):
        cvd.unpack(big, cld=False, keys=KEYS)


# -- in a database ---------------------------------------------------------------------------


def _db(tmp_path: Path, files: dict[str, bytes]) -> Path:
    d = tmp_path / "db"
    d.mkdir(exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def test_database_loads_every_record_kind_from_containers(tmp_path: Path) -> None:
    """main/daily/bytecode as freshclam leaves them, every record kind inside."""
    main = build_cvd({
        "main.hdb": HDB,
        "main.hsb": f"{hashlib.sha256(CLAM).hexdigest()}:*:Main.Sha:73\n".encode(),
        "main.mdb": b"512:" + b"0" * 32 + b":Main.Sect\n",
        "main.ndb": b"Main.Body:0:*:4142434445\n",
        "main.ldb": b"Main.Logic;Target:0;0;41424344\n",
        "main.fp": b"0" * 32 + b":12:Allowed\n",
        "main.crb": b"x;1;" + b"a" * 40 + b";;k;;1;0;0;;c\n",
        "main.idb": b"Icon1:GROUP:0a0b\n",
        "main.cdb": b"Main.Cdb:CL_TYPE_ZIP:*:evil\\.exe$:*:*:*:*:*:*\n",
    }, name="main", version=62)
    daily = build_cvd({
        "daily.msb": b"512:" + b"0" * 64 + b":Daily.Sect:73\n", "daily.sfp": b"0" * 64 + b":9:Ok\n",
        "daily.ign2": b"Main.Body\n", "daily.ftm": b"0:0:4d5a:PE:CL_TYPE_ANY:CL_TYPE_MSEXE\n",
        "daily.pdb": b"R:example.com\n", "daily.wdb": b"X:a:b\n", "daily.gdb": b"S:P:" + b"0" * 64
        + b"\n", "daily.cfg": b"DOCUMENT:0x0:0:0\n", "daily.imp": b"0" * 32 + b":39:Daily.Imp\n",
        "daily.hdu": b"0" * 32 + b":5:PUA.X\n", "daily.ign": b"daily.ldb:1:Main.Logic\n",
    }, version=27000)
    bytecode = build_cvd({"bytecode.cbc": b"ClamBCaa`|`````|`a`ab`b`aaa", "b2.cbc": b"ClamBC"},
                         name="bytecode", version=335)
    d = _db(tmp_path, {"main.cvd": main, "daily.cvd": daily, "bytecode.cvd": bytecode})
    db = load_database([d], use_cache=False, cvd_keys=KEYS)
    info = db.info()
    assert info.counts == {"hdb": 1, "hsb": 1, "mdb": 1, "msb": 1, "fp": 1, "sfp": 1,
                           "cdb": 1, "ftm": 1, "imp": 1, "ign2": 1, "ign": 1}
    assert info.skipped == {"ignored": 2, "certificate trust": 1, "icons": 1, "phishing": 3,
                            "cfg": 1, "pua": 1, "bytecode": 2, "info": 28,
                            "other files": 3}
    assert not info.warnings
    assert [c.split(":")[0] for c in info.containers] == ["bytecode.cvd", "daily.cvd",
                                                          "main.cvd"]
    assert "version 62, 9 signatures" in info.containers[2]


def test_a_refused_container_fails_the_whole_load(tmp_path: Path) -> None:
    d = _db(tmp_path, {"a.ndb": b"Loose:0:*:41424344\n",
                       "daily.cvd": _flip(build_cvd({"daily.hdb": HDB}), 900)})
    for strict in (False, True):
        with pytest.raises(DatabaseError, match=r"daily\.cvd: can't verify database integrity"):
            load_database([d], use_cache=False, strict=strict, cvd_keys=KEYS)


def test_cache_never_serves_a_test_key_verdict_to_a_real_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", str(tmp_path / "cache"))
    d = _db(tmp_path, {"daily.cvd": build_cvd({"daily.hdb": HDB})})
    db = load_database([d], cvd_keys=KEYS)
    assert db.info().counts == {"hdb": 1}
    assert load_database([d], cvd_keys=KEYS).from_cache
    with pytest.raises(DatabaseError, match="bad digital signature"):
        load_database([d])


def test_engine_detects_through_a_container_and_pickles(tmp_path: Path) -> None:
    d = _db(tmp_path, {"daily.cld": build_cvd({"daily.hdb": HDB})})
    engine = Engine(load_database([d], use_cache=False, cvd_keys=KEYS))
    assert engine.scan_bytes(CLAM).names == ("Cvd.Test.Clam",)
    assert pickle.loads(pickle.dumps(engine.db.extras)) is not None


def test_a_bomb_behind_a_signed_index_is_refused_before_it_is_unpacked() -> None:
    """A .cld's header is not signed: behind a genuine signed .info, a member the index lists
    with another size (here 64 MB of zeros, 64 KB compressed) is refused from its tar header,
    before its content is decompressed."""
    import time

    good = build_cvd({"daily.hdb": HDB})
    members = cvd.unpack(good, cld=True, keys=KEYS).members
    bomb = make_tar([members[0], members[1], ("daily.hdb", bytes(64 << 20))])
    archive = gzip.compress(bomb, compresslevel=1)
    started = time.monotonic()
    with pytest.raises(DatabaseError, match=r"invalid checksum for daily\.hdb"):
        cvd.unpack(good[:512] + archive, cld=True, keys=KEYS)
    assert time.monotonic() - started < 5
