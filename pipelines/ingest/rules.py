"""Row rules for measure returns, declared once as a pandera (polars) schema.

Every rule is a named frame-level check whose expression is true for a good row, so one
validation pass (eager frame, lazy error collection) names *every* rule a row breaks.
Rows breaking any rule go to quarantine with all their reasons; the rest load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandera.polars as pa
import polars as pl

from pipelines.ingest.normalise import (
    AMBIGUOUS_SEPARATOR,
    SCIENTIFIC_NOTATION,
    SEPARATOR_NOT_IN_LOCALE,
    TOO_MANY_DIGITS,
    describe_invisible,
    has_invisible_character,
    is_blank,
    is_spreadsheet_error,
    is_suppression_marker,
)
from pipelines.rate import rate_expr


@dataclass(frozen=True)
class Rule:
    name: str
    ok: pl.Expr
    message: pl.Expr


def _raw(column: str) -> pl.Expr:
    return pl.col(f"raw_{column}").fill_null("")


def _invisible_rule(column: str) -> Rule:
    """A code holding a zero-width space, a no-break space, a BOM...: printed, it looks
    like a valid code, so the message escapes the character and names its code point."""
    return Rule(
        f"{column}_invisible_character",
        ~has_invisible_character(f"raw_{column}"),
        pl.col(f"raw_{column}").map_elements(
            lambda value: describe_invisible(column, value), return_dtype=pl.String
        ),
    )


def _count_rules(column: str) -> list[Rule]:
    """The rules for one count. ``{column}_issue`` and ``{column}_issue_detail`` say why
    its text was not read as a number (``normalise.read_count``)."""
    raw, parsed, issue = f"raw_{column}", column, pl.col(f"{column}_issue").fill_null("")
    detail = pl.col(f"{column}_issue_detail").fill_null("")

    def text_rule(kind: str) -> Rule:
        return Rule(
            f"{column}_{kind}",
            issue != kind,
            pl.format("{} '{}' {}", pl.lit(column), _raw(column).str.strip_chars(), detail),
        )

    return [
        Rule(f"{column}_missing", ~is_blank(raw), pl.lit(f"{column} is blank")),
        Rule(
            f"{column}_spreadsheet_error",
            ~is_spreadsheet_error(raw).fill_null(False),
            pl.format(
                "{} is the spreadsheet error '{}' (its formula failed); send the count",
                pl.lit(column),
                _raw(column).str.strip_chars(),
            ),
        ),
        Rule(
            f"{column}_suppressed",
            is_blank(raw) | ~is_suppression_marker(raw),
            pl.format(
                "{} is a suppression marker '{}'; send the actual count (the observatory "
                "applies disclosure control at publication)",
                pl.lit(column),
                _raw(column),
            ),
        ),
        text_rule(SCIENTIFIC_NOTATION),
        text_rule(AMBIGUOUS_SEPARATOR),
        text_rule(SEPARATOR_NOT_IN_LOCALE),
        Rule(
            f"{column}_not_a_whole_number",
            is_blank(raw)
            | is_suppression_marker(raw)
            | is_spreadsheet_error(raw)
            | pl.col(parsed).is_not_null()
            | (issue != ""),
            pl.format("{} '{}' is not a whole number", pl.lit(column), _raw(column)),
        ),
        Rule(
            f"{column}_negative",
            pl.col(parsed).is_null() | (pl.col(parsed) >= 0),
            pl.format("{} {} is negative", pl.lit(column), pl.col(parsed)),
        ),
        Rule(
            f"{column}_above_max_count",
            (issue != TOO_MANY_DIGITS)
            & (
                pl.col(parsed).is_null()
                | pl.col("measure_max_count").is_null()
                | (pl.col(parsed) <= pl.col("measure_max_count"))
            ),
            pl.when(issue == TOO_MANY_DIGITS)
            .then(pl.format("{} '{}' {}", pl.lit(column), _raw(column).str.strip_chars(), detail))
            .otherwise(
                pl.format(
                    "{} {} is above the measure catalogue's max_count of {} for {}",
                    pl.lit(column),
                    pl.col(parsed),
                    pl.col("measure_max_count"),
                    pl.col("measure_code"),
                )
            ),
        ),
    ]


def _value_rules() -> list[Rule]:
    """Plausibility of the pair: a rate needs a denominator, and no value may exceed the
    catalogue's ``max_value`` for its measure."""
    numerator, denominator = pl.col("numerator"), pl.col("denominator")
    value = rate_expr(numerator, denominator, pl.col("measure_multiplier"))
    either_missing = numerator.is_null() | denominator.is_null()
    return [
        Rule(
            "numerator_over_zero_denominator",
            either_missing | (denominator != 0) | (numerator == 0),
            pl.format(
                "numerator {} over a denominator of 0: no value can be calculated", numerator
            ),
        ),
        Rule(
            "value_above_max_value",
            either_missing
            | (denominator <= 0)
            | pl.col("measure_max_value").is_null()
            | (value <= pl.col("measure_max_value")),
            pl.format(
                "value {} ({} x {} / {}) is above the measure catalogue's max_value of {} for {}",
                value.round(1),
                numerator,
                pl.col("measure_multiplier"),
                denominator,
                pl.col("measure_max_value"),
                pl.col("measure_code"),
            ),
        ),
    ]


def measure_row_rules(*, current_month: date, catalogue_start: date, region: str) -> list[Rule]:
    """The rules, in the order their reasons are reported. ``region`` names the configured
    region in the reason for a row about an organisation outside it."""
    period = pl.col("period")
    return [
        Rule("org_code_missing", ~is_blank("raw_org_code"), pl.lit("org_code is blank")),
        _invisible_rule("org_code"),
        Rule(
            "unknown_organisation",
            pl.col("org_code").is_null() | pl.col("org_known") | pl.col("org_outside_region"),
            pl.format("organisation '{}' is not in the organisation register", pl.col("org_code")),
        ),
        Rule(
            "organisation_outside_region",
            ~pl.col("org_outside_region"),
            pl.format(
                "organisation {} is in ICB {}, outside the region {}",
                pl.col("org_code"),
                pl.col("org_icb_code").fill_null("none"),
                pl.lit(region),
            ),
        ),
        Rule(
            "organisation_not_open_in_period",
            ~pl.col("org_known")
            | period.is_null()
            | (
                (
                    pl.col("org_open_date").is_null()
                    | (pl.col("org_open_date") <= period.dt.month_end())
                )
                & (pl.col("org_close_date").is_null() | (pl.col("org_close_date") >= period))
            ),
            pl.format(
                "organisation {} was not open in {} (open {}, closed {})",
                pl.col("org_code"),
                period.dt.strftime("%Y-%m"),
                # pl.format gives null if any part is null: say "none" instead.
                pl.col("org_open_date").cast(pl.String).fill_null("unknown"),
                pl.col("org_close_date").cast(pl.String).fill_null("none"),
            ),
        ),
        Rule(
            "organisation_outside_submitter",
            ~pl.col("org_known")
            | (pl.col("org_code") == pl.col("submitter_code"))
            | (pl.col("org_icb_code") == pl.col("submitter_code")),
            pl.format(
                "organisation {} (ICB {}) is neither the submitter {} nor in its ICB",
                pl.col("org_code"),
                pl.col("org_icb_code").fill_null("none"),
                pl.col("submitter_code"),
            ),
        ),
        Rule(
            "measure_code_missing", ~is_blank("raw_measure_code"), pl.lit("measure_code is blank")
        ),
        _invisible_rule("measure_code"),
        Rule(
            "unknown_measure",
            pl.col("measure_code").is_null() | pl.col("measure_known"),
            pl.format("measure '{}' is not in the measure catalogue", pl.col("measure_code")),
        ),
        Rule("period_missing", ~is_blank("raw_period"), pl.lit("period is blank")),
        Rule(
            "invalid_period",
            is_blank("raw_period")
            | period.is_not_null()
            | pl.col("period_ambiguity").is_not_null(),
            pl.format(
                "period '{}' is not a recognised month{}",
                _raw("period"),
                pl.col("period_hint").fill_null(""),
            ),
        ),
        Rule(
            "period_ambiguous_date_order",
            pl.col("period_ambiguity").is_null(),
            pl.format(
                "period '{}' {}", _raw("period").str.strip_chars(), pl.col("period_ambiguity")
            ),
        ),
        Rule(
            "period_in_future",
            period.is_null() | (period <= pl.lit(current_month)),
            pl.format("period {} is in the future", period.dt.strftime("%Y-%m")),
        ),
        Rule(
            "period_before_catalogue_start",
            period.is_null() | (period >= pl.lit(catalogue_start)),
            pl.format(
                "period {} is before the catalogue start {}",
                period.dt.strftime("%Y-%m"),
                pl.lit(catalogue_start.strftime("%Y-%m")),
            ),
        ),
        *_count_rules("numerator"),
        *_count_rules("denominator"),
        *_value_rules(),
        Rule(
            "numerator_exceeds_denominator",
            ~pl.col("measure_is_proportion").fill_null(False)
            | pl.col("numerator").is_null()
            | pl.col("denominator").is_null()
            | (pl.col("denominator") == 0)  # reported as numerator_over_zero_denominator
            | (pl.col("numerator") <= pl.col("denominator")),
            pl.format(
                "numerator {} exceeds denominator {} for a proportion",
                pl.col("numerator"),
                pl.col("denominator"),
            ),
        ),
        Rule(
            "duplicate_key_in_file",
            pl.col("org_code").is_null()
            | period.is_null()
            | pl.col("measure_code").is_null()
            | ~pl.struct("org_code", "period", "measure_code").is_duplicated().over("file_index"),
            pl.format(
                "({}, {}, {}) appears more than once in this file",
                pl.col("org_code"),
                period.dt.strftime("%Y-%m"),
                pl.col("measure_code"),
            ),
        ),
    ]


def rule_checks(rules: list[Rule]) -> list[pa.Check]:
    """One named frame-level pandera check per rule: true for every row that keeps it."""
    return [
        pa.Check(lambda data, expr=rule.ok: data.lazyframe.select(expr), name=rule.name)
        for rule in rules
    ]


MEASURE_SCHEMA_COLUMNS = {
    "org_code": pa.Column(pl.String, nullable=True),
    "period": pa.Column(pl.Date, nullable=True),
    "measure_code": pa.Column(pl.String, nullable=True),
    "numerator": pa.Column(pl.Int64, nullable=True),
    "denominator": pa.Column(pl.Int64, nullable=True),
}


def apply_rules(frame: pl.DataFrame, rules: list[Rule]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split measure rows into (good rows, quarantined rows with ``rules`` and ``reasons``)."""
    schema = pa.DataFrameSchema(MEASURE_SCHEMA_COLUMNS, checks=rule_checks(rules), strict=False)
    return split_by_rules(frame, schema, rules)


def split_by_rules(
    frame: pl.DataFrame, schema: pa.DataFrameSchema, rules: list[Rule]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate ``frame`` eagerly against ``schema`` (whose checks are ``rule_checks(rules)``)
    and split it into (good rows, bad rows with the list of ``rules`` they broke and their
    ``reasons`` as one readable string, in rule order). A frame of the wrong column types is
    a programming error and raises."""
    failures = pl.DataFrame(schema={"row": pl.Int64, "rule": pl.String})
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        unexpected = cases.filter(pl.col("schema_context") != "DataFrameSchema")
        if unexpected.height:
            raise TypeError(f"frame has the wrong column types: {unexpected}") from errors
        failures = cases.select(
            pl.col("index").cast(pl.Int64).alias("row"), pl.col("check").alias("rule")
        )

    indexed = frame.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    failed = set(failures["rule"].to_list())
    messages = [
        indexed.join(failures.filter(pl.col("rule") == rule.name), on="row", how="semi").select(
            "row",
            pl.lit(rule.name).alias("rule"),
            pl.lit(order).alias("rule_order"),
            rule.message.cast(pl.String).fill_null("").alias("message"),
        )
        for order, rule in enumerate(rules)
        if rule.name in failed
    ]
    if not messages:
        return frame, frame.clear().with_columns(
            pl.lit(None, pl.List(pl.String)).alias("rules"),
            pl.lit(None, pl.String).alias("reasons"),
        )
    per_row = (
        pl.concat(messages)
        .sort("row", "rule_order")
        .group_by("row", maintain_order=True)
        .agg(
            pl.col("rule").alias("rules"),
            pl.format("{}: {}", "rule", "message").str.join("; ").alias("reasons"),
        )
    )
    bad = indexed.join(per_row, on="row", how="inner").drop("row")
    good = indexed.join(per_row, on="row", how="anti").drop("row")
    return good, bad
