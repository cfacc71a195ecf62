"""Behaviour the reference vectors do not pin down: rebasing, trial limits, directions, icons,
and that the all-series-at-once path gives exactly what one series at a time gives."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.spc import (
    LIMIT,
    NEAR_FRACTION,
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

NOISE = [0.3, -0.4, 0.2, -0.1, 0.5, -0.3, 0.1, -0.2, 0.4, -0.5, 0.2, -0.1, 0.3]


def _trend_across(rebase_at: list[int]) -> pl.DataFrame:
    # 13 noise points, 8 rising points (4 each side of position 17), 13 noise points.
    rising = [0.05 * i for i in range(1, 9)]
    return xmr(NOISE + rising + NOISE, rebase_at=rebase_at)


def test_runs_never_cross_a_rebase() -> None:
    whole = _trend_across([])
    trend_at = [i for i, kind in enumerate(whole["special_cause_type"]) if kind == "trend"]
    assert trend_at == list(range(13, 21))
    rebased = _trend_across([17])
    assert rebased["segment"].to_list() == [0] * 17 + [1] * 17
    assert "trend" not in rebased["special_cause_type"].to_list()


def test_each_rebase_segment_has_its_own_limits() -> None:
    values = NOISE + [v + 10 for v in NOISE]
    result = xmr(values, rebase_at=[13])
    first, second = xmr(NOISE), xmr([v + 10 for v in NOISE])
    for column in ("mean", "lpl", "upl", "near_lpl", "near_upl"):
        assert result[column].head(13).to_list() == first[column].to_list()
        np.testing.assert_allclose(result[column].tail(13), second[column], rtol=1e-12)
    assert not result["special_cause_flag"].any()


def test_limit_and_near_limit_constants() -> None:
    result = xmr(NOISE)
    mean, amr = result["mean"][0], result["mean_moving_range"][0]
    assert mean == pytest.approx(np.mean(NOISE))
    assert amr == pytest.approx(np.mean(np.abs(np.diff(NOISE))))
    assert result["upl"][0] == pytest.approx(mean + 2.66 * amr)
    assert result["near_lpl"][0] == pytest.approx(mean - 2 * (2.66 / 3) * amr)
    two_sigma = xmr(NOISE, sigma=2)
    assert two_sigma["upl"][0] == pytest.approx(mean + LIMIT * 2 / 3 * amr)
    assert two_sigma["near_upl"][0] == pytest.approx(mean + NEAR_FRACTION * LIMIT * 2 / 3 * amr)


def test_screening_drops_large_moving_ranges_only_when_asked() -> None:
    values = [*NOISE, 9.0, *NOISE]
    mrs = np.abs(np.diff(values))
    screened = xmr(values)["mean_moving_range"][0]
    unscreened = xmr(values, screen_outliers=False)["mean_moving_range"][0]
    assert unscreened == pytest.approx(mrs.mean())
    assert screened == pytest.approx(mrs[mrs < 3.267 * mrs.mean()].mean())
    assert screened < unscreened


@pytest.mark.parametrize(("n", "trial"), [(11, True), (12, False)])
def test_trial_limits_below_12_points(n: int, trial: bool) -> None:
    result = xmr((NOISE * 2)[:n])
    assert result["trial_limits"].to_list() == [trial] * n
    assert result["n_baseline"].to_list() == [n] * n


def test_trial_limits_are_per_segment_and_count_the_fixed_baseline() -> None:
    values = NOISE * 3
    result = xmr(values, rebase_at=[30])
    assert result["trial_limits"].to_list() == [False] * 30 + [True] * 9
    fixed = xmr(values, fix_after_n_points=12)
    assert fixed["n_baseline"].unique().to_list() == [12]
    assert not fixed["trial_limits"].any()  # 12 points: upstream's threshold, not trial
    nulled = xmr([None, *values[1:]], fix_after_n_points=12)
    assert nulled["n_baseline"].unique().to_list() == [11]  # a missing point is not a point
    assert nulled["trial_limits"].all()


def test_fixed_baseline_uses_only_the_first_points() -> None:
    values = [*NOISE, *[v + 3 for v in NOISE]]
    fixed = xmr(values, fix_after_n_points=13)
    base = xmr(NOISE)
    assert fixed["mean"].unique().to_list() == base["mean"].unique().to_list()
    assert fixed["upl"].unique().to_list() == base["upl"].unique().to_list()
    assert fixed["special_cause_flag"].tail(13).all()


def test_flat_baseline_collapses_limits_onto_the_mean() -> None:
    """Deliberate deviation: upstream gives NaN limits when every moving range is 0."""
    result = xmr([0.0] * 15 + [1.0], fix_after_n_points=15)
    assert result["lpl"].to_list() == [0.0] * 16 and result["upl"].to_list() == [0.0] * 16
    assert result["special_cause_type"].to_list() == [None] * 15 + ["outside"]
    still_flat = xmr([2.0] * 15)
    assert still_flat["upl"].to_list() == [2.0] * 15
    assert not still_flat["special_cause_flag"].any()


def test_direction_turns_signals_into_improvement_concern_or_neutral() -> None:
    values = [*NOISE, 5.0, *NOISE]
    kinds = {
        direction: xmr(values, improvement_direction=direction)["point_type"][13]
        for direction in ("increase", "decrease", "neutral")
    }
    assert kinds == {
        "increase": "special_cause_improvement",
        "decrease": "special_cause_concern",
        "neutral": "special_cause_neutral_high",
    }
    low = xmr([*NOISE, -5.0, *NOISE])["point_type"][13]
    assert low == "special_cause_neutral_low"


@pytest.mark.parametrize(
    ("last", "direction", "icon"),
    [
        (5.0, "increase", "improvement_high"),
        (5.0, "decrease", "concern_high"),
        (-5.0, "increase", "concern_low"),
        (-5.0, "decrease", "improvement_low"),
        (5.0, "neutral", "neutral_high"),
        (-5.0, "neutral", "neutral_low"),
        (0.0, "increase", "common_cause"),
    ],
)
def test_variation_icon_reads_the_last_point(last: float, direction: str, icon: str) -> None:
    result = xmr([*NOISE, 5.0, *NOISE, last], improvement_direction=direction)
    assert variation_icon(result) == icon
    assert variation_icon(result.head(14)) == variation_icon(result.head(14), direction)


def test_variation_icon_skips_a_missing_last_point() -> None:
    result = xmr([*NOISE, 5.0, None], improvement_direction="increase")
    assert variation_icon(result) == "improvement_high"


@pytest.mark.parametrize(
    ("target", "direction", "expected"),
    [
        (10.0, "increase", "consistent_fail"),
        (10.0, "decrease", "consistent_pass"),
        (-10.0, "increase", "consistent_pass"),
        (-10.0, "decrease", "consistent_fail"),
        (0.0, "increase", "inconsistent"),
        (0.0, "neutral", None),
        (None, "increase", None),
    ],
)
def test_assurance_icon(target: float | None, direction: str, expected: str | None) -> None:
    result = xmr(NOISE, improvement_direction=direction, target=target)
    assert assurance_icon(result) == expected
    assert assurance_icon(xmr(NOISE), target, direction) == expected


def test_assurance_uses_the_latest_segment_limits() -> None:
    values = NOISE + [v + 10 for v in NOISE]
    result = xmr(values, rebase_at=[13], improvement_direction="increase", target=5.0)
    assert assurance_icon(result) == "consistent_pass"
    assert assurance_icon(result.head(13)) == "consistent_fail"


def _random_long_frame(seed: int) -> pl.DataFrame:
    """Many short and long series with gaps, rebases, mixed directions and targets."""
    rng = np.random.default_rng(seed)
    frames = []
    directions = ["increase", "decrease", "neutral"]
    for s in range(60):
        n = int(rng.integers(1, 40))
        level = rng.normal(0, 1, n) + np.where(rng.random(n) < 0.1, 6.0, 0.0)
        level += np.where(np.arange(n) > n // 2, rng.normal(0, 2), 0.0)
        if s % 5 == 0:
            level = np.cumsum(np.abs(level))  # long trends
        values = np.where(rng.random(n) < 0.05, np.nan, level)
        rebase = np.zeros(n, dtype=bool)
        if n > 20 and s % 3 == 0:
            rebase[int(rng.integers(1, n))] = True
        no_exposure = rng.random(n) < 0.05  # zero denominators: missing points
        num = np.where(no_exposure, 0.0, rng.poisson(20, n))
        den = np.where(no_exposure, 0.0, num + rng.poisson(200 * (1 + s % 4), n))
        frames.append(
            pl.DataFrame(
                {
                    "org": f"org{s % 7}",
                    "measure": s // 7,
                    "period": np.arange(n) * 7 + 3,
                    "value": values,
                    "num": num,
                    "den": den,
                    "rebase": rebase,
                    "direction": directions[s % 3],
                    "target": float(rng.normal(0, 2)),
                }
            )
        )
    frame = pl.concat(frames)
    return frame.with_columns(pl.col("value").fill_nan(None)).sample(
        fraction=1.0, shuffle=True, seed=seed
    )


CHARTS = {
    "xmr": lambda rows, **kw: xmr(rows["value"], **kw),
    "p": lambda rows, **kw: p_chart(rows["num"], rows["den"], **kw),
    "u": lambda rows, **kw: u_chart(rows["num"], rows["den"], **kw),
    "p_prime": lambda rows, **kw: laney_p_prime(rows["num"], rows["den"], **kw),
    "u_prime": lambda rows, **kw: laney_u_prime(rows["num"], rows["den"], **kw),
}


@pytest.mark.parametrize("chart", sorted(CHARTS))
@pytest.mark.parametrize("seed", [1, 2])
def test_spc_by_series_equals_one_series_at_a_time(chart: str, seed: int) -> None:
    frame = _random_long_frame(seed)
    inputs = (
        {"value_col": "value"}
        if chart == "xmr"
        else {"numerator_col": "num", "denominator_col": "den"}
    )
    together = spc_by_series(
        frame,
        ["org", "measure"],
        "period",
        chart=chart,
        direction_col="direction",
        target_col="target",
        rebase_col="rebase",
        **inputs,
    )
    assert together.select(frame.columns).equals(frame)
    checked = 0
    for _, rows in together.sort("org", "measure", "period").group_by(
        ["org", "measure"], maintain_order=True
    ):
        alone = CHARTS[chart](
            rows,
            improvement_direction=rows["direction"][-1],
            target=rows["target"][-1],
            rebase_at=[i for i, flag in enumerate(rows["rebase"]) if flag and i > 0],
        )
        for column in SPC_COLUMNS:
            assert rows[column].equals(alone[column], check_names=False), column
        assert rows["variation_icon"].unique().to_list() == [variation_icon(alone)]
        assert rows["assurance_type"].unique().to_list() == [assurance_icon(alone)]
        checked += 1
    assert checked == 60
    assert together["special_cause_flag"].sum() > 0
    assert together["y"].null_count() > 0


def test_spc_by_series_without_series_columns_is_one_series() -> None:
    frame = pl.DataFrame({"t": list(range(len(NOISE))), "v": NOISE})
    together = spc_by_series(frame, [], "t", "v", improvement_direction="increase", target=5.0)
    alone = xmr(NOISE, improvement_direction="increase", target=5.0)
    for column in SPC_COLUMNS:
        assert together[column].equals(alone[column]), column
    assert together["assurance_type"].unique().to_list() == ["consistent_fail"]


def test_spc_by_series_multiplier_scales_rates() -> None:
    frame = pl.DataFrame({"t": [1, 2, 3, 4], "num": [1, 2, 3, 2], "den": [1000, 900, 1100, 950]})
    plain = spc_by_series(frame, [], "t", numerator_col="num", denominator_col="den", chart="u")
    per_k = spc_by_series(
        frame, [], "t", numerator_col="num", denominator_col="den", chart="u", multiplier=1000
    )
    np.testing.assert_allclose(per_k["y"], plain["y"] * 1000)
    np.testing.assert_allclose(per_k["upl"], plain["upl"] * 1000)


def test_spc_by_series_is_vectorised() -> None:
    """10k series x 24 months in well under a second here; a per-series loop takes minutes."""
    import time

    rng = np.random.default_rng(0)
    n_series, n_points = 10_000, 24
    frame = pl.DataFrame(
        {
            "series": np.repeat(np.arange(n_series), n_points),
            "month": np.tile(np.arange(n_points), n_series),
            "value": rng.normal(10, 2, n_series * n_points),
        }
    )
    start = time.perf_counter()
    result = spc_by_series(frame, ["series"], "month", "value", improvement_direction="increase")
    assert time.perf_counter() - start < 10
    assert result.height == n_series * n_points
    assert result["variation_icon"].null_count() == 0


def test_spc_by_series_survives_series_key_hash_collisions(monkeypatch) -> None:
    """Rows are grouped by a hash of the series key; a collision must fall back to a sort."""
    from pipelines.spc import series as series_module

    frame = _random_long_frame(3)
    expected = spc_by_series(frame, ["org", "measure"], "period", "value")
    monkeypatch.setattr(
        series_module, "_series_hash", lambda f, cols: pl.Series("h", [0] * f.height)
    )
    collided = spc_by_series(frame, ["org", "measure"], "period", "value")
    assert collided.equals(expected)
