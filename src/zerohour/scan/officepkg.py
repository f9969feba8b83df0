"""Readings of an Office Open XML package that need several of its parts (round 16).

A .docx or .xlsx is a zip: `decompose.children` scans each part as a layer of its own, and
`textual.office_xml_readings` reads each part's text. Some of what a reader shows is only made
of several parts together, and a sender put the base64 of a file there:

- a Word document's footnotes and endnotes (`word/footnotes.xml`, stored in any order) are
  shown in the order the document references them (`pandoc -t plain` lists them so);
- its list labels are the literal text of `w:lvlText` in `word/numbering.xml` (definitions in
  any order), shown before each numbered paragraph (LibreOffice's text export);
- a worksheet's cells name shared strings and number formats by index (`spreadsheet`);
- a Word document's styles (`word/styles.xml`: the defaults, paragraph and character styles
  through `basedOn`) and an OpenDocument text's (its common styles in `styles.xml`, through
  their parents) show runs in capitals (all caps, small caps, `text-transform`) or hide
  them, under the direct formatting the part itself holds (round 19: base64 written
  lower-case in such runs, decoys in hidden ones). That reading is made only when a
  styles part sets any of these, so an ordinary document costs nothing more.
- what the layout shows (round 20): an OpenDocument text's paragraphs hidden by a true
  `text:hidden-paragraph` condition, its `text:user-defined` fields showing the properties
  of `meta.xml`, ruby drawn above its base, notes at the page's foot
  (`odf_layout_reading`); a Word table drawn right to left (`w:bidiVisual`) with each
  row's cells last first (`word_rtl_tables_reading`). Made only when the part holds such
  elements.

So these readings are made where the whole package is at hand: `package_readings`, called by
`decompose.children` with the members of a zip. Each is one more text layer (the signatures
and the base64 finders run on it, as on every text), never a verdict of its own. Parts are
parsed with defusedxml after `textual.xml_plain` (entities bounded), each at most
`textual.MAX_XML` bytes; every reading is cut at `MAX_TEXT` characters, every loop is bounded
by the parts' sizes and checks the scan's time.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import archive, textual
from zerohour.scan.limits import MAX_SCAN_SIZE, ScanContext
from zerohour.scan.types import Child

#: Longest reading made (characters): a shared string or a list label repeated a million
#: times must not make gigabytes of text.
MAX_TEXT = 16 << 20

_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_ROOT_RELS = "_rels/.rels"


def local(tag: object) -> str:
    """An element's local name, whatever its namespace (`""` for comments and the like)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def attr(el: Any, name: str) -> str | None:
    """The attribute `name` of `el` by its local name, in no namespace or any (`w:val`)."""
    value = el.attrib.get(name)
    if value is not None:
        return str(value)
    for key, v in el.attrib.items():
        if key.endswith("}" + name):
            return str(v)
    return None


class Package:
    """The parts of one zip by name (case-insensitive, as OPC part names are), parsed on
    demand; a part `zip_children` did not yield (its bytes equal an earlier member's) is
    read from the zip."""

    def __init__(self, data: bytes, members: dict[str, bytes], ctx: ScanContext) -> None:
        self.data = data
        self.ctx = ctx
        self.members = {name.lower().lstrip("/"): body for name, body in members.items()}
        self.names = {n.lower().lstrip("/"): n for n in archive.zip_names(data)}
        self._parsed: dict[str, Any] = {}

    def has(self, name: str) -> bool:
        return name.lower() in self.members or name.lower() in self.names

    def raw(self, name: str) -> bytes | None:
        key = name.lower().lstrip("/")
        if key in self.members:
            return self.members[key]
        real = self.names.get(key)
        if real is None:
            return None
        got = archive.named_members(self.data, {real}, self.ctx, textual.MAX_XML).get(real)
        if got is not None:
            self.members[key] = got
        return got

    def xml(self, name: str) -> Any:
        """The root element of part `name` parsed, or None (missing, too big, not XML)."""
        key = name.lower().lstrip("/")
        if key not in self._parsed:
            body = self.raw(key)
            self._parsed[key] = parse(body) if body is not None else None
        return self._parsed[key]

    def rels(self, name: str) -> list[tuple[str, str, str]]:
        """The relationships of part `name` (`""`: the package's): (id, type's last path
        segment, target part name), targets resolved against the part's folder."""
        folder, base = posixpath.split(name)
        root = self.xml(posixpath.join(folder, "_rels", base + ".rels") if name else _ROOT_RELS)
        out: list[tuple[str, str, str]] = []
        if root is None:
            return out
        for rel in root:
            self.ctx.check_time()
            if local(rel.tag) != "Relationship" or attr(rel, "TargetMode") == "External":
                continue
            target = attr(rel, "Target") or ""
            path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            out.append((attr(rel, "Id") or "", (attr(rel, "Type") or "").rsplit("/", 1)[-1],
                        posixpath.normpath(path).lstrip("/")))
        return out

    def related(self, name: str, kind: str, default: str) -> str | None:
        """The first part of relationship type `kind` from part `name`, else `default` if
        the package has it (a reader that ignores the relationship finds it by name)."""
        for _, typ, target in self.rels(name):
            if typ == kind and self.has(target):
                return target
        return default if self.has(default) else None


def parse(body: bytes) -> Any:
    """`body` parsed as XML the way `textual._parsed_office_texts` does, or None."""
    if len(body) > textual.MAX_XML:
        return None
    return textual.parsed_xml(textual.xml_plain(body))


class Budget:
    """What is left of `MAX_TEXT` for one reading."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.left = MAX_TEXT
        self.check = check

    def take(self, text: str, times: int = 1) -> str:
        """`text` `times` over; past the budget, a limit (a finding: what a document shows
        past 16 MB of text is not read, so it is never called clean)."""
        if not text or times <= 0:
            return ""
        if len(text) * times > self.left:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"a document's text over {MAX_TEXT} bytes")
        self.left -= len(text) * times
        return text * times


def package_readings(data: bytes, members: dict[str, bytes], ctx: ScanContext
                     ) -> Iterator[Child]:
    """The readings of a Word or Excel package made of several of its parts (module doc)."""
    from zerohour.scan import spreadsheet

    names = {n.lower().lstrip("/") for n in members}
    if "content.xml" in names:  # an OpenDocument text (styles.xml may be a repeated member)
        odf = Package(data, members, ctx)
        text = odf_styled_reading(odf)
        if text:
            yield _reading(text, "office-styled", ctx)
        laid = odf_layout_reading(odf)
        if laid and laid != text:
            yield _reading(laid, "office-layout", ctx)
    if not any(n.startswith(("word/", "xl/")) for n in names) and _ROOT_RELS not in names:
        return
    pkg = Package(data, members, ctx)
    readings: list[tuple[str, str]] = []
    # The main part is what the package's relationships name (anywhere), or the usual one;
    # its root element says which reader opens it.
    mains = [target for _, typ, target in pkg.rels("") if typ == "officeDocument"][:4]
    mains += ["word/document.xml", "xl/workbook.xml"]
    for main in dict.fromkeys(mains):
        root = pkg.xml(main) if pkg.has(main) else None
        kind = local(root.tag) if root is not None else ""
        texts: list[str | None] = []
        if kind == "document":
            unmodelled: list[str] = []
            texts = [word_reading(pkg, main, unmodelled=unmodelled)]
            if unmodelled:  # (formats LibreOffice shows in glyphs of their own: both ways)
                texts.append(word_reading(pkg, main, glyphs=True))
        elif kind == "workbook":
            texts = list(spreadsheet.workbook_readings(pkg, main))
        for text in texts:
            if text and text not in (t for t, _ in readings):
                readings.append((text, "office-notes-labels" if kind == "document"
                                 else "spreadsheet-cells"))
        for styled in word_styled_readings(pkg, main) if kind == "document" else ():
            if styled not in (t for t, _ in readings):
                readings.append((styled, "office-styled"))
        laid = word_rtl_tables_reading(pkg, main) if kind == "document" else None
        if laid and laid not in (t for t, _ in readings):
            readings.append((laid, "office-layout"))
    for text, origin in readings:
        yield _reading(text, origin, ctx)


def _reading(text: str, origin: str, ctx: ScanContext) -> Child:
    """A reading as a text layer, charged to the scan."""
    body = text.encode("utf-8", "replace")
    ctx.charge_child(len(body))
    return Child(data=body, name=None, origin=origin)


# --- Word: list labels and notes ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%([0-9])")
#: What LibreOffice leaves out of the label text of a level shown as nothing (`none`): every
#: `%`, with the digit after it (`Q%xR` shows `QxR`, `Q%1R` and `Q%0R` show `QR`).
_NONE_PERCENT = re.compile(r"%[0-9]?")
_LEVELS = 9


def word_reading(pkg: Package, main: str, glyphs: bool = False,
                 unmodelled: list[str] | None = None) -> str | None:
    """The document's text with each numbered paragraph's list label before it, then its
    footnotes and endnotes in the order it references them; None when it has neither.
    Counters in number formats not modelled (`_MODELLED`) are decimal, or with `glyphs`
    left out (a glyph, no base64 character); `unmodelled` collects such formats used."""
    root = pkg.xml(main)
    if root is None:
        return None
    budget = Budget(pkg.ctx.check_time)
    labels = _list_labels(pkg, main, root, budget, glyphs=glyphs, unmodelled=unmodelled)
    notes = {kind: _notes(pkg.xml(target), kind) if (
        target := pkg.related(main, kind + "s", f"word/{kind}s.xml")) else {}
        for kind in ("footnote", "endnote")}
    if not labels and not any(notes.values()):
        return None
    refs: list[tuple[str, str]] = []
    body = textual.shown_text(root, labels=labels, refs=refs).decode(
        "utf-8", "replace")
    out = [body]  # (its labels are taken from the budget already, its text is the part's)
    for kind, nid in refs:
        pkg.ctx.check_time()
        note = notes[kind].get(nid)
        if note is not None:
            out.append(budget.take(note.rstrip("\n") + "\n"))
    text = "".join(out)
    return text if text.strip() else None


def word_rtl_tables_reading(pkg: Package, main: str) -> str | None:
    """The document's text with the cells of each row of a table drawn right to left
    (`w:bidiVisual` in its properties) in the order they are drawn, last first (round 20:
    a row's pieces of base64 written in reverse; LibreOffice's print shows them in order);
    None when it has no such table. The rows are turned round in the parsed part for the
    while (no copy of it) and put back."""
    raw = pkg.raw(main)
    if raw is None or b"bidiVisual" not in raw:
        return None
    root = pkg.xml(main)
    if root is None:
        return None
    turned: list[tuple[Any, list[Any]]] = []  # (row, its children as written)
    try:
        for i, tbl in enumerate([el for el in root.iter() if local(el.tag) == "tbl"]):
            if not i % 1024:
                pkg.ctx.check_time()
            props = next((el for el in tbl if local(el.tag) == "tblPr"), None)
            bidi = next((el for el in props if local(el.tag) == "bidiVisual"), None) if (
                props is not None) else None
            if bidi is None or (attr(bidi, "val") or "1").strip().lower() in _OFF:
                continue
            for row in tbl:
                if local(row.tag) != "tr":
                    continue
                children = list(row)
                cells = [c for c in children if local(c.tag) in ("tc", "sdt", "customXml")]
                if len(cells) < 2:
                    continue
                turned.append((row, children))
                moved = {id(c) for c in cells}
                row[:] = [c for c in children if id(c) not in moved] + cells[::-1]
        if not turned:
            return None
        text = textual.shown_text(root).decode("utf-8", "replace")
    finally:
        for row, children in turned:
            row[:] = children
    return text if text.strip() else None


def _notes(root: Any, kind: str) -> dict[str, str]:
    """Each note of a footnotes/endnotes part by its id, as its text shows."""
    out: dict[str, str] = {}
    if root is None:
        return out
    for note in root:
        if local(note.tag) == kind and attr(note, "type") in (None, "normal"):
            nid = attr(note, "id") or ""
            out.setdefault(nid, textual.shown_text(note).decode("utf-8", "replace"))
    return out


class _Level:
    __slots__ = ("caps", "fmt", "start", "suffix", "text")

    def __init__(self, el: Any) -> None:
        self.start, self.fmt, self.text, self.suffix = 1, "decimal", "", "\t"
        self.caps: bool | None = None  # (its run properties: the label shown in capitals)
        for child in el:
            name, val = local(child.tag), attr(child, "val")
            if name == "rPr":
                flags = _rpr_flags(child)
                self.caps = True if flags[0] or flags[1] else (
                    False if False in (flags[0], flags[1]) else None)
            if val is None:
                continue
            if name == "start":
                self.start = _start(val)
            elif name == "numFmt":
                self.fmt = val
            elif name == "lvlText":
                self.text = val
            elif name == "suff":
                self.suffix = {"space": " ", "nothing": ""}.get(val, "\t")


def _int(text: str, default: int) -> int:
    """An integer attribute as LibreOffice reads it: a 32-bit number, leading zeros and all
    (bound 6: `w:ilvl="0000000001"`, ten digits, was read as level 0, LibreOffice shows
    level 1's label); past 32 bits, `default`."""
    text = text.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        return default
    value = int(text)
    return value if -(1 << 31) <= value < 1 << 31 else default


def _start(text: str) -> int:
    """A level's start value as LibreOffice keeps it (round 36): a 16-bit number, 0 for a
    negative one or one past 32 bits (start 65,590 shows 54: the piece of a label that was
    read as 65590). (Counting on from it is not bounded: it was capped at 100,000.)"""
    text = text.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii():
        return 1
    if len(digits) > 10:
        return 0
    value = int(text)
    return value & 0xFFFF if 0 <= value < 1 << 31 else 0


class _Numbering:
    """A numbering part's lists: numId -> its levels (the abstract definition's, with the
    num's overrides), each read when a paragraph first uses it (LibreOffice writes
    thousands of definitions a document)."""

    def __init__(self, root: Any) -> None:
        self.abstract: dict[str, Any] = {}
        self.nums: dict[str, Any] = {}
        for el in root:
            name = local(el.tag)
            if name == "abstractNum":
                self.abstract.setdefault(attr(el, "abstractNumId") or "", el)
            elif name == "num":
                self.nums.setdefault(attr(el, "numId") or "", el)
        self._abstract_levels: dict[str, dict[int, _Level]] = {}
        self._levels: dict[str, dict[int, _Level]] = {}

    def _of_abstract(self, aid: str) -> dict[int, _Level]:
        if aid not in self._abstract_levels:
            levels: dict[int, _Level] = {}
            for lvl in self.abstract.get(aid, ()):
                if local(lvl.tag) == "lvl":
                    levels.setdefault(_int(attr(lvl, "ilvl") or "0", 0), _Level(lvl))
            self._abstract_levels[aid] = levels
        return self._abstract_levels[aid]

    def levels(self, num_id: str) -> dict[int, _Level]:
        if num_id in self._levels:
            return self._levels[num_id]
        levels: dict[int, _Level] = {}
        for child in self.nums.get(num_id, ()):
            name = local(child.tag)
            if name == "abstractNumId":
                levels = dict(self._of_abstract(attr(child, "val") or ""))
            elif name == "lvlOverride":
                ilvl = _int(attr(child, "ilvl") or "0", 0)
                for o in child:
                    if local(o.tag) == "lvl":
                        levels[ilvl] = _Level(o)
                    elif local(o.tag) == "startOverride" and ilvl in levels:
                        lvl = _Level(o)  # a copy with the new start
                        lvl.fmt, lvl.text, lvl.suffix = (levels[ilvl].fmt, levels[ilvl].text,
                                                         levels[ilvl].suffix)
                        lvl.caps = levels[ilvl].caps
                        lvl.start = _start(attr(o, "val") or "1")
                        levels[ilvl] = lvl
        self._levels[num_id] = levels
        return levels


def _num_pr(ppr: Any) -> tuple[str | None, int | None]:
    """(numId, ilvl) a paragraph's or style's properties set, None for what they do not."""
    num_id: str | None = None
    ilvl: int | None = None
    for el in ppr:
        if local(el.tag) == "numPr":
            for n in el:
                if local(n.tag) == "numId":
                    num_id = attr(n, "val")
                elif local(n.tag) == "ilvl":
                    ilvl = _int(attr(n, "val") or "0", 0)
    return num_id, ilvl


def _style_numbering(styles: Any) -> dict[str, tuple[str | None, int | None]]:
    """Paragraph style id -> the numbering it sets, through `basedOn` however deep, as
    LibreOffice follows it (round 36: 8 levels were, a label of a style based 12 deep on
    the one numbered was not read), once each style (a loop stops it)."""
    own: dict[str, tuple[str | None, int | None]] = {}
    based: dict[str, str] = {}
    if styles is None:
        return own
    for st in styles:
        if local(st.tag) != "style":
            continue
        sid = attr(st, "styleId") or ""
        for el in st:
            if local(el.tag) == "pPr":
                own.setdefault(sid, _num_pr(el))
            elif local(el.tag) == "basedOn":
                based.setdefault(sid, attr(el, "val") or "")
    out: dict[str, tuple[str | None, int | None]] = {}
    done: set[str] = set()
    for sid in set(own) | set(based):
        chain: list[str] = []  # (styles whose numbering is the one found up the chain)
        seen: set[str] = set()
        cur: str | None = sid
        found: tuple[str | None, int | None] | None = None
        while cur is not None and cur not in seen:
            if cur in done:
                found = out.get(cur)
                break
            seen.add(cur)
            chain.append(cur)
            if own.get(cur, (None, None))[0] is not None:
                found = own[cur]
                break
            cur = based.get(cur)
        for link in chain:
            done.add(link)
            if found is not None:
                out[link] = found
    return out


def _list_labels(pkg: Package, main: str, root: Any, budget: Budget,
                 caps: dict[int, bool | None] | None = None, glyphs: bool = False,
                 unmodelled: list[str] | None = None) -> dict[int, str]:
    """Each numbered paragraph's label (by the element's `id`), counted in document order,
    in capitals where its level's run properties set caps (LibreOffice shows them so);
    `caps` collects what each label's level sets (`word_styled_readings`)."""
    target = pkg.related(main, "numbering", "word/numbering.xml")
    numbering = pkg.xml(target) if target else None
    if numbering is None:
        return {}
    defs = _Numbering(numbering)
    styles_part = pkg.related(main, "styles", "word/styles.xml")
    by_style = _style_numbering(pkg.xml(styles_part) if styles_part else None)
    counters: dict[str, list[int | None]] = {}
    templates: dict[tuple[int | str, ...], list[str | int]] = {}  # (level, formats) ->
    labels: dict[int, str] = {}
    for i, p in enumerate(root.iter()):
        if not i % 4096:
            pkg.ctx.check_time()
        if local(p.tag) != "p":
            continue
        num_id: str | None = None
        ilvl: int | None = None
        for ppr in p:
            if local(ppr.tag) == "pPr":
                num_id, ilvl = _num_pr(ppr)
                if num_id is None:
                    for el in ppr:
                        if local(el.tag) == "pStyle":
                            num_id, style_ilvl = by_style.get(attr(el, "val") or "", (None, None))
                            ilvl = ilvl if ilvl is not None else style_ilvl
                break
        levels = defs.levels(num_id) if num_id else None
        if not levels:
            continue
        level = min(max(ilvl or 0, 0), _LEVELS - 1)
        lvl = levels.get(level)
        if lvl is None:
            continue
        key: tuple[int | str, ...] = (id(lvl), *(levels[k].fmt if k in levels else ""
                                                 for k in range(_LEVELS)))
        if key not in templates:
            templates[key] = _template(lvl.text, levels, lvl.fmt)
        count = counters.setdefault(num_id or "", [None] * _LEVELS)
        prev = count[level]
        count[level] = lvl.start if prev is None else prev + 1  # (as LibreOffice: no cap)
        for deeper in range(level + 1, _LEVELS):
            count[deeper] = None
        pieces = []
        for token in templates[key]:
            if isinstance(token, str):
                pieces.append(token)
            else:
                at = levels.get(token)
                n = count[token]
                if n is None:
                    n = at.start if at is not None else 1
                fmt = at.fmt if at is not None else "decimal"
                if fmt not in _MODELLED:
                    if unmodelled is not None and fmt not in unmodelled:
                        unmodelled.append(fmt)
                    if glyphs:
                        fmt = "glyph"
                pieces.append(_counter(n, fmt))
        text = "".join(pieces)
        if not text:
            continue
        label = budget.take(text + lvl.suffix)
        if not label:
            break  # the reading is as long as it may be
        labels[id(p)] = label.upper() if lvl.caps else label
        if caps is not None:
            caps[id(p)] = lvl.caps
    return labels


def _template(text: str, levels: dict[int, _Level], fmt: str = "decimal") -> list[str | int]:
    """A level's label text as tokens: literal text (merged) and the level numbers of its
    placeholders (`%1` is 0), leaving out those of levels shown as nothing (`none`): each
    token then shows at least one character, so a label's work is what it shows. At most
    `_MAX_PLACEHOLDERS` placeholders are read (a label names each of Word's nine levels once;
    round 4 of the CPU hunt: 1,800 `%1` in one level text over 1,800 paragraphs, a 2.8 KB
    file, made 16 MB of labels, 3 s to scan); more is a limit finding, as the label's text
    after them is unread (ten `%1` of a level shown as nothing, then a piece of base64:
    LibreOffice shows the piece)."""
    out: list[str | int] = []
    pos = 0
    if fmt == "none":  # (bound 6: a `%` before a letter was read, LibreOffice leaves it out)
        text = _NONE_PERCENT.sub("", text)
    found = list(itertools.islice(_PLACEHOLDER.finditer(text), _MAX_PLACEHOLDERS + 1))
    if len(found) > _MAX_PLACEHOLDERS:
        raise ScanLimitExceeded(MAX_SCAN_SIZE, f"a list label of more than {_MAX_PLACEHOLDERS}"
                                " placeholders")
    for m in found:
        k = int(m.group(1)) - 1
        literal = text[pos : m.start()]
        pos = m.end()
        if k not in levels:  # a level the list does not define (`%0` too): LibreOffice
            literal += m.group() + "%"  # shows `%N%` (it was read as 1)
        if literal:
            if out and isinstance(out[-1], str):
                out[-1] += literal
            else:
                out.append(literal)
        if k in levels and levels[k].fmt != "none":
            out.append(k)
    rest = text[pos:]
    if rest:
        if out and isinstance(out[-1], str):
            out[-1] += rest
        else:
            out.append(rest)
    return out


_MAX_PLACEHOLDERS = 9

_ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
          (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))


#: Number formats `_counter` writes as LibreOffice does (`hex` too: LibreOffice shows it in
#: decimal). Others (bound 6) LibreOffice shows in words (`ordinalText`: "First") or, most,
#: in glyphs of their own (`chicago` "*", `japaneseCounting`, `hebrew1`, `russianLower`...:
#: none a base64 character, where a decimal reading put a digit between a label's pieces):
#: the labels are read both ways, decimal and without the glyph (the base64 finders stop
#: at a character not theirs, `base64 -d -i` skips it).
_MODELLED = frozenset({"none", "decimal", "decimalZero", "lowerRoman", "upperRoman",
                       "lowerLetter", "upperLetter", "hex", "ordinal"})


def _counter(n: int, fmt: str) -> str:
    """A list counter in Word's number format `fmt` (others as decimal); roman numerals and
    letters however large, as LibreOffice shows them (4001 `MMMMI`, 1041 41 `A`s; they were
    decimal past 3999 and 1040: a label's letters never read; what a label's run costs is
    charged to the reading's `Budget`)."""
    if fmt == "none":
        return ""
    if fmt in ("lowerRoman", "upperRoman") and n > 0:
        out = []
        for value, digits in _ROMAN:
            while n >= value:
                out.append(digits)
                n -= value
        text = "".join(out)
        return text.upper() if fmt == "upperRoman" else text
    if fmt in ("lowerLetter", "upperLetter") and n > 0:
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt == "decimalZero" and 0 <= n < 10:
        return f"0{n}"
    if fmt == "ordinal":  # (LibreOffice: 1st, 2nd, 11th)
        suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(
            n % 10, "th")
        return f"{n}{suffix}"
    if fmt == "glyph":
        return ""
    return str(n)


# --- styles: capitals and hidden text a document's styles set (round 19) -------------------------

#: Run properties a Word style may set that change what a reader shows: all caps, small caps
#: (LibreOffice prints lower-case letters as smaller capitals) and hidden text.
_WORD_FLAGS = ("caps", "smallCaps", "vanish")
#: Direct run properties that hide a run as `vanish` does (`textual.word_run_mode`).
_WORD_HIDING = ("specVanish", "webHidden")
_WORD_STYLED = re.compile(rb"[cC]aps\b|vanish\b|[wW]ebHidden\b")
_ODF_STYLED = re.compile(rb"text-transform|text:display|small-caps")
_OFF = frozenset({"0", "false", "off"})

#: A style's setting of each flag: True, False (turned off again) or None (not set).
Flags = tuple["bool | None", ...]


def _parsable(styles: bytes) -> None:
    """A styles part over `textual.MAX_XML` is not parsed: a limit (a finding, as `Budget`'s:
    a reader applies its styles, so the document is not read as shown and never clean)."""
    if len(styles) > textual.MAX_XML:
        raise ScanLimitExceeded(MAX_SCAN_SIZE, f"a styles part over {textual.MAX_XML} bytes")


def _rpr_flags(rpr: Any, hiding: bool = False) -> Flags:
    """The caps, small caps and vanish a `w:rPr` sets (`hiding`: with the direct-only hiding
    properties as vanish)."""
    out: list[bool | None] = [None] * len(_WORD_FLAGS)
    for el in rpr:
        real = local(el.tag)
        name = "vanish" if hiding and real in _WORD_HIDING else real
        if name in _WORD_FLAGS:
            k = _WORD_FLAGS.index(name)
            if (attr(el, "val") or "true").strip().lower() not in _OFF:
                out[k] = True
            elif name == real:  # (`specVanish` off does not show a vanished run)
                out[k] = False
    return tuple(out)


def _over(near: Flags, far: Flags) -> Flags:
    """`near`'s settings, `far`'s where `near` sets none (the closest level wins)."""
    return tuple(a if a is not None else b for a, b in zip(near, far, strict=True))


class _Chains:
    """Styles by id, each with its own settings and what it is based on, resolved through
    the `basedOn` (ODF: parent) chain once each: a chain of 100,000 styles, or a cycle,
    costs a walk over each style once (a cycle is cut where it comes back)."""

    def __init__(self, check: Callable[[], None], empty: Flags) -> None:
        self.own: dict[str, Flags] = {}
        self.parent: dict[str, str] = {}
        self.check = check
        self.empty = empty
        self._resolved: dict[str, Flags] = {}

    def add(self, sid: str, flags: Flags, parent: str | None) -> None:
        if sid not in self.own:  # (the first definition of an id is the one read)
            self.own[sid] = flags
            if parent:
                self.parent[sid] = parent

    def resolved(self, sid: str) -> Flags:
        if sid in self._resolved:
            return self._resolved[sid]
        path: list[str] = []
        seen: set[str] = set()
        cur: str | None = sid
        while cur is not None and cur in self.own and cur not in seen and (
                cur not in self._resolved):
            if not len(path) % 4096:
                self.check()
            path.append(cur)
            seen.add(cur)
            cur = self.parent.get(cur)
        above = self._resolved.get(cur, self.empty) if cur is not None else self.empty
        for name in reversed(path):
            above = _over(self.own[name], above)
            self._resolved[name] = above
        return self._resolved.get(sid, self.empty)


def _mode(flags: Flags, caps: tuple[int, ...], hidden: int, lower: int | None = None
          ) -> str:
    """How settings show text: hidden, in capitals (small capitals too), lower case, or as
    written."""
    if flags[hidden]:
        return textual.STYLE_HIDDEN
    if any(flags[k] for k in caps):
        return textual.STYLE_CAPS
    if lower is not None and flags[lower]:
        return textual.STYLE_LOWER
    return textual.STYLE_PLAIN


def word_styled_readings(pkg: Package, main: str) -> list[str]:
    """The document's text with the caps, small caps and hidden text its styles set (the
    defaults, its paragraph and character styles through `basedOn`, direct formatting
    over them: LibreOffice's print), when its styles part sets any. Where styles share an
    id, or a style has no type, a second reading as ECMA-376 reads them (LibreOffice
    takes the last definition and skips untyped styles; the standard makes an untyped
    style a paragraph style, and Word reads the first of an id). The headers, footers,
    footnotes and endnotes follow the body, each read with the same styles."""
    target = pkg.related(main, "styles", "word/styles.xml")
    raw = pkg.raw(target) if target else None
    root = pkg.xml(main)
    if root is None or raw is None or not _WORD_STYLED.search(raw):
        return []
    _parsable(raw)
    styles = pkg.xml(target) if target else None
    if styles is None:
        return []
    parts = [root] + [pkg.xml(t) for t in _styled_parts(pkg, main)]
    level_caps: dict[int, bool | None] = {}
    labels = _list_labels(pkg, main, root, Budget(pkg.ctx.check_time), level_caps)
    out: list[str] = []
    for libre in (True, False):
        parsed = _WordStyles(styles, libre, pkg.ctx.check_time)
        runs = [(part, _word_runs(part, parsed, pkg.ctx.check_time)) for part in parts
                if part is not None]
        shown = _labels_shown(labels, level_caps, runs[0][1][2])
        if shown != labels or any(differs for _, (_, differs, _) in runs):
            text = _styled_text(runs, shown, pkg.ctx.check_time)
            if text.strip() and text not in out:
                out.append(text)
        if not parsed.ambiguous:
            break
    return out


def _labels_shown(labels: dict[int, str], level_caps: dict[int, bool | None],
                  para_caps: set[int]) -> dict[int, str]:
    """The list labels as shown: in capitals where their level sets caps, or sets none and
    their paragraph's style does (LibreOffice shows a label with its paragraph's caps)."""
    return {pid: label.upper() if level_caps.get(pid) is None and pid in para_caps else label
            for pid, label in labels.items()}


def _styled_text(runs: list[tuple[Any, tuple[dict[int, str], bool, set[int]]]],
                 labels: dict[int, str], check: Callable[[], None]) -> str:
    """The Word parts' texts as their styled runs show them, the body's first with its list
    labels (its text is the part's; the others' are charged to a budget)."""
    budget = Budget(check)
    texts = [textual.shown_text(part, styled=styled, labels=labels if not i else None
                                ).decode("utf-8", "replace")
             for i, (part, (styled, _, _)) in enumerate(runs)]
    return "\n".join(t if not i else budget.take(t) for i, t in enumerate(texts))


#: The parts a Word document shows beside its body, by relationship type, read with its
#: styles.
_STYLED_PARTS = frozenset({"header", "footer", "footnotes", "endnotes"})


def _styled_parts(pkg: Package, main: str) -> list[str]:
    """The parts of `_STYLED_PARTS` related to `main`, each once, in the relationships'
    order. Every relationship is looked at (Word finds a header by its id wherever it is
    listed: a header after 256 others, images or fillers, went unread), and a part named
    by many is read once, so the work is the package's distinct parts, not its list."""
    out: list[str] = []
    seen: set[str] = set()
    for _, typ, target in pkg.rels(main):
        key = target.lower().lstrip("/")
        if typ in _STYLED_PARTS and key not in seen and pkg.has(target):
            seen.add(key)
            out.append(target)
    return out


class _WordStyles:
    """A Word styles part read for what it shows: the defaults' run properties, the default
    paragraph style, the paragraph and character styles' chains; `libre`: as LibreOffice
    reads it (the last definition of an id, untyped styles left out), else the first
    definition, untyped styles as paragraph styles; `ambiguous`: the two ways differ."""

    def __init__(self, styles: Any, libre: bool, check: Callable[[], None]) -> None:
        empty: Flags = (None,) * len(_WORD_FLAGS)
        self.defaults = empty
        self.default_para: str | None = None
        self.chains = {kind: _Chains(check, empty)
                       for kind in ("paragraph", "character", "table")}
        self.ambiguous = False
        els = [st for st in styles if local(st.tag) in ("docDefaults", "style")]
        seen: set[tuple[str, str]] = set()
        for i, st in enumerate(reversed(els) if libre else els):
            if not i % 4096:
                check()
            if local(st.tag) == "docDefaults":
                for rpr in (r for d in st if local(d.tag) == "rPrDefault" for r in d):
                    if local(rpr.tag) == "rPr":
                        self.defaults = _rpr_flags(rpr)
                continue
            kind = attr(st, "type") or ("" if libre else "paragraph")
            sid = attr(st, "styleId") or ""
            self.ambiguous |= not attr(st, "type") or (kind, sid) in seen
            seen.add((kind, sid))
            if kind in self.chains:
                self._add(st, kind, sid, empty)

    def _add(self, st: Any, kind: str, sid: str, empty: Flags) -> None:
        flags, parent = empty, None
        for el in st:
            if local(el.tag) == "rPr":
                flags = _rpr_flags(el)
            elif local(el.tag) == "basedOn":
                parent = attr(el, "val")
        self.chains[kind].add(sid, flags, parent)
        if kind == "paragraph" and self.default_para is None and (
                (attr(st, "default") or "").lower() in ("1", "true", "on")):
            self.default_para = sid


def _word_runs(root: Any, styles: _WordStyles, check: Callable[[], None]
               ) -> tuple[dict[int, str], bool, set[int]]:
    """How the styles show each run (by its element's `id`): direct formatting, over its
    character style, over its paragraph's style (or the default one), over its table's
    style (`w:tblStyle`: LibreOffice prints a table style's caps and vanish), over the
    defaults; whether the styles show any run otherwise than its direct formatting; the
    paragraphs (by `id`) whose styles set caps."""
    styled: dict[int, str] = {}
    differs = False
    para_caps: set[int] = set()
    caps = (_WORD_FLAGS.index("caps"), _WORD_FLAGS.index("smallCaps"))
    hidden = _WORD_FLAGS.index("vanish")
    chains, defaults = styles.chains, styles.defaults
    stack: list[tuple[Any, Flags, Flags]] = [(root, defaults, defaults)]  # (el, its
    # run properties so far, those of the table it is in)
    walked = 0
    while stack:
        el, flags, table = stack.pop()
        walked += 1
        if not walked % 4096:
            check()
        name = local(el.tag)
        if name in _NO_RUNS:
            continue
        if name == "tbl":
            sid = _table_style(el)
            table = flags = _over(chains["table"].resolved(sid), defaults) if sid else defaults
        elif name == "p":  # (a paragraph in a text box inside a run: its own style)
            flags = _paragraph_flags(el, chains["paragraph"], table, styles.default_para)
            if _mode(flags, caps, hidden) == textual.STYLE_CAPS:
                para_caps.add(id(el))
        elif name == "r":
            mode = _mode(_run_flags(el, chains["character"], flags), caps, hidden)
            if mode != textual.STYLE_PLAIN:  # (else its direct formatting shows it as written)
                styled[id(el)] = mode
            differs = differs or mode != textual.word_run_mode(el)
        stack.extend((child, flags, table) for child in el)
    return styled, differs, para_caps


#: Word elements that hold properties or text, never runs (`_word_runs` does not walk in).
_NO_RUNS = frozenset({"rPr", "pPr", "tblPr", "trPr", "tcPr", "sectPr", "t", "tblGrid"})


def _table_style(tbl: Any) -> str:
    """The style a table's properties name (`w:tblPr/w:tblStyle`), `""` for none."""
    for props in tbl:
        if local(props.tag) == "tblPr":
            for el in props:
                if local(el.tag) == "tblStyle":
                    return attr(el, "val") or ""
    return ""


def _paragraph_flags(p: Any, chain: _Chains, defaults: Flags, default_para: str | None
                     ) -> Flags:
    """What a paragraph's style (its `w:pStyle`, else the default one) sets, over
    `defaults` (the document's, or its table style's over them)."""
    sid = default_para
    for ppr in p:
        if local(ppr.tag) == "pPr":
            for s in ppr:
                if local(s.tag) == "pStyle":
                    sid = attr(s, "val")
            break
    return _over(chain.resolved(sid), defaults) if sid else defaults


def _run_flags(run: Any, chain: _Chains, para: Flags) -> Flags:
    """A run's direct formatting over its character style over its paragraph's `para`."""
    for rpr in run:
        if local(rpr.tag) == "rPr":
            char = next((attr(s, "val") for s in rpr if local(s.tag) == "rStyle"), None)
            flags = _over(chain.resolved(char), para) if char else para
            return _over(_rpr_flags(rpr, hiding=True), flags)
    return para


_ODF_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_ODF_FO = "{urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0}"
_ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
#: Text elements by the style family their `text:style-name` names.
_ODF_FAMILY = {_ODF_TEXT + "p": "paragraph", _ODF_TEXT + "h": "paragraph",
               _ODF_TEXT + "span": "text", _ODF_TEXT + "a": "text"}


def _odf_flags(style: Any) -> Flags:
    """The upper case, small caps, hidden text and lower case an OpenDocument style's text
    properties set (`fo:text-transform`, `fo:font-variant`, `text:display`)."""
    upper = small = hidden = lower = None
    for props in style:
        if props.tag != _ODF_STYLE + "text-properties":
            continue
        transform = props.get(_ODF_FO + "text-transform")
        if transform is not None:
            upper = transform.strip() == "uppercase"
            lower = transform.strip() == "lowercase"
        variant = props.get(_ODF_FO + "font-variant")
        if variant is not None:
            small = variant.strip() == "small-caps"
        display = props.get(_ODF_TEXT + "display")
        if display in ("none", "true"):
            hidden = display == "none"
    return (upper, small, hidden, lower)


def odf_styled_reading(pkg: Package) -> str | None:
    """An OpenDocument text's reading with the capitals and hidden text of its styles, the
    common ones of `styles.xml` with the automatic ones of `content.xml`, through their
    parents (LibreOffice's print); None when no style sets any."""
    content = pkg.raw("content.xml")
    common = pkg.raw("styles.xml")
    if content is None or not any(_ODF_STYLED.search(b) for b in (content, common or b"")):
        return None
    _parsable(common or b"")
    root = pkg.xml("content.xml")
    if root is None:
        return None
    return odf_styled_text(root, pkg.xml("styles.xml") if common is not None else None,
                           pkg.ctx.check_time)


def flat_odf_reading(root: Any, data: bytes) -> str | None:
    """`odf_styled_reading` of a flat OpenDocument file (.fodt: its styles and body in one
    XML document, `data` parsed as `root`), for `textual`'s readings of a part."""
    if local(root.tag) != "document" or not _ODF_STYLED.search(data):
        return None
    return odf_styled_text(root, root, lambda: None)  # (linear in the part's size)


def odf_styled_text(root: Any, common_root: Any, check: Callable[[], None]) -> str | None:
    """The text of an OpenDocument body `root` with the automatic styles it holds and the
    common styles `common_root` holds applied; None when they show no element otherwise
    than as written."""
    empty: Flags = (None, None, None, None)
    chains = {"paragraph": _Chains(check, empty), "text": _Chains(check, empty)}
    default = empty
    # automatic styles first (the body names them first), the last of a name first in each
    # part (LibreOffice applies the last definition of a name)
    for part, kind in ((root, "automatic-styles"), (common_root, "styles")):
        found = [st for el in (part if part is not None else ()) if local(el.tag) == kind
                 for st in el]
        for i, st in enumerate(reversed(found)):
            if not i % 4096:
                check()
            family = st.get(_ODF_STYLE + "family")
            if family not in chains:
                continue
            if st.tag == _ODF_STYLE + "style":
                chains[family].add(st.get(_ODF_STYLE + "name", ""), _odf_flags(st),
                                   st.get(_ODF_STYLE + "parent-style-name"))
            elif st.tag == _ODF_STYLE + "default-style" and family == "paragraph":
                default = _over(default, _odf_flags(st))
    styled = _odf_elements(root, chains, default, check)
    if not any(mode != textual.STYLE_PLAIN for mode in styled.values()):
        return None
    text = textual.shown_text(root, styled=styled).decode("utf-8", "replace")
    return text if text.strip() else None


def _odf_elements(root: Any, chains: dict[str, _Chains], default: Flags,
                  check: Callable[[], None]) -> dict[int, str]:
    """How the styles show each paragraph, heading, span and link (by `id`): its style's
    settings over those of the element it is in (a paragraph's: the default style's)."""
    styled: dict[int, str] = {}
    stack: list[tuple[Any, Flags]] = [(root, default)]
    walked = 0
    while stack:
        el, flags = stack.pop()
        walked += 1
        if not walked % 4096:
            check()
        family = _ODF_FAMILY.get(el.tag) if isinstance(el.tag, str) else None
        if family is not None:
            name = el.get(_ODF_TEXT + "style-name")
            base = default if family == "paragraph" else flags
            flags = _over(chains[family].resolved(name), base) if name else base
            styled[id(el)] = _mode(flags, (0, 1), 2, 3)
        stack.extend((child, flags) for child in el)
    return styled


# --- OpenDocument: what the layout shows (round 20) -------------------------------------

_ODF_META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
_ODF_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODF_LAID = re.compile(rb"hidden-paragraph|user-defined|note-body|ruby-text")
_CONDITION = re.compile(r"\s*(-?[0-9]+(?:\.[0-9]*)?|true|false)\s*"
                        r"(?:(==|!=|<>|<=|>=|<|>|eq|neq|ne|leq|le|geq|ge|lt|gt)\s*"
                        r"(-?[0-9]+(?:\.[0-9]*)?|true|false)\s*)?", re.IGNORECASE)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "eq": lambda a, b: a == b,
    "!=": lambda a, b: a != b, "<>": lambda a, b: a != b, "neq": lambda a, b: a != b,
    "ne": lambda a, b: a != b, "<": lambda a, b: a < b, "lt": lambda a, b: a < b,
    ">": lambda a, b: a > b, "gt": lambda a, b: a > b, "<=": lambda a, b: a <= b,
    "le": lambda a, b: a <= b, "leq": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
    "ge": lambda a, b: a >= b, "geq": lambda a, b: a >= b,
}


def _condition_true(condition: str) -> bool:
    """Whether LibreOffice finds a hidden paragraph's condition true, for the conditions
    of constants it is sure of: a number (not 0), TRUE, or two compared (`ooow:1==1`).
    Anything else counts as false (LibreOffice shows a paragraph whose condition it cannot
    compute; its cached `text:is-hidden` it does not read)."""
    expr = condition.split(":", 1)[1] if re.match(r"\w+:", condition) else condition
    m = _CONDITION.fullmatch(expr[:200])
    if m is None:
        return False

    def value(token: str) -> float:
        low = token.lower()
        return 1.0 if low == "true" else 0.0 if low == "false" else float(token)

    a, op, b = m.groups()
    if op is None:
        return value(a) != 0
    return _COMPARE[op.lower()](value(a), value(b))


def odf_layout_reading(pkg: Package) -> str | None:
    """An OpenDocument text as LibreOffice lays it out and prints it (round 20), where it
    differs from the text as written: a paragraph with a `text:hidden-paragraph` whose
    condition is true left out (`_condition_true`); a `text:user-defined` field shows the
    `meta:user-defined` property of its name from `meta.xml` (none: nothing), not its
    cached text; a paragraph's ruby texts (drawn above it) on a line before it; note bodies
    (drawn at the page's foot, endnotes at the end) after the text, in order. The styles
    are applied too (`odf_styled_text`). None when the body has none of these."""
    content = pkg.raw("content.xml")
    if content is None or not _ODF_LAID.search(content):
        return None
    root = pkg.xml("content.xml")
    if root is None:
        return None
    meta = pkg.xml("meta.xml") if pkg.has("meta.xml") else None
    common = pkg.xml("styles.xml") if pkg.has("styles.xml") else None
    return odf_laid_out(root, meta if meta is not None else root, common, pkg.ctx.check_time)


def flat_odf_laid_out(root: Any, data: bytes) -> str | None:
    """`odf_layout_reading` of a flat OpenDocument file (its meta, styles and body in one
    XML document, `data` parsed as `root`)."""
    if local(root.tag) != "document" or not _ODF_LAID.search(data):
        return None
    return odf_laid_out(root, root, root, lambda: None)  # (linear in the part's size)


def odf_laid_out(root: Any, meta: Any, common: Any, check: Callable[[], None]) -> str | None:
    """`odf_layout_reading` of body `root`, with the document properties `meta` holds."""
    import copy as copy_module

    root = copy_module.deepcopy(root)
    check()
    props: dict[str, str] = {}
    for el in meta.iter(_ODF_META + "user-defined"):
        props.setdefault(el.get(_ODF_META + "name", ""), "".join(el.itertext()))
    name_attr, paras = _ODF_TEXT + "name", (_ODF_TEXT + "p", _ODF_TEXT + "h")
    notes: dict[str, list[Any]] = {"footnote": [], "endnote": []}
    rubies: list[tuple[Any, Any, list[str]]] = []  # (parent, paragraph, ruby texts)
    changed = False
    parents = {id(child): el for el in root.iter() for child in el}
    for i, el in enumerate(list(root.iter())):
        if not i % 4096:
            check()
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == _ODF_TEXT + "hidden-paragraph":
            para = parents.get(id(el))
            if para is not None and para.tag in paras and _condition_true(
                    el.get(_ODF_TEXT + "condition", "")):
                para.set(_ODF_TEXT + "display", "none")
                changed = True
        elif tag == _ODF_TEXT + "user-defined":
            for child in list(el):
                el.remove(child)
            el.tag, el.text = _ODF_TEXT + "span", props.get(el.get(name_attr, ""), "")
            changed = True
        elif tag == _ODF_TEXT + "note":
            for body in [b for b in el if b.tag == _ODF_TEXT + "note-body"]:
                el.remove(body)
                kind = el.get(_ODF_TEXT + "note-class", "footnote")
                notes["endnote" if kind == "endnote" else "footnote"].append(body)
                changed = True
        elif tag == _ODF_TEXT + "ruby-text":
            para = parents.get(id(el))
            while para is not None and para.tag not in paras:
                para = parents.get(id(para))
            holder = parents.get(id(para)) if para is not None else None
            if para is not None and holder is not None:
                if not rubies or rubies[-1][1] is not para:
                    rubies.append((holder, para, []))
                rubies[-1][2].append("".join(el.itertext()))
                changed = True
    if not changed:
        return None
    above: dict[int, Any] = {}  # id of a paragraph -> the line of its ruby texts
    holders: dict[int, Any] = {}
    for holder, para, texts in rubies:
        line = above[id(para)] = para.makeelement(_ODF_TEXT + "p", {})
        line.text = " ".join(texts)
        holders[id(holder)] = holder
    for holder in holders.values():  # each holder's children placed once (linear)
        children = list(holder)
        for child in children:
            holder.remove(child)
        for child in children:
            if id(child) in above:
                holder.append(above[id(child)])
            holder.append(child)
    text_body = next(root.iter(_ODF_OFFICE + "text"), None)
    if text_body is not None:
        for body in notes["footnote"] + notes["endnote"]:
            text_body.extend(list(body))
    styled = odf_styled_text(root, common, check)
    text = styled if styled is not None else textual.shown_text(root).decode("utf-8", "replace")
    return text if text.strip() else None
