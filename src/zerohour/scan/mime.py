"""A lenient MIME walker that scans every interpretation a mail client could plausibly make.

Why not `email`: its one parse is one interpretation, and attackers build mail that parses one
way in the scanner and another way in the client (duplicate or conflicting headers, odd or
RFC 2231-encoded boundaries, missing blank lines, bare CR/LF line ends, broken base64, content
after the closing boundary, multipart without a boundary...). This walker parses once, cheaply,
and forks only where it actually sees an ambiguity:

- line ends: LF-or-CRLF always; bare-CR-as-line-end when bare CRs occur; CRLF-only when CRLF and
  bare LF are mixed;
- headers: every Content-Type / Content-Transfer-Encoding occurrence (first, last, all), folded
  values unfolded both the RFC way and with the fold's whitespace removed;
- boundaries: every `boundary` parameter (quoted, unquoted, raw, RFC 2231 `boundary*`/`*0*`),
  a `boundary=` found anywhere in the header, and inferred `--xyz` lines when none match;
  delimiters matched strictly and, when that finds more, by prefix; parts after the closing
  delimiter and a missing closing delimiter are both handled;
- bodies: every declared transfer encoding, lenient base64 variants, base64 when an undeclared
  or unknown encoding hides a base64 body, multipart bodies that carry a (forbidden) encoding;
- nested message/rfc822 (also base64-encoded), and uuencode / yEnc blocks inside text parts.

Leaves (decoded bodies, text bodies included so that body signatures match) are yielded once
each, deduplicated by content digest.
"""

from __future__ import annotations

import binascii
import codecs
import collections
import functools
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import ebcdic  # type: ignore[import-untyped]  # registers the EBCDIC codecs Python lacks

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import encodings, joins, mhtml, scripted, textcarriers
from zerohour.scan.filetype import looks_like_mail
from zerohour.scan.gates import Gate
from zerohour.scan.limits import MAX_FILES, ScanContext
from zerohour.scan.rfc2047 import decoded_words
from zerohour.scan.types import Child, FileType

_HNAME = re.compile(rb"([!-9;-~]+)[ \t]*:")
_MAX_BOUNDARIES = 8
_MAX_INFERRED = 3
_CACHE_MAX_VALUE = 1024  # header values longer than this are parsed without the caches


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How lines end under one interpretation."""

    name: str
    eol: re.Pattern[bytes]
    bol: bytes  # regex lookbehind for "at the start of a line"


_LF = _Dialect("lf", re.compile(rb"\r?\n"), rb"(?:(?<=\n)|\A)")
_ANY = _Dialect("any", re.compile(rb"\r\n|\n|\r"), rb"(?:(?<=\n)|(?<=\r)|\A)")
_CRLF = _Dialect("crlf", re.compile(rb"\r\n"), rb"(?:(?<=\r\n)|\A)")


_BARE_CR = re.compile(rb"\r(?!\n)")


def dialects_for(data: bytes) -> tuple[_Dialect, ...]:
    """The line-end interpretations worth parsing `data` under (usually just one)."""
    cr = data.count(b"\r")
    if not cr:
        return (_LF,)  # no CR at all: neither bare CRs nor CRLF (one cheap count)
    # Without a bare CR every CR starts a CRLF (a literal-prefix regex scan beats count(CRLF)).
    crlf = data.count(b"\r\n") if _BARE_CR.search(data) else cr
    out = [_LF]
    if cr > crlf:
        out.append(_ANY)
    if crlf and data.count(b"\n") > crlf:
        out.append(_CRLF)
    return tuple(out)


@dataclass(slots=True)
class _Header:
    name: bytes
    segments: list[bytes]

    def values(self) -> list[str]:
        """The unfolded value, RFC style, and with fold whitespace removed when folded."""
        first = self.segments[0].decode("latin-1")
        if len(self.segments) == 1:
            return [first.strip()]
        rest = [s.decode("latin-1") for s in self.segments[1:]]
        rfc = (first + "".join(rest)).strip()
        tight = (first.rstrip() + "".join(r.strip() for r in rest)).strip()
        return [rfc] if rfc == tight else [rfc, tight]


def split_headers(data: bytes, d: _Dialect = _LF) -> tuple[list[_Header], int]:
    """Parse a header block: (headers, offset of the body).

    The block ends at the first empty line, or (missing blank line) at the first line that is
    neither a header nor a continuation, which then starts the body.
    """
    headers: list[_Header] = []
    pos = 0
    n = len(data)
    first = True
    while pos < n:
        m = d.eol.search(data, pos)
        if m is None:
            line, nxt = data[pos:], n
        else:
            line, nxt = data[pos : m.start()], m.end()
        if not line:
            return headers, nxt
        if line[0] in (32, 9):
            if headers:
                headers[-1].segments.append(line)
                pos = nxt
                continue
            return headers, pos
        hm = _HNAME.match(line)
        if hm is None:
            if first and line.startswith(b"From "):
                pos = nxt
                first = False
                continue
            return headers, pos
        first = False
        headers.append(_Header(hm.group(1).lower(), [line[hm.end() :]]))
        pos = nxt
    return headers, n


def _header_values(headers: list[_Header], name: bytes) -> list[str]:
    """Every distinct value of header `name`, in order (a dict: thousands of repeated headers
    cost linear time, not a list scan per value)."""
    out: dict[str, None] = {}
    for h in headers:
        if h.name == name:
            for v in h.values():
                out[v] = None
    return list(out)


# --- parameters ------------------------------------------------------------------------------


def _split_params(value: str) -> list[str]:
    """Split at `;` outside quotes; drop RFC 822 comments outside quotes."""
    if "(" in value or "\\" in value:
        return _split_params_scan(value)
    # No comments, no escapes (the usual header): quotes simply alternate, so split the
    # unquoted stretches with C-level str.split; same result as the character scan.
    # (pieces joined once per part: `+=` on the growing part copied it for every quote,
    # quadratic in a parameter of 280 KB of quotes, round 4 of the CPU hunt)
    parts: list[list[str]] = [[]]
    for i, seg in enumerate(value.split('"')):
        if i:
            parts[-1].append('"')
        if i % 2:
            parts[-1].append(seg)
        else:
            first, *rest = seg.split(";")
            parts[-1].append(first)
            parts.extend([r] for r in rest)
    return ["".join(p) for p in parts]


def _split_params_scan(value: str) -> list[str]:
    """`_split_params` one character at a time (comments, escapes)."""
    parts: list[str] = []
    cur: list[str] = []
    inq = esc = False
    depth = 0
    for ch in value:
        if inq:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                inq = False
            continue
        if depth:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            continue
        if ch == '"':
            inq = True
            cur.append(ch)
        elif ch == "(":
            depth = 1
        elif ch == ";":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unquote(raw: str) -> str:
    if not raw.startswith('"'):
        return raw
    if "\\" not in raw:
        return raw[1:].partition('"')[0]  # no escapes: up to the closing quote (same result)
    out: list[str] = []
    esc = False
    for ch in raw[1:]:
        if esc:
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == '"':
            break
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Params:
    main: str
    items: tuple[tuple[str, str, str], ...]  # (name, value, raw value)

    def get_all(self, key: str) -> list[str]:
        """Every value of `key`: plain occurrences (unquoted and raw) then RFC 2231 forms."""
        out: dict[str, None] = {}  # ordered and linear, for headers repeating a parameter
        for name, value, raw in self.items:
            if name == key:
                words = raw.split()
                for v in (value, value.strip(), raw.strip(), words[0] if words else ""):
                    if v:
                        out[v] = None
        ext = self._rfc2231(key)
        if ext:
            out[ext] = None
        return list(out)

    def _rfc2231(self, key: str) -> str | None:
        star = key + "*"
        if not any(n.startswith(star) for n, _, _ in self.items):
            return None  # no `key*` or `key*N` parameter (the usual case: skip the regexes)
        single = [v for n, v, _ in self.items if n == star]
        if single:
            return _decode_2231(single[0], first=True)
        pieces: dict[int, tuple[str, bool]] = {}
        for name, value, _ in self.items:
            m = re.fullmatch(re.escape(key) + r"\*(\d{1,3})(\*?)", name)
            if m:
                pieces.setdefault(int(m.group(1)), (value, bool(m.group(2))))
        if not pieces:
            return None
        out: list[str] = []
        for i in sorted(pieces):
            value, starred = pieces[i]
            out.append(_decode_2231(value, first=i == min(pieces)) if starred else value)
        return "".join(out)


#: Codecs Python resolves for a charset name that are no character sets: they transform text
#: (IDNA labels, escapes) and raise on ordinary bytes. Bytes-to-bytes codecs (hex, rot13, zlib,
#: base64...) are refused by `_is_text_encoding`.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})


#: Labels that browsers (WHATWG) and Windows clients know and Python does not.
_CHARSET_ALIASES = {
    "unicode": "utf-16-le", "ucs-2": "utf-16-le", "ucs2": "utf-16-le", "csunicode": "utf-16-le",
    "iso-10646-ucs-2": "utf-16-le", "unicodefeff": "utf-16-le", "unicodefffe": "utf-16-be",
    "x-unicode20utf8": "utf-8", "unicode-2-0-utf-8": "utf-8",
    # WHATWG labels browsers know and Python does not (the Encoding standard's table)
    "x-x-big5": "big5hkscs", "cn-big5": "big5hkscs", "csbig5": "big5hkscs", "big5": "big5hkscs",
    "windows-949": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601-1989": "cp949",
    "csksc56011987": "cp949", "ksc5601": "cp949", "ksc_5601": "cp949", "korean": "cp949",
    "iso-ir-149": "cp949", "euc-kr": "cp949", "cseuckr": "cp949",
    "x-gbk": "gbk", "csgb2312": "gbk", "gb2312": "gbk", "chinese": "gbk", "iso-ir-58": "gbk",
    "gb_2312": "gbk", "gb_2312-80": "gbk",
    "x-sjis": "cp932", "windows-31j": "cp932", "ms932": "cp932", "ms_kanji": "cp932",
    "csshiftjis": "cp932", "shift_jis": "cp932", "sjis": "cp932",
}


#: IBM code pages by number ("IBM1047", "ibm-277", "csIBM277", "CP1047"): the EBCDIC ones
#: Python lacks come from the `ebcdic` package (round 9: IBM1047 and IBM277 text passed raw).
_IBM_NAME = re.compile(r"(?:cs)?(?:ibm|cp)[-_]?0*(\d{2,4})")
_IANA_EBCDIC = {"ebcdic-cp-dk": "cp277", "ebcdic-cp-no": "cp277", "ebcdic-cp-fi": "cp278",
                "ebcdic-cp-se": "cp278", "ebcdic-cp-it": "cp280", "ebcdic-cp-es": "cp284",
                "ebcdic-cp-gb": "cp285", "ebcdic-cp-fr": "cp297", "ebcdic-cp-is": "cp871",
                "ebcdic-cp-us": "cp037", "ebcdic-cp-ca": "cp037", "ebcdic-cp-nl": "cp037",
                "ebcdic-cp-wt": "cp037", "ebcdic-cp-be": "cp500", "ebcdic-cp-ch": "cp500",
                "ebcdic-de-273+euro": "cp1141"}


def _ibm_codec(lower: str) -> str | None:
    if lower in _IANA_EBCDIC:
        return _IANA_EBCDIC[lower]
    m = _IBM_NAME.fullmatch(lower)
    if m is None:
        return None
    codec = f"cp{int(m.group(1)):03d}"
    return codec if codec in ebcdic.codec_names else None


@functools.lru_cache(maxsize=256)
def _charset(name: str) -> str:
    """The codec for a declared charset: a real text charset, else latin-1 (never raises)."""
    name = name.strip().strip("\"'")
    name = _CHARSET_ALIASES.get(name.lower(), name)
    name = _ibm_codec(name.lower()) or name
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError, UnicodeError):
        return "latin-1"
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return "latin-1"
    return info.name


def decode_text(raw: bytes, charset: str | None) -> str:
    """`raw` in the declared `charset`, leniently: an unknown, non-text or failing charset falls
    back to latin-1. Never raises (a header's charset is the sender's choice)."""
    codec = _charset(charset or "utf-8")
    try:
        return raw.decode(codec, "replace")
    except (UnicodeError, LookupError, ValueError, TypeError):
        return raw.decode("latin-1")


_PRINTABLE = bytes(range(32, 127)).decode("ascii")


#: Multibyte charsets whose trail bytes may be ASCII (Shift_JIS's ideographic space is
#: "\x81@", a GB18030 character may hold digits, ISO-2022 writes kanji as ASCII pairs): a
#: separator in them is ASCII to a byte reader and garbles base64 it cuts, while a recipient
#: copying the text sees one character. Their text gets a UTF-8 leaf too.
_ASCII_TRAIL_CODECS = frozenset({
    "shift_jis", "cp932", "shift_jisx0213", "shift_jis_2004", "big5", "big5hkscs", "cp950",
    "gbk", "gb18030", "cp936", "cp949", "johab", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2",
    "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext", "iso2022_kr", "hz",
    # EUC: no ASCII inside a character, but text dense in them sniffs as binary (no text
    # carriers): the UTF-8 leaf is text
    "euc_kr", "euc_jp", "euc_jis_2004", "euc_jisx0213", "gb2312",
})


@functools.lru_cache(maxsize=256)
def foreign_charset(name: str) -> str | None:
    """The codec of a declared charset that does not write ASCII as ASCII (UTF-16/32, UTF-7,
    EBCDIC...) or whose multibyte characters may hold ASCII bytes (`_ASCII_TRAIL_CODECS`),
    else None: text in it hides from byte signatures and text carriers unless decoded."""
    codec = _charset(name)
    if codec == "latin-1":
        return None  # unknown or not a charset (or latin-1 itself: ASCII as ASCII)
    try:
        if codecs.lookup(codec).name in _ASCII_TRAIL_CODECS:
            return codec
    except LookupError:
        return None
    try:
        same = _PRINTABLE.encode(codec) == _PRINTABLE.encode("ascii")
    except (UnicodeError, LookupError, ValueError, TypeError):
        return None
    return None if same else codec


def _decode_2231(value: str, *, first: bool) -> str:
    charset = "utf-8"
    if first and value.count("'") >= 2:
        charset, _lang, value = value.split("'", 2)
    try:
        raw = unquote_to_bytes(value)
    except (ValueError, UnicodeError):  # pragma: no cover - unquote is lenient
        raw = value.encode("latin-1", "replace")
    return decode_text(raw, charset or "utf-8")


def parse_params(value: str) -> _Params:
    """Media type and parameters of a header value (cached when short: walks ask for the same
    values again and again; long hostile values are not kept alive by the cache)."""
    if len(value) <= _CACHE_MAX_VALUE:
        return _parse_params_cached(value)
    return _parse_params(value)


@functools.lru_cache(maxsize=4096)
def _parse_params_cached(value: str) -> _Params:
    return _parse_params(value)


def _parse_params(value: str) -> _Params:
    parts = _split_params(value)
    main = parts[0].strip().strip('"').lower()
    main = re.sub(r"\s+", "", main)
    items: list[tuple[str, str, str]] = []
    for p in parts[1:]:
        if "=" not in p:
            continue
        name, _, raw = p.partition("=")
        raw = raw.strip()
        items.append((name.strip().lower(), _unquote(raw), raw))
    return _Params(main, tuple(items))


_BOUNDARY_ANYWHERE = re.compile(r"""boundary\s*=\s*(?:"([^"]*)"?|'([^']*)'|([^\s;,"]+))""", re.I)


def _boundary_candidates(values: list[str]) -> list[bytes]:
    # Every candidate comes from a parameter name or text holding "boundary" (any case).
    if not any("boundary" in v.lower() for v in values):
        return []
    if sum(map(len, values)) <= _CACHE_MAX_VALUE:
        return list(_boundary_candidates_cached(tuple(values)))
    return list(_boundary_candidates_uncached(tuple(values)))


@functools.lru_cache(maxsize=4096)
def _boundary_candidates_cached(values: tuple[str, ...]) -> tuple[bytes, ...]:
    return _boundary_candidates_uncached(values)


def _boundary_candidates_uncached(values: tuple[str, ...]) -> tuple[bytes, ...]:
    out: list[bytes] = []

    def add(b: str) -> bool:
        """Add a candidate; False once enough are kept (only the first few count, so a header
        repeating `boundary=` thousands of times stays linear)."""
        if len(out) >= _MAX_BOUNDARIES:
            return False
        if not b or len(b) > 200:
            return True
        for cand in (b, b.rstrip()):
            raw = cand.encode("latin-1", "replace")
            if raw and raw not in out:
                out.append(raw)
        return True

    for v in values:
        if not all(add(b) for b in parse_params(v).get_all("boundary")):
            break
        if not all(add(next(g for g in m.groups() if g is not None))
                   for m in _BOUNDARY_ANYWHERE.finditer(v)):
            break
    out = out[:_MAX_BOUNDARIES]
    if len(out) == _MAX_BOUNDARIES:
        # Clients take the first or the last parameter of the first or the last header: decoy
        # boundaries in front (present in the body, so they split something) must not push
        # a last one out. Those are kept past the cap.
        tail: list[str] = []
        for v in dict.fromkeys((values[0], values[-1])):
            tail += parse_params(v).get_all("boundary")[-4:]
            final = collections.deque(_BOUNDARY_ANYWHERE.finditer(v), maxlen=1)
            if final:
                tail.append(next(g for g in final[0].groups() if g is not None))
        for b in tail:
            for cand in (b, b.rstrip()):
                raw = cand.encode("latin-1", "replace")
                if raw and len(raw) <= 200 and raw not in out:
                    out.append(raw)
    return tuple(out)


# --- encodings --------------------------------------------------------------------------------

_KNOWN_CTE = {"7bit", "8bit", "binary", "base64", "quoted-printable"}
_UU_CTE = {"x-uuencode", "uuencode", "x-uue", "uue", "x-uu"}


def _cte_tokens(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        tok = re.split(r"[;\s(]", _split_params(v)[0].strip().strip("\"'"), maxsplit=1)[0].lower()
        tok = tok.strip("\"'")
        if tok in _UU_CTE:
            tok = "uuencode"
        elif tok not in _KNOWN_CTE:
            if "base64" in tok or "b64" in tok:
                tok = "base64"
            elif "quoted" in tok or tok == "qp":
                tok = "quoted-printable"
            elif "uu" in tok:
                tok = "uuencode"
            else:
                tok = "unknown"
        if tok not in out:
            out.append(tok)
    # Every distinct kind (at most seven: each decodes once), not the first few: five decoy
    # headers in front must not push the last `Content-Transfer-Encoding: base64` out.
    return out or ["7bit"]


_QP_HINT = re.compile(rb"=[0-9A-Fa-f]{2}|=\r?\n")
_QP_ODD_SOFT = re.compile(rb"=\r(?!\n)|=[ \t]+[\r\n]")


def decode_body(
    body: bytes, ctes: list[str], check: encodings.Check = None
) -> list[tuple[str, bytes]]:
    """Every plausible decoding of `body` under the declared encodings, deduplicated."""
    out: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()

    def add(label: str, data: bytes) -> None:
        if data not in seen:
            seen.add(data)
            out.append((label, data))

    for cte in ctes:
        if cte == "base64":
            for i, v in enumerate(encodings.base64_variants(body, check)):
                add("base64" if i == 0 else f"base64#{i}", v)
        elif cte == "quoted-printable":
            decoded = encodings.qp_decode(body)
            add("quoted-printable", decoded)
            if b"\x00" in decoded and b"\r\n" in body:
                # Binary in quoted-printable: its hard line breaks are the file's newline
                # bytes, CRLF on the wire but LF in the mailbox that stores it (Maildir,
                # mbox): Python's email and mutt then decode them to LF.
                add("quoted-printable/lf", encodings.qp_decode(body.replace(b"\r\n", b"\n")))
            if _QP_ODD_SOFT.search(body):
                # "=\r" before anything but LF, or "=" and spaces before a line end: Python's
                # email (binascii) drops "=\r" and the rest of its line, and keeps "= \n" as
                # text; the bytes it decodes are scanned too.
                add("quoted-printable/python", binascii.a2b_qp(body))
        elif cte == "uuencode":
            for i, v in enumerate(encodings.uudecode_variants(body, check)):
                add("uuencode" if i == 0 else f"uuencode#{i}", v)
        else:
            add(cte, body)
            if cte == "unknown" and _QP_HINT.search(body):
                add("quoted-printable?", encodings.qp_decode(body))
    if "base64" not in ctes and encodings.looks_base64(body):
        for i, v in enumerate(encodings.base64_variants(body, check)):
            add(f"base64?{i}", v)
    return out


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words; any charset or encoding trouble keeps the raw text."""
    if "=?" not in value:
        return value
    try:
        parts = decoded_words(value)
    except Exception:  # HeaderParseError, binascii.Error, UnicodeError...: hostile text
        return value
    out: list[str] = []
    for text, charset in parts:
        out.append(decode_text(text, charset or "latin-1") if isinstance(text, bytes) else text)
    return "".join(out)


_MIN_HEADER_WORDS = 32  # decoded bytes: a short encoded file name or subject carries no file


def _header_words(headers: list[_Header]) -> bytes:
    """The bytes the RFC 2047 encoded words of a header block carry (any header: a client
    shows them, Python's `decode_header` gives them back), one line per header whose words
    carry `_MIN_HEADER_WORDS` bytes or more; b"" when none does. A payload cut into words
    (`X-Note: =?utf-8?b?WDVP...?= =?utf-8?b?...?=`) is whole here."""
    out: list[bytes] = []
    for h in headers:
        if not any(b"=?" in seg for seg in h.segments):
            continue
        for value in h.values()[:1]:
            if "?=" not in value:
                continue
            try:
                parts = decoded_words(value)
            except Exception:  # HeaderParseError, binascii.Error...: no client decodes it
                parts = []  # either (the header's own bytes are scanned with the part)
            words = sum(len(p) for p, charset in parts if charset)
            if words >= _MIN_HEADER_WORDS:
                out.append(b"".join(p if isinstance(p, bytes) else p.encode("latin-1")
                                    for p, _ in parts))
    return b"\n".join(out)


# --- the walker --------------------------------------------------------------------------------


def _digest(data: bytes) -> tuple[int, int]:
    """Identity of content for deduplication: Python's keyed (per-process SipHash) bytes hash,
    so attackers cannot craft collisions, plus the length."""
    return len(data), hash(data)


_MSG_TYPES = ("message/rfc822", "message/global", "message/news")
_MAX_PARTIAL_IDS = 16
#: MIME nesting levels inside one message that do not count towards the recursion limit:
#: Parts of one multipart/related body looked at for a page's style sheets (`mhtml`).
_MAX_RELATED = 256
#: clamscan 1.4 opens 18 nested multiparts at its default --max-recursion of 17 (measured;
#: with these, the CLI's clamscan-equivalent limits open exactly as many, and one more is a
#: limit finding). Deeper nesting stays a `Heuristics.Limits.Exceeded.MaxRecursion`.
_FREE_LEVELS = 3
_MAX_FRAGMENTS = 256


def _foreign_codecs(ct_values: list[str]) -> list[str]:
    """Codecs of the declared charsets that do not write ASCII as ASCII (usually none)."""
    if not any("charset" in v.lower() for v in ct_values):
        return []
    out: list[str] = []
    for v in ct_values:
        # All of them (decoys must not push one out): bounded by the few codecs that do not
        # write ASCII as ASCII, each decodes a leaf once.
        for cs in parse_params(v).get_all("charset"):
            codec = foreign_charset(cs)
            if codec is not None and codec not in out:
                out.append(codec)
    return out


@functools.lru_cache(maxsize=256)
def single_byte(name: str) -> str | None:
    """The codec of a declared single-byte charset that writes ASCII as ASCII (KOI8-R,
    windows-1251, ISO-8859-5...), else None."""
    codec = _charset(name)
    if codec == "latin-1" or foreign_charset(name) is not None:
        return None
    try:
        high = bytes(range(128, 256)).decode(codec, "replace")
    except (LookupError, ValueError, TypeError):
        return None
    return codec if len(high) == 128 else None


def _eight_bit_codecs(ct_values: list[str]) -> list[str]:
    """Codecs of the declared single-byte charsets (usually none: most mail is UTF-8)."""
    if not any("charset" in v.lower() for v in ct_values):
        return []
    return list(dict.fromkeys(codec for v in ct_values for cs in parse_params(v).get_all("charset")
                              if (codec := single_byte(cs)) is not None))


#: Types a mail client renders as a page (`Child.reads_as`).
_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: Share of bytes above 0x7F from which text sniffs as binary (`filetype`'s rule).
_HIGH_SHARE = 0.3
_HIGH_BYTES = bytes(range(128))


def _dense_8bit(content: bytes) -> bool:
    """Text dense in 8-bit characters (Cyrillic, Greek prose in a legacy charset): it sniffs
    as binary, and no text carrier looks inside it."""
    head = content[:4096]
    if not head or head.isascii() or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return False
    except UnicodeDecodeError:
        pass
    return len(head.translate(None, _HIGH_BYTES)) > len(head) * _HIGH_SHARE


class _Walker:
    def __init__(self, ctx: ScanContext, named: list[tuple[str, bytes]] | None = None) -> None:
        self.ctx = ctx
        #: Every attachment, in walk order, twins included (a split file's pieces may be
        #: equal: two all-zero ones) and every file of one name (R33-F1), for
        #: `joined_volumes` and `joins`; one with no name as Outlook saves it (`ATT00001.bin`:
        #: R33-F2, a head attached with no name was never a piece).
        self.named = named if named is not None else []
        self._named: set[tuple[str, int, int]] = set()
        self.leaves: set[tuple[tuple[int, int], bool, bool, bool]] = set()
        self.entities: set[tuple[tuple[int, int], str]] = set()
        self.budget = max(64, ctx.limits.max_files * 4)
        #: message/partial fragments: id -> number -> body (reassembled after the walk).
        self.partials: dict[str, dict[int, bytes]] = {}

    def leaf(self, data: bytes, name: str | None, origin: str, attachment: bool,
             page: bool = False) -> Iterator[Child]:
        if not data:
            return
        # Once per content, and once more opened as a file or under a name a browser renders:
        # the same page as a mail's HTML body (no client runs it) and as `invoice.html` is
        # checked for script (`scripted`) as the attachment.
        if name or attachment:
            piece = name or f"ATT{len(self.named) + 1:05d}.bin"
            key = (piece if name else "", len(data), hash(data))
            if key not in self._named:
                self._named.add(key)
                self.named.append((piece, data))
        d = (_digest(data), name is not None or attachment, scripted.rendered_by_name(name),
             page)
        if d in self.leaves:
            return
        self.leaves.add(d)
        if self.ctx.skip_oversized(len(data)):
            return
        self.ctx.charge_child(len(data))
        yield Child(data=data, name=name, origin=origin, is_attachment=attachment,
                    reads_as=FileType.HTML if page else None)

    def entity(self, data: bytes, d: _Dialect, depth: int, path: str) -> Iterator[Child]:
        key = (_digest(data), d.name)
        if key in self.entities:
            return
        self.entities.add(key)
        if len(self.entities) > self.budget:
            raise ScanLimitExceeded(MAX_FILES, "too many MIME entities")
        self.ctx.check_time()
        self.ctx.check_depth(max(0, depth - _FREE_LEVELS))
        headers, body_at = split_headers(data, d)
        body = data[body_at:]
        words = _header_words(headers)
        if words:
            yield from self.leaf(words, None, "header-words", False)
        if not headers and data[:1] in (b" ", b"\t"):
            # A part whose header block starts with a continuation line (nothing to continue):
            # RFC parsers see no headers at all, lenient ones (ClamAV) skip the line.
            eol = d.eol.search(data)
            if eol is not None and _HNAME.match(data, eol.end()):
                sub = f"{path}~"
                yield from self.ctx.guard(self.entity(data[eol.end():], d, depth, sub), sub)
        ct_values = _header_values(headers, b"content-type")
        ctes = _cte_tokens(_header_values(headers, b"content-transfer-encoding"))
        types = [parse_params(v).main for v in ct_values] or ["text/plain"]
        multipart = any(t.startswith("multipart") for t in types)
        message = any(t.startswith(_MSG_TYPES) for t in types)

        split_any = False
        boundaries = _boundary_candidates(ct_values)
        related: list[bytes] | None = [] if "multipart/related" in types else None
        if multipart or boundaries:
            bodies = [body]
            if any(c in ("base64", "quoted-printable") for c in ctes):
                bodies += [b for _, b in decode_body(body, ctes, self.ctx.check_time) if b != body]
            for bi, mbody in enumerate(bodies):
                found = False
                for b in boundaries:
                    if b"--" + b not in mbody:
                        continue
                    hits = _delimiters(mbody, b, d)
                    if hits[1]:
                        found = split_any = True
                    for part_no, part in self._split(mbody, hits, d):
                        sub = f"{path}/{bi}.{part_no}"
                        if related is not None and len(related) < _MAX_RELATED:
                            related.append(part)
                        yield from self.ctx.guard(self.entity(part, d, depth + 1, sub), sub)
                if multipart and not found:
                    for b in _infer_boundaries(mbody, d):
                        hits = _delimiters(mbody, b, d)
                        split_any = split_any or bool(hits[1])
                        for part_no, part in self._split(mbody, hits, d):
                            sub = f"{path}/{bi}?{part_no}"
                            yield from self.ctx.guard(self.entity(part, d, depth + 1, sub), sub)
        if related:  # a saved page's style sheets in parts of their own (`mhtml`)
            base = next(iter(_header_values(headers, b"snapshot-content-location")
                             + _header_values(headers, b"content-location")), None)
            for page in mhtml.styled_pages(self._related_parts(related, d), base):
                yield from self.leaf(page, None, f"mime{path}:mhtml", False, True)
        all_multipart = multipart and all(t.startswith("multipart") for t in types)
        if all_multipart and split_any:
            return

        decoded = decode_body(body, ctes, self.ctx.check_time)
        name, attachment = _filename(headers)
        if any(t == "message/partial" for t in types):
            self._partial(ct_values, decoded)
        if message:
            for label, content in decoded:
                if looks_like_mail(content):
                    # A layer of its own (as in ClamAV): the engine scans it as mail (target 4
                    # signatures see its headers) and decomposes it with full depth accounting.
                    yield from self.leaf(content, name, f"mime{path}:message/{label}", attachment)
                    continue
                sub = f"{path}/msg:{label}"
                yield from self.ctx.guard(self.entity(content, d, depth + 1, sub), sub)
                for extra in dialects_for(content):
                    if extra is not d:
                        yield from self.ctx.guard(
                            self.entity(content, extra, depth + 1, sub), f"{sub}({extra.name})"
                        )
            if all(t.startswith(_MSG_TYPES) for t in types):
                return
        binhex = any(t.endswith("binhex40") for t in types)
        foreign = _foreign_codecs(ct_values)
        eight_bit = _eight_bit_codecs(ct_values)
        as_page = any(t in _PAGE_TYPES for t in types)  # (a client shows it as a page)
        for label, content in decoded:
            yield from self.leaf(content, name, f"mime{path}:{label}", attachment, as_page)
            codecs_ = [*foreign, *(eight_bit if eight_bit and _dense_8bit(content) else ())]
            for codec in codecs_:
                # Text in UTF-16 / UTF-7 / EBCDIC..., or Cyrillic prose in KOI8-R around an
                # xxd dump (it sniffs as binary): what the client shows, as UTF-8 text.
                text = decode_text(content, codec).encode("utf-8", "replace")
                yield from self.leaf(text, name, f"mime{path}:{label}:{codec}", attachment,
                                     as_page)
            # uuencode / yEnc / BinHex inside text leaves are found when the engine decomposes
            # the leaf (decompose handles text); only marker-less BinHex parts need us here.
            if binhex and encodings.HQX_MARK not in content:
                marked = encodings.HQX_MARK + b")\r\n" + content
                for emb in encodings.binhex_blocks(marked, self.ctx.output_bound(),
                                                   self.ctx.check_time):
                    yield from self.leaf(emb.data, emb.name, f"mime{path}:{emb.encoding}", True)

    def _related_parts(self, raw: list[bytes], d: _Dialect, depth: int = 0
                       ) -> list[mhtml.Part]:
        """The parts of a multipart/related body for `mhtml`: each one's type, Content-ID,
        Content-Location and charset, its content decoded only if a page names it; the parts
        of multiparts inside it too (a multipart/alternative page), as Chromium flattens
        them."""
        parts: list[mhtml.Part] = []
        for data in raw:
            self.ctx.check_time()
            headers, body_at = split_headers(data, d)
            ct_values = _header_values(headers, b"content-type")
            params = [parse_params(v) for v in ct_values]
            kind = params[0].main if params else "text/plain"
            if kind.startswith("multipart/") and depth < 4:
                inner: list[bytes] = []
                for b in _boundary_candidates(ct_values)[:4]:
                    hits = _delimiters(data[body_at:], b, d)
                    inner += [part for _n, part in self._split(data[body_at:], hits, d)]
                parts += self._related_parts(inner[:_MAX_RELATED], d, depth + 1)
                continue
            ids = _header_values(headers, b"content-id")
            places = _header_values(headers, b"content-location")
            charsets = params[0].get_all("charset") if params else []
            ctes = _cte_tokens(_header_values(headers, b"content-transfer-encoding"))
            parts.append(mhtml.Part(kind, ids[0] if ids else None,
                                    places[0] if places else None,
                                    functools.partial(self._first_decoding, data[body_at:],
                                                      ctes),
                                    charsets[0].strip() if charsets else None))
        return parts[:_MAX_RELATED]

    def _first_decoding(self, body: bytes, ctes: list[str]) -> bytes:
        decoded = decode_body(body, ctes, self.ctx.check_time)
        return decoded[0][1] if decoded else body

    def _partial(self, ct_values: list[str], decoded: list[tuple[str, bytes]]) -> None:
        """Keep a message/partial fragment (RFC 2046 5.2.2) for `reassembled`."""
        for v in ct_values:
            params = parse_params(v)
            if params.main != "message/partial" or not decoded:
                continue
            ident = (params.get_all("id") or [""])[0]
            number = (params.get_all("number") or ["1"])[0].strip()
            frags = self.partials.get(ident)
            if frags is None:
                frags = self.partials[ident] = {}
            if number.isdigit():
                frags.setdefault(int(number[:6]), decoded[0][1])
            if len(self.partials) > _MAX_PARTIAL_IDS or len(frags) > _MAX_FRAGMENTS:
                # Decoys must not push the real fragments out: past the bound, a limit finding.
                raise ScanLimitExceeded(MAX_FILES, "too many message/partial fragments")

    def reassembled(self) -> Iterator[tuple[str, bytes]]:
        """Each message/partial id's fragments joined in number order (complete or not: what
        is there is what a reassembling reader would get up to its first gap)."""
        for i, frags in enumerate(self.partials.values()):
            yield f"/partial{i}", b"".join(frags[n] for n in sorted(frags))

    def _split(
        self, body: bytes, hits: tuple[list[_Hit], list[_Hit]], d: _Dialect
    ) -> Iterator[tuple[int, bytes]]:
        """Parts between delimiter lines, strict first, then by prefix if that differs."""
        s_hits, l_hits = hits
        variants = [s_hits] if len(l_hits) == len(s_hits) else [s_hits, l_hits]
        no = 0
        for seq in variants:
            if not seq:
                continue
            pre = body[: seq[0][0]]
            if _worth_parsing(pre):
                no += 1
                yield no, _strip_eol(pre, d)
            last = len(seq) - 1
            for i, (_start, end_at, closing) in enumerate(seq):
                end = seq[i + 1][0] if i < last else len(body)
                if end - end_at <= 2 and not body[end_at:end].strip():
                    continue  # empty part (cheap path for floods of delimiters)
                part = body[end_at:end]
                if i < last:
                    part = _strip_eol(part, d)
                if closing and i == last and not _worth_parsing(part):
                    continue  # a plain epilogue
                if not part.strip():
                    continue
                no += 1
                yield no, part


_Hit = tuple[int, int, bool]  # (line start, end of the delimiter line, is the closing one)
_TAIL = re.compile(rb"(--)?([^\r\n]*)")
_BLANK = re.compile(rb"[ \t]*")


def _at_line_start(body: bytes, pos: int, d: _Dialect) -> bool:
    if pos == 0:
        return True
    prev = body[pos - 1]
    if d is _CRLF:
        return prev == 10 and pos >= 2 and body[pos - 2] == 13
    if d is _ANY:
        return prev in (10, 13)
    return prev == 10


def _delimiters(body: bytes, boundary: bytes, d: _Dialect) -> tuple[list[_Hit], list[_Hit]]:
    """Delimiter lines of `boundary`: (strict: only whitespace after, loose: anything after,
    or whitespace before).

    A find() loop in C plus a match at each hit: far cheaper than a regex scan of the body.
    """
    needle = b"--" + boundary
    strict: list[_Hit] = []
    loose: list[_Hit] = []
    pos = body.find(needle)
    n = len(body)
    while pos >= 0:
        line_start = pos
        while line_start > 0 and body[line_start - 1] in (32, 9):
            line_start -= 1  # (each whitespace run is walked once: it ends at this needle)
        # An indented delimiter (" --b") is loose: ClamAV and some clients accept it.
        indented = line_start < pos and _at_line_start(body, line_start, d)
        if indented or _at_line_start(body, pos, d):
            tail = _TAIL.match(body, pos + len(needle))
            assert tail is not None  # the pattern matches the empty string
            end = tail.end()
            if d is _CRLF:
                # Only CRLF ends a line: a bare CR or LF is part of the line.
                nl = body.find(b"\r\n", pos)
                end = n if nl < 0 else nl
                eol_end = n if nl < 0 else nl + 2
                rest = body[tail.start(2) : end]
            else:
                eol = d.eol.match(body, end)
                if eol is None and end < n:
                    # A bare CR under the LF dialect: the line goes on.
                    nl = body.find(b"\n", end)
                    end = n if nl < 0 else (nl - 1 if body[nl - 1] == 13 else nl)
                    eol = d.eol.match(body, end)
                eol_end = eol.end() if eol else n
                rest = body[tail.start(2) : end]
            closing = tail.group(1) is not None
            hit = (line_start if indented else pos, eol_end, closing)
            loose.append(hit)
            if not indented and _BLANK.fullmatch(rest):
                strict.append(hit)
        pos = body.find(needle, pos + len(needle))
    return strict, loose


def _strip_eol(part: bytes, d: _Dialect) -> bytes:
    if d.name != "crlf" and part.endswith(b"\r\n"):
        return part[:-2]
    if part.endswith(b"\r\n"):
        return part[:-2]
    if d.name != "crlf" and part.endswith((b"\n", b"\r")):
        return part[:-1]
    return part


_PART_HINT = Gate(rb"content-|begin |=ybegin")


def _worth_parsing(text: bytes) -> bool:
    """Whether a preamble/epilogue could hold something a client would open, or a file a
    recipient could decode from it (a base64 block after a line of prose: clients hide the
    preamble, but it is in the message they save)."""
    if not text.strip():
        return False
    return (_PART_HINT(text[:65536]) or encodings.looks_base64(text)
            or textcarriers.may_carry(text))


def _infer_boundaries(body: bytes, d: _Dialect) -> list[bytes]:
    """`--xyz` delimiter lines in a multipart body whose declared boundary matched nothing."""
    pat = re.compile(d.bol + rb"--([^\r\n]{1,200})")
    counts: dict[bytes, int] = {}
    for m in pat.finditer(body):
        cand = m.group(1).rstrip(b" \t")
        if cand.endswith(b"--"):
            cand = cand[:-2]
        if cand:
            counts[cand] = counts.get(cand, 0) + 1
        if len(counts) > 32:
            break
    ranked = [c for c, n in counts.items() if n >= 2] or list(counts)[:1]
    return ranked[:_MAX_INFERRED]


def _filename(headers: list[_Header]) -> tuple[str | None, bool]:
    disp = tuple(_header_values(headers, b"content-disposition"))
    ctypes = tuple(_header_values(headers, b"content-type"))
    if sum(map(len, disp + ctypes)) <= _CACHE_MAX_VALUE:
        return _filename_cached(disp, ctypes)
    return _filename_uncached(disp, ctypes)


@functools.lru_cache(maxsize=4096)
def _filename_cached(disp: tuple[str, ...], ctypes: tuple[str, ...]) -> tuple[str | None, bool]:
    return _filename_uncached(disp, ctypes)


def _filename_uncached(disp: tuple[str, ...], ctypes: tuple[str, ...]) -> tuple[str | None, bool]:
    attachment = any(parse_params(v).main.startswith("attachment") for v in disp)
    for v in disp:
        names = parse_params(v).get_all("filename")
        if names:
            return _decode_words(names[0]), True
    for v in ctypes:
        names = parse_params(v).get_all("name")
        if names:
            return _decode_words(names[0]), True
    return None, attachment


def has_structure(data: bytes) -> bool:
    """Whether the header block at the start of `data` declares multipart, an enclosed message
    or a real transfer encoding (so parsing it can reveal more than the text itself), under
    any of its line-end readings (CR-only text is one long line to the LF reading)."""
    for d in dialects_for(data):
        headers, _ = split_headers(data, d)
        types = [parse_params(v).main for v in _header_values(headers, b"content-type")]
        if any(t.startswith(("multipart", *_MSG_TYPES)) for t in types):
            return True
        ctes = _cte_tokens(_header_values(headers, b"content-transfer-encoding"))
        if any(c in ("base64", "quoted-printable", "uuencode") for c in ctes):
            return True
    return False


_MBOX_FROM = re.compile(rb"(?:\r\n|\n|\r)From ")


def mbox_messages(data: bytes, check: encodings.Check = None) -> list[bytes]:
    """The messages of an mbox file (a `From ` line starts each), when it holds several.

    Every `From ` line at a line start separates (mboxo/mboxrd escape body lines as `>From `;
    an unescaped one is a separator to most readers, and splitting there too only adds a
    reading). Without this the second message was a text body of the first and the third one
    a level deeper still: message 18 of an mbox was beyond the recursion limit.
    """
    if not data.startswith(b"From "):
        return []
    starts = [0]
    for n, m in enumerate(_MBOX_FROM.finditer(data), 1):
        if check is not None and not n % 4096:
            check()
        starts.append(m.start() + (2 if data[m.start() : m.start() + 2] == b"\r\n" else 1))
    if len(starts) < 2:
        return []
    ends = [*starts[1:], len(data)]
    return [data[a:b] for a, b in zip(starts, ends, strict=True)]


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Every leaf of a mail message under every plausible interpretation, each once; every
    message of an mbox file as well as the whole file; then the volumes of a file split
    over several attachments, joined (`joined_volumes`), the guesses at pieces with any names
    and at encoded text cut over the message's parts (`joins`), and the attachments a patch
    among them changes (`patches.patched_attachments`)."""
    named: list[tuple[str, bytes]] = []  # (twins the walker yields once included)
    texts = joins.header_values(data)  # then the text leaves, in document order
    for child in _children(data, ctx, named):
        if joins.texty(child.data):  # (all of them: text_joins bounds its runs)
            texts.append(child.data)
        yield child
    # (every attachment: no more than MaxFiles; a cap of 1,024 hid the pieces after it,
    # round 30, and the first of a name hid the others, R33-F1)
    yield from joined_volumes(named, ctx)
    # Pieces with any names, and encoded text cut over parts (`joins`; only after a cut head).
    yield from ctx.guard(joins.binary_joins([d for _, d in named], ctx,
                                            [n for n, _ in named]), "joins")
    yield from ctx.guard(joins.text_joins(texts, ctx), "text-joins")
    attachments: dict[str, bytes] = {}
    for name, piece in named:
        attachments.setdefault(name, piece)
    if len(attachments) >= 2:  # a patch for another attachment (`patch file < fix.diff`)
        from zerohour.scan.patches import patched_attachments

        yield from patched_attachments(attachments, ctx)


#: Ways to join one set of volumes when files of one name differ (`joined_volumes`).
_MAX_VOLUME_RUNS = 64
#: Names of the pieces of a split file: `x.001` (7-Zip, HJSplit), `x.part1` / `part2.bin`,
#: `xaa` / `xab` (`split`): (stem, piece, rest).
_VOLUME = re.compile(r"(?i)(.*?)\.(\d{3})|(.*?)part[._-]?(\d{1,3})(\.\w{1,8})?|(.*?)([a-z]{2})")


def joined_volumes(files: Sequence[tuple[str, bytes]] | dict[str, bytes], ctx: ScanContext,
                   homes: Sequence[str] | None = None) -> Iterator[Child]:
    """The files attachments named as pieces of one (`x.001`, `x.002`...; `part1.bin`,
    `part2.bin`; `xaa`, `xab`) make when a recipient joins them (`cat part1.bin part2.bin >
    tool.exe`, 7-Zip opening `x.7z.001`; round 13: clam.exe cut inside its signature): the
    pieces in order from the first, as long as none is missing. Two different files of one
    name (two attachments, or two containers unpacked into one folder: which one the folder
    keeps is the recipient's) are each tried, every combination up to `_MAX_VOLUME_RUNS` a
    set (more is `MaxFiles`; R33-F1: a decoy of the tail's name first hid the tail). With
    `homes` (each file's container), only runs whose pieces come from two containers or more
    (`joined_across`)."""
    entries = list(files.items()) if isinstance(files, dict) else list(files)
    if len(entries) < 2:
        return
    groups: dict[tuple[str, str], dict[int, list[tuple[bytes, str | None]]]] = {}
    for i, (name, data) in enumerate(entries):
        m = _VOLUME.fullmatch(name)
        if m is None:
            continue
        if m.group(2) is not None:
            key, index = (m.group(1), ""), int(m.group(2))
        elif m.group(4) is not None:
            key, index = (m.group(3), m.group(5) or ""), int(m.group(4))
        else:
            letters = m.group(7).lower()
            key, index = (m.group(6) + "\x00", ""), (ord(letters[0]) - 97) * 26 + ord(
                letters[1]) - 97 + 1
        found = groups.setdefault(key, {}).setdefault(index, [])
        home = None if homes is None else homes[i]
        if not any(d == data and (homes is None or h == home) for d, h in found):
            found.append((data, home))
    for (stem, rest), pieces in groups.items():
        first = 0 if 0 in pieces else 1
        run: list[list[tuple[bytes, str | None]]] = []
        while first + len(run) in pieces:  # (as many as there are: no more than MaxFiles)
            run.append(pieces[first + len(run)])
        if len(run) < 2:
            continue
        if math.prod(len(r) for r in run) > _MAX_VOLUME_RUNS:
            raise ScanLimitExceeded(MAX_FILES, f"more than {_MAX_VOLUME_RUNS} ways to join "
                                               f"the volumes of {stem.rstrip(chr(0))!r}")
        made: set[bytes] = set()
        for choice in itertools.product(*run):
            if homes is not None and len({h for _, h in choice}) < 2:
                continue  # one container's own pieces: joined with its other members already
            ctx.check_time()
            joined = b"".join(d for d, _ in choice)
            if joined in made:
                continue
            made.add(joined)
            ctx.charge_child(len(joined))
            yield Child(data=joined, name=(stem.rstrip("\x00._-") + rest) or None,
                        origin="joined-volumes", is_attachment=True)


def joined_across(ctx: ScanContext) -> Iterator[Child]:
    """A file split over members of different containers of one scan (round 15: `xaa` in a
    tar, `xab` in a zip, both attached; the recipient unpacks both into one folder and joins
    the pieces), from the named files the engine noted (`ScanContext.note_piece`); and the
    guesses at pieces with any names (`joins.across_joins`, only after a cut head: R32-F5, a
    head attached and its tail in an attached zip)."""
    if len(ctx.pieces) < 2:
        return
    yield from joined_volumes([(name, data) for name, data, _, _ in ctx.pieces], ctx,
                              [home for _, _, home, _ in ctx.pieces])
    yield from ctx.guard(joins.across_joins(ctx.pieces, ctx), "joins-across")


def _children(data: bytes, ctx: ScanContext,
              named: list[tuple[str, bytes]] | None = None) -> Iterator[Child]:
    walker = _Walker(ctx, named)
    for d in dialects_for(data):
        # A decoder failing under one line-end reading must not cost the others.
        yield from ctx.guard(walker.entity(data, d, 0, ""), f"mime({d.name})")
    messages = mbox_messages(data, ctx.check_time)
    for i, msg in enumerate(messages):
        for d in dialects_for(msg):
            path = f"/mbox{i}"
            yield from ctx.guard(walker.entity(msg, d, 0, path), f"mime{path}({d.name})")
    # message/partial fragments found anywhere above, reassembled (RFC 2046 5.2.2). Clients
    # rarely do this, ClamAV does (across files): a payload split over fragments of one mail
    # is whole only here.
    for path, msg in list(walker.reassembled()):
        for d in dialects_for(msg):
            yield from ctx.guard(walker.entity(msg, d, 0, path), f"mime{path}({d.name})")
