"""Turn provider text into typed values (polars), or null when they cannot be read.

Nulls here are not errors by themselves: the row rules (``rules.py``) decide, looking at
both the raw text and the parsed value, and say exactly what was wrong. Where a value has
two readings (``41.000``: forty-one, or forty-one thousand; ``03/01/2024``: March or
January) the reading is never chosen silently: the source contract's declared number
locale or date order settles it, or the file's own dates do, or the value is left null
with the ambiguity explained, for the rules to refuse.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from itertools import chain

import polars as pl

from pipelines.ingest.contracts import NumberFormat

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


def number_context(number_format: NumberFormat | None) -> list[pl.Expr]:
    """One file's declared number format as columns (``NUMBER_CONTEXT``), so ``read_count``
    can read many files, each as its contract says, in one pass."""
    return [
        pl.lit(number_format.decimal if number_format else None, pl.String).alias("number_decimal"),
        pl.lit(number_format.thousands if number_format else None, pl.String).alias(
            "number_thousands"
        ),
        pl.lit(number_format.describe() if number_format else "none declared").alias(
            "number_format"
        ),
    ]


NUMBER_CONTEXT = ("number_decimal", "number_thousands", "number_format")


def read_count(frame: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """``frame`` with the count in text ``column`` read into ``name`` (Int64, null unless a
    whole number read without doubt), ``{name}_issue`` (null, or why the text was refused)
    and ``{name}_issue_detail`` (the issue explained), with the separators each row's
    ``number_context`` declares (null: undeclared).

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

    Hand-rolled with regular expressions (Babel's ``parse_decimal`` knows locales but reads
    one Python string at a time, and would guess where this refuses). Computed in stages
    of materialised columns: one nested expression would evaluate its shared parts again
    at every use (a million rows took half a minute; staged, well under a second). Run
    once per batch of files, not per file: each stage has a fixed cost.
    """
    t = f"__{name}_"  # temporary columns, dropped at the end
    decimal, thousands = pl.col("number_decimal"), pl.col("number_thousands")
    undeclared = decimal.is_null()

    def col(part: str) -> pl.Expr:
        return pl.col(t + part)

    def fits(ok: pl.Expr) -> pl.Expr:
        return (
            pl.when(undeclared | ok.fill_null(False))
            .then(pl.lit(None, pl.String))
            .otherwise(pl.lit(SEPARATOR_NOT_IN_LOCALE))
        )

    text = pl.col(column).str.strip_chars()
    frame = frame.with_columns(
        text.str.starts_with("-").alias(t + "negative"),
        text.str.replace(r"^[+-]", "").alias(t + "unsigned"),
    ).with_columns(
        pl.when(col("unsigned").str.contains(rf"^\d{{1,3}}({_SPACE}\d{{3}})+([.,]\d+)?$"))
        .then(col("unsigned").str.replace_all(_SPACE, ""))
        .otherwise(col("unsigned"))
        .alias(t + "body")
    )
    body = col("body")
    frame = frame.with_columns(
        body.str.contains(r"^(\d+([.,]\d*)?|[.,]\d+)[eE][+-]?\d+$").alias(t + "scientific"),
        body.str.contains(r"^\d+$").alias(t + "plain"),
        body.str.contains(r"^[1-9]\d{0,2}[.,]\d{3}$").alias(t + "lone_three"),
        body.str.extract(r"([.,])", 1).alias(t + "separator"),
        body.str.contains(r"^\d{1,3}(,\d{3})+(\.\d+)?$").alias(t + "comma_groups"),
        body.str.contains(r"^\d{1,3}(\.\d{3})+(,\d+)?$").alias(t + "point_groups"),
        body.str.contains(r"^\d+\.\d+$").alias(t + "point_decimal"),
        body.str.contains(r"^\d+,\d+$").alias(t + "comma_decimal"),
    )
    lone_three, separator = col("lone_three"), col("separator")
    groups = col("comma_groups") | col("point_groups")
    decimals = col("point_decimal") | col("comma_decimal")
    frame = frame.with_columns(
        pl.when(col("scientific"))
        .then(pl.lit(SCIENTIFIC_NOTATION))
        .when(lone_three & (separator == thousands).fill_null(False))
        .then(pl.lit(None, pl.String))
        .when(lone_three & (undeclared | (separator == decimal).fill_null(False)))
        .then(pl.lit(AMBIGUOUS_SEPARATOR))
        .when(lone_three)
        .then(pl.lit(SEPARATOR_NOT_IN_LOCALE))
        .when(col("comma_groups"))
        .then(fits(thousands == ","))
        .when(col("point_groups"))
        .then(fits(thousands == "."))
        .when(col("point_decimal"))
        .then(fits(decimal == "."))
        .when(col("comma_decimal"))
        .then(fits(decimal == ","))
        .otherwise(pl.lit(None, pl.String))
        .alias(t + "issue"),
        pl.when(lone_three)
        .then(pl.lit(None, pl.String))
        .when(col("comma_groups") | col("point_decimal"))
        .then(pl.lit("."))
        .when(col("point_groups") | col("comma_decimal"))
        .then(pl.lit(","))
        .otherwise(pl.lit(None, pl.String))
        .alias(t + "decimal_char"),
        (col("plain") | lone_three | groups | decimals).alias(t + "shaped"),
    )
    decimal_char = col("decimal_char")
    frame = frame.with_columns(
        pl.when(decimal_char == ".")
        .then(body.str.replace(r"\.\d+$", ""))
        .when(decimal_char == ",")
        .then(body.str.replace(r",\d+$", ""))
        .otherwise(body)
        .str.replace_all(r"[.,]", "")
        .alias(t + "whole"),
        pl.when(decimal_char == ".")
        .then(body.str.extract(r"\.(\d+)$", 1))
        .when(decimal_char == ",")
        .then(body.str.extract(r",(\d+)$", 1))
        .otherwise(pl.lit(""))
        .fill_null("")  # grouped thousands with no decimal part
        .alias(t + "fraction"),
    )
    whole, shaped = col("whole"), col("shaped")
    frame = frame.with_columns(
        pl.when(shaped & col("issue").is_null() & (whole.str.len_chars() > _MAX_DIGITS))
        .then(pl.lit(TOO_MANY_DIGITS))
        .otherwise(col("issue"))
        .alias(f"{name}_issue"),
        whole.cast(pl.Int64, strict=False).alias(t + "magnitude"),
    )
    issue, magnitude = pl.col(f"{name}_issue"), col("magnitude")
    return frame.with_columns(
        pl.when(shaped & issue.is_null() & col("fraction").str.contains(r"^0*$"))
        .then(pl.when(col("negative")).then(-magnitude).otherwise(magnitude))
        .otherwise(pl.lit(None, pl.Int64))
        .alias(name),
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
                whole.str.slice(0, whole.str.len_chars() - 3),
                whole.str.slice(-3),
                whole,
                separator,
                pl.col("number_format"),
            )
        )
        .when(issue == SEPARATOR_NOT_IN_LOCALE)
        .then(
            pl.format(
                "uses '{}' as {}, which the source contract's number format {} does not; "
                "a count is whole digits, grouped by the thousands separator if at all",
                separator,
                pl.when(lone_three)
                .then(pl.lit("a separator"))
                .when(decimals)
                .then(pl.lit("a decimal separator"))
                .when(groups)
                .then(pl.lit("a thousands separator"))
                .otherwise(pl.lit("a separator")),
                pl.col("number_format"),
            )
        )
        .when(issue == TOO_MANY_DIGITS)
        .then(pl.lit(f"has more than {_MAX_DIGITS} digits"))
        .otherwise(pl.lit(None, pl.String))
        .alias(f"{name}_issue_detail"),
    ).drop(pl.selectors.starts_with(t))


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


def _with_numeric_dates(frame: pl.DataFrame, column: str, t: str) -> pl.DataFrame:
    """Temporary columns ``{t}day_first`` / ``{t}month_first`` (the two readings of a
    year-last numeric date, null where that reading is not a date), ``{t}ambiguous`` (both
    exist, in different months: 01/03 vs 03/01; 05/05 is not ambiguous), ``{t}only_dmy``
    and ``{t}only_mdy`` (the value itself shows its order)."""
    text = pl.col(column).str.strip_chars()
    parts = [text.str.extract(_YEAR_LAST, i).cast(pl.Int32, strict=False) for i in (1, 2, 3)]
    frame = frame.with_columns(
        parts[0].alias(t + "first"), parts[1].alias(t + "second"), parts[2].alias(t + "year")
    )
    first, second, year = pl.col(t + "first"), pl.col(t + "second"), pl.col(t + "year")
    frame = frame.with_columns(
        _ymd(year, second, first).alias(t + "day_first"),
        _ymd(year, first, second).alias(t + "month_first"),
    )
    day_first, month_first = pl.col(t + "day_first"), pl.col(t + "month_first")
    return frame.with_columns(
        (
            day_first.is_not_null()
            & month_first.is_not_null()
            & (day_first.dt.truncate("1mo") != month_first.dt.truncate("1mo"))
        ).alias(t + "ambiguous"),
        (day_first.is_not_null() & month_first.is_null()).alias(t + "only_dmy"),
        (month_first.is_not_null() & day_first.is_null()).alias(t + "only_mdy"),
    )


def _settle(
    parts: pl.DataFrame, column: str, t: str, date_order: str | None
) -> tuple[str | None, str]:
    """``settle_date_order`` on a frame already holding ``_with_numeric_dates``' columns."""
    lines = (
        pl.col("source_line")
        if "source_line" in parts.columns
        else pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )
    examples = {}
    for order in ("dmy", "mdy"):
        found = parts.select(pl.col(column), lines.alias("line")).filter(parts[t + f"only_{order}"])
        if found.height:
            examples[order.upper()] = f"'{found[column][0].strip()}' (line {found['line'][0]})"
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


def settle_date_order(
    frame: pl.DataFrame, column: str, date_order: str | None
) -> tuple[str | None, str]:
    """The order for one file's ambiguous year-last dates, decided from the file itself:
    (DMY, MDY or None, why None).

    A date with a day above 12 shows the order (25/03/2024 is day first). If the file's
    dates show one order that does not contradict the declaration, it applies; with no
    evidence the declaration applies; if the file contradicts itself or the declaration,
    or nothing declares or shows the order, ambiguous dates are left unread.
    """
    numeric = frame.filter(pl.col(column).str.strip_chars().str.contains(_YEAR_LAST))
    if numeric.height == 0:  # most files: no such dates, nothing to settle
        return (date_order if date_order in ("DMY", "MDY") else None), ""
    return _settle(
        _with_numeric_dates(numeric, column, "__settle_"), column, "__settle_", date_order
    )


def date_context(frame: pl.DataFrame, column: str, date_order: str | None) -> list[pl.Expr]:
    """One file's date order as columns (``DATE_CONTEXT``): declared, settled for its
    ambiguous dates (``settle_date_order``), and why not when not; so ``read_period`` can
    read many files in one pass."""
    settled, why = settle_date_order(frame, column, date_order)
    return [
        pl.lit(date_order, pl.String).alias("date_order"),
        pl.lit(settled, pl.String).alias("date_settled"),
        pl.lit(why).alias("date_unsettled_why"),
    ]


DATE_CONTEXT = ("date_order", "date_settled", "date_unsettled_why")


def date_contexts(
    frame: pl.DataFrame, column: str, date_order: str | None, by: str
) -> pl.DataFrame:
    """:func:`date_context` for many files of one contract at once: one row per value of
    ``by`` (a file) with the ``DATE_CONTEXT`` columns. Only files holding a year-last numeric
    date are settled one by one (each exactly as ``settle_date_order`` settles it, rows in
    the frame's order); every other file takes the declared order, as it would alone."""
    declared = date_order if date_order in ("DMY", "MDY") else None
    files = frame.select(pl.col(by).unique(maintain_order=True))
    numeric = frame.filter(pl.col(column).str.strip_chars().str.contains(_YEAR_LAST))
    settled: dict = {}
    if numeric.height:
        for (key,), part in numeric.partition_by(by, as_dict=True, maintain_order=True).items():
            t = "__settle_"
            settled[key] = _settle(_with_numeric_dates(part, column, t), column, t, date_order)
    keys = files[by].to_list()
    return pl.DataFrame(
        {
            by: keys,
            "date_order": [date_order] * len(keys),
            "date_settled": [settled.get(k, (declared, ""))[0] for k in keys],
            "date_unsettled_why": [settled.get(k, (declared, ""))[1] for k in keys],
        },
        schema={
            by: frame.schema[by],
            "date_order": pl.String,
            "date_settled": pl.String,
            "date_unsettled_why": pl.String,
        },
    )


def read_period(frame: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """``frame`` with the reporting month of text ``column`` in ``name``, and for the rules
    ``{name}_ambiguity`` (a year-last numeric date left unread because its order is
    unsettled: both readings and why) and ``{name}_hint`` (for an unreadable numeric date,
    the declared order). Each row's ``date_context`` says how its file reads dates.

    Months from ``2024-03``, ``Mar-24``, ``March 2024``, ``2024-03-01``, an Excel date
    serial, or a year-last numeric date (``01/03/2024``, ``1-3-2024``, ``01.03.2024``); any
    day is taken as its month. ``date_order`` may be DMY, MDY, YMD (which also reads
    ``2024/03/01``) or null. Ambiguous year-last dates follow the file's settled order; a
    date with one valid reading (25/03/2024) takes it, unless it contradicts a declared
    DMY or MDY. Staged in columns, once per batch, for the same reasons as ``read_count``.
    """
    t = f"__{name}_"
    frame = _with_numeric_dates(frame, column, t)
    declared, settled = pl.col("date_order"), pl.col("date_settled")
    day_first, month_first = pl.col(t + "day_first"), pl.col(t + "month_first")
    ambiguous = pl.col(t + "ambiguous")
    only_dmy, only_mdy = pl.col(t + "only_dmy"), pl.col(t + "only_mdy")
    year_last = (
        pl.when(ambiguous & (settled == "DMY").fill_null(False))
        .then(day_first)
        .when(ambiguous & (settled == "MDY").fill_null(False))
        .then(month_first)
        .when(ambiguous)
        .then(pl.lit(None, pl.Date))
        .when(only_dmy & (declared != "MDY").fill_null(True))
        .then(day_first)
        .when(only_mdy & (declared != "DMY").fill_null(True))
        .then(month_first)
        .when(~only_dmy & ~only_mdy)
        .then(day_first)  # both readings in one month (05/05/2024), or not such a date
        .otherwise(pl.lit(None, pl.Date))
    )
    text = pl.col(column).str.strip_chars()
    serial = text.cast(pl.Float64, strict=False)
    year_first = [text.str.extract(_YEAR_FIRST, i).cast(pl.Int32, strict=False) for i in (1, 2, 3)]
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
        pl.when(declared == "YMD").then(_ymd(*year_first)),
    ]
    # chrono's %Y accepts two-digit years ("24-03" would be AD 24): keep plausible ones only.
    plausible = [pl.when(a.dt.year().is_between(1990, 2100)).then(a) for a in attempts]
    return frame.with_columns(
        pl.coalesce(plausible).dt.truncate("1mo").alias(name),
        pl.when(ambiguous & settled.is_null())
        .then(
            pl.format(
                "could be {} (day first) or {} (month first); {}",
                day_first.dt.strftime("%B %Y"),
                month_first.dt.strftime("%B %Y"),
                pl.col("date_unsettled_why"),
            )
        )
        .otherwise(pl.lit(None, pl.String))
        .alias(f"{name}_ambiguity"),
        pl.when(pl.col(t + "year").is_not_null() & declared.is_in(["DMY", "MDY"]))
        .then(
            pl.format(
                " ({} first, as the source contract declares {})",
                pl.when(declared == "DMY").then(pl.lit("day")).otherwise(pl.lit("month")),
                declared,
            )
        )
        .otherwise(pl.lit(None, pl.String))
        .alias(f"{name}_hint"),
    ).drop(pl.selectors.starts_with(t))


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
