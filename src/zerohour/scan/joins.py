"""Files a recipient rebuilds by joining pieces of one mail that nothing ties together (round 16).

`mime.joined_volumes` joins pieces named as pieces (`xaa`, `x.001`, `part1`). A sender can
name them anything (`photo1.dat`, `photo2.dat`; `1 2 3`; two members of one zip), attach them
in any order, or cut the *text* of an encoding (base64, `xxd -p` hex) over two attachments,
the body and an attachment, a header and the body, or two blocks of one body, and write the
join in the mail (`cat a b > x.exe`, `cat a.txt b.txt | base64 -d`). Nothing in the pieces
says how they fit, so this module guesses, and the guesses stay cheap and harmless:

- **A head is required.** A rebuilt executable or archive starts with its magic number, so
  one piece must start with one (`MZ`, `PK\\x03\\x04`, `Rar!`, `7z`, `\\x7fELF`, `MSCF`,
  `%PDF-`) *and be cut short*: its own structure says it goes on past its end (`_cut`). A
  complete file (a PDF with its `%%EOF`, a zip with its end record, a PE whose sections all
  fit) is never a head, nor is a RAR volume that says more volumes follow (a set is joined
  as named volumes; six of them were MaxFiles, R33-FP1; a `.7z.001` set has one head, its
  first volume), and photos, PDFs or docx files alone are never joined. Ordinary
  mail has no head, and then no join is made (the cost is a prefilter, `_HEAD_TEXT`).
- **The other pieces are every other file** of the mail (or archive), recognised or not:
  a tail starts where the cut fell, and a file's inside holds other files (an icon's PNG,
  a gzip or a zip in a PE's section, running to its end), so a tail typed gzip, zip, cab,
  OLE2, PDF... and even a complete one (a zip that ends the PE) is joined (R33-F5: such a
  tail was no piece, and the head had nothing to join). Without a head nothing is joined,
  and the joins' bounds below are the cost. Runs of encoded text stay stricter
  (`_loose_run`: a run whose decoding is a complete recognised file is no piece).
- **Orders, bounded.** With at most `_PERMUTE` other pieces, every arrangement of every
  non-empty subset of them after the head (5 others: 325 joins), so decoys among the
  attachments do not spoil the hash of the file; with more, the attachment order and its
  reverse of all of them, then the head with every single piece, then with every pair and
  every triple of consecutive pieces in attachment order (a two-, three- or four-piece split
  among decoys): 3k - 1 joins a head for k others, however many (round 31's F6: the tail of
  a two-piece split behind 65 decoys was past the first 64 pieces, which alone were paired,
  and the mail was clean; the encoded-text path had the same window, and a head run past its
  256th run was dropped silently). At most `_MAX_HEADS` heads, `_MAX_JOINS` joins
  (`_MAX_TEXT_JOINS` of encoded text) and `_MAX_BYTES` joined bytes per call, never more
  than half the scan's remaining file and byte budget, and `ctx.check_time()` between joins.
  Those bounds are limits, not silence: more heads than `_MAX_HEADS`, or an order left
  untried because the joins ran out (their own bound: one head with some 1,365 others, or
  four heads with some 340 each; four heads with five others each to permute, 4 x 325, are
  all joined, and so is one head among 400 members, R32-FP1; a head run with the k runs of
  text whose
  3k - 1 orders, read one to four ways each, need more than 4,096 joins;
  or the scan's file budget), is `MaxFiles`; so is a head run among runs of text past
  `_MAX_RUNS` runs or `_MAX_RUN_CHARS` characters (those are read on, each decoded alone,
  to look for one); a join left unmade for its bytes is `MaxScanSize` (over what is left of
  `_MAX_BYTES` or of the scan's byte budget), or `MaxFileSize` as for a member (over
  `MaxFileSize`, with alerts on). `binary_joins` makes a head's joins smallest first, and
  the name-order joins last, so the big ones are what a limit leaves: a decoy of 64 MB less
  a few hundred bytes (a 2.5 MB zip member) spent the budget on the attachment-order join
  and the head with its 272-byte tail was skipped, clean (R32-F1); 64 decoys of 1 MiB just
  under the real join's size, in a 75 KB mail, spent it within the join count (R33-F3), and
  were clean until a join skipped for its bytes became the limit. The price: a cut head
  beside attachments whose joins pass 64 MB (a partial download next to five 10 MB files)
  is `MaxScanSize`. Encoded text's joins are decoded before they are measured and are not
  sorted. Attachments
  with names are also joined once in their names' order, and once in natural order (`ls`,
  `ls -v`), however many they are.
- **Across containers** (`across_joins`, at the scan's end): with a cut head among the named
  files of the whole scan (attachments and the members of every archive), the joins above
  of those files, but only the ones whose pieces come from two containers or more (each
  container's own were made with it): a head attached and its tail in an attached zip
  (R32-F5). Bounded the same way, so a partial download next to a zip of some 1,400 members
  is `MaxFiles`.
- **Text is joined as text, then decoded** (`text_joins`): a cut can fall inside a base64
  quantum or a hex byte, and `cat a.txt b.txt | base64 -d` decodes the join, not the pieces.
  The runs are the encoded stretches of the message's header values (Subject, Comments,
  Keywords, `X-*`), bodies and text attachments: consecutive lines holding only base64
  characters, and single tokens of `MIN_RUN`+ characters inside other text. A run is a head
  when its own decoding (whole quanta from its start; hex when it is all hex digits) is a cut
  head as above.
- **Joins are guesses, never findings.** Each join is a `Child` with `speculative=True`: the
  engine matches it and what it holds against signatures, but mutes the heuristics (broken,
  encrypted, unsupported, limits) and decoder errors of that subtree, since a junk join is
  expected to be broken. A join is only ever a finding through a signature; the guessing
  itself is one only through the limits above (what it was bounded from trying).

Not covered: a payload split over two mails (a per-message scanner never sees both); pieces
that are unrecognised from their first byte on (a split file with no magic number at its
start: a script, a text); heads of formats without a cheap completeness test (gzip, bzip2,
OLE2, Mach-O).
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import encodings, filetype
from zerohour.scan.gates import Gate
from zerohour.scan.limits import MAX_FILES, MAX_SCAN_SIZE, ScanContext
from zerohour.scan.textcarriers import lf_lines
from zerohour.scan.types import Child, FileType

#: Other pieces up to which every arrangement of every subset is joined (5: 325 joins a head).
_PERMUTE = 5
#: Past that, runs of up to this many consecutive pieces (in attachment order) after a head.
_RUN = 3
_MAX_HEADS = 4
#: Joins of binary pieces per call: every order of one head with some 1,365 others (3k - 1),
#: or of four heads with 340; a join of small pieces is some 0.1 ms (a cut PE's head with
#: 1,360 300-byte others: 4,085 joins, 0.5 s). 1,024 made one real head among 400 members of
#: a project zip MaxFiles (R32-FP1); past it, the scan's own file budget binds.
_MAX_JOINS = 4096
#: Joins of encoded text per call (`text_joins`): one head with every run of a page full of
#: tokens (3k - 1 orders for k runs, each decoded in one to four readings); a join is a few
#: hundred bytes of a small speculative child (some 50 us).
_MAX_TEXT_JOINS = 4096
_MAX_BYTES = 64 * 1024 * 1024
#: Runs of encoded text collected per message, and their characters in all.
_MAX_RUNS = 1024
_MAX_RUN_CHARS = 16 * 1024 * 1024
#: Fewest characters of an encoded run: 12 bytes of base64, 8 of hex (a magic number and a
#: little of the header behind it). Shorter tokens are words.
MIN_RUN = 16
#: Size of a text source (header value, body, text attachment); every one is read, up to
#: the runs' bounds (64 were: the tail of a cut past the 64th was dropped, round 31).
_MAX_SOURCE = 8 * 1024 * 1024

_LOOSE_TYPES = frozenset({FileType.BINARY, FileType.TEXT})


# -- heads: a recognised file cut short -------------------------------------------------------


def _u16(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 2], "little")


def _u32(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 4], "little")


def _pe_cut(data: bytes) -> bool:
    """An `MZ` file whose headers or sections go on past its end. A PE: its section table or
    a section's raw data beyond the end (an overlay after the sections is no sign of either).
    `e_lfanew` past the end: the PE header is missing. Otherwise a DOS program, whose header
    gives its size."""
    n = len(data)
    if n < 0x40:
        return True
    lfanew = _u32(data, 0x3C)
    if lfanew + 24 > n:
        return True
    if data[lfanew : lfanew + 4] == b"PE\x00\x00":
        nsec = _u16(data, lfanew + 6)
        table = lfanew + 24 + _u16(data, lfanew + 20)
        if table + 40 * nsec > n:
            return True
        for i in range(min(nsec, 96)):
            rsize, rptr = struct.unpack_from("<II", data, table + 40 * i + 16)
            if rsize and rptr + rsize > n:
                return True
        return False
    pages, last = _u16(data, 4), _u16(data, 2)
    size = pages * 512 - ((512 - last) if last else 0)
    return size > n


def _zip_cut(data: bytes) -> bool:
    """No end-of-central-directory record in the last 64 KiB (a comment's reach)."""
    return data.rfind(b"PK\x05\x06", max(0, len(data) - 65557)) < 0


def _sevenzip_cut(data: bytes) -> bool:
    """The start header's next-header offset and size reach past the end."""
    if len(data) < 32:
        return True
    off, size = int.from_bytes(data[12:20], "little"), int.from_bytes(data[20:28], "little")
    return 32 + off + size > len(data)


def _rar_cut(data: bytes) -> bool:
    """No end-of-archive block at the end (RAR 4: type 0x7B; RAR 5: header type 5), unless
    the file is a volume of a set: it ends with an end-of-archive block (its CRC right) that
    says more volumes follow (`_rar_volume`)."""
    tail = data[-32:]
    if b"\xc4\x3d\x7b\x00\x40\x07\x00" in tail or b"\x03\x05\x04\x00" in tail:
        return False
    return not _rar_volume(data)


def _rar_volume(data: bytes) -> bool:
    """Whether `data` ends with the end-of-archive block of a volume that is not the last
    (RAR 5: end-of-archive flag 1; RAR 4: `EARC_NEXT_VOLUME`), its CRC right: `Q3.part1.rar`
    ... `part5.rar` of six were five cut heads, MaxFiles (R33-FP1). The set is joined as
    named volumes (`mime.joined_volumes`); a volume cut short does not end with the block."""
    n = len(data)
    # RAR 5: CRC32, header size 3, type 5, header flags, end flags (bit 0: more volumes)
    if (n >= 8 and data[n - 4 : n - 2] == b"\x03\x05" and data[n - 1] & 1
            and zlib.crc32(data[n - 4 :]) == _u32(data, n - 8)):
        return True
    # RAR 4: CRC16 (low half of the CRC32), type 0x7B, flags, size (7, and 4 + 2 + 7 for
    # the data CRC, volume number and reserved space the flags announce)
    for size in range(7, 21):
        p = n - size
        if p >= 7 and data[p + 2] == 0x7B and _u16(data, p + 5) == size:
            flags = _u16(data, p + 3)
            if flags & 1 and zlib.crc32(data[p + 2 : n]) & 0xFFFF == _u16(data, p):
                return True
    return False


def _elf_cut(data: bytes) -> bool:
    """The program or section header table, or a segment's file bytes, past the end."""
    n = len(data)
    if n < 52:
        return True
    wide = data[4] == 2
    order = ">" if data[5] == 2 else "<"
    if wide:
        if n < 64:
            return True
        phoff, shoff = struct.unpack_from(order + "QQ", data, 32)
        phent, phnum, shent, shnum = struct.unpack_from(order + "HHHH", data, 54)
    else:
        phoff, shoff = struct.unpack_from(order + "II", data, 28)
        phent, phnum, shent, shnum = struct.unpack_from(order + "HHHH", data, 42)
    if (phnum and phoff + phent * phnum > n) or (shnum and shoff + shent * shnum > n):
        return True
    for i in range(min(phnum, 64)):
        at = phoff + phent * i
        if wide:
            off, size = struct.unpack_from(order + "Q16xQ", data, at + 8)
        else:
            off, size = struct.unpack_from(order + "I8xI", data, at + 4)
        if size and off + size > n:
            return True
    return False


def _cab_cut(data: bytes) -> bool:
    """The cabinet's declared size (`cbCabinet`) past the end."""
    return len(data) < 36 or _u32(data, 8) > len(data)


#: A PDF's end: `startxref`, the offset of its last cross-reference section, `%%EOF`.
_PDF_END = re.compile(rb"startxref\s*(\d{1,15})\s*%%EOF")
#: What `startxref` points at: a cross-reference table, or a cross-reference stream object.
_PDF_XREF = re.compile(rb"\s*(?:xref|\d+\s+\d+\s+obj\b(?s:.){0,2048}?/Type\s*/XRef\b)")
#: A cross-reference table's keyword (not `startxref`), or a cross-reference stream's type.
_PDF_TABLE = re.compile(rb"(?<!start)xref\s")
_PDF_XREF_TYPE = re.compile(rb"/Type\s*/XRef\b")
_PDF_LENGTH = re.compile(rb"/Length\s+(\d{1,15})(?:\s+(\d{1,10})\s+R)?")


def _pdf_last(data: bytes, word: bytes, end: int | None = None) -> int:
    """Where the last `word` (`obj`, `stream`) that is no `end` + `word` starts, or -1."""
    end = len(data) if end is None else end
    while (at := data.rfind(word, 0, end)) >= 0 and data[max(at - 3, 0):at] == b"end":
        end = at
    return at


def _pdf_stream_open(data: bytes, obj: int) -> bool:
    """Whether the last object (starting at `obj`) opens a stream that the file does not
    end: no `endstream` after its last `stream` keyword, or its `/Length` (direct, or an
    indirect one found in the file) reaching past the end."""
    kw = _pdf_last(data, b"stream")
    if kw < obj:
        return False
    if data.find(b"endstream", kw) < 0:
        return True
    m = _PDF_LENGTH.search(data, obj, kw)
    if m is None:
        return False
    length = int(m.group(1))
    if m.group(2) is not None:  # `/Length n g R`: the object, where the file holds it
        # (led by the literal number, which `re` finds fast; a longer number ending so
        # is no match: 16 0 obj is not 6 0 obj)
        held = [h for h in re.finditer(rb"%s\s+%s\s+obj\s*(\d{1,15})\s*endobj"
                                       % (m.group(1), m.group(2)), data)
                if not data[h.start() - 1 : h.start()].isdigit()]
        if not held:
            return False
        length = int(held[0].group(1))
    start = kw + 6 + (2 if data[kw + 6:kw + 8] == b"\r\n" else 1)
    return start + length > len(data)


def _pdf_cut(data: bytes) -> bool:
    """Cut unless the file's last `startxref N %%EOF` comes after its last `endstream` and
    `endobj`, no stream is left open after its last `N G obj` (a `stream` keyword with no
    `endstream` after it, or a `/Length` past the end), and `N` points at a cross-reference
    table (`xref`) or stream (`N G obj` of `/Type/XRef`), or, for an offset a writer got
    wrong (clam.pdf's is 9 bytes off), a table lies between the last object and the
    `startxref`, or the last object is the cross-reference stream. Where the `%%EOF` is does not
    matter: padding after it is common (2 KiB and more of spaces or NULs, or a comment), and
    readers open such files (qpdf, past the last 1,054 bytes it reads for `startxref`,
    rebuilds the table, as it does for a file cut just before it; pdf.js and Acrobat search
    further); a window of the last 2 KiB read 4 KiB of padding as a cut, and a mail of four
    invoices, or one among 400 files of a zip, was MaxFiles (R32-FP1). A file cut in an
    incremental update still is cut: the end of the revision before it comes before the
    update's first object. R33-F4: a `startxref 1 %%EOF` written in the last object's
    dictionary (`/Desc (...)` of an embedded file), the file cut inside its stream, was
    complete; now the stream is open and 1 points at no `xref`.

    Still fakeable (a lexical reading, no parse): a cut inside a stream whose own bytes (the
    payload before the cut, unfiltered) hold `endstream endobj`, an `xref` and `startxref
    N %%EOF` pointing at it, when the stream's `/Length` is indirect and its object is not
    in the head (or is faked there too); a `startxref` offset off by a few bytes (a writer's
    bug readers repair) makes a whole file a head (joined, at worst a limit with five)."""
    obj = _pdf_last(data, b"obj")
    ends = max(data.rfind(b"endstream"), data.rfind(b"endobj"), obj, 0)
    last = None
    for m in _PDF_END.finditer(data, ends):
        last = m
    if last is None or _pdf_stream_open(data, max(obj, 0)):
        return True
    if _PDF_XREF.match(data, int(last.group(1))) is not None:
        return False
    # (an offset off by some bytes, which readers repair, clam.pdf's among them: a table
    # between the last object and `startxref`, or a last object that is the xref stream)
    return (_PDF_TABLE.search(data, ends, last.start()) is None
            and (obj < 0 or _PDF_XREF_TYPE.search(data, obj, min(ends, obj + 4096)) is None))


_HEADS = (
    (b"MZ", _pe_cut),
    (b"PK\x03\x04", _zip_cut),
    (b"7z\xbc\xaf\x27\x1c", _sevenzip_cut),
    (b"Rar!\x1a\x07", _rar_cut),
    (b"\x7fELF", _elf_cut),
    (b"MSCF\x00\x00\x00\x00", _cab_cut),
    (b"%PDF-", _pdf_cut),
)
_MAGICS = tuple(m for m, _ in _HEADS)


def is_head(data: bytes) -> bool:
    """Whether `data` starts a file of a recognised format but is cut short (see `_HEADS`)."""
    if not data.startswith(_MAGICS):
        return False
    for magic, cut in _HEADS:
        if data.startswith(magic):
            try:
                return cut(data)
            except (struct.error, IndexError):
                return True  # a header that reads past the end: cut inside it
    return False  # pragma: no cover - one of the magics matched


def _loose(data: bytes) -> bool:
    """A run's decoding that may follow a head run (`_loose_run`): unrecognised data, or
    another cut head. (Binary pieces are every piece: `binary_joins`.)"""
    return filetype.detect(data) in _LOOSE_TYPES or is_head(data)


# -- orders -----------------------------------------------------------------------------------


def _orders(k: int) -> Iterator[tuple[int, ...]]:
    """Orders of the other pieces (indexes in attachment order) to put after a head: the
    attachment order and its reverse first, then every arrangement of every subset (longest
    first) up to `_PERMUTE` pieces; past that, runs of one, two and three consecutive pieces
    in attachment order (all single pieces first, then the pairs, then the triples), among
    all `k`: 3k - 1 orders, which the join budget bounds. Each order once."""
    if k == 0:
        return
    seen: set[tuple[int, ...]] = set()
    first = [tuple(range(k)), tuple(range(k - 1, -1, -1))]
    if k <= _PERMUTE:
        rest: Iterable[tuple[int, ...]] = itertools.chain.from_iterable(
            itertools.permutations(range(k), r) for r in range(k, 0, -1))
    else:
        rest = (tuple(range(i, i + w)) for w in range(1, _RUN + 1) for i in range(k - w + 1))
    for order in itertools.chain(first, rest):
        if order not in seen:
            seen.add(order)
            yield order


def budget_unbounded(ctx: ScanContext) -> bool:
    """Whether what the scan has left gives `_Budget` its own bounds in full, so joins made
    now are the joins made at the start of any scan (`cleancache` records only then)."""
    lim = ctx.limits
    return ((lim.max_files - ctx.files) // 2 >= max(_MAX_JOINS, _MAX_TEXT_JOINS)
            and (lim.max_scan_size - ctx.total_bytes) // 2 >= _MAX_BYTES)


class _Budget:
    """Joins and bytes one call may still make: its own bounds, and never more than half of
    what the scan has left (a guess must not exhaust the limits the real content needs)."""

    def __init__(self, ctx: ScanContext, joins: int = _MAX_JOINS) -> None:
        lim = ctx.limits
        self.ctx = ctx
        files, size = (lim.max_files - ctx.files) // 2, (lim.max_scan_size - ctx.total_bytes) // 2
        self.limit = joins
        self.joins = min(joins, files)
        self.bytes = min(_MAX_BYTES, size)
        # whether the scan's file limit binds, not this call's own bound: a join it leaves
        # unmade is the limit (round 29's F5: 9,995 members, then clam.exe in two pieces)
        self.files_bind = files < joins
        self.seen: set[tuple[int, int]] = set()

    def take(self, n: int) -> bool | None:
        """True: make a join of `n` bytes; False: skip this one; None: stop. Raises the
        scan's limit when it is what leaves the join unmade."""
        if self.joins <= 0:
            if self.files_bind:
                raise ScanLimitExceeded(MAX_FILES, "no files left to join pieces")
            return None
        if self.ctx.skip_oversized(n):  # (over MaxFileSize: the limit, as for a member)
            return False
        if n > self.bytes:  # a join left unmade is the limit, never clean (round 33's F3:
            # 64 decoy joins just under the real one's size spent `_MAX_BYTES` first)
            raise ScanLimitExceeded(MAX_SCAN_SIZE, "no bytes left to join pieces")
        self.ctx.check_time()
        return True

    def child(self, data: bytes, origin: str) -> Child | None:
        """The join as a speculative child, charged, unless it was made already."""
        key = (len(data), hash(data))
        if not data or key in self.seen:
            return None
        self.seen.add(key)
        self.joins -= 1
        self.bytes -= len(data)
        self.ctx.charge_child(len(data))
        return Child(data=data, name=None, origin=origin, speculative=True)


# -- binary pieces ----------------------------------------------------------------------------


def _natural(name: str) -> list[tuple[int, int | str]]:
    """A sort key that orders digit runs by value (`p2` before `p10`), as `ls -v` does."""
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.findall(r"\d+|\D+", name)]


def _by_name(pieces: Sequence[bytes], names: Sequence[str]) -> Iterator[bytes]:
    """Every piece joined in its names' order (`cat $(ls | sort)`, `cat $(ls -v)`: round 20,
    seven to nine shuffled pieces whose names sort in order), when the first is a cut head:
    two joins whatever the number of pieces, where `_orders` tries every arrangement of at
    most `_PERMUTE` others."""
    lexical = sorted(range(len(pieces)), key=names.__getitem__)
    natural = sorted(range(len(pieces)), key=lambda i: _natural(names[i]))
    for order in (lexical, natural) if natural != lexical else (lexical,):
        run = [pieces[i] for i in order if pieces[i]]
        if len(run) >= 2 and is_head(run[0]):
            yield b"".join(run)


def binary_joins(pieces: Sequence[bytes], ctx: ScanContext,
                 names: Sequence[str] | None = None,
                 homes: Sequence[str] | None = None) -> Iterator[Child]:
    """The files attachments (or an archive's members), in `pieces` order (and, with their
    `names`, in name order, last), make when joined after a cut head (module docstring).
    Nothing without a head. With `homes` (each piece's container: `across_joins`), only
    the joins of pieces from two containers or more."""
    if len(pieces) < 2 or not any(p.startswith(_MAGICS) for p in pieces):
        return
    budget = _Budget(ctx)
    index: dict[bytes, int] = {}
    for i, p in enumerate(pieces):
        if p:
            index.setdefault(p, i)
    distinct = list(index)
    home = [None if homes is None else homes[index[p]] for p in distinct]
    heads = [i for i, p in enumerate(distinct) if is_head(p)]
    if not heads:
        return
    if len(heads) > _MAX_HEADS:  # (a head left untried is the limit, not clean: round 30)
        raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_HEADS} cut heads to join")
    loose = range(len(distinct))  # (every piece: a tail may be a recognised file, R33-F5)
    for h in heads:
        ids = [i for i in loose if i != h]
        others = [distinct[i] for i in ids]
        sizes = [len(p) for p in others]
        # smallest joins first (stable: `_orders`' order among equals), so big decoys spend
        # `_MAX_BYTES` only after every smaller join was made (module docstring)
        for size, order in sorted(((len(distinct[h]) + sum(sizes[i] for i in o), o)
                                   for o in _orders(len(others))
                                   if homes is None or any(home[ids[i]] != home[h] for i in o)),
                                  key=lambda t: t[0]):
            ok = budget.take(size)
            if ok is None:  # (a join left unmade is the limit, not clean: round 31's F6)
                raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_JOINS} joins of pieces")
            if not ok:
                continue
            child = budget.child(distinct[h] + b"".join(others[i] for i in order),
                                 "joined-pieces")
            if child is not None:
                yield child
    if names is not None and len(names) == len(pieces):  # (two joins, however many pieces;
        for joined in _by_name(pieces, names):  # last: the biggest, after the small ones)
            ok = budget.take(len(joined))
            if ok is None:
                raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_JOINS} joins of pieces")
            child = budget.child(joined, "joined-pieces") if ok else None
            if child is not None:
                yield child


def across_joins(pieces: Sequence[tuple[str, bytes, str, str]], ctx: ScanContext
                 ) -> Iterator[Child]:
    """`binary_joins` of the named files of every container of a scan (`ScanContext.pieces`:
    attachments, and members of any archive, each with its container's path), but only the
    joins of pieces from two containers or more: a file cut in two, its head attached and
    its tail a member of an attached zip (R32-F5: each container was joined alone, and the
    mail was clean). Bounded as `binary_joins` is (an order left untried is `MaxFiles`);
    nothing, at the cost of one look at each piece's first bytes, without a cut head."""
    # (a container is no piece next to what it holds: the recipient joins the files it
    # unpacked, and a member joined with its own zip is a guess at nothing)
    homes = {home for _, _, home, _ in pieces}
    pieces = [p for p in pieces if not any(h == p[3] or h.startswith(p[3] + "/")
                                           for h in homes)]
    if len(pieces) < 2 or len({home for _, _, home, _ in pieces}) < 2:
        return
    if not any(data.startswith(_MAGICS) and is_head(data) for _, data, _, _ in pieces):
        return
    yield from binary_joins([data for _, data, _, _ in pieces], ctx,
                            [name for name, _, _, _ in pieces],
                            [home for _, _, home, _ in pieces])


# -- encoded text -----------------------------------------------------------------------------

#: A head's encoded start at a run start: base64 of each magic (`MZ` then any byte: TVo-TVr;
#: `MSCF` is TVND) and its hex, either case. One hyperscan pass (`_HEAD_TEXT`); below
#: hyperscan's threshold `re` reads the same without the boundary (a superset, 4x faster:
#: `(?:^|[^...])` costs `re` a try at every byte).
_HEAD_STARTS = (rb"TV[o-rN]|UEsD|N3q8|UmFy|f0VM|JVBE|4[dD]5[aA]|504[bB]03|377[aA][bB][cC]"
                rb"|52617221|7[fF]454[cC]46|25504446")
_HEAD_TEXT = Gate(rb"(?:^|[^A-Za-z0-9+/=])(?:" + _HEAD_STARTS + rb")", caseless=False)
_HEAD_SHORT = re.compile(_HEAD_STARTS)


def _may_hold_head(text: bytes) -> bool:
    """Whether `text` may hold a head run's start (a prefilter: one C-speed pass)."""
    if len(text) < 256:
        return _HEAD_SHORT.search(text) is not None
    return _HEAD_TEXT(text)


_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_HEX_CHARS = b"0123456789abcdefABCDEF"
_TOKEN = re.compile(rb"[A-Za-z0-9+/=]{%d,}" % MIN_RUN)
_FOLD = re.compile(rb"\r?\n[ \t]+")
_BLANK_LINE = re.compile(rb"\n\r?\n")
#: Header fields whose values a sender writes freely and a recipient reads (`sed -n
#: 's/^X-Data: //p'`); not the machine-written ones full of base64 (DKIM, ARC, Exchange).
_HEADER_NAMES = re.compile(rb"(?i)(?:subject|comments|keywords|x-[!-9;-~]*)[ \t]*:")
_MACHINE_HEADERS = re.compile(rb"(?i)x-(?:ms-|microsoft-|google-|gm-)|[!-9;-~]*signature")


def header_values(data: bytes) -> list[bytes]:
    """The values of a message's free-text header fields (`_HEADER_NAMES`), unfolded, each a
    source of its own; none when the header block holds no head's encoded start (the usual
    case: one pass over the block)."""
    block = data[: min(_first_blank_line(data), 256 * 1024)]
    if not block or not _may_hold_head(block):
        return []
    out: list[bytes] = []
    for line in _FOLD.sub(b" ", block.replace(b"\r\n", b"\n")).split(b"\n"):
        m = _HEADER_NAMES.match(line)
        if m is not None and _MACHINE_HEADERS.match(line) is None:
            out.append(line[m.end():].strip())
    return out


def _first_blank_line(data: bytes) -> int:
    """Where the header block ends (a regex led by a literal stops there: `bytes.find` of
    each line-end style would walk a whole body that uses the other one)."""
    m = _BLANK_LINE.search(data)
    return len(data) if m is None else m.start()


def texty(data: bytes) -> bool:
    """A leaf worth looking in for encoded runs: text-sized, no NUL near its start."""
    return 0 < len(data) <= _MAX_SOURCE and b"\x00" not in data[:1024]


def _runs(text: bytes) -> Iterator[bytes]:
    """The encoded runs of `text` in order: consecutive lines holding one base64-alphabet word
    each (the lines of a wrapped block; a blank line or a line of prose ends it) joined,
    and the `MIN_RUN`+ tokens of other lines; runs shorter than `MIN_RUN` are words."""
    cur: list[bytes] = []
    for line in lf_lines(text).split(b"\n"):
        word = line.strip()
        if word and not word.translate(None, _B64_CHARS):
            cur.append(word)
            continue
        if cur:
            run = b"".join(cur)
            if len(run) >= MIN_RUN:
                yield run
            cur = []
        if len(word) >= MIN_RUN:
            yield from _TOKEN.findall(word)
    if cur:
        run = b"".join(cur)
        if len(run) >= MIN_RUN:
            yield run


def _is_hex(run: bytes) -> bool:
    return not run.translate(None, _HEX_CHARS)


def _decode_alone(run: bytes, hexed: bool) -> bytes:
    if hexed:
        return bytes.fromhex(run[: len(run) // 2 * 2].decode("ascii"))
    return encodings.base64_decode(run)


def _text_runs(sources: Sequence[bytes], ctx: ScanContext) -> tuple[list[bytes], bool]:
    """The distinct encoded runs of `sources` in document order, at most `_MAX_RUNS` of them
    and `_MAX_RUN_CHARS` characters, and whether a head run was left out past those bounds
    (the runs after them are read on, each decoded alone, only to look for one)."""
    runs: dict[bytes, None] = {}
    chars = 0
    for source in sources:
        full = len(runs) >= _MAX_RUNS or chars >= _MAX_RUN_CHARS
        if full and not _may_hold_head(source):
            continue  # (read on only for a head run, which this source cannot hold)
        for run in _runs(source):
            ctx.check_time()
            if run in runs:
                continue
            if len(runs) < _MAX_RUNS and chars + len(run) <= _MAX_RUN_CHARS:
                runs[run] = None
                chars += len(run)
            elif _head_readings(run):
                return list(runs), True
    return list(runs), False


def _head_readings(run: bytes) -> list[bool]:
    """The readings (True: hex) in which `run` alone decodes to a cut head."""
    return [hexed for hexed in ((True, False) if _is_hex(run) else (False,))
            if is_head(_decode_alone(run, hexed))]


def text_joins(sources: Sequence[bytes], ctx: ScanContext) -> Iterator[Child]:
    """Files the encoded runs of `sources` (in document order: header values, bodies, text
    attachments) decode to when joined as text after a head run (module docstring): base64
    joins in every reading `encodings.base64_variants` gives (one stream; padded pieces one
    after another), hex joins with hex runs only. Nothing without a head run; a head run
    past the runs' bounds, more than `_MAX_HEADS` head runs, or a join left unmade because
    the joins ran out, is `MaxFiles`."""
    if not any(_may_hold_head(s) for s in sources):
        return
    order, head_left_out = _text_runs(sources, ctx)
    if head_left_out:  # (its runs were dropped silently: round 31's F6, text)
        raise ScanLimitExceeded(MAX_FILES, f"a head run past {_MAX_RUNS} runs of encoded text")
    heads = [(i, hexed) for i, run in enumerate(order) for hexed in _head_readings(run)]
    if not heads:
        return
    if len(heads) > _MAX_HEADS:  # (the fifth was left untried, and the mail clean)
        raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_HEADS} head runs to join")
    budget = _Budget(ctx, _MAX_TEXT_JOINS)
    for h, hexed in heads:
        others = [r for i, r in enumerate(order) if i != h and (not hexed or _is_hex(r))
                  and _loose_run(r, hexed)]
        for arrangement in _orders(len(others)):
            text = order[h] + b"".join(others[i] for i in arrangement)
            if hexed:
                decoded = [_decode_alone(text, True)]
            else:
                decoded = encodings.base64_variants(text, ctx.check_time)
            for data in decoded:
                ok = budget.take(len(data))
                if ok is None:  # (a join left unmade is the limit, not clean)
                    raise ScanLimitExceeded(
                        MAX_FILES, f"more than {budget.limit} joins of encoded text")
                if ok and (child := budget.child(data, "joined-text")) is not None:
                    yield child


def _loose_run(run: bytes, hexed: bool) -> bool:
    """A run that may follow a head: its own decoding is no complete recognised file (a
    base64 JPEG in a text part stays out of every join)."""
    return _loose(_decode_alone(run, hexed))
