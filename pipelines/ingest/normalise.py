"""Polars expressions that turn provider text into typed values, or null when they cannot.

Nulls here are not errors by themselves: the row rules (``rules.py``) decide, looking at
both the raw text and the parsed value, and say exactly what was wrong. Where a value has
two readings (``41.000``: forty-one, or forty-one thousand; ``03/01/2024``: March or
January) the reading is never chosen silently: the source contract's declared number
locale or date order settles it, or the file's own dates do, or the value is left null
with the ambiguity explained, for the rules to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from pipelines.ingest.contracts import NumberFormat

SUPPRESSION_MARKERS = ("*", "<5", "c", "x", "~", "<3", "suppressed")

# Count problems (``read_count``), each refused by a row rule of the same name.
SCIENTIFIC_NOTATION = "scientific_notation"
AMBIGUOUS_SEPARATOR = "ambiguous_separator"
SEPARATOR_NOT_IN_LOCALE = "separator_not_in_locale"
TOO_MANY_DIGITS = "too_many_digits"

# Spaces group thousands in every locale that uses them (plain, non-breaking, narrow
# non-breaking as French Excel writes, thin): never a decimal separator.
_SPACE = "[ \u00a0\u202f\u2009]"
_MAX_DIGITS = 18  # Int64 holds every 18-digit number


def clean_code(column: str) -> pl.Expr:
    """Organisation and measure codes: padded or lower-case codes are the same code."""
    return pl.col(column).str.strip_chars().str.to_uppercase().replace("", None)


@dataclass(frozen=True)
class CountExprs:
    """A count read from text: ``value`` (Int64, null when not a whole number or refused),
    ``issue`` (null, or why the text was refused) and ``detail`` (the issue explained)."""

    value: pl.Expr
    issue: pl.Expr
    detail: pl.Expr


def read_count(column: str, number_format: NumberFormat | None = None) -> CountExprs:
    """Read a count, with the separators ``number_format`` declares (None: undeclared).

    A count is digits, optionally grouped into thousands, optionally with a decimal part of
    zeros (Excel's ``12.0``). A ``.`` or ``,`` is read only when its role is certain:

    * both in one value (``1,234.0``, ``1.234,0``): the last one is the decimal separator;
    * repeated in groups of three (``1,234,567``): thousands;
    * followed by one, two or four or more digits (``2,5``, ``12.0``): a decimal separator;
    * followed by exactly three digits, alone (``41.000``, ``1,000``): either. It is read
      as thousands only when the contract declares it the thousands separator; otherwise
      the value is refused as ambiguous (a declared *decimal* separator does not settle it:
      a count has no decimals, so ``41.000`` is far likelier a European forty-one thousand
      than forty-one written to three places).

    With a declared format, a separator used in the other role is refused
    (``separator_not_in_locale``: ``2,5`` in en-GB). Scientific notation (``1.23E+08``,
    Excel's display of a long number in a narrow column) is refused in any locale: it has
    already rounded the count.
    """
    text = pl.col(column).str.strip_chars()
    negative = text.str.starts_with("-")
    unsigned = text.str.replace(r"^[+-]", "")
    space_grouped = unsigned.str.contains(rf"^\d{{1,3}}({_SPACE}\d{{3}})+([.,]\d+)?$")
    body = pl.when(space_grouped).then(unsigned.str.replace_all(_SPACE, "")).otherwise(unsigned)

    scientific = body.str.contains(r"^(\d+([.,]\d*)?|[.,]\d+)[eE][+-]?\d+$")
    lone_three = body.str.contains(r"^[1-9]\d{0,2}[.,]\d{3}$")
    separator = body.str.extract(r"([.,])", 1)
    comma_groups = body.str.contains(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
    point_groups = body.str.contains(r"^\d{1,3}(\.\d{3})+(,\d+)?$")
    point_decimal = body.str.contains(r"^\d+\.\d+$")
    comma_decimal = body.str.contains(r"^\d+,\d+$")

    declared = number_format is not None
    thousands = number_format.thousands if number_format else None
    decimal = number_format.decimal if number_format else None

    def fits(ok: bool) -> pl.Expr:
        return pl.lit(None, pl.String) if ok else pl.lit(SEPARATOR_NOT_IN_LOCALE)

    issue = (
        pl.when(scientific)
        .then(pl.lit(SCIENTIFIC_NOTATION))
        .when(lone_three & (separator == pl.lit(thousands or "")))
        .then(pl.lit(None, pl.String))
        .when(lone_three & (pl.lit(not declared) | (separator == pl.lit(decimal or ""))))
        .then(pl.lit(AMBIGUOUS_SEPARATOR))
        .when(lone_three)
        .then(pl.lit(SEPARATOR_NOT_IN_LOCALE))
        .when(comma_groups)
        .then(fits(not declared or thousands == ","))
        .when(point_groups)
        .then(fits(not declared or thousands == "."))
        .when(point_decimal)
        .then(fits(not declared or decimal == "."))
        .when(comma_decimal)
        .then(fits(not declared or decimal == ","))
        .otherwise(pl.lit(None, pl.String))
    )
    decimal_char = (
        pl.when(lone_three)
        .then(pl.lit(None, pl.String))
        .when(comma_groups | point_decimal)
        .then(pl.lit("."))
        .when(point_groups | comma_decimal)
        .then(pl.lit(","))
        .otherwise(pl.lit(None, pl.String))
    )
    shaped = body.str.contains(r"^\d+$") | lone_three | comma_groups | point_groups
    shaped = shaped | point_decimal | comma_decimal
    whole_part = (
        pl.when(decimal_char == ".")
        .then(body.str.replace(r"\.\d+$", ""))
        .when(decimal_char == ",")
        .then(body.str.replace(r",\d+$", ""))
        .otherwise(body)
        .str.replace_all(r"[.,]", "")
    )
    fraction = (
        pl.when(decimal_char == ".")
        .then(body.str.extract(r"\.(\d+)$", 1))
        .when(decimal_char == ",")
        .then(body.str.extract(r",(\d+)$", 1))
        .otherwise(pl.lit(""))
        .fill_null("")  # grouped thousands with no decimal part
    )
    too_long = shaped & issue.is_null() & (whole_part.str.len_chars() > _MAX_DIGITS)
    issue = pl.when(too_long).then(pl.lit(TOO_MANY_DIGITS)).otherwise(issue)
    magnitude = whole_part.cast(pl.Int64, strict=False)
    value = (
        pl.when(shaped & issue.is_null() & fraction.str.contains(r"^0*$"))
        .then(pl.when(negative).then(-magnitude).otherwise(magnitude))
        .otherwise(pl.lit(None, pl.Int64))
    )
    locale = number_format.describe() if number_format else "none declared"
    detail = (
        pl.when(issue == SCIENTIFIC_NOTATION)
        .then(
            pl.lit(
                "is in scientific notation, which has already rounded the count; "
                "send the whole number"
            )
        )
        .when(issue == AMBIGUOUS_SEPARATOR)
        .then(
            pl.format(
                "could be {}.{} or {}: '{}' may be a decimal or a thousands separator, and "
                "the source contract does not settle it (number format: {})",
                whole_part.str.slice(0, whole_part.str.len_chars() - 3),
                whole_part.str.slice(-3),
                whole_part,
                separator,
                pl.lit(locale),
            )
        )
        .when(issue == SEPARATOR_NOT_IN_LOCALE)
        .then(
            pl.format(
                "does not fit the source contract's number format {}; a count is written "
                "with digits and thousands separators only",
                pl.lit(locale),
            )
        )
        .when(issue == TOO_MANY_DIGITS)
        .then(pl.lit(f"has more than {_MAX_DIGITS} digits"))
        .otherwise(pl.lit(None, pl.String))
    )
    return CountExprs(value=value, issue=issue, detail=detail)


def parse_count(column: str, number_format: NumberFormat | None = None) -> pl.Expr:
    """The count's value alone (null unless it is a whole number read without doubt)."""
    return read_count(column, number_format).value


# --- reporting months --------------------------------------------------------------------

# Numeric dates with the year last (01/03/2024, 1-3-2024, 01.03.2024), optionally a time.
_YEAR_LAST = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
# Year first with / or . (2024/03/01), read only when the contract declares YMD.
_YEAR_FIRST = r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"


def _ymd(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """The date, or null when it does not exist (31/02, month 13)."""
    return pl.format(
        "{}-{}-{}",
        year.cast(pl.String),
        month.cast(pl.String).str.zfill(2),
        day.cast(pl.String).str.zfill(2),
    ).str.to_date("%Y-%m-%d", strict=False)


@dataclass(frozen=True)
class NumericDate:
    """A year-last numeric date's two readings: day first and month first."""

    day_first: pl.Expr
    month_first: pl.Expr

    @property
    def ambiguous(self) -> pl.Expr:
        """Both readings exist and fall in different months (01/03 vs 03/01; 05/05 is not)."""
        return (
            self.day_first.is_not_null()
            & self.month_first.is_not_null()
            & (self.day_first.dt.truncate("1mo") != self.month_first.dt.truncate("1mo"))
        )


def numeric_date(column: str) -> NumericDate:
    text = pl.col(column).str.strip_chars()
    first = text.str.extract(_YEAR_LAST, 1).cast(pl.Int32, strict=False)
    second = text.str.extract(_YEAR_LAST, 2).cast(pl.Int32, strict=False)
    year = text.str.extract(_YEAR_LAST, 3).cast(pl.Int32, strict=False)
    return NumericDate(_ymd(year, second, first), _ymd(year, first, second))


def parse_period(
    column: str, date_order: str | None = None, *, settled: str | None = "declared"
) -> pl.Expr:
    """Reporting month from ``2024-03``, ``Mar-24``, ``March 2024``, ``2024-03-01``, an
    Excel date serial, or a year-last numeric date (``01/03/2024``, ``1-3-2024``,
    ``01.03.2024``); any day is taken as its month.

    ``date_order`` is the contract's declaration (DMY, MDY, YMD or None); ``settled`` is
    the order that applies to *ambiguous* year-last dates in this file (DMY, MDY or None:
    leave them null), by default the declaration. A year-last date with one valid reading
    (25/03/2024) takes it, unless it contradicts a declared DMY or MDY.
    """
    if settled == "declared":
        settled = date_order if date_order in ("DMY", "MDY") else None
    text = pl.col(column).str.strip_chars()
    serial = text.cast(pl.Float64, strict=False)
    numeric = numeric_date(column)
    if settled == "DMY":
        ambiguous_reading = numeric.day_first
    elif settled == "MDY":
        ambiguous_reading = numeric.month_first
    else:
        ambiguous_reading = pl.lit(None, pl.Date)
    only_day_first = numeric.day_first.is_not_null() & numeric.month_first.is_null()
    only_month_first = numeric.month_first.is_not_null() & numeric.day_first.is_null()
    year_last = (
        pl.when(numeric.ambiguous)
        .then(ambiguous_reading)
        .when(only_day_first & pl.lit(date_order != "MDY"))
        .then(numeric.day_first)
        .when(only_month_first & pl.lit(date_order != "DMY"))
        .then(numeric.month_first)
        .when(~numeric.ambiguous & ~only_day_first & ~only_month_first)
        .then(numeric.day_first)  # both readings in one month (05/05/2024)
        .otherwise(pl.lit(None, pl.Date))
    )
    attempts = [
        # XLSX date cells read as text arrive as Excel serial day numbers (1900 system).
        pl.when(serial.is_between(20_000, 80_000)).then(
            pl.lit(date(1899, 12, 30)) + pl.duration(days=serial.floor().cast(pl.Int64))
        ),
        (text + "-01").str.to_date("%Y-%m-%d", strict=False),
        text.str.to_date("%Y-%m-%d", strict=False),
        year_last,
        ("01-" + text).str.to_date("%d-%b-%y", strict=False),
        ("01-" + text).str.to_date("%d-%b-%Y", strict=False),
        ("01 " + text).str.to_date("%d %B %Y", strict=False),
        ("01 " + text).str.to_date("%d %b %Y", strict=False),
        text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
    ]
    if date_order == "YMD":
        attempts.append(
            _ymd(
                text.str.extract(_YEAR_FIRST, 1).cast(pl.Int32, strict=False),
                text.str.extract(_YEAR_FIRST, 2).cast(pl.Int32, strict=False),
                text.str.extract(_YEAR_FIRST, 3).cast(pl.Int32, strict=False),
            )
        )
    # chrono's %Y accepts two-digit years ("24-03" would be AD 24): keep plausible ones only.
    plausible = [pl.when(a.dt.year().is_between(1990, 2100)).then(a) for a in attempts]
    return pl.coalesce(plausible).dt.truncate("1mo").alias(column)


def settle_date_order(
    frame: pl.DataFrame, column: str, date_order: str | None
) -> tuple[str | None, str]:
    """The order for this file's ambiguous year-last dates, decided from the file itself:
    (DMY, MDY or None, why None).

    A date with a day above 12 shows the order (25/03/2024 is day first). If the file's
    dates show one order that does not contradict the declaration, it applies; with no
    evidence the declaration applies; if the file contradicts itself or the declaration,
    or nothing declares or shows the order, ambiguous dates are left unread.
    """
    numeric = numeric_date(column)
    shown = frame.select(
        pl.col(column),
        pl.col("source_line"),
        (numeric.day_first.is_not_null() & numeric.month_first.is_null()).alias("dmy"),
        (numeric.month_first.is_not_null() & numeric.day_first.is_null()).alias("mdy"),
    )
    examples = {}
    for order in ("dmy", "mdy"):
        found = shown.filter(pl.col(order)).head(1)
        if found.height:
            examples[order.upper()] = (
                f"'{found[column][0].strip()}' (line {found['source_line'][0]})"
            )
    declared = date_order if date_order in ("DMY", "MDY") else None
    if declared:
        other = "MDY" if declared == "DMY" else "DMY"
        if other not in examples:
            return declared, ""
        first = "month" if declared == "DMY" else "day"
        return None, (
            f"the contract declares {declared}, but {examples[other]} is {first} first, "
            "so this file's dates cannot be trusted to follow it"
        )
    if len(examples) == 2:
        return None, (
            f"the file has both day-first {examples['DMY']} and month-first {examples['MDY']} dates"
        )
    if examples:
        return next(iter(examples)), ""
    return None, (
        "no date order is declared for this layout and no date in the file has a day "
        "above 12 to show it"
    )


def period_ambiguity(column: str, settled: str | None, why: str) -> pl.Expr:
    """For a year-last date left unread because its order is unsettled: both readings and
    why (null for every other value)."""
    numeric = numeric_date(column)
    return (
        pl.when(numeric.ambiguous & pl.lit(settled is None))
        .then(
            pl.format(
                "could be {} (day first) or {} (month first); {}",
                numeric.day_first.dt.strftime("%B %Y"),
                numeric.month_first.dt.strftime("%B %Y"),
                pl.lit(why),
            )
        )
        .otherwise(pl.lit(None, pl.String))
    )


def period_hint(column: str, date_order: str | None) -> pl.Expr:
    """For an unreadable year-last numeric date (3/13/2024 where DMY is declared): the
    declared order, so the reason says why a real-looking date was refused."""
    if date_order not in ("DMY", "MDY"):
        return pl.lit(None, pl.String)
    first = "day" if date_order == "DMY" else "month"
    return (
        pl.when(pl.col(column).str.strip_chars().str.contains(_YEAR_LAST))
        .then(pl.lit(f" ({first} first, as the source contract declares {date_order})"))
        .otherwise(pl.lit(None, pl.String))
    )


def is_blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def is_suppression_marker(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_lowercase().is_in(list(SUPPRESSION_MARKERS))
