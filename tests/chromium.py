"""Debian's chromium, driven by Playwright, for the tests that open a page.

Playwright's own browser downloads are not reachable from these machines, so the tests pass the
executable of Debian's package (``make system-deps`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def launched_chromium() -> Iterator[Browser]:
    """A headless chromium for the length of the block."""
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), "apt-get install chromium (make system-deps)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
