"""Files carried as text with no MIME around them: base64 (or hex) blocks and Intel HEX.

clamscan 1.4 decodes none of them (a text attachment holding nothing but the base64 of an EXE,
or `objcopy -O ihex` output, is clean to it: `tests/scan/test_text_carriers.py`); we do,
failing closed, because a recipient (or a script they run) can turn each back into the file.
The finders are strict about shape so that ordinary text yields nothing (a PEM certificate or
a list of hex hashes does decode, to bytes that are then scanned like any other):

- base64: a block of whole lines holding only base64 characters (the standard or the URL-safe
  alphabet, `=` anywhere, no spaces inside), every line as long as the first (at least 16
  characters: how encoders wrap) but the last, which may be shorter (if it completes the
  last quantum), at least `MIN_BASE64` characters in all, `MIN_DISTINCT` different ones.
  It is decoded the ways decoders read it (`encodings.base64_variants`): skipping every `=`
  (Python's `b64decode` skips one that cannot be padding), restarting after each `=` run
  (`base64 -d` reads padded pieces one after another: text encoded line by line), and in the
  URL-safe alphabet (`-_`) when it holds those. A block of hex digits only (even in number)
  is a hex dump (`xxd -p`) and decoded as hex instead;
- Intel HEX: a text starting with a record (`:LLAAAATT<data>CC`, data length as declared), its
  data records placed at their addresses (extended segment and linear address records
  applied) and each contiguous run of bytes one file; checksums are not required (a wrong one
  must not hide the payload), the end-of-file record ends it.

Lines may end in LF, CRLF or a lone CR (old Mac text; Python's decoder skips the CRs).
Both are linear and bounded by their input (decoding never produces more bytes than it reads).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from zerohour.scan.encodings import Check, EmbeddedFile, base64_variants

#: Fewest base64 characters a block needs (96 bytes decoded): a lone hash or key stays text.
MIN_BASE64 = 128
#: Fewest different characters in a block: fewer decode to a near-constant run of bytes, which
#: carries no file (and a long run of one letter is just text).
MIN_DISTINCT = 8

_B64_BLOCK = re.compile(rb"(?m)^(?:[ \t]*[A-Za-z0-9+/_=-]{16,}[ \t]*\r?(?:\n|\Z))+"
                        rb"(?:[ \t]*[A-Za-z0-9+/_-]{1,15}={0,2}[ \t]*\r?(?:\n|\Z))?")
_B64_LINE_LEN = re.compile(rb"[A-Za-z0-9+/_=-]+")
_HEX_RECORD = re.compile(rb"(?m)^[ \t]*:((?:[0-9A-Fa-f]{2}){5,})[ \t]*\r?$")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_LEADING_SPACE = re.compile(rb"\s*")
_CHECK_EVERY = 1024


#: base64 characters (both alphabets, and "=") -> "A", every other byte -> ".": a block needs a
#: run of 16 "A"s, which
#: `bytes.find` locates at C speed; the block regex then runs from that line's start only.
#: (`_B64_BLOCK.finditer` over a whole text cost ~13 ns a byte: 1.3 ms per 100 KB of prose.)
_B64_MAP = bytes(
    ord("A") if chr(c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-"
    else ord(".") for c in range(256)
)
_RUN = b"A" * 16


def base64_blocks(text: bytes, check: Check = None) -> Iterator[EmbeddedFile]:
    """Each base64 block of `text` (see the module's rules), decoded: its runs of equally wide
    lines (`_wrapped_blocks`; the same files as for every `_B64_BLOCK.finditer(text)` block,
    tests/scan/test_text_carriers.py compares them), and the whole stream of a group of blocks
    as one.

    The stream is what `base64 -d` or `xxd -r -p` makes of the text: line widths and breaks
    do not matter to them, so lines of growing widths, or a block cut by blank lines or by a
    line without base64 characters (`----`), decode to the file although no run alone is long
    enough. A group is consecutive blocks with nothing but such lines between them."""
    text = lf_lines(text)
    done: set[bytes] = set()
    group: list[bytes] = []
    varied = False  # a block of the group is (a stream of uniform blocks carries no file)
    whole = False  # the group is one block that `_wrapped_blocks` decoded as one run
    last_end = -1
    for m in _block_matches(text, check):
        block = m.group()
        if group and _ALPHABET_CHAR.search(text, last_end, m.start()) is not None:
            if varied and not whole:
                yield from _stream(group, done)
            group, varied = [], False
        whole = not group
        last_end = m.end()
        # A run is never more varied than its block: a block of one letter over and over (the
        # SMTP benchmark's plain body) yields nothing, and splitting it into lines is wasted.
        chars = block.translate(None, _BLANKS)
        if not _varied(chars):
            group.append(chars)  # part of the stream all the same (zeros are "AAAA...")
            continue
        lines = _B64_LINE_LEN.findall(block)
        whole = whole and _one_run(lines)
        group.extend(lines)
        varied = True
        for found in _wrapped_blocks(lines):
            done.add(found.data)
            yield found
    if varied and not whole:
        yield from _stream(group, done)


def may_carry(text: bytes) -> bool:
    """Whether `text` could hold a base64 block or Intel HEX (a cheap test, C speed)."""
    if text.translate(_B64_MAP).find(_RUN) >= 0:
        return True
    start = _LEADING_SPACE.match(text).end()  # type: ignore[union-attr]  # always matches
    return text[start : start + 1] == b":"


def _one_run(lines: list[bytes]) -> bool:
    """Whether `_wrapped_blocks` takes all of `lines` as one run (its stream adds nothing)."""
    width = len(lines[0])
    body = lines[:-1] if len(lines) > 1 and len(lines[-1]) < width else lines
    return all(len(ln) == width for ln in body) and (body is lines or _completes(lines))


def _stream(lines: list[bytes], done: set[bytes]) -> Iterator[EmbeddedFile]:
    """A group's lines decoded as one stream, unless a run already gave the same bytes."""
    if len(lines) < 2:
        return
    for found in _decoded(lines, min_width=1):
        if found.data not in done:
            yield found


def _blocks(text: bytes, check: Check = None) -> Iterator[bytes]:
    """The matches of `_B64_BLOCK.finditer(text)`, found from runs of 16 base64 characters."""
    for m in _block_matches(text, check):
        yield m.group()


def _block_matches(text: bytes, check: Check = None) -> Iterator[re.Match[bytes]]:
    mapped = text.translate(_B64_MAP)
    pos = 0
    n = 0
    while True:
        hit = mapped.find(_RUN, pos)
        if hit < 0:
            return
        m = _B64_BLOCK.match(text, text.rfind(b"\n", 0, hit) + 1)
        if m is None or m.end() <= hit:
            nxt = text.find(b"\n", hit)
            if nxt < 0:
                return
            pos = nxt + 1
            continue
        if check is not None and not n % _CHECK_EVERY:
            check()
        n += 1
        yield m
        pos = max(m.end(), hit + 1)


def _completes(run: list[bytes]) -> bool:
    """Whether the run's characters make whole base64 quanta (or whole hex bytes)."""
    total = b"".join(run)
    return len(total) % 4 == 0 or (len(total) % 2 == 0 and not total.translate(None, _HEX_DIGITS))


_ALPHABET_CHAR = re.compile(rb"[A-Za-z0-9+/]")  # between two blocks: they are one stream if none
_BLANKS = b" \t\r\n"  # what a block holds besides base64 characters and "="
_ALPHABET = [
    bytes([c]) for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"
]


def _varied(joined: bytes) -> bool:
    """At least `MIN_DISTINCT` different characters (`joined` holds base64 characters only).
    `len(set(joined))` cost ~2.3 ms per 100 KB; the start nearly always decides, else one
    C-speed search per alphabet character."""
    if len(set(joined[:256])) >= MIN_DISTINCT:
        return True
    found = 0
    for c in _ALPHABET:
        if c in joined:
            found += 1
            if found >= MIN_DISTINCT:
                return True
    return False


def _wrapped_blocks(lines: list[bytes]) -> Iterator[EmbeddedFile]:
    """The runs of equally long lines (and a shorter last line) among base64-looking lines,
    each decoded: a line of another width starts the next run.

    A decoder reads four characters at a time, so a run decoded from the wrong character
    garbles everything after it. Two shapes put a run's start off its payload's, and both are
    also decoded the other way: a shorter line taken as a run's last line that in fact starts
    the next run (a 200-character line of junk, then the payload wrapped at 76: 200 + 76 is a
    multiple of 4), and a first line of junk as wide as the payload's lines when that width is
    not a multiple of 4 (the junk shifts the payload by its width)."""
    start = 0
    while start < len(lines):
        width = len(lines[start])
        end = start + 1
        while end < len(lines) and len(lines[end]) == width:
            end += 1
        run = _with_last(lines, start, end, width)
        yield from _decoded(run)
        if end - start >= 2 and width % 4:  # encoders wrap at 64 or 76: this is unusual
            yield from _decoded(_with_last(lines, start + 1, end, width))  # junk first line?
        starts_run = end + 1 < len(lines) and len(lines[end + 1]) == len(lines[end])
        if len(run) > end - start and not starts_run:
            end += 1  # the short last line belonged to this run only
        start = end


def _with_last(lines: list[bytes], start: int, end: int, width: int) -> list[bytes]:
    """`lines[start:end]`, with the next line when it is a shorter last line that completes
    their quanta (not a short word after the block)."""
    run = lines[start:end]
    if end < len(lines) and len(lines[end]) < width and _completes([*run, lines[end]]):
        run.append(lines[end])
    return run


def _decoded(run: list[bytes], min_width: int = 16) -> Iterator[EmbeddedFile]:
    """One run decoded (hex digits as hex), if it is long and varied enough to be a file."""
    joined = b"".join(run)
    if len(run[0]) < min_width or len(joined) < MIN_BASE64 or not _varied(joined):
        return
    if len(joined) % 2 == 0 and not joined.translate(None, _HEX_DIGITS):
        yield EmbeddedFile(bytes.fromhex(joined.decode("ascii")), None, "hex-text")
        return
    for data in base64_variants(joined):
        if data:
            yield EmbeddedFile(data, None, "base64-text")


def lf_lines(text: bytes) -> bytes:
    """`text` with lone CRs as LFs, when it has any (a CR before an LF is left alone)."""
    crs = text.count(b"\r")
    if crs and crs != text.count(b"\r\n"):
        return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return text


def intel_hex(text: bytes, check: Check = None) -> Iterator[EmbeddedFile]:
    """The data of an Intel HEX text, one file per contiguous address range."""
    text = lf_lines(text)
    start = _LEADING_SPACE.match(text).end()  # type: ignore[union-attr]  # always matches
    if text[start : start + 1] != b":":
        return
    if _HEX_RECORD.match(text, text.rfind(b"\n", 0, start) + 1) is None:
        return
    runs: list[tuple[int, bytearray]] = []
    base = 0
    for n, m in enumerate(_HEX_RECORD.finditer(text)):
        if check is not None and not n % _CHECK_EVERY:
            check()
        record = bytes.fromhex(m.group(1).decode("ascii"))
        length, kind, payload = record[0], record[3], record[4:-1]
        if len(payload) != length:
            continue  # not a record: a line that only looks like one
        if kind == 0:
            at = base + int.from_bytes(record[1:3], "big")
            if runs and runs[-1][0] + len(runs[-1][1]) == at:
                runs[-1][1].extend(payload)
            elif payload:
                runs.append((at, bytearray(payload)))
        elif kind == 1:
            break
        elif kind == 2 and length == 2:
            base = int.from_bytes(payload, "big") << 4
        elif kind == 4 and length == 2:
            base = int.from_bytes(payload, "big") << 16
    for _, data in runs:
        yield EmbeddedFile(bytes(data), None, "intel-hex")
