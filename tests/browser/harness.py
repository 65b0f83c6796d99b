"""Helpers of the browser tests: Debian's Chromium driven by Playwright against a real uvicorn server on a
temporary store filled by real ``labkeep.init()`` runs.

Every page fails its test on any console error or uncaught exception (``page.on("console")``
and ``pageerror``), unless the test names the one error it expects. Screenshots go to
``$LABKEEP_SCREENSHOTS`` (default: a temporary directory, printed in the summary).
The directory is a package (``browser``) so that its modules never shadow ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import LiveServer

CHROMIUM = os.environ.get("LABKEEP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POPULATE = Path(__file__).with_name("populate_store.py")
SRC = Path(__file__).resolve().parents[2] / "src"
XSS_NAME = "<script>alert(1)</script>"
#: Every screenshot taken in this session (the summary names their directory).
shots: list[Path] = []


def child_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = str(SRC)
    env["LABKEEP_HOME"] = str(store)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ConsoleWatch:
    """Console errors, uncaught exceptions and dialogs of a page; a test fails on any of
    them unless it declared the error it expects with :meth:`allow`."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.failed_requests: list[str] = []
        self.dialogs: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


class Pages:
    """Opens pages of the live server in fresh browser contexts, watched for errors."""

    def __init__(self, browser: Any, server: LiveServer, shots: Path, test_name: str) -> None:
        self.browser = browser
        self.server = server
        self.shots = shots
        self.test_name = test_name
        self.watch = ConsoleWatch()
        self.contexts: list[Any] = []

    def open(
        self,
        path: str,
        *,
        wait_ready: bool = True,
        enforce_csp: bool = False,
        prepare: Callable[[Any], object] | None = None,
    ) -> Any:
        """Open ``path`` in a new context. Playwright's polling helpers evaluate strings,
        which the UI's Content-Security-Policy forbids, so the policy is bypassed unless
        ``enforce_csp`` (then a violation shows as a console error and fails the test).
        ``prepare`` gets the context before the page loads (to route requests, say)."""
        context = self.browser.new_context(
            viewport={"width": 1440, "height": 900}, bypass_csp=not enforce_csp
        )
        self.contexts.append(context)
        if prepare is not None:
            prepare(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        watch = self.watch
        page.on(
            "console",
            lambda msg: (
                watch.errors.append(f"console {msg.type}: {msg.text} @ {page.url}")
                if msg.type == "error"
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                watch.failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None
            ),
        )
        page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc} @ {page.url}"))

        def on_dialog(dialog: Any) -> None:
            watch.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(self.server.url + path)
        if wait_ready:
            page.wait_for_selector("body[data-ready=true]")
        return page

    def screenshot(self, page: Any, name: str) -> Path:
        path = self.shots / f"{self.test_name}-{name}.png"
        page.screenshot(path=str(path), full_page=False)
        shots.append(path)
        return path

    def close(self) -> None:
        for context in self.contexts:
            context.close()
