"""The web chat end to end: real headless Chromium pages and an nc-style user in one room.

Debian's ``chromium`` is driven by Playwright for Python (``executable_path``
set, so ``playwright install`` is never needed). A missing browser fails the
test: it never skips. Screenshots go to ``artifacts/screenshots/``; a current
one is kept in ``docs/screenshot.png`` for the README.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ChatClient
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from chatlab.launch import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # nothing fetched from the internet, by the page or us
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
XSS = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> <b>bold?</b>'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium);"
            " the web chat's end-to-end test needs a real browser"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """One page of the chat, and every console error it logs (a CSP violation is one)."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(url)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def say(self, text: str) -> None:
        self.page.fill("#say", text)
        self.page.press("#say", "Enter")

    def rename(self, nick: str) -> None:
        self.page.fill("#nick", nick)
        self.page.press("#nick", "Enter")

    def expect_row(self, kind: str, text: str, nick: str | None = None) -> None:
        """The newest row is a ``kind`` row (said, notice, error) showing ``text``, as text."""
        row = self.page.locator("#messages .row").last
        expect(row).to_have_class(re.compile(rf"\brow {kind}\b"))
        expect(row.locator(".text")).to_have_text(text)
        if nick is not None:
            expect(row.locator(".nick")).to_have_text(nick)

    def expect_online(self, *nicks: str) -> None:
        expect(self.page.locator("#who li")).to_have_text(list(nicks))

    def expect_status(self, status: str) -> None:
        expect(self.page.locator("#status")).to_have_text(status)

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / name)


@pytest.mark.parametrize(("variant", "scheme"), [("epoll", "light"), ("threaded", "dark")])
def test_two_pages_and_nc_chat_in_a_real_browser(
    browser: Browser, fresh: Callable[..., ServerProcess], variant: str, scheme: str
) -> None:
    server = fresh(variant, "--web-port", "auto")
    url = f"http://{server.host}:{server.web_port}/"
    context = browser.new_context(viewport={"width": 960, "height": 600}, color_scheme=scheme)
    try:
        ada = Tab(context.new_page(), url)
        ada.expect_status("online")
        ada.expect_row("notice", "welcome to chatlab, you are guest1 (type /help for commands)")
        ada.rename("ada")
        ada.expect_row("notice", "guest1 is now known as ada")
        expect(ada.page.locator("#nick")).to_have_value("ada")

        nc = ChatClient.connect(server)
        assert nc.welcome() == "guest2"
        nc.say("/nick grace")
        nc.expect("* guest2 is now known as grace")
        ada.expect_row("notice", "guest2 is now known as grace")

        linus = Tab(context.new_page(), url)
        linus.expect_row("notice", "welcome to chatlab, you are guest3 (type /help for commands)")
        nc.expect("* guest3 joined")
        linus.say("/nick linus")
        nc.expect("* guest3 is now known as linus")
        ada.expect_online("ada", "grace", "linus")
        linus.expect_online("ada", "grace", "linus")

        ada.say("hi both: is the server up?")
        nc.expect("<ada> hi both: is the server up?")
        ada.expect_row("said mine", "hi both: is the server up?", nick="ada")
        linus.expect_row("said", "hi both: is the server up?", nick="ada")
        nc.say(f"{variant} here. {XSS}")
        for tab in (ada, linus):
            tab.expect_row("said", f"{variant} here. {XSS}", nick="grace")
        linus.say("/me waves from a second tab")
        nc.expect("* linus waves from a second tab")
        ada.expect_row("notice", "linus waves from a second tab")
        linus.say("/nick grace")
        linus.expect_row("error", "nick already taken: grace")
        ada.say("all text, no markup. good.")
        nc.expect("<ada> all text, no markup. good.")
        for tab in (ada, linus):  # the peer's markup stayed text: nothing ran, nothing was added
            assert tab.page.evaluate("window.pwned") is None
            assert tab.page.locator("#messages img, #messages script, #messages b").count() == 0
        ada.screenshot(f"{variant}-{scheme}-conversation.png")

        linus.say("/quit")
        expect(linus.page.locator("#gone")).to_contain_text("You left the room.")
        nc.expect("* linus left")
        ada.expect_online("ada", "grace")
        linus.page.click("#reconnect")
        linus.expect_row("notice", "welcome to chatlab, you are guest4 (type /help for commands)")
        nc.expect("* guest4 joined")
        linus.page.close()
        nc.expect("* guest4 left")
        ada.expect_row("notice", "guest4 left")

        server.stop()
        nc.expect("* server shutting down")
        ada.expect_row("notice", "server shutting down")
        ada.expect_status("offline")
        expect(ada.page.locator("#gone")).to_contain_text("the server went away")
        expect(ada.page.locator("#say")).to_be_disabled()
        ada.expect_online()
        ada.screenshot(f"{variant}-{scheme}-server-gone.png")
        nc.close()
        assert ada.errors == [] and linus.errors == []
    finally:
        context.close()


def test_the_blocking_variant_serves_one_page_at_a_time(
    browser: Browser, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh("blocking", "--web-port", "auto")
    url = f"http://{server.host}:{server.web_port}/"
    context = browser.new_context()
    try:
        first = Tab(context.new_page(), url)
        first.expect_status("online")
        first.expect_online("guest1")
        first.say("/quit")  # the blocking server is free for the next connection only now
        expect(first.page.locator("#gone")).to_contain_text("You left the room.")
        second = Tab(context.new_page(), url)
        second.expect_row("notice", "welcome to chatlab, you are guest2 (type /help for commands)")
        second.expect_online("guest2")
        assert first.errors == [] and second.errors == []
    finally:
        context.close()
