"""One headless Chromium per test process, the scanner tests' oracle.

The scanner's HTML tests ask Chromium what it shows of some 800 pages. Starting
`chromium --headless --dump-dom` for each page cost 0.85 s of a quiet core and 2.5 s on the
loaded CI machine: minutes of a CI bound to 30. Here one browser (Debian's, driven by
Playwright) serves every page of the process, set up as the command line sets it up: the
same window (780x493 by default), screen (800x600), scrollbars, `--force-dark-mode` as the
dark color scheme, `--virtual-time-budget` as the same DevTools virtual-time policy,
`--print-to-pdf` as `Page.printToPDF` with backgrounds and the default paper and margins.
Each view has a context of its own (a page is a fresh document in its tab); a page with a
virtual-time budget gets a fresh context.

The browser lives in a thread of its own, so that a test's event loop never meets
Playwright's; it is started on first use and stopped when the process exits.
"""

from __future__ import annotations

import atexit
import base64
import queue
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium")
_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DEFAULT_WINDOW = (780, 493)  # (what `chromium --headless` lays a page out in, scrollbar included)
_SCREEN = {"width": 800, "height": 600}
_PAGE_TIMEOUT_MS = 60_000
_DOCUMENT = ("(document.doctype ? '<!DOCTYPE ' + document.doctype.name + '>\\n' : '')"
             " + (document.documentElement ? document.documentElement.outerHTML : '')")


@dataclass(frozen=True)
class View:
    """How a page is shown: the layout viewport (`window_flag` gives the one of the command
    line's `--window-size`), the dark color scheme, a virtual-time budget, scrollbars."""

    window: tuple[int, int] = DEFAULT_WINDOW
    dark: bool = False
    virtual_time_ms: int | None = None
    scrollbars: bool = True


SCREEN = View()  # (what `chromium --headless` shows a page in)


def window_flag(width: int, height: int) -> tuple[int, int]:
    """The viewport `chromium --headless --window-size=width,height` lays a page out in."""
    return max(width, 500), height - 87


Then = Callable[[Any, Any], Any]  # (page, its DevTools session) -> the caller's answer


class _Tab:
    """A page in a context of its own, set up for one `View`."""

    def __init__(self, browser: Any, view: View) -> None:
        width, height = view.window
        self.ctx = browser.new_context(viewport={"width": width, "height": height},
                                       screen=_SCREEN,
                                       color_scheme="dark" if view.dark else "light")
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(_PAGE_TIMEOUT_MS)
        self.cdp = self.ctx.new_cdp_session(self.page)
        if not view.scrollbars:
            self.cdp.send("Emulation.setScrollbarsHidden", {"hidden": True})

    def close(self) -> None:
        self.ctx.close()


class _Browser:
    """The browser's thread: it runs one page at a time, in the order asked.

    Pages without a virtual-time budget reuse one tab per view (a navigation costs ~20 ms, a
    new tab's renderer ~160 ms); a page whose load fails leaves its tab closed. A budget is a
    policy of the tab's, so those pages get a tab of their own."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[str, View, Then, Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="chromium", daemon=True)
        self._thread.start()

    def run(self, uri: str, view: View, then: Then) -> Any:
        done: Future[Any] = Future()
        self._jobs.put((uri, view, then, done))
        return done.result(timeout=300)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser: Any = None
            tabs: dict[View, _Tab] = {}
            while (item := self._jobs.get()) is not None:
                uri, view, then, done = item
                try:
                    if browser is None or not browser.is_connected():
                        tabs.clear()
                        browser = pw.chromium.launch(
                            executable_path=CHROMIUM or "chromium", args=_ARGS,
                            ignore_default_args=["--hide-scrollbars"])
                    if view.virtual_time_ms is None:
                        tab = tabs.pop(view, None) or _Tab(browser, view)
                        tab.page.goto(uri, wait_until="load")
                        done.set_result(then(tab.page, tab.cdp))
                        tabs[view] = tab  # (only a tab whose page loaded is used again)
                    else:
                        tab = _Tab(browser, view)
                        try:
                            done.set_result(then(*_budget_spent(tab, uri, view.virtual_time_ms)))
                        finally:
                            tab.close()
                except BaseException as exc:  # (the caller's test fails with it)
                    done.set_exception(exc)
            if browser is not None:
                browser.close()


def _budget_spent(tab: _Tab, uri: str, budget_ms: int) -> tuple[Any, Any]:
    """Load `uri` in `tab` and let the page's timers run until `budget_ms` of virtual time
    are spent, network fetches pausing the clock (what `--virtual-time-budget` does)."""
    expired: list[bool] = []
    tab.cdp.on("Emulation.virtualTimeBudgetExpired", lambda _: expired.append(True))
    tab.page.goto(uri, wait_until="commit")
    tab.cdp.send("Emulation.setVirtualTimePolicy",
                 {"policy": "pauseIfNetworkFetchesPending", "budget": budget_ms})
    for _ in range(_PAGE_TIMEOUT_MS // 20):
        if expired:
            return tab.page, tab.cdp
        tab.page.wait_for_timeout(20)
    raise TimeoutError(f"virtual time did not run out on {uri}")


_lock = threading.Lock()
_shared: _Browser | None = None


def _browser() -> _Browser:
    global _shared
    with _lock:
        if _shared is None:
            _shared = _Browser()
            atexit.register(_shared.stop)
        return _shared


def dump_dom(path: Path, view: View = SCREEN) -> bytes:
    """What `chromium --headless --dump-dom` prints for the page at `path`: the document
    element's markup once the page has loaded (or its virtual-time budget has run out)."""
    html = _browser().run(path.as_uri(), view, lambda page, _cdp: page.evaluate(_DOCUMENT))
    return str(html).encode()


def print_pdf(path: Path) -> bytes:
    """What `chromium --headless --no-pdf-header-footer --print-to-pdf` writes for the page:
    `Page.printToPDF` as the command line calls it (US Letter, 1 cm margins, backgrounds)."""
    data = _browser().run(path.as_uri(), SCREEN, lambda _page, cdp: cdp.send(
        "Page.printToPDF", {"displayHeaderFooter": False, "printBackground": True})["data"])
    return base64.b64decode(data)


def screenshot(path: Path, view: View) -> bytes:
    """A PNG of the page's viewport (`--screenshot`; `--hide-scrollbars` is
    `View(scrollbars=False)`)."""
    return bytes(_browser().run(path.as_uri(), view, lambda page, _cdp: page.screenshot()))
