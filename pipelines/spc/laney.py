"""P and U charts and Laney's P-prime and U-prime charts for proportions and rates.

With varying denominators (admissions, bed days) each point gets its own limits. Plain P/U
charts assume binomial/Poisson variation, which very large denominators make far too narrow
(every point "special"); Laney's prime charts rescale the limits by sigma-z, the spread of
the standardised points measured with moving ranges, so they behave like an XmR chart of the
z-scores while keeping per-point widths.

Per segment: centre = sum(numerators) / sum(denominators) over the baseline points;
sigma_i = sqrt(c(1 - c) / n_i) (P) or sqrt(c / n_i) (U); z_i = (y_i - c) / sigma_i;
sigma_z = mean |z_i - z_(i-1)| / 1.128 (prime charts; 1 for plain charts);
limits = c +/- sigma x sigma_i x sigma_z, clipped to [0, 1] (P) or [0, inf) (U).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from pipelines.rate import rate
from pipelines.spc.constants import (
    D2,
    DEFAULT_SIGMA,
    MR_SCREEN,
    NEAR_FRACTION,
    TRIAL_THRESHOLD,
    direction_sign,
    validate_fix_after,
    validate_sigma,
)
from pipelines.spc.inputs import as_float_array, rebase_flags
from pipelines.spc.output import chart_frame
from pipelines.spc.segments import BoolArray, FloatArray, Segments, baseline_points

ChartKind = Literal["p", "u"]


def check_counts(numerators: FloatArray, denominators: FloatArray, kind: ChartKind) -> None:
    """Refuse counts that cannot be right: negative values, or a proportion above 1.

    A zero (or missing) denominator is not an error: that point is simply missing.
    """
    if len(numerators) != len(denominators):
        raise ValueError(
            "numerators and denominators must have the same length; "
            f"got {len(numerators)} and {len(denominators)}"
        )
    with np.errstate(invalid="ignore"):
        if (numerators < 0).any():
            raise ValueError("numerators must not be negative")
        if (denominators < 0).any():
            raise ValueError("denominators must not be negative")
        if kind == "p" and (numerators > denominators).any():
            raise ValueError("a P chart numerator cannot exceed its denominator")


def attribute_arrays(
    numerators: FloatArray,
    denominators: FloatArray,
    segments: Segments,
    *,
    kind: ChartKind,
    prime: bool,
    sigma: float = DEFAULT_SIGMA,
    fix_after_n_points: int | None = None,
    screen_outliers: bool = False,
    multiplier: float = 1.0,
    baseline_mask: BoolArray | None = None,
) -> dict[str, np.ndarray]:
    """Per-point value, centre, sigma, sigma-z and limits of P/U/P'/U' charts (flat, vectorised).

    ``screen_outliers`` (prime charts only) screens the moving ranges of the z-scores as the
    XmR chart does; Laney's method and the reference fixtures do not, so it is off by default.
    ``baseline_mask`` (optional, per point) names the points each segment's centre and
    sigma-z rest on, as in :func:`pipelines.spc.xmr.xmr_baseline`.
    """
    k = validate_sigma(sigma)
    fix_after = validate_fix_after(fix_after_n_points)
    if not (np.isfinite(multiplier) and multiplier > 0):
        raise ValueError(f"multiplier must be a positive finite number; got {multiplier!r}")
    check_counts(numerators, denominators, kind)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(numerators) & np.isfinite(denominators) & (denominators > 0)
        # The rate rule (pipelines/rate.py) on the proportion; the multiplier scales it
        # below with the centre and limits, so no comparison between them moves with it.
        y = np.where(valid, rate(numerators, denominators), np.nan)
        points = baseline_points(valid, segments, fix_after, baseline_mask)
        baseline = points.mask
        num_sum = segments.sum(numerators, baseline)
        den_sum = segments.sum(denominators, baseline)
        centre_seg = np.where(den_sum > 0, num_sum / np.where(den_sum > 0, den_sum, 1.0), np.nan)
        centre = centre_seg[segments.ids]
        spread = centre * (1.0 - centre) if kind == "p" else centre
        sigma_i = np.where(valid, np.sqrt(spread / np.where(valid, denominators, 1.0)), np.nan)
        if prime:
            z = np.where(sigma_i > 0, (y - centre) / sigma_i, 0.0)
            z = np.where(valid, z, np.nan)
            mr = np.full(len(z), np.nan)
            if len(z) > 1:
                ok = segments.same_as_previous()[1:] & baseline[1:] & baseline[:-1]
                mr[1:] = np.where(ok, np.abs(z[1:] - z[:-1]), np.nan)
            has_mr = np.isfinite(mr)
            amr = segments.mean(mr, has_mr)
            if screen_outliers:
                amr_point = amr[segments.ids]
                keep = has_mr & ((mr < MR_SCREEN * amr_point) | (amr_point == 0))
                amr = segments.mean(mr, keep)
            sigma_z_seg = amr / D2
        else:
            sigma_z_seg = np.ones(segments.count)
        sigma_z = sigma_z_seg[segments.ids]
        sd = sigma_i * sigma_z
        upper_bound = 1.0 if kind == "p" else np.inf
        lpl = np.clip(centre - k * sd, 0.0, upper_bound)
        upl = np.clip(centre + k * sd, 0.0, upper_bound)
        near_lpl = np.clip(centre - NEAR_FRACTION * k * sd, 0.0, upper_bound)
        near_upl = np.clip(centre + NEAR_FRACTION * k * sd, 0.0, upper_bound)
    return {
        "y": y * multiplier,
        "mean": centre * multiplier,
        "lpl": lpl * multiplier,
        "upl": upl * multiplier,
        "near_lpl": near_lpl * multiplier,
        "near_upl": near_upl * multiplier,
        "sigma_i": sigma_i * multiplier,
        "sigma_z": sigma_z,
        "n_baseline": segments.count_where(baseline),
        "in_baseline": baseline,
        "basis": points.basis,
    }


def _attribute_chart(
    kind: ChartKind,
    prime: bool,
    numerators: npt.ArrayLike | pl.Series,
    denominators: npt.ArrayLike | pl.Series,
    *,
    sigma: float,
    improvement_direction: str,
    target: float | None,
    rebase_at: Iterable[int],
    fix_after_n_points: int | None,
    screen_outliers: bool,
    multiplier: float,
    trial_threshold: int,
    x: Sequence[object] | pl.Series | None,
) -> pl.DataFrame:
    num = as_float_array(numerators, "numerators")
    den = as_float_array(denominators, "denominators")
    n = len(num)
    sign = direction_sign(improvement_direction)
    if target is not None and not np.isfinite(float(target)):
        raise ValueError(f"target must be a finite number or None; got {target!r}")
    check_counts(num, den, kind)
    segments = Segments.build(n, rebase=rebase_flags(rebase_at, n))
    arrays = attribute_arrays(
        num,
        den,
        segments,
        kind=kind,
        prime=prime,
        sigma=sigma,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=screen_outliers,
        multiplier=multiplier,
    )
    return chart_frame(
        arrays["y"],
        segments,
        arrays,
        trial_threshold=trial_threshold,
        sign=sign,
        x=x,
        chart_columns=[
            pl.Series("numerator", num, nan_to_null=True),
            pl.Series("denominator", den, nan_to_null=True),
            pl.Series("sigma_i", arrays["sigma_i"], nan_to_null=True),
            pl.Series("sigma_z", arrays["sigma_z"], nan_to_null=True),
        ],
        improvement_direction=improvement_direction,
        target=target,
    )


def p_chart(
    numerators: npt.ArrayLike | pl.Series,
    denominators: npt.ArrayLike | pl.Series,
    *,
    sigma: float = DEFAULT_SIGMA,
    improvement_direction: str = "neutral",
    target: float | None = None,
    rebase_at: Iterable[int] = (),
    fix_after_n_points: int | None = None,
    multiplier: float = 1.0,
    trial_threshold: int = TRIAL_THRESHOLD,
    x: Sequence[object] | pl.Series | None = None,
) -> pl.DataFrame:
    """P chart (binomial proportions), limits at ``sigma`` sigmas; for modest denominators."""
    return _attribute_chart(
        "p",
        False,
        numerators,
        denominators,
        sigma=sigma,
        improvement_direction=improvement_direction,
        target=target,
        rebase_at=rebase_at,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=False,
        multiplier=multiplier,
        trial_threshold=trial_threshold,
        x=x,
    )


def u_chart(
    numerators: npt.ArrayLike | pl.Series,
    denominators: npt.ArrayLike | pl.Series,
    *,
    sigma: float = DEFAULT_SIGMA,
    improvement_direction: str = "neutral",
    target: float | None = None,
    rebase_at: Iterable[int] = (),
    fix_after_n_points: int | None = None,
    multiplier: float = 1.0,
    trial_threshold: int = TRIAL_THRESHOLD,
    x: Sequence[object] | pl.Series | None = None,
) -> pl.DataFrame:
    """U chart (Poisson rates per unit of exposure), limits at ``sigma`` sigmas."""
    return _attribute_chart(
        "u",
        False,
        numerators,
        denominators,
        sigma=sigma,
        improvement_direction=improvement_direction,
        target=target,
        rebase_at=rebase_at,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=False,
        multiplier=multiplier,
        trial_threshold=trial_threshold,
        x=x,
    )


def laney_p_prime(
    numerators: npt.ArrayLike | pl.Series,
    denominators: npt.ArrayLike | pl.Series,
    *,
    sigma: float = DEFAULT_SIGMA,
    improvement_direction: str = "neutral",
    target: float | None = None,
    rebase_at: Iterable[int] = (),
    fix_after_n_points: int | None = None,
    screen_outliers: bool = False,
    multiplier: float = 1.0,
    trial_threshold: int = TRIAL_THRESHOLD,
    x: Sequence[object] | pl.Series | None = None,
) -> pl.DataFrame:
    """Laney P' chart: proportions whose large denominators make a P chart over-signal."""
    return _attribute_chart(
        "p",
        True,
        numerators,
        denominators,
        sigma=sigma,
        improvement_direction=improvement_direction,
        target=target,
        rebase_at=rebase_at,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=screen_outliers,
        multiplier=multiplier,
        trial_threshold=trial_threshold,
        x=x,
    )


def laney_u_prime(
    numerators: npt.ArrayLike | pl.Series,
    denominators: npt.ArrayLike | pl.Series,
    *,
    sigma: float = DEFAULT_SIGMA,
    improvement_direction: str = "neutral",
    target: float | None = None,
    rebase_at: Iterable[int] = (),
    fix_after_n_points: int | None = None,
    screen_outliers: bool = False,
    multiplier: float = 1.0,
    trial_threshold: int = TRIAL_THRESHOLD,
    x: Sequence[object] | pl.Series | None = None,
) -> pl.DataFrame:
    """Laney U' chart: rates whose large exposures make a U chart over-signal."""
    return _attribute_chart(
        "u",
        True,
        numerators,
        denominators,
        sigma=sigma,
        improvement_direction=improvement_direction,
        target=target,
        rebase_at=rebase_at,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=screen_outliers,
        multiplier=multiplier,
        trial_threshold=trial_threshold,
        x=x,
    )
