"""A caller's baseline mask (``spc_by_series(baseline_col=...)``): the points each segment's
limits rest on, falling back to ``fix_after_n_points`` or all points where it marks none."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.spc import spc_by_series

FIXTURES = Path(__file__).parent.parent / "fixtures" / "spc" / "nhsrplotthedots"


@pytest.fixture(scope="module")
def rnorm() -> pl.DataFrame:
    return pl.read_csv(FIXTURES / "input_rnorm20_seed123.csv").select(
        pl.int_range(pl.len()).alias("t"), pl.col("y").alias("v")
    )


def _oracle(name: str) -> pl.DataFrame:
    return pl.read_csv(FIXTURES / "oracle_synthetic" / name)


def test_a_mask_on_the_first_12_points_is_fix_after_12(rnorm):
    frame = rnorm.with_columns(base=pl.col("t") < 12)
    ours = spc_by_series(frame, [], "t", "v", baseline_col="base")
    oracle = _oracle("r6_rnorm20_fix_after_12.csv")
    for column, theirs in (("mean", "mean_col"), ("lpl", "lpl"), ("upl", "upl")):
        assert ours[column].to_list() == pytest.approx(oracle[theirs].to_list(), abs=1e-9)
    assert ours["point_type"].to_list() == oracle["point_type"].to_list()
    assert ours["in_baseline"].to_list() == [True] * 12 + [False] * 8
    assert ours["limits_basis"].unique().to_list() == ["given_points"]
    assert ours["n_baseline"].unique().to_list() == [12]
    same = spc_by_series(rnorm, [], "t", "v", fix_after_n_points=12)
    assert same["upl"].equals(ours["upl"])
    assert same["limits_basis"].unique().to_list() == ["first_n_points"]


def test_a_segment_the_mask_misses_falls_back(rnorm):
    # The mask marks segment 0 only; segment 1 (rebase at row 11) uses all its points (r5).
    frame = rnorm.with_columns(base=pl.col("t") < 10, rebase=pl.col("t") == 10)
    ours = spc_by_series(frame, [], "t", "v", rebase_col="rebase", baseline_col="base")
    oracle = _oracle("r5_rnorm20_rebase_at_row11.csv")
    assert ours["upl"].to_list() == pytest.approx(oracle["upl"].to_list(), abs=1e-9)
    assert ours["limits_basis"].to_list() == ["given_points"] * 10 + ["all_points"] * 10
    assert ours["in_baseline"].all()
    # ... or, given fix_after_n_points, on its first n points.
    fixed = spc_by_series(
        frame, [], "t", "v", rebase_col="rebase", baseline_col="base", fix_after_n_points=12
    )
    assert fixed["limits_basis"].to_list() == ["given_points"] * 10 + ["first_n_points"] * 10


def test_a_mask_on_missing_points_only_counts_as_none(rnorm):
    frame = rnorm.with_columns(
        v=pl.when(pl.col("t") < 3).then(None).otherwise(pl.col("v")), base=pl.col("t") < 3
    )
    ours = spc_by_series(frame, [], "t", "v", baseline_col="base")
    assert ours["limits_basis"].unique().to_list() == ["all_points"]
    assert ours["in_baseline"].to_list() == [False] * 3 + [True] * 17
    assert ours["n_baseline"].unique().to_list() == [17]


def test_laney_charts_take_the_mask_too():
    frame = pl.DataFrame(
        {
            "t": list(range(16)),
            "num": [50, 52, 48, 51, 49, 50, 53, 47, 50, 51, 70, 72, 71, 69, 73, 70],
            "den": [100] * 16,
            "base": [True] * 8 + [False] * 8,
        }
    )
    ours = spc_by_series(
        frame,
        [],
        "t",
        numerator_col="num",
        denominator_col="den",
        chart="p_prime",
        baseline_col="base",
    )
    assert ours["mean"].unique().to_list() == [pytest.approx(50 / 100)]
    assert ours["point_type"].to_list()[-1] == "special_cause_neutral_high"
