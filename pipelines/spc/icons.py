"""Making Data Count summary icons: which variation (from the last point) and assurance
(target) icon a series gets; pipelines/dashboard/icon_svg.py draws them.

The icons are what a board paper shows for each measure, so they are derived only from the
finished per-point result, exactly as NHSRplotthedots does: variation from the point type of
the latest point; assurance from where the target sits against the latest limits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from pipelines.spc.constants import direction_sign
from pipelines.spc.rules import POINT_TYPES

#: Variation icon names (the Making Data Count icon set).
VARIATION_ICONS: tuple[str, ...] = (
    "common_cause",
    "improvement_high",
    "improvement_low",
    "concern_high",
    "concern_low",
    "neutral_high",
    "neutral_low",
)
#: Assurance values, worded as upstream.
ASSURANCE_TYPES: tuple[str, ...] = ("consistent_pass", "consistent_fail", "inconsistent")


def variation_icon_codes(point_type_codes: npt.ArrayLike, signs: npt.ArrayLike) -> np.ndarray:
    """Vectorised variation icons: index into ``VARIATION_ICONS`` (-1 = no icon).

    ``point_type_codes`` index ``rules.POINT_TYPES`` (-1 = missing point); ``signs`` are the
    improvement directions (+1/-1/0). Improvement when higher is better is a high value
    (``improvement_high``); concern when higher is better a low one (``concern_low``); and the
    reverse for "decrease".
    """
    pt = np.asarray(point_type_codes, dtype=np.int64)
    sign = np.broadcast_to(np.asarray(signs, dtype=np.int64), pt.shape)
    up = sign > 0
    conditions = [pt == 0, pt == 1, pt == 2, pt == 3, pt == 4]
    choices = [
        np.zeros_like(pt),
        np.where(up, 1, 2),
        np.where(up, 4, 3),
        np.full_like(pt, 5),
        np.full_like(pt, 6),
    ]
    return np.select(conditions, choices, default=-1).astype(np.int8)


def assurance_codes(
    lpl: npt.ArrayLike, upl: npt.ArrayLike, target: npt.ArrayLike, signs: npt.ArrayLike
) -> np.ndarray:
    """Vectorised assurance: index into ``ASSURANCE_TYPES`` (-1 = none).

    A target above the upper limit is always failed when higher is better (always passed when
    lower is better); below the lower limit the reverse; between the limits the process will
    sometimes pass and sometimes fail. No target (NaN), a neutral direction or missing limits
    give none (``ptd_calculate_assurance_type``).
    """
    lo = np.asarray(lpl, dtype=np.float64)
    hi = np.asarray(upl, dtype=np.float64)
    tgt = np.asarray(target, dtype=np.float64)
    sign = np.asarray(signs, dtype=np.int64)
    lo, hi, tgt, sign = np.broadcast_arrays(lo, hi, tgt, sign)
    up = sign > 0
    known = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(tgt) & (sign != 0)
    with np.errstate(invalid="ignore"):
        code = np.select(
            [tgt > hi, tgt < lo],
            [np.where(up, 1, 0), np.where(up, 0, 1)],
            default=2,
        )
    return np.where(known, code, -1).astype(np.int8)


def variation_icon_for(point_type: str | None, improvement_direction: str) -> str | None:
    """Variation icon for one point type and improvement direction (None for a missing point)."""
    sign = direction_sign(improvement_direction)
    if point_type is None:
        return None
    if point_type not in POINT_TYPES:
        raise ValueError(f"unknown point_type {point_type!r}")
    code = int(variation_icon_codes([POINT_TYPES.index(point_type)], sign)[0])
    if sign == 0 and point_type in ("special_cause_improvement", "special_cause_concern"):
        raise ValueError(f"point type {point_type!r} cannot occur with a neutral direction")
    return VARIATION_ICONS[code]


def assurance_type(
    lpl: float | None,
    upl: float | None,
    target: float | None,
    improvement_direction: str,
) -> str | None:
    """Will the process meet the target? Assurance for one facet from its latest limits."""
    sign = direction_sign(improvement_direction)

    def num(value: float | None) -> float:
        return np.nan if value is None else float(value)

    code = int(assurance_codes(num(lpl), num(upl), num(target), sign))
    return None if code < 0 else ASSURANCE_TYPES[code]


def _direction_of(result: pl.DataFrame, improvement_direction: str | None) -> str:
    if improvement_direction is not None:
        return improvement_direction
    if "improvement_direction" in result.columns and result.height:
        value = result["improvement_direction"][-1]
        if value is not None:
            return str(value)
    raise ValueError("improvement_direction is not given and the result does not carry it")


def variation_icon(result: pl.DataFrame, improvement_direction: str | None = None) -> str | None:
    """Variation icon of a one-series result, from its last point that has a value.

    ``improvement_direction`` defaults to the result's own column. None for an empty or
    all-missing series.
    """
    direction = _direction_of(result, improvement_direction) if result.height else "neutral"
    latest = result.filter(pl.col("point_type").is_not_null())
    if latest.height == 0:
        return None
    return variation_icon_for(latest["point_type"][-1], direction)


def assurance_icon(
    result: pl.DataFrame,
    target: float | None = None,
    improvement_direction: str | None = None,
) -> str | None:
    """Assurance of a one-series result against ``target`` using its latest limits.

    Upstream reads the last row; here the last row that has limits, so a final missing point
    (e.g. a zero denominator on a P' chart) does not hide the assurance. ``target`` and
    ``improvement_direction`` default to the result's own columns.
    """
    if result.height == 0:
        return None
    direction = _direction_of(result, improvement_direction)
    if target is None and "target" in result.columns:
        target = result["target"][-1]
    with_limits = result.filter(pl.col("lpl").is_not_null() & pl.col("upl").is_not_null())
    if with_limits.height == 0:
        return None
    return assurance_type(with_limits["lpl"][-1], with_limits["upl"][-1], target, direction)
