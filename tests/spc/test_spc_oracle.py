"""Reproduce every row of every upstream oracle CSV (NHSRplotthedots v0.2.2 per-point output).

Each file is checked twice: series by series through ``xmr`` and all at once through
``spc_by_series`` (the path ``fct_spc`` uses), on mean, limits, flags, special-cause type and
point type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from pipelines.spc import spc_by_series, xmr
from pipelines.spc.rules import SPECIAL_CAUSE_LABELS, SPECIAL_CAUSE_RULES

ORACLE = Path(__file__).parents[1] / "fixtures" / "spc" / "nhsrplotthedots" / "oracle_synthetic"

# Options each oracle file was produced with (upstream default direction is "increase").
OPTIONS: dict[str, dict[str, Any]] = {
    "r1_rnorm20_screen_outliers_TRUE.csv": {},
    "r2_y15eq10_screen_outliers_TRUE.csv": {},
    "r3_y15eq10_screen_outliers_FALSE.csv": {"screen_outliers": False},
    "r4_rnorm20_facet_by_10.csv": {},
    "r5_rnorm20_rebase_at_row11.csv": {},
    "r6_rnorm20_fix_after_12.csv": {"fix_after_n_points": 12},
    "real_ae_attendances_type1_4hr_performance_RF4_R1H_RRK_RJ1_increase.csv": {},
    "real_qicharts2_cdi_rate_per10000_rebase_at_intervention_decrease.csv": {
        "improvement_direction": "decrease"
    },
    "real_qicharts2_gtt_harms_per1000_patient_days_decrease.csv": {
        "improvement_direction": "decrease"
    },
    "real_qicharts2_hospital_infections_rate_per10000_by_infection_decrease.csv": {
        "improvement_direction": "decrease"
    },
    "real_qicharts2_nhs_accidents_weekly_prop_4h_increase.csv": {
        "improvement_direction": "increase"
    },
}
FILES = sorted(OPTIONS)
RULE_OF_LABEL = dict(zip(SPECIAL_CAUSE_LABELS, SPECIAL_CAUSE_RULES, strict=True))


def _read(name: str) -> pl.DataFrame:
    oracle = pl.read_csv(ORACLE / name, null_values=["NA"], infer_schema_length=None)
    return oracle.with_columns(
        pl.col("f").cast(pl.String),
        pl.col("x").str.to_date(),
        (pl.col("rebase_group") != pl.col("rebase_group").shift(1).over("f"))
        .fill_null(False)
        .alias("rebase"),
    )


def _options(name: str) -> dict[str, Any]:
    return {"improvement_direction": "increase", **OPTIONS[name]}


def _assert_matches(ours: pl.DataFrame, oracle: pl.DataFrame, where: str) -> None:
    assert ours.height == oracle.height, where
    for column, theirs in (("mean", "mean_col"), ("lpl", "lpl"), ("upl", "upl")):
        np.testing.assert_allclose(
            ours[column].to_numpy(),
            oracle[theirs].to_numpy(),
            rtol=1e-10,
            atol=1e-13,
            err_msg=f"{where}: {column}",
        )
    pairs = {
        "segment": "rebase_group",
        "outside_limits": "outside_limits",
        "relative_to_mean": "relative_to_mean",
        "close_to_limits": "close_to_limits",
        "special_cause_flag": "special_cause_flag",
        "special_cause_label": "special_cause_type",
        "point_type": "point_type",
    }
    for column, theirs in pairs.items():
        got = ours[column].to_list()
        want = oracle[theirs].to_list()
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
        assert not bad, f"{where}: {column} differs at (row, ours, oracle) {bad[:5]}"
    want_rules = [RULE_OF_LABEL[label] for label in oracle["special_cause_type"]]
    assert ours["special_cause_type"].to_list() == want_rules, where


def test_every_oracle_file_is_covered() -> None:
    assert sorted(p.name for p in ORACLE.glob("*.csv")) == FILES


@pytest.mark.parametrize("name", FILES)
def test_xmr_reproduces_oracle_rows(name: str) -> None:
    oracle = _read(name)
    for (facet,), rows in oracle.group_by("f", maintain_order=True):
        rebase_at = [i for i, flag in enumerate(rows["rebase"]) if flag]
        ours = xmr(rows["y"], rebase_at=rebase_at, x=rows["x"], **_options(name))
        _assert_matches(ours, rows, f"{name} facet {facet}")


@pytest.mark.parametrize("name", FILES)
def test_spc_by_series_reproduces_oracle_rows(name: str) -> None:
    oracle = _read(name)
    frame = oracle.select("f", "x", pl.col("y").alias("value"), "rebase")
    # Shuffle the input rows: the helper must order each series itself, and hand the rows
    # back in the caller's order.
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=7)
    ours = spc_by_series(shuffled, ["f"], "x", "value", rebase_col="rebase", **_options(name))
    assert ours.select(shuffled.columns).equals(shuffled)
    _assert_matches(ours.sort("f", "x"), oracle.sort("f", "x"), name)
    in_order = spc_by_series(frame, ["f"], "x", "value", rebase_col="rebase", **_options(name))
    _assert_matches(in_order, oracle, f"{name} (ordered input)")


def test_oracles_exercise_every_rule() -> None:
    """The oracle rows include each kind of signal, so the row tests above can fail."""
    labels = set()
    for name in FILES:
        labels |= set(_read(name)["special_cause_type"].to_list())
    assert {"Above UCL", "Below LCL", "7 Point Trend (Decreasing)"} <= labels
    assert {"2 in 3 Above CL", "7 Points Above CL", "7 Points Below CL"} <= labels
