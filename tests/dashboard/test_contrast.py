"""Chart points, lines and icons stand out from what they are drawn on: at least 3:1 (WCAG 2.1
success criterion 1.4.11, non-text contrast), computed with WCAG's relative luminance."""

from __future__ import annotations

import re

import pytest

from pipelines.dashboard.build import STATIC
from pipelines.dashboard.icon_svg import COLOURS

CSS = (STATIC / "dashboard.css").read_text()


def _variables() -> dict[str, str]:
    root = re.search(r":root\s*\{([^}]*)\}", CSS).group(1)
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", root))


def luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_formula():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


VARS = _variables()
#: Charts and tables sit on the panels; the icon key on the home page on the page itself.
BACKGROUNDS = {"panel": VARS["panel"], "page": VARS["page"]}
#: Point fills (circle.imp/.con/.neu/.cc), the target line, and the ink of the change markers.
FOREGROUNDS = ["improvement", "concern", "neutral", "common", "target", "ink", "muted"]


@pytest.mark.parametrize("name", FOREGROUNDS)
@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_point_and_line_colours_reach_three_to_one(name, background):
    ratio = contrast(VARS[name], BACKGROUNDS[background])
    assert ratio >= 3.0, f"--{name} {VARS[name]} on {background}: {ratio:.2f}:1"


@pytest.mark.parametrize("name", sorted(COLOURS))
@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_icon_colours_reach_three_to_one(name, background):
    ratio = contrast(COLOURS[name], BACKGROUNDS[background])
    assert ratio >= 3.0, f"icon {name} {COLOURS[name]} on {background}: {ratio:.2f}:1"


def test_icons_and_points_use_the_same_colours():
    css_name = {"common_cause": "common"}
    for name, colour in COLOURS.items():
        assert VARS[css_name.get(name, name)].lower() == colour.lower(), name


def test_chart_lines_and_point_classes_use_those_colours():
    for css_class, var in (("cc", "common"), ("imp", "improvement"), ("con", "concern"),
                           ("neu", "neutral")):  # fmt: skip
        assert re.search(rf"circle\.{css_class} \{{ fill: var\(--{var}\);", CSS), css_class
    # The centre line and limits (fixed greys in the stylesheet) are legible too.
    centre = re.search(r"\.centre \{[^}]*stroke: (#[0-9a-f]{6})", CSS).group(1)
    limit = re.search(r"\.limit \{[^}]*stroke: (#[0-9a-f]{6})", CSS).group(1)
    for colour in (centre, limit):
        assert contrast(colour, VARS["panel"]) >= 3.0, colour
