"""The HTML parser's stack of open elements, shared by the layout (`htmllayout`) and the
visible-text readings (`textual`): implied end tags (`<li>` after `<li>`, a block start
closing an open `<p>`...) and Chromium's bound on the tree's depth."""

from __future__ import annotations

import bisect
import re

#: Chromium's kMaximumHTMLParserDOMTreeDepth: an element opened while this many are open is
#: its parent's sibling.
_MAX_TREE_DEPTH = 512


#: Opening one of these closes an open one of the same kind (up to the table part that
#: holds it), as an HTML parser does: `<tr><td>a<td>b` is two cells.
_CLOSED_BY = {b"td": (frozenset({b"td", b"th"}), frozenset({b"tr", b"table", b"tbody",
                                                            b"thead", b"tfoot"})),
              b"tr": (frozenset({b"tr"}), frozenset({b"table", b"tbody", b"thead",
                                                    b"tfoot"})),
              b"tbody": (frozenset({b"tbody", b"thead", b"tfoot"}), frozenset({b"table"}))}
_CLOSED_BY[b"th"] = _CLOSED_BY[b"td"]
_CLOSED_BY[b"thead"] = _CLOSED_BY[b"tfoot"] = _CLOSED_BY[b"tbody"]


#: The HTML parser's implied end tags (tree construction, "in body"): a start tag of these
#: closes an open `<p>` (one in button scope); `<li>` an open `<li>`, `<dd>`/`<dt>` an open
#: `<dd>` or `<dt>` (up to a special element but `<address>`, `<div>`, `<p>`); a heading the
#: heading that is the current node; `<option>`/`<optgroup>` the current `<option>`. A
#: list of 300 unclosed `<li>`s is 300 siblings, not 300 levels (round 36). (A `<table>`
#: closes a `<p>` only out of quirks mode: left open.)
_CLOSES_P = frozenset({b"address", b"article", b"aside", b"blockquote", b"center", b"details",
                       b"dialog", b"dir", b"div", b"dl", b"fieldset", b"figcaption", b"figure",
                       b"footer", b"header", b"hgroup", b"main", b"menu", b"nav", b"ol", b"p",
                       b"search", b"section", b"summary", b"ul", b"h1", b"h2", b"h3", b"h4",
                       b"h5", b"h6", b"pre", b"listing", b"form", b"plaintext", b"xmp", b"hr",
                       b"li", b"dd", b"dt"})
_HEADINGS = frozenset({b"h1", b"h2", b"h3", b"h4", b"h5", b"h6"})
_ITEMS = {b"li": frozenset({b"li"}), b"dd": frozenset({b"dd", b"dt"}),
          b"dt": frozenset({b"dd", b"dt"})}
#: Where a `<p>` is no longer "in button scope" (the HTML elements of the spec's list).
_BUTTON_SCOPE = frozenset({b"applet", b"caption", b"html", b"table", b"td", b"th", b"marquee",
                           b"object", b"template", b"button"})
#: The spec's "special" elements, which end the search for an open `<li>`, `<dd>`, `<dt>`
#: (`<address>`, `<div>` and `<p>` do not).
_SPECIAL = frozenset({b"applet", b"area", b"article", b"aside", b"base", b"basefont",
                      b"bgsound", b"blockquote", b"body", b"br", b"button", b"caption",
                      b"center", b"col", b"colgroup", b"dd", b"details", b"dir", b"dl", b"dt",
                      b"embed", b"fieldset", b"figcaption", b"figure", b"footer", b"form",
                      b"frame", b"frameset", b"h1", b"h2", b"h3", b"h4", b"h5", b"h6", b"head",
                      b"header", b"hgroup", b"hr", b"html", b"iframe", b"img", b"input",
                      b"keygen", b"li", b"link", b"listing", b"main", b"marquee", b"menu",
                      b"meta", b"nav", b"noembed", b"noframes", b"noscript", b"object", b"ol",
                      b"param", b"plaintext", b"pre", b"script", b"search", b"section",
                      b"select", b"source", b"style", b"summary", b"table", b"tbody", b"td",
                      b"template", b"textarea", b"tfoot", b"th", b"thead", b"title", b"tr",
                      b"track", b"ul", b"wbr", b"xmp"})
_ITEM_SCOPE = _SPECIAL - {b"address", b"div", b"p"}
#: Start tags that close an open element of their own tag in (default) scope: a second `<a>`
#: or `<nobr>` (the adoption agency), `<button>`, and a `<select>` in a `<select>` (which
#: only closes it: round 38, `<a class=h>junk<a>piece` shows the piece).
_OWN_KIND = frozenset({b"a", b"button", b"nobr", b"select"})
_SCOPE = frozenset({b"applet", b"caption", b"html", b"table", b"td", b"th", b"marquee",
                    b"object", b"template"})
_PAGE_PARTS = (b"html", b"body", b"head")
_P = frozenset({b"p"})
#: Tags whose start may close open elements (`_OpenElements.implied`)
_CLOSES = _CLOSES_P | _CLOSED_BY.keys() | {b"option", b"optgroup"} | _OWN_KIND


class _OpenElements:
    """An HTML parser's stack of open elements (the root first), as `_parse` and
    `_floats_beside` keep it: each one's tag and where its parent in the tree is. An element
    opened while more than `_MAX_TREE_DEPTH` are open is its parent's sibling (Chromium's
    kMaximumHTMLParserDOMTreeDepth) but open still: what it holds is its own, text and
    elements (round 36: the `order`ed items of a flex row 510 `display: contents` boxes
    down, at the bound, kept their text; cut at 512, their text went to their parent and
    was read in the markup's order). The tree is so no deeper than the bound, the stack as
    deep as the page. A closing tag finds its element by tag at once (no walk down a stack
    of thousands of unclosed elements for each)."""

    __slots__ = ("parents", "tags", "where")

    def __init__(self) -> None:
        self.tags = [b""]
        self.parents = [0]  # (the index of each one's parent in the tree)
        self.where: dict[bytes, list[int]] = {}  # the open elements of a tag, by index

    def parent(self) -> int:
        """The index of the parent in the tree of an element opened now (or of a void one)."""
        where = self.where
        # (as in a browser's parser: one <html> and one <body> open, whether the page writes
        # them or not, closes them or not; an <html>, <body> or <head> tag in the body is
        # no element: an attacker's 20 nested <body> tags move no element past the bound)
        depth = len(self.tags) + 1 - sum(len(where.get(t) or ()) for t in _PAGE_PARTS)
        return self.parents[-1] if depth > _MAX_TREE_DEPTH else len(self.tags) - 1

    def push(self, tag: bytes, parent: int) -> None:
        self.where.setdefault(tag, []).append(len(self.tags))
        self.tags.append(tag)
        self.parents.append(parent)

    def cut(self, depth: int) -> None:
        """Close the elements from `depth` up."""
        for tag in self.tags[depth:]:
            self.where[tag].pop()
        del self.tags[depth:], self.parents[depth:]

    def close(self, tag: bytes) -> int | None:
        """A closing tag: the index of the element it closes (and those opened since), if
        one is open."""
        open_ = self.where.get(tag)
        if not open_:
            return None
        depth = open_[-1]
        self.cut(depth)
        return depth

    def p_in_button_scope(self) -> bool:
        """Whether a `</p>` closes an open `<p>` (else the parser makes an empty one)."""
        return bool(self.where.get(b"p")) and self._nearest(_P, len(self.tags)) > (
            self._nearest(_BUTTON_SCOPE, len(self.tags)))

    def _nearest(self, tags: frozenset[bytes], below: int) -> int:
        """The index of the innermost open element of one of `tags` under index `below`
        (0: none)."""
        where = self.where
        near = 0
        for t in tags:
            w = where.get(t)
            if w:
                at = w[-1] if w[-1] < below else w[bisect.bisect_left(w, below) - 1] if (
                    w[0] < below) else 0
                near = max(near, at)
        return near

    def implied(self, tag: bytes) -> int | None:
        """An opening tag's implied end tags (`_CLOSED_BY`, `_CLOSES_P`...): the index of the
        outermost element it closes (with those opened since), if it closes one."""
        tags = self.tags
        cut = len(tags)
        if tag in _OWN_KIND and self.where.get(tag):
            near = self._nearest(frozenset((tag,)), cut)
            if near and near > self._nearest(_SCOPE, cut):
                self.cut(near)
                return near
        closes = _CLOSED_BY.get(tag)
        if closes is not None:  # (up to the table part that would hold it)
            near = self._nearest(closes[0], cut)
            if not near or near < self._nearest(closes[1], cut):
                return None
            self.cut(near)
            return near
        if tag in (b"option", b"optgroup"):
            cut -= tags[-1] == b"option"
            if tag == b"optgroup" and tags[cut - 1] == b"optgroup":
                cut -= 1
        items = _ITEMS.get(tag)
        if items is not None:
            near = self._nearest(items, cut)
            if near and near >= self._nearest(_ITEM_SCOPE, cut):
                cut = near
        if tag in _CLOSES_P and self.where.get(b"p"):
            near = self._nearest(_P, cut)
            if near and near > self._nearest(_BUTTON_SCOPE, cut):
                cut = near
        if tag in _HEADINGS and tags[cut - 1] in _HEADINGS:
            cut -= 1
        if cut == len(tags):
            return None
        self.cut(cut)
        return cut


def raw_text_end(data: bytes, tag: bytes, at: int) -> tuple[int, int]:
    """Where a raw-text element's content that starts at `at` ends, and where its end tag
    ends (both the end of the page when it has none): its text is no markup."""
    close = re.compile(rb"</" + re.escape(tag) + rb"\b[^>]*>", re.I).search(data, at)
    return (len(data), len(data)) if close is None else close.span()
