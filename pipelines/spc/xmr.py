"""XmR (individuals) chart limits and the per-point XmR result, as NHSRplotthedots computes them.

Per segment (a series between rebases): the mean of the baseline points (the first
``fix_after_n_points``, default all), moving ranges |y[i] - y[i-1]| between consecutive baseline
points, moving ranges >= 3.267 x their mean screened out before the mean moving range (mR-bar) is
recomputed, limits at mean +/- 2.66 mR-bar and the near-limit band at two thirds of that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from pipelines.spc.constants import (
    DEFAULT_SIGMA,
    MR_SCREEN,
    NEAR_FRACTION,
    TRIAL_THRESHOLD,
    direction_sign,
    validate_fix_after,
    validate_sigma,
    xmr_limit,
)
from pipelines.spc.inputs import as_float_array, rebase_flags
from pipelines.spc.output import chart_frame
from pipelines.spc.segments import BoolArray, FloatArray, IntArray, Segments, baseline_points


@dataclass(frozen=True)
class XmrLimits:
    """Per-segment XmR baseline: mean, mean moving range and points the limits rest on."""

    mean: FloatArray
    mean_moving_range: FloatArray
    n_baseline: IntArray
    in_baseline: BoolArray
    basis: IntArray


def moving_ranges(y: FloatArray, segments: Segments, baseline: npt.NDArray[np.bool_]) -> FloatArray:
    """|y[i] - y[i-1]| where both points are baseline points of the same segment, else NaN.

    A moving range next to a missing point is missing (as R's ``diff`` gives NA), so a gap
    never produces one giant range.
    """
    mr = np.full(len(y), np.nan)
    if len(y) > 1:
        ok = segments.same_as_previous()[1:] & baseline[1:] & baseline[:-1]
        with np.errstate(invalid="ignore"):
            step = np.abs(y[1:] - y[:-1])
        mr[1:] = np.where(ok, step, np.nan)
    return mr


def xmr_baseline(
    y: FloatArray,
    segments: Segments,
    *,
    fix_after_n_points: int | None = None,
    screen_outliers: bool = True,
    baseline_mask: BoolArray | None = None,
) -> XmrLimits:
    """Compute each segment's mean and (screened) mean moving range from its baseline points.

    Deliberate deviation from upstream: when every baseline moving range is 0 (a flat series,
    e.g. a count that is always 0) upstream's screen ``mr < 3.267 x 0`` drops them all and the
    limits become NaN; here screening is skipped for that segment so the limits collapse onto
    the mean and any later movement is a signal.

    ``baseline_mask`` (optional, per point) names the points a segment's limits rest on;
    a segment where it marks no present point falls back to ``fix_after_n_points``/all
    points (:func:`pipelines.spc.segments.baseline_points`).
    """
    fix_after = validate_fix_after(fix_after_n_points)
    present = np.isfinite(y)
    points = baseline_points(present, segments, fix_after, baseline_mask)
    baseline = points.mask
    mean = segments.mean(y, baseline)
    mr = moving_ranges(y, segments, baseline)
    has_mr = np.isfinite(mr)
    amr = segments.mean(mr, has_mr)
    if screen_outliers:
        amr_point = amr[segments.ids]
        with np.errstate(invalid="ignore"):
            keep = has_mr & ((mr < MR_SCREEN * amr_point) | (amr_point == 0))
        amr = segments.mean(mr, keep)
    return XmrLimits(
        mean=mean,
        mean_moving_range=amr,
        n_baseline=segments.count_where(baseline),
        in_baseline=baseline,
        basis=points.basis,
    )


def xmr_arrays(
    y: FloatArray,
    segments: Segments,
    *,
    fix_after_n_points: int | None = None,
    screen_outliers: bool = True,
    sigma: float = DEFAULT_SIGMA,
    baseline_mask: BoolArray | None = None,
) -> dict[str, np.ndarray]:
    """Per-point mean, limits and near-limit band of XmR charts over a flat array of segments."""
    base = xmr_baseline(
        y,
        segments,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=screen_outliers,
        baseline_mask=baseline_mask,
    )
    limit = xmr_limit(validate_sigma(sigma))
    near = NEAR_FRACTION * limit
    mean = base.mean[segments.ids]
    amr = base.mean_moving_range[segments.ids]
    return {
        "mean": mean,
        "lpl": mean - limit * amr,
        "upl": mean + limit * amr,
        "near_lpl": mean - near * amr,
        "near_upl": mean + near * amr,
        "mean_moving_range": amr,
        "moving_range": moving_ranges(y, segments, np.isfinite(y)),
        "n_baseline": base.n_baseline,
        "in_baseline": base.in_baseline,
        "basis": base.basis,
    }


def xmr(
    values: npt.ArrayLike | pl.Series,
    *,
    improvement_direction: str = "neutral",
    target: float | None = None,
    rebase_at: Iterable[int] = (),
    fix_after_n_points: int | None = None,
    screen_outliers: bool = True,
    sigma: float = DEFAULT_SIGMA,
    trial_threshold: int = TRIAL_THRESHOLD,
    x: Sequence[object] | pl.Series | None = None,
) -> pl.DataFrame:
    """XmR chart of one ordered series: one row per point with limits, flags and point type.

    ``values`` may hold None/NaN for missing points (kept as rows with null flags; they break
    runs). ``rebase_at`` are 0-based positions that start a new, independently analysed segment;
    ``fix_after_n_points`` (>= 12) fixes each segment's limits on its first n points.
    ``target`` and ``improvement_direction`` are carried as columns so the icons can be read
    from the result alone. ``x`` (default 0..n-1) labels the points.
    """
    y = as_float_array(values)
    n = len(y)
    sign = direction_sign(improvement_direction)
    if target is not None and not np.isfinite(float(target)):
        raise ValueError(f"target must be a finite number or None; got {target!r}")
    segments = Segments.build(n, rebase=rebase_flags(rebase_at, n))
    arrays = xmr_arrays(
        y,
        segments,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=screen_outliers,
        sigma=sigma,
    )
    return chart_frame(
        y,
        segments,
        arrays,
        trial_threshold=trial_threshold,
        sign=sign,
        x=x,
        chart_columns=[
            pl.Series("moving_range", arrays["moving_range"], nan_to_null=True),
            pl.Series("mean_moving_range", arrays["mean_moving_range"], nan_to_null=True),
        ],
        improvement_direction=improvement_direction,
        target=target,
    )
