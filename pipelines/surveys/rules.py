"""Row rules for survey responses, declared once as a pandera (polars) schema.

Same pattern as the measure-return rules (:mod:`pipelines.ingest.rules`): every rule is a
named frame-level check whose expression is true for a good response, one eager validation
names every rule a response breaks, and a response breaking any rule goes to quarantine
whole (all its answers) with every reason.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipelines.ingest.normalise import is_blank
from pipelines.ingest.rules import Rule, rule_checks, split_by_rules
from pipelines.surveys.normalise import safe_organisation_expr


def survey_row_rules() -> list[Rule]:
    """The rules, in the order their reasons are reported."""
    submitted = pl.col("submitted_at")
    org = pl.col("org_code")
    return [
        Rule(
            "response_id_missing",
            ~is_blank("raw_response_id"),
            pl.lit("the response has no response id"),
        ),
        Rule(
            "duplicate_response_id",
            pl.col("response_id").is_null() | ~pl.col("response_id").is_duplicated(),
            pl.lit("this response id appears more than once in the file"),
        ),
        Rule(
            "test_response",
            ~pl.col("is_test"),
            pl.format("marked as a preview, test or spam response ('{}')", "raw_test_flag"),
        ),
        Rule(
            "response_time_missing",
            ~is_blank("raw_submitted_at"),
            pl.lit("the response has no completion time"),
        ),
        Rule(
            "invalid_response_time",
            is_blank("raw_submitted_at") | submitted.is_not_null(),
            pl.format("completion time '{}' is not a recognised date and time", "raw_submitted_at"),
        ),
        Rule(
            "outside_wave_window",
            submitted.is_null()
            | submitted.dt.date().is_between(pl.col("wave_opens_on"), pl.col("wave_closes_on")),
            pl.format(
                "completed {}, outside wave {} ({} to {})",
                submitted.dt.strftime("%Y-%m-%d %H:%M"),
                "wave_id",
                "wave_opens_on",
                "wave_closes_on",
            ),
        ),
        Rule(
            "organisation_missing",
            ~pl.col("organisation_from_column") | ~is_blank("raw_organisation"),
            pl.lit("the organisation answer is blank"),
        ),
        Rule(
            "unknown_organisation",
            is_blank("raw_organisation") | pl.col("org_known"),
            pl.format(
                "organisation '{}' is not in the organisation register (by code or name)",
                safe_organisation_expr("raw_organisation"),
            ),
        ),
        Rule(
            "organisation_outside_submitter",
            ~pl.col("org_known")
            | (org == pl.col("submitter_code"))
            | (pl.col("org_icb_code") == pl.col("submitter_code")),
            pl.format(
                "organisation {} (ICB {}) is neither the submitter {} nor in its ICB",
                org,
                "org_icb_code",
                "submitter_code",
            ),
        ),
        Rule(
            "unknown_answer_label",
            pl.col("unknown_labels").is_null(),
            pl.format("answers not on the instrument's scale: {}", "unknown_labels"),
        ),
    ]


def _schema(rules: list[Rule]) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        columns={
            "response_id": pa.Column(pl.String, nullable=True),
            "submitted_at": pa.Column(pl.Datetime("us"), nullable=True),
            "org_code": pa.Column(pl.String, nullable=True),
            "is_test": pa.Column(pl.Boolean),
            "org_known": pa.Column(pl.Boolean),
            "organisation_from_column": pa.Column(pl.Boolean),
            "unknown_labels": pa.Column(pl.String, nullable=True),
        },
        checks=rule_checks(rules),
        strict=False,
    )


def apply_survey_rules(frame: pl.DataFrame, rules: list[Rule]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``frame`` into (good responses, quarantined responses with ``rules`` and
    ``reasons``); a frame of the wrong shape is a programming error and raises."""
    return split_by_rules(frame, _schema(rules), rules)
