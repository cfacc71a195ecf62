"""The month rules' one home (pipelines/months.py): parsing, arithmetic, keys and words."""

from datetime import date

import pytest

from pipelines.months import (
    add_months,
    financial_year,
    month_from_index,
    month_from_key,
    month_index,
    month_key,
    month_label,
    month_text,
    months_between,
    parse_month,
    short_month,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-04", date(2019, 4, 1)),
        ("2019-4", date(2019, 4, 1)),
        (" 2024-12-31 ", date(2024, 12, 1)),
        (date(2025, 3, 17), date(2025, 3, 1)),
    ],
)
def test_a_month_is_read_as_the_first_of_that_month(value, expected):
    assert parse_month(value) == expected


@pytest.mark.parametrize("value", ["2019", "04-2019", "2019-13", "2019-00", "March 2024", "", None])
def test_anything_else_is_refused_naming_the_value(value):
    with pytest.raises(ValueError, match="expected a month as YYYY-MM, got"):
        parse_month(value)


@pytest.mark.parametrize(
    ("month", "n", "expected"),
    [
        (date(2024, 1, 1), -1, date(2023, 12, 1)),
        (date(2024, 12, 1), 1, date(2025, 1, 1)),
        (date(2024, 3, 1), -27, date(2021, 12, 1)),
        (date(2024, 3, 1), 0, date(2024, 3, 1)),
        (date(2024, 3, 1), 24, date(2026, 3, 1)),
    ],
)
def test_months_add_across_years(month, n, expected):
    assert add_months(month, n) == expected
    assert month_index(expected) - month_index(month) == n


def test_month_index_numbers_consecutive_months_and_inverts():
    months = months_between(date(2023, 11, 1), date(2024, 2, 1))
    assert months == [date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1)]
    indexes = [month_index(m) for m in months]
    assert indexes == list(range(indexes[0], indexes[0] + 4))
    assert [month_from_index(i) for i in indexes] == months
    assert months_between(date(2024, 2, 1), date(2024, 1, 1)) == []


def test_partition_keys_round_trip_and_refuse_other_text():
    assert month_key(date(2024, 6, 20)) == "2024-06-01"
    assert month_from_key("2024-06-01") == date(2024, 6, 1)
    with pytest.raises(ValueError):
        month_from_key("June 2024")


def test_words_people_read():
    assert month_label(date(2025, 3, 1)) == "Mar 2025"
    assert short_month(date(2005, 11, 1)) == "Nov 05"
    assert month_text(None) == "–"
    assert month_text("2024-04-01") == "Apr 2024"
    assert month_text(date(2024, 4, 1)) == "Apr 2024"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2024, "2024/25"),
        (2024.0, "2024/25"),
        (date(2025, 3, 31), "2024/25"),
        (date(2025, 4, 1), "2025/26"),
        (date(1999, 6, 1), "1999/00"),
        ("2024/25", "2024/25"),
        ("FY 2024/25", "2024/25"),
        ("FY2024/25", "2024/25"),
        (None, "–"),
    ],
)
def test_financial_year_runs_april_to_march(value, expected):
    assert financial_year(value) == expected
