"""Engine: the layer walk, allmatch, heuristics, allow-lists, reports, cache, pickling, threads."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from conformance.samples import make_pe
from zerohour.errors import ScanError
from zerohour.scan import Engine, FileType, Limits, load_database
from zerohour.scan.database import default_db_dirs
from zerohour.scan.types import FindingKind

MARK = b"ENGINETESTMARK"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", str(tmp_path / "cache"))


def make_db(root: Path, files: dict[str, str]) -> Path:
    d = root / "db"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text + "\n")
    return d


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def mail_with(payload: bytes, filename: str = "a.zip") -> bytes:
    import base64

    b64 = base64.encodebytes(payload).decode()
    return (
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        "Content-Type: text/plain\r\n\r\nhello\r\n--XX\r\n"
        f'Content-Type: application/octet-stream; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n"
    ).encode()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    d = make_db(tmp_path, {
        "a.ndb": f"Test.Mark:0:*:{MARK.hex()}\nTest.Eicar:0:*:{EICAR.hex()}",
        "b.hdb": f"{hashlib.md5(b'exact file').hexdigest()}:10:Test.Hash",
    })
    return Engine(load_database([d]))


def test_clean_and_infected(engine: Engine) -> None:
    assert not engine.scan_bytes(b"nothing here").infected
    rep = engine.scan_bytes(b"xx" + MARK + b"yy", "f")
    assert rep.names == ("Test.Mark",)
    assert rep.findings[0].kind is FindingKind.SIGNATURE
    assert rep.db_version.startswith("local-")
    assert engine.scan_bytes(b"exact file").names == ("Test.Hash",)


def test_first_finding_stops_unless_allmatch(tmp_path: Path, engine: Engine) -> None:
    data = MARK + b" " + EICAR
    assert len(engine.scan_bytes(data).findings) == 1
    all_engine = Engine(engine.db, allmatch=True)
    assert set(all_engine.scan_bytes(data).names) == {"Test.Mark", "Test.Eicar"}


def test_layers_of_a_mail_with_a_zip(engine: Engine) -> None:
    inner = b"payload " + MARK
    msg = mail_with(zip_of({"evil.bin": inner}))
    rep = Engine(engine.db, allmatch=True).scan_bytes(msg, "msg")
    assert rep.names == ("Test.Mark",)
    assert rep.layers[0].filetype is FileType.MAIL
    assert rep.layers[0].depth == 0
    types = {layer.filetype for layer in rep.layers}
    assert FileType.ZIP in types
    leaf = [layer for layer in rep.layers if layer.md5 == hashlib.md5(inner).hexdigest()]
    assert leaf
    assert leaf[0].depth >= 2
    assert rep.findings[0].path.startswith("msg/")


def test_recursion_limit_is_a_heuristic_finding(engine: Engine) -> None:
    import gzip

    data = b"deep"
    for _ in range(6):
        data = gzip.compress(data, mtime=0)
    shallow = Engine(engine.db, limits=Limits(max_recursion=3))
    rep = shallow.scan_bytes(data)
    assert rep.names == ("Heuristics.Limits.Exceeded.MaxRecursion",)
    assert rep.findings[0].kind is FindingKind.HEURISTIC
    off = Engine(engine.db, limits=Limits(max_recursion=3), heuristics=False)
    assert not off.scan_bytes(data).infected
    quiet = Engine(engine.db, limits=Limits(max_recursion=3, alert_exceeds_max=False))
    assert not quiet.scan_bytes(data).infected
    assert not engine.scan_bytes(data).infected  # default depth 17 is enough


def test_leaf_at_the_deepest_level_is_not_a_limit_hit(engine: Engine) -> None:
    import gzip

    data = gzip.compress(gzip.compress(b"leaf", mtime=0), mtime=0)
    assert not Engine(engine.db, limits=Limits(max_recursion=2)).scan_bytes(data).infected


def test_file_count_limit(engine: Engine) -> None:
    data = zip_of({f"f{i}.txt": b"x%d" % i for i in range(20)})
    rep = Engine(engine.db, limits=Limits(max_files=5)).scan_bytes(data)
    assert rep.names == ("Heuristics.Limits.Exceeded.MaxFiles",)


def test_file_size_limit_on_the_root(tmp_path: Path, engine: Engine) -> None:
    small = Engine(engine.db, limits=Limits(max_file_size=100))
    assert small.scan_bytes(b"x" * 200).names == ("Heuristics.Limits.Exceeded.MaxFileSize",)
    p = tmp_path / "big"
    p.write_bytes(b"x" * 200)
    assert small.scan_path(p).names == ("Heuristics.Limits.Exceeded.MaxFileSize",)


def _encrypt_flag(z: bytes) -> bytes:
    """Set the 'encrypted' bit in every local and central header (content stays plain)."""
    out = bytearray(z)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = out.find(sig)
        while i >= 0:
            (flags,) = struct.unpack_from("<H", out, i + off)
            struct.pack_into("<H", out, i + off, flags | 1)
            i = out.find(sig, i + 4)
    return bytes(out)


def test_encrypted_zip_is_a_heuristic_finding(engine: Engine) -> None:
    data = _encrypt_flag(zip_of({"secret.exe": b"MZ secret"}))
    rep = engine.scan_bytes(data)
    assert len(rep.names) == 1
    assert rep.names[0].startswith("Heuristics.Encrypted.")
    assert not Engine(engine.db, heuristics=False).scan_bytes(data).infected


def test_allow_list_covers_children_not_siblings(tmp_path: Path) -> None:
    allowed_zip = zip_of({"a.bin": b"allowed " + MARK})
    other_zip = zip_of({"a.bin": b"other " + MARK})
    inner_ok = b"member " + MARK
    d = make_db(tmp_path, {
        "a.ndb": f"Test.Mark:0:*:{MARK.hex()}",
        "a.fp": f"{hashlib.md5(allowed_zip).hexdigest()}:{len(allowed_zip)}:Allowed.Zip",
        "b.sfp": f"{hashlib.sha256(inner_ok).hexdigest()}:{len(inner_ok)}:Allowed.Member",
    })
    eng = Engine(load_database([d]), allmatch=True)
    assert not eng.scan_bytes(allowed_zip).infected
    assert eng.scan_bytes(other_zip).names == ("Test.Mark",)
    both = zip_of({"ok.bin": inner_ok, "bad.bin": b"bad " + MARK})
    rep = eng.scan_bytes(both, "z")
    assert rep.names == ("Test.Mark",)
    assert [f.path for f in rep.findings] == ["z/bad.bin"]


def test_ign2_drops_signatures(tmp_path: Path) -> None:
    d = make_db(tmp_path, {"a.ndb": f"Test.Mark:0:*:{MARK.hex()}", "x.ign2": "Test.Mark"})
    db = load_database([d])
    assert db.info().skipped == {"ignored": 1}
    assert not Engine(db).scan_bytes(MARK).infected


def test_text_layers_match_normalised(tmp_path: Path) -> None:
    d = make_db(tmp_path, {"a.ndb": f"Txt:7:*:{b'eval(unescape(x))'.hex()}"})
    eng = Engine(load_database([d]))
    assert eng.scan_bytes(b"var a = 1;\nEVAL(UNESCAPE(x))\n").names == ("Txt",)
    assert not eng.scan_bytes(b"\x00\x01binary eval(unescape(x))\x00\xff").infected


def test_logical_signature_with_pcre(tmp_path: Path) -> None:
    d = make_db(tmp_path, {"a.ldb": f"L.P;Engine:81-255,Target:0;0&1;{b'trigger'.hex()};"
                                    "0/pay[0-9]{2}load/"})
    eng = Engine(load_database([d]))
    assert eng.scan_bytes(b"trigger .. pay42load").names == ("L.P",)
    assert not eng.scan_bytes(b"trigger .. pay4load").infected
    assert not eng.scan_bytes(b"pay42load").infected


def test_scan_path_errors_are_scan_errors(tmp_path: Path, engine: Engine) -> None:
    with pytest.raises(ScanError):
        engine.scan_path(tmp_path / "missing")


def test_database_cache_round_trip(tmp_path: Path) -> None:
    d = make_db(tmp_path, {"a.ndb": f"Test.Mark:0:*:{MARK.hex()}"})
    first = load_database([d])
    second = load_database([d])
    assert not first.from_cache
    assert second.from_cache
    assert second.digest == first.digest
    assert Engine(second).scan_bytes(MARK).names == ("Test.Mark",)
    (d / "a.ndb").write_text(f"Other.Name:0:*:{MARK.hex()}\n")
    third = load_database([d])
    assert not third.from_cache  # new content, new key
    assert Engine(third).scan_bytes(MARK).names == ("Other.Name",)


def test_same_size_edit_is_noticed(tmp_path: Path) -> None:
    d = make_db(tmp_path, {"a.ndb": f"Name.AAAA:0:*:{MARK.hex()}"})
    assert not load_database([d]).from_cache
    assert load_database([d]).from_cache  # stat fast path
    (d / "a.ndb").write_text(f"Name.BBBB:0:*:{MARK.hex()}\n")  # same size
    db = load_database([d])
    assert Engine(db).scan_bytes(MARK).names == ("Name.BBBB",)


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    d = make_db(tmp_path, {"a.ndb": f"Test.Mark:0:*:{MARK.hex()}"})
    load_database([d])
    for f in (tmp_path / "cache").iterdir():
        f.write_bytes(b"garbage")
    db = load_database([d])
    assert not db.from_cache
    assert Engine(db).scan_bytes(MARK).infected


def test_cache_can_be_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", "off")
    d = make_db(tmp_path, {"a.ndb": f"Test.Mark:0:*:{MARK.hex()}"})
    load_database([d])
    assert not load_database([d]).from_cache
    assert not (tmp_path / "cache").exists()


def test_engine_pickles_by_reconstruction(engine: Engine) -> None:
    blob = pickle.dumps(Engine(engine.db, allmatch=True, limits=Limits(max_files=7)))
    assert len(blob) < 2000  # the db itself is not shipped
    clone = pickle.loads(blob)
    assert clone.allmatch
    assert clone.limits.max_files == 7
    assert clone.db.from_cache
    assert clone.scan_bytes(MARK).names == ("Test.Mark",)


def test_engine_is_thread_safe(engine: Engine) -> None:
    errors: list[BaseException] = []
    samples = [(b"clean %d" % i, ()) for i in range(4)] + [
        (MARK + b"%d" % i, ("Test.Mark",)) for i in range(4)
    ]

    def work(data: bytes, want: tuple[str, ...]) -> None:
        try:
            for _ in range(30):
                assert engine.scan_bytes(mail_with(zip_of({"x": data}))).names == want
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=s) for s in samples]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_default_db_dirs_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHOUR_DB_DIR", str(tmp_path))
    assert default_db_dirs() == [tmp_path]
    monkeypatch.delenv("ZEROHOUR_DB_DIR")
    dirs = default_db_dirs()
    assert all(p.name == "db" and p.parent.name == "data" for p in dirs)


def test_pe_layer_reports_sections(engine: Engine) -> None:
    pe = make_pe(b"\x90\xc3code", b"data")
    rep = engine.scan_bytes(pe)
    assert rep.layers[0].filetype is FileType.PE
    assert [s.name for s in rep.layers[0].pe_sections] == [".text", ".data"]


def _mail_of(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart mail of (part headers, body) pairs, each body base64."""
    import base64

    body = b"".join(b"--BB\r\n" + h + b"Content-Transfer-Encoding: base64\r\n\r\n"
                    + base64.encodebytes(b) for h, b in parts)
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n" + body + b"--BB--\r\n")


def test_a_clean_twin_is_listed_not_scanned_again(tmp_path: Path) -> None:
    """The same clean bytes under the same name in two places (a zip attached to a mail and
    the same zip inside another): the second copy is listed, its members not walked again."""
    engine = Engine(load_database([make_db(tmp_path, {"m.ndb": f"Mark:0:*:{MARK.hex()}"})]))
    inner = zip_of({"a.txt": b"harmless " * 50, "b.txt": b"also harmless " * 50})
    att = b"Content-Type: application/zip; name=in.zip\r\n"
    msg = _mail_of((att, inner), (b"Content-Type: application/zip\r\n", zip_of({"in.zip": inner})))
    report = engine.scan_bytes(msg)
    assert report.names == ()
    layers = list(report.layers)
    twins = [i for i, la in enumerate(layers) if la.md5 == hashlib.md5(inner).hexdigest()]
    assert len(twins) >= 2, [la.path for la in layers]
    walked = [i for i in twins
              if i + 1 < len(layers) and layers[i + 1].depth > layers[i].depth]
    assert walked == twins[:1], [la.path for la in layers]  # the first copy's members only


def test_an_infected_twin_is_still_reported_with_allmatch(tmp_path: Path) -> None:
    engine = Engine(load_database([make_db(tmp_path, {"m.ndb": f"Mark:0:*:{MARK.hex()}"})]),
                    allmatch=True)
    inner = zip_of({"a.txt": b"x " + MARK})
    att = b"Content-Type: application/zip; name=in.zip\r\n"
    msg = _mail_of((att, inner), (b"Content-Type: application/zip\r\n", zip_of({"in.zip": inner})))
    report = engine.scan_bytes(msg)
    assert len([f for f in report.findings if f.name == "Mark"]) == 2, report.findings


def test_the_same_page_as_body_and_as_attachment_is_checked_for_script() -> None:
    """Seen first as a mail's HTML body (no client runs its script, and the MIME walker used
    to yield each content once), then as an attachment: the attachment is checked."""
    page = b"<html><body><script>go()</script></body></html>\r\n"
    msg = _mail_of((b"Content-Type: text/html\r\n", page),
                   (b"Content-Type: text/html; name=a.html\r\n"
                    b"Content-Disposition: attachment; filename=a.html\r\n", page))
    engine = Engine(load_database(default_db_dirs()))
    assert engine.scan_bytes(msg).names == ("Heuristics.HTML.Script",)


def test_the_same_bytes_as_txt_and_as_html_in_a_zip_are_checked_for_script() -> None:
    """An archive yields each content once, and once more under a name a browser renders."""
    page = b"just text, then <img src=x onerror=go()> and more words"  # sniffs as text
    zipped = zip_of({"a.txt": page, "b.html": page})
    msg = _mail_of((b"Content-Type: application/zip; name=x.zip\r\n", zipped))
    engine = Engine(load_database(default_db_dirs()))
    assert engine.scan_bytes(msg).names == ("Heuristics.HTML.Script",)
