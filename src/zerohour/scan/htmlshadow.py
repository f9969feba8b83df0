"""Declarative shadow DOM: the page as a browser lays it out, and as its text is read.

A `<template shadowrootmode=open>` is no hidden template: its content is the host element's
shadow tree, and the host's own children show only where a `<slot>` of that tree takes them
(by `slot="name"`, or the default slot for text and unnamed elements); a child no slot takes is
not rendered at all (round 15: junk in `<i slot=nowhere>` between the pieces of a base64 file,
and pieces put in order by named slots). Two readings, each a page of its own for the HTML
readers: the flat tree as shown (shadow text with the slotted children in place), and the
light tree as `innerText` and a copy of the page read it (the children no slot takes left out,
the shadow tree's own text too)."""

from __future__ import annotations

import re
from collections.abc import Callable

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import textual
from zerohour.scan.htmllayout import _attr
from zerohour.scan.limits import MAX_SCAN_TIME
from zerohour.scan.textual import _ELEMENT, _VOID, _hidden_end, tag_spans

_SHADOW = re.compile(rb"<template\b[^>]*?\sshadowroot(?:mode)?\s*=")  # (on the lower-cased page)
_MAX_ROOTS = 8
_HOST_WINDOW = 16384  # a host's opening tag is looked for this far back (then `_tree`)
_MAX_TREES = 4

#: One node of an element's content: (start, end, slot name or None for text / unnamed).
_Node = tuple[int, int, bytes | None]


def _extent(data: bytes, tag: bytes, content: int) -> tuple[int, int]:
    """(end of the content, end of the element) of the element whose content starts at
    `content`."""
    end = _hidden_end(data, tag, content)
    close = data.rfind(b"</", content, end)
    if close >= 0 and data[close + 2 : close + 2 + len(tag)].lower() == tag and (
            data.find(b">", close) == end - 1):
        return close, end
    return end, end


_TEMPLATE_TAG = re.compile(rb"<(/?)template\b[^>]*>", re.I)


def _template_end(data: bytes, content: int) -> tuple[int, int]:
    """(end of the content, end of the element) of a template: only its own closing tag
    ends it (the parser ignores others in a template), counting templates inside it."""
    depth = 0
    for m in _TEMPLATE_TAG.finditer(data, content):
        if not m.group(1):
            depth += 1
        elif depth:
            depth -= 1
        else:
            return m.start(), m.end()
    return len(data), len(data)


def _nodes(data: bytes, lo: int, hi: int) -> list[_Node]:
    """The top-level nodes between `lo` and `hi`: text runs and elements."""
    out: list[_Node] = []
    at = lo
    while at < hi:
        m = _ELEMENT.search(data, at, hi)
        if m is None:
            break
        if m.start() > at:
            out.append((at, m.start(), None))
        at = m.end()
        if m.group(2) is None or m.group(1):
            continue  # a comment or a stray closing tag: no text
        tag = m.group(2).lower()
        end = m.end()
        if tag not in _VOID and not m.group(3).rstrip().endswith(b"/"):
            end = min(_extent(data, tag, m.end())[1], hi)
        out.append((m.start(), end, (_attr(m.group(3), b"slot") or b"").strip() or None))
        at = end
    if at < hi:
        out.append((at, hi, None))
    return out


def open_elements(data: bytes, at: int) -> list[tuple[bytes, int]]:
    """The elements still open at `at`, outermost first, as (tag, end of its opening tag),
    by a walk over the markup of the `_HOST_WINDOW` bytes before it (one opened farther
    back is not among them)."""
    open_tags: list[tuple[bytes, int]] = []
    for m in _ELEMENT.finditer(data, max(0, at - _HOST_WINDOW), at):
        if m.group(2) is None:
            continue
        tag = m.group(2).lower()
        if m.group(1):
            for i in range(len(open_tags) - 1, -1, -1):
                if open_tags[i][0] == tag:
                    del open_tags[i:]
                    break
        elif tag not in _VOID and not m.group(3).rstrip().endswith(b"/"):
            open_tags.append((tag, m.end()))
    return open_tags


def _last_root(lower: bytes) -> re.Match[bytes] | None:
    """The last `<template shadowrootmode=...>` opening, each tag read once (`tag_spans`)."""
    root = None
    for at, gt in tag_spans(lower, b"<template"):
        root = _SHADOW.match(lower, at, len(lower) if gt < 0 else gt) or root
    return root


def _compose(data: bytes, flat: bool, trees: list[int] | None = None) -> bytes | None:
    """The page with its last shadow root resolved (None: no shadow root). `trees`: how
    many more times the page's nesting may be read for a host farther back than the window
    (past it, a limit finding: 40 such roots in 830 KB cost 7 s, the review of session 25)."""
    root = _last_root(data.lower())
    if root is None:
        return None
    opened = _ELEMENT.match(data, root.start())
    if opened is None:
        return None
    tpl_content = opened.end()
    tpl_close, tpl_end = _template_end(data, tpl_content)
    # the host: the element still open where the template starts (bounded, as is the
    # number of roots)
    open_tags = open_elements(data, root.start())
    if not open_tags and root.start() > _HOST_WINDOW:
        # (the host opened farther back than the window, with 16 KB of its light children
        # before the template, session 25: the page's nesting says which element it is)
        if trees is not None:
            trees[0] -= 1
            if trees[0] < 0:
                raise ScanLimitExceeded(MAX_SCAN_TIME, "shadow roots far from their hosts")
        parent = textual._tree(data).parents.get(root.start(), -1)
        host_tag = _ELEMENT.match(data, parent) if parent >= 0 else None
        if host_tag is not None and host_tag.group(2) is not None:
            open_tags.append((host_tag.group(2).lower(), host_tag.end()))
    if not open_tags:  # a template at the top: nothing to attach to, the browser drops it
        return data[: root.start()] + data[tpl_end:]
    tag, content = open_tags[-1]
    # (nothing opened between the host and the template is still open: its end is where the
    # markup after the template closes it)
    host = content, _extent(data, tag, tpl_end)[0]
    lo, hi = host
    own = data[tpl_content:tpl_close]
    if flat and (b"data" in own.lower() or b":host" in own.lower()):
        # (the shadow's sheets speak of its host: the host named by a mark only it has)
        mark = _host_mark(data)
        own = _host_rules(_with_data_sheets(own, textual.quirks_mode(data)), mark)
        data = data[: content - 1] + b" " + mark + data[content - 1 : tpl_content] + own + data[
            tpl_close:]
        shift = len(mark) + 1 + len(own) - (tpl_close - tpl_content)
        lo, hi, tpl_close, tpl_end = lo + len(mark) + 1, hi + shift, tpl_close + shift, (
            tpl_end + shift)
        root_start = root.start() + len(mark) + 1
        tpl_content += len(mark) + 1
    else:
        root_start = root.start()
    light = _nodes(data, lo, root_start) + _nodes(data, tpl_end, hi)
    slots: dict[bytes, tuple[int, int, int, int]] = {}  # name -> (start, content, close, end)
    at = tpl_content
    while (found := _ELEMENT.search(data, at, tpl_close)) is not None:
        at = found.end()
        if found.group(2) is None or found.group(1) or found.group(2).lower() != b"slot":
            continue
        close, end = _extent(data, b"slot", found.end())
        slots.setdefault((_attr(found.group(3), b"name") or b"").strip() or b"",
                         (found.start(), found.end(), close, end))
        at = end
    if not flat:  # a light node shows where a slot takes it (b"": the default slot)
        shown = b"".join(data[a:b] for a, b, name in light if (name or b"") in slots)
        return data[:lo] + shown + data[hi:]
    pieces: list[bytes] = []
    at = tpl_content
    for name, (start, content, close, end) in sorted(slots.items(), key=lambda s: s[1][0]):
        pieces.append(data[at:start])
        assigned = [data[a:b] for a, b, n in light if (n or b"") == name]
        # (the slot stays, its children the nodes it takes: a `hidden` slot hides them, and
        # a shadow sheet's `::slotted()` rule matches them as the slot's children)
        pieces.append(data[start:content] + (b"".join(assigned) if assigned
                                             else data[content:close]) + data[close:end])
        at = end
    pieces.append(data[at:tpl_close])
    shadow = b"".join(pieces)
    if b"::slotted(" in shadow.lower():
        shadow = _as_children(shadow)
    return data[:lo] + shadow + data[hi:]


#: `:host` and `:host(X)` in a shadow tree's sheet: the host (matching X); `:host-context()`
#: is not read.
_HOST = re.compile(rb":host(?![\w-])(?:\(\s*((?:[^()]|\([^()]*\))*?)\s*\))?", re.I)
_HOST_MARKS = re.compile(rb"zh-host(\d{1,9})", re.I)


def _host_mark(data: bytes) -> bytes:
    """An attribute name no element of the page has yet (a page may write `zh-host1`)."""
    taken = [int(m.group(1)) for m in _HOST_MARKS.finditer(data)]
    return b"zh-host%d" % (max(taken, default=0) + 1)


def _host_rules(shadow: bytes, mark: bytes) -> bytes:
    """A shadow tree's `:host` / `:host(X)` as `[mark]` / `:is(X)[mark]`, which the flat
    reading's host has (attack round 41: `:host(:not(b)){display:none}` hid the host, and
    the junk in it, in Chromium; read at the page's level, its `:not(b)` hid every element
    but `<b>`)."""
    if b":host" not in shadow.lower():
        return shadow
    return _HOST.sub(lambda m: (b":is(" + m.group(1) + b")" if m.group(1) else b"")
                     + b"[" + mark + b"]", shadow)


def _with_data_sheets(shadow: bytes, quirks: bool) -> bytes:
    """A shadow tree with the sheets it loads from data: URLs (a `<link>`, an `@import`)
    written out first as a `<style>` of its own, where `_host_rules` and `_as_children`
    read them (percent-encoded or base64 `::slotted(i){display:none}`, session 27);
    `quirks`: the page's mode, which its shadow trees share."""
    if b"data" not in shadow.lower():  # (`data&colon;text&sol;css`: any data: URL may be)
        return shadow
    sheets = [m.group(1) for m in textual._STYLE_BLOCK.finditer(shadow) if m.group(1)]
    loaded = textual._data_sheets(shadow, sheets, quirks)
    if not loaded:
        return shadow
    return b"<style>" + b"\n".join(loaded).replace(b"</", b"<\\/") + b"</style>" + shadow


#: `::slotted(B)` (B may hold a function: `::slotted(:not(b))`, attack round 41), and the
#: compound before it, A (looked for in the 256 bytes before: a pattern that began with A
#: was tried at every byte of a long run, quadratic).
_SLOTTED = re.compile(rb"::slotted\(\s*((?:[^()]|\([^()]*\))*?)\s*\)", re.I)
_SLOT_COMPOUND = re.compile(rb"[^\s>+~,{}()]*\Z")
_TYPE = re.compile(rb"[a-z][a-z0-9-]*", re.I)


def _as_children(shadow: bytes) -> bytes:
    """A shadow tree's `A::slotted(B)` as the flat reading's `A > B` (the slot is B's parent
    there): a slot compound with no type is a slot's (`::slotted(.j)`,
    `[name=x]::slotted(i)`); one of another type matches nothing (round 39: junk in the
    light tree hidden by a shadow sheet's `::slotted(.j){display:none}`)."""
    out: list[bytes] = []
    at = 0
    for m in _SLOTTED.finditer(shadow):
        before = _SLOT_COMPOUND.search(shadow, max(at, m.start() - 256), m.start())
        lo = m.start() if before is None else before.start()
        slot, slotted = shadow[lo : m.start()], m.group(1) or b"*"
        named = _TYPE.match(slot)
        if slot.startswith(b"&"):
            pass  # (nested in the slot's rule: `slot{&::slotted(i){}}`)
        elif named is None:
            slot = b"slot" + slot.removeprefix(b"*")
        elif named.group().lower() != b"slot":
            slot = b"zh-no-slot"  # (no element of that name: the rule matches nothing)
        out += [shadow[at:lo], slot, b">", slotted]
        at = m.end()
    out.append(shadow[at:])
    return b"".join(out)


def shadow_readings(data: bytes, check: Callable[[], None] | None = None) -> list[bytes]:
    """The page as shown (flat tree) and as read (light tree), when it has shadow roots
    (`check`: the scan's deadline, between two roots)."""
    if b"shadowroot" not in data.lower():
        return []
    out: list[bytes] = []
    trees = [_MAX_TREES]  # (`_tree` walks the whole page: a few per page)
    for flat in (True, False):
        page = data
        for _ in range(_MAX_ROOTS):
            if check is not None:
                check()
            composed = _compose(page, flat, trees)
            if composed is None:
                break
            page = composed
        if page != data and page not in out:
            out.append(page)
    return out
