"""Headless Chromium (Debian's `chromium`) driven by Playwright, for the dashboard's tests.

`chromium()` starts the browser (skipped locally, a failure under CI=true, when it is not
installed); `Visit` is one signed-in (or not) browser tab on a service that screenshots every
step and collects the page's script errors and Content-Security-Policy refusals. Every wait is
bounded by WAIT_MS.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

from tests.conftest import REPO, missing
from tests.e2e.conftest import Service

WAIT_MS = 15_000
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        missing("chromium (Debian package chromium)")
    assert executable is not None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class Visit:
    """One browser tab on `service`, saving full-page screenshots as `<test>-<step>.png`."""

    def __init__(self, page: Page, service: Service, test: str) -> None:
        self.page = page
        self.service = service
        self.test = test
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)

    @classmethod
    async def open(cls, browser: Browser, service: Service, test: str) -> Visit:
        context = await browser.new_context(
            base_url=service.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(WAIT_MS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{test}-*.png"):
            old.unlink()
        return cls(await context.new_page(), service, test)

    def _console(self, message: ConsoleMessage) -> None:
        # A page answered 4xx on purpose (a wrong token, a bad matcher) is logged as "Failed to
        # load resource"; anything else at error level (a CSP refusal, a failed fetch) counts.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    async def shot(self, step: str) -> None:
        await self.page.screenshot(path=SCREENSHOTS / f"{self.test}-{step}.png", full_page=True)

    async def goto(self, path: str, step: str) -> int:
        """Open `path`, screenshot it as `step`; the final response's status."""
        response = await self.page.goto(path)
        assert response is not None
        await self.shot(step)
        return response.status

    async def sign_in(self, token: str, lands_on: str = "/incidents") -> None:
        await self.page.goto("/login")
        await self.page.fill("#token", token)
        await self.shot("0-sign-in")
        await self.page.click("form[action='/login'] button[type=submit]")
        await self.page.wait_for_url(self.service.url + lands_on)

    async def csrf(self) -> str:
        """The signed-in user's own CSRF value, from the page's sign-out form."""
        value = await self.page.locator("form[action='/logout'] input[name=csrf]").get_attribute(
            "value"
        )
        assert value, "no sign-out form with a csrf value on this page"
        return value

    async def close(self) -> None:
        with contextlib.suppress(Error):  # the browser is already gone
            await self.page.context.close()
        assert not self.problems, "the page reported problems:\n" + "\n".join(self.problems)


async def api_get(service: Service, path: str, token: str) -> Any:
    """GET an API path with a bearer token; the JSON body (200 asserted)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with service.http.get(service.url + path, headers=headers) as response:
        body = await response.text()
        assert response.status == 200, f"GET {path}: {response.status} {body}"
        return await response.json()
