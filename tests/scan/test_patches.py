"""Files patches and git transfers carry (`zerohour.scan.patches`), made and applied by the real
tools (the oracles): `git format-patch --binary` / `git apply`, `diff -a` / `patch`, and
`git bundle create` / `git clone` (with deltas between versions of a file)."""

from __future__ import annotations

import base64
import hashlib
import random
import subprocess
import zlib
from pathlib import Path

import pytest

from helpers.tools import tool
from zerohour.scan import Engine, patches
from zerohour.scan.limits import ScanContext

CLAM = Path("/usr/share/clamav-testfiles/clam.exe")
NAME = "Clam.Test.File"
ENV = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x.test", "GIT_COMMITTER_NAME": "a",
       "GIT_COMMITTER_EMAIL": "a@x.test", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}



def git(repo: Path, *args: str) -> bytes:
    return subprocess.run([tool("git"), "-c", "init.defaultBranch=main", *args], cwd=repo,
                          env=ENV, capture_output=True, check=True).stdout


def _empty_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    return path


def attached(data: bytes, name: str) -> bytes:
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain"
            b"\r\n\r\nplease apply\r\n--B\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=" + name.encode()
            + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data)
            + b"--B--\r\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    (r / "README").write_text("a project\n")
    git(r, "add", "README")
    git(r, "commit", "-q", "-m", "start")
    return r


def test_a_git_binary_patch_inline_and_attached(clam_engine: Engine, repo: Path,
                                                tmp_path: Path) -> None:
    (repo / "tool.exe").write_bytes(CLAM.read_bytes())
    git(repo, "add", "tool.exe")
    git(repo, "commit", "-q", "-m", "add the tool")
    patch = git(repo, "format-patch", "--binary", "--stdout", "HEAD~1")
    assert b"GIT binary patch" in patch
    other = _empty_repo(tmp_path / "other")
    (tmp_path / "x.patch").write_bytes(patch)
    git(other, "apply", str(tmp_path / "x.patch"))
    assert (other / "tool.exe").read_bytes() == CLAM.read_bytes()
    assert clam_engine.scan_bytes(patch).names == (NAME,)  # the patch mail itself (`git am`)
    assert clam_engine.scan_bytes(attached(patch, "0001.patch")).names == (NAME,)


def test_a_binary_file_in_a_unified_diff(clam_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "tool.exe").write_bytes(CLAM.read_bytes())
    diff = subprocess.run(["diff", "-a", "-Naur", "a", "b"], cwd=tmp_path, capture_output=True,
                          check=False).stdout
    (tmp_path / "fix.diff").write_bytes(diff)
    (tmp_path / "c").mkdir()
    subprocess.run(["patch", "-s", "-p1", "-i", str(tmp_path / "fix.diff")], cwd=tmp_path / "c",
                   check=True)
    assert (tmp_path / "c" / "tool.exe").read_bytes() == CLAM.read_bytes()
    assert clam_engine.scan_bytes(attached(diff, "fix.diff")).names == (NAME,)


def test_a_git_bundle(clam_engine: Engine, repo: Path, tmp_path: Path) -> None:
    clam = CLAM.read_bytes()
    (repo / "tool.exe").write_bytes(clam)
    git(repo, "add", "tool.exe")
    git(repo, "commit", "-q", "-m", "tool")
    git(repo, "bundle", "create", str(tmp_path / "repo.bundle"), "main")
    subprocess.run([tool("git"), "clone", "-q", "-b", "main", str(tmp_path / "repo.bundle"),
                    str(tmp_path / "clone")], env=ENV, check=True, capture_output=True)
    assert (tmp_path / "clone" / "tool.exe").read_bytes() == clam
    bundle = (tmp_path / "repo.bundle").read_bytes()
    report = clam_engine.scan_bytes(attached(bundle, "repo.bundle"))
    assert report.names == (NAME,)


def test_every_blob_of_a_pack_with_deltas(repo: Path, tmp_path: Path) -> None:
    """Versions of a large file: the pack stores all but one as deltas; each version comes
    out whole, as `git cat-file` gives it."""
    rng = random.Random(1)
    big = bytearray(rng.randbytes(60_000))
    for i in range(4):
        big[i * 1000 : i * 1000 + 10] = rng.randbytes(10)
        (repo / "data.bin").write_bytes(bytes(big) + CLAM.read_bytes() * i)
        git(repo, "add", "data.bin")
        git(repo, "commit", "-q", "-m", f"v{i}")
    git(repo, "gc", "-q", "--aggressive")
    git(repo, "bundle", "create", str(tmp_path / "repo.bundle"), "main")
    packs = [str(p) for p in (repo / ".git/objects/pack").glob("*.idx")]
    deltas = [ln for ln in git(repo, "verify-pack", "-v", *packs).splitlines()
              if len(ln.split()) == 7]  # sha type size size-in-pack offset depth base
    assert any(ln.split()[1] == b"blob" for ln in deltas)
    objects = git(repo, "rev-list", "--objects", "--all").split()
    want = {git(repo, "cat-file", "blob", sha.decode()) for sha in objects if len(sha) == 40
            and git(repo, "cat-file", "-t", sha.decode()).strip() == b"blob"}
    got = {c.data for c in patches.pack_blobs((tmp_path / "repo.bundle").read_bytes(),
                                              ScanContext())}
    assert want <= got


def _decoy_then_clam(repo: Path) -> bytes:
    """Two commits: app.exe as a near copy of clam.exe, then as clam.exe (git writes the
    second as a delta of the first)."""
    clam = CLAM.read_bytes()
    decoy = bytearray(clam)
    decoy[300:310] = b"0123456789"
    (repo / "app.exe").write_bytes(bytes(decoy))
    git(repo, "add", "app.exe")
    git(repo, "commit", "-q", "-m", "the tool")
    (repo / "app.exe").write_bytes(clam)
    git(repo, "commit", "-q", "-am", "fix the tool")
    return clam


def test_a_delta_patch_on_a_file_an_earlier_patch_wrote(clam_engine: Engine, repo: Path,
                                                        tmp_path: Path) -> None:
    """Round 10: one patch writes a decoy, the next turns it into clam.exe with a delta; `git
    am` applies both (the oracle). The delta is applied to the decoy the same text holds."""
    clam = _decoy_then_clam(repo)
    patches_text = git(repo, "format-patch", "--binary", "--stdout", "HEAD~2")
    assert b"\ndelta " in patches_text
    other = _empty_repo(tmp_path / "other")
    (tmp_path / "x.mbox").write_bytes(patches_text)
    git(other, "commit", "-q", "--allow-empty", "-m", "start")
    git(other, "am", "-q", str(tmp_path / "x.mbox"))
    assert (other / "app.exe").read_bytes() == clam
    assert clam_engine.scan_bytes(attached(patches_text, "fix.patch")).names == (NAME,)


def test_a_diff_that_creates_a_file_then_changes_it(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 10: one unified diff creates a decoy, the next turns it into clam.exe; `patch`
    applies both in turn (the oracle), and so do we."""
    clam = CLAM.read_bytes()
    decoy = bytearray(clam)
    decoy[300] ^= 0xFF
    (tmp_path / "decoy").write_bytes(bytes(decoy))
    (tmp_path / "real").write_bytes(clam)

    def diff(a: str, b: str, old: bytes, new: bytes) -> bytes:
        out = subprocess.run(["diff", "-a", "-u", a, b], cwd=tmp_path, capture_output=True,
                             check=False).stdout
        return b"--- " + old + b"\n+++ " + new + b"\n" + out.split(b"\n", 2)[2]

    text = (diff("/dev/null", "decoy", b"/dev/null", b"b/app.exe")
            + diff("decoy", "real", b"a/app.exe", b"b/app.exe"))
    (tmp_path / "update.diff").write_bytes(text)
    work = tmp_path / "w"
    work.mkdir()
    subprocess.run(["patch", "-s", "-p1", "-i", str(tmp_path / "update.diff")], cwd=work,
                   check=True)
    assert (work / "app.exe").read_bytes() == clam
    assert clam_engine.scan_bytes(attached(text, "update.diff")).names == (NAME,)


@pytest.mark.parametrize("style", ["context", "normal", "unified-crlf"])
def test_other_diff_formats_that_create_a_file(clam_engine: Engine, tmp_path: Path,
                                               style: str) -> None:
    """Round 11: `diff -c -N`, plain `diff` and a unified diff saved with CRLF line ends all
    create clam.exe with `patch` (the oracle)."""
    clam = CLAM.read_bytes()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "tool.exe").write_bytes(clam)
    if style == "normal":
        text = subprocess.run(["diff", "-a", "/dev/null", "b/tool.exe"], cwd=tmp_path,
                              capture_output=True, check=False).stdout
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "tool.exe").write_bytes(b"")
        subprocess.run(["patch", "-s", "tool.exe"], input=text, cwd=tmp_path / "c", check=True)
    else:
        flag = "-c" if style == "context" else "-u"
        text = subprocess.run(["diff", "-a", flag, "-N", "-r", "a", "b"], cwd=tmp_path,
                              capture_output=True, check=False).stdout
        if style == "unified-crlf":
            text = text.replace(b"\n", b"\r\n")
        (tmp_path / "c").mkdir()
        subprocess.run(["patch", "-s", "-p1"], input=text, cwd=tmp_path / "c", check=True)
    assert (tmp_path / "c" / "tool.exe").read_bytes() == clam
    assert clam_engine.scan_bytes(attached(text, "fix.diff")).names == (NAME,)


def _pack(objects: list[tuple[int, bytes, bytes]]) -> bytes:
    """A version 2 pack of (type, base name for a REF delta or b"", data) objects."""
    out = b"PACK" + (2).to_bytes(4, "big") + len(objects).to_bytes(4, "big")
    for kind, base, data in objects:
        size = len(data)
        head = [(kind << 4) | (size & 0x0F)]
        size >>= 4
        while size:
            head[-1] |= 0x80
            head.append(size & 0x7F)
            size >>= 7
        out += bytes(head) + base + zlib.compress(data)
    return out + hashlib.sha1(out).digest()


def test_a_ref_delta_before_its_base(tmp_path: Path, repo: Path) -> None:
    """Round 11: a REF delta placed before the object it is based on; `git index-pack`
    resolves it (the oracle), and so do we."""
    clam = CLAM.read_bytes()
    base = bytes(clam[:300]) + b"decoy" * 50
    name = hashlib.sha1(b"blob %d\x00" % len(base) + base).digest()
    delta = (_varint(len(base)) + _varint(len(clam))
             + bytes([0x80 | 0x01 | 0x10 | 0x20, 0, 300 & 0xFF, 300 >> 8])  # copy 300 bytes
             + b"".join(bytes([len(c)]) + c for c in (clam[i : i + 100]
                                                       for i in range(300, len(clam), 100))))
    pack = _pack([(7, name, delta), (3, b"", base)])
    (tmp_path / "x.pack").write_bytes(pack)
    subprocess.run([tool("git"), "index-pack", "-o", str(tmp_path / "x.idx"),
                    str(tmp_path / "x.pack")], cwd=repo, env=ENV, check=True,
                   capture_output=True)
    got = {c.data for c in patches.pack_blobs(pack, ScanContext())}
    assert clam in got


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_a_delta_patch_without_its_base_is_unsupported(clam_engine: Engine, repo: Path) -> None:
    """A delta against a file the mail does not hold (the recipient's, or another part's):
    what `git apply` writes is not ours to read (round 11)."""
    _decoy_then_clam(repo)
    patch = git(repo, "format-patch", "--binary", "--stdout", "HEAD~1")
    assert b"\ndelta " in patch
    assert clam_engine.scan_bytes(attached(patch, "0002.patch")).names == (
        "Heuristics.Unsupported.GitPatch.Delta",)


def test_a_binary_diff_against_a_file_the_text_does_not_hold(clam_engine: Engine,
                                                             tmp_path: Path) -> None:
    """Round 10: a context diff turns a decoy attached beside it into clam.exe (`patch`);
    we do not join two parts: a diff changing binary data whose base we do not hold is
    `Heuristics.Unsupported.Diff.BinaryBase`. A text diff against the recipient's files is
    ordinary patch mail: no finding."""
    clam = CLAM.read_bytes()
    decoy = bytearray(clam)
    decoy[300] ^= 0xFF
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "app.exe").write_bytes(bytes(decoy))
    (tmp_path / "b" / "app.exe").write_bytes(clam)
    text = subprocess.run(["diff", "-a", "-c", "-r", "a", "b"], cwd=tmp_path,
                          capture_output=True, check=False).stdout
    subprocess.run(["patch", "-s", "-p1"], input=text, cwd=tmp_path / "a", check=True)
    assert (tmp_path / "a" / "app.exe").read_bytes() == clam
    assert clam_engine.scan_bytes(attached(text, "app.diff")).names == (
        "Heuristics.Unsupported.Diff.BinaryBase",)
    (tmp_path / "a" / "notes.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "b" / "notes.txt").write_text("one\n2\nthree\n")
    plain = subprocess.run(["diff", "-u", "a/notes.txt", "b/notes.txt"], cwd=tmp_path,
                           capture_output=True, check=False).stdout
    assert clam_engine.scan_bytes(attached(plain, "notes.diff")).names == ()


def test_a_long_chain_of_ref_deltas_in_reverse_order() -> None:
    """Each delta is applied once its base is known, however the pack orders the chain."""
    base = b"version 0 " * 20
    objects: list[tuple[int, bytes, bytes]] = [(3, b"", base)]
    current = base
    for i in range(1, 300):
        name = hashlib.sha1(b"blob %d\x00" % len(current) + current).digest()
        extra = b"+%d" % i
        delta = (_varint(len(current)) + _varint(len(current) + len(extra))
                 + bytes([0x80 | 0x10 | 0x20, len(current) & 0xFF, len(current) >> 8])
                 + bytes([len(extra)]) + extra)
        objects.append((7, name, delta))
        current += extra
    got = {c.data for c in patches.pack_blobs(_pack(list(reversed(objects))), ScanContext())}
    assert current in got
    assert len(got) == 300


def _patched_p1_and_found(engine: Engine, tmp_path: Path, text: bytes) -> None:
    """`patch -p1` (the oracle) makes payload.b64, clam.exe's base64, from `text`; the
    engine finds clam.exe in `text` attached to a mail."""
    work = tmp_path / "w"
    work.mkdir()
    subprocess.run([tool("patch"), "-s", "-p1"], input=text, cwd=work, check=True)
    assert base64.b64decode((work / "payload.b64").read_bytes()) == CLAM.read_bytes()
    assert engine.scan_bytes(attached(text, "fix.diff")).names == (NAME,)


def _b64_lines(clam: bytes) -> list[bytes]:
    b64 = base64.b64encode(clam)
    return [b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64)]


def test_a_context_diff_that_creates_a_file_then_changes_it(clam_engine: Engine,
                                                            tmp_path: Path) -> None:
    """Round 13: `diff -c` makes clam.exe's base64 with one wrong letter a line, a second
    context diff mends it; `patch` applies both in turn (the oracle)."""
    clam = CLAM.read_bytes()
    good = _b64_lines(clam)
    bad = [(b"Z" if ln[:1] != b"Z" else b"Y") + ln[1:] for ln in good]
    for d, lines in (("a", []), ("b", bad), ("c", good)):
        (tmp_path / d).mkdir()
        if lines:
            (tmp_path / d / "payload.b64").write_bytes(b"".join(lines))

    def diff(a: str, b: str) -> bytes:
        return subprocess.run([tool("diff"), "-c", "-N", "-r", a, b], cwd=tmp_path,
                              capture_output=True, check=False).stdout

    text = diff("a", "b") + diff("b", "c")
    _patched_p1_and_found(clam_engine, tmp_path, text)


@pytest.mark.parametrize("order", ["diff-e", "reversed", "shuffled"])
def test_an_ed_script_that_writes_a_file(clam_engine: Engine, tmp_path: Path,
                                         order: str) -> None:
    """Round 13: an ed script (`diff -e`) applied to an empty file by `patch -e` (the oracle)
    writes clam.exe's base64, its lines appended in order, in reverse or shuffled."""
    clam = CLAM.read_bytes()
    lines = _b64_lines(clam)
    if order == "diff-e":
        (tmp_path / "empty").write_bytes(b"")
        (tmp_path / "full").write_bytes(b"".join(lines))
        script = subprocess.run([tool("diff"), "-e", "empty", "full"], cwd=tmp_path,
                                capture_output=True, check=False).stdout
    elif order == "reversed":
        script = b"".join(b"0a\n" + ln + b".\n" for ln in reversed(lines))
    else:
        rng = random.Random(13)
        placed: list[int] = []  # indices of the lines written so far, in file order
        script = b""
        for i in rng.sample(range(len(lines)), len(lines)):
            at = sum(1 for j in placed if j < i)
            placed.insert(at, i)
            script += b"%da\n" % at + lines[i] + b".\n"
    (tmp_path / "payload.b64").write_bytes(b"")
    subprocess.run([tool("patch"), "-s", "-e", "payload.b64"], input=script, cwd=tmp_path,
                   check=True)
    assert base64.b64decode((tmp_path / "payload.b64").read_bytes()) == clam
    assert clam_engine.scan_bytes(attached(script, "payload.ed")).names == (NAME,)


def test_ed_scripts_only_whole() -> None:
    ctx = ScanContext()
    assert list(patches.ed_script_file(b"3 apples\nand pears\n", ctx)) == []
    out = list(patches.ed_script_file(b"0a\nline one is long enough\n.\n5d\n", ctx))
    assert [c.data for c in out] == [b"line one is long enough\n"]  # (5d: "?", ed goes on)
    out = list(patches.ed_script_file(b"0a\nfirst line, long enough\n.\n1c\nsecond one\n.\nw\n",
                                      ctx))
    assert [c.data for c in out] == []  # shorter than 16 bytes
    lines = patches.apply_ed(b"0a\nabc\n.\n1s/a/\\9/\n1s/b/B/\n", [], ctx)
    assert lines == [b"aBc\n"]  # a bad replacement: "?", and ed goes on
    out = list(patches.ed_script_file(b"0a\nb\nc\n.\n0a\na line of text here\n.\n2d\n", ctx))
    assert [c.data for c in out] == [b"a line of text here\nc\n"]


@pytest.mark.parametrize("style", ["substitute", "insert", "lines-patch-skips"])
def test_ed_scripts_with_more_commands(clam_engine: Engine, tmp_path: Path, style: str) -> None:
    """Rounds 14 and 15: lines written with a junk first character that `s/.//` removes (how
    diff -e writes a line that is a dot), lines inserted with `1i` in reverse, decoy lines
    deleted around ed commands patch -e skips; `patch -e` (the oracle)."""
    clam = CLAM.read_bytes()
    lines = _b64_lines(clam)
    if style == "substitute":
        script = b"0a\n" + b"".join(b"Q" + ln for ln in lines) + b".\n" + b"".join(
            b"%ds/.//\n" % (i + 1) for i in range(len(lines)))
    elif style == "insert":
        script = b"0a\n" + lines[-1] + b".\n" + b"".join(
            b"1i\n" + ln + b".\n" for ln in reversed(lines[:-1]))
    else:  # round 15: `1` and `.+1d` are ed commands patch -e leaves out
        mixed = [x for ln in lines for x in (ln, b"%064d\n" % len(ln))]
        script = b"0a\n" + b"".join(mixed) + b".\n1\n.+1d\n" + b"".join(
            b"%dd\n" % n for n in range(len(mixed), 0, -2))
    (tmp_path / "payload.b64").write_bytes(b"")
    subprocess.run([tool("patch"), "-s", "-e", "payload.b64"], input=script, cwd=tmp_path,
                   check=True)
    assert base64.b64decode((tmp_path / "payload.b64").read_bytes()) == clam
    assert clam_engine.scan_bytes(attached(script, "payload.ed")).names == (NAME,)


def _with_decoys(clam: bytes) -> tuple[list[bytes], list[bytes]]:
    good = _b64_lines(clam)
    mixed: list[bytes] = []
    for i, ln in enumerate(good):
        mixed += [ln, b"%064d\n" % i]
    return good, mixed


def test_sections_after_an_index_line_and_quoted_names(clam_engine: Engine,
                                                       tmp_path: Path) -> None:
    """Round 14: a unified section makes a file with a decoy line after each line; an
    `Index:` section with a normal diff, then one with a C-quoted name, mend it; `patch -p1`
    (the oracle) applies them in turn."""
    clam = CLAM.read_bytes()
    good, mixed = _with_decoys(clam)
    made = (b'--- /dev/null\n+++ "b/payload.b64"\n@@ -0,0 +1,%d @@\n' % len(mixed)
            + b"".join(b"+" + ln for ln in mixed))
    half = len(mixed) // 2 // 2 * 2  # the first half of the decoys by a normal diff
    normal = b"Index: x/payload.b64\n" + b"".join(
        b"%dd%d\n< " % (j + 1, j // 2 + 1) + mixed[j] for j in range(1, half, 2))
    (tmp_path / "mid").write_bytes(b"".join(mixed[:half:2] + mixed[half:]))
    (tmp_path / "end").write_bytes(b"".join(good))
    rest = subprocess.run([tool("diff"), "-u", "mid", "end"], cwd=tmp_path,
                          capture_output=True, check=False).stdout.split(b"\n", 2)[2]
    quoted = b'--- "a/payl\\157ad.b64"\n+++ "b/payl\\157ad.b64"\n' + rest
    text = made + normal + quoted
    _patched_p1_and_found(clam_engine, tmp_path, text)


@pytest.mark.parametrize("kind", ["normal", "ed", "unified"])
def test_a_patch_for_another_attachment(clam_engine: Engine, tmp_path: Path, kind: str) -> None:
    """Round 14: the base64 with a decoy line after each line, and a patch deleting the
    decoys, attached side by side: `patch payload.b64 < fix` (the oracle)."""
    clam = CLAM.read_bytes()
    good, mixed = _with_decoys(clam)
    (tmp_path / "payload.b64").write_bytes(b"".join(mixed))
    (tmp_path / "good").write_bytes(b"".join(good))
    flag = {"normal": [], "ed": ["-e"], "unified": ["-u"]}[kind]
    fix = subprocess.run([tool("diff"), *flag, "payload.b64", "good"], cwd=tmp_path,
                         capture_output=True, check=False).stdout
    ed = ["-e"] if kind == "ed" else []
    subprocess.run([tool("patch"), "-s", *ed, "payload.b64"], input=fix, cwd=tmp_path,
                   check=True)
    assert base64.b64decode((tmp_path / "payload.b64").read_bytes()) == clam
    body = b"".join(
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b"filename=" + name + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data) for name, data in ((b"payload.b64", b"".join(mixed)),
                                                     (b"fix.diff", fix)))
    mail = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + body + b"--B--\r\n")
    assert clam_engine.scan_bytes(mail).names == (NAME,)


def test_a_quilt_series_in_a_tarball(clam_engine: Engine, tmp_path: Path) -> None:
    """Round 14: patches/series lists a patch that makes payload.b64 with decoy lines and
    one that deletes them; applying the series in order with `patch -p1` (the oracle)."""
    import tarfile

    clam = CLAM.read_bytes()
    good, mixed = _with_decoys(clam)
    (tmp_path / "a").mkdir()
    for d, lines in (("b", mixed), ("c", good)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "payload.b64").write_bytes(b"".join(lines))

    def diff(a: str, b: str) -> bytes:
        return subprocess.run([tool("diff"), "-u", "-N", "-r", a, b], cwd=tmp_path,
                              capture_output=True, check=False).stdout

    patches_dir = tmp_path / "q" / "patches"
    patches_dir.mkdir(parents=True)
    (patches_dir / "02-fix.patch").write_bytes(diff("b", "c"))  # (listed second)
    (patches_dir / "01-make.patch").write_bytes(diff("a", "b"))
    (patches_dir / "series").write_bytes(b"01-make.patch\n02-fix.patch\n")
    work = tmp_path / "w"
    work.mkdir()
    for name in ("01-make.patch", "02-fix.patch"):
        subprocess.run([tool("patch"), "-s", "-p1", "-i", str(patches_dir / name)], cwd=work,
                       check=True)
    assert base64.b64decode((work / "payload.b64").read_bytes()) == clam
    with tarfile.open(tmp_path / "fix.tar", "w") as tar:
        for name in ("series", "02-fix.patch", "01-make.patch"):
            tar.add(patches_dir / name, arcname=f"patches/{name}")
    data = (tmp_path / "fix.tar").read_bytes()
    assert clam_engine.scan_bytes(attached(data, "fix.tar")).names == (NAME,)
