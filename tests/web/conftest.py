"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser),
the API run as a real subprocess, and screenshots kept where CI collects them."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.conftest import ROOT, Broker
from tests.live_api import running_api

# Screenshots go to <artifacts>/screenshots/<name>.png; CI uploads the directory.
ARTIFACTS = Path(os.environ.get("LOOPTRACK_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
# Wide enough for the pages' desktop layout; full-page screenshots take the height they need.
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# The outcome of a test's call phase, for the fixtures' teardown to read.
CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def chromium_path() -> str:
    """Debian's chromium (LOOPTRACK_TEST_CHROMIUM overrides); a test run without one fails
    rather than skips, so CI never passes without having run the browser tests."""
    path = os.environ.get("LOOPTRACK_TEST_CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"no chromium found ({path or 'not on PATH'}): the browser tests drive Debian's "
            "chromium, never a downloaded one. Install it with `apt-get install -y chromium` "
            "or set LOOPTRACK_TEST_CHROMIUM to a chromium executable.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium for the session."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        # Without its sandbox (--no-sandbox, Playwright's default, said here on purpose):
        # chromium's sandbox refuses to start as root, which is how CI runs.
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, chromium_sandbox=False
        )
        yield instance
        instance.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as <artifacts>/screenshots/<name>.png and return its path."""
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"screenshot name {name!r}: letters, digits, '_', '.' and '-' only")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call phase's report on the test, so `page` knows whether the test failed."""
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context and page; when the test fails, a screenshot of where it stood is
    saved as failed-<test name>.png."""
    context = browser.new_context(viewport=VIEWPORT)
    instance = context.new_page()
    yield instance
    report = request.node.stash.get(CALL_REPORT, None)
    if report is not None and report.failed:
        try:
            screenshot(instance, "failed-" + re.sub(r"[^\w.-]", "_", request.node.name))
        except Error as error:  # a crashed page must not hide the test's own failure
            print(f"no failure screenshot: {error}", file=sys.stderr)
    context.close()


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of `page`, collected while the test runs."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    return errors


@pytest.fixture
def live_api(db_url: str, broker: Broker, topic_root: str, tmp_path: Path) -> Iterator[str]:
    """`looptrack api` as a subprocess on this test's database and broker; yields its base
    URL (http://127.0.0.1:PORT) once /health answers 200. Its log is tmp_path/api.log."""
    with running_api(db_url, broker, topic_root, tmp_path / "api.log") as api:
        yield api.base_url
