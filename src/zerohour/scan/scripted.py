"""Files a browser opens and that run script: `Heuristics.HTML.Script`.

HTML smuggling builds the payload in the recipient's browser: an attached `invoice.html`
turns a literal into bytes (atob, JS escapes, char codes, `DecompressionStream`, a string
assembled at run time) and offers it as a download. We decode the literal forms we know
(`encodings`), but script can assemble bytes in ways no static decoder follows
(`window["at"+"ob"](...)`), so a file that runs script when opened is never "clean": it is
a heuristic finding, reported when no signature matched (as clamscan reports its heuristics
without --heuristic-scan-precedence), switchable (`Limits.alert_html_script`; the gateway's
default is on, `zerohour scan` needs `--alert-html-script`).

Which layers: those a recipient opens as a file (an attachment, an archive member, a file
decoded from text; not the HTML body of a mail, whose script no mail client runs) that are
HTML or SVG by content, or named like a file a browser renders (`.html`, `.svg`, `.hta`,
...: a browser renders a local file by its name, whatever its first bytes). Script is a
`<script>` element, an event handler attribute (`onload=`, also after `/` as in
`<svg/onload=...>`) or a `javascript:`/`vbscript:` URL, also behind character references
(`jav&#x61;script:`, a page in `srcdoc="&lt;script&gt;..."`), namespaced (`<s:script>`),
in UTF-16, cut by ISO-2022-JP escape sequences (`<scr ESC(B ipt>`) or in UTF-7
(`+ADw-script+AD4-`, which mshta still reads in an `.hta`).
"""

from __future__ import annotations

import html

from zerohour.scan import textual
from zerohour.scan.gates import Gate
from zerohour.scan.types import FileType

NAME = "Heuristics.HTML.Script"

#: Extensions a browser (or mshta) renders as HTML/SVG when the file is opened.
BROWSER_EXTENSIONS = (".htm", ".html", ".xhtml", ".xht", ".shtml", ".shtm", ".svg", ".svgz",
                      ".hta", ".mht", ".mhtml", ".xml", ".xsl", ".xslt")

#: Event handler attributes browsers run (HTML's global, window and media handlers, SVG's
#: animation and legacy ones): `onhand="341"` or `online="true"` in an XML export is data.
_HANDLERS = (
    b"abort afterprint animationcancel animationend animationiteration animationstart "
    b"auxclick beforeinput beforematch beforeprint beforetoggle beforeunload begin blur "
    b"cancel canplay canplaythrough change click close contentvisibilityautostatechange "
    b"contextlost contextmenu contextrestored copy cuechange cut dblclick drag dragend "
    b"dragenter dragexit dragleave dragover dragstart drop durationchange emptied end "
    b"ended error focus focusin focusout formdata fullscreenchange fullscreenerror "
    b"gotpointercapture hashchange input invalid keydown keypress keyup languagechange load "
    b"loadeddata loadedmetadata loadend loadstart lostpointercapture message messageerror "
    b"mousedown mouseenter mouseleave mousemove mouseout mouseover mouseup mousewheel "
    b"offline online pagehide pagereveal pageshow pageswap paste pause play playing "
    b"pointercancel pointerdown pointerenter pointerleave pointermove pointerout pointerover "
    b"pointerrawupdate pointerup popstate progress ratechange rejectionhandled repeat reset "
    b"resize scroll scrollend securitypolicyviolation seeked seeking select selectionchange "
    b"selectstart show slotchange stalled storage submit suspend timeupdate toggle "
    b"touchcancel touchend touchmove touchstart transitioncancel transitionend transitionrun "
    b"transitionstart unhandledrejection unload volumechange waiting webkitanimationend "
    b"webkitanimationiteration webkitanimationstart webkittransitionend wheel activate "
    b"focusin zoom readystatechange beforecopy beforecut beforepaste search"
).split()
#: A script element (also namespaced: `<s:script>` in SVG or XHTML served as XML), an event
#: handler attribute inside a tag (`online = paid` in a page's text is text), a
#: javascript:/vbscript: URL (a URL parser drops tabs and line breaks inside: `java\nscript:`).
_ATTRIBUTE = (rb"<[a-z][^>]*[\s/\"']on(?:" + b"|".join(sorted(set(_HANDLERS))) + rb")\s*="
              rb"|=\s*[\"']?\s*(?:j\s*a\s*v\s*a|v\s*b)\s*s\s*c\s*r\s*i\s*p\s*t\s*:")
_SCRIPT = Gate(rb"<(?:[a-z0-9_.-]+:)?script[\s>/]|" + _ATTRIBUTE)
#: After character references are decoded, outside an iframe's srcdoc only attributes count
#: ("&lt;script&gt;" in a page's text is text).
_SCRIPT_ATTRIBUTE = Gate(_ATTRIBUTE)
_SRCDOC = Gate(rb"srcdoc")
_SVG = Gate(rb"<svg[\s>/]")
_AMP = b"&"


def opened_as_file(name: str | None, is_attachment: bool) -> bool:
    """Whether a layer is something the recipient opens on its own (not a mail's body)."""
    return name is not None or is_attachment


#: Names a browser opens as an HTML page, whatever the file's first bytes.
HTML_EXTENSIONS = (".htm", ".html", ".xhtml", ".xht", ".shtml", ".shtm", ".hta")


def page_by_name(name: str | None) -> bool:
    """Whether a browser renders a file of this name as an HTML page."""
    return name is not None and name.lower().rstrip(". ").endswith(HTML_EXTENSIONS)


def rendered_by_name(name: str | None) -> bool:
    """Whether a browser renders a file of this name as HTML/SVG, whatever its bytes."""
    return name is not None and name.lower().rstrip(". ").endswith(BROWSER_EXTENSIONS)


#: Names the recipient's system opens in an editor or an interpreter, never a browser: HTML
#: sniffed in their content is source or data (a Python module whose docstrings show a page,
#: in every wheel that vendors pygments), not a page that runs.
_SOURCE_EXTENSIONS = (".py", ".pyi", ".pyx", ".txt", ".md", ".rst", ".c", ".h", ".cc", ".cpp",
                      ".hpp", ".java", ".kt", ".go", ".rs", ".rb", ".pl", ".pm", ".php", ".css",
                      ".scss", ".json", ".yml", ".yaml", ".toml", ".ini", ".cfg", ".csv",
                      ".tsv", ".log", ".tex", ".diff", ".patch", ".po", ".pot", ".ts", ".tsx",
                      ".jsx", ".vue", ".erb", ".jinja", ".j2", ".tmpl", ".mako")


def opened_by_an_editor(name: str | None) -> bool:
    """Whether a file of this name opens as source or data, whatever its bytes."""
    return name is not None and name.lower().rstrip(". ").endswith(_SOURCE_EXTENSIONS)


def runs_script(data: bytes, filetype: FileType, name: str | None) -> bool:
    """Whether `data`, opened as a file named `name`, is HTML or SVG that runs script."""
    rendered = filetype is FileType.HTML or rendered_by_name(name)
    if not rendered and not (filetype is FileType.TEXT and _SVG(data)):
        return False
    if opened_by_an_editor(name):
        return False
    texts = [data]
    if b"\x00" in data[:4096]:  # UTF-16 HTML (a browser reads it by its BOM or sniffing)
        texts += [data.decode(codec, "ignore").encode("utf-8") for codec in ("utf-16-le",
                                                                                 "utf-16-be")]
    # `<scr ESC(B ipt>` (the escape is dropped), `+ADw-script+AD4-` (mshta reads UTF-7)
    texts += [t for t in (textual.iso2022_text(data), textual.utf7_text(data)) if t]
    for text in texts:
        if _SCRIPT(text):
            return True
        if _AMP in text:  # character references: `jav&#x61;script:`, `javascript&colon;`,
            # `&Tab;`, and a whole page in an iframe's srcdoc ("&lt;script&gt;...")
            unescaped = html.unescape(text.decode("latin-1")).encode("utf-8", "replace")
            if (_SCRIPT if _SRCDOC(text) else _SCRIPT_ATTRIBUTE)(unescaped):
                return True
    return False
