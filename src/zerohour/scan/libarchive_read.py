"""A minimal, bounded reader over libarchive's C API (through libarchive-c's loaded library).

libarchive-c's own iterators log every `ARCHIVE_WARN` and raise on the rest; a scanner needs the
return codes themselves (a warning at the end of an entry is a CRC mismatch, a failure on one
entry may leave its siblings readable), so this module declares its own prototypes on the same
shared library (fresh function objects: libarchive-c's are left untouched).

Everything is read from memory, and content only through `Reader.read_block`, one block as
the format decodes it (a CAB or 7z buffer, an LHA window, a RAR window): libarchive calls
cannot be interrupted, so each one must stay short. `Reader.next`
never asks libarchive to skip unread content (the caller reads or drains every entry), since
skipping a member of a solid 7z or RAR block decodes all of it in one call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from libarchive import ffi

OK = 0
EOF = 1
RETRY = -10
WARN = -20
FAILED = -25
FATAL = -30

_IFMT = 0o170000
_IFDIR = 0o040000
_IFREG = 0o100000

_lib = ffi.libarchive


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    f = _lib[name]  # a new function object (indexing does not cache, unlike getattr)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_vp = ctypes.c_void_p
_read_new = _fn("archive_read_new", _vp)
_read_free = _fn("archive_read_free", ctypes.c_int, _vp)
_open_memory = _fn("archive_read_open_memory", ctypes.c_int, _vp, _vp, ctypes.c_size_t)
_next_header2 = _fn("archive_read_next_header2", ctypes.c_int, _vp, _vp)
_read_data_block = _fn("archive_read_data_block", ctypes.c_int, _vp, ctypes.POINTER(_vp),
                       ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_int64))
_error_string = _fn("archive_error_string", ctypes.c_char_p, _vp)
_set_options = _fn("archive_read_set_options", ctypes.c_int, _vp, ctypes.c_char_p)
_format_name = _fn("archive_format_name", ctypes.c_char_p, _vp)
_entry_new = _fn("archive_entry_new", _vp)
_entry_free = _fn("archive_entry_free", None, _vp)
_entry_pathname_utf8 = _fn("archive_entry_pathname_utf8", ctypes.c_char_p, _vp)
_entry_pathname = _fn("archive_entry_pathname", ctypes.c_char_p, _vp)
_entry_size = _fn("archive_entry_size", ctypes.c_int64, _vp)
_entry_size_is_set = _fn("archive_entry_size_is_set", ctypes.c_int, _vp)
_entry_filetype = _fn("archive_entry_filetype", ctypes.c_uint, _vp)
_entry_is_encrypted = _fn("archive_entry_is_encrypted", ctypes.c_int, _vp)
_entry_hardlink = _fn("archive_entry_hardlink", ctypes.c_char_p, _vp)
_entry_symlink = _fn("archive_entry_symlink", ctypes.c_char_p, _vp)


_SUPPORT: dict[str, Any] = {}


def _support(fmt: str) -> Any:
    if fmt not in _SUPPORT:
        _SUPPORT[fmt] = _fn(f"archive_read_support_format_{fmt}", ctypes.c_int, _vp)
    return _SUPPORT[fmt]


class LibarchiveError(Exception):
    """libarchive refused an operation: `code` is its return code, `message` its text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Entry:
    """What libarchive's header says about one entry."""

    name: str | None
    size: int | None
    is_dir: bool
    is_regular: bool
    is_link: bool
    encrypted: bool


class Reader:
    """One archive opened from memory (see `open_memory`)."""

    def __init__(self, archive: int, data: bytes) -> None:
        self._a = archive
        self._data = data  # libarchive reads this buffer in place: keep it alive
        self._entry = _entry_new()
        self._ptr = _vp()
        self._size = ctypes.c_size_t()
        self._offset = ctypes.c_int64()

    def close(self) -> None:
        _entry_free(self._entry)
        _read_free(self._a)

    def error(self) -> str:
        msg = _error_string(self._a)
        return msg.decode("utf-8", "replace") if msg else ""

    @property
    def format_name(self) -> str:
        name = _format_name(self._a)
        return name.decode("ascii", "replace") if name else ""

    def next(self) -> tuple[int, Entry | None]:
        """(return code, entry): code OK or WARN with an entry, EOF, or an error code."""
        r = _next_header2(self._a, self._entry)
        if r not in (OK, WARN):
            return r, None
        e = self._entry
        raw = _entry_pathname_utf8(e) or _entry_pathname(e)
        name = raw.decode("utf-8", "replace") if raw else None
        ftype = _entry_filetype(e) & _IFMT
        size = _entry_size(e) if _entry_size_is_set(e) else None
        link = bool(_entry_hardlink(e) or _entry_symlink(e))
        return r, Entry(name, size, ftype == _IFDIR, ftype in (_IFREG, 0), link,
                        bool(_entry_is_encrypted(e)))

    def read_block(self, limit: int) -> tuple[int, bytes]:
        """The next block libarchive decoded for the current entry, at most `limit` bytes of
        it (a stored member's block can be the whole member; past the scan's bounds the rest
        is not needed): (code, bytes). Code EOF at the entry's end, OK with a block (possibly
        empty), or a negative code (WARN, FAILED, FATAL) without data. Unlike
        `archive_read_data`, this never drops a block decoded just before a warning."""
        r = _read_data_block(self._a, ctypes.byref(self._ptr), ctypes.byref(self._size),
                             ctypes.byref(self._offset))
        n = min(self._size.value, max(0, limit))
        if r == WARN and n and self._ptr.value:
            r = OK
        if r != OK:
            return r, b""
        return OK, ctypes.string_at(self._ptr.value, n) if n and self._ptr.value else b""


@contextmanager
def open_memory(data: bytes, formats: tuple[str, ...], offset: int = 0,
                options: str = "") -> Iterator[Reader]:
    """An archive reader over `data[offset:]` (read in place, no copy) for the named formats
    only (no filters: a container is opened as the type it was detected as). Raises
    `LibarchiveError` if none bids."""
    a = _read_new()
    if not a:
        raise MemoryError("archive_read_new")
    reader = Reader(a, data)
    try:
        for fmt in formats:
            _support(fmt)(a)
        if options and _set_options(a, options.encode()) != OK:
            raise LibarchiveError(FATAL, f"options {options!r}: {reader.error()}")
        base = ctypes.cast(ctypes.c_char_p(data), _vp).value or 0
        r = _open_memory(a, base + offset, len(data) - offset)
        if r != OK:
            raise LibarchiveError(r, reader.error())
        yield reader
    finally:
        reader.close()
