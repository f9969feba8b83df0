"""Readings of an Office Open XML package that need several of its parts (round 16).

A .docx or .xlsx is a zip: `decompose.children` scans each part as a layer of its own, and
`textual.office_xml_readings` reads each part's text. Some of what a reader shows is only made
of several parts together, and a sender put the base64 of a file there:

- a Word document's footnotes and endnotes (`word/footnotes.xml`, stored in any order) are
  shown in the order the document references them (`pandoc -t plain` lists them so);
- its list labels are the literal text of `w:lvlText` in `word/numbering.xml` (definitions in
  any order), shown before each numbered paragraph (LibreOffice's text export);
- a worksheet's cells name shared strings and number formats by index (`spreadsheet`).

So these readings are made where the whole package is at hand: `package_readings`, called by
`decompose.children` with the members of a zip. Each is one more text layer (the signatures
and the base64 finders run on it, as on every text), never a verdict of its own. Parts are
parsed with defusedxml after `textual.xml_plain` (entities bounded), each at most
`textual.MAX_XML` bytes; every reading is cut at `MAX_TEXT` characters, every loop is bounded
by the parts' sizes and checks the scan's time.
"""

from __future__ import annotations

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
            texts = [word_reading(pkg, main)]
        elif kind == "workbook":
            texts = list(spreadsheet.workbook_readings(pkg, main))
        for text in texts:
            if text and text not in (t for t, _ in readings):
                readings.append((text, "office-notes-labels" if kind == "document"
                                 else "spreadsheet-cells"))
    for text, origin in readings:
        body = text.encode("utf-8", "replace")
        ctx.charge_child(len(body))
        yield Child(data=body, name=None, origin=origin)


# --- Word: list labels and notes ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%([1-9])")
_LEVELS = 9
#: Counters past this are shown as decimal (no roman numeral or letter run of a million).
_MAX_COUNTER = 100_000


def word_reading(pkg: Package, main: str) -> str | None:
    """The document's text with each numbered paragraph's list label before it, then its
    footnotes and endnotes in the order it references them; None when it has neither."""
    root = pkg.xml(main)
    if root is None:
        return None
    budget = Budget(pkg.ctx.check_time)
    labels = _list_labels(pkg, main, root, budget)
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
    __slots__ = ("fmt", "start", "suffix", "text")

    def __init__(self, el: Any) -> None:
        self.start, self.fmt, self.text, self.suffix = 1, "decimal", "", "\t"
        for child in el:
            name, val = local(child.tag), attr(child, "val")
            if val is None:
                continue
            if name == "start":
                self.start = _int(val, 1)
            elif name == "numFmt":
                self.fmt = val
            elif name == "lvlText":
                self.text = val
            elif name == "suff":
                self.suffix = {"space": " ", "nothing": ""}.get(val, "\t")


def _int(text: str, default: int) -> int:
    text = text.strip()
    if not text or len(text) > 9 or not text.lstrip("-").isdigit():
        return default
    return int(text)


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
                        lvl.start = _int(attr(o, "val") or "1", 1)
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
    """Paragraph style id -> the numbering it sets (through `basedOn`, 8 levels deep)."""
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
    for sid in set(own) | set(based):
        cur: str | None = sid
        for _ in range(8):
            if cur is None:
                break
            if own.get(cur, (None, None))[0] is not None:
                out[sid] = own[cur]
                break
            cur = based.get(cur)
    return out


def _list_labels(pkg: Package, main: str, root: Any, budget: Budget) -> dict[int, str]:
    """Each numbered paragraph's label (by the element's `id`), counted in document order."""
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
            templates[key] = _template(lvl.text, levels)
        count = counters.setdefault(num_id or "", [None] * _LEVELS)
        prev = count[level]
        count[level] = lvl.start if prev is None else min(prev + 1, _MAX_COUNTER)
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
                pieces.append(_counter(n, at.fmt if at is not None else "decimal"))
        text = "".join(pieces)
        if not text:
            continue
        label = budget.take(text + lvl.suffix)
        if not label:
            break  # the reading is as long as it may be
        labels[id(p)] = label
    return labels


def _template(text: str, levels: dict[int, _Level]) -> list[str | int]:
    """A level's label text as tokens: literal text (merged) and the level numbers of its
    placeholders (`%1` is 0), leaving out those of levels shown as nothing (`none`): each
    token then shows at least one character, so a label's work is what it shows."""
    out: list[str | int] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        k = int(m.group(1)) - 1
        literal = text[pos : m.start()]
        pos = m.end()
        if literal:
            if out and isinstance(out[-1], str):
                out[-1] += literal
            else:
                out.append(literal)
        at = levels.get(k)
        if at is None or at.fmt != "none":
            out.append(k)
    rest = text[pos:]
    if rest:
        if out and isinstance(out[-1], str):
            out[-1] += rest
        else:
            out.append(rest)
    return out


_ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
          (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))


def _counter(n: int, fmt: str) -> str:
    """A list counter in Word's number format `fmt` (others as decimal)."""
    if fmt == "none":
        return ""
    if fmt in ("lowerRoman", "upperRoman") and 0 < n < 4000:
        out = []
        for value, digits in _ROMAN:
            while n >= value:
                out.append(digits)
                n -= value
        text = "".join(out)
        return text.upper() if fmt == "upperRoman" else text
    if fmt in ("lowerLetter", "upperLetter") and 0 < n <= 26 * 40:
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt == "decimalZero" and 0 <= n < 10:
        return f"0{n}"
    return str(n)
