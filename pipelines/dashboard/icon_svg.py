"""Making Data Count variation and assurance icons drawn as inline SVG, with their labels:
the drawing of what pipelines/spc/icons.py decides.

The site must work offline and from ``file://``, so the icons are not image files: each page
carries one hidden sprite of ``<symbol>`` elements and every icon is a small ``<svg>`` that
``<use>``-s a symbol. Colour is never the only cue: each icon holds a letter (H/L, P/F/?),
has a ``<title>`` and ``aria-label``, and is shown next to a text label.

Colours are NHSRplotthedots v0.2.2's (``ptd_spc_colours``): improvement blue, concern orange,
neutral purple, common cause grey, target red; blue and orange are darkened just enough to
reach 3:1 contrast against the page and the panels (WCAG 2.1 non-text contrast; the same
values as ``dashboard.css``, checked by tests/dashboard/test_contrast.py).
"""

from markupsafe import Markup, escape

COLOURS: dict[str, str] = {
    "common_cause": "#7b7d7d",
    "improvement": "#1d8fd6",
    "concern": "#c47a00",
    "neutral": "#361475",
    "target": "#de1b1b",
}

VARIATION_LABELS: dict[str, str] = {
    "common_cause": "Common cause variation",
    "improvement_high": "Special cause improvement (high)",
    "improvement_low": "Special cause improvement (low)",
    "concern_high": "Special cause concern (high)",
    "concern_low": "Special cause concern (low)",
    "neutral_high": "Special cause variation (high)",
    "neutral_low": "Special cause variation (low)",
}
ASSURANCE_LABELS: dict[str, str] = {
    "consistent_pass": "Consistently passing the target",
    "consistent_fail": "Consistently failing the target",
    "inconsistent": "Hit and miss against the target",
}
#: Short labels for tables, where the long ones would wrap.
VARIATION_SHORT: dict[str, str] = {
    "common_cause": "Common cause",
    "improvement_high": "Improvement",
    "improvement_low": "Improvement",
    "concern_high": "Concern",
    "concern_low": "Concern",
    "neutral_high": "Unusually high",
    "neutral_low": "Unusually low",
}
ASSURANCE_SHORT: dict[str, str] = {
    "consistent_pass": "Passing",
    "consistent_fail": "Failing",
    "inconsistent": "Hit and miss",
}

#: What each icon means, for the key on the home page.
ICON_MEANINGS: dict[str, str] = {
    "common_cause": "no significant change; the usual month-to-month noise",
    "improvement_high": "higher values, where higher is better",
    "improvement_low": "lower values, where lower is better",
    "concern_high": "higher values, where lower is better",
    "concern_low": "lower values, where higher is better",
    "neutral_high": "higher values, for a measure where neither direction is better",
    "neutral_low": "lower values, for a measure where neither direction is better",
    "consistent_pass": "the process will reliably meet the target",
    "consistent_fail": "the process will not meet the target unless something changes",
    "inconsistent": "the process will meet the target in some months and miss it in others",
}

# Five dots along a line; the special-cause icons colour the last three and tilt them.
_FLAT = [(9, 27), (14, 25), (20, 28), (26, 26), (31, 27)]
_RISING = [(9, 30), (14, 29), (20, 27), (26, 24), (31, 21)]
_FALLING = [(9, 21), (14, 22), (20, 25), (26, 28), (31, 30)]


def _dots(points: list[tuple[int, int]], colour: str, special: bool) -> str:
    line = " ".join(f"{x},{y}" for x, y in points)
    dots = "".join(
        f'<circle cx="{x}" cy="{y}" r="2.4" fill="{colour if special and i >= 2 else "#7b7d7d"}"/>'
        for i, (x, y) in enumerate(points)
    )
    return f'<polyline points="{line}" fill="none" stroke="#7b7d7d" stroke-width="1.2"/>{dots}'


def _letter(text: str, colour: str, y: int = 17, size: int = 13) -> str:
    return (
        f'<text x="20" y="{y}" text-anchor="middle" font-family="Arial, sans-serif" '
        f'font-size="{size}" font-weight="700" fill="{colour}">{text}</text>'
    )


def _ring(colour: str) -> str:
    return f'<circle cx="20" cy="20" r="18" fill="#fff" stroke="{colour}" stroke-width="3"/>'


def _variation_symbol(icon: str) -> str:
    if icon == "common_cause":
        colour = COLOURS["common_cause"]
        return _ring(colour) + _dots(_FLAT, colour, special=False)
    kind, side = icon.split("_")
    colour = COLOURS[kind]
    points = _RISING if side == "high" else _FALLING
    return (
        _ring(colour)
        + _letter("H" if side == "high" else "L", colour)
        + _dots(points, colour, special=True)
    )


def _assurance_symbol(assurance: str) -> str:
    colour, letter = {
        "consistent_pass": (COLOURS["improvement"], "P"),
        "consistent_fail": (COLOURS["concern"], "F"),
        "inconsistent": (COLOURS["common_cause"], "?"),
    }[assurance]
    target = (
        f'<line x1="8" y1="29" x2="32" y2="29" stroke="{COLOURS["target"]}" '
        'stroke-width="1.6" stroke-dasharray="3 2"/>'
    )
    return _ring(colour) + _letter(letter, colour, y=23, size=18) + target


def sprite() -> Markup:
    """The hidden ``<svg>`` of symbols every page includes once."""
    symbols = [
        f'<symbol id="mdc-{name}" viewBox="0 0 40 40">{_variation_symbol(name)}</symbol>'
        for name in VARIATION_LABELS
    ] + [
        f'<symbol id="mdc-{name}" viewBox="0 0 40 40">{_assurance_symbol(name)}</symbol>'
        for name in ASSURANCE_LABELS
    ]
    return Markup(
        '<svg class="sprite" aria-hidden="true" focusable="false" width="0" height="0">'
        + "".join(symbols)
        + "</svg>"
    )


def _icon(kind: str, name: str, label: str, size: int) -> Markup:
    return Markup(
        f'<svg class="icon icon-{kind} icon-{name}" data-icon="{name}" width="{size}" '
        f'height="{size}" viewBox="0 0 40 40" role="img" aria-label="{escape(label)}">'
        f'<title>{escape(label)}</title><use href="#mdc-{name}"/></svg>'
    )


def variation_icon_svg(icon: str | None, size: int = 40) -> Markup:
    """The variation icon (empty when the series has no point with a value)."""
    if icon is None:
        return Markup("")
    return _icon("variation", icon, VARIATION_LABELS[icon], size)


def assurance_icon_svg(assurance: str | None, target_text: str | None, size: int = 40) -> Markup:
    """The assurance icon (empty when there is no target or no limits to judge it by)."""
    if assurance is None:
        return Markup("")
    label = ASSURANCE_LABELS[assurance]
    if target_text:
        label = label.replace("the target", f"the {target_text} target")
    return _icon("assurance", assurance, label, size)


def icon_key(name: str) -> Markup:
    """An icon with its name and meaning, for the "how to read" key."""
    if name in VARIATION_LABELS:
        svg, label = variation_icon_svg(name, 32), VARIATION_LABELS[name]
    else:
        svg, label = assurance_icon_svg(name, None, 32), ASSURANCE_LABELS[name]
    return svg + Markup(
        f'<span class="icon-text"><strong>{escape(label)}</strong>: '
        f"{escape(ICON_MEANINGS[name])}</span>"
    )
