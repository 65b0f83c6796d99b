"""Fixtures of the browser tests (helpers in ``harness.py``): a store filled by real runs, a
uvicorn server on it, Chromium, and ``pages``, which fails a test on any console error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.harness import CHROMIUM, CHROMIUM_ARGS, POPULATE, LiveServer, Pages, child_env, shots


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if shots:
        terminalreporter.write_line(f"labkeep: {len(shots)} UI screenshots in {shots[0].parent}")


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of every kind the UI shows (see populate_store.py): numbers 1-5, run 5 named
    like a script tag."""
    root = tmp_path_factory.mktemp("ui")
    work = root / "work"
    work.mkdir()
    script = work / "train.py"
    shutil.copy(POPULATE, script)
    subprocess.run(
        [sys.executable, str(script), str(root / "store"), str(work)],
        cwd=work,
        env=child_env(root / "store"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return root / "store"


@pytest.fixture(scope="session")
def server(ui_store: Path) -> Iterator[LiveServer]:
    live = LiveServer(ui_store).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("LABKEEP_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture()
def pages(
    browser: Any, server: LiveServer, screenshot_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Pages]:
    opened = Pages(browser, server, screenshot_dir, request.node.name)
    yield opened
    opened.close()
    unexpected = opened.watch.unexpected()
    assert not unexpected, "errors in the browser console:\n" + "\n".join(
        unexpected + [f"(failed request: {r})" for r in opened.watch.failed_requests]
    )
    assert not opened.watch.dialogs, (
        f"unexpected dialogs (an injected script ran?): {opened.watch.dialogs}"
    )
