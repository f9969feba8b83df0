"""Logical signatures: .ldb lines `Name;TargetDescription;LogicalExpression;Subsig0;Subsig1;...`.

Supported: expressions with `&`, `|`, parentheses and the count modifiers `=n`, `>n`, `<n`
(each with an optional `,m`: at least m distinct subsignatures); hex subsignatures with an
optional `Offset:` and the modifiers `::i` (nocase), `::w` (wide), `::a` (ASCII, with `w`),
`::f` (fullword); PCRE subsignatures `[Offset:]Trigger/regex/[flags]` (Python `re` dialect,
flags `i s m x A g r e E`); target description keys `Target`, `Engine`, `FileSize`,
`EntryPoint`, `NumberOfSections`, `Container` (the common CL_TYPE_* names) and `Intermediates`
(the chain of container types above the layer, matcher-ac.c `intermediates_eval`).
A `VI:` subsignature must start at a PE version-information string key
(`zerohour.scan.signatures.vinfo`). An image fuzzy hash subsignature `fuzzy_img#<hash>[#<n>]`
counts 1 on an image layer whose ClamAV fuzzy hash (`zerohour.scan.imagehash`) is `<hash>`;
like ClamAV 1.4 (libclamav_rust `load_subsignature`) the hash is 16 hex digits, the Hamming
distance `n` an unsigned number that must be 0 (ClamAV refuses the whole database otherwise;
here that line is a warning), and anything after a third `#` is ignored. Subsignatures of
kinds may come in any order, except that PCRE ones follow the hex ones. A valid signature
this engine cannot evaluate faithfully raises `NotEvaluated` (the loader counts it as skipped
under that name); everything else raises `SignatureSyntaxError` (a warning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures import cltypes
from zerohour.scan.signatures.hexsig import Modifiers
from zerohour.scan.signatures.model import FLEVEL, BodySig, PcreSub, Target
from zerohour.scan.signatures.ndb import parse_target
from zerohour.scan.signatures.offset import ANY, Offset, parse_offset


class NotEvaluated(Exception):
    """A valid signature this engine does not evaluate; the message names the feature."""


class Op(Enum):
    SUB = "sub"
    AND = "and"
    OR = "or"


@dataclass(frozen=True, slots=True)
class Expr:
    """A node of a logical expression; `cmp` (with `n`, `m`) is the count modifier on it.

    Structure and evaluation follow ClamAV 1.4's `cli_ac_chklsig` exactly, quirks included:
    an expression splits at its *first* top-level operator (`0|1&2` is `0|(1&2)`), a
    parenthesised block at its *last* operator, there is no precedence; a count modifier on a
    single subsignature ignores `,m`; a node's count is the sum of its true children's counts.
    Both sides of `&`/`|` are always evaluated.
    """

    op: Op
    index: int = 0
    children: tuple[Expr, ...] = ()
    cmp: str = ""
    n: int = 0
    m: int = 0

    def evaluate(self, counts: list[int]) -> tuple[bool, int, int]:
        """(truth, count, bitmask of contributing subsignatures)."""
        if self.op is Op.SUB:
            val = counts[self.index] if self.index < len(counts) else 0
            bit = 1 << self.index
            if self.cmp:
                ok = (val == self.n if self.cmp == "=" else
                      val < self.n if self.cmp == "<" else val > self.n)
                return (True, val, bit) if ok else (False, 0, 0)
            return (True, val, bit) if val else (False, 0, 0)
        lt, lc, li = self.children[0].evaluate(counts)
        rt, rc, ri = self.children[1].evaluate(counts)
        ret = (lt and rt) if self.op is Op.AND else (lt or rt)
        if not self.cmp:
            return (True, lc + rc, li | ri) if ret else (False, 0, 0)
        tcnt, tids = (lc + rc, li | ri) if ret else (0, 0)
        ok = (tcnt == self.n if self.cmp == "=" else
              tcnt < self.n if self.cmp == "<" else tcnt > self.n)
        if ok and self.m and bin(tids).count("1") < self.m:
            ok = False
        return (True, tcnt, 0) if ok else (False, 0, 0)  # a block does not pass ids upward

    def indices(self) -> set[int]:
        if self.op is Op.SUB:
            return {self.index}
        out: set[int] = set()
        for ch in self.children:
            out |= ch.indices()
        return out


def _err(text: str, what: str) -> SignatureSyntaxError:
    return SignatureSyntaxError(f"logical expression {text!r}: {what}")


_NUM = re.compile(r"(\d+)(?:,(\d+))?")
_OPERAND = re.compile(r"(\d+)(?:([<>=])(\d+)(?:,\d+)?)?")


def _split(text: str) -> Expr:
    """One step of `cli_ac_chklsig`'s scan: find the operator this (sub)expression splits at."""
    n = len(text)
    if not n:
        raise _err(text, "empty operand")
    pth = 0
    op = op1 = ""
    opoff = op1off = blkend = 0
    blkmod = ""
    mod1 = mod2 = 0
    i = 0
    while i < n:
        c = text[i]
        if c == "(":
            pth += 1
        elif c == ")":
            if not pth:
                raise _err(text, "missing opening parenthesis")
            pth -= 1
        elif c in "&|":
            if not pth:
                op, opoff = c, i
            elif pth == 1:
                op1, op1off = c, i
        if op:
            break
        if op1 and not pth:
            blkend = i
            if i + 1 < n and text[i + 1] in "<>=":
                blkmod = text[i + 1]
                m = _NUM.match(text, i + 2)
                if m is None:
                    raise _err(text, f"missing number after {blkmod!r}")
                mod1, mod2 = int(m.group(1)), int(m.group(2) or 0)
                i = m.end() - 1
            if i + 1 == n:
                break
            blkmod = ""
        i += 1
    if pth:
        raise _err(text, "missing closing parenthesis")
    if not op and not op1:
        if text[0] == "(":
            if text[-1] != ")":
                raise _err(text, "unsupported modifier on a parenthesised subsignature")
            return _split(text[1:-1])
        om = _OPERAND.fullmatch(text)
        if om is None:
            raise _err(text, "cannot parse operand")
        return Expr(Op.SUB, index=int(om.group(1)), cmp=om.group(2) or "",
                    n=int(om.group(3) or 0))
    start, end = 0, n
    if not op:
        op, opoff, start, end = op1, op1off, 1, blkend
    if opoff == start:
        raise _err(text, "missing left argument")
    if opoff + 1 >= end:
        raise _err(text, "missing right argument")
    left = _split(text[start:opoff])
    right = _split(text[opoff + 1 : end])
    return Expr(Op.AND if op == "&" else Op.OR, children=(left, right), cmp=blkmod, n=mod1,
                m=mod2)


def parse_expression(text: str) -> Expr:
    if not text or re.fullmatch(r"[0-9&|()<>=,]+", text) is None:
        raise _err(text, "unexpected character")
    return _split(text)


@dataclass(frozen=True, slots=True)
class LogicalSig:
    name: str
    target: Target
    expr: Expr
    subs: tuple[BodySig, ...]
    pcres: tuple[tuple[int, PcreSub], ...] = ()  # (subsig index, pcre)
    filesize: tuple[int, int] | None = None
    #: `Container:CL_TYPE_X`: the layer's parent must be of this type (`cltypes.refine` key).
    container: str | None = None
    entry_point: tuple[int, int] | None = None
    sections: tuple[int, int] | None = None
    #: Number of hex subsignatures once `subs` moved into the database's signature table.
    n_hex: int = -1
    #: `Intermediates:A>B>C`: FileType values, None for CL_TYPE_ANY; C is the parent.
    intermediates: tuple[str | None, ...] | None = None
    #: Hex subsignatures (their position among the hex ones) with the `VI` offset: their count
    #: is the number of version-info string keys they match at (the matcher finds them
    #: anywhere, the engine narrows).
    vi: tuple[int, ...] = ()
    #: `fuzzy_img#` subsignatures: (subsig index, 8-byte image fuzzy hash).
    fuzzy: tuple[tuple[int, bytes], ...] = ()
    #: The subsignature index of each hex subsignature, when they are not 0, 1, 2, ... (a
    #: `fuzzy_img#` subsignature comes before one); empty: hex subsignature i is index i.
    hex_at: tuple[int, ...] = ()

    def intermediates_hold(self, ancestors: tuple[str, ...]) -> bool:
        """matcher-ac.c `intermediates_eval`: the listed types from the parent outwards; a
        CL_TYPE_ANY is skipped without using up a level (ClamAV's own quirk), and the layer
        must be at least as deep as the list is long."""
        chain = self.intermediates
        if chain is None:
            return True
        if len(ancestors) < len(chain):
            return False
        level = len(ancestors) - 1
        for want in reversed(chain):
            if want is None:
                continue
            if level < 0 or ancestors[level] != want:
                return False
            level -= 1
        return True

    @property
    def hex_count(self) -> int:
        return self.n_hex if self.n_hex >= 0 else len(self.subs)

    @property
    def nsubs(self) -> int:
        return self.hex_count + len(self.pcres) + len(self.fuzzy)

    def counts(self, hex_counts: list[int]) -> list[int]:
        """Per subsignature index, the hex subsignatures' counts (the others' are 0)."""
        if not self.hex_at and not self.fuzzy:
            return hex_counts
        out = [0] * self.nsubs
        for j, n in enumerate(hex_counts):
            out[self.hex_at[j] if self.hex_at else j] = n
        return out


_MODS = {"i": "nocase", "w": "wide", "a": "ascii", "f": "fullword"}
_PCRE_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}


def _range(text: str, what: str) -> tuple[int, int]:
    a, sep, b = text.partition("-")
    try:
        lo = int(a) if a else 0
        hi = int(b) if b else (lo if not sep else 2**63)
    except ValueError:
        raise SignatureSyntaxError(f"bad {what} range {text!r}") from None
    return lo, hi


def _split_offset(sub: str) -> tuple[Offset, str]:
    """`Offset:rest` or just `rest` (hex never contains ':' except in `::mods`)."""
    head, sep, rest = sub.partition(":")
    if sep and not rest.startswith(":") and head and not head.startswith(":"):
        return parse_offset(head), rest
    return ANY, sub


def _parse_pcre(sub: str) -> PcreSub:
    offset, rest = _split_offset(sub) if not sub.split("/", 1)[0].isdigit() else (ANY, sub)
    trigger_s, _, tail = rest.partition("/")
    body, slash, flags_s = tail.rpartition("/")
    if not slash:
        raise SignatureSyntaxError("PCRE subsignature needs /regex/")
    trigger = parse_expression(trigger_s)
    flags = 0
    global_ = False
    anchored = False
    for f in flags_s:
        if f in _PCRE_FLAGS:
            flags |= _PCRE_FLAGS[f]
        elif f == "g":
            global_ = True
        elif f == "A":
            anchored = True
        elif f in "reE":
            pass  # rolling/encompass/dollar-endonly: no effect on whole-layer matching here
        else:
            raise SignatureSyntaxError(f"unsupported PCRE flag {f!r}")
    if anchored:
        body = f"\\A(?:{body})" if offset is ANY else body
    try:
        re.compile(body.encode("latin-1"), flags)
    except (re.error, UnicodeEncodeError) as exc:
        raise SignatureSyntaxError(f"PCRE not supported by Python re: {exc}") from None
    return PcreSub(trigger, body, flags, offset, global_)


def parse_ldb_line(line: str) -> LogicalSig | None:
    """The signature, or None when its `Engine:` range excludes this engine."""
    fields = line.split(";")
    if len(fields) < 4:
        raise SignatureSyntaxError("expected Name;TargetDescription;Expression;Subsig0[;...]")
    name, tdb, expr_s, *subs_s = fields
    if not name:
        raise SignatureSyntaxError("empty signature name")
    target: Target | None = None
    filesize = entry_point = sections = None
    container: str | None = None
    intermediates: tuple[str | None, ...] | None = None
    engine_ok = True
    for attr in tdb.split(","):
        key, sep, val = attr.partition(":")
        if not sep:
            raise SignatureSyntaxError(f"bad target description {attr!r}")
        if key == "Target":
            target = parse_target(val)
        elif key == "Engine":
            lo, hi = _range(val, "Engine")
            engine_ok = lo <= FLEVEL <= hi
        elif key == "FileSize":
            filesize = _range(val, "FileSize")
        elif key == "EntryPoint":
            entry_point = _range(val, "EntryPoint")
        elif key == "NumberOfSections":
            sections = _range(val, "NumberOfSections")
        elif key == "Container":
            if val not in cltypes.CL_TYPES:
                raise SignatureSyntaxError(f"unknown container type {val!r}")
            container = cltypes.layer_key(val)
            if container is None:  # ClamAV's type, but no layer here ever has it
                raise NotEvaluated(f"ldb Container type {val}")
        elif key == "Intermediates":
            intermediates = _intermediates(val)
        else:
            raise SignatureSyntaxError(f"unsupported target description {key!r}")
    if target is None:
        raise SignatureSyntaxError("target description lacks Target")
    expr = parse_expression(expr_s)
    subs: list[BodySig] = []
    pcres: list[tuple[int, PcreSub]] = []
    vi: list[int] = []
    fuzzy: list[tuple[int, bytes]] = []
    hex_at: list[int] = []
    for i, sub in enumerate(subs_s):
        if sub.startswith("fuzzy_img#"):
            fuzzy.append((i, parse_fuzzy_img(sub)))
            continue
        if "/" in sub:
            pcres.append((i, _parse_pcre(sub)))
            continue
        if sub.startswith("${") or "(>>" in sub or "(<<" in sub or "(#" in sub:
            raise SignatureSyntaxError(f"unsupported subsignature kind in {sub!r}")
        hexpart, _, mods_s = sub.partition("::")
        kw = {}
        for f in mods_s:
            if f not in _MODS:
                raise SignatureSyntaxError(f"unsupported subsignature modifier {f!r}")
            kw[_MODS[f]] = True
        if hexpart.startswith("VI:"):
            offset, hexsig = ANY, hexpart[3:]
            vi.append(len(subs))
        else:
            offset, hexsig = _split_offset(hexpart)
        mods = Modifiers(**kw)
        sig = BodySig(f"{name}#{i}", target, offset, hexsig, mods)
        sig.patterns  # noqa: B018 - compile now: syntax errors belong to load time
        subs.append(sig)
        hex_at.append(i)
        if pcres:
            raise SignatureSyntaxError("PCRE subsignatures must follow all hex subsignatures")
    if not subs and not fuzzy:
        raise SignatureSyntaxError("no hex subsignature (PCRE needs a literal trigger)")
    used = expr.indices()
    if max(used) >= len(subs_s):
        raise SignatureSyntaxError(f"expression refers to subsignature {max(used)} not given")
    if max(used) + 1 != len(subs_s):  # readdb.c: the highest ID must be the last subsignature
        raise SignatureSyntaxError(f"{len(subs_s)} subsignatures, but the expression's highest "
                                   f"ID is {max(used)}")
    if not engine_ok:
        return None
    return LogicalSig(name, target, expr, tuple(subs), tuple(pcres), filesize, container,
                      entry_point, sections, intermediates=intermediates, vi=tuple(vi),
                      fuzzy=tuple(fuzzy),
                      hex_at=() if hex_at == list(range(len(hex_at))) else tuple(hex_at))


def parse_fuzzy_img(sub: str) -> bytes:
    """The hash of `fuzzy_img#<16 hex digits>[#<distance>[#...]]`, checked as ClamAV 1.4's
    `FuzzyHashMap::load_subsignature` does (its errors make clamscan refuse the database)."""
    parts = sub.split("#")
    digits = parts[1]
    if len(digits) != 16 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise SignatureSyntaxError(f"fuzzy_img hash must be 16 hex digits: {digits!r}")
    if len(parts) > 2:
        dist = parts[2]
        # Rust's u32::from_str: ASCII digits, an optional leading '+', at most 2**32 - 1
        body = dist[1:] if dist.startswith("+") else dist
        if not body or not body.isascii() or not body.isdigit() or int(body) > 0xFFFFFFFF:
            raise SignatureSyntaxError(f"fuzzy_img Hamming distance {dist!r} is not a number")
        if int(body):
            raise SignatureSyntaxError(f"fuzzy_img Hamming distance {int(body)}: ClamAV 1.4 "
                                       "supports only 0")
    return bytes.fromhex(digits)


def _intermediates(val: str) -> tuple[str | None, ...]:
    """`CL_TYPE_A>CL_TYPE_B`: at most 32 types ClamAV knows; one we have no layer type for
    can never hold here, so such a signature is not evaluated."""
    names = val.split(">")
    if not val or len(names) > 32:
        raise SignatureSyntaxError(f"bad Intermediates {val!r}")
    out: list[str | None] = []
    for n in names:
        if n not in cltypes.CL_TYPES:
            raise SignatureSyntaxError(f"unknown type {n!r} in Intermediates")
        key = cltypes.layer_key(n)
        if key is None and n != "CL_TYPE_ANY":
            raise NotEvaluated(f"ldb Intermediates type {n}")
        out.append(key)
    return tuple(out)
