"""One layer's children: the dispatch from a detected file type to its decomposer.

The engine calls `children(data, detect(data), ctx, name)` for every layer, inside
`ctx.descend()`, and scans each child it gets (recursing the same way). This module and the
decomposers it calls charge every yielded child to `ctx` (files, bytes, file size, time), so the
engine only manages depth. The iterator may raise `ScanLimitExceeded` (a limit was hit: the
engine reports `Heuristics.Limits.Exceeded.<which>`) or `EncryptedContent` (after yielding every
readable member: `Heuristics.Encrypted.<format>`); any other exception is a bug.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import itertools
import re
import zipfile
from collections.abc import Generator, Iterator

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import (
    archive,
    bidi,
    containers,
    embedded,
    encodings,
    flv,
    htmlcolumns,
    htmllayout,
    htmlparsed,
    htmlprint,
    htmlscope,
    htmlshadow,
    htmltables,
    htmlunhidden,
    joins,
    lzw,
    mime,
    officepkg,
    openpgp,
    patches,
    pngpixels,
    pngtext,
    sections,
    smime,
    sqlitedb,
    streams,
    svgimages,
    svgtext,
    textcarriers,
    textual,
    warc,
    zlibdict,
)
from zerohour.scan import filetype as filetype_mod
from zerohour.scan.documents import chm, ole2, onenote, pdf, rtf
from zerohour.scan.gates import Gate, Literals
from zerohour.scan.limits import MAX_FILES, ScanContext
from zerohour.scan.streams import stream_children as single_stream_children
from zerohour.scan.types import Child, FileType
from zerohour.scan.unpack import pe_children as unpacked_pe_children

_TEXTUAL = frozenset({FileType.TEXT, FileType.HTML, FileType.SCRIPT})
#: An XML document's first element (a part written without an XML declaration).
_XML_ROOT = re.compile(rb"(?:\xef\xbb\xbf)?\s*<[A-Za-z_][\w.-]*:[\w.-]+[\s>]").match
#: What a file of a format without a magic number (brotli) sniffs as.
_NO_MAGIC = frozenset({FileType.BINARY, FileType.TEXT})
#: `openssl enc`'s header: this magic and an 8-byte salt, then the ciphertext.
OPENSSL_SALTED = b"Salted__"
#: Detected, but not opened yet: a `Heuristics.Unsupported.<type>` finding, never clean.
_NOT_YET_OPENED: frozenset[FileType] = filetype_mod.UNOPENED


def children(
    data: bytes, filetype: FileType, ctx: ScanContext, name: str | None = None,
    reads_as: FileType | None = None,
) -> Generator[Child, None, None]:
    """The children of one layer of type `filetype` (nothing for leaves). The engine closes
    it when it stops early, so that a reader's `finally` runs before what it noted is read.
    `reads_as`: how a client reads it whatever it sniffs as (`Child.reads_as`): a page's
    text and binary are read as a page too (their own readings kept: base64 in a page's
    text), and a page's text reading as text whatever its first bytes ("070707 ", "MZ")."""
    page = reads_as is FileType.HTML
    if reads_as is FileType.TEXT and filetype not in _TEXTUAL:
        # (first: its type's reader may fail on what is no file of that type)
        yield from _children_of_type(data, FileType.TEXT, ctx, name)
    if (page and filetype not in (FileType.HTML, FileType.TEXT)) or (
            filetype is FileType.BINARY and filetype_mod.nul_page(data)):
        # a page a client renders that sniffs as another type (a NUL, control characters,
        # dense 8-bit text, `<?php`, `Subject:` or `{\rt` first, a tar archive whose header
        # opens a comment: session 26, attack round 40), or a page but for its NULs, read
        # as a page as well, first (its type's reader may fail; text is read as a page by
        # `_children_of_type`)
        if filetype is not FileType.SCRIPT:  # (script is searched for literals already)
            yield from ctx.guard(_embedded(data, ctx, literals=True), "embedded")
        yield from ctx.guard(_html_text(data, ctx), "html-text")
    if name and name.lower().endswith(streams.BROTLI_SUFFIXES) and filetype in _NO_MAGIC:
        yield from ctx.guard(streams.brotli_children(data, ctx, name), "brotli")
    if filetype in _NO_MAGIC and pdf.is_fragment(data):
        # PDF objects without a `%PDF-` header (an incremental update sent apart from the PDF
        # it updates, R33-F6): their streams decoded, embedded files as attachments
        yield from ctx.guard(pdf.fragment_children(data, ctx), "pdf-fragment")
    if filetype in _TEXTUAL and (data[:8].lstrip(b"\xef\xbb\xbf")[:5] == b"<?xml" or (
            _XML_ROOT(data[:64]) and textual.OFFICE_NAMESPACE.search(data, 0, 4096))):
        # (a part without an XML declaration: Word and LibreOffice read it all the same)
        readings, broken = textual.office_xml_parts(data)
        for text in readings:  # a .docx/.pptx/.xlsx part's text
            ctx.charge_child(len(text))
            yield Child(data=text, name=None, origin="office-text")
        if broken is not None:  # (what its reader shows is not read: fail closed, misc18)
            ctx.broken(broken)
        yield from ctx.guard(_xml_readings(data, ctx), "xml-text")
    if data[:8] == pngtext.SIGNATURE:  # (by its signature: a PDF in a chunk makes it one)
        # a PNG's text chunks (metadata scripts read), and its pixels when they are a file
        # (`frombytes(payload).save()`, `tobytes()`)
        yield from ctx.guard(pngtext.texts(data, ctx), "png-text")
        yield from ctx.guard(pngpixels.children(data, ctx), "png-pixels")
    if filetype is not FileType.BINARY and archive.zlib_header(data):
        # a zlib stream with another format's magic in its first KiB (a PDF behind it:
        # round 21) is read as one all the same (BINARY layers are, below)
        yield from ctx.guard(archive.zlib_children(data, ctx), "zlib")
        if zlibdict.named(data) is not None:
            yield from ctx.guard(zlibdict.children(data, ctx), "zlib-dictionary")
    if filetype in (FileType.PE, FileType.ELF, FileType.BINARY):
        # an executable kept whole in a section (a dropper's payload), as 7-Zip writes it out
        yield from ctx.guard(sections.children(data, filetype, ctx), "sections")
    if filetype is FileType.MAIL:
        yield from _children_of_type(data, filetype, ctx, name)
    else:  # an archive's members that make a file together (mime does so for attachments)
        members: dict[str, bytes] = {}  # (the first of a name: a reader's view)
        every: list[tuple[str, bytes]] = []  # (two members of one name are two pieces: R33-F1)
        for child in _children_of_type(data, filetype, ctx, name, page):
            if child.name:  # (every one: a cap dropped the pieces after 1,024, round 30)
                members.setdefault(child.name, child.data)
                every.append((child.name, child.data))
            yield child
        if len(members) >= 2 and filetype in (FileType.ZIP, FileType.OOXML):
            # a .docx/.xlsx read as its reader shows it, from several of its parts
            yield from ctx.guard(officepkg.package_readings(data, members, ctx),
                                 "office-package")
        if len(every) >= 2:
            yield from mime.joined_volumes(every, ctx)
            # members with any names, or encoded text cut over members (`joins`)
            pieces = [d for _, d in every]
            yield from ctx.guard(joins.binary_joins(pieces, ctx, [n for n, _ in every]),
                                 "joins")
            texts = [m for m in pieces if joins.texty(m)]  # (all: text_joins bounds them)
            yield from ctx.guard(joins.text_joins(texts, ctx), "text-joins")
            yield from patches.patch_series(members, ctx)
            yield from patches.patched_attachments(members, ctx)
    if ctx.depth == 1:  # the scan's own file: pieces of one file in two of its containers
        yield from ctx.guard(mime.joined_across(ctx), "joined-across")
        # zlib streams whose preset dictionary came after them in the mail, or never
        yield from ctx.guard(zlibdict.late_children(ctx), "zlib-dictionary")
    # What the type's own reader noted after its last child (a PDF is Broken once every
    # stream was tried) is said after the embedded search too: the engine stops at its first
    # finding, and a zip glued behind a damaged PDF must be named by what it carries.
    trailing = list(ctx.events)
    ctx.events.clear()
    try:
        if filetype not in (FileType.ZIP, FileType.OOXML, FileType.MAIL):
            # A zip behind other bytes (a self-extractor, a polyglot, junk in front): unzip and
            # Python's zipfile open it from its end record, so we do too.
            yield from ctx.guard(embedded_zips(data, ctx), "embedded-zip")
        if filetype not in embedded.SKIP:
            # RAR, 7z, CAB, ARJ and PE behind other bytes: self-extractors, installers, overlays.
            yield from ctx.guard(embedded.children(data, ctx, filetype), "embedded-archive")
    finally:
        ctx.events[:0] = trailing


def _xml_readings(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """An XML layer's string value, as `xmllint --noent --xpath 'string(/*)'` gives it
    (CDATA, internal entities, text split by comments or processing instructions all one
    text: round 16)."""
    ctx.check_time()
    text = textual.xml_string_value(data)
    if text is not None and text.strip() and text != data:
        ctx.charge_child(len(text))
        yield Child(data=text, name=None, origin="xml-text")


def _partitions(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Each partition of an MBR/GPT disk image as its own layer (a FAT volume in it is then
    `Heuristics.Unsupported.FSIMAGE`, an ISO or zip in it is opened)."""
    for i, (off, size) in enumerate(filetype_mod.partitions(data), 1):
        ctx.charge_child(size)
        yield Child(data=data[off : off + size], name=None, origin=f"partition{i}")


_EOCD = b"PK\x05\x06"
_CENTRAL = b"PK\x01\x02"
_ZIP64_LOCATOR = b"PK\x06\x07"
_MAX_EOCD_TRIES = 8


def embedded_zips(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Members of zip archives that do not start at offset 0: each end-of-central-directory
    record, last first, whose archive a zip reader opens is read in full, with the same
    fail-closed rules as any zip. A record is only tried when a central directory (or a zip64
    locator) sits where it points; a stray `PK\x05\x06` that fails that check costs nothing
    more and is ignored. Past `_MAX_EOCD_TRIES` records that passed the check yet opened no
    zip, with one more left, the layer is `Heuristics.Limits.Exceeded.MaxFiles`, never clean
    (round 31 hid a zip behind 9 stray records): a legit file holds at most a few end records
    with a central directory in front of them."""
    end = len(data)
    tries = 0
    while (pos := data.rfind(_EOCD, 0, end)) >= 0:
        end = pos
        ctx.check_time()
        if not _eocd_plausible(data, pos):
            continue
        if tries >= _MAX_EOCD_TRIES:
            raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_EOCD_TRIES} zip end records "
                                    "that open no zip")
        tries += 1
        comment = int.from_bytes(data[pos + 20 : pos + 22], "little")
        segment = data[: pos + 22 + comment]
        cut = b""
        if not _opens(segment) and data.find(_EOCD, pos + 1, pos + 22 + comment) >= 0:
            # Another record inside this one's comment: unzip and 7-Zip read the record the
            # directory leads to, Python's zipfile the last one; so read it without comment
            # (the comment is then a file of its own, as `zip_children` makes it).
            segment = data[: pos + 20] + b"\0\0"
            cut = data[pos + 22 : pos + 22 + comment]
        if not _opens(segment):
            continue
        yield from archive.zip_children(segment, ctx)
        if cut:
            ctx.charge_child(len(cut))
            yield Child(data=cut, name=None, origin="zip-comment")
        return


def _eocd_plausible(data: bytes, pos: int) -> bool:
    """A central directory where the end record at `pos` says it ends (zipfile reads it
    there, whatever precedes the archive), or a zip64 locator in front of the record."""
    if len(data) < pos + 22:
        return False
    if pos >= 20 and data[pos - 20 : pos - 16] == _ZIP64_LOCATOR:
        return True
    size = int.from_bytes(data[pos + 12 : pos + 16], "little")
    return 0 < size <= pos and data[pos - size : pos - size + 4] == _CENTRAL


def _opens(segment: bytes) -> bool:
    """Whether zipfile opens `segment` as a zip with members. A candidate that does not is
    no verdict: `embedded_zips` tries the next end record, and more than `_MAX_EOCD_TRIES`
    plausible ones that open nothing are `MaxFiles` (what a damaged zip at offset 0 is, the
    container reader says: this is the search behind other bytes only)."""
    try:
        with zipfile.ZipFile(io.BytesIO(segment)) as zf:
            return bool(zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return False


def _children_of_type(
    data: bytes, filetype: FileType, ctx: ScanContext, name: str | None, page: bool = False
) -> Iterator[Child]:
    if filetype is FileType.MAIL:
        yield from mime.children(data, ctx)
    elif filetype in (FileType.ZIP, FileType.OOXML):
        yield from archive.zip_children(data, ctx)
    elif filetype is FileType.TAR:
        yield from archive.tar_children(data, ctx)
    elif filetype in (FileType.GZIP, FileType.BZIP2, FileType.XZ):
        yield from archive.stream_children(data, filetype, ctx, name)
    elif filetype is FileType.COMPRESS:  # `.Z`, as `gzip -d` decodes it
        yield from lzw.compress_children(data, ctx, name)
    elif filetype in (FileType.SZDD, FileType.ZSTD, FileType.LZ4, FileType.LZMA):
        yield from single_stream_children(data, filetype, ctx, name)
    elif filetype is FileType.PE:
        # Runtime packers unpacked and PE files embedded in this one, as clamscan does.
        yield from ctx.guard(unpacked_pe_children(data, ctx), "pe-unpack")
    elif filetype is FileType.BINARY:
        if data[:8] == OPENSSL_SALTED and len(data) > 16:
            # `openssl enc -k <password>` (the password in the mail's text, `-a` its base64,
            # which the text carriers decode to this): fail closed, as for an encrypted zip.
            raise EncryptedContent("OpenSSL")
        if smime.password_only(data, ctx.check_time):  # S/MIME to a password, not a person
            raise EncryptedContent("CMS")
        if data[:16] == sqlitedb.MAGIC:  # a database's values (BLOBs cut into pages)
            yield from ctx.guard(sqlitedb.values(data, ctx), "sqlite")
        if data[:2] == lzw.PACK_MAGIC:  # pack(1)'s `.z`, which `gzip -d` decodes
            yield from lzw.pack_children(data, ctx, name)
        if data[:4] == archive.TNEF_SIGNATURE:
            yield from archive.tnef_children(data, ctx)
        else:
            yield from ctx.guard(archive.zlib_children(data, ctx), "zlib")
            if zlibdict.named(data) is not None:  # (a preset dictionary)
                yield from ctx.guard(zlibdict.children(data, ctx), "zlib-dictionary")
            elif not archive.zlib_header(data):  # (one behind a short tag, as a guess)
                yield from ctx.guard(zlibdict.behind_a_tag(data, ctx), "zlib-behind")
            yield from ctx.guard(streams.magicless_children(data, ctx), "magicless")
            yield from ctx.guard(_patched_files(data, ctx), "patches")
            # yEnc text is mostly high bytes, so it sniffs as binary: look for its blocks too.
            # So does HTML behind NUL or control bytes, which a browser still runs (an
            # "invoice.html" of 300 NULs and a <script>, or an <img onerror=...>, building a
            # Blob from atob): with script markup or a smuggling word (atob, Blob, base64,
            # Uint8Array, fromCharCode) its script literals and data: URIs are decoded as in
            # HTML, and base64 blocks as in text. The gates are one hyperscan pass each.
            script = _SCRIPT_MARKUP(data) or encodings.has_script_hints(data)
            yield from _embedded(data, ctx, literals=script,
                                 smuggling=script or encodings.has_data_uri(data))
            signed = smime.signed_content(data, ctx.check_time)
            yield from ctx.guard(_binary_text(data, ctx, signed), "binary-text")
            if not signed:
                # (an S/MIME blob's content is read whole above: its base64 lines, cut by
                # the DER's chunk headers, would decode to a damaged copy of a file)
                yield from ctx.guard(_text_carriers(data, ctx, base64=True, intel_hex=False,
                                                    decorated=script), "text-carriers")
    elif filetype is FileType.OLE2:
        yield from ole2.ole2_children(data, ctx)
    elif filetype in containers.OPENED:
        yield from containers.children(data, filetype, ctx)
    elif filetype is FileType.DISKIMAGE:
        yield from _partitions(data, ctx)
    elif filetype in _NOT_YET_OPENED:
        yield from archive.unopened_children(data, filetype, ctx)
    elif filetype is FileType.PDF:
        yield from pdf.pdf_children(data, ctx)
    elif filetype is FileType.RTF:
        yield from rtf.rtf_children(data, ctx)
    elif filetype is FileType.FLV:
        yield from flv.children(data, ctx)
    elif filetype is FileType.WARC:
        yield from warc.records(data, ctx)
    elif filetype is FileType.ONENOTE:
        yield from onenote.onenote_children(data, ctx)
    elif filetype is FileType.CHM:
        yield from chm.chm_children(data, ctx)
    elif filetype in _TEXTUAL:
        # Script literals (HTML smuggling) in HTML and script, and in text holding script
        # markup: an SVG image's <script> building a Blob from atob("...") sniffs as text.
        literals = filetype is not FileType.TEXT or page or _SCRIPT_MARKUP(data)
        yield from ctx.guard(_embedded(data, ctx, literals=literals), "embedded")
        if filetype is FileType.HTML or (literals and filetype is FileType.TEXT):
            # (an SVG image sniffs as text: what it shows is its text without the markup)
            yield from ctx.guard(_html_text(data, ctx), "html-text")
        yield from _unicode_text(data, ctx)
        mime_parsed = False
        if filetype is FileType.TEXT and filetype_mod.has_mime_markers(data):
            # Mail that does not start like mail (odd first headers, a preamble line): a client
            # may still parse its MIME, so we do too. The text itself is never its own child.
            start = _header_block_start(data, ctx.check_time)
            if mime.has_structure(data[start:]):
                mime_parsed = True
                for child in ctx.guard(mime.children(data[start:], ctx), "mime"):
                    if child.data != data:
                        yield child
        if filetype in (FileType.TEXT, FileType.SCRIPT):
            # base64 blocks (not again where MIME decoded its parts) and Intel HEX; in
            # scripts too (a shell script's here-document of base64, `base64 -d > x.exe`).
            yield from ctx.guard(_text_carriers(data, ctx, base64=not mime_parsed),
                                 "text-carriers")
            # (zlib streams in base64 too short for the blocks above: round 21's Z8)
            yield from ctx.guard(zlibdict.short_base64(data, ctx), "zlib-base64")
            yield from ctx.guard(_patched_files(data, ctx), "patches")


#: What each finder of `_patched_files` needs in a layer: one hyperscan pass says which.
_PATCH_HINTS = Literals((b"GIT binary patch", b"@@ -", b"-----BEGIN PGP", b"PACK\x00\x00\x00",
                         b"*** 0 ****", b"0a1", b"\n***************\n"))


def _patched_files(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Files a git binary patch, a unified diff (`diff -a`: binary lines, so the layer may be
    binary), a git bundle or pack (`patches`), or an OpenPGP message carries (`openpgp`)."""
    hints = _PATCH_HINTS.present(data)
    if 0 in hints:
        yield from patches.git_binary_patches(data, ctx)
    if hints & {1, 4, 5, 6}:  # unified, context (`diff -c`) or normal (`diff`) diffs
        yield from patches.new_files_in_diffs(data, ctx)
    if patches.ED_START.match(data):  # an ed script (`diff -e`)
        yield from patches.ed_script_file(data, ctx)
    if 3 in hints and patches.is_bundle_or_pack(data):
        yield from patches.pack_blobs(data, ctx)
    # OpenPGP messages that are not encrypted (signed, stored): armored or binary
    if 2 in hints:
        for message in openpgp.armored(data):
            yield from openpgp.literal_files(message, ctx)
    if openpgp.looks_like_message(data):
        yield from openpgp.sniffed_literal_files(data, ctx)


#: A page's readings that are text (`_html_text`): read as text whatever they sniff as.
_TEXT_READINGS = frozenset({
    "html-text", "html-visible", "html-parsed", "html-parsed-blocks", "html-block-text",
    "html-visible-blocks", "html-transformed", "html-layout", "html-columns", "svg-text",
    "svg-inline", "html-client-text", "html-unconditional"})


def _html_text(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """`_html_readings`, each text reading read as text (`Child.reads_as`) whatever its
    first bytes sniff as: "070707 " or a "\\x7fELF" the page shows as text made its text
    a cpio archive or an ELF file, whose readers found nothing (attack round 40)."""
    for child in _html_readings(data, ctx):
        if child.reads_as is None and child.origin in _TEXT_READINGS:
            child = dataclasses.replace(child, reads_as=FileType.TEXT)
        yield child


def _html_readings(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """What a browser shows of an HTML layer (tags, comments and character references gone),
    when it differs from the bytes: a text layer of its own; and without the text elements
    hide (`html-visible`), when some do. An iframe's `srcdoc` page is an HTML layer."""
    data = textual.closed_tail(textual.nuls_as_parsed(data))  # (the readers' tag patterns
    # stay linear; a NUL in the page's text joins what is either side of it)
    text = textual.html_rendered(data)
    if text and text.strip():
        ctx.check_time()
        ctx.charge_child(len(text))
        yield Child(data=text, name=None, origin="html-text")
    if textual.long_text_token(data):  # base64 with junk between its characters, a block
        lines = textual.html_block_text(data)  # of its own (round 20: `tr -cd` decodes it)
        for emb in textcarriers.junked_blocks(lines or b"", ctx.check_time):
            ctx.charge_child(len(emb.data))
            yield Child(data=emb.data, name=None, origin=emb.encoding, is_attachment=True,
                        speculative=True)
    visible = textual.html_visible(data)
    if visible and visible.strip() and visible != text:
        ctx.check_time()
        ctx.charge_child(len(visible))
        yield Child(data=visible, name=None, origin="html-visible")
    # the same as the parser builds the page and every selector matches on its tree (round
    # 38: a formatting element opened again, content fostered out of a table, `:has()`)
    parsed, parsed_blocks = htmlparsed.parsed_readings(data, ctx.check_time) or (None, None)
    if parsed and parsed.strip() and parsed != text and parsed != visible:
        ctx.check_time()
        ctx.charge_child(len(parsed))
        yield Child(data=parsed, name=None, origin="html-parsed")
    if parsed_blocks and parsed_blocks != parsed and textual.BLOCK_JOIN.search(parsed_blocks):
        ctx.check_time()
        ctx.charge_child(len(parsed_blocks))
        yield Child(data=parsed_blocks, name=None, origin="html-parsed-blocks")
    # the readings above join the text of blocks a browser shows on lines of their own:
    # `<div>Key</div><div>(base64)</div>` read "Key(base64)", decoded three letters off
    # (session 24); where a line of base64 letters follows one, the readings with breaks
    blocks = textual.html_block_text(data) if text and textual.BLOCK_JOIN_PAGE(data) else None
    joined = bool(blocks) and textual.BLOCK_JOIN.search(blocks or b"") is not None
    if joined and blocks:
        ctx.check_time()
        ctx.charge_child(len(blocks))
        yield Child(data=blocks, name=None, origin="html-block-text")
    if visible and (joined or textual.BLOCK_PIECES_PAGE(data) or _BASE64_RUN.search(visible)):
        # (or a run of base64 letters the reading shows: text before a style sheet or hidden
        # junk, then a block, glues to the run in the reading, not on the screen: session 26)
        # (the pieces may be cut by hidden junk: the visible text with breaks decides)
        ctx.check_time()
        shown = textual.html_visible(textual.block_breaks(data))
        if shown and shown.strip() and (joined or textual.BLOCK_JOIN.search(shown)):
            ctx.charge_child(len(shown))
            yield Child(data=shown, name=None, origin="html-visible-blocks")
    transformed = textual.html_transformed(data)  # CSS text-transform applied
    if transformed is not None:
        ctx.check_time()
        ctx.charge_child(len(transformed))
        yield Child(data=transformed, name=None, origin="html-transformed")
    page = htmllayout.laid_out(data, ctx.check_time)  # CSS layout, CSS-made text (round 16)
    if page is not None:  # its text, as the reader sees it (no HTML: not laid out again)
        laid = textual.html_visible(page) or textual.html_rendered(page)  # (the page may
        # hide its own text and show only what CSS writes: round 20's `font-size: 0` items
        # with sized markers, where the page's own visible reading is None)
        if laid and laid.strip() and laid != text and laid != visible:
            ctx.check_time()
            ctx.charge_child(len(laid))
            yield Child(data=laid, name=None, origin="html-layout")
    rows = htmlcolumns.columns_text(data, ctx.check_time)  # side-by-side boxes, row by row
    if rows and rows.strip() and rows != text:
        ctx.check_time()
        ctx.charge_child(len(rows))
        yield Child(data=rows, name=None, origin="html-columns")
    if htmlcolumns.width_columns(data):  # (columns of a width: as many as small type fits)
        narrow = htmlcolumns.columns_text(data, ctx.check_time, normal_gap=0.0)
        if narrow and narrow.strip() and narrow not in (rows, text):
            ctx.check_time()
            ctx.charge_child(len(narrow))
            yield Child(data=narrow, name=None, origin="html-columns")
    for page in htmlshadow.shadow_readings(data, ctx.check_time):  # declarative shadow DOM laid out
        ctx.check_time()
        ctx.charge_child(len(page))
        yield Child(data=page, name=None, origin="shadow-dom", reads_as=FileType.HTML)
    scoped = htmlscope.scoped_page(data)  # `@scope {}` of a style's parent, `dir=auto` (round 42)
    if scoped is not None:
        ctx.check_time()
        ctx.charge_child(len(scoped))
        yield Child(data=scoped, name=None, origin="html-scoped", reads_as=FileType.HTML)
    for reading in svgtext.svg_readings(data, ctx):  # SVG text where <use>, x/y draw it
        if reading != text:
            ctx.charge_child(len(reading))
            yield Child(data=reading, name=None, origin="svg-text")
    yield from svgimages.image_readings(data, ctx)  # SVG images' text in place (round 17)
    inline = svgtext.inline_page(data, ctx)  # inline SVG images' painted text in place
    if inline is not None:
        shown = textual.html_visible(inline) or textual.html_rendered(inline)
        if shown and shown.strip() and shown != text:
            ctx.check_time()
            ctx.charge_child(len(shown))
            yield Child(data=shown, name=None, origin="svg-inline")
    unhidden = htmlunhidden.shown_page(data)  # what the page's CSS shows of what UAs hide
    if unhidden is not None:
        ctx.check_time()
        ctx.charge_child(len(unhidden))
        yield Child(data=unhidden, name=None, origin="html-unhidden", reads_as=FileType.HTML)
    collapsed = htmltables.collapsed_page(data, ctx.check_time)  # columns collapsed away
    if collapsed is not None:
        ctx.check_time()
        ctx.charge_child(len(collapsed))
        yield Child(data=collapsed, name=None, origin="html-collapsed",
                    reads_as=FileType.HTML)
    for whole, reading in htmlprint.client_readings(data, ctx.check_time):  # (per client)
        ctx.check_time()
        ctx.charge_child(len(reading))
        yield Child(data=reading, name=None, origin="html-client" if whole else "html-client-text",
                    reads_as=FileType.HTML if whole else None)
    unconditional = htmlunhidden.unconditional_page(data)  # no condition of its CSS true
    if unconditional is not None:  # (its text as shown: responsive mail has such rules)
        ctx.check_time()
        shown = textual.html_visible(unconditional) or textual.html_rendered(unconditional)
        if shown and shown.strip() and shown != visible and shown != text:
            ctx.charge_child(len(shown))
            yield Child(data=shown, name=None, origin="html-unconditional")
    for page in textual.srcdoc_pages(data):
        if page.strip():
            ctx.check_time()
            ctx.charge_child(len(page))
            yield Child(data=page, name=None, origin="srcdoc", reads_as=FileType.HTML)


#: Lines of Intel HEX and S-records (one hyperscan pass; a text may also start with one).
_RECORD_HINTS = Literals((b"\n:", b"\nS1", b"\nS2", b"\nS3", b"\n :", b"\n\t:"))


def _text_carriers(
    data: bytes, ctx: ScanContext, base64: bool, intel_hex: bool = True, decorated: bool = True
) -> Iterator[Child]:
    """Files a plain text carries as base64 blocks, Intel HEX or S-records (`textcarriers`);
    decorated blocks too unless told (a binary layer: only when it is HTML behind NULs)."""
    check = ctx.check_time
    if decorated:  # text: lone CRs as LFs, once for the three finders (not in binary)
        data = textcarriers.lf_lines(data)
    found: Iterator[encodings.EmbeddedFile] = iter(())
    if intel_hex:
        records = _RECORD_HINTS.present(data)
        first = data[:256].lstrip()[:1]  # (no copy of a long text)
        if records & {0, 4, 5} or first == b":":
            found = textcarriers.intel_hex(data, check, lf=True)
        if records & {1, 2, 3} or first == b"S":
            found = itertools.chain(found, textcarriers.srecords(data, check))
    if base64:
        found = itertools.chain(textcarriers.base64_blocks(data, check, lf=True), found)
        if decorated:
            found = itertools.chain(found, textcarriers.decorated_blocks(data, check, lf=True),
                                    textcarriers.junked_blocks(data, check))
    # The finders overlap (a plain block is a decorated run too). The bytes are the key: a
    # set hashes them faster than MD5 does, and each is held as a child anyway.
    seen: set[bytes] = set()
    for emb in found:
        if emb.data in seen:
            continue
        seen.add(emb.data)
        ctx.charge_child(len(emb.data))
        yield Child(data=emb.data, name=None, origin=emb.encoding, is_attachment=True,
                    speculative=emb.encoding == "base64-junked")


def _unicode_text(data: bytes, ctx: ScanContext, as_text: bool = True) -> Iterator[Child]:
    """UTF-16/32 text (with a byte-order mark it sniffs as text, without one as binary),
    ISO-2022-JP, UTF-7, fullwidth (NFKC) and HTML in the charset its `<meta>` declares, as
    UTF-8: byte signatures are written for the text, not for its
    UTF-16 bytes, and a browser drops the escape sequences cut into a `<script>` or a base64
    blob (mshta reads `+ADw-script+AD4-`)."""
    views: list[tuple[bytes | None, str]] = [(textual.unicode_text(data), "utf-16/32"),
             (textual.utf16_behind_utf32_bom(data), "utf-16/32")]
    hints = textual.view_hints(data)
    escaped = as_text and not data.isascii() and _CSS_ESCAPE(data) and _STYLED(data)
    if "charset" in hints or escaped:
        # (HTML in a multibyte charset sniffs as binary: here too; a page in windows-1252
        # declares none)
        views.append((_meta_charset_text(data, escaped), "meta-charset"))
    if as_text:  # (not in binary layers: random bytes hold an escape or a "+ADw" now and then)
        if "iso-2022" in hints:
            views.append((textual.iso2022_text(data), "iso-2022-jp"))
        if "utf-7" in hints:
            views.append((textual.utf7_text(data), "utf-7"))
        if "fullwidth" in hints:
            views.append((textual.nfkc_text(data), "nfkc"))
        if "bidi" in hints:  # (misc18: RLO...PDF, RLI...PDI reverse and reorder pieces)
            views += [(shown, "bidi-visual") for shown in bidi.visual_text(data, ctx.check_time)]
    for text, origin in views:
        if text and text != data:
            ctx.charge_child(len(text))
            yield Child(data=text, name=None, origin=origin)


def _meta_charset_text(data: bytes, escaped: bool = False) -> bytes | None:
    """An HTML page declaring (in `<meta>`) a charset whose text hides ASCII or is not ASCII
    (Big5, GB18030, EUC-KR, Shift_JIS, UTF-16...), as UTF-8: what the browser shows. The
    declaration in it then says utf-8: the view is not decoded again (its text, read once
    more as Big5, grew threefold a level and ran into the scan-time limit). `escaped`: a
    text page whose sheet escapes a character, read in its single-byte charset too."""
    name = textual.meta_charset(data)
    codec = mime.foreign_charset(name) if name else None
    if codec is None and escaped:
        # a single-byte charset (none declared or Latin-1: windows-1252, as a browser
        # reads it) where a selector's escape names a class in it (`.j\e9` for the byte
        # E9: attack round 41), unless the page is UTF-8
        if name is None or name.lower() in _WINDOWS_1252_LABELS:
            codec = None if encodings.is_utf8(data) else "cp1252"
        else:
            codec = mime.single_byte(name)
    errors = "replace"
    if codec in ("gbk", "gb2312"):  # (a browser's gbk: four-byte sequences, 0x80 the euro)
        codec, errors = "gb18030", _GBK_EURO
    if codec is None:
        return None
    text = data.decode(codec, errors).encode("utf-8", "replace")
    text = textual.declare_utf8(text, name or "")
    return text if text != data else None


#: A CSS escape of a non-ASCII character (`\e9`, `\439`): a gate on the charset view.
_CSS_ESCAPE = Gate(rb"\\[0-9a-fA-F]{2,6}")
_STYLED = Gate(rb"<style|text/css")
_WINDOWS_1252_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1",
                                  "us-ascii", "ascii", "windows-1252", "cp1252", "x-cp1252"})


def _gbk_euro(error: UnicodeError) -> tuple[str, int]:
    """A browser's gbk decoder reads the byte 0x80 as the euro sign; Python's gb18030 not."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.start + 1]
    return ("\u20ac" if bad == b"\x80" else "\ufffd"), error.start + 1


_GBK_EURO = "zerohour-gbk-euro"
codecs.register_error(_GBK_EURO, _gbk_euro)


def _binary_text(data: bytes, ctx: ScanContext, signed: bytes | None) -> Iterator[Child]:
    """Text and mail that sniff as binary: UTF-16/32 text, mail with NUL or other control
    bytes in it (clients and ClamAV still parse it), and the MIME entity inside an
    opaque-signed S/MIME blob (clients unwrap it and show its attachments)."""
    yield from _unicode_text(data, ctx, as_text=False)
    if filetype_mod.looks_like_mail(data):
        yield from mime.children(data, ctx)
    if signed:  # (`smime.signed_content(data)`, read once by the caller)
        ctx.charge_child(len(signed))
        yield Child(data=signed, name=None, origin="smime-signed")


def _embedded(
    data: bytes, ctx: ScanContext, literals: bool, smuggling: bool = True
) -> Iterator[Child]:
    """Files encoded inside text: uuencode / yEnc / BinHex blocks (mail bodies saved as .txt,
    news articles), base64 blobs or data: URIs in HTML or script (HTML smuggling), also
    behind character references (`data&#58;...`: what the link really holds), and inline
    attachments of calendar invitations (ATTACH;ENCODING=BASE64) and vCards."""
    seen: set[bytes] = set()
    check = ctx.check_time
    smuggled: Iterator[encodings.EmbeddedFile] = iter(())
    if smuggling:
        smuggled = encodings.smuggled_blobs(data, literals, check)
        # (also in text with markup: an HTML fragment, `<object data="&#x64;&#x61;...">`,
        # sniffs as text, and a browser renders it by its name or its MIME type)
        unescaped = textual.html_unescaped(data) if literals or b"<" in data else None
        if unescaped is not None:
            smuggled = itertools.chain(
                smuggled, encodings.smuggled_blobs(unescaped, literals, check))
    embedded = encodings.embedded_files(data, check, ctx.output_bound())
    inline = (encodings.EmbeddedFile(b, None, "vobject-inline")
              for b in textual.inline_binaries(data))
    for emb in itertools.chain(embedded, smuggled, inline):
        if emb.data and emb.data not in seen:
            seen.add(emb.data)
            ctx.charge_child(len(emb.data))
            yield Child(data=emb.data, name=emb.name, origin=emb.encoding, is_attachment=True)


#: A run of base64 letters in a page's visible text, where a block before it may end a line
#: the reading joined (`_html_text`): rare in prose, so the extra reading costs little.
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{16}")
_SCRIPT_MARKUP = Gate(rb"<(?:svg|script)[\s>/]")
_MIME_HEADER_AT_BOL = re.compile(
    rb"(?:^|(?<=[\r\n]))content-(?:type|transfer-encoding)[ \t]*:", re.I
)
_ANY_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


_EOL = re.compile(rb"\r\n|\n|\r")


def _header_block_start(data: bytes, check: encodings.Check = None) -> int:
    """Offset of the header block holding the first MIME header at a line start (0 if none)."""
    # The whole text: a junk first line and a megabyte of header lines in front (clamscan
    # still parses that mail) used to put the first MIME header out of a 1 MiB window.
    m = _MIME_HEADER_AT_BOL.search(data)
    if m is None:
        return 0
    start = m.start()
    # Walk back over the header lines (and folded continuations) just before it. The line
    # ends come from one forward scan: searching backwards for a CR in LF-only text (or an LF
    # in CR-only text) from every line made this quadratic.
    eols = [(e.start(), e.end()) for e in _EOL.finditer(data, 0, start)]
    for j in range(len(eols) - 1, -1, -1):
        if check is not None and not j % 4096:
            check()
        line_start = eols[j - 1][1] if j else 0
        line = data[line_start : eols[j][0]]
        if not line or not (_ANY_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t")):
            break
        start = line_start
    return start
