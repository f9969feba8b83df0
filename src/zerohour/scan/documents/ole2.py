"""OLE2 (Compound File Binary): Word, Excel, PowerPoint, Outlook .msg, embedded objects.

Children, in order: VBA macro source (MS-OVBA decompressed: macro signatures match the source
text, which is stored compressed), the file inside every `\\x01Ole10Native` stream (OLE Packager
objects, anywhere: Word's ObjectPool, an Excel MBD storage, a top-level embedding), the
zlib-compressed OLE objects PowerPoint keeps as ExOleObjStg records inside its
'PowerPoint Document' stream (the engine opens them as OLE2 again), Outlook .msg attachments
(named, marked as attachments; embedded messages are storages whose streams are walked like any
other) and their compressed RTF bodies (MS-OXRTFCP, decompressed: the RTF decomposer then opens
its objects), and every stream raw, as ClamAV does.

Every stream raw includes the ones a decoder read (round 31): a macro module's bytes before its
source (the p-code "performance cache", which Office runs in place of the source), the VBA
project's own streams (`dir`, `_VBA_PROJECT`, `PROJECT`), and whatever follows the file in an
`\\x01Ole10Native` stream: each was a place to put a payload no layer held. A directory the
file's own readers cannot walk the way olefile does is `Heuristics.Broken.OLE2`: two entries of
one storage whose names differ only in case (olefile opens the first for both; MS-CFB forbids
it; 7-Zip extracts both), and entries of a kind olefile does not list (lockbytes, property).
There is no cap on the number of streams: each is a file of the scan's MaxFiles, its bytes count
to MaxScanSize. A password-protected document is `Heuristics.Encrypted.OLE2` after all of that
(`is_encrypted`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import archive
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import MAX_SCAN_SIZE, ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

_MAX_VBA_SOURCE = 16 * 1024 * 1024
_STORAGE, _STREAM = 1, 2  # directory entry kinds (MS-CFB 2.6.1)
_PPT_STREAM = "powerpoint document"
_PPT_EXOLEOBJSTG = 0x1011  # ExOleObjStg; also VbaProjectStg (same record type)
_MAX_PPT_RECORDS = 200_000
_MSG_ATTACH_DATA = "__substg1.0_37010102"  # PidTagAttachDataBinary
_MSG_RTF_BODY = "__substg1.0_10090102"  # PidTagRtfCompressed
_MSG_ATTACH_NAMES = (  # PidTagAttachLongFilename, PidTagAttachFilename (Unicode, then 8-bit)
    "__substg1.0_3707001f", "__substg1.0_3704001f", "__substg1.0_3707001e", "__substg1.0_3704001e",
)


def ovba_decompress(
    data: bytes, limit: int = _MAX_VBA_SOURCE, ctx: ScanContext | None = None
) -> bytes:
    """MS-OVBA 2.4.1 decompression (VBA source and the `dir` stream); damage gives a prefix.

    With `ctx`, bounded like every decompression: the clock, the output bound and the
    compression ratio are checked per 4 KiB chunk (24 KB of OVBA copy tokens expand to 16 MB).
    """
    if not data or data[0] != 1:
        return b""
    out = bytearray()
    pos = 1
    n = len(data)
    bound = limit if ctx is None else min(limit, ctx.output_bound() + 1)
    while pos + 2 <= n and len(out) < bound:
        if ctx is not None:
            ctx.check_time()
            ctx.check_ratio(pos, len(out))
        header = data[pos] | (data[pos + 1] << 8)
        chunk_end = min(n, pos + (header & 0x0FFF) + 3)
        pos += 2
        start = len(out)
        if not header & 0x8000:  # stored chunk: 4096 raw bytes
            out += data[pos : pos + 4096]
            pos += 4096
            continue
        while pos < chunk_end:
            flags = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= chunk_end:
                    break
                if not flags >> bit & 1:
                    out.append(data[pos])
                    pos += 1
                    continue
                if pos + 2 > chunk_end:
                    return bytes(out)
                token = data[pos] | (data[pos + 1] << 8)
                pos += 2
                diff = len(out) - start
                bitcount = max((diff - 1).bit_length(), 4) if diff > 1 else 4
                length_mask = 0xFFFF >> bitcount
                length = (token & length_mask) + 3
                offset = (token >> (16 - bitcount)) + 1
                src = len(out) - offset
                if src < start:
                    return bytes(out)
                if offset >= length:
                    out += out[src : src + length]
                else:  # an overlapping copy repeats the last `offset` bytes
                    pat = bytes(out[src:])
                    out += (pat * (length // offset + 1))[:length]
        pos = chunk_end
    if ctx is not None and len(out) > ctx.output_bound():
        ctx.check_output(len(out))  # raises the limit that was exceeded
    return bytes(out[:limit])


def _vba_modules(dir_data: bytes) -> list[tuple[str, int]]:
    """(stream name, source offset) of each module listed in a decompressed `dir` stream."""
    modules: list[tuple[str, int]] = []
    pos = 0
    stream: str | None = None
    offset = 0
    n = len(dir_data)
    while pos + 6 <= n:
        rid, size = struct.unpack_from("<HI", dir_data, pos)
        pos += 6
        if rid == 0x0009:  # PROJECTVERSION: its size field lies (4, but 6 bytes follow)
            size = 6
        body = dir_data[pos : pos + size]
        pos += size
        if rid == 0x001A:
            stream = body.decode("latin-1")
        elif rid == 0x0031 and len(body) >= 4:
            (offset,) = struct.unpack_from("<I", body)
        elif rid == 0x002B:
            if stream is not None:
                modules.append((stream, offset))
            stream, offset = None, 0
        elif rid == 0x0010:
            break
    return modules


def _ole10native(data: bytes) -> tuple[bytes, str | None] | None:
    """The file inside an `\\x01Ole10Native` stream (OLE Packager objects): a u32 total size,
    u16 flags, NUL-terminated label and source path, u32 reserved, u32-prefixed temp path, then
    the u32-prefixed file data."""
    try:
        pos = 4 + 2
        label_end = data.index(b"\x00", pos)
        name = data[pos:label_end].decode("latin-1") or None
        path_end = data.index(b"\x00", label_end + 1)
        pos = path_end + 1 + 4
        (tlen,) = struct.unpack_from("<I", data, pos)
        pos += 4 + tlen
        (dlen,) = struct.unpack_from("<I", data, pos)
        pos += 4
    except (ValueError, struct.error):
        return None
    payload = data[pos : pos + dlen]
    return (payload, name) if payload else None


def ppt_objects(stream: bytes, ctx: ScanContext) -> Iterator[bytes]:
    """The OLE objects embedded in a 'PowerPoint Document' stream (MS-PPT ExOleObjStg records,
    inside container records too): stored raw, or (recInstance 1) as a u32 decompressed size
    then a zlib stream, inflated with the scan's output and ratio bounds. A record whose zlib
    stream is damaged gives what inflated before the damage and is `Heuristics.Broken.OLE2`."""
    ends = [len(stream)]
    pos = 0
    for i in range(_MAX_PPT_RECORDS):
        if not i % 1024:
            ctx.check_time()
        while ends and pos + 8 > ends[-1]:
            pos = ends.pop()  # past the end of a container: continue after it
        if not ends:
            return
        ver_inst, rtype, rlen = struct.unpack_from("<HHI", stream, pos)
        body_at = pos + 8
        if ver_inst & 0xF == 0xF:  # a container: walk its children, then go on after it
            ends.append(min(ends[-1], body_at + rlen))
            pos = body_at
            continue
        body = stream[body_at : min(ends[-1], body_at + rlen)]
        pos = body_at + rlen
        if rtype != _PPT_EXOLEOBJSTG or not body:
            continue
        if ver_inst >> 4 == 1 and len(body) > 4:
            out, _end = archive.inflate(memoryview(body)[4:], ctx)
            (declared,) = struct.unpack_from("<I", body)
            if len(out) != declared:
                ctx.broken("OLE2")
        else:
            out = body
        if out:
            yield out
    ctx.unsupported("OLE2", "PowerPointRecords")  # more records than we walk: say so


_LZFU_PREBUF = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_LZFU = 0x75465A4C  # "LZFu": compressed
_MELA = 0x414C454D  # "MELA": stored


def lzfu_decompress(data: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """An Outlook compressed RTF body (MS-OXRTFCP, `PidTagRtfCompressed`): (RTF, whether it
    decoded to its end). Bounded: a token yields at most 17 bytes from 2, and the output stops
    at the scan's bound."""
    if len(data) < 16:
        return b"", False
    _comp, raw_size, ctype, _crc = struct.unpack_from("<IIII", data)
    if ctype == _MELA:
        return data[16 : 16 + raw_size], True
    if ctype != _LZFU:
        return b"", False
    bound = min(raw_size, ctx.output_bound())
    window = bytearray(_LZFU_PREBUF.ljust(4096, b"\x00"))
    wp = len(_LZFU_PREBUF)
    out = bytearray()
    pos, n = 16, len(data)
    while pos < n:
        if not pos & 0xFFF:
            ctx.check_time()
        flags = data[pos]
        pos += 1
        for bit in range(8):
            if pos >= n or len(out) >= bound:
                return bytes(out[:bound]), len(out) >= raw_size
            if not flags >> bit & 1:
                window[wp] = data[pos]
                out.append(data[pos])
                pos += 1
                wp = (wp + 1) & 0xFFF
                continue
            if pos + 2 > n:
                return bytes(out), False
            ref = data[pos] << 8 | data[pos + 1]
            pos += 2
            offset, length = ref >> 4, (ref & 0xF) + 2
            if offset == wp:
                return bytes(out), True  # the end marker
            for i in range(length):
                byte = window[(offset + i) & 0xFFF]
                window[wp] = byte
                out.append(byte)
                wp = (wp + 1) & 0xFFF
    return bytes(out), len(out) >= raw_size


def _check_pending(ctx: ScanContext, pending: int) -> None:
    if ctx.total_bytes + pending > ctx.limits.max_scan_size:
        raise ScanLimitExceeded(MAX_SCAN_SIZE, f"{ctx.total_bytes + pending} bytes")


def _msg_attachment_name(
    read: Callable[[list[str]], bytes], storage: list[str],
    by_parent: dict[tuple[str, ...], dict[str, list[str]]],
) -> str | None:
    """The file name an Outlook .msg gives its attachment storage (long name first)."""
    names = by_parent.get(tuple(storage), {})
    for key in _MSG_ATTACH_NAMES:
        entry = names.get(key)
        if entry is None:
            continue
        try:
            raw = read(entry)[:4096]
        except Exception:  # a damaged name stream: the attachment stays unnamed
            raw = b""
        codec = "utf-16-le" if key.endswith("1f") else "latin-1"
        text = raw.decode(codec, "replace").rstrip("\x00")
        if text:
            return text
    return None


def _head(ole: Any, name: str, n: int) -> bytes:
    try:
        return bytes(ole.openstream(name).read(n)) if ole.exists(name) else b""
    except Exception:  # a damaged stream: no marker to read
        return b""


def is_encrypted(ole: Any) -> bool:
    """Whether an Office document in this OLE2 file is password-protected: an ECMA-376
    encrypted OOXML package (EncryptionInfo + EncryptedPackage), Word's FIB fEncrypted or
    fObfuscated flag, an Excel FILEPASS record before the first sheet's data, or PowerPoint's
    encrypted CurrentUserAtom token. Its streams are then ciphertext: never "clean"."""
    if ole.exists("EncryptionInfo") and ole.exists("EncryptedPackage"):
        return True
    fib = _head(ole, "WordDocument", 12)
    if len(fib) >= 12 and fib[:2] == b"\xec\xa5" and struct.unpack_from("<H", fib, 10)[0] & 0x8100:
        return True
    for name in ("Workbook", "Book"):
        book = _head(ole, name, 4096)
        pos = 0
        for _ in range(64):  # FILEPASS follows BOF within the workbook globals' first records
            if pos + 4 > len(book):
                break
            rtype, rlen = struct.unpack_from("<HH", book, pos)
            if rtype == 0x002F:
                return True
            if rtype == 0x000A:  # EOF of the globals
                break
            pos += 4 + rlen
    user = _head(ole, "Current User", 16)
    return len(user) >= 16 and struct.unpack_from("<I", user, 12)[0] == 0xF3D1C4DF


def _note(path: list[str], size: int, index: int, ctx: ScanContext) -> None:
    """Record one stream of the directory (for `.cdb` container-metadata signatures)."""
    ctx.note_member(MemberMeta(container=FileType.OLE2, name="/".join(path), size=size,
                               compressed_size=size, crc32=None, encrypted=False, index=index))


def _streams(ole: Any, ctx: ScanContext) -> tuple[list[tuple[list[str], Any]], bool]:
    """Every stream of the directory tree as (path, entry), in `listdir`'s order, and whether
    the tree holds what no listing shows.

    Walked here rather than listed by olefile and opened by path: its lookup by path walks a
    storage's entries one by one, three times for each stream, so 8,000 streams in one storage
    took 7.7 s and 20,000 took 50 s (round 32, R32-F3). A stream is read through its own entry.
    What olefile's listing leaves out, with everything below it, is an entry that is neither a
    storage nor a stream (kinds 0, 3, 4, and a second root: 5), and the entries below a
    stream; two names of one storage that differ only in case are one path to olefile's
    lookup (MS-CFB forbids them; 7-Zip extracts both). Any of those is `odd`."""
    out: list[tuple[list[str], Any]] = []
    odd = False
    stack: list[tuple[list[str], Iterator[Any]]] = [([], iter(ole.root.kids))]
    while stack:
        path, kids = stack[-1]
        kid = next(kids, None)
        if kid is None:
            stack.pop()
            continue
        ctx.check_time()
        here = [*path, kid.name]
        if kid.entry_type == _STORAGE:
            stack.append((here, iter(kid.kids)))
        elif kid.entry_type == _STREAM:
            out.append((here, kid))
            odd = odd or bool(kid.kids)
        else:
            odd = True
    keys = {tuple(p.lower() for p in path) for path, _ in out}
    return out, odd or len(keys) != len(out)


def ole2_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """VBA macro source (decompressed), packaged and embedded objects, .msg attachments, and
    every other stream (see the module docstring)."""
    import olefile

    dedup = Dedup()
    out: list[Child] = []
    by_parent: dict[tuple[str, ...], dict[str, list[str]]] | None = None
    noted = len(ctx.events)
    try:
        ole = olefile.OleFileIO(data)
    except Exception:  # any olefile failure on hostile input: we cannot take it apart
        ctx.broken("OLE2")
        return
    try:
        try:
            streams, odd = _streams(ole, ctx)
        except ScanLimitExceeded:
            raise
        except Exception:  # a damaged directory tree: nothing we can name
            streams, odd = [], True
        if odd:
            ctx.broken("OLE2")
        entries = [path for path, _ in streams]
        by_path = {tuple(p.lower() for p in path): d for path, d in streams}

        def read(path: list[str]) -> bytes:  # (KeyError: a path the directory does not hold)
            d = by_path[tuple(p.lower() for p in path)]
            return bytes(ole._open(d.isectStart, d.size).read())

        vba_dirs = [
            e for e in entries if len(e) >= 2 and [p.lower() for p in e[-2:]] == ["vba", "dir"]
        ]
        pending = 0  # bytes collected, not yet charged
        for entry in vba_dirs:
            base = entry[:-1]
            try:
                modules = _vba_modules(ovba_decompress(read(entry), ctx=ctx))
            except ScanLimitExceeded:
                raise
            except Exception:  # a broken dir stream: fall back to the stream walk below, and say
                # so (the macro source stays compressed: its signatures cannot match)
                ctx.broken("OLE2")
                modules = []
            for stream_name, offset in modules:
                path = [*base, stream_name]
                try:
                    raw = read(path)
                except Exception:  # hostile input: a listed module that does not open
                    ctx.broken("OLE2")
                    continue
                source = ovba_decompress(raw[offset:], ctx=ctx)
                if not source and b"\x00Attribut" in raw:
                    at = raw.find(b"\x00Attribut") - 3
                    source = ovba_decompress(raw[max(0, at) :], ctx=ctx)
                if source:  # (the raw stream too, below: its p-code runs in place of this)
                    pending += len(source)
                    out.append(Child(data=source, name=stream_name, origin="vba"))
                else:
                    ctx.broken("OLE2")
                _check_pending(ctx, pending)
        for index, (entry, d) in enumerate(streams):
            ctx.check_time()
            key = tuple(p.lower() for p in entry)
            _note(entry, d.size, index, ctx)
            try:
                if ctx.skip_oversized(d.size):
                    continue
                content = bytes(ole._open(d.isectStart, d.size).read())
            except ScanLimitExceeded:
                raise
            except Exception:  # hostile input: a broken stream is skipped, and said
                ctx.broken("OLE2")
                continue
            if entry[-1] == "\x01Ole10Native":
                packed = _ole10native(content)
                if packed is not None:
                    out.append(
                        Child(
                            data=packed[0], name=packed[1], origin="ole10native", is_attachment=True
                        )
                    )
                    pending += len(packed[0])
                    _check_pending(ctx, pending)  # (and the stream raw: what follows the file)
            if key[-1] == _MSG_ATTACH_DATA and len(entry) >= 2:
                if by_parent is None:  # streams by storage, built once
                    by_parent = {}
                    for e in entries:
                        by_parent.setdefault(tuple(e[:-1]), {})[e[-1].lower()] = e
                name = _msg_attachment_name(read, entry[:-1], by_parent)
                out.append(Child(data=content, name=name, origin="msg-attachment",
                                 is_attachment=True))
            else:
                out.append(Child(data=content, name="/".join(entry), origin="ole2"))
            if key[-1] == _MSG_RTF_BODY:
                rtf, whole = lzfu_decompress(content, ctx)
                if not whole:
                    ctx.broken("OLE2")
                if rtf:
                    out.append(Child(data=rtf, name=None, origin="msg-rtf-body"))
                    pending += len(rtf)
            pending += len(content)
            _check_pending(ctx, pending)  # collected before yielding: bound the memory too
            if key[-1] == _PPT_STREAM:  # top level, or a presentation embedded in a storage
                for obj in ppt_objects(content, ctx):
                    out.append(Child(data=obj, name=None, origin="ppt-object"))
                    pending += len(obj)
                    _check_pending(ctx, pending)
        encrypted = is_encrypted(ole)
    finally:
        ole.close()
    # Damage found while collecting is said after the children, so that what they hold is
    # named first (the walk stops at the first finding).
    deferred = ctx.events[noted:]
    del ctx.events[noted:]
    for child in out:
        if child.data and dedup.fresh(child.data, child.name):
            ctx.charge_child(len(child.data))
            yield child
    ctx.events.extend(deferred)
    if encrypted:
        raise EncryptedContent("OLE2")
