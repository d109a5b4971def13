"""Headless Chromium for browser tests (Playwright for Python, Debian's Chromium).

The ``browser`` fixture is imported once, in ``conftest.py``, so the whole test
session never has two sync Playwrights open at once (they refuse to run in one
thread); each browser test module gets its own, closed when the module ends. Test modules import only the helpers::

    from browser import artifact_path

Tests that use it skip when Chromium or Playwright is missing, unless the
environment sets ``POSTFOCUS_REQUIRE_BROWSER=1`` (CI does): then they fail, so
that a broken browser set-up can never pass as "skipped".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("POSTFOCUS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def browser_required() -> bool:
    return os.environ.get("POSTFOCUS_REQUIRE_BROWSER", "").strip() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip, or fail when the environment requires the browser tests to run."""
    if browser_required():
        pytest.fail(f"browser tests are required (POSTFOCUS_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """A launched headless Chromium (Playwright ``Browser``), one per test module.

    Module scope, not session: a sync Playwright runs an event loop in the main
    thread while it is open, and other modules' tests (e.g. the web app's, which
    use asyncio) must not run inside it.
    """
    if not CHROMIUM.exists():
        unavailable(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"Playwright for Python is not installed ({exc})")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 (any launch failure)
            unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
        try:
            yield b
        finally:
            b.close()


def artifact_path(name: str) -> Path:
    """A path under test-artifacts/ (created) for screenshots and other test output."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
