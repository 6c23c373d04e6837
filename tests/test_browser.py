"""The web chat end to end: real headless Chromium pages and an nc-style user in one room.

Playwright for Python drives a Chromium found the way users have one (see
``find_browser``): CI uses Debian's ``chromium``. A missing browser fails the
test: it never skips. Screenshots go to ``artifacts/screenshots/``; a current
one is kept in ``docs/screenshot.png`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from helpers import ChatClient
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from chatlab.launch import ServerProcess
from chatlab.room import HELP

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")  # looked for on PATH
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


class NoBrowser(Exception):
    pass


def find_browser(env: Mapping[str, str], playwright_chromium: str) -> Path:
    """The Chromium to drive: $CHATLAB_BROWSER, else Playwright's own download, else one on PATH.

    ``playwright_chromium`` is where ``playwright install chromium`` puts its
    browser, which may not be there.
    """
    if chosen := env.get("CHATLAB_BROWSER"):
        if not os.access(chosen, os.X_OK):
            raise NoBrowser(f"CHATLAB_BROWSER={chosen} is not an executable file")
        return Path(chosen)
    if os.access(playwright_chromium, os.X_OK):
        return Path(playwright_chromium)
    for name in BROWSER_NAMES:
        if found := shutil.which(name, path=env.get("PATH", os.defpath)):
            return Path(found)
    raise NoBrowser(
        "the web chat's end-to-end test needs Chromium, and found none. Any of these will do:"
        " set CHATLAB_BROWSER to a Chromium or Chrome executable;"
        " or run `playwright install chromium`;"
        f" or install one as {', '.join(BROWSER_NAMES)} on PATH"
        " (Debian/Ubuntu: apt install chromium)"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            executable = find_browser(os.environ, playwright.chromium.executable_path)
        except NoBrowser as error:
            pytest.fail(str(error))
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
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
        nc.say("/nick linus")  # someone takes the nick while linus is away ...
        nc.expect("* grace is now known as linus")
        linus.page.click("#reconnect")  # back as a guest, and the page asks for its nick again
        nc.expect("* guest4 joined")
        time.sleep(0.5)  # ... and gives it back once the page has asked, and been refused
        nc.say("/nick grace")
        nc.expect("* linus is now known as grace")
        nc.expect("* guest4 is now known as linus")  # the page asked again, a second later
        linus.expect_row("notice", "guest4 is now known as linus")
        expect(linus.page.get_by_text("nick already taken: linus")).to_have_count(0)  # quietly
        expect(linus.page.locator("#nick")).to_have_value("linus")
        linus.page.reload()  # the old connection may leave after the new one asks for the nick
        assert {nc.line(), nc.line()} == {"* linus left", "* guest5 joined"}  # in either order
        nc.expect("* guest5 is now known as linus")
        linus.expect_row("notice", "guest5 is now known as linus")
        linus.page.close()
        nc.expect("* linus left")
        ada.expect_row("notice", "linus left")

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


def test_the_page_retries_keeps_its_nick_and_knows_the_line_limit(
    browser: Browser, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh("epoll", "--web-port", "auto", "--max-line", "100")
    url = f"http://{server.host}:{server.web_port}/"
    context = browser.new_context()
    try:
        ada = Tab(context.new_page(), url)
        ada.rename("ada")
        ada.expect_row("notice", "guest1 is now known as ada")
        nc = ChatClient.connect(server)
        nc.welcome()

        # --max-line 100, counted in UTF-8 bytes as the server counts them: é is two
        counter = ada.page.locator("#counter")
        ada.page.fill("#say", "x" * 79)
        expect(counter).to_be_hidden()
        ada.page.fill("#say", "é" * 40)
        expect(counter).to_have_text("80 / 100 bytes")
        expect(counter).not_to_have_class(re.compile(r"\bover\b"))
        ada.page.fill("#say", "é" * 51)  # 51 characters, 102 bytes
        expect(counter).to_have_text("102 / 100 bytes")
        expect(counter).to_have_class(re.compile(r"\bover\b"))
        ada.page.press("#say", "Enter")
        ada.page.fill("#say", "x" * 70_000)  # a paste far too long
        expect(counter).to_have_text("70,000 / 100 bytes")
        ada.page.press("#say", "Enter")
        expect(ada.page.locator("#say")).to_have_value("x" * 70_000)  # kept, to be edited
        ada.page.fill("#say", "é" * 50)  # exactly 100 bytes: sent
        ada.page.press("#say", "Enter")
        assert nc.line() == f"<ada> {'é' * 50}"  # the first line nc got: the long ones were kept
        expect(counter).to_be_hidden()
        ada.expect_status("online")

        # /help's aligned list in one monospace block
        ada.say("/help")
        listing = ada.page.locator("#messages .row.listing pre.text")
        expect(listing).to_have_count(1)
        expect(listing).to_have_text("\n".join(line[2:] for line in HELP[1:-1]))
        font = listing.evaluate("element => getComputedStyle(element).fontFamily")
        assert font.endswith("monospace"), font
        ada.expect_row("notice", HELP[-1][2:])

        # the server goes: Reconnect retries, backing off, until it is back
        port, web_port = server.port, server.web_port
        server.stop()
        nc.expect("* server shutting down")
        nc.close()
        expect(ada.page.locator("#gone-text")).to_have_text("Disconnected: the server went away.")
        ada.page.click("#reconnect")
        gone = ada.page.locator("#gone-text")
        expect(gone).to_have_text(re.compile(r"^Trying to connect…$|^Could not connect"))
        expect(gone).to_have_text("Could not connect; retrying in 2 s.", timeout=10_000)
        ada.screenshot("retrying.png")
        ada.page.evaluate("retries = 12")  # as if it had failed for long: the wait is capped
        expect(gone).to_have_text("Could not connect; retrying in 30 s.", timeout=10_000)
        back = fresh("epoll", "--port", str(port), "--web-port", str(web_port))
        ada.page.click("#reconnect")  # no need to wait: the button tries at once
        ada.expect_status("online")
        expect(ada.page.locator("#gone")).to_be_hidden()
        ada.expect_row("notice", "guest1 is now known as ada")  # the nick, asked for again
        nc = ChatClient.connect(back)
        nc.welcome()
        nc.say("/who")
        nc.expect("* online: ada, guest2")
        nc.close()
        refused = "net::ERR_CONNECTION_REFUSED"  # Chromium logs each failed try; nothing else
        assert [error for error in ada.errors if refused not in error] == []
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


# -- finding a browser ------------------------------------------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_browser_prefers_chatlab_browser_then_playwrights_then_path(tmp_path: Path) -> None:
    mine = executable(tmp_path / "mine" / "chrome")
    downloaded = executable(tmp_path / "ms-playwright" / "chrome")
    on_path = executable(tmp_path / "bin" / "google-chrome")
    executable(tmp_path / "later" / "chromium")
    path = f"{tmp_path / 'bin'}:{tmp_path / 'later'}"
    missing = str(tmp_path / "not-downloaded" / "chrome")
    env = {"PATH": path, "CHATLAB_BROWSER": str(mine)}
    assert find_browser(env, str(downloaded)) == mine
    assert find_browser({"PATH": path}, str(downloaded)) == downloaded
    # chromium comes before google-chrome in the name order, wherever it is on PATH
    assert find_browser({"PATH": path}, missing) == tmp_path / "later" / "chromium"
    assert find_browser({"PATH": str(tmp_path / "bin")}, missing) == on_path


def test_find_browser_tries_every_usual_name(tmp_path: Path) -> None:
    missing = str(tmp_path / "not-downloaded" / "chrome")
    for name in BROWSER_NAMES:
        found = executable(tmp_path / name / name)
        assert find_browser({"PATH": str(found.parent)}, missing) == found


def test_find_browser_fails_naming_all_three_ways(tmp_path: Path) -> None:
    executable(tmp_path / "bin" / "firefox")
    (tmp_path / "bin" / "chromium").write_text("not executable")
    missing = str(tmp_path / "not-downloaded" / "chrome")
    with pytest.raises(NoBrowser) as error:
        find_browser({"PATH": str(tmp_path / "bin")}, missing)
    message = str(error.value)
    assert "CHATLAB_BROWSER" in message
    assert "playwright install chromium" in message
    assert all(name in message for name in BROWSER_NAMES)


def test_a_wrong_chatlab_browser_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    downloaded = executable(tmp_path / "ms-playwright" / "chrome")
    with pytest.raises(NoBrowser, match="CHATLAB_BROWSER=/no/such/chrome is not an executable"):
        find_browser({"CHATLAB_BROWSER": "/no/such/chrome"}, str(downloaded))
