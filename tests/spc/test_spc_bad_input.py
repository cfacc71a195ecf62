"""Bad and awkward input: each has one clear, documented behaviour."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from pipelines.spc import (
    assurance_icon,
    laney_p_prime,
    laney_u_prime,
    p_chart,
    spc_by_series,
    u_chart,
    variation_icon,
    xmr,
)
from pipelines.spc.output import SPC_COLUMNS


def test_empty_series_gives_empty_result_with_all_columns() -> None:
    result = xmr([])
    assert result.height == 0
    assert set(SPC_COLUMNS) <= set(result.columns)
    assert variation_icon(result) is None
    assert assurance_icon(result, target=1.0, improvement_direction="increase") is None


def test_all_null_series_has_no_limits_and_null_flags() -> None:
    result = xmr([None, float("nan"), None])
    assert result.height == 3
    for column in ("mean", "lpl", "upl", "special_cause_flag", "point_type", "outside_limits"):
        assert result[column].null_count() == 3, column
    assert result["trial_limits"].all()
    assert result["n_baseline"].to_list() == [0, 0, 0]
    assert variation_icon(result) is None


def test_missing_points_are_kept_with_null_flags_and_excluded_from_limits() -> None:
    values = [1.0, 2.0, None, 1.5, float("nan"), 2.5, 1.0]
    result = xmr(values)
    present = [v for v in values if v is not None and not math.isnan(v)]
    assert result["mean"][0] == pytest.approx(np.mean(present))
    # Moving ranges only between neighbours that both have a value (as R's diff gives NA).
    assert result["mean_moving_range"][0] == pytest.approx(np.mean([1.0, 1.5]))
    missing = [2, 4]
    for column in ("special_cause_flag", "point_type", "relative_to_mean", "close_to_limits"):
        assert [result[column][i] for i in missing] == [None, None], column
    assert result["lpl"].null_count() == 0
    assert result["n_baseline"][0] == 5


def test_a_missing_point_breaks_a_shift_run() -> None:
    before, after = [1.0, -1.0] * 7, [-1.0, 1.0] * 7
    run = [0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5]
    flagged = xmr(before + run + after)
    broken = xmr(before + run[:3] + [None] + run[4:] + after)
    assert flagged["special_cause_type"].to_list() == [None] * 14 + ["shift"] * 7 + [None] * 14
    assert broken["special_cause_flag"].to_list() == [False] * 17 + [None] + [False] * 17


def test_single_point_has_no_limits() -> None:
    result = xmr([3.0])
    assert result["mean"][0] == 3.0
    assert result["lpl"][0] is None and result["upl"][0] is None
    assert result["special_cause_flag"][0] is False
    assert result["trial_limits"][0] is True


@pytest.mark.parametrize("bad", [[1.0, float("inf")], ["a", "b"], [[1.0, 2.0]]])
def test_non_numeric_or_infinite_values_are_refused(bad: list) -> None:
    with pytest.raises(ValueError, match="values"):
        xmr(bad)


def test_unknown_improvement_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="improvement_direction"):
        xmr([1.0, 2.0], improvement_direction="up")


@pytest.mark.parametrize("n", [11, 0, -3])
def test_fix_after_below_12_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="fix_after_n_points"):
        xmr(list(range(20)), fix_after_n_points=n)


@pytest.mark.parametrize("position", [20, -1, 2.5])
def test_rebase_outside_the_series_is_refused(position: float) -> None:
    with pytest.raises(ValueError, match="rebase_at"):
        xmr(list(range(20)), rebase_at=[position])


@pytest.mark.parametrize("sigma", [0, -1, float("inf"), float("nan")])
def test_bad_sigma_is_refused(sigma: float) -> None:
    with pytest.raises(ValueError, match="sigma"):
        xmr([1.0, 2.0, 3.0], sigma=sigma)


@pytest.mark.parametrize("chart", [p_chart, u_chart, laney_p_prime, laney_u_prime])
def test_zero_or_missing_denominator_is_a_missing_point(chart) -> None:
    numerators = [5, 6, 0, 7, 5, None, 6, 5]
    denominators = [100, 110, 0, 120, 95, 100, None, 105]
    result = chart(numerators, denominators)
    for i in (2, 5, 6):
        assert result["y"][i] is None
        assert result["lpl"][i] is None and result["upl"][i] is None
        assert result["special_cause_flag"][i] is None
        assert result["point_type"][i] is None
    kept = [0, 1, 3, 4, 7]
    expected_centre = sum(numerators[i] for i in kept) / sum(denominators[i] for i in kept)
    assert result["mean"][0] == pytest.approx(expected_centre)
    assert result["n_baseline"][0] == 5
    assert result["upl"].null_count() == 3


@pytest.mark.parametrize("chart", [p_chart, u_chart, laney_p_prime, laney_u_prime])
def test_negative_counts_are_refused(chart) -> None:
    with pytest.raises(ValueError, match="negative"):
        chart([1, -1, 2], [10, 10, 10])
    with pytest.raises(ValueError, match="negative"):
        chart([1, 1, 2], [10, -10, 10])


def test_proportion_above_one_is_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        laney_p_prime([1, 11, 2], [10, 10, 10])


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        u_chart([1, 2, 3], [10, 10])


def test_all_zero_numerators_give_limits_on_zero() -> None:
    result = laney_p_prime([0] * 15, [100] * 15)
    assert result["mean"].to_list() == [0.0] * 15
    assert result["upl"].to_list() == [0.0] * 15
    assert not result["special_cause_flag"].any()


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"s": ["a", "a", "b", "b"], "t": [1, 2, 1, 2], "v": [1.0, 2.0, 3.0, 4.0]})


def test_spc_by_series_refuses_duplicate_order_within_a_series() -> None:
    frame = _frame().with_columns(pl.Series("t", [1, 1, 1, 2]))
    with pytest.raises(ValueError, match="duplicate"):
        spc_by_series(frame, ["s"], "t", "v")


def test_spc_by_series_refuses_null_order() -> None:
    frame = _frame().with_columns(pl.Series("t", [1, None, 1, 2]))
    with pytest.raises(ValueError, match="null"):
        spc_by_series(frame, ["s"], "t", "v")


def test_spc_by_series_refuses_missing_and_clashing_columns() -> None:
    with pytest.raises(ValueError, match="no column"):
        spc_by_series(_frame(), ["s"], "t", "nope")
    with pytest.raises(ValueError, match="already has"):
        spc_by_series(_frame().with_columns(pl.lit(0.0).alias("mean")), ["s"], "t", "v")
    with pytest.raises(ValueError, match="numerator_col"):
        spc_by_series(_frame(), ["s"], "t", chart="p_prime")
    with pytest.raises(ValueError, match="chart"):
        spc_by_series(_frame(), ["s"], "t", "v", chart="c")  # type: ignore[arg-type]


def test_spc_by_series_refuses_bad_direction_values() -> None:
    frame = _frame().with_columns(pl.Series("dir", ["increase", "increase", "up", None]))
    with pytest.raises(ValueError, match="'increase', 'decrease' or 'neutral'"):
        spc_by_series(frame, ["s"], "t", "v", direction_col="dir")


def test_spc_by_series_refuses_non_numeric_values() -> None:
    frame = _frame().with_columns(pl.col("v").cast(pl.String))
    with pytest.raises(ValueError, match="numeric"):
        spc_by_series(frame, ["s"], "t", "v")


def test_spc_by_series_on_empty_frame_returns_empty_with_columns() -> None:
    result = spc_by_series(_frame().clear(), ["s"], "t", "v")
    assert result.height == 0
    assert {*SPC_COLUMNS, "variation_icon", "assurance_type"} <= set(result.columns)
