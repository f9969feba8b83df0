"""Files that patches and git transfers carry: the literal files of git binary patches
(`git format-patch --binary`, applied by `git am`/`git apply`), new files in unified diffs of
binary data (`diff -a`, applied by `patch`), and the blobs of git packfiles and bundles
(`git clone repo.bundle`). Round 9 of the hostile-sender tests delivered clam.exe in each.

Hand-written because no library reads these for a scanner: dulwich would (packs, deltas) but
wants a repository around them; the formats are short (git's base85 and zlib, a pack's
object headers and its copy/insert deltas), every size is bounded by the scan's limits, and
an object that does not decode is skipped (a pack we cannot follow is a broken container).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

from zerohour.scan.archive import zlib_bounded
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

# -- git binary patches -------------------------------------------------------------------------

_GIT_BINARY = re.compile(rb"GIT binary patch\r?\n(literal|delta) (\d+)\r?\n")
_B85_LINE = re.compile(rb"([A-Za-z])([0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+)\r?\n")


def _length(ch: int) -> int:
    return ch - 64 if ch <= 90 else ch - 96 + 26  # "A".."Z" 1-26, "a".."z" 27-52


_DIFF_GIT = re.compile(rb"(?m)^diff --git a/(\S+) b/(\S+)")


def git_binary_patches(text: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The files the git binary patches in `text` write: a literal as is, a delta applied to
    the file a literal earlier in the same text wrote at that path (round 10: a decoy, then
    a delta turning it into clam.exe). Only each file's forward patch counts (the second one
    undoes it); a delta against a file the text does not hold is skipped."""
    if b"GIT binary patch" not in text:
        return
    files: dict[bytes, bytes] = {}
    headers = [(m.start(), m.group(2)) for m in _DIFF_GIT.finditer(text)]
    section_of = {start: path for start, path in headers}
    starts = [start for start, _ in headers]
    done: set[int] = set()  # sections whose forward patch was read
    for m in _GIT_BINARY.finditer(text):
        ctx.check_time()
        section = -1
        for at in starts:  # (few sections: a linear look is fine)
            if at < m.start():
                section = at
        if section in done:
            continue  # the reverse patch
        if section >= 0:
            done.add(section)
        pos = m.end()
        raw = bytearray()
        while (line := _B85_LINE.match(text, pos)) is not None:
            try:
                raw += base64.b85decode(line.group(2))[: _length(line.group(1)[0])]
            except ValueError:
                break
            pos = line.end()
        if not raw:
            continue
        # A damaged literal is no finding: `git apply` refuses it (its size and stream are
        # checked), and a text carrier's wrong guess at an armored patch is one (FP sweep)
        out, _end, _complete = zlib_bounded(bytes(raw), 15, ctx)
        path = section_of.get(section)
        if m.group(1) == b"delta":
            base = files.get(path) if path is not None else None
            if base is None or not out:
                continue
            out = _apply_delta(base, out, ctx)
        if path is not None:
            files[path] = out
        if out:
            ctx.charge_child(len(out))
            yield Child(data=out, name=None, origin="git-binary-patch", is_attachment=True)


# -- unified diffs ------------------------------------------------------------------------------

_NEW_FILE_HUNK = re.compile(rb"(?m)^@@ -0,0 \+1(?:,(\d+))? @@[^\n]*\n")
_NO_NEWLINE = b"\\ No newline at end of file"


def new_files_in_diffs(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Files a unified diff creates (`@@ -0,0 +1,N @@`): their added lines without the "+",
    as `patch` writes them; with `diff -a` these are the raw bytes of a binary file."""
    if b"@@ -0,0 +1" not in data:
        return
    for m in _NEW_FILE_HUNK.finditer(data):
        ctx.check_time()
        want = int(m.group(1)) if m.group(1) else 1
        lines: list[bytes] = []
        pos = m.end()
        newline = True
        while len(lines) < want and data[pos : pos + 1] == b"+":
            end = data.find(b"\n", pos)
            if end < 0:
                lines.append(data[pos + 1 :])
                newline = False
                break
            lines.append(data[pos + 1 : end])
            pos = end + 1
        if data.startswith(_NO_NEWLINE, pos):
            newline = False
        content = b"\n".join(lines) + (b"\n" if newline and lines else b"")
        if len(content) >= 16 and content != data:
            ctx.charge_child(len(content))
            yield Child(data=content, name=None, origin="diff-new-file", is_attachment=True)


# -- git packs and bundles ----------------------------------------------------------------------

_PACK = b"PACK\x00\x00\x00"
_BLOB, _OFS_DELTA, _REF_DELTA = 3, 6, 7
_TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_MAX_OBJECTS = 100_000


def is_bundle_or_pack(data: bytes) -> bool:
    return data.startswith((b"# v2 git bundle\n", b"# v3 git bundle\n", _PACK))


def pack_blobs(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The blobs (file contents) of a git bundle's or a packfile's objects, deltas resolved
    against objects of the same pack."""
    at = data.find(_PACK) if not data.startswith(_PACK) else 0
    if at < 0 or len(data) < at + 12 or data[at + 7] not in (2, 3):
        return
    count = int.from_bytes(data[at + 8 : at + 12], "big")
    pos = at + 12
    by_offset: dict[int, tuple[int, bytes]] = {}
    by_name: dict[bytes, tuple[int, bytes]] = {}
    for _ in range(min(count, _MAX_OBJECTS)):
        ctx.check_time()
        start = pos
        if pos >= len(data):
            ctx.broken("GitPack")
            return
        c = data[pos]
        kind, pos, shift = (c >> 4) & 7, pos + 1, 4
        while c & 0x80 and pos < len(data):  # the size (not needed: zlib says where it ends)
            c = data[pos]
            pos, shift = pos + 1, shift + 7
        base: tuple[int, bytes] | None = None
        if kind == _OFS_DELTA:
            c = data[pos] if pos < len(data) else 0
            pos += 1
            back = c & 0x7F
            while c & 0x80 and pos < len(data):
                c = data[pos]
                pos += 1
                back = ((back + 1) << 7) | (c & 0x7F)
            base = by_offset.get(start - back)
        elif kind == _REF_DELTA:
            base = by_name.get(data[pos : pos + 20])
            pos += 20
        out, end, complete = zlib_bounded(data, 15, ctx, start=pos)
        if not complete:
            ctx.broken("GitPack")
            return
        pos = end
        if kind in (_OFS_DELTA, _REF_DELTA):
            if base is None:
                continue  # a thin pack's base lives in the receiver's repository
            kind, out = base[0], _apply_delta(base[1], out, ctx)
        if kind not in _TYPE_NAMES:
            continue
        by_offset[start] = (kind, out)
        name = hashlib.sha1(_TYPE_NAMES[kind] + b" %d\x00" % len(out) + out,
                            usedforsecurity=False).digest()
        by_name[name] = (kind, out)
        if kind == _BLOB and out:
            ctx.charge_child(len(out))
            yield Child(data=out, name=None, origin="git-blob", is_attachment=True)


def _varint(delta: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(delta):
        c = delta[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            break
    return value, pos


def _apply_delta(source: bytes, delta: bytes, ctx: ScanContext) -> bytes:
    """git's delta: copy ranges of the base and insert new bytes (pack-format.txt)."""
    _src_size, pos = _varint(delta, 0)
    size, pos = _varint(delta, pos)
    ctx.check_output(min(size, ctx.output_bound() + 1))
    out = bytearray()
    while pos < len(delta) and len(out) <= size:
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy from the base
            offset = length = 0
            for i in range(4):
                if op & (1 << i):
                    offset |= delta[pos] << (8 * i) if pos < len(delta) else 0
                    pos += 1
            for i in range(3):
                if op & (0x10 << i):
                    length |= delta[pos] << (8 * i) if pos < len(delta) else 0
                    pos += 1
            out += source[offset : offset + (length or 0x10000)]
        elif op:  # insert `op` new bytes
            out += delta[pos : pos + op]
            pos += op
    return bytes(out[:size])
