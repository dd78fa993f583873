"""Browser tests' Chromium: the system's (Debian package ``chromium``) driven by Playwright.

- ``open_browser(allowed_origins, name)``: a headless Chromium page in which every
  request to any other origin is aborted (and recorded in ``blocked``), with page
  errors recorded too. If the ``with`` body fails, a screenshot of each open page
  is kept in ``.test-artifacts/`` (the path is printed).
- Tests skip, naming the package to install, when ``/usr/bin/chromium`` is
  missing; ``.ci/run`` installs it so CI always runs them.

Playwright's synchronous API keeps an asyncio loop running in this thread,
and Django refuses ORM calls while one runs (``SynchronousOnlyOperation``):
tests set up their rows before ``open_browser`` and use the UI afterwards.
"""

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PACKAGE = "chromium"
# Headless, and quiet: no component updates, sync, or other background traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS_DIR = REPO_ROOT / ".test-artifacts"
#: Set to a directory to save the README's screenshots there (tests/support/browser_support.py).
README_SCREENSHOTS_ENV = "README_SCREENSHOTS_DIR"
VIEWPORT = {"width": 1280, "height": 800}


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install the Debian package "
            f"`{CHROMIUM_PACKAGE}` (apt-get install -y {CHROMIUM_PACKAGE}) to run browser tests"
        )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class BrowserSession:
    page: Page
    #: URLs of requests to other origins, aborted
    blocked: list[str] = field(default_factory=list)
    #: uncaught JavaScript errors
    page_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.blocked == [], f"requests to other origins: {self.blocked}"
        assert self.page_errors == [], f"JavaScript errors: {self.page_errors}"


@contextmanager
def open_browser(allowed_origins: Iterable[str], name: str) -> Iterator[BrowserSession]:
    """A fresh Chromium page that may only reach ``allowed_origins``."""
    require_chromium()
    allowed = {origin(url) for url in allowed_origins}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            session = BrowserSession(page=context.new_page())

            def route(route: Route) -> None:
                url = route.request.url
                if origin(url) in allowed or url.startswith("data:"):
                    route.continue_()
                else:
                    session.blocked.append(url)
                    route.abort()

            context.route("**/*", route)
            session.page.on("pageerror", lambda error: session.page_errors.append(str(error)))
            try:
                yield session
            except BaseException:
                _keep_screenshots(context.pages, name)
                raise
        finally:
            browser.close()


def _keep_screenshots(pages: list[Page], name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for index, page in enumerate(pages):
        path = ARTIFACTS_DIR / f"{name}-{index}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failed browser test: {path}")
        except Exception as error:  # the page may be gone: keep the test's own error
            print(f"no screenshot of page {index}: {error}")


def save_readme_screenshot(page: Page, file_name: str) -> None:
    """With ``README_SCREENSHOTS_DIR`` set, save the page as the README shows it."""
    directory = os.environ.get(README_SCREENSHOTS_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / file_name))
