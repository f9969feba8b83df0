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

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.archive import zlib_bounded
from zerohour.scan.limits import MAX_FILES, ScanContext
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
    undoes it); a delta against a file the text does not hold is
    `Heuristics.Unsupported.GitPatch.Delta`."""
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
                # the file it changes is the recipient's (or in another part of the mail):
                # what `git apply` writes is not ours to read (round 11)
                ctx.unsupported("GitPatch", "Delta")
                continue
            out = _apply_delta(base, out, ctx)
        if path is not None:
            files[path] = out
        if out:
            ctx.charge_child(len(out))
            yield Child(data=out, name=None, origin="git-binary-patch", is_attachment=True)


# -- unified diffs ------------------------------------------------------------------------------

# (possessive: a name and the rest of its line split every way was cubic: 8 KB cost 25 s)
_FILE_HEADER = re.compile(rb"(?m)^--- ([^\t\n]++)[^\n]*+\n\+\+\+ ([^\t\n]++)[^\n]*+\n")
_HUNK = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@[^\n]*\n")
_MAX_FILES = 1024


def _path(name: bytes) -> bytes:
    """A file's name as sections of a patch refer to it: its last component (`patch -p1`
    strips `a/`, `b/`, or `c/` of `diff -r b c`; round 13), a C-quoted name unquoted as
    git and patch do (`"a/payl\\157ad.b64"`, round 14)."""
    name = name.strip()
    if name[:1] == b'"' and name[-1:] == b'"' and len(name) > 1:
        name = _C_ESCAPE.sub(lambda m: _C_CHARS.get(m.group(1)) or bytes(
            [int(m.group(1), 8) & 0xFF]), name[1:-1])
    return name.rsplit(b"/", 1)[-1]


_C_ESCAPE = re.compile(rb"\\([0-7]{1,3}|[abfnrtv\\\"])")
_C_CHARS = {b"a": b"\a", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t",
            b"v": b"\v", b"\\": b"\\", b'"': b'"'}


def new_files_in_diffs(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The files a unified diff writes, as `patch` applies it: a new file (`--- /dev/null`,
    with `diff -a` the raw bytes of a binary), and a file an earlier diff in the same text
    wrote, patched again (round 10: a decoy created, then changed into clam.exe). A diff
    against a file the text does not hold is skipped (the recipient's copy is not ours),
    unless it changes binary data (`diff -a`: NUL bytes in its lines): what `patch` writes
    then is `Heuristics.Unsupported.Diff.BinaryBase` (round 10: a context diff turning an
    attached decoy into clam.exe). Text diffs against the recipient's files are ordinary
    patch mail."""
    if data.count(b"\r\n") == data.count(b"\n"):  # a diff saved with CRLF: patch strips them
        data = data.replace(b"\r\n", b"\n")
    binary = b"\x00" in data
    if binary and _OTHER_CHANGES.search(data) and _BINARY_CHANGE_LINE.search(data):
        ctx.unsupported("Diff", "BinaryBase")  # a context or normal diff changing a file
    yield from _other_diff_formats(data, ctx)
    unified = b"\n@@ -" in data or data.startswith(b"@@ -")
    context = b"\n***************" in data
    if not unified and not context:
        return
    indexed = b"\nIndex: " in data or data.startswith(b"Index: ")
    headers = sorted([*((m, _apply_hunks) for m in _FILE_HEADER.finditer(data) if unified),
                      *((m, _apply_context) for m in _CONTEXT_HEADER.finditer(data)
                        if context),
                      *((m, None) for m in _INDEX.finditer(data) if indexed)],
                     key=lambda h: h[0].start())
    files: dict[bytes, list[bytes]] = {}
    for i, (m, apply) in enumerate(headers):
        ctx.check_time()
        if len(files) >= _MAX_FILES:
            return
        if apply is None:  # `Index: name`, then a normal diff or an ed script (round 14)
            end = headers[i + 1][0].start() if i + 1 < len(headers) else len(data)
            changed = _indexed_section(data[m.end() : end], _path(m.group(1)), files, ctx)
            if changed is not None:
                yield changed
            continue
        old, new = m.group(1).strip(), _path(m.group(2))
        if old == b"/dev/null" or data.startswith(b"@@ -0,0 ", m.end()) or data.startswith(
                b"***************\n*** 0 ****", m.end()):  # (`diff -N`)
            base: list[bytes] = []
        elif new in files or _path(old) in files:
            base = files[new] if new in files else files[_path(old)]
        else:
            if binary and b"\x00" in b"".join(apply(data, m.end(), []) or []):
                ctx.unsupported("Diff", "BinaryBase")  # (its hunks' own lines only)
            continue
        lines = apply(data, m.end(), base)
        if lines is None:
            continue
        files[new] = lines
        content = b"".join(lines)
        if len(content) >= 16:
            ctx.charge_child(len(content))
            yield Child(data=content, name=None, origin="diff-file", is_attachment=True)


#: A context (not `*** 0 ****`) or normal (`NcM`, `NdM`, `NaM` after line N > 0) hunk that
#: changes an existing file (we apply neither format's changes).
_BINARY_CHANGE_LINE = re.compile(rb"(?m)^(?:[!+-] |[<>] )[^\n]*\x00")
_OTHER_CHANGES = re.compile(rb"(?m)^\*\*\* (?!0 \*\*\*\*)\d+(?:,\d+)? \*\*\*\*$"
                            rb"|^[1-9]\d*(?:,\d+)?[acd]\d+(?:,\d+)?$")


#: A context diff (`diff -c -N`) and a normal diff (`diff`) creating a file: its lines follow,
#: behind "+ " and "> " (round 11).
_CONTEXT_NEW = re.compile(rb"(?m)^\*\*\* 0 \*\*\*\*\n--- 1(?:,(\d+))? ----\n")
_NORMAL_NEW = re.compile(rb"(?m)^0a1(?:,(\d+))?\n")


def _other_diff_formats(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    for pattern, prefix in ((_CONTEXT_NEW, b"+ "), (_NORMAL_NEW, b"> ")):
        if (pattern is _CONTEXT_NEW and b"\n*** 0 ****" not in data) or (
                pattern is _NORMAL_NEW and b"0a1" not in data):
            continue
        for m in pattern.finditer(data):
            ctx.check_time()
            want = int(m.group(1)) if m.group(1) else 1
            content = _prefixed_lines(data, m.end(), want, prefix)
            if len(content) >= 16:
                ctx.charge_child(len(content))
                yield Child(data=content, name=None, origin="diff-file", is_attachment=True)


#: A context diff's file header (`*** a/f`, `--- b/f`) before its first hunk (round 13: a
#: file made, then changed by a second section).
_CONTEXT_HEADER = re.compile(rb"(?m)^\*\*\* ([^\t\n]++)[^\n]*+\n--- ([^\t\n]++)[^\n]*+\n(?=\*{15})")
_CONTEXT_HUNK = re.compile(rb"\*{15}[^\n]*\n\*\*\* (\d+)(?:,(\d+))? \*\*\*\*\n")
_CONTEXT_NEW_PART = re.compile(rb"--- (\d+)(?:,(\d+))? ----\n")


def _context_part(data: bytes, pos: int, kinds: tuple[bytes, ...]) -> tuple[list[tuple[
        bytes, bytes]], int]:
    """The lines of one side of a context hunk from `pos`: (prefix, line) each, and where
    they end."""
    out: list[tuple[bytes, bytes]] = []
    while data[pos : pos + 2] in kinds:
        end = data.find(b"\n", pos)
        line = data[pos : len(data) if end < 0 else end + 1]
        out.append((line[:2], line[2:]))
        pos += len(line)
        if data.startswith(b"\\ No newline", pos) and out[-1][1].endswith(b"\n"):
            out[-1] = (out[-1][0], out[-1][1][:-1])
            end = data.find(b"\n", pos)
            pos = len(data) if end < 0 else end + 1
    return out, pos


def _apply_context(data: bytes, pos: int, base: list[bytes]) -> list[bytes] | None:
    """`base` with the context-diff hunks at `pos` applied, as `patch` does; None when the
    first one is not a hunk."""
    out: list[bytes] = []
    cursor = 0
    applied = False
    while (h := _CONTEXT_HUNK.match(data, pos)) is not None:
        applied = True
        first = int(h.group(1))
        last = int(h.group(2)) if h.group(2) is not None else first
        old, pos = _context_part(data, h.end(), (b"  ", b"- ", b"! "))
        n = _CONTEXT_NEW_PART.match(data, pos)
        if n is None:
            break
        new, pos = _context_part(data, n.end(), (b"  ", b"+ ", b"! "))
        if not new:  # its new side left out: the old one without its deletions
            new = [line for line in old if line[0] == b"  "]
        start = max(first - 1, 0)
        out.extend(base[cursor:start])
        cursor = max(cursor, start + (last - first + 1 if first > 0 else 0))
        out.extend(line for _kind, line in new)
    if not applied:
        return None
    out.extend(base[cursor:])
    return out


def _prefixed_lines(data: bytes, pos: int, want: int, prefix: bytes) -> bytes:
    """Up to `want` lines behind `prefix` from `pos`, without it (a "\\ No newline" line
    after the last drops its line end)."""
    lines: list[bytes] = []
    while len(lines) < want and data.startswith(prefix, pos):
        end = data.find(b"\n", pos)
        if end < 0:
            lines.append(data[pos + len(prefix) :])
            return b"".join(lines)
        lines.append(data[pos + len(prefix) : end + 1])
        pos = end + 1
    if lines and data.startswith(b"\\ No newline", pos):
        lines[-1] = lines[-1][:-1]
    return b"".join(lines)


def _apply_hunks(data: bytes, pos: int, base: list[bytes]) -> list[bytes] | None:
    """`base` (lines with their line ends) with the hunks at `pos` applied; None when the
    first one is not a hunk."""
    out: list[bytes] = []
    cursor = 0
    applied = False
    while (h := _HUNK.match(data, pos)) is not None:
        applied = True
        old_start = int(h.group(1))
        old_left = int(h.group(2)) if h.group(2) is not None else 1
        new_left = int(h.group(4)) if h.group(4) is not None else 1
        first = old_start - 1 if old_left else old_start
        out.extend(base[cursor:first])
        cursor = max(cursor, first)
        pos = h.end()
        last = b""
        while old_left > 0 or new_left > 0 or data.startswith(b"\\", pos):
            end = data.find(b"\n", pos)
            line = data[pos : len(data) if end < 0 else end + 1]
            pos += len(line)
            kind, body = line[:1], line[1:]
            if kind == b"\\":  # "\ No newline at end of file": for the line before
                if last in (b" ", b"+") and out and out[-1].endswith(b"\n"):
                    out[-1] = out[-1][:-1]
                last = b""
                continue
            if kind == b" ":
                out.append(body)
                cursor, old_left, new_left = cursor + 1, old_left - 1, new_left - 1
            elif kind == b"-":
                cursor, old_left = cursor + 1, old_left - 1
            elif kind == b"+":
                out.append(body)
                new_left -= 1
            else:
                break  # not a hunk line: a damaged diff, keep what was applied
            last = kind
            if not line:
                break
    if not applied:
        return None
    out.extend(base[cursor:])
    return out


# -- git packs and bundles ----------------------------------------------------------------------

_PACK = b"PACK\x00\x00\x00"
_BLOB, _OFS_DELTA, _REF_DELTA = 3, 6, 7
_TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_MAX_OBJECTS = 100_000


def is_bundle_or_pack(data: bytes) -> bool:
    return data.startswith((b"# v2 git bundle\n", b"# v3 git bundle\n", _PACK))


def pack_blobs(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The blobs (file contents) of a git bundle's or a packfile's objects, deltas resolved
    against objects of the same pack in any order (round 11: a REF delta before its base, a
    chain of them). A delta whose base is not in the pack (a thin pack: the receiver's
    repository holds it) is `Heuristics.Unsupported.GitPack.ThinDelta`: its file is not ours
    to read, and `git clone` of the bundle would write it."""
    at = data.find(_PACK) if not data.startswith(_PACK) else 0
    if at < 0 or len(data) < at + 12 or data[at + 7] not in (2, 3):
        return
    count = int.from_bytes(data[at + 8 : at + 12], "big")
    pos = at + 12
    by_offset: dict[int, tuple[int, bytes]] = {}
    by_name: dict[bytes, tuple[int, bytes]] = {}
    waiting: list[tuple[int, int | bytes, bytes]] = []  # (offset, base offset or name, delta)

    def done(start: int, kind: int, out: bytes) -> Child | None:
        by_offset[start] = (kind, out)
        if kind not in _TYPE_NAMES:
            return None
        by_name[_name(kind, out)] = (kind, out)
        if kind == _BLOB and out:
            ctx.charge_child(len(out))
            return Child(data=out, name=None, origin="git-blob", is_attachment=True)
        return None

    for _ in range(min(count, _MAX_OBJECTS)):
        ctx.check_time()
        start = pos
        if pos >= len(data):
            ctx.broken("GitPack")
            break
        c = data[pos]
        kind, pos = (c >> 4) & 7, pos + 1
        while c & 0x80 and pos < len(data):  # the size (not needed: zlib says where it ends)
            c = data[pos]
            pos += 1
        ref: int | bytes | None = None
        if kind == _OFS_DELTA:
            c = data[pos] if pos < len(data) else 0
            pos += 1
            back = c & 0x7F
            while c & 0x80 and pos < len(data):
                c = data[pos]
                pos += 1
                back = ((back + 1) << 7) | (c & 0x7F)
            ref = start - back
        elif kind == _REF_DELTA:
            ref = data[pos : pos + 20]
            pos += 20
        out, end, complete = zlib_bounded(data, 15, ctx, start=pos)
        if not complete:
            ctx.broken("GitPack")
            break
        pos = end
        if ref is not None:
            waiting.append((start, ref, out))
        elif kind in _TYPE_NAMES and (child := done(start, kind, out)) is not None:
            yield child
    # Deltas, each once its base is known: waiting lists by base, released as bases resolve
    # (linear however the chains run; a pass per chain link was quadratic).
    by_base: dict[int | bytes, list[tuple[int, bytes]]] = {}
    for start, ref, delta in waiting:
        by_base.setdefault(ref, []).append((start, delta))
    ready = [key for key in by_base if (key in by_offset if isinstance(key, int)
                                         else key in by_name)]
    while ready:
        ctx.check_time()
        key = ready.pop()
        base = by_offset[key] if isinstance(key, int) else by_name[key]
        for start, delta in by_base.pop(key, ()):
            kind, out = base[0], _apply_delta(base[1], delta, ctx)
            child = done(start, kind, out)
            for resolved in (start, _name(kind, out)):  # what waits on this object
                if resolved in by_base:
                    ready.append(resolved)
            if child is not None:
                yield child
    if by_base:
        ctx.unsupported("GitPack", "ThinDelta")


def _name(kind: int, data: bytes) -> bytes:
    """A git object's SHA-1 name (what a REF delta names its base by)."""
    return hashlib.sha1(_TYPE_NAMES.get(kind, b"") + b" %d\x00" % len(data) + data,
                        usedforsecurity=False).digest()


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


# -- ed scripts and normal diffs ------------------------------------------------------------------

_ADDR = rb"((?:\d+|\$|\.)?(?:[+-]\d*)*)"
_ED_COMMAND = re.compile(_ADDR + rb"(?:," + _ADDR + rb")?(?:([acdi])|(?<=[\d$.+-]))\r?\n"
                         rb"|" + _ADDR + rb"(?:," + _ADDR + rb")?s(/)((?:\\.|[^/\n])*)/"
                         rb"((?:\\.|[^/\n])*)/(g?)\r?\n")
_OFFSET = re.compile(rb"([+-])(\d*)")
#: What a layer that is an ed script starts with (a cheap gate: no copy of the layer).
ED_START = re.compile(rb"[\r\n]*\d+(?:,\d+)?[acdi]\r?\n")
_ED_END = frozenset({b"", b"w", b"q", b"wq", b"w\nq"})
_MAX_ED_COMMANDS = 100_000


def _bre(pattern: bytes) -> re.Pattern[bytes] | None:
    """An ed (POSIX basic) regular expression as Python's: `\\(`, `\\)`, `\\{`, `\\}` are
    groups and counts, bare ones literal."""
    out = bytearray()
    i = 0
    while i < len(pattern):
        c = pattern[i : i + 1]
        if c == b"\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1 : i + 2]
            out += nxt if nxt in b"(){}|+?" else c + nxt
            i += 2
            continue
        out += b"\\" + c if c in b"(){}|+?" else c
        i += 1
    try:
        return re.compile(bytes(out))
    except re.error:
        return None


#: The ed commands `patch -e` passes to ed (POSIX's a, c, d, i, s after line numbers); it
#: skips every other line of the script (round 15: `1` and `.+1d` are ed's, not patch's).
_PATCH_ED_LINE = re.compile(rb"\d+(?:,\d+)?[acdis]")


def apply_ed(text: bytes, base: list[bytes], ctx: ScanContext,
             as_patch: bool = False) -> list[bytes] | None:
    """`base` (lines with their ends) as an ed script (`diff -e`, applied by `patch -e`)
    leaves it: `a`, `i`, `c`, `d` and `s/RE/TEXT/` (diff -e's way of writing a line that is a
    dot; round 14), addresses with offsets, an address alone; a command whose address is
    past the end does nothing (ed says "?" and goes on). None when `text` is no ed script
    from its first line to its last."""
    lines = list(base)
    pos = commands = 0
    current = len(lines)
    while pos < len(text):
        if as_patch and not _PATCH_ED_LINE.match(text, pos):
            end = text.find(b"\n", pos)
            pos = len(text) if end < 0 else end + 1
            continue
        m = _ED_COMMAND.match(text, pos)
        if m is None:
            if text[pos:].strip().replace(b"\r", b"") in _ED_END:
                break
            return None
        commands += 1
        if commands > _MAX_ED_COMMANDS:  # (each may move every line: a bound on the work)
            raise ScanLimitExceeded(MAX_FILES, f"ed script of more than {_MAX_ED_COMMANDS} "
                                    "commands")
        if not commands & 0x3FF:
            ctx.check_time()
        pos = m.end()
        subst = m.group(6) is not None
        a_raw, b_raw = (m.group(4), m.group(5)) if subst else (m.group(1), m.group(2))
        first = _address(a_raw, current, len(lines), current)
        last = _address(b_raw, first, len(lines), current)
        if subst:
            rx = _bre(m.group(7))
            if rx is None or not 1 <= first <= last <= len(lines):
                continue  # ed says "?" and goes on with the next command (round 15)
            repl = re.sub(rb"(?<!\\)&", rb"\\g<0>", m.group(8))
            for n in range(first - 1, last):
                body = lines[n]
                end = len(body) - len(body.rstrip(b"\r\n"))
                try:
                    new = rx.sub(repl, body[: len(body) - end], count=0 if m.group(9) else 1)
                except (re.error, IndexError):  # a bad replacement (`\\9`): ed says "?" and
                    break  # goes on with the next command; this line and the rest unchanged
                lines[n] = new + body[len(body) - end :]
            current = last
            continue
        op = m.group(3)
        if not op:  # an address alone: that line becomes the current one (round 15)
            if 0 <= first <= len(lines):
                current = first
            continue
        block: list[bytes] = []
        if op != b"d":
            while pos < len(text):
                end = text.find(b"\n", pos)
                line = text[pos : len(text) if end < 0 else end + 1]
                pos += len(line)
                if line.rstrip(b"\r\n") == b".":
                    break
                block.append(line)
        if op == b"a" and 0 <= first <= len(lines):
            lines[first:first] = block
            current = first + len(block)
        elif op == b"i" and 0 <= first <= len(lines):
            at = max(first - 1, 0)
            lines[at:at] = block
            current = at + len(block)
        elif op in (b"c", b"d") and 1 <= first <= last <= len(lines):
            lines[first - 1 : last] = block if op == b"c" else []
            current = first - 1 + len(block) if op == b"c" else min(first, len(lines))
        # else: an address past the end; ed says "?" and goes on (round 15: no-op commands)
    return lines


def _address(raw: bytes | None, default: int, size: int, current: int) -> int:
    """An ed line address: a number, `$` (the last line) or `.` (the current one), with
    offsets (`.+1`, `$-2`, a bare `+` is one; round 15)."""
    if not raw:
        return default
    head = raw.rstrip(b"+-0123456789") if raw[:1] in (b"$", b".") else b""
    rest = raw[len(head):]
    if head == b"$":
        value = size
    elif head == b".":
        value = current
    else:
        digits = re.match(rb"\d+", rest)
        value = int(digits.group()) if digits else current
        rest = rest[digits.end():] if digits else rest
    for sign, n in _OFFSET.findall(rest):
        value += (int(n) if n else 1) * (1 if sign == b"+" else -1)
    return value


def ed_script_file(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The file an ed script (`diff -e`) writes when applied to an empty one, as `patch -e`
    does (round 13: base64 lines appended in reverse or shuffled order). Only a layer that
    is an ed script from its first line to its last."""
    text = data.lstrip(b"\r\n")
    seen: set[bytes] = set()
    for as_patch in (False, True):  # as `ed` runs the script, and as `patch -e` feeds it
        content = b"".join(apply_ed(text, [], ctx, as_patch) or [])
        if len(content) >= 16 and content not in seen:
            seen.add(content)
            ctx.charge_child(len(content))
            yield Child(data=content, name=None, origin="ed-file", is_attachment=True)


_NORMAL_HUNK = re.compile(rb"(\d+)(?:,(\d+))?([acd])(\d+)(?:,(\d+))?\r?\n")


def apply_normal(text: bytes, base: list[bytes]) -> list[bytes] | None:
    """`base` as a normal diff (`diff`, `NaM`, `NcM`, `NdM` hunks) leaves it, as `patch`
    applies it (its line numbers are those of the original); None when `text` holds no
    hunk."""
    out: list[bytes] = []
    cursor = 0
    pos = 0
    applied = False
    while (h := _NORMAL_HUNK.match(text, pos)) is not None:
        applied = True
        first = int(h.group(1))
        last = int(h.group(2)) if h.group(2) else first
        op = h.group(3)
        pos = h.end()
        added: list[bytes] = []
        while text.startswith((b"< ", b"> ", b"---", b"\\"), pos):
            end = text.find(b"\n", pos)
            line = text[pos : len(text) if end < 0 else end + 1]
            pos += len(line)
            if line.startswith(b"> "):
                added.append(line[2:])
        if op == b"a":
            out.extend(base[cursor:first])
            cursor = max(cursor, first)
        else:
            out.extend(base[cursor : first - 1])
            cursor = max(cursor, last)
        out.extend(added)
    if not applied:
        return None
    out.extend(base[cursor:])
    return out


# -- patches against the mail's other attachments and Index: sections -----------------------------

_INDEX = re.compile(rb"(?m)^Index: ([^\r\n]+)\r?\n(?:=+\r?\n)?")


def _indexed_section(body: bytes, name: bytes, files: dict[bytes, list[bytes]],
                     ctx: ScanContext) -> Child | None:
    """An `Index: name` section whose body is a normal diff or an ed script, applied to the
    file an earlier section wrote (round 14: a unified section makes a file, the next deletes
    its decoy lines), as `patch` does."""
    base = files.get(name)
    if base is None:
        return None
    lines = (apply_normal(body, base) if _NORMAL_HUNK.match(body)
             else apply_ed(body, base, ctx, as_patch=True) if _ED_COMMAND.match(body) else None)
    if lines is None:
        return None
    files[name] = lines
    content = b"".join(lines)
    if len(content) < 16:
        return None
    ctx.charge_child(len(content))
    return Child(data=content, name=None, origin="diff-file", is_attachment=True)


def patch_series(members: dict[str, bytes], ctx: ScanContext) -> Iterator[Child]:
    """The patches of an archive as one text, in the order its quilt `series` file lists
    them (or, without one, their own), so that a file one patch makes and the next changes
    is read as `quilt push -a` leaves it (round 14)."""
    names = {name.rsplit("/", 1)[-1]: name for name in members}
    series = next((data for name, data in members.items()
                   if name.rsplit("/", 1)[-1] == "series"), None)
    if series is not None:
        order = []
        for line in series.splitlines()[:1024]:
            words = line.split(b"#", 1)[0].split()
            entry = words[0].decode("utf-8", "replace").rsplit("/", 1)[-1] if words else ""
            if entry in names:
                order.append(names[entry])
    else:
        order = [n for n in members if n.lower().endswith((".diff", ".patch"))]
    if len(order) < 2:
        return
    ctx.check_time()
    joined = b"\n".join(members[n].rstrip(b"\n") + b"\n" for n in order[:1024])
    ctx.charge_child(len(joined))
    yield Child(data=joined, name="series.diff", origin="patch-series")


_MAX_PAIRS = 64


def patched_attachments(attachments: dict[str, bytes], ctx: ScanContext) -> Iterator[Child]:
    """The mail's attachments as its patch attachments change them (round 14: a file of
    base64 with a decoy line after each, and a diff that deletes the decoys, `patch
    payload.b64 < fix.diff`): a unified diff to the attachment it names (or to each), a
    normal diff or an ed script to each other attachment."""
    pairs = 0
    for pname, patch in attachments.items():
        kind = _patch_kind(patch)
        if kind is None:
            continue
        for tname, target in attachments.items():
            if tname == pname or b"\x00" in target[:4096]:
                continue
            if pairs >= _MAX_PAIRS:  # (a pair left untried is the limit, not clean)
                raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_PAIRS} patch and file pairs")
            pairs += 1
            ctx.check_time()
            base = target.splitlines(keepends=True)
            if kind == "unified":
                header = _FILE_HEADER.search(patch)
                lines = _apply_hunks(patch, header.end(), base) if header else None
            elif kind == "normal":
                lines = apply_normal(patch, base)
            else:  # as `patch -e` feeds it to ed, and as ed itself runs it
                lines = apply_ed(patch, base, ctx, as_patch=True)
                direct = apply_ed(patch, base, ctx)
                if direct is not None and direct != lines:
                    yield from _changed(direct, target, tname, ctx)
            if lines is not None:
                yield from _changed(lines, target, tname, ctx)


def _changed(lines: list[bytes], target: bytes, name: str,
             ctx: ScanContext) -> Iterator[Child]:
    content = b"".join(lines)
    if content != target and len(content) >= 16:
        ctx.charge_child(len(content))
        yield Child(data=content, name=name, origin="patched-attachment", is_attachment=True)


_NORMAL_START = re.compile(rb"[\r\n]*\d+(?:,\d+)?[acd]\d+(?:,\d+)?\r?\n")


def _patch_kind(data: bytes) -> str | None:
    """What kind of patch an attachment is (no copy of it: they may be megabytes)."""
    if b"\n@@ -" in data and _FILE_HEADER.search(data, 0, 65536) is not None:
        return "unified"
    if _NORMAL_START.match(data):
        return "normal"
    if ED_START.match(data):
        return "ed"
    return None
