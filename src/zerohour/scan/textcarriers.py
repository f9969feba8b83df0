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
  is a hex dump (`xxd -p`) and decoded as hex instead. A token of `MIN_TOKEN`+ base64
  characters inside a line of other words is decoded too ("the key is TVqQ... thanks");
- decorated text (`decorated_blocks`, in stretches dense in capitals and digits): quoted,
  numbered or wrapped lines, groups cut by separators, hex bytes, `xxd`/`hexdump -C` dumps,
  base32, short lines, one column of lines cut into fields (numbered, behind a fixed word,
  between decoy columns, shuffled by a counter): what a recipient copies out (`cut`, `sed`,
  `sort -n`) and decodes;
- Intel HEX: a text starting with a record (`:LLAAAATT<data>CC`, data length as declared), its
  data records placed at their addresses (extended segment and linear address records
  applied) and each contiguous run of bytes one file; checksums are not required (a wrong one
  must not hide the payload), the end-of-file record ends it.

Lines may end in LF, CRLF or a lone CR (old Mac text; Python's decoder skips the CRs).
All are linear and bounded by their input (decoding never produces more bytes than it reads;
a dump's gaps are filled up to `_DUMP_FILL_RATIO` times its size).
"""

from __future__ import annotations

import ast
import base64
import binascii
import contextlib
import html
import itertools
import re
import urllib.parse
from collections.abc import Iterator, Sequence

import numpy as np

from zerohour.scan.encodings import Check, EmbeddedFile, base64_variants

#: Fewest base64 characters a block needs (64 bytes decoded; EICAR is 68 bytes, 92
#: characters): a lone hash or key stays text.
MIN_BASE64 = 86
#: Fewest different characters in a block: fewer decode to a near-constant run of bytes, which
#: carries no file (and a long run of one letter is just text).
MIN_DISTINCT = 8

_B64_BLOCK = re.compile(rb"(?m)^(?:[ \t]*[A-Za-z0-9+/_=-]{16,}[ \t]*\r?(?:\n|\Z))+"
                        rb"(?:[ \t]*[A-Za-z0-9+/_-]{1,15}={0,2}[ \t]*\r?(?:\n|\Z))?")
_B64_LINE_LEN = re.compile(rb"[A-Za-z0-9+/_=-]+")
_HEX_RECORD = re.compile(rb"(?m)^[ \t]*:((?:[0-9A-Fa-f]{2}){5,})[ \t]*\r?$")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
#: (a literal "\n" first: the regex engine skips to each line end in C)
_HEX_RECORD_AFTER = re.compile(rb"\n[ \t]*:[0-9A-Fa-f]{10}")
_SREC_AFTER = re.compile(rb"\n[ \t]*S[123][0-9A-Fa-f]{8}")
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


def base64_blocks(text: bytes, check: Check = None, *, lf: bool = False) -> Iterator[EmbeddedFile]:
    """Each base64 block of `text` (see the module's rules), decoded: its runs of equally wide
    lines (`_wrapped_blocks`; the same files as for every `_B64_BLOCK.finditer(text)` block,
    tests/scan/test_text_carriers.py compares them), and the whole stream of a group of blocks
    as one.

    The stream is what `base64 -d` or `xxd -r -p` makes of the text: line widths and breaks
    do not matter to them, so lines of growing widths, or a block cut by blank lines or by a
    line without base64 characters (`----`), decode to the file although no run alone is long
    enough. A group is consecutive blocks with nothing but such lines between them.
    `lf`: the caller already made lone CRs LFs (`lf_lines`)."""
    if not lf:
        text = lf_lines(text)
    done: set[bytes] = set()
    group: list[bytes] = []
    varied = False  # a block of the group is (a stream of uniform blocks carries no file)
    whole = False  # the group is one block that `_wrapped_blocks` decoded as one run
    last_end = -1
    tokens: list[tuple[int, int]] = []
    for m in _block_matches(text, check, tokens):
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
    for start, end in tokens:
        for data, encoding in _decode_run(text[start:end]):
            if data not in done:
                done.add(data)
                yield EmbeddedFile(data, None, encoding)


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


def _block_matches(
    text: bytes, check: Check = None, tokens: list[tuple[int, int]] | None = None
) -> Iterator[re.Match[bytes]]:
    """`_B64_BLOCK` matches; into `tokens`, the spans of `MIN_TOKEN`+ runs inside lines that
    are no block (a long token in prose: found here at no extra cost, since such a line holds
    a run of 16 that the search stops at anyway)."""
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
            if tokens is not None:
                _runs_in_line(mapped, hit, len(text) if nxt < 0 else nxt, tokens)
            if nxt < 0:
                return
            pos = nxt + 1
            continue
        if check is not None and not n % _CHECK_EVERY:
            check()
        n += 1
        yield m
        pos = max(m.end(), hit + 1)


def _runs_in_line(mapped: bytes, hit: int, line_end: int, out: list[tuple[int, int]]) -> None:
    """The runs of `MIN_TOKEN`+ base64 characters in a line, from its first run of 16 on."""
    while 0 <= hit < line_end:
        start = mapped.rfind(b".", 0, hit) + 1
        end = mapped.find(b".", hit, line_end)
        end = line_end if end < 0 else end
        if end - start >= MIN_TOKEN:
            out.append((start, end))
        hit = mapped.find(_RUN, end, line_end)


def _completes(run: list[bytes]) -> bool:
    """Whether the run's characters make whole base64 quanta (or whole hex bytes)."""
    total = b"".join(run)
    return len(total) % 4 == 0 or (len(total) % 2 == 0 and not total.translate(None, _HEX_DIGITS))


_ALPHABET_CHAR = re.compile(rb"[A-Za-z0-9+/]")  # between two blocks: they are one stream if none
_BLANKS = b" \t\r\n"  # what a block holds besides base64 characters and "="


def _varied(joined: bytes) -> bool:
    """At least `MIN_DISTINCT` different characters. `len(set(joined))` cost ~2.3 ms per 100 KB;
    the start nearly always decides, else each C-speed pass deletes the characters seen so
    far and looks at what is left (a block of one letter: one pass; at most `MIN_DISTINCT`)."""
    seen = set(joined[:256])
    rest = joined
    while len(seen) < MIN_DISTINCT:
        rest = rest.translate(None, bytes(seen))
        if not rest:
            return False
        seen.update(rest[:256])
    return True


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
    if not joined.translate(None, _B32_LOWER):  # `tr a-z A-Z | base32 -d`
        data = _b32(joined.upper())
        if len(data) >= MIN_DECODED:
            yield EmbeddedFile(data, None, "base32-text")
    for data in base64_variants(joined):
        if data:
            yield EmbeddedFile(data, None, "base64-text")


def lf_lines(text: bytes) -> bytes:
    """`text` with lone CRs as LFs, when it has any (a CR before an LF is left alone)."""
    crs = text.count(b"\r")
    if crs and crs != text.count(b"\r\n"):
        return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return text


def intel_hex(text: bytes, check: Check = None, *, lf: bool = False) -> Iterator[EmbeddedFile]:
    """The data of an Intel HEX text, one file per contiguous address range (`lf` as for
    `base64_blocks`)."""
    if not lf:
        text = lf_lines(text)
    start = _LEADING_SPACE.match(text).end()  # type: ignore[union-attr]  # always matches
    if text[start : start + 1] != b":":
        # Records after some lines of prose ("the firmware:"): a line starting with a record
        if _HEX_RECORD_AFTER.search(text) is None:
            return
    elif _HEX_RECORD.match(text, text.rfind(b"\n", 0, start) + 1) is None:
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
    yield from _images(runs, "intel-hex", 1)


_SREC = re.compile(rb"(?m)^[ \t]*S([123])((?:[0-9A-Fa-f]{2}){4,})[ \t]*\r?$")
_SREC_ADDRESS = {b"1": 2, b"2": 3, b"3": 4}


def srecords(text: bytes, check: Check = None) -> Iterator[EmbeddedFile]:
    """The data of Motorola S-records (S1/S2/S3 lines: `objcopy -I srec -O binary`, `srec_cat`),
    one file per contiguous address range, after prose too."""
    if not (text[:256].lstrip()[:1] == b"S" or _SREC_AFTER.search(text)):
        return
    runs: list[tuple[int, bytearray]] = []
    for n, m in enumerate(_SREC.finditer(text)):
        if check is not None and not n % _CHECK_EVERY:
            check()
        record = bytes.fromhex(m.group(2).decode("ascii"))
        width = _SREC_ADDRESS[m.group(1)]
        if record[0] != len(record) - 1 or len(record) < width + 2:
            continue  # its count does not hold: a line that only looks like a record
        at = int.from_bytes(record[1 : 1 + width], "big")
        payload = record[1 + width : -1]
        if runs and runs[-1][0] + len(runs[-1][1]) == at:
            runs[-1][1].extend(payload)
        elif payload:
            runs.append((at, bytearray(payload)))
    yield from _images(runs, "s-records", MIN_DECODED)


#: A memory image's gaps are filled up to this many times its data (and 64 KiB more).
_IMAGE_FILL_RATIO = 16


def _images(runs: list[tuple[int, bytearray]], encoding: str, least: int
            ) -> Iterator[EmbeddedFile]:
    """Each contiguous address range, and the whole image as `objcopy -O binary` writes it:
    records in address order (in any order in the text), gaps filled with zeros (a file's
    runs of zeros left out of the records, round 10), from the lowest address."""
    for _, data in runs:
        if len(data) >= least:
            yield EmbeddedFile(bytes(data), None, encoding)
    if len(runs) < 2:
        return
    ordered = sorted(runs, key=lambda r: r[0])
    low = ordered[0][0]
    span = max(at + len(data) for at, data in ordered) - low
    total = sum(len(data) for _, data in ordered)
    if span > _IMAGE_FILL_RATIO * total + 65536:
        return
    image = bytearray(span)
    for at, data in ordered:
        image[at - low : at - low + len(data)] = data
    if len(image) >= least:
        yield EmbeddedFile(bytes(image), None, encoding)


# -- decorated text: what `base64 -d -i`, `xxd -r` and a copy-paste recover --------------------
#
# A recipient told to "decode the key" copies the characters out of whatever surrounds them:
# quote marks ("> "), line numbers, string quotes, bullets, groups of 4 or 8 characters cut
# by spaces, tabs, dots or no-break spaces, hex bytes as `0x4d, 0x5a` or `4d:5a`, an `xxd` or
# `hexdump -C` dump, base32 (`base32 -d`), or one long token in a line of prose. The finder
# above wants whole lines of nothing but the alphabet; this one takes such lines apart. It runs
# only on stretches dense in what encoded text is made of (`_dense_spans`), so prose costs one
# C-speed count per 4 KB.

#: Fewest bytes a decorated block or an inline token must decode to (EICAR is 68): a lone
#: hash (32 bytes as 64 hex digits) stays text.
MIN_DECODED = 64
_CHUNK = 4096
_NUMPY_FROM = 4 * 4096  # bytes of text from which numpy counts the chunks
_DENSE = 0.2  # share of [A-Z0-9] in a chunk (base64 of binary ~0.56, hex ~0.6, prose ~0.03)
_SMALL = 512  # a piece of a chunk
_DENSE_SMALL = 0.4  # share in a piece (a short dump or block between lines of prose)
_SMALL_LEAST = 64  # [A-Z0-9] characters two such pieces hold at least
_UPPER_DIGITS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NOT_UPPER_DIGITS = bytes(c for c in range(256) if c not in _UPPER_DIGITS)
#: [A-Z0-9] -> 1, blanks and UTF-8 continuation bytes -> 0 (a character of any width counts
#: once: a three-byte zero-width space between groups dilutes them no more than a "~"),
#: anything else -> 2: one translation, then numpy counts each chunk's 1s and 2s.
#: (3: the first byte of a non-ASCII character: prose in another script, which dilutes a
#: chunk, but not a piece: `_dense_spans`)
_DENSE_MAP = bytes(1 if c in _UPPER_DIGITS else 0 if c in b" \t\r\n" or 0x80 <= c < 0xC0
                   else 3 if c >= 0xC0 else 2 for c in range(256))
#: (an offset of any width, as `xxd -r` reads it; one under 6 digits only before a colon,
#: round 19: `1a0:` lines shuffled)
_DUMP_LINE = re.compile(  # xxd, hexdump -C, od -A x -t x1z: offset, hex columns, ASCII
    rb"(?=[0-9a-fA-F]{0,19}[0-9])([0-9a-fA-F]{6,20}|[0-9a-fA-F]{1,5}(?=:)):?[ \t]+"
    rb"((?:[0-9a-fA-F]{2,8}[ \t]{1,3}){0,31}[0-9a-fA-F]{2,8})(?:[ \t]{2}.*|[ \t]*)$")
#: A dump's gaps (`hexdump -C` writes "*" for repeated lines, then the next offset) are filled
#: up to this many times the dump's own size: a made-up offset must not allocate gigabytes.
_DUMP_FILL_RATIO = 16
_PREFIX = re.compile(rb"[ \t>|*#-]*(?:\d{1,6}[|).:](?=[ \t])[ \t]*)?[\"'<(\[{]?")
# ('+' is a base64 character: only after a closing quote is it a string concatenation)
_SUFFIX = re.compile(rb"(?:[\"'>)\]}|][ \t]*[\\+,;]?|[\\,;])?[ \t]*\Z")
_QUOTE_OR_CLOSE = b"\"'>)]}|"


def _suffix_start(line: bytes, start: int) -> int:
    """Where `_SUFFIX.search(line, start)` matches (it always does), found from the line's
    end: the regex, tried at each blank of a long run of them, read on to the run's end
    from each (quadratic: 80 KB of blanks between two base64 pieces cost 31 s)."""
    end = len(line.rstrip(b" \t"))
    if end <= start:
        return start
    found = end
    last = line[end - 1]
    if last in b"\\,;" or last in _QUOTE_OR_CLOSE:
        found = end - 1
    if last in b"\\+,;":
        before = len(line[: end - 1].rstrip(b" \t"))
        if before - 1 >= start and line[before - 1] in _QUOTE_OR_CLOSE:
            found = before - 1
    return found
_HEX_PREFIXES = re.compile(rb"(?:0x|\\x)(?=[0-9a-fA-F]{2})", re.I)
_SEPARATORS = re.compile(rb"(?:[ \t.:]|\xc2\xa0)+")
_LIST_SEPARATORS = re.compile(rb"(?:[ \t.:,;]|\xc2\xa0)+")  # of "0x4d, 0x5a" (not CSV)
_PUNCTUATION = re.compile(rb"(?:[ \t.:,;|!*#_%-]|\xc2\xa0)+")
_ODD_SEPARATOR = re.compile(rb"[,;|!*#_%-]")
_ENCODED = re.compile(rb"[A-Za-z0-9+/_=-]+\Z")
#: Fewest characters of a token inside a line of prose ("the key is TVqQAAMA... thanks"),
#: found by `_block_matches` where a run of 16 sits in a line that is not a block.
MIN_TOKEN = 64
_PLAIN_LINES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n"


def decorated_blocks(
    text: bytes, check: Check = None, *, lf: bool = False
) -> Iterator[EmbeddedFile]:
    """Files in base64, base32 or hex text that wrappers, separators or dump columns hide
    from `base64_blocks`, and long tokens inside lines of prose (not the files those find).
    `lf` as for `base64_blocks`."""
    if not lf:
        text = lf_lines(text)
    seen: set[bytes] = set()
    for start, end in _dense_spans(text):
        if check is not None:
            check()
        span = text[start:end]
        if not _varied(span) and span.translate(None, b"01 \t\r\n"):
            continue  # a letter over and over (the line breaks count among the 8); not bits
        # Plain base64 lines only (most dense text): one stream, as `base64 -d` reads it,
        # without taking each line apart.
        plain = not span.translate(None, _PLAIN_LINES) and b"0x" not in span  # (`0x4d0x5a`)
        runs = (_decode_lines(span.split()) if plain
                else itertools.chain(_decorated_runs(span), _base85(span), _escapes(span),
                                     _string_tokens(span), _columns(span),
                                     _percent_lines(span), _bytes_literals(span),
                                     _json_records(span)))
        runs = itertools.chain(runs, _quoted_printable(span))  # (`=` and hex: plain lines too)
        for data, encoding in runs:
            if data not in seen:
                seen.add(data)
                yield EmbeddedFile(data, None, encoding)


def _dense_spans(text: bytes) -> Iterator[tuple[int, int]]:
    """Stretches dense in upper-case letters and digits, widened to whole lines (a block
    across a chunk border is in one stretch): `_CHUNK`-sized chunks with a share of at least
    `_DENSE`, and two neighbouring `_SMALL` pieces with `_SMALL_LEAST` such characters and a
    share of `_DENSE_SMALL` of the ASCII ones (with a piece on each side): a short dump or a
    quoted base64 block (EICAR's) in a chunk of prose, Cyrillic prose above all, was diluted
    below the first.

    Every byte counts: a sample (every 4th byte, as before) was blind to a separator placed
    every 4th character in its phase (`\\x4d\\x5a...`, `TVq~QAA~...`); bytes.count of a byte
    that is everywhere costs ~3 ns a byte, numpy's count a fraction of that. Blanks do not
    count either way: runs of spaces or empty lines between the groups must not dilute them."""
    n = len(text)
    mapped = text.translate(_DENSE_MAP)
    if n > _NUMPY_FROM:
        yield from _dense_spans_numpy(text, mapped)
        return
    # a few pieces: bytes.count and a Python loop beat numpy's per-call overhead
    if not mapped.count(1):
        return  # not one capital or digit
    dense, other, foreign = ([mapped.count(k, p, p + _SMALL) for p in range(0, n, _SMALL)]
                             for k in (1, 2, 3))
    per = _CHUNK // _SMALL
    pieces = len(dense)
    flags = [False] * pieces
    for c in range(0, pieces, per):  # whole chunks first (the rule for long blocks)
        d, rest = sum(dense[c : c + per]), sum(other[c : c + per]) + sum(foreign[c : c + per])
        if d > 0 and d >= _DENSE * (d + rest):
            flags[c : c + per] = [True] * len(flags[c : c + per])
    for i in range(pieces):  # two pieces at a time: a short block across their border
        d = dense[i] + (dense[i + 1] if i + 1 < pieces else 0)
        o = other[i] + (other[i + 1] if i + 1 < pieces else 0)
        if d >= _SMALL_LEAST and d >= _DENSE_SMALL * (d + o):
            flags[max(0, i - 1) : i + 3] = [True] * len(flags[max(0, i - 1) : i + 3])
    yield from _widened(text, flags)


def _widened(text: bytes, flags: Sequence[bool]) -> Iterator[tuple[int, int]]:
    """Runs of flagged pieces as stretches of whole lines."""
    n = len(text)
    start = -1
    for i, dense in enumerate(flags):
        pos = i * _SMALL
        if dense and start < 0:
            start = max(0, text.rfind(b"\n", 0, pos) + 1)
        elif not dense and start >= 0:
            end = text.find(b"\n", pos)
            yield start, n if end < 0 else end
            start = -1
    if start >= 0:
        yield start, n


def _dense_spans_numpy(text: bytes, mapped: bytes) -> Iterator[tuple[int, int]]:
    """`_dense_spans`' rules over a long text, counted and flagged by numpy."""
    n = len(text)
    pieces = -(-n // _SMALL)
    padded = np.zeros(pieces * _SMALL, dtype=np.uint8)  # (0 counts as blank)
    padded[:n] = np.frombuffer(mapped, dtype=np.uint8)
    grid = padded.reshape(pieces, _SMALL)
    dense = np.count_nonzero(grid == 1, axis=1)
    other = np.count_nonzero(grid == 2, axis=1)
    foreign = np.count_nonzero(grid == 3, axis=1)
    per = _CHUNK // _SMALL
    chunks = -(-pieces // per)
    pad = chunks * per - pieces
    chunk_dense = np.pad(dense, (0, pad)).reshape(chunks, per).sum(axis=1)
    chunk_rest = np.pad(other + foreign, (0, pad)).reshape(chunks, per).sum(axis=1)
    chunk_ok = (chunk_dense > 0) & (chunk_dense >= _DENSE * (chunk_dense + chunk_rest))
    flags = np.repeat(chunk_ok, per)[:pieces]
    pair_dense = dense + np.append(dense[1:], 0)
    pair_other = other + np.append(other[1:], 0)
    pair_ok = (pair_dense >= _SMALL_LEAST) & (
        pair_dense >= _DENSE_SMALL * (pair_dense + pair_other))
    if pair_ok.any():
        grown = pair_ok.copy()  # pieces i-1 .. i+2 around a dense pair (i, i+1)
        grown[:-1] |= pair_ok[1:]
        grown[1:] |= pair_ok[:-1]
        grown[2:] |= pair_ok[:-2]
        flags = flags | grown
    if not flags.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.view(np.int8), [0]))))
    for first, stop in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
        start = max(0, text.rfind(b"\n", 0, first * _SMALL) + 1)
        end = text.find(b"\n", stop * _SMALL) if stop < pieces else -1
        yield start, n if end < 0 else end


def _decorated_runs(text: bytes) -> Iterator[tuple[bytes, str]]:
    """Runs of consecutive encoded lines, decoded (a dump's lines: only dump lines, so its
    closing offset line is not taken for data); and runs of lines read as `base64 -d -i`
    reads them (`_loose_chars`), where that differs."""
    run: list[bytes] = []
    loose: list[bytes] = []
    differs = False  # a line of `loose` is not as in `run`
    dump = bytearray()  # a dump's bytes so far, placed at their offsets
    repeat = b""  # the last dump line's bytes, after a "*" line
    back = False  # a dump line went back to an offset written already
    for line in text.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue  # `base64 -d -i` and `xxd -r -p` read on across blank lines
        m = _DUMP_LINE.match(line)
        if m is not None and run and len(run) == 1 and _WORD.match(run[0]) and not dump:
            run = []  # a lone word ("hello") before a dump: no block of its own
        if m is not None and not run:
            digits = _SEPARATORS.sub(b"", m.group(2))
            data = bytes.fromhex(digits[: len(digits) & ~1].decode("ascii"))
            offset = int(m.group(1), 16)
            if offset < len(dump) and not back:  # (two dumps, or one's lines shuffled)
                back = True
                yield from _decode_dump(bytes(dump))  # the first as it stands
            _place(dump, offset, data, repeat, len(text))
            repeat = b""
            continue
        if dump and line.strip() == b"*":
            repeat = _last_line_bytes(dump)
            continue
        if dump:
            yield from _decode_dump(bytes(dump))
            dump.clear()
            repeat, back = b"", False
        chars = _line_chars(line)
        loose_chars = _loose_chars(line, chars, len(loose[-1]) if loose else 0)
        if loose_chars:
            loose.append(loose_chars)
            differs = differs or loose_chars != chars
        elif loose:
            if differs:
                yield from _decode_lines(loose)
            loose, differs = [], False
        if chars:
            run.append(chars)
            continue
        if run:
            yield from _decode_lines(run)
            run = []
    if dump:
        yield from _decode_dump(bytes(dump))
    if run:
        yield from _decode_lines(run)
    if loose and differs:
        yield from _decode_lines(loose)


#: What `base64 -d -i` keeps of a line: the standard alphabet and "=".
_NOT_BASE64 = bytes(c for c in range(256) if c not in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    b"abcdefghijklmnopqrstuvwxyz0123456789+/=")
_LOOSE_CUT = re.compile(rb"[^A-Za-z0-9+/=]+")
_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
_NOT_ALNUM = re.compile(rb"[^A-Za-z0-9]+")
_NOT_UPPER = bytes(c for c in range(256) if not 65 <= c <= 90)
_NOT_LOWER = bytes(c for c in range(256) if not 97 <= c <= 122)
_NOT_DIGIT = bytes(c for c in range(256) if not 48 <= c <= 57)
_BASE64_OR_BLANK = bytes(c for c in range(256) if c not in _NOT_BASE64 or c in b" \t")
_LOOSE_MIN = 8  # alphabet characters a loose line needs
_LOOSE_GROUP = 8  # widest group of a line cut by blanks and several other separators
_LOOSE_WORDS = 0.25  # most of a loose line's characters in small-letter words: prose
_LOOSE_DENSE = 0.3  # share of [A-Z0-9] in them (base64 of binary ~0.56, hex 0.6-1, prose <0.1)


def _loose_chars(line: bytes, chars: bytes, previous: int) -> bytes:
    """A line's characters as `base64 -d -i` (or `xxd -r -p`) reads them: its decoration
    (`_PREFIX`, `_SUFFIX`, `0x`) gone, then every byte outside the alphabet dropped, so groups
    of any width cut by any separator (`TVq~QAAM@A...`, `4D^5A`) join up; b"" for a line that
    is mostly separators or reads like prose. `chars` is what `_line_chars` took (if any),
    `previous` the length of the loose run's last line (0: none)."""
    if chars:
        return chars
    start = _PREFIX.match(line).end()  # type: ignore[union-attr]  # always matches
    end = _suffix_start(line, start)
    body = _HEX_PREFIXES.sub(b"", line[start:end])
    if not body.isascii():  # a character of any width is one separator (U+200B, "Ж", "·")
        body = _NON_ASCII_RUN.sub(b"\x80", body)
    kept = body.translate(None, _NOT_BASE64)
    if len(kept) < _LOOSE_MIN:
        return b""
    # Cut by blanks and at most one other separator, no more separators than characters;
    # or by any separators up to four a character (`W.D-V.P`, `"W","D"`, random punctuation),
    # then with blanks only between groups of at most `_LOOSE_GROUP` (a log line's fields).
    if len(set(body.translate(None, _BASE64_OR_BLANK))) > 1:
        if len(body) - len(kept) > 4 * len(kept):
            return b""
        blanks = b" " in body.strip() or b"\t" in body
        if blanks and max(map(len, _LOOSE_CUT.split(body.strip()))) > _LOOSE_GROUP:
            return b""  # several kinds and blanks: groups only (a log line has long fields)
    elif len(body) - len(kept) > len(kept):
        return b""
    if len(kept.translate(None, _NOT_UPPER_DIGITS)) < _LOOSE_DENSE * len(kept):
        return b""
    # Groups, not fields or words: three or more (a hash and its file name, a CSV row of two
    # are not), few of them words of three or more small letters (base64 cut into groups
    # rarely has one), of mixed characters or hex digits (not a line of capitals)
    groups = _LOOSE_CUT.split(body.strip())
    if len(groups) < 3 and not 0 < len(kept) <= previous:
        return b""  # (a run's shorter last line may hold fewer groups)
    words = sum(len(w) for w in _NOT_ALNUM.split(body) if len(w) >= 3 and w.islower()
                and w.isalpha())
    if words > _LOOSE_WORDS * len(kept):
        return b""
    classes = sum(1 for cls in (_NOT_UPPER, _NOT_LOWER, _NOT_DIGIT)
                  if kept.translate(None, cls))
    if classes < 2 and kept.translate(None, _HEX_DIGITS) and not 0 < len(kept) <= previous:
        return b""  # (inside a run, a line of "A"s is zeros: not a line of capitals)
    return kept


#: What a recipient's `cut` splits a line at (`cut -f2`, `cut -d, -f3`, `cut -d'|' -f2`);
#: None: runs of blanks (`awk '{print $2}'`, `cut -d' ' -f2` of single spaces).
_FIELD_SEPARATORS: tuple[bytes | None, ...] = (b"\t", b",", b"|", b";", None)
#: A field that counts lines: the same text around a number (`000`, `[001]`, `line 1`).
_COUNTER_FIELD = re.compile(rb"([^0-9]{0,8}?)([0-9]{1,9})([^0-9]{0,8})\Z")
_LETTER = re.compile(rb"[A-Za-z]")
_LONG_TOKEN = re.compile(rb"[A-Za-z0-9+/_-]{16}")
_TABLE_ROWS = 4
_LEAST_WIDTH = 16
_VALUE = re.compile(rb"[A-Za-z0-9+/_-]*=*\Z")  # (padding at the end only)


def _columns(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Base64 (or hex) as one column of a run of lines cut into the same number of fields:
    line numbers (`000 `, `[001] `, `NNN|`, `line N<TAB>`), a fixed word (`REM `, `// `,
    `data: `, `echo ... >> f.b64`) or decoy columns around it, as `cut -fN` (or `sed`, `awk`)
    takes it out; by a counter column when the lines are shuffled (`sort -n | cut`); each
    data column alone and all of them one after another (`(cut -f1; cut -f2)`). Lines
    starting with `#` are left out (`grep -v '^#'`: decoy comments between the lines)."""
    if _LONG_TOKEN.search(span) is None:
        return  # no value as wide as a wrapped line (numbered prose, most CSV): at C speed
    lines = [ln.rstrip(b"\r") for ln in span.split(b"\n")]
    comments = any(ln[:1] == b"#" for ln in lines)
    for sep in _FIELD_SEPARATORS:
        if sep is not None and sep not in span:
            continue
        rows: list[list[bytes]] = []
        skipped = False
        for line in lines:
            if not line.strip():
                continue  # `cut` passes blank lines, which decoders skip
            if comments and line[:1] == b"#":
                skipped = skipped or bool(rows)
                continue
            fields = line.split(sep) if sep is not None else line.split()
            if rows and len(fields) != len(rows[0]):
                yield from _table(rows, skipped)
                rows, skipped = [], False
            rows.append(fields)
        if rows:
            yield from _table(rows, skipped)


def _table(rows: list[list[bytes]], skipped: bool) -> Iterator[tuple[bytes, str]]:
    """`_columns` of one run of rows as wide as each other; else without a first or last row
    holding no value as wide as a line of base64 (a line of prose as wide: "Hello," is two
    fields of a CSV)."""
    if len(rows) < 2 or (len(rows[0]) < 2 and not skipped):
        return  # (one field a line: `_decorated_runs` reads the lines, unless `#` lines cut it)
    head = _LONG_TOKEN.search(b" ".join(rows[0])) is None
    tail = _LONG_TOKEN.search(b" ".join(rows[-1])) is None
    parts = [rows, rows[1:] if head else [], rows[:-1] if tail else [],
             rows[1:-1] if head and tail else []]
    best: tuple[list[list[bytes]], list[tuple[bytes, ...]], list[int] | None] | None = None
    for part in parts:
        if len(part) < 2:
            continue
        found = _table_data(part, skipped)
        if found is not None and (best is None or found[1] is not None):
            best = (part, *found)  # (a line of prose spoils a counter column: the one without)
            if found[1] is not None:
                break
    if best is None:
        return
    part, data, order = best
    if order is None and len(part[0]) > 1:  # keyed by a first column of words (`sort | cut`)
        keys = [row[0] for row in part]
        if len(set(keys)) == len(keys) and tuple(k.strip(b"\"'") for k in keys) not in data:
            order = sorted(range(len(keys)), key=keys.__getitem__)
    readings = [[v for col in data for v in col]] if len(data) > 1 else []
    readings += [list(col) for col in data]
    if order is not None and order != sorted(order):
        readings += [[col[i] for col in data for i in order]] if len(data) > 1 else []
        readings += [[col[i] for i in order] for col in data]
    for reading in readings:
        yield from _decode_lines([v for v in reading if v])


def _table_data(rows: list[list[bytes]], skipped: bool
                ) -> tuple[list[tuple[bytes, ...]], list[int] | None] | None:
    """A table's data columns and the order of its counter column (None: none), or None."""
    order: list[int] | None = None
    marked = False  # a column the same in every line
    candidates: list[list[bytes]] = []
    columns = list(zip(*rows, strict=True))
    for i, column in enumerate(columns):
        if column.count(column[0]) == len(column):
            marked = True  # a word (`REM`, `//`, `>>`) or a file name
            continue
        if order is None and (order := _counter_order(column)) is not None:
            continue
        values = [v.strip(b"\"'") for v in column]
        if not all(_VALUE.match(v) for v in values) or not _LETTER.search(b"".join(values)):
            continue  # not encoded (`id=...`: a key and its value), or numbers
        if sum(0 < len(v) < _LEAST_WIDTH for v in values) > 1:
            continue  # codes, short words (encoders wrap at 16 or more: one last line less)
        if i + 1 < len(columns) and _digests(values):
            continue  # digests before file names (`sha1sum` output)
        candidates.append(values)
    # Lines neither numbered nor marked: a column of base64 as encoders wrap it, every value
    # as wide as the first but the last (and a header above): not a column of words or names;
    # `_TABLE_ROWS` rows at least (random base64 read as UTF-7 falls into short tables).
    data = [tuple(values) for values in candidates
            if order is not None or marked or (len(rows) >= _TABLE_ROWS and _wrapped(values))]
    return (data, order) if data else None


def _wrapped(values: list[bytes]) -> bool:
    """Values as wide as each other (16 or more), but a first (header) and one shorter (the
    last line, anywhere in lines stored shuffled); not numbers only."""
    values = [v for v in values if v]
    if len(values) > 2 and len(values[0]) != len(values[1]):
        values = values[1:]
    width = max(map(len, values), default=0)
    return (width >= 16 and sum(len(v) != width for v in values) <= 1
            and _LETTER.search(b"".join(values)) is not None)


def _digests(values: list[bytes]) -> bool:
    """Hex values all of one digest's width (MD5 to SHA-512)."""
    width = len(values[0])
    return (width in _DIGEST_WIDTHS and all(len(v) == width for v in values)
            and not b"".join(values).translate(None, _HEX_DIGITS))


_DIGEST_WIDTHS = frozenset((32, 40, 56, 64, 96, 128))


def _counter_order(column: tuple[bytes, ...]) -> list[int] | None:
    """The rows in the order of the numbers of a counter column (the same text around each,
    every number different: `sort -n` puts them in order), or None."""
    matches = [_COUNTER_FIELD.match(v) for v in column]
    first = matches[0]
    if first is None or not all(m is not None and m.group(1) == first.group(1)
                                and m.group(3) == first.group(3) for m in matches):
        return None
    numbers = [int(m.group(2)) for m in matches]  # type: ignore[union-attr]  # all matched
    if len(set(numbers)) != len(numbers):
        return None
    return sorted(range(len(numbers)), key=numbers.__getitem__)


_WORD = re.compile(rb"[A-Za-z]{1,12}\Z")


def _decode_lines(run: list[bytes]) -> Iterator[tuple[bytes, str]]:
    """A run of lines decoded whole, and without a first or last line that is a lone word
    ("hi", "Bye"), which would shift or extend the payload."""
    first = len(run) > 1 and _WORD.match(run[0]) is not None and len(run[0]) != len(run[1])
    last = len(run) > 1 and _WORD.match(run[-1]) is not None and len(run[-1]) != len(run[-2])
    yield from _decode_run(b"".join(run))
    if first:
        yield from _decode_run(b"".join(run[1:]))
    if last:
        yield from _decode_run(b"".join(run[int(first):-1]))
    lead = run[0][:1]
    body = run if run[-1][:1] == lead else run[:-1]  # (the here-document's end marker)
    if (len(body) > 1 and lead and all(ln[:1] == lead for ln in body)
            and all((len(ln) - 1) % 4 == 0 for ln in body[:-1])):
        # every line behind one letter, as shar writes files (`sed 's/^X//'`, round 10)
        yield from _decode_run(b"".join(ln[1:] for ln in body))


def _place(dump: bytearray, offset: int, data: bytes, repeat: bytes, size: int) -> None:
    """Put one dump line's bytes at `offset`, as `xxd -r` does: a gap is filled with the
    repeated line `hexdump -C` elided ("*"), else zeros, within `_DUMP_FILL_RATIO`; an offset
    already written is written over (`xxd -r` seeks: a dump's lines in any order make the
    file, round 18)."""
    if 0 <= offset < len(dump):
        dump[offset : offset + len(data)] = data
        return
    gap = offset - len(dump)
    if gap > 0 and len(dump) + gap <= _DUMP_FILL_RATIO * size:  # the whole dump is bounded
        if repeat:
            dump.extend((repeat * (gap // len(repeat) + 1))[:gap])
        else:
            dump.extend(bytes(gap))
    dump.extend(data)


def _last_line_bytes(dump: bytearray) -> bytes:
    width = 16  # xxd and hexdump -C write 16 bytes a line
    return bytes(dump[-width:]) if len(dump) >= width else bytes(dump)


def _decode_dump(data: bytes) -> Iterator[tuple[bytes, str]]:
    if len(data) >= MIN_DECODED:
        yield data, "hex-dump"


def _line_chars(line: bytes) -> bytes:
    """The encoded characters of one line, or b"" when it is not a line of encoded text."""
    start = _PREFIX.match(line).end()  # type: ignore[union-attr]  # always matches
    end = _suffix_start(line, start)
    body, prefixed = _HEX_PREFIXES.subn(b"", line[start:end])
    if _ODD_SEPARATOR.search(body):
        # groups cut by punctuation (`TVqQ,AAMA,...`, `4D-5A-90`, `%4D%5A`): `base64 -d -i`
        # and `xxd -r -p` skip it; at least four groups of 2 to 8 (CSV stays text), first
        # ('-' and '_' are also URL-safe base64 characters)
        chars = _groups(body, _PUNCTUATION, 4, 8)
        if chars:
            return chars
    return _groups(body, _LIST_SEPARATORS if prefixed else _SEPARATORS, 1, 16)


def _groups(body: bytes, separators: re.Pattern[bytes], least: int, widest: int) -> bytes:
    """`body`'s groups joined, if they are `least`+ groups as wide as the first (2 to
    `widest`; the last may be shorter) of encoded characters; a lone token is one group."""
    tokens = [t for t in separators.split(body) if t]
    if not tokens or (len(tokens) < least and least > 1):
        return b""
    if len(tokens) > 1:  # groups cut by a separator: not words, nor a hash and a file name
        width = len(tokens[0])
        if (not 2 <= width <= widest or any(len(t) != width for t in tokens[:-1])
                or len(tokens[-1]) > width):
            return b""
    joined = b"".join(tokens)
    return joined if _ENCODED.match(joined) else b""


_BLANK_BYTES = b" \t\r\n"
_BASE64_PLAIN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_A85_CHARS = bytes(range(33, 118)) + b"z"
_Z85 = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_B85 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
_Z85_TO_B85 = bytes.maketrans(_Z85, _B85)


def _base85(span: bytes) -> Iterator[tuple[bytes, str]]:
    """A stretch that is nothing but Ascii85 (`<~...~>` or bare), Z85 (`basenc --z85`) or
    base85 (RFC 1924, Python's `b85encode`) characters, with punctuation (else it is base64,
    hex or base32, read above), decoded each way its alphabet allows. Its lines hold no
    blanks (none of the three writes one; a log line or prose does)."""
    if b" " in span.strip() or b"\t" in span:
        return
    chars = span.translate(None, _BLANK_BYTES)
    if len(chars) < 80 or not chars.translate(None, _BASE64_PLAIN):
        return
    body = chars[2:-2] if chars.startswith(b"<~") and chars.endswith(b"~>") else chars
    readings: list[tuple[str, bytes]] = []
    if not body.translate(None, _A85_CHARS):
        with contextlib.suppress(ValueError):
            readings.append(("ascii85-text", base64.a85decode(body)))
    if not chars.translate(None, _Z85):
        with contextlib.suppress(ValueError):
            whole = chars[: len(chars) - len(chars) % 5]
            readings.append(("z85-text", base64.b85decode(whole.translate(_Z85_TO_B85))))
    if not chars.translate(None, _B85):
        with contextlib.suppress(ValueError):
            readings.append(("base85-text", base64.b85decode(chars)))
    for encoding, data in readings:
        if len(data) >= MIN_DECODED and _varied(data):
            yield data, encoding


#: A run of escapes as `printf` / `echo -e` (octal, `\x`, `\u` and `\U` with up to 4 and 8
#: digits), JavaScript's `unescape` (`%u0058`, `%58`) and an HTML parser (`&#x58;`, `&#88`)
#: read them, with printable characters between them.
#: Runs of 32+ escapes and printable characters (`\\NNN`, `\\xHH`, `\\uHHHH`, `%uHHHH`, `&#N;`),
#: each escape as short as it can be (one digit, one hex digit): every byte of a longer
#: escape is a unit of the run by itself, so a run's extent is the same and its units the
#: most any split gives. A regex of whole escapes `{32,}` looked for a split of 32 by trying
#: them all, exponential in a short run's escapes (lines of `\\ddd`: 80 KB cost 42 s).
_ESCAPE_UNITS = re.compile(rb"(?:\\(?:[0-7]|[xuU][0-9A-Fa-f])|[!-\[\]-~])++")
_LETTER_ESCAPE = re.compile(rb"\\[xuU]")


def _escape_runs(span: bytes) -> Iterator[re.Match[bytes]]:
    """The runs of `span` with 32 or more escapes or printable characters, in linear time."""
    for m in _ESCAPE_UNITS.finditer(span):
        run = m.group()
        units = len(run) - run.count(b"\\") - len(_LETTER_ESCAPE.findall(run))
        if units >= 32:
            yield m
        elif units == 31 and _LETTER_ESCAPE.match(run):  # (after its `\\`, `x4` is 2 units)
            yield _ESCAPE_UNITS.match(span, m.start() + 1)  # type: ignore[misc]  # matches
_ESCAPE = re.compile(rb"\\(?:(0[0-7]{0,3})|([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})"
                     rb"|U([0-9A-Fa-f]{1,8}))")
_OCTAL_PRINTF = re.compile(rb"\\([0-7]{1,3})")
_JS_ESCAPE = re.compile(rb"%u([0-9A-Fa-f]{4})|%([0-9A-Fa-f]{2})")


def _escapes(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Runs of 16 or more escapes, as `echo -e` (`\\0NNN`), `printf` (`\\NNN`), JavaScript's
    `unescape` and an HTML parser decode them; code points as UTF-8."""
    if b"\\" not in span and b"%" not in span and b"&#" not in span:
        return
    for m in _escape_runs(span):
        run = m.group()
        if run.count(b"\\") + run.count(b"%") + run.count(b"&#") < 16:
            continue
        readings = (_echo_e(run), _printf(run), _js_unescape(run), _entities(run))
        for reading in dict.fromkeys(readings):
            if reading != run and len(reading) >= MIN_DECODED and _varied(reading):
                yield reading, "escaped-text"


#: Lines of quoted-printable text (RFC 2045 6.7: `=XX` escapes, `=` at the end of a soft line
#: break): a run starts at a line where two escapes follow each other (a file written as
#: `=4D=5A=90=00...`) and goes on while each next line holds an escape or ends in `=`. Found
#: from the escapes, not by a `(?m)^` regex tried at every byte (2.5 ms per 100 KB of text).
_QP_PAIR = re.compile(rb"=[0-9A-Fa-f]{2}=[0-9A-Fa-f]{2}")  # (a literal first: searched for)
_QP_LINE = re.compile(rb"[^\n]*(?:=[0-9A-Fa-f]{2}|=\r?(?=\n|\Z))")


def _qp_runs(span: bytes) -> Iterator[bytes]:
    at = 0
    while (m := _QP_PAIR.search(span, at)) is not None:
        start = span.rfind(b"\n", 0, m.start()) + 1
        end = span.find(b"\n", m.end())
        while end >= 0 and _QP_LINE.match(span, end + 1) is not None:
            end = span.find(b"\n", end + 1)
        end = len(span) if end < 0 else end
        yield span[start:end]
        at = end


def _quoted_printable(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Quoted-printable text in a text (`python3 -m quopri -d`, `qprint -d`, a mail client's
    "decode"): runs of lines holding escapes, decoded when 16 or more decode."""
    if b"=" not in span:
        return
    for run in _qp_runs(span):
        if run.count(b"=") < 16:
            continue
        data = binascii.a2b_qp(run)
        if data != run and len(data) >= MIN_DECODED and _varied(data):
            yield data, "quoted-printable-text"


#: A JSON object of a number and a string (`{"i": 18, "d": "AAAAwA=="}`), either first.
_JSON_RECORD = re.compile(
    rb'\{\s*"(\w{1,32})"\s*:\s*(?:(\d{1,9})\s*,\s*"(\w{1,32})"\s*:\s*"([A-Za-z0-9+/=_-]*)"'
    rb'|"([A-Za-z0-9+/=_-]*)"\s*,\s*"(\w{1,32})"\s*:\s*(\d{1,9}))\s*\}')


def _json_records(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Base64 (or hex) in the strings of JSON objects of a number and a string, the same
    keys in each, joined in the numbers' order (`jq -r 'sort_by(.i)[].d'`) and as they
    stand."""
    if b'"' not in span or b"{" not in span:
        return
    records: dict[tuple[bytes, bytes], list[tuple[int, bytes]]] = {}
    for m in _JSON_RECORD.finditer(span):
        if m.group(2) is not None:
            key, number, value = (m.group(1), m.group(3)), m.group(2), m.group(4)
        else:
            key, number, value = (m.group(6), m.group(1)), m.group(7), m.group(5)
        records.setdefault(key, []).append((int(number), value))
    for found in records.values():
        if len(found) < 2 or len({n for n, _ in found}) != len(found):
            continue
        if sum(0 < len(v) < _LEAST_WIDTH for _, v in found) > 1:
            continue  # codes and names (`{"id": 7, "sku": "SKU0007"}`)
        yield from _decode_lines([v for _, v in found if v])
        yield from _decode_lines([v for _, v in sorted(found) if v])


def _percent_lines(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Percent-encoded bytes (`urllib.parse.quote`) in runs of lines without blanks, four
    escapes or more each, joined (the line breaks may cut an escape) and decoded as
    `urllib.parse.unquote_to_bytes` does, when escapes make half the bytes or more (not
    "5%" lines joined into "%1") and decode to bytes that are not text (URLs: text, UTF-8)."""
    if span.count(b"%") < 16:
        return
    run: list[bytes] = []
    for line in itertools.chain(span.split(b"\n"), (b"",)):
        line = line.rstrip(b"\r")
        if line.count(b"%") >= 4 and b" " not in line and b"\t" not in line:
            run.append(line)
            continue
        if len(run) > 0:
            joined = b"".join(run)
            data = urllib.parse.unquote_to_bytes(joined)
            escapes = (len(joined) - len(data)) // 2
            if (escapes >= 16 and escapes * 2 >= len(data) and len(data) >= MIN_DECODED
                    and _varied(data) and data.translate(None, _TEXT_BYTES)):
                yield data, "percent-encoded-text"
            run = []


_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\r\n" + bytes(range(0x80, 0x100))


#: A Python bytes literal on one line (`repr()` of bytes, `print(data)`): printable
#: characters and escapes (`\x00`, `\t`, `\n`, `\\`, `\'`).
_BYTES_LITERAL = re.compile(rb"""\bb(?:'(?:[^'\\\r\n]|\\[^\r\n])*'|"(?:[^"\\\r\n]|\\[^\r\n])*")""")


def _bytes_literals(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Python bytes literals of 16 or more escapes, as `ast.literal_eval` reads them (it
    evaluates literals only)."""
    if b"\\x" not in span or (b"b'" not in span and b'b"' not in span):
        return
    for m in _BYTES_LITERAL.finditer(span):
        literal = m.group()
        if literal.count(b"\\") < 16 or not literal.isascii():
            continue
        try:
            data = ast.literal_eval(literal.decode("ascii"))
        except (ValueError, SyntaxError):
            continue
        if isinstance(data, bytes) and len(data) >= MIN_DECODED and _varied(data):
            yield data, "bytes-literal-text"


def _js_unescape(run: bytes) -> bytes:
    """`unescape()`: code units below 256 as bytes (as a script writes them out), others
    as UTF-8."""
    if b"%" not in run:
        return run

    def one(m: re.Match[bytes]) -> bytes:
        value = int(m.group(1) or m.group(2), 16)
        return bytes([value]) if value < 256 else _code_point(value)
    return _JS_ESCAPE.sub(one, run)


_STRING_ESCAPE = re.compile(rb"\\(?:u([0-9A-Fa-f]{4})|([/\\\"']))")
_TOKEN = re.compile(rb"[A-Za-z0-9+/=]{%d,}" % 64)


def _string_tokens(span: bytes) -> Iterator[tuple[bytes, str]]:
    """Base64 inside JSON or script strings whose escapes cut it (`TVqQ\\/AAM`,
    `\\u002F`): the strings unescaped, then each long token decoded (`jq -r`)."""
    if b"\\/" not in span and b"\\u" not in span:
        return
    text = _STRING_ESCAPE.sub(lambda m: (bytes([int(m.group(1), 16)]) if m.group(1)
                                         and int(m.group(1), 16) < 128 else m.group(2) or b"?"),
                              span)
    for m in _TOKEN.finditer(text):
        yield from _decode_run(m.group())


def _entities(run: bytes) -> bytes:
    if b"&#" not in run:
        return run
    return html.unescape(run.decode("latin-1")).encode("latin-1", "replace")


def _code_point(value: int) -> bytes:
    return chr(value).encode("utf-8", "replace") if value < 0x110000 else b""


def _echo_e(run: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        if m.group(1) is not None:  # \0NNN
            return bytes([int(m.group(1) or b"0", 8) & 0xFF])
        if m.group(2) is not None:  # echo -e leaves \NNN without the 0 alone
            return m.group(0)
        if m.group(3) is not None:
            return bytes([int(m.group(3), 16)])
        return _code_point(int(m.group(4) or m.group(5), 16))
    return _ESCAPE.sub(one, run)


def _printf(run: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        if m.group(1) is not None or m.group(2) is not None:  # \NNN (up to three digits)
            return m.group(0)  # (octal below: printf reads three digits at most)
        if m.group(3) is not None:
            return bytes([int(m.group(3), 16)])
        return _code_point(int(m.group(4) or m.group(5), 16))
    text = _ESCAPE.sub(one, run)
    return _OCTAL_PRINTF.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), text)


def _decode_run(chars: bytes) -> Iterator[tuple[bytes, str]]:
    """A run's characters decoded as bits, hex, base32 (also the extended-hex alphabet, and
    padded piece by piece) or base64, if it is long and looks encoded."""
    if len(chars) >= 8 * MIN_DECODED and not chars.translate(None, b"01"):
        yield from _base2(chars)  # `basenc --base2msbf -d` (two characters: never "varied")
        return
    if len(chars) < MIN_DECODED or not _varied(chars):
        return
    if len(chars.translate(None, _NOT_UPPER_DIGITS)) < _DENSE * len(chars):
        return  # a list of words, one per line
    if not chars.translate(None, _HEX_DIGITS):
        if len(chars) % 2 == 0 and len(chars) // 2 >= MIN_DECODED:
            yield bytes.fromhex(chars.decode("ascii")), "hex-text"
        return
    if not chars.translate(None, _B32_CHARS):
        for data in (_b32(chars), _b32_pieces(chars)):
            if len(data) >= MIN_DECODED:
                yield data, "base32-text"
    if not chars.translate(None, _B32HEX_CHARS):  # `basenc --base32hex -d`
        data = _b32(chars.translate(_B32HEX_TO_B32))
        if len(data) >= MIN_DECODED:
            yield data, "base32hex-text"
    for data in base64_variants(chars):
        if len(data) >= MIN_DECODED:
            yield data, "base64-text"


_B32_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567="
_B32_LOWER = b"abcdefghijklmnopqrstuvwxyz234567="
_B32HEX_CHARS = b"0123456789ABCDEFGHIJKLMNOPQRSTUV="
_B32HEX_TO_B32 = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUV",
                                 b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _b32(chars: bytes) -> bytes:
    """Base32 read as one stream (inner padding skipped), whatever its length."""
    body = chars.replace(b"=", b"")
    body = body[: len(body) - len(body) % 8] if len(body) % 8 not in (0, 2, 4, 5, 7) else body
    try:
        return base64.b32decode(body + b"=" * (-len(body) % 8))
    except binascii.Error:
        return b""


def _b32_pieces(chars: bytes) -> bytes:
    """Base32 padded piece by piece (text encoded a few bytes at a time): `base32 -d` reads
    each padded piece in turn."""
    if b"=" not in chars.rstrip(b"="):
        return b""
    return b"".join(_b32(piece) for piece in re.split(rb"=+", chars) if piece)


def _base2(chars: bytes) -> Iterator[tuple[bytes, str]]:
    """Bits, most significant first (`basenc --base2msbf`) and last (`--base2lsbf`)."""
    whole = chars[: len(chars) // 8 * 8]
    msbf = int(whole, 2).to_bytes(len(whole) // 8, "big")
    lsbf = bytes(int(whole[i : i + 8][::-1], 2) for i in range(0, len(whole), 8))
    for data in (msbf, lsbf):
        if _varied(data):
            yield data, "base2-text"




#: Lines that are one long token each (no blank inside), in a row: base64 with junk
#: characters written between its characters (round 20: punctuation, fullwidth letters,
#: combining accents in an HTML body or a PDF's text; `tr -cd 'A-Za-z0-9+/='` then
#: `base64 -d` rebuilds the file), which no run of 16 base64 characters finds.
# Lines of one long token (CRLF or LF) and a last short one, each found after its newline
# (the text gets one in front): a pattern that starts with a literal is searched for by it,
# where `(?m)^` is tried at every byte (20x slower on prose); possessive, so a line that fails
# does not backtrack.
_TOKEN_LINE = rb"\n[ \t]*+[^\s]{16,}+[ \t\r]*+(?=\n|\Z)"
_TOKEN_LINES = re.compile(_TOKEN_LINE + rb"(?:" + _TOKEN_LINE + rb")*"
                          rb"(?:\n[ \t]*+[^\s]{1,15}+[ \t\r]*+(?=\n|\Z))?")  # (a last short one)
_NOT_B64 = bytes(c for c in range(256) if chr(c) not in
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
MIN_JUNKED = 200  # characters of a block of tokens
_BLANK_OR_CONTINUATION = b" \t\r\n" + bytes(range(0x80, 0xC0))
_JUNK_RUN = re.compile(rb"[^A-Za-z0-9+/=\s]+")


def junked_blocks(text: bytes, check: Check = None) -> Iterator[EmbeddedFile]:
    """Each block of long tokens whose base64 characters, every other byte deleted (as
    `tr -cd` does), decode to a file: "base64-junked" (a guess: the caller scans it as one)."""
    if len(text) < MIN_JUNKED:
        return
    for n, m in enumerate(_TOKEN_LINES.finditer(b"\n" + text)):
        if check is not None and not n % _CHECK_EVERY:
            check()
        block = m.group()
        if len(block) < MIN_JUNKED:
            continue
        kept = block.translate(None, _NOT_B64)
        solid = block.translate(None, _BLANK_OR_CONTINUATION)  # (characters, not bytes)
        if len(kept) == len(solid) or len(kept) < MIN_BASE64 or len(kept) * 5 < len(solid):
            continue  # (no junk: the other finders read it; or mostly junk)
        if len(_JUNK_RUN.findall(block)) * 16 < len(kept):
            continue  # (base64 runs of 16 on average: the block finders read them; CSV)
        for data in base64_variants(kept, check)[:2]:
            if len(data) >= MIN_DECODED:
                yield EmbeddedFile(data, None, "base64-junked")
