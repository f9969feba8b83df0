"""CHM (Microsoft Compiled HTML Help, ITSF): every file in it.

A CHM is an ITSF header, an ITSP directory of PMGL chunks (name, section, offset, length per
file), section 0 (stored) and section 1 ("MSCompressed": one LZX stream, reset table and all,
kept as a file of section 0). The directory and section 0 are read here, in Python, bounded.
LZX is decoded by libmspack (Debian libmspack0, what cabextract uses; maintained, fuzzed, and
the library ClamAV itself took its CHM and CAB decoders from) through ctypes: a bounded LZX
decoder of our own would be ~600 lines of bit-level Python, slow on real help files. libmspack
runs in C and cannot be interrupted, so it gets only what our bounds allow *before* it starts:
each file's declared length is charged as its output (max file size, scan size) and the LZX
position it must reach (offset + length) is held to the compression-ratio bound against the
whole CHM's size. Without libmspack (or when it cannot open the file) section 1 files are
`Heuristics.Unsupported.CHM.LZX`; a directory or a file running past the end of the data is
`Heuristics.Broken.CHM`.

libmspack reads and writes through file names: the CHM and each extracted file live in
anonymous memory files (memfd), never on disk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

_MAX_ENTRIES = 100_000
_MAX_CHUNKS = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry (PMGL)."""

    name: str
    section: int
    offset: int
    length: int


def _encint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A CHM ENCINT (7 bits per byte, most significant first) at `pos`."""
    value = 0
    for _ in range(9):
        if pos >= end:
            raise ValueError("ENCINT past the chunk")
        b = buf[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos
    raise ValueError("ENCINT too long")


def parse_directory(data: bytes, ctx: ScanContext) -> tuple[list[Entry], int, bool]:
    """(entries, offset of section 0's content, whether the directory was whole)."""
    if len(data) < 0x58 or data[:4] != b"ITSF":
        return [], 0, False
    version, header_len = struct.unpack_from("<II", data, 4)
    dir_off, dir_len = struct.unpack_from("<QQ", data, 0x48)
    if version >= 3 and header_len >= 0x60 and len(data) >= 0x60:
        (content_off,) = struct.unpack_from("<Q", data, 0x58)
    else:
        content_off = dir_off + dir_len
    if dir_off + 0x54 > len(data) or data[dir_off : dir_off + 4] != b"ITSP":
        return [], content_off, False
    itsp_len, _unk, chunk_size = struct.unpack_from("<III", data, dir_off + 8)
    (nchunks,) = struct.unpack_from("<I", data, dir_off + 0x2C)
    if chunk_size < 32 or nchunks > _MAX_CHUNKS:
        return [], content_off, False
    entries: list[Entry] = []
    whole = dir_off + dir_len <= len(data)
    first = dir_off + itsp_len
    for i in range(nchunks):
        ctx.check_time()
        start = first + i * chunk_size
        if start + chunk_size > len(data):
            whole = False
            break
        if data[start : start + 4] != b"PMGL":
            continue  # PMGI index chunks: the PMGL chunks list every entry
        (free,) = struct.unpack_from("<I", data, start + 4)
        end = start + chunk_size - min(free, chunk_size - 20)
        pos = start + 20
        try:
            while pos < end:
                nlen, pos = _encint(data, pos, end)
                name = data[pos : pos + nlen].decode("utf-8", "replace")
                pos += nlen
                section, pos = _encint(data, pos, end)
                offset, pos = _encint(data, pos, end)
                length, pos = _encint(data, pos, end)
                if pos > end:
                    raise ValueError("entry past the chunk")
                entries.append(Entry(name, section, offset, length))
                if len(entries) >= _MAX_ENTRIES:
                    ctx.unsupported("CHM", "Entries")
                    return entries, content_off, whole
        except ValueError:
            whole = False
    return entries, content_off, whole


# --- libmspack (ctypes) -------------------------------------------------------------------------


class _File(ctypes.Structure):
    pass


_File._fields_ = [
    ("next", ctypes.POINTER(_File)),
    ("section", ctypes.c_void_p),
    ("offset", ctypes.c_int64),
    ("length", ctypes.c_int64),
    ("filename", ctypes.c_char_p),
]


class _Section(ctypes.Structure):
    _fields_ = [("chm", ctypes.c_void_p), ("id", ctypes.c_uint)]


class _Header(ctypes.Structure):  # the leading fields of struct mschmd_header
    _fields_ = [
        ("version", ctypes.c_uint),
        ("timestamp", ctypes.c_uint),
        ("language", ctypes.c_uint),
        ("filename", ctypes.c_char_p),
        ("length", ctypes.c_int64),
        ("files", ctypes.POINTER(_File)),
        ("sysfiles", ctypes.POINTER(_File)),
    ]


_OPEN = ctypes.CFUNCTYPE(ctypes.POINTER(_Header), ctypes.c_void_p, ctypes.c_char_p)
_CLOSE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_Header))
_EXTRACT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_File),
                            ctypes.c_char_p)


class _Decompressor(ctypes.Structure):  # struct mschm_decompressor (its first methods)
    _fields_ = [("open", _OPEN), ("close", _CLOSE), ("extract", _EXTRACT)]


class _System(ctypes.Structure):  # struct mspack_system: I/O and message callbacks
    _fields_ = [(name, ctypes.c_void_p) for name in (
        "open", "close", "read", "write", "seek", "tell", "message", "alloc", "free", "copy",
        "null_ptr")]


_MESSAGE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_quiet_message = _MESSAGE(lambda _file, _fmt: None)  # libmspack's warnings go to stderr
_lib_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_tried = False
_system: _System | None = None  # the default system, without its messages


def _libmspack() -> ctypes.CDLL | None:
    global _lib, _lib_tried, _system
    with _lib_lock:
        if not _lib_tried:
            _lib_tried = True
            name = ctypes.util.find_library("mspack") or "libmspack.so.0"
            try:
                lib = ctypes.CDLL(name)
                lib.mspack_create_chm_decompressor.restype = ctypes.POINTER(_Decompressor)
                lib.mspack_create_chm_decompressor.argtypes = [ctypes.POINTER(_System)]
                lib.mspack_destroy_chm_decompressor.restype = None
                lib.mspack_destroy_chm_decompressor.argtypes = [ctypes.POINTER(_Decompressor)]
                default = ctypes.POINTER(_System).in_dll(lib, "mspack_default_system")
                system = _System()
                ctypes.memmove(ctypes.byref(system), default, ctypes.sizeof(_System))
                system.message = ctypes.cast(_quiet_message, ctypes.c_void_p).value
                _system = system
                _lib = lib
            except (OSError, AttributeError):
                _lib = None
        return _lib


def lzx_available() -> bool:
    """Whether section 1 (LZX) can be decoded here (libmspack and memfd present)."""
    return _libmspack() is not None and hasattr(os, "memfd_create")


class LzxUnavailable(OSError):
    """libmspack (or memfd) is missing here: section 1 cannot be decoded."""


class _Unreadable(OSError):
    """libmspack refuses the CHM's headers or directory."""


def _mspack_section1(
    data: bytes, wanted: dict[str, Entry], ctx: ScanContext
) -> Iterator[tuple[Entry, bytes | None]]:
    """(entry, content or None when libmspack failed on it) for each wanted section-1 file.
    Raises `LzxUnavailable` without libmspack, `_Unreadable` when it cannot open the CHM."""
    lib = _libmspack()
    if lib is None or not hasattr(os, "memfd_create"):
        raise LzxUnavailable("libmspack unavailable")
    src = os.memfd_create("zh-chm")
    out = os.memfd_create("zh-chm-out")
    try:
        os.write(src, data)
        src_path = f"/proc/self/fd/{src}".encode()
        out_path = f"/proc/self/fd/{out}".encode()
        dec = lib.mspack_create_chm_decompressor(
            ctypes.byref(_system) if _system is not None else None)
        if not dec:
            raise LzxUnavailable("mspack_create_chm_decompressor failed")
        try:
            chm = dec.contents.open(ctypes.cast(dec, ctypes.c_void_p), src_path)
            if not chm:
                raise _Unreadable("libmspack cannot open this CHM")
            try:
                node = chm.contents.files
                steps = 0
                while node and steps < _MAX_ENTRIES:
                    steps += 1
                    ctx.check_time()
                    f = node.contents
                    current, node = node, f.next
                    name = (f.filename or b"").decode("utf-8", "replace")
                    entry = wanted.pop(name, None)
                    section = ctypes.cast(f.section, ctypes.POINTER(_Section))
                    if entry is not None and section and section.contents.id == 1:
                        # Bounds before C runs: the output, and how far into the LZX stream
                        # it must decode, against the size of the whole file.
                        ctx.check_ratio(len(data), entry.offset + entry.length)
                        if ctx.skip_oversized(entry.length):
                            continue
                        ctx.check_output(entry.length)
                        rc = dec.contents.extract(ctypes.cast(dec, ctypes.c_void_p), current,
                                                  out_path)
                        content = _read_fd(out, entry.length) if rc == 0 else None
                        yield entry, content
            finally:
                dec.contents.close(ctypes.cast(dec, ctypes.c_void_p), chm)
        finally:
            lib.mspack_destroy_chm_decompressor(dec)
    finally:
        os.close(src)
        os.close(out)


def _read_fd(fd: int, length: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, min(size, length), 0)


# --- children -----------------------------------------------------------------------------------


def chm_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Every file of a CHM (see the module docstring)."""
    entries, content_off, whole = parse_directory(data, ctx)
    broken = not whole
    dedup = Dedup()
    section1: dict[str, Entry] = {}
    for index, entry in enumerate(entries):
        ctx.check_time()
        ctx.note_member(MemberMeta(container=FileType.CHM, name=entry.name, size=entry.length,
                                   compressed_size=None, crc32=None, encrypted=False,
                                   index=index))
        if entry.length == 0 or entry.name.endswith("/"):
            continue
        if entry.section == 1:
            section1[entry.name] = entry
            continue
        if entry.section != 0:
            broken = True
            continue
        start = content_off + entry.offset
        if ctx.skip_oversized(entry.length):
            continue
        content = data[start : start + entry.length]
        if len(content) < entry.length:
            broken = True
        if content and dedup.fresh(content, entry.name):
            ctx.charge_child(len(content))
            yield Child(data=content, name=entry.name, origin="chm")
    if section1:
        try:
            for entry, extracted in _mspack_section1(data, section1, ctx):
                if extracted is None or len(extracted) < entry.length:
                    broken = True
                if extracted and dedup.fresh(extracted, entry.name):
                    ctx.charge_child(len(extracted))
                    yield Child(data=extracted, name=entry.name, origin="chm-lzx")
        except LzxUnavailable:
            ctx.unsupported("CHM", "LZX")
        except _Unreadable:  # a header or directory libmspack refuses: damage
            broken = True
        else:
            if section1:  # listed in our reading of the directory, not in libmspack's
                broken = True
    if broken:
        ctx.broken("CHM")
