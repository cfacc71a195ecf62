"""Provider text -> typed values: every format DESIGN §3 lists, and what must stay null."""

from datetime import date

import polars as pl
import pytest

from pipelines.ingest.normalise import clean_code, parse_count, parse_period


def _one(expr: pl.Expr, value: str | None):
    return pl.DataFrame({"v": [value]}, schema={"v": pl.String}).select(expr)["v"][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03", date(2024, 3, 1)),
        (" 2024-03 ", date(2024, 3, 1)),
        ("Mar-24", date(2024, 3, 1)),
        ("mar-24", date(2024, 3, 1)),
        ("Mar-2024", date(2024, 3, 1)),
        ("March 2024", date(2024, 3, 1)),
        ("01/03/2024", date(2024, 3, 1)),
        ("15/03/2024", date(2024, 3, 1)),
        ("2024-03-01", date(2024, 3, 1)),
        ("2024-03-31", date(2024, 3, 1)),
        ("2024-03-01 00:00:00", date(2024, 3, 1)),
    ],
)
def test_period_formats_become_the_reporting_month(text, expected):
    assert _one(parse_period("v"), text) == expected


@pytest.mark.parametrize("text", ["2024-13", "13/13/2024", "Marchish", "", None, "2024", "24-03"])
def test_unrecognised_periods_stay_null(text):
    assert _one(parse_period("v"), text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), (" 1,234 ", 1234), ("1 234", 1234), ("12.0", 12), ("0", 0), ("-3", -3)],
)
def test_counts(text, expected):
    assert _one(parse_count("v"), text) == expected


@pytest.mark.parametrize("text", ["12.5", "<5", "*", "c", "", None, "twelve", "1e400", "NaN"])
def test_non_counts_stay_null(text):
    assert _one(parse_count("v"), text) is None


@pytest.mark.parametrize(("text", "expected"), [(" rtd ", "RTD"), ("RTD", "RTD"), ("  ", None)])
def test_codes_are_trimmed_and_upper_case(text, expected):
    assert _one(clean_code("v"), text) == expected
