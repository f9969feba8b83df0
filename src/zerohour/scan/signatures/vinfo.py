"""PE version-information strings, where .ldb `VI:` subsignatures must start.

libclamav pe.c (`cli_peheader`, `findres`, `versioninfo_cb`): every RT_VERSION (16) resource
(at most 16), its VS_VERSIONINFO block (key and fixed-info magic checked), the StringFileInfo
block (one VarFileInfo before it is skipped), every StringTable, and in each every String with
a non-empty value: the file offset of its UTF-16 key is a place a `VI` subsignature may start
(so `VI:` signatures spell `key\\0\\0value`). The walk keeps ClamAV's size rules and early
exits, so the same malformed files yield the same offsets.
"""

from __future__ import annotations

import struct

from zerohour.scan import pe
from zerohour.scan.signatures.imp import Layout, layout, rawaddr

_RT_VERSION = 0x10
_MAX_RESOURCES = 16
_VS_KEY = "VS_VERSION_INFO\0".encode("utf-16-le")
_SFI_KEY = "StringFileInfo\0".encode("utf-16-le")
_VFI_KEY = "VarFileInfo\0".encode("utf-16-le")


def _u16(data: bytes, off: int) -> int | None:
    return struct.unpack_from("<H", data, off)[0] if off >= 0 and off + 2 <= len(data) else None


def _u32(data: bytes, off: int) -> int | None:
    return struct.unpack_from("<I", data, off)[0] if off >= 0 and off + 4 <= len(data) else None


def _version_rvas(data: bytes, info: pe.PEInfo, lay: Layout, res_rva: int) -> list[int]:
    """`findres(0x10, any name)`: the data-entry RVAs of every RT_VERSION resource."""
    n = len(data)

    def need(rva: int) -> int | None:
        off = rawaddr(rva, info, lay.hdr_size, n)
        return off if off is not None and off + 16 <= n else None

    out: list[int] = []
    root = need(res_rva)
    if root is None:
        return out
    type_cnt = _u16(data, root + 12) or 0
    entry = root + 16 + type_cnt * 8  # RT_VERSION is an ID: skip the named entries
    type_cnt = _u16(data, root + 14) or 0
    for _ in range(type_cnt):
        typ, offs = _u32(data, entry), _u32(data, entry + 4)
        if typ is None or offs is None:
            return out
        if typ == _RT_VERSION and offs >> 31:
            names = need(res_rva + (offs & 0x7FFFFFFF))
            if names is None:
                return out
            name_cnt = ((_u16(data, names + 12) or 0) + (_u16(data, names + 14) or 0)) & 0xFFFF
            name_entry = names + 16
            for _ in range(name_cnt):
                noffs = _u32(data, name_entry + 4)
                if noffs is None:
                    return out
                if noffs >> 31:
                    langs = need(res_rva + (noffs & 0x7FFFFFFF))
                    if langs is None:
                        return out
                    lang_cnt = ((_u16(data, langs + 12) or 0)
                                + (_u16(data, langs + 14) or 0)) & 0xFFFF
                    lang_entry = langs + 16
                    for _ in range(lang_cnt):
                        loffs = _u32(data, lang_entry + 4)
                        if loffs is None:
                            return out
                        if not loffs >> 31:
                            out.append((res_rva + loffs) & 0xFFFFFFFF)
                            if len(out) == _MAX_RESOURCES:
                                return out
                        lang_entry += 8
                name_entry += 8
            return out  # ClamAV stops after the first RT_VERSION type entry
        entry += 8
    return out


def version_offsets(data: bytes, info: pe.PEInfo) -> frozenset[int]:
    """File offsets of the version-information string keys (ClamAV's `vinfo` set)."""
    lay = layout(data, info)
    if lay is None or len(lay.dirs) < 3 or not lay.dirs[2][1]:
        return frozenset()
    n = len(data)
    found: set[int] = set()
    for entry_rva in _version_rvas(data, info, lay, lay.dirs[2][0]):
        entry = rawaddr(entry_rva, info, lay.hdr_size, n)
        if entry is None or entry + 16 > n:
            continue
        rva, res_sz = struct.unpack_from("<II", data, entry)
        start = rawaddr(rva, info, lay.hdr_size, n)
        if start is None or start + res_sz > n:
            continue
        _walk_versioninfo(data, start, res_sz, found)
    return frozenset(found)


def _walk_versioninfo(data: bytes, vptr: int, res_sz: int, found: set[int]) -> None:
    if res_sz <= 4:
        return
    head = _u32(data, vptr) or 0
    vinfo_sz, val_sz = head & 0xFFFF, head >> 16
    if vinfo_sz > res_sz:
        return
    if (vinfo_sz <= 6 + 0x20 + 2 + 0x34 or val_sz != 0x34
            or data[vptr + 6 : vptr + 6 + 0x20] != _VS_KEY
            or _u32(data, vptr + 0x28) != 0xFEEF04BD):
        return
    vptr += 6 + 0x20 + 2 + 0x34
    vinfo_sz -= 6 + 0x20 + 2 + 0x34
    got_varfileinfo = False
    while vinfo_sz > 6:
        sfi_sz = (_u32(data, vptr) or 0) & 0xFFFF
        if sfi_sz > vinfo_sz:
            return
        if (not got_varfileinfo and sfi_sz > 6 + 0x18
                and data[vptr + 6 : vptr + 6 + 0x18] == _VFI_KEY):
            vptr += sfi_sz
            vinfo_sz -= sfi_sz
            got_varfileinfo = True
            continue
        if sfi_sz <= 6 + 0x1E or data[vptr + 6 : vptr + 6 + 0x1E] != _SFI_KEY:
            return
        vptr += 6 + 0x1E
        sfi_sz -= 6 + 0x1E
        while sfi_sz > 6:
            st_sz = (_u32(data, vptr) or 0) & 0xFFFF
            next_vptr, next_sfi_sz = vptr + st_sz, sfi_sz - st_sz
            if st_sz > sfi_sz or st_sz <= 24:
                break
            vptr += 24
            st_sz -= 24
            while st_sz > 6:
                s_sz = (((_u32(data, vptr) or 0) & 0xFFFF) + 3) & ~3
                if s_sz > st_sz or s_sz <= 6 + 2 + 8:
                    st_sz = sfi_sz = 0
                    break
                key = 6
                while key + 1 < s_sz:
                    if vptr + key + 1 >= len(data) or (data[vptr + key] or data[vptr + key + 1]):
                        key += 2
                        continue
                    key += 2
                    break
                key = (key + 3) & ~3
                if key >= s_sz or s_sz - key <= 2:  # key overflow, or an unset value
                    vptr += s_sz
                    st_sz -= s_sz
                    continue
                found.add(vptr + 6)
                vptr += s_sz
                st_sz -= s_sz
            vptr = next_vptr
            sfi_sz = next_sfi_sz if sfi_sz else 0
        return
