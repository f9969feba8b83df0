"""ClamAV signature containers (.cvd, .cld): unpacked and verified exactly as clamscan does.

Layout: a 512-byte header `ClamAV-VDB:<build time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:
<builder>:<stime>` padded with spaces, then a tar archive (gzipped, or plain when it starts
with `COPYING`) of signature files, one of which is a `.info` index.

What is verified (libclamav cvd.c, dsig.c, readdb.c `cli_loadinfo`):

- `.cvd`: the MD5 of everything after the header equals the header's MD5, and the header's
  digital signature `dsig` decrypts (RSA, ClamAV's own base-64 digits) to that MD5
  (`cli_versig`). A `.cld` (a `.cvd` rebuilt locally by freshclam after applying cdiffs)
  skips this step: its header was written by freshclam, not signed.
- Both: the `.info` member must carry a `DSIG:` line, an RSA-PSS/SHA-256 signature over the
  lines before it (`cli_versig2`, with a second key); its `ClamAV-VDB:` line must repeat the
  header's version, signature count, functionality level and build time; and every database
  member must be listed in it with its exact size and SHA-256.

Any failure is a `DatabaseError("can't verify database integrity: <why>")`: a signature
container that cannot be verified is never partly loaded.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from zerohour.errors import DatabaseError

HEADER_SIZE = 512
TAR_BLOCK = 512
#: Largest unpacked container we accept (the official main.cvd unpacks to a few hundred MB).
MAX_UNPACKED = 2 << 30

#: ClamAV's public key for .cvd headers (libclamav/dsig.c CLI_NSTR, CLI_ESTR).
CLAMAV_CVD_N = int(
    "11864099555164534260307000165845318975152777441202774374659940574324314260746414476736"
    "10606406558447497607888900222834249227624889175655510024677711096695981894104346990345"
    "32232228621591089508178591428456220796841621637175567590476666928698770143328137383952"
    "820383197532047771780196576957695822641224262693037")
CLAMAV_CVD_E = 100001027
#: ClamAV's public key for the `.info` DSIG line (libclamav/readdb.c INFO_NSTR, INFO_ESTR).
CLAMAV_INFO_N = int(
    "11088894983048545473659556106627194923928941791795047620591658697413581043322715912172"
    "49680652538105588096452061840022433332053466029923398375534174067950286682990967995573"
    "43913926683783612215242053966310901051516412708572770803107343209516537005089417174191"
    "68723942507890702904702707587451621691050754307850383399865346487203798464178537392211"
    "40278648135982446119723110289541509377039421666632448459393576240846851682663319214082"
    "66679234948220458053478099328484548458869717064243605586678627758760720594377033653802"
    "09101697738577515476935085469455279994113145977994084618328482151013142393373316337519"
    "977244732747977")
CLAMAV_INFO_E = 100002049

#: ClamAV's base-64 digit alphabet for signatures (dsig.c `cli_ndecode`), least significant
#: digit first.
_DIGITS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
_DIGIT_VALUE = {c: i for i, c in enumerate(_DIGITS)}

#: Members checked against the .info index (readdb.h CLI_DBEXT plus .ign/.ign2; suffixes).
_DB_SUFFIXES = (
    ".db", ".hdb", ".hdu", ".fp", ".mdb", ".mdu", ".hsb", ".hsu", ".sfp", ".msb", ".msu",
    ".ndb", ".ndu", ".ldb", ".ldu", ".sdb", ".zmd", ".rmd", ".pdb", ".gdb", ".wdb", ".cbc",
    ".ftm", ".cfg", ".cvd", ".cld", ".cud", ".cdb", ".cat", ".crb", ".idb", ".ioc", ".yar",
    ".yara", ".pwdb", ".ign", ".ign2", ".imp",
)


@dataclass(frozen=True, slots=True)
class RsaKey:
    """A raw RSA public key as ClamAV hard-codes them (modulus and exponent)."""

    n: int
    e: int


@dataclass(frozen=True, slots=True)
class CvdKeys:
    """The two keys a container is verified with: ClamAV's own unless a test injects others."""

    header: RsaKey = RsaKey(CLAMAV_CVD_N, CLAMAV_CVD_E)
    info: RsaKey = RsaKey(CLAMAV_INFO_N, CLAMAV_INFO_E)


CLAMAV_KEYS = CvdKeys()


@dataclass(frozen=True, slots=True)
class CvdHeader:
    """The parsed `ClamAV-VDB:` line (cvd.c `cl_cvdparse`)."""

    time: str
    version: int
    sigs: int
    flevel: int
    md5: str
    dsig: str
    builder: str
    stime: int


@dataclass(frozen=True, slots=True)
class Container:
    """A verified container: its header and its members (name, content) in archive order."""

    header: CvdHeader
    members: tuple[tuple[str, bytes], ...]


def integrity(why: str) -> DatabaseError:
    return DatabaseError(f"can't verify database integrity: {why}")


def _atoi(text: str) -> int:
    """C `atoi`: leading digits (after optional sign), 0 if none."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def parse_header(line: str) -> CvdHeader:
    """`cl_cvdparse`: fields split at runs of ':' (`cli_strtok`); build time, md5, dsig and
    builder are required, `stime` is optional (old format)."""
    if not line.startswith("ClamAV-VDB:"):
        raise integrity("not a ClamAV database container (no ClamAV-VDB header)")
    fields = [f for f in re.split(r":+", line)]
    if fields and fields[-1] == "":
        fields.pop()
    names = ("creation time", "version number", "number of signatures",
             "functionality level", "MD5 checksum", "digital signature", "builder name")
    for i, what in enumerate(names, 1):
        if len(fields) <= i or not fields[i]:
            raise integrity(f"can't parse the {what} in the header")
    return CvdHeader(fields[1], _atoi(fields[2]), _atoi(fields[3]), _atoi(fields[4]),
                     fields[5], fields[6], fields[7],
                     _atoi(fields[8]) if len(fields) > 8 else 0)


def _decode_sig(sig: str, plen: int, key: RsaKey) -> bytes | None:
    """dsig.c `cli_decodesig` (ClamAV 1.x, OpenSSL): digits to an integer, RSA with the public
    key, the result as `plen` big-endian bytes. None on a character outside the alphabet or a
    result longer than `plen` bytes ("Resulting signature too large")."""
    c = 0
    for i, ch in enumerate(sig):
        v = _DIGIT_VALUE.get(ch)
        if v is None:
            return None
        c |= v << (6 * i)
    p = pow(c, key.e, key.n)
    if p.bit_length() > 8 * plen:
        return None
    return p.to_bytes(plen, "big")


def versig(md5_hex: str, dsig: str, key: RsaKey) -> bool:
    """`cli_versig`: the header signature decrypts to the archive's MD5."""
    if len(md5_hex) != 32 or not md5_hex[0].isalnum():
        return False
    plain = _decode_sig(dsig, 16, key)
    return plain is not None and plain.hex() == md5_hex


def versig2(sha256: bytes, dsig: str, key: RsaKey) -> bool:
    """`cli_versig2`: EMSA-PSS (SHA-256, 32-byte salt, 2048-bit block) over `sha256`."""
    pad_len, hash_len, salt_len = 256, 32, 32
    blk_len = pad_len - hash_len - 1
    decoded = _decode_sig(dsig, pad_len, key)
    if decoded is None or decoded[-1] != 0xBC:
        return False
    mask, digest2 = decoded[:blk_len], decoded[blk_len : blk_len + hash_len]
    stream = b"".join(hashlib.sha256(digest2 + i.to_bytes(4, "big")).digest()
                      for i in range((blk_len + hash_len - 1) // hash_len))
    data = bytearray(a ^ b for a, b in zip(stream[:blk_len], mask, strict=True))
    data[0] &= 0x7F
    one = data.find(1)
    if one < 0 or blk_len - (one + 1) != salt_len:
        return False
    salt = bytes(data[one + 1 :])
    return hashlib.sha256(b"\0" * 8 + sha256 + salt).digest() == digest2


def _header_line(data: bytes) -> str:
    """The header as `cli_cvdverify` sees it: 512 bytes, trailing spaces and LFs dropped."""
    head = data[:HEADER_SIZE].split(b"\0", 1)[0].decode("latin-1")
    return head.rstrip(" \n")


class _Stream:
    """The archive part, decompressed on demand (gzip, possibly several members) and bounded."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._gz = not raw.startswith(b"COPYING")
        self._pos = 0
        self._buf = bytearray()
        self._out = 0
        self._z: zlib._Decompress | None = zlib.decompressobj(31) if self._gz else None

    def read(self, n: int) -> bytes:
        if not self._gz:
            chunk = self._raw[self._pos : self._pos + n]
            self._pos += len(chunk)
            return chunk
        while len(self._buf) < n and self._z is not None:
            z = self._z
            try:
                if z.unconsumed_tail:
                    piece = z.decompress(z.unconsumed_tail, 1 << 20)
                elif self._pos < len(self._raw):
                    src = self._raw[self._pos : self._pos + (1 << 20)]
                    self._pos += len(src)
                    piece = z.decompress(src, 1 << 20)
                else:
                    raise integrity("truncated archive (compressed data ends early)")
            except zlib.error as exc:
                raise integrity(f"corrupt compressed archive ({exc})") from None
            self._out += len(piece)
            if self._out > MAX_UNPACKED:
                raise integrity("archive unpacks to more than 2 GiB")
            self._buf += piece
            if z.eof:
                rest = z.unused_data + self._raw[self._pos :]
                self._raw, self._pos = rest, 0
                self._z = zlib.decompressobj(31) if rest.startswith(b"\x1f\x8b") else None
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def _tar_members(raw: bytes, before_read: Callable[[str, int], None]
                 ) -> Iterator[tuple[str, bytes]]:
    """cvd.c `cli_tgzload`'s tar walk: plain files only, no '/' in names, an all-zero name
    block (or the end of data) ends the archive. `before_read(name, size)` may refuse a
    member before its content is decompressed."""
    stream = _Stream(raw)
    while True:
        block = stream.read(TAR_BLOCK)
        if not block:
            return
        if len(block) != TAR_BLOCK:
            raise integrity("incomplete tar block (truncated archive)")
        if block[0] == 0:
            return
        name = block[:100].split(b"\0", 1)[0].decode("latin-1")
        if "/" in name:
            raise integrity(f"slash separators are not allowed in a container ({name!r})")
        kind = block[156:157]
        if kind not in (b"0", b"\0"):
            raise integrity(f"member {name!r} is not a plain file (type {kind!r})")
        m = re.match(rb"\s*([0-7]+)", block[124:136])
        if m is None:
            raise integrity(f"invalid size in the tar header of {name!r}")
        size = int(m.group(1), 8)
        before_read(name, size)
        content = stream.read(size)
        if len(content) != size:
            raise integrity(f"member {name!r} is truncated")
        pad = -size % TAR_BLOCK
        if pad and len(stream.read(pad)) != pad:
            raise integrity(f"member {name!r} is truncated")
        yield name, content


@dataclass(frozen=True, slots=True)
class _InfoEntry:
    size: int
    sha256: bytes


def _check_info(text: bytes, header: CvdHeader, key: RsaKey) -> dict[str, _InfoEntry]:
    """readdb.c `cli_loadinfo` for a signed container: the DSIG line signs the lines before it."""
    entries: dict[str, _InfoEntry] = {}
    info_header: CvdHeader | None = None
    pos = 0
    signed = False
    for raw_line in text.splitlines(keepends=True):
        line = raw_line.decode("latin-1")
        if line.startswith("DSIG:"):
            digest = hashlib.sha256(text[:pos]).digest()
            if not versig2(digest, line[5:].rstrip("\r\n"), key):
                raise integrity("incorrect digital signature in the .info index")
            signed = True
            break
        pos += len(raw_line)
        line = line.rstrip("\r\n")
        if line.startswith("ClamAV-VDB:"):
            if info_header is not None:
                raise integrity(".info index has two ClamAV-VDB lines")
            info_header = parse_header(line)
            continue
        if info_header is None:
            raise integrity(".info index does not start with a ClamAV-VDB line")
        parts = line.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
            raise integrity(f".info index line {line!r} is malformed")
        try:
            entries[parts[0]] = _InfoEntry(int(parts[1]), bytes.fromhex(parts[2]))
        except ValueError:
            raise integrity(f".info index line {line!r} has a malformed SHA-256") from None
    if not signed:
        raise integrity("digital signature not found in the .info index")
    if info_header is None or (info_header.version, info_header.sigs, info_header.flevel,
                               info_header.stime) != (header.version, header.sigs,
                                                      header.flevel, header.stime):
        raise integrity("corrupted header (the .info index describes another version)")
    return entries


def unpack(data: bytes, *, cld: bool, keys: CvdKeys = CLAMAV_KEYS) -> Container:
    """Verify and unpack one container (raises `DatabaseError` on any integrity failure)."""
    if len(data) < HEADER_SIZE:
        raise integrity("can't read the 512-byte header (file too short)")
    header = parse_header(_header_line(data))
    archive = data[HEADER_SIZE:]
    if not cld:
        md5 = hashlib.md5(archive, usedforsecurity=False).hexdigest()
        if md5 != header.md5[:32] or len(header.md5) < 32:
            raise integrity("MD5 of the archive does not match the header")
        if not versig(md5, header.dsig, keys.header):
            raise integrity("bad digital signature in the header")
    if len(archive) < 7:
        raise integrity("truncated archive")
    # The .info index comes first in ClamAV's containers: once it is verified, a member it
    # does not list, or lists with another size, is refused before it is decompressed (a
    # .cld's header is not signed, so its archive could otherwise be a bomb).
    found: dict[str, dict[str, _InfoEntry]] = {}

    def before_read(name: str, size: int) -> None:
        index = found.get("index")
        if index is None or not size or not name.lower().endswith(_DB_SUFFIXES):
            return
        entry = index.get(name)
        if entry is None:
            raise integrity(f"{name} is not listed in the .info index")
        if entry.size != size:
            raise integrity(f"invalid checksum for {name}")

    members: list[tuple[str, bytes]] = []
    for name, content in _tar_members(archive, before_read):
        members.append((name, content))
        if "index" not in found and name.lower().endswith(".info"):
            found["index"] = _check_info(content, header, keys.info)
    if "index" not in found:
        raise integrity("no .info index in the container")
    index = found["index"]
    for name, content in members:
        if not name.lower().endswith(_DB_SUFFIXES) or not content:
            continue  # COPYING and the like; ClamAV checks only what it loads
        entry = index.get(name)
        if entry is None:
            raise integrity(f"{name} is not listed in the .info index")
        if entry.size != len(content) or entry.sha256 != hashlib.sha256(content).digest():
            raise integrity(f"invalid checksum for {name}")
    return Container(header, tuple(members))
