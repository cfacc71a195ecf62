"""Provider text -> typed values: every format docs/design.md §3 lists, and what must stay null.

A value with two readings is never read one way silently: the declared number locale or
date order reads it, or it stays null with the issue named for the row rules.
"""

from datetime import date

import polars as pl
import pytest

from pipelines.ingest.contracts import NUMBER_LOCALES, NumberFormat
from pipelines.ingest.normalise import (
    AMBIGUOUS_SEPARATOR,
    SCIENTIFIC_NOTATION,
    SEPARATOR_NOT_IN_LOCALE,
    TOO_MANY_DIGITS,
    clean_code,
    date_context,
    number_context,
    read_count,
    read_period,
    settle_date_order,
)

EN_GB, DE_DE, FR_FR = NUMBER_LOCALES["en-GB"], NUMBER_LOCALES["de-DE"], NUMBER_LOCALES["fr-FR"]


def _one(expr: pl.Expr, value: str | None):
    return pl.DataFrame({"v": [value]}, schema={"v": pl.String}).select(expr.alias("v"))["v"][0]


def _count(text: str | None, number_format: NumberFormat | None = None) -> dict:
    """A one-row file read as a contract declaring ``number_format`` would read it."""
    frame = pl.DataFrame({"v": [text]}, schema={"v": pl.String})
    frame = frame.with_columns(*number_context(number_format))
    return read_count(frame, "v", "n").row(0, named=True)


def _period(text: str | None, date_order: str | None = None) -> date | None:
    """A one-row file's month, read as a contract declaring ``date_order`` would."""
    frame = pl.DataFrame(
        {"v": [text], "source_line": [2]}, schema={"v": pl.String, "source_line": pl.Int64}
    )
    frame = frame.with_columns(*date_context(frame, "v", date_order))
    return read_period(frame, "v", "period")["period"][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03", date(2024, 3, 1)),
        (" 2024-03 ", date(2024, 3, 1)),
        ("Mar-24", date(2024, 3, 1)),
        ("mar-24", date(2024, 3, 1)),
        ("Mar-2024", date(2024, 3, 1)),
        ("March 2024", date(2024, 3, 1)),
        ("15/03/2024", date(2024, 3, 1)),
        ("2024-03-01", date(2024, 3, 1)),
        ("2024-03-31", date(2024, 3, 1)),
        ("2024-03-01 00:00:00", date(2024, 3, 1)),
        ("45352", date(2024, 3, 1)),  # an Excel date serial
    ],
)
def test_period_formats_become_the_reporting_month(text, expected):
    assert _period(text) == expected


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("01/03/2024", "DMY", date(2024, 3, 1)),
        ("01/03/2024", "MDY", date(2024, 1, 1)),
        ("1-3-2024", "DMY", date(2024, 3, 1)),
        ("01.03.2024", "DMY", date(2024, 3, 1)),
        ("3/1/2023", "MDY", date(2023, 3, 1)),
        ("01/03/2024 00:00", "DMY", date(2024, 3, 1)),
        ("05/05/2024", None, date(2024, 5, 1)),  # both readings are May
        ("25/03/2024", None, date(2024, 3, 1)),  # only day first is a date
        ("03/25/2024", None, date(2024, 3, 1)),  # only month first is a date
        ("2024/03/01", "YMD", date(2024, 3, 1)),
    ],
)
def test_numeric_dates_follow_the_declared_or_only_possible_order(text, order, expected):
    assert _period(text, order) == expected


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("01/03/2024", None),  # January or March: nothing settles it
        ("3/1/2023", None),
        ("3/13/2023", "DMY"),  # month first, against the declaration
        ("25/03/2024", "MDY"),  # day first, against the declaration
        ("2024/03/01", None),  # year first with slashes: only when YMD is declared
    ],
)
def test_numeric_dates_that_cannot_be_read_without_a_guess_stay_null(text, order):
    assert _period(text, order) is None


@pytest.mark.parametrize("text", ["2024-13", "13/13/2024", "Marchish", "", None, "2024", "24-03"])
def test_unrecognised_periods_stay_null(text):
    assert _period(text, "DMY") is None


def _file(*periods: str) -> pl.DataFrame:
    return pl.DataFrame({"p": list(periods), "source_line": range(2, len(periods) + 2)})


def test_a_day_above_twelve_settles_the_whole_files_order():
    assert settle_date_order(_file("01/03/2024", "25/03/2024"), "p", None) == ("DMY", "")
    assert settle_date_order(_file("3/1/2023", "3/15/2023"), "p", None) == ("MDY", "")
    assert settle_date_order(_file("01/03/2024"), "p", "DMY") == ("DMY", "")


def test_a_file_against_itself_or_its_declaration_settles_nothing():
    order, why = settle_date_order(_file("25/03/2024", "03/25/2024"), "p", None)
    assert order is None
    assert why == (
        "the file has both day-first '25/03/2024' (line 2) and month-first '03/25/2024' "
        "(line 3) dates"
    )
    order, why = settle_date_order(_file("3/1/2023", "3/13/2023"), "p", "DMY")
    assert order is None and "'3/13/2023' (line 3) is month first" in why
    order, why = settle_date_order(_file("01/03/2024", "01/04/2024"), "p", None)
    assert order is None and "no date order is declared" in why


@pytest.mark.parametrize(
    ("text", "number_format", "expected"),
    [
        ("12", None, 12),
        ("1 234", None, 1234),
        ("1\u00a0234", None, 1234),  # non-breaking space, as French Excel groups
        ("12.0", None, 12),  # Excel's trailing zero decimals
        ("12.00", EN_GB, 12),
        ("1,234,567", None, 1234567),  # comma repeated in threes: thousands
        ("1.234.567", None, 1234567),
        ("1,234.0", None, 1234),
        ("0", None, 0),
        ("-3", None, -3),
        (" 1,234 ", EN_GB, 1234),
        ("41,000", EN_GB, 41000),
        ("1,000", EN_GB, 1000),
        ("41.000", DE_DE, 41000),
        ("2,0", DE_DE, 2),
        ("1.234,00", DE_DE, 1234),
        ("1 234,0", FR_FR, 1234),
        ("999999999999999999", None, 999999999999999999),
    ],
)
def test_counts(text, number_format, expected):
    assert _count(text, number_format)["n"] == expected


@pytest.mark.parametrize(
    ("text", "number_format", "issue"),
    [
        ("41,000", None, AMBIGUOUS_SEPARATOR),  # 41.000 or 41000, nothing declared
        ("1.000", None, AMBIGUOUS_SEPARATOR),
        ("1.000", EN_GB, AMBIGUOUS_SEPARATOR),  # decimal point to three places in a count
        ("41.000", EN_GB, AMBIGUOUS_SEPARATOR),
        ("41,000", DE_DE, AMBIGUOUS_SEPARATOR),
        ("2,5", EN_GB, SEPARATOR_NOT_IN_LOCALE),  # a decimal comma where ',' groups thousands
        ("1,234,567", DE_DE, SEPARATOR_NOT_IN_LOCALE),
        ("12.0", DE_DE, SEPARATOR_NOT_IN_LOCALE),
        ("1.000", FR_FR, SEPARATOR_NOT_IN_LOCALE),
        ("1.23E+08", EN_GB, SCIENTIFIC_NOTATION),
        ("1,23E+08", DE_DE, SCIENTIFIC_NOTATION),
        ("1e400", None, SCIENTIFIC_NOTATION),
        ("1234567890123456789012", EN_GB, TOO_MANY_DIGITS),
    ],
)
def test_counts_read_only_with_a_guess_are_refused_with_the_issue(text, number_format, issue):
    read = _count(text, number_format)
    assert (read["n"], read["n_issue"]) == (None, issue)


def test_ambiguous_count_detail_gives_both_readings():
    assert _count("41.000", EN_GB)["n_issue_detail"] == (
        "could be 41.000 or 41000: '.' may be a decimal or a thousands separator, and the "
        "source contract does not settle it (number format: en-GB (decimal '.', thousands ','))"
    )


@pytest.mark.parametrize(
    "text", ["12.5", "2,5", "<5", "*", "c", "", None, "twelve", "NaN", "12 34", "1,2345"]
)
def test_non_counts_stay_null(text):
    assert _count(text)["n"] is None


@pytest.mark.parametrize(("text", "expected"), [(" rtd ", "RTD"), ("RTD", "RTD"), ("  ", None)])
def test_codes_are_trimmed_and_upper_case(text, expected):
    assert _one(clean_code("v"), text) == expected
