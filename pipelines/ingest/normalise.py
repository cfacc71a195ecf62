"""Polars expressions that turn provider text into typed values, or null when they cannot.

Nulls here are not errors by themselves: the row rules (``rules.py``) decide, looking at
both the raw text and the parsed value, and say exactly what was wrong.
"""

from __future__ import annotations

from datetime import date

import polars as pl

SUPPRESSION_MARKERS = ("*", "<5", "c", "x", "~", "<3", "suppressed")


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
