"""Real headless Chromium for the page tests, and axe-core accessibility checks in it.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright (never a
downloaded browser); axe-core comes from the npm registry (``node_modules``),
injected into the page under test from the local file, so nothing is fetched.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
#: Flags for a closed network: no background connections, no first-run work.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: WCAG 2.1 A and AA rules (what the project promises).
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def launch() -> Iterator[Browser]:
    """A headless Chromium for a fixture to yield (closed afterwards)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run `make test` (it installs it)")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


def axe_violations(page: Page, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now, of the given impacts.

    Each item has ``id``, ``impact``, ``help`` and the failing ``targets`` (CSS selectors).
    """
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `make test` (npm ci installs it)")
    # Evaluated through the DevTools protocol, which the page's CSP (rightly) does not let a script tag do.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [n["target"] for n in v["nodes"]]}
            for v in result["violations"] if v["impact"] in impacts]
