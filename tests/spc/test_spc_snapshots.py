"""Limits printed in NHSRplotthedots' snapshot tests (expected_from_snapshots.json).

Snapshot values carry printed precision only (7 significant digits from glimpse, 3 from
summary tibbles), so each is compared to within half a unit of its last printed digit.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.spc import spc_by_series, xmr

FIXTURES = Path(__file__).parents[1] / "fixtures" / "spc" / "nhsrplotthedots"
SNAPSHOTS = {
    case["id"]: case
    for case in json.loads((FIXTURES / "expected_from_snapshots.json").read_text())["cases"]
}
INPUT = pl.read_csv(FIXTURES / "input_rnorm20_seed123.csv")


def _half_ulp_printed(value: float, significant: int | None = None) -> float:
    """Half a unit of the last digit of ``value`` as printed (or at ``significant`` digits)."""
    if significant is not None:
        exponent = Decimal(repr(value)).adjusted() - significant + 1
    else:
        exponent = Decimal(repr(value)).as_tuple().exponent
    return 0.5 * 10.0**exponent


def _close(got: float, want: float, significant: int | None = None) -> bool:
    return abs(got - want) <= _half_ulp_printed(want, significant) * (1 + 1e-9)


def _first(result: pl.DataFrame, column: str) -> float:
    values = result[column].unique().to_list()
    assert len(values) == 1, f"{column} should be constant, got {values}"
    return values[0]


@pytest.mark.parametrize("case_id", ["r1", "r2", "r3"])
def test_glimpse_limits(case_id: str) -> None:
    case = SNAPSHOTS[case_id]
    expected: dict[str, Any] = case["expected"]
    result = xmr(INPUT[case["input_column"]], **case["options"])
    for column, key in (("mean", "mean_col"), ("lpl", "lpl"), ("upl", "upl")):
        got, want = _first(result, column), expected[key]
        assert _close(got, want, significant=7), f"{case_id} {column}: {got} vs {want}"
    for key, want in expected.items():
        if key.startswith(("outside_limits_first", "relative_to_mean_first", "close_to_")):
            column, n = key.rsplit("_first", 1)
            assert result[column].head(int(n)).to_list() == want, key
    if "rebase_group_all" in expected:
        assert set(result["segment"]) == {expected["rebase_group_all"]}


def test_limits_differ_between_r1_r2_r3_and_screening_narrows() -> None:
    """The snapshot assertions: every option set changes the limits; screening narrows them."""
    r1 = xmr(INPUT["y"])
    r2 = xmr(INPUT["y_outlier15"], screen_outliers=True)
    r3 = xmr(INPUT["y_outlier15"], screen_outliers=False)
    lpls = {_first(r, "lpl") for r in (r1, r2, r3)}
    upls = {_first(r, "upl") for r in (r1, r2, r3)}
    assert len(lpls) == 3 and len(upls) == 3
    width = [_first(r, "upl") - _first(r, "lpl") for r in (r2, r3)]
    assert width[1] > width[0]


def _summary(result: pl.DataFrame) -> dict[str, Any]:
    counts = result["point_type"].value_counts()
    count_of = dict(zip(counts["point_type"], counts["count"], strict=True))
    return {
        "mean_col": _first(result, "mean"),
        "lpl": _first(result, "lpl"),
        "upl": _first(result, "upl"),
        "n": result.height,
        "common_cause": count_of.get("common_cause", 0),
        "special_cause_improvement": count_of.get("special_cause_improvement", 0),
    }


def _assert_summary(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("mean_col", "lpl", "upl"):
        assert _close(got[key], want[key], significant=3), f"{key}: {got[key]} vs {want[key]}"
    for key in ("n", "common_cause", "special_cause_improvement"):
        assert got[key] == want[key], key


def test_summary_no_facet_with_target() -> None:
    case = SNAPSHOTS["summary_s1"]
    result = xmr(INPUT["y"], **case["options"])
    _assert_summary(_summary(result), case["expected"])


def test_summary_rebase_before_first_point_is_one_group() -> None:
    """A rebase date before the first point (position 0 here) leaves a single group 0."""
    case = SNAPSHOTS["summary_s2"]
    result = xmr(INPUT["y"], rebase_at=[0])
    assert set(result["segment"]) == {case["expected"]["rebase_group"]}
    _assert_summary(_summary(result), case["expected"])


def test_summary_facets() -> None:
    for want in SNAPSHOTS["summary_s3"]["expected"]:
        rows = INPUT.filter(pl.col("facet") == want["f"])
        _assert_summary(_summary(xmr(rows["y"])), want)


def test_fix_after_12_changes_limits() -> None:
    default = xmr(INPUT["y"])
    fixed = xmr(INPUT["y"], fix_after_n_points=12)
    expected = SNAPSHOTS["fix_after_12"]["expected"]
    assert (_first(fixed, "lpl") != _first(default, "lpl")) == expected["lpl_differs_from_default"]
    assert (_first(fixed, "upl") != _first(default, "upl")) == expected["upl_differs_from_default"]


def test_rebase_group_column() -> None:
    result = xmr(INPUT["y"], rebase_at=[10])
    assert result["segment"].to_list() == SNAPSHOTS["rebase_group"]["expected"]["rebase_group"]


@pytest.mark.parametrize(("n", "warned"), [(11, True), (12, False)])
def test_short_group_warning_threshold(n: int, warned: bool) -> None:
    """Upstream warns below 12 points; ``trial_limits`` reproduces it by default."""
    result = xmr(INPUT["y"].head(n))
    assert result["trial_limits"].to_list() == [warned] * n


def test_rebase_column_per_facet() -> None:
    """Rebase dates per facet start a new segment in that facet only, at those dates."""
    case = SNAPSHOTS["rebase_column"]
    dates = pl.date_range(pl.date(2020, 1, 2), pl.date(2020, 1, 11), eager=True)
    frame = pl.DataFrame(
        {"f": ["a"] * 10 + ["b"] * 10, "x": pl.concat([dates, dates]), "value": [1.0] * 20}
    )
    scenarios = {
        "rebase": {"a": case["args"]["rebase"], "b": case["args"]["rebase"]},
        "per-facet list a=2020-01-03,b=2020-01-08": {"a": ["2020-01-03"], "b": ["2020-01-08"]},
    }
    for key, rebase in scenarios.items():
        flags = [str(x) in rebase[f] for f, x in zip(frame["f"], frame["x"], strict=True)]
        result = spc_by_series(
            frame.with_columns(pl.Series("rebase", flags)), ["f"], "x", "value", rebase_col="rebase"
        )
        want_flags = case["expected"][key]
        want_segments = [
            sum(want_flags[start : i + 1]) for start in (0, 10) for i in range(start, start + 10)
        ]
        assert result["segment"].to_list() == want_segments, key
