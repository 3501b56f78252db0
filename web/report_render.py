"""Printing HTML to PDF and PNG with the headless Chromium of the operating system (Debian ``chromium``).

The planner's report is HTML with a server-drawn SVG map, so it needs no
network: Chromium prints it (``--print-to-pdf``) or photographs it
(``--screenshot``) from a temporary file, with no sandbox, GPU, extensions or
network. Chinese text needs a CJK font (Debian ``fonts-noto-cjk``, installed by
``scripts/system-deps.sh``).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from services.errors import Unavailable

#: Seconds Chromium may take to print one report.
RENDER_TIMEOUT_S = 90
#: How many times a print is tried before the request is answered 503: a headless Chromium now and then
#: exits without printing (seen under a full test run on two cores), and a second try in a fresh profile prints.
ATTEMPTS = 2
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-zygote", "--single-process",
                 "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run", "--disable-breakpad",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-features=Translate,MediaRouter,OptimizationHints", "--hide-scrollbars",
                 "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")


class RenderUnavailable(Unavailable):
    """The report cannot be printed here now (no Chromium, or it failed twice): a 503, not a fault of the request."""


def chromium() -> str:
    """The Chromium executable, or :class:`RenderUnavailable` saying what to install."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RenderUnavailable("the PDF/PNG report needs Chromium: install the Debian package `chromium` "
                                "(scripts/system-deps.sh demo does)")
    return found


def _print_once(html: str, flag: str, suffix: str, extra: tuple[str, ...]) -> tuple[bytes | None, str]:
    """The printed bytes, or ``None`` and why not (Chromium's exit status and the end of what it said)."""
    with tempfile.TemporaryDirectory(prefix="minsheng-report-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / f"out.{suffix}"
        page.write_text(html, encoding="utf-8")
        cmd = [chromium(), *CHROMIUM_ARGS, f"--user-data-dir={tmp}/profile", *extra, f"{flag}={out}",
               page.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=RENDER_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return None, f"it took more than {RENDER_TIMEOUT_S} s"
        if not out.exists() or out.stat().st_size == 0:
            return None, f"exit {done.returncode}: {done.stderr.decode('utf-8', 'replace')[-300:]}"
        return out.read_bytes(), ""


def _run(html: str, flag: str, suffix: str, extra: tuple[str, ...] = ()) -> bytes:
    why = ""
    for _ in range(ATTEMPTS):
        printed, why = _print_once(html, flag, suffix, extra)
        if printed is not None:
            return printed
    raise RenderUnavailable(f"Chromium could not print the report ({ATTEMPTS} tries; last: {why}); "
                            "please try again shortly")


def pdf(html: str) -> bytes:
    """The PDF of ``html`` (A4 pages as its CSS says; no header or footer)."""
    return _run(html, "--print-to-pdf", "pdf", ("--no-pdf-header-footer",))


def png(html: str, width: int = 1200, height: int = 900) -> bytes:
    """A ``width`` x ``height`` PNG screenshot of ``html``."""
    return _run(html, "--screenshot", "png", (f"--window-size={width},{height}",))
