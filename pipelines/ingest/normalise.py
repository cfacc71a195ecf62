"""Polars expressions that turn provider text into typed values, or null when they cannot.

Nulls here are not errors by themselves: the row rules (``rules.py``) decide, looking at
both the raw text and the parsed value, and say exactly what was wrong.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from itertools import chain

import polars as pl

SUPPRESSION_MARKERS = ("*", "<5", "c", "x", "~", "<3", "suppressed")
# What Excel writes in a cell whose formula failed; a CSV export writes the same text.
SPREADSHEET_ERRORS = (
    "#DIV/0!",
    "#N/A",
    "#VALUE!",
    "#REF!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
)


def _invisible_characters() -> dict[str, str]:
    """Characters that print as nothing (or as a space) and so make a code look valid when
    it is not: controls, format characters (zero-width space and joiners, BOM, soft
    hyphen, direction marks) and every space but the ASCII one, each with its name."""
    found = {}
    for point in chain(range(0x10000), range(0xE0000, 0xE0080)):
        char = chr(point)
        if char != " " and unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            name = unicodedata.name(char, "CONTROL CHARACTER")
            found[char] = f"U+{point:04X} {name}"
    return found


INVISIBLE_CHARACTERS = _invisible_characters()
_INVISIBLE_CLASS = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in INVISIBLE_CHARACTERS) + "]"


def clean_code(column: str) -> pl.Expr:
    """Organisation and measure codes: padded or lower-case codes are the same code."""
    return pl.col(column).str.strip_chars().str.to_uppercase().replace("", None)


def parse_period(column: str) -> pl.Expr:
    """Reporting month from ``2024-03``, ``Mar-24``, ``March 2024``, ``01/03/2024``,
    ``2024-03-01`` or an Excel date serial (any day is taken as its month)."""
    text = pl.col(column).str.strip_chars()
    serial = text.cast(pl.Float64, strict=False)
    attempts = [
        # XLSX date cells read as text arrive as Excel serial day numbers (1900 system).
        pl.when(serial.is_between(20_000, 80_000)).then(
            pl.lit(date(1899, 12, 30)) + pl.duration(days=serial.floor().cast(pl.Int64))
        ),
        (text + "-01").str.to_date("%Y-%m-%d", strict=False),
        text.str.to_date("%Y-%m-%d", strict=False),
        text.str.to_date("%d/%m/%Y", strict=False),
        ("01-" + text).str.to_date("%d-%b-%y", strict=False),
        ("01-" + text).str.to_date("%d-%b-%Y", strict=False),
        ("01 " + text).str.to_date("%d %B %Y", strict=False),
        ("01 " + text).str.to_date("%d %b %Y", strict=False),
        text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
    ]
    # chrono's %Y accepts two-digit years ("24-03" would be AD 24): keep plausible ones only.
    plausible = [pl.when(a.dt.year().is_between(1990, 2100)).then(a) for a in attempts]
    return pl.coalesce(plausible).dt.truncate("1mo").alias(column)


def parse_count(column: str) -> pl.Expr:
    """Counts may carry thousands separators or a trailing ``.0`` from Excel; anything else
    that is not a whole number stays null."""
    text = pl.col(column).str.strip_chars().str.replace_all(r"[,\s]", "")
    as_float = text.cast(pl.Float64, strict=False)
    return (
        pl.when(as_float.is_finite() & (as_float == as_float.round(0)) & (as_float.abs() < 1e15))
        .then(as_float.cast(pl.Int64))
        .otherwise(None)
    )


def is_blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def is_suppression_marker(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_lowercase().is_in(list(SUPPRESSION_MARKERS))


def is_spreadsheet_error(column: str) -> pl.Expr:
    """A spreadsheet's error value (``#DIV/0!``, ``#N/A``...): a formula that failed, which is
    neither a blank nor a number the provider meant."""
    return pl.col(column).str.strip_chars().str.to_uppercase().is_in(list(SPREADSHEET_ERRORS))


def has_invisible_character(column: str) -> pl.Expr:
    """An invisible character left inside a value once its outer whitespace is trimmed."""
    return pl.col(column).str.strip_chars().str.contains(_INVISIBLE_CLASS).fill_null(False)


def describe_invisible(column: str, value: str | None) -> str:
    """``org_code 'RTD\\u200b' contains an invisible character U+200B ZERO WIDTH SPACE``:
    the value shown with the character escaped, since printed as is it looks valid."""
    text = (value or "").strip()
    shown = "".join(
        (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        if c in INVISIBLE_CHARACTERS
        else c
        for c in text
    )
    names = list(dict.fromkeys(INVISIBLE_CHARACTERS[c] for c in text if c in INVISIBLE_CHARACTERS))
    kind = "an invisible character" if len(names) == 1 else "invisible characters"
    return f"{column} '{shown}' contains {kind} {', '.join(names)}; retype it"
