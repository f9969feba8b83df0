"""The order a line of mixed-direction text shows in: the Unicode bidirectional algorithm
(UAX #9) for one paragraph without explicit embeddings, as the layout reading needs it.

A right-to-left block (`dir=rtl`, `direction: rtl`) shows its left-to-right runs in their
own order, but the boxes between them that hold no strong letter (inline blocks, images,
isolated `<span dir=ltr>`s, numbers alone) right to left (round 17): a line of
`<span dir=ltr>` pieces, written last to first, reads first to last on the page. The pieces
of a line are given as runs of one bidi class each; `visual_order` says in which order they
are shown and which are shown mirrored (at an odd level: their characters right to left).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

L, R, EN, ES, CS, ET, ON = range(7)

_R_CHAR = (rb"\xd6[\x90-\xbf]|[\xd7-\xdf][\x80-\xbf]|\xe2\x80\x8f|\xef\xac[\x9d-\xbf]|"
           rb"\xef[\xad-\xb7][\x80-\xbf]|\xef\xb9[\xb0-\xbf]|\xef\xba[\x80-\xbf]|"
           rb"\xef\xbb[\x80-\xbe]")
_NEUTRAL_CHAR = (rb"[\x00-\x22\x26-\x2a\x3b-\x40\x5b-\x60\x7b-\x7f]|\xc2[\x80-\xbf]|"
                 rb"\xe2[\x80-\xbf][\x80-\xbf]|\xe3\x80[\x80-\xbf]|\xef\xbb\xbf|[\x80-\xbf]")
#: A text's runs of one class (Hebrew, Arabic and their presentation forms and RLM are R;
#: other letters L; Latin-1 and general punctuation, symbols and blanks neutral).
_RUNS = re.compile(
    rb"(?P<r>(?:" + _R_CHAR + rb")+)|(?P<en>[0-9]+)|(?P<es>[+\-])|(?P<cs>[,./:])|"
    rb"(?P<et>[#$%]+)|(?P<on>(?:" + _NEUTRAL_CHAR + rb")+)|"
    rb"(?P<l>(?:(?!" + _R_CHAR + rb"|\xe2|\xe3\x80|\xc2|\xef\xbb\xbf)"
    rb"(?:[A-Za-z]|[\xc3-\xf4][\x80-\xbf]*))+)|(?P<x>[\s\S])")
_CLASS = {"r": R, "en": EN, "es": ES, "cs": CS, "et": ET, "on": ON, "l": L, "x": ON}


#: Right-to-left letters and what lies between them but letters and digits: one run of R
#: (neutrals between two R resolve to R).
_R_RUN = re.compile(rb"(?:" + _R_CHAR + rb")+(?:(?:[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]|"
                    rb"\xc2[\x80-\xbf]|\xe2[\x80-\xbf][\x80-\xbf]|\xe3\x80[\x80-\xbf]|"
                    rb"\xef\xbb\xbf)+(?:" + _R_CHAR + rb")+)*")
_L_CHAR = rb"[A-Za-z]|(?!" + _R_CHAR + rb"|\xe2|\xe3\x80|\xc2|\xef\xbb\xbf)[\xc3-\xf4][\x80-\xbf]*"
_FIRST_L = re.compile(_L_CHAR)
_TO_LAST_L = re.compile(rb"(?s).*(?:" + _L_CHAR + rb")")


#: ASCII that is neither a digit nor a letter (each one of `_R_RUN`'s neutrals).
_ASCII_NEUTRALS = bytes([*range(0x30), *range(0x3A, 0x41), *range(0x5B, 0x61),
                         *range(0x7B, 0x80)])
#: What a text of Hebrew or Arabic words holds (two-byte right-to-left letters, U+05C0 to
#: U+07FF, and ASCII neutrals): `_plain_r`.
_PLAIN_R_BYTES = _ASCII_NEUTRALS + bytes(range(0x80, 0xC0)) + bytes(range(0xD7, 0xE0))


def _plain_r(text: bytes) -> list[tuple[bytes, int]] | None:
    """`text_runs` of a text of right-to-left letters (two-byte ones) and ASCII neutrals
    alone, most text of a right-to-left newsletter: the neutrals before its first letter
    (`_fine`), one R run to its last letter (all between two R letters resolves to R), the
    neutrals after it; None for any other text. Read by C string methods: `_R_RUN`'s
    alternation of letter encodings, tried at each byte, was most of `text_runs`'s time."""
    core = text.strip(_ASCII_NEUTRALS)
    if not core or core.translate(None, _PLAIN_R_BYTES):
        return None
    try:  # (well formed: each lead byte with one continuation byte, no stray one)
        core.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lead = len(text) - len(text.lstrip(_ASCII_NEUTRALS))
    end = lead + len(core)
    return [*(_fine(text[:lead]) if lead else ()), (core, R),
            *(_fine(text[end:]) if end < len(text) else ())]


def text_runs(text: bytes) -> list[tuple[bytes, int]]:
    """A text's runs of one bidi class each (punctuation between numbers one by one); from
    a letter to the last letter before a right-to-left one, all is one left-to-right run
    (numbers after a letter and neutrals between letters resolve so)."""
    plain = _plain_r(text)
    if plain is not None:
        return plain
    out: list[tuple[bytes, int]] = []
    at = 0
    for m in (*_R_RUN.finditer(text), None):
        end = len(text) if m is None else m.start()
        if end > at:
            piece = text[at:end]
            first = _FIRST_L.search(piece)
            if first is None:
                out += _fine(piece)
            else:
                last = _TO_LAST_L.match(piece, first.start())
                stop = last.end() if last is not None else first.end()
                out += _fine(piece[: first.start()])
                out.append((piece[first.start() : stop], L))
                out += _fine(piece[stop:])
        if m is not None:
            out.append((m.group(), R))
            at = m.end()
    return out


def _fine(text: bytes) -> list[tuple[bytes, int]]:
    return [(m.group(), _CLASS[m.lastgroup or "on"]) for m in _RUNS.finditer(text)]


_STRONG = re.compile(rb"(" + _R_CHAR + rb")|[A-Za-z]|(?!\xe2|\xe3\x80|\xc2|\xef\xbb\xbf)"
                     rb"[\xc3-\xf4]")


def first_strong(text: bytes) -> int | None:
    """The class (L or R) of a text's first strong letter; None without one."""
    m = _STRONG.search(text)
    return None if m is None else R if m.group(1) else L


def _resolved(classes: list[int], rtl: bool) -> list[int]:
    """Rules W4-W7, N1-N2 (no explicit embeddings; isolates and inline blocks come in as
    neutrals): each run's class resolved to L, R or EN."""
    c = list(classes)
    n = len(c)
    e = R if rtl else L
    for i in range(1, n - 1):  # W4: a lone separator between two numbers
        if c[i] in (ES, CS) and c[i - 1] == EN and c[i + 1] == EN:
            c[i] = EN
    for i in range(n):  # W5: terminators next to a number
        if c[i] == ET and ((i and c[i - 1] == EN) or (i + 1 < n and c[i + 1] == EN)):
            c[i] = EN
    c = [ON if k in (ES, CS, ET) else k for k in c]  # W6
    last = e
    for i in range(n):  # W7: a number after left-to-right text is left to right
        if c[i] in (L, R):
            last = c[i]
        elif c[i] == EN and last == L:
            c[i] = L
    i = 0
    while i < n:  # N1, N2: neutrals take their neighbours' direction, else the paragraph's
        if c[i] != ON:
            i += 1
            continue
        j = i
        while j < n and c[j] == ON:
            j += 1
        before = e if i == 0 else (L if c[i - 1] == L else R)
        after = e if j == n else (L if c[j] == L else R)
        direction = before if before == after else e
        for k in range(i, j):
            c[k] = direction
        i = j
    return c


def visual_order(classes: list[int], rtl: bool) -> tuple[list[int], list[bool]]:
    """The runs' indexes in the order they are shown, left to right, and for each run
    whether it is shown mirrored (its characters right to left)."""
    resolved = _resolved(classes, rtl)
    if rtl:
        levels = [1 if k == R else 2 for k in resolved]
    else:
        levels = [0 if k == L else 1 if k == R else 2 for k in resolved]
    order = list(range(len(levels)))
    top = max(levels, default=0)
    for level in range(top, 0, -1):  # L2: reverse every run at this level or higher
        i = 0
        while i < len(order):
            if levels[order[i]] < level:
                i += 1
                continue
            j = i
            while j < len(order) and levels[order[j]] >= level:
                j += 1
            order[i:j] = order[i:j][::-1]
            i = j
    return order, [level % 2 == 1 for level in levels]


def mirrored(text: bytes) -> bytes:
    """A text's characters right to left."""
    return text.decode("utf-8", "surrogateescape")[::-1].encode("utf-8", "surrogateescape")


# -- the whole algorithm, explicit embeddings, overrides and isolates included (misc18) ------

#: The explicit formatting characters (RLE, LRE, PDF, LRO, RLO; LRI, RLI, FSI, PDI), as
#: UTF-8: a text without any of them gets no visual reading (the marks RLM and ALM alone,
#: common in Hebrew and Arabic mail, move no left-to-right text in a left-to-right
#: paragraph; `htmllayout` reads right-to-left blocks).
CONTROLS = re.compile(rb"\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")
_CONTROL_CHARS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_CHECK_EVERY = 1 << 16
_MAX_LEVEL = 125
_REMOVED = frozenset({"RLE", "LRE", "RLO", "LRO", "PDF", "BN"})
_ISOLATES = frozenset({"LRI", "RLI", "FSI"})
_NEUTRAL = frozenset({"B", "S", "WS", "ON", "LRI", "RLI", "FSI", "PDI"})
_INVISIBLE = frozenset({"RLE", "LRE", "RLO", "LRO", "PDF", "LRI", "RLI", "FSI", "PDI"})


def _bidi_class(ch: str) -> str:
    return unicodedata.bidirectional(ch) or "L"


def _first_strong_level(types: list[str], start: int, end: int) -> int | None:
    """P2: 0 or 1 by the first L, R or AL from `start` (isolates skipped), None without."""
    depth = 0
    for i in range(start, end):
        t = types[i]
        if t in _ISOLATES:
            depth += 1
        elif t == "PDI":
            if depth == 0:
                return None  # (the end of the isolate this scan started in)
            depth -= 1
        elif depth == 0 and t in ("L", "R", "AL"):
            return 0 if t == "L" else 1
    return None


def _isolates(types: list[str]) -> tuple[dict[int, int], dict[int, int | None]]:
    """BD9: each isolate initiator's matching PDI; and P2 for each initiator: the level (0,
    1) its content's first strong letter gives, isolates inside skipped (None without one),
    for all of them in one backward pass (an FSI's direction, linear time)."""
    match: dict[int, int] = {}
    opened: list[int] = []
    for i, t in enumerate(types):
        if t in _ISOLATES:
            opened.append(i)
        elif t == "PDI" and opened:
            match[opened.pop()] = i
    matched_pdi = set(match.values())
    # frames of the isolates being read, innermost last (the open ones at the end first)
    frames: list[int | None] = [None] * (len(opened) + 1)
    first: dict[int, int | None] = {}
    for i in range(len(types) - 1, -1, -1):
        t = types[i]
        if t == "PDI" and i in matched_pdi:
            frames.append(None)
        elif t in _ISOLATES:
            first[i] = frames.pop() if len(frames) > 1 else None
            if not frames:
                frames.append(None)
        elif t in ("L", "R", "AL"):
            frames[-1] = 0 if t == "L" else 1
    return match, first


def visual_paragraph(text: str, base: int | None = 0,
                     check: Callable[[], None] | None = None) -> str:
    """One paragraph (a line) as it shows, left to right: UAX #9 rules X1-X10, W1-W7, N1-N2,
    I1-I2 and L2 (bracket pairs, N0, are not resolved: they move no letter or digit), the
    explicit formatting characters left out (they show nothing). `base`: the paragraph's
    level (0 left to right, 1 right to left, None: by its first strong letter, P2-P3).
    Linear time in the text's length; `check` is called every 64k characters of a step."""
    def tick(i: int) -> None:
        if check is not None and not i % _CHECK_EVERY:
            check()

    original = [_bidi_class(c) for c in text]
    types = list(original)
    n = len(types)
    match, first = _isolates(original)
    if base is None:
        base = _first_strong_level(types, 0, n) or 0
    # X1-X8: the explicit levels
    levels = [base] * n
    stack: list[tuple[int, str, bool]] = [(base, "", False)]  # (level, override, isolate)
    over_isolates = over_embeddings = valid_isolates = 0
    for i, t in enumerate(original):
        tick(i)
        level, override, _iso = stack[-1]
        if t in ("RLE", "LRE", "RLO", "LRO"):
            levels[i] = level
            new = (level + 1) | 1 if t[0] == "R" else (level + 2) & ~1
            if new <= _MAX_LEVEL and not over_isolates and not over_embeddings:
                stack.append((new, "R" if t == "RLO" else "L" if t == "LRO" else "", False))
            elif not over_isolates:
                over_embeddings += 1
        elif t in _ISOLATES:
            levels[i] = level
            if override:
                types[i] = override
            rtl = t == "RLI" or (t == "FSI" and first.get(i) == 1)
            new = (level + 1) | 1 if rtl else (level + 2) & ~1
            if new <= _MAX_LEVEL and not over_isolates and not over_embeddings:
                valid_isolates += 1
                stack.append((new, "", True))
            else:
                over_isolates += 1
        elif t == "PDI":
            if over_isolates:
                over_isolates -= 1
            elif valid_isolates:
                over_embeddings = 0
                while not stack[-1][2]:
                    stack.pop()
                stack.pop()
                valid_isolates -= 1
            level, override, _iso = stack[-1]
            levels[i] = level
            if override:
                types[i] = override
        elif t == "PDF":
            levels[i] = level
            if over_isolates:
                pass
            elif over_embeddings:
                over_embeddings -= 1
            elif not stack[-1][2] and len(stack) >= 2:
                stack.pop()
        elif t == "B":
            levels[i] = base
        else:
            levels[i] = level
            if override and t != "BN":
                types[i] = override
    kept = [i for i in range(n) if original[i] not in _REMOVED]
    # X10: level runs, chained across isolates into isolating run sequences
    runs: list[list[int]] = []
    for i in kept:
        if runs and levels[runs[-1][-1]] == levels[i]:
            runs[-1].append(i)
        else:
            runs.append([i])
    run_of = {run[0]: k for k, run in enumerate(runs)}
    chained: set[int] = set()
    sequences: list[list[int]] = []
    for k, run in enumerate(runs):
        if k in chained:
            continue
        seq = list(run)
        while original[seq[-1]] in _ISOLATES and seq[-1] in match:
            nxt = run_of.get(match[seq[-1]])
            if nxt is None or nxt in chained:
                break
            chained.add(nxt)
            seq += runs[nxt]
        sequences.append(seq)
    position = {i: p for p, i in enumerate(kept)}
    tick(0)
    for seq in sequences:
        if len(seq) > _CHECK_EVERY:
            tick(0)
        first_i, last = seq[0], seq[-1]
        p = position[first_i]
        before = levels[kept[p - 1]] if p > 0 else base
        q = position[last]
        after = base if (original[last] in _ISOLATES or q + 1 >= len(kept)) else levels[
            kept[q + 1]]
        level = levels[first_i]
        sos = "R" if max(level, before) % 2 else "L"
        eos = "R" if max(level, after) % 2 else "L"
        _resolve_sequence(seq, types, sos, eos, level)
    # I1-I2
    tick(0)
    for i in kept:
        t, lv = types[i], levels[i]
        if lv % 2 == 0:
            levels[i] = lv + 1 if t == "R" else lv + 2 if t in ("AN", "EN") else lv
        elif t in ("L", "EN", "AN"):
            levels[i] = lv + 1
    # L1: trailing blanks and isolate marks at the paragraph's level
    for i in reversed(kept):
        if original[i] in ("WS", "LRI", "RLI", "FSI", "PDI"):
            levels[i] = base
        else:
            break
    tick(0)
    order = _reordered(kept, levels)
    tick(0)
    return "".join(text[i] for i in order if original[i] not in _INVISIBLE)


class _Span:
    """A maximal sequence at `level` or higher (L2), its items and the spans inside it."""

    __slots__ = ("items", "level")

    def __init__(self, level: int, items: list[_Span | int] | None = None) -> None:
        self.level = level
        self.items: list[_Span | int] = items or []


def _reordered(items: list[int], levels: list[int]) -> list[int]:
    """L2 in linear time: from the highest level to the lowest odd one, every maximal
    sequence at that level or higher reversed; done as a tree of those sequences (a
    span per sequence that differs from its parent's, reversed an odd or even number of
    times), read once."""
    odd = [levels[i] for i in items if levels[i] % 2]
    if not odd:
        return items
    floor = min(odd) - 1
    root = _Span(floor)
    stack = [root]
    for i in items:
        lv = max(levels[i], floor)
        while stack[-1].level > lv:
            span = stack.pop()
            if stack[-1].level < lv:
                stack.append(_Span(lv, [span]))
            else:
                stack[-1].items.append(span)
        if stack[-1].level < lv:
            stack.append(_Span(lv))
        stack[-1].items.append(i)
    while len(stack) > 1:
        span = stack.pop()
        stack[-1].items.append(span)
    out: list[int] = []
    walk: list[tuple[_Span | int, int, bool]] = [(root, floor, False)]
    while walk:
        item, parent, flip = walk.pop()
        if isinstance(item, int):
            out.append(item)
            continue
        flip ^= (item.level - parent) % 2 == 1
        ordered = item.items[::-1] if flip else item.items
        walk += [(child, item.level, flip) for child in reversed(ordered)]
    return out


def _resolve_sequence(seq: list[int], types: list[str], sos: str, eos: str, level: int) -> None:
    """W1-W7, N1-N2 on one isolating run sequence (`types` resolved in place)."""
    t = [types[i] for i in seq]
    m = len(t)
    prev = sos
    for k in range(m):  # W1
        if t[k] == "NSM":
            t[k] = "ON" if prev in ("LRI", "RLI", "FSI", "PDI") else prev
        prev = t[k]
    strong = sos
    for k in range(m):  # W2, W3
        if t[k] in ("L", "R", "AL"):
            strong = t[k]
        elif t[k] == "EN" and strong == "AL":
            t[k] = "AN"
    t = ["R" if x == "AL" else x for x in t]
    for k in range(1, m - 1):  # W4
        if t[k] == "ES" and t[k - 1] == t[k + 1] == "EN":
            t[k] = "EN"
        elif t[k] == "CS" and t[k - 1] == t[k + 1] and t[k - 1] in ("EN", "AN"):
            t[k] = t[k - 1]
    k = 0
    while k < m:  # W5
        if t[k] != "ET":
            k += 1
            continue
        j = k
        while j < m and t[j] == "ET":
            j += 1
        if (k > 0 and t[k - 1] == "EN") or (j < m and t[j] == "EN"):
            for x in range(k, j):
                t[x] = "EN"
        k = j
    t = ["ON" if x in ("ES", "ET", "CS") else x for x in t]  # W6
    strong = sos
    for k in range(m):  # W7
        if t[k] in ("L", "R"):
            strong = t[k]
        elif t[k] == "EN" and strong == "L":
            t[k] = "L"
    e = "R" if level % 2 else "L"
    k = 0
    while k < m:  # N1, N2
        if t[k] not in _NEUTRAL:
            k += 1
            continue
        j = k
        while j < m and t[j] in _NEUTRAL:
            j += 1
        before = sos if k == 0 else ("L" if t[k - 1] == "L" else "R")
        after = eos if j == m else ("L" if t[j] == "L" else "R")
        for x in range(k, j):
            t[x] = before if before == after else e
        k = j
    for k, i in enumerate(seq):
        types[i] = t[k]


def visual_text(data: bytes, check: Callable[[], None] | None = None) -> list[bytes]:
    """UTF-8 text whose lines hold bidi controls, as it shows: a reading with each line a
    left-to-right paragraph (an HTML page, a document), and one with each line in the
    direction its first strong letter gives (plain text in a reader that sets it so), when
    that differs. Empty for text without controls."""
    if CONTROLS.search(data) is None:
        return []
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    marked = [k for k, line in enumerate(lines) if _CONTROL_CHARS.search(line)]
    out: list[bytes] = []
    for base in (0, None):
        shown_lines = list(lines)
        for k in marked:
            if check is not None:
                check()
            shown_lines[k] = _visual_line(lines[k], base, check)
        shown = "\n".join(shown_lines).encode("utf-8", "surrogateescape")
        if shown != data and shown not in out:
            out.append(shown)
    return out


#: What stays where it is written around a line's controls: characters below the Hebrew
#: block (Latin, Greek, Cyrillic...: left-to-right letters, digits, neutrals), no control.
_PLAIN = re.compile("[\x00-\x1b\x1f-\x84\x86-\u058f]*")  # (not \x1c-\x1e, \x85: B)
_LETTER = "(?:(?![\\d_])\\w)"
_FIRST_LETTER = re.compile(_LETTER)
_OPENS = frozenset("\u202a\u202b\u202d\u202e\u2066\u2067\u2068")
_ISOLATE_CHARS = frozenset("\u2066\u2067\u2068")


def _visual_line(line: str, base: int | None, check: Callable[[], None] | None) -> str:
    """`visual_paragraph` of a line, run only from its first control to the last one when
    the text around them stays in place: in a left-to-right paragraph, text of no
    right-to-left letter outside every embedding resolves to level 0, and L2 moves nothing
    across level 0 (a line of 540 KB holding one override costs its override, not 4 s)."""
    first = _CONTROL_CHARS.search(line)
    if first is None:
        return visual_paragraph(line, base, check)
    start = first.start()
    prefix = _PLAIN.match(line, 0, start)
    if prefix is None or prefix.end() != start:
        return visual_paragraph(line, base, check)
    if base is None:  # (the first strong letter sets the paragraph's direction: P2)
        if not any(c.isalpha() for c in line[:start]):
            return visual_paragraph(line, base, check)
        base = 0
    if base != 0:
        return visual_paragraph(line, base, check)
    stack: list[bool] = []  # the open embeddings (False) and isolates (True), X1-X8
    end, deepest = start, 0
    for m in _CONTROL_CHARS.finditer(line, start):
        c = m.group()
        if c in _OPENS:
            stack.append(c in _ISOLATE_CHARS)
            deepest = max(deepest, len(stack))
        elif c == "\u202c":  # PDF: the innermost embedding, not past an isolate
            if stack and not stack[-1]:
                stack.pop()
        elif True in stack:  # PDI: its isolate and the embeddings inside it
            while not stack.pop():
                pass
        end = m.end()
    suffix = _PLAIN.match(line, end)
    if stack or deepest > 60 or suffix is None or suffix.end() != len(line):
        return visual_paragraph(line, base, check)  # (an embedding open to the line's end)
    # digits and neutrals next to the controls take their direction from them (W2, W7, N1):
    # the reading runs from the last letter before the first control to the first after
    # the last (a left-to-right letter is level 0 and resets what follows it)
    # (the last letter before `start`: the first of the reversed prefix; a look-ahead for no
    # later letter, tried at each letter, read on to `start` from each: quadratic)
    before = _FIRST_LETTER.search(line[start - 1 :: -1]) if start > 0 else None
    after = _FIRST_LETTER.search(line, end)
    start = start - 1 - before.start() if before is not None else 0
    end = after.end() if after is not None else len(line)
    return line[:start] + visual_paragraph(line[start:end], 0, check) + line[end:]
