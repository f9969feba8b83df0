"""zlib streams with a preset dictionary (RFC 1950's FDICT; round 20's a33).

`zlib.compressobj(zdict=...)` lets a stream copy strings from a dictionary both sides know,
and the stream holds only its Adler-32 (DICTID). Without it, `zlib.decompress` says "need
dictionary" and a scanner that stops there passes the file. A recipient can only decode it
with the dictionary, so a sender who mails one puts the dictionary somewhere the recipient
finds it, most likely in the same mail (the body's text, another attachment). So:

- every layer of the scan up to 256 KiB is remembered (`ScanContext.note_dictionary`; its
  Adler-32 is computed only once a stream asks), and a stream whose DICTID names one is
  inflated with it
  (the stream's own Adler-32 trailer then checks the result);
- a stream whose dictionary was not seen yet is tried again when the whole mail was walked
  (`late_children`), as the dictionary may come after it;
- a stream whose dictionary is nowhere in the mail (or a header, or a part of a layer) is
  inflated with a dictionary of zero bytes, which gives every byte the stream holds itself
  (signatures over those still match), and it is `Heuristics.Unsupported.Zlib.Dictionary`:
  what it copies from the dictionary was not read, so it is never clean. It counts when that
  inflation reaches the stream's last block, whatever follows (random bytes behind such a
  header do so one time in 28, and real files start with one almost never: 1 in 116,101
  files of /usr/share and /usr/lib, which did not).

Round 21 (a subagent attacking this reader): decoys of the same Adler-32, streams without
their trailer or with bytes behind them, a stream behind a tag of up to 32 bytes (a guess),
one written in a short base64 token (a guess).
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.archive import zlib_bounded, zlib_header
from zerohour.scan.encodings import B64_ALPHABET
from zerohour.scan.gates import Gate
from zerohour.scan.limits import MAX_SCAN_SIZE, ScanContext
from zerohour.scan.types import Child

#: deflate's window: a zero dictionary this long lets every distance resolve.
_WINDOW = 32768
#: Streams kept for the scan's end, at most.
_MAX_PENDING = 64
#: Layers of one Adler-32 tried as a stream's dictionary, at most (past it: not clean).
_MAX_CANDIDATES = 64
#: What a stream read without its dictionary must make to count as one.
_MIN_OUTPUT = 16


def short_base64(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """zlib streams written in base64 tokens shorter than a text's base64 blocks
    (`textcarriers.MIN_BASE64`): with a dictionary doing the work, a stream of clam.exe is
    22 bytes, 32 characters (round 21's Z8). Only tokens that start with a zlib header's
    base64 (`eJ`, `eN`, `eA`, `eF`, and with a dictionary `eL`, `eP`, `eC`, `eH`), each a
    guess."""
    if not _SHORT_ZLIB_GATE(data):  # (one hyperscan pass: most texts have no such token)
        return
    n = 0
    for m in _SHORT_ZLIB.finditer(data):
        if _in_block(data, m.start(), m.end()):
            continue  # (a line of a base64 block: the text's base64 blocks read it)
        n += 1
        if n > _MAX_SHORT:
            return
        ctx.check_time()
        token = b"e" + m.group(1)
        try:
            raw = base64.b64decode(token + b"=" * (-len(token) % 4))
        except ValueError:
            continue
        if zlib_header(raw):
            ctx.charge_child(len(raw))
            yield Child(data=raw, name=None, origin="base64-zlib", speculative=True)


#: a token of fewer characters than a base64 block, starting as a zlib header encodes (the
#: literal first, then what comes before it: a look-behind first was tried at every byte,
#: 0.7 ms per 100 KB of text; possessive: a longer token fails once, not 74 times)
_SHORT_ZLIB = re.compile(rb"e(?<![A-Za-z0-9+/=]e)([ACFHJLNP][A-Za-z0-9+/]{10,84}+)={0,2}+"
                         rb"(?![A-Za-z0-9+/=])")
_SHORT_ZLIB_GATE = Gate(rb"(?:^|[^A-Za-z0-9+/=])e[ACFHJLNP][A-Za-z0-9+/]{10}", caseless=False)
_MAX_SHORT = 256


def _in_block(data: bytes, start: int, end: int) -> bool:
    """Whether a token is one line of lines of base64 (the line before it ends, or the line
    after it starts, with a base64 character)."""
    back = data[max(0, start - 3) : start]
    if back.endswith(b"\n"):
        back = back.rstrip(b"\r\n")
        if back and back[-1] in _BASE64_CHARS:
            return True
    ahead = data[end : end + 3]
    if ahead[:1] in (b"\r", b"\n"):
        ahead = ahead.lstrip(b"\r\n")
        if ahead and ahead[0] in _BASE64_CHARS:
            return True
    return False


_BASE64_CHARS = frozenset(B64_ALPHABET + b"=")


def behind_a_tag(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """A zlib stream a few bytes into a binary layer (a tag or a length in front of it, which
    a loader skips: round 21's Z3), as a guess: the stream from there, when its first bytes
    inflate (with or without a dictionary). Within `_MAX_TAG` bytes, `x` headers only."""
    at = data.find(b"x", 1, _MAX_TAG + 1)
    while 0 < at <= _MAX_TAG:
        head = data[at : at + 2048]
        if zlib_header(head) and _inflates(head):
            ctx.charge_child(len(data) - at)
            # (a whole stream to the layer's end, its trailer aside, is no guess: one that
            # names a dictionary the mail lacks is then not clean)
            _out, end, whole = zlib_bounded(data, -15, ctx, start=at + (6 if head[1] & 0x20
                                                                           else 2),
                                            zdict=bytes(_WINDOW) if head[1] & 0x20 else None)
            yield Child(data=data[at:], name=None, origin="zlib-behind",
                        speculative=not (whole and end >= len(data) - 4))
            return
        at = data.find(b"x", at + 1, _MAX_TAG + 1)


def _inflates(head: bytes) -> bool:
    """Whether a zlib stream's first bytes inflate to 16 bytes or more (or to its end)."""
    try:
        if head[1] & 0x20:  # (a dictionary: its own bytes, with zeros for the dictionary's)
            d = zlib.decompressobj(-15, zdict=bytes(_WINDOW))
            out = d.decompress(head[6:], 64)
        else:
            d = zlib.decompressobj()
            out = d.decompress(head, 64)
    except zlib.error:
        return False
    return len(out) >= _MIN_OUTPUT or d.eof


#: bytes in front of a stream looked past (`behind_a_tag`)
_MAX_TAG = 32


def named(data: bytes) -> int | None:
    """The DICTID of a zlib stream with a preset dictionary at the start of `data`, if any."""
    if len(data) < 12 or not zlib_header(data) or not data[1] & 0x20:
        return None
    return int.from_bytes(data[2:6], "big")


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The stream inflated with each layer seen so far that may be its dictionary; kept for
    `late_children` too, for those that come after it (a decoy of the same Adler-32 before
    the dictionary decodes it too, to other bytes: round 21's Z2)."""
    found, tried = _with_dictionary(data, ctx, 0)
    yield from found
    if len(ctx.dict_streams) < _MAX_PENDING:
        ctx.dict_streams.append((data, tried, bool(found), ctx.guessing > 0))
    elif not found:  # (more than any mail needs: fail closed rather than read them in part)
        yield from _without_dictionary(data, ctx)


def late_children(ctx: ScanContext) -> Iterator[Child]:
    """At the end of the scan: the streams' dictionaries that came later, or none ever."""
    pending, ctx.dict_streams = ctx.dict_streams, []
    for data, tried, decoded, guessed in pending:
        found, _tried = _with_dictionary(data, ctx, tried)
        yield from found
        if not (found or decoded) and ctx.dictionaries_dropped:
            # Its dictionary may be a layer the budget left out: read without it, a guessed
            # stream would say nothing (heuristics are muted in a guess), so the scan's limit
            # says it (round 29's F7: 16 MiB of other parts before the dictionary)
            raise ScanLimitExceeded(MAX_SCAN_SIZE, "zlib dictionaries over their budget")
        if not (found or decoded):  # (inside a guess: what it holds, as a guess too, and
            yield from _without_dictionary(data, ctx, guessed)  # no finding, as the engine
            # mutes heuristics in a guess)


def _with_dictionary(data: bytes, ctx: ScanContext, skip: int) -> tuple[list[Child], int]:
    """The stream inflated with each layer of its DICTID past the first `skip` that decodes
    it, trailer or not; and how many layers there are."""
    dictid = named(data)
    candidates = ctx.dictionaries(dictid) if dictid is not None else []
    if len(candidates) > _MAX_CANDIDATES:  # (decoys of one checksum: round 21's gateway
        ctx.unsupported("Zlib", "Dictionary")  # attack hid the dictionary behind eight)
    found: list[Child] = []
    for zdict in candidates[skip:_MAX_CANDIDATES]:
        out, _end, complete = zlib_bounded(data, 15, ctx, zdict=zdict)
        if not complete:  # (no Adler-32 trailer: `decompressobj().decompress()` still
            out, _end, complete = zlib_bounded(data, -15, ctx, start=6, zdict=zdict)  # gives
        if complete and out:  # all the final block holds)
            ctx.charge_child(len(out))
            found.append(Child(data=out, name=None, origin="zlib-dictionary"))
    return found, len(candidates)


def _without_dictionary(data: bytes, ctx: ScanContext, guessed: bool = False
                        ) -> Iterator[Child]:
    """A stream whose last block ends, whatever follows it (bytes behind a stream are ignored
    by `decompressobj`: round 21's Z1), read with zeros for the dictionary."""
    out, _end, complete = zlib_bounded(data, -15, ctx, start=6, zdict=bytes(_WINDOW))
    if not complete or len(out) < _MIN_OUTPUT:
        return  # not a zlib stream after all
    if not guessed:
        ctx.unsupported("Zlib", "Dictionary")
    ctx.charge_child(len(out))
    yield Child(data=out, name=None, origin="zlib-dictionary", speculative=guessed)
