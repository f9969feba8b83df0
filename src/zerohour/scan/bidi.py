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


def text_runs(text: bytes) -> list[tuple[bytes, int]]:
    """A text's runs of one bidi class each (punctuation between numbers one by one); from
    a letter to the last letter before a right-to-left one, all is one left-to-right run
    (numbers after a letter and neutrals between letters resolve so)."""
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
