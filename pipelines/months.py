"""Calendar months: the one home of every month rule the pipeline uses (docs/architecture.md).

A reporting month is the ``date`` of its first day everywhere in the code, as in the
warehouse's ``period`` columns. Parsing, arithmetic, the keys Dagster's partitions use and
the words people read were separate helpers in eight modules; they are here, once, so a
month can never be read one way by the command line and another by the settings.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

#: Month names, never numbers, so no one reads 03/04 the American way.
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Shown where a month is missing.
NO_MONTH = "–"
#: First month of the NHS financial year (April to March).
FINANCIAL_YEAR_START = 4
#: How Dagster's monthly partitions spell a month (``reporting_months`` and run tags).
MONTH_KEY_FORMAT = "%Y-%m-%d"

_MONTH_TEXT = re.compile(r"\s*(\d{4})-(\d{1,2})(?:-\d{1,2})?\s*")


def parse_month(value: Any) -> date:
    """``2019-04``, ``2019-04-01`` or a date: the first of that month.

    Anything else is refused with the value in the message (settings, ``--from``/``--to``,
    the benchmark's manifest), never read as some other month.
    """
    if isinstance(value, date):
        return value.replace(day=1)
    match = _MONTH_TEXT.fullmatch(str(value))
    if not match or not 1 <= int(match[2]) <= 12:
        msg = f"expected a month as YYYY-MM, got {value!r}"
        raise ValueError(msg)
    return date(int(match[1]), int(match[2]), 1)


def month_index(period: date) -> int:
    """Months since year 0: consecutive months differ by one (chart positions, windows)."""
    return period.year * 12 + period.month - 1


def month_from_index(index: int) -> date:
    """The month :func:`month_index` numbered ``index``."""
    return date(index // 12, index % 12 + 1, 1)


def add_months(month: date, n: int) -> date:
    """The first of the month ``n`` months after ``month`` (before it when ``n`` < 0)."""
    return month_from_index(month_index(month) + n)


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first`` to ``last`` inclusive (empty when ``last`` is earlier)."""
    return [month_from_index(i) for i in range(month_index(first), month_index(last) + 1)]


def month_key(month: date) -> str:
    """``2024-03-01``: a monthly partition's key in Dagster (its ``%Y-%m-%d`` format)."""
    return month.replace(day=1).strftime(MONTH_KEY_FORMAT)


def month_from_key(key: str) -> date:
    """The month of a partition key (:func:`month_key`'s inverse); ValueError for other text."""
    return datetime.strptime(key, MONTH_KEY_FORMAT).date()


def month_label(period: date) -> str:
    """``Mar 2025``: month names, never numbers, so no one reads 03/04 the American way."""
    return f"{MONTH_NAMES[period.month - 1]} {period.year}"


def short_month(period: date) -> str:
    """``Mar 25``: a chart axis's label."""
    return f"{MONTH_NAMES[period.month - 1]} {period.year % 100:02d}"


def month_text(value: date | str | None) -> str:
    """:func:`month_label` of a date or an ISO date string from a row; ``–`` when missing."""
    if value is None:
        return NO_MONTH
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return month_label(value)


def financial_year(value: Any) -> str:
    """``2024/25`` for the April-to-March year, from a starting year (2024), a date in the
    year, or a label (``2024/25``, ``FY 2024/25``) as given without its ``FY``."""
    if value is None:
        return NO_MONTH
    if isinstance(value, date):
        start = value.year if value.month >= FINANCIAL_YEAR_START else value.year - 1
    elif isinstance(value, int | float) and not isinstance(value, bool):
        start = int(value)
    else:
        text = str(value)
        return text[2:].lstrip() if text.upper().startswith("FY") else text
    return f"{start}/{(start + 1) % 100:02d}"
