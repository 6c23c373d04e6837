"""The web page's files, read as files: nick colours that stay readable, the served --max-line.

What the page does in a browser is tested in ``test_browser.py``; these tests
read the real ``style.css`` and ``app.js`` so that a colour changed there is
checked here.
"""

from __future__ import annotations

import re
from importlib import resources

import h11
import pytest

from chatlab.codec import Reply
from chatlab.hosts import allowed_hosts
from chatlab.web import WebCodec

WEB = resources.files("chatlab.web")
BACKGROUNDS = ("--panel", "--mine", "--bg")  # what a nick is shown on: rows, own rows, the page
AA_CONTRAST = 4.5  # WCAG 2.x level AA, normal text


def custom_properties(block: str) -> dict[str, str]:
    return dict(re.findall(r"(--[\w-]+):\s*([^;]+);", block))


def themes() -> dict[str, dict[str, str]]:
    """The light theme's custom properties, and the dark theme's (light ones overridden)."""
    css = (WEB / "style.css").read_text()
    light = re.search(r"^:root \{(.*?)^\}", css, re.MULTILINE | re.DOTALL)
    dark = re.search(r"@media \(prefers-color-scheme: dark\) \{\s*:root \{(.*?)\}", css, re.DOTALL)
    assert light and dark, "style.css has no light or no dark :root block"
    light_props = custom_properties(light[1])
    return {"light": light_props, "dark": {**light_props, **custom_properties(dark[1])}}


def nick_colour_count() -> int:
    match = re.search(r"^const NICK_COLOURS = (\d+);", (WEB / "app.js").read_text(), re.MULTILINE)
    assert match, "app.js does not define NICK_COLOURS"
    return int(match[1])


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of a #rrggbb colour."""
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", colour), f"not a #rrggbb colour: {colour}"
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    red, green, blue = (
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels
    )
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((relative_luminance(one), relative_luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_matches_the_wcag_examples() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the grey that passes
    assert contrast("#808000", "#ffffff") < AA_CONTRAST  # olive on white fails


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_nick_colour_meets_wcag_aa_on_every_background(theme: str) -> None:
    properties = themes()[theme]
    nick_colours = {name: value for name, value in properties.items() if name.startswith("--nick-")}
    assert sorted(nick_colours) == sorted(f"--nick-{i}" for i in range(nick_colour_count()))
    too_faint = [
        f"{name} {colour} on {background} {properties[background]}: {ratio:.2f}:1"
        for name, colour in nick_colours.items()
        for background in BACKGROUNDS
        if (ratio := contrast(colour, properties[background])) < AA_CONTRAST
    ]
    assert too_faint == []


def test_the_dark_theme_has_its_own_nick_colours() -> None:
    light, dark = themes()["light"], themes()["dark"]
    for i in range(nick_colour_count()):
        assert light[f"--nick-{i}"] != dark[f"--nick-{i}"]


@pytest.mark.parametrize("max_line", [100, 4096])
def test_the_page_is_served_with_the_servers_max_line(max_line: int) -> None:
    codec = WebCodec(max_line, allowed_hosts(["127.0.0.1"], 8080))
    request = h11.Connection(h11.CLIENT)
    data = request.send(h11.Request(method="GET", target="/", headers=[("Host", "127.0.0.1:8080")]))
    data += request.send(h11.EndOfMessage())
    body = b"".join(event.data for event in codec.receive(data) if isinstance(event, Reply))
    assert f'<meta name="chatlab-max-line" content="{max_line}">'.encode() in body
    assert b"MAX_LINE" not in body
