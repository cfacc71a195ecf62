"""The SPC columns every chart returns, built once from flat numpy arrays.

One builder means XmR, P, U, P' and U' results (and ``fct_spc``) share names, types and null
rules: a missing point keeps its segment's centre and limits but has null flags and labels,
because "no data" is not "common cause".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.spc.rules import POINT_TYPES, SPECIAL_CAUSE_LABELS, SPECIAL_CAUSE_RULES, classify
from pipelines.spc.segments import FloatArray, Segments

#: Columns added by every chart, in output order.
SPC_COLUMNS: tuple[str, ...] = (
    "segment",
    "y",
    "mean",
    "lpl",
    "upl",
    "near_lpl",
    "near_upl",
    "n_baseline",
    "trial_limits",
    "outside_limits",
    "relative_to_mean",
    "close_to_limits",
    "special_cause_flag",
    "special_cause_type",
    "special_cause_label",
    "point_type",
)

_LABELS = pl.Series("labels", SPECIAL_CAUSE_LABELS, dtype=pl.String)
_RULES = pl.Series("rules", SPECIAL_CAUSE_RULES, dtype=pl.String)
_POINT_TYPES = pl.Series("point_types", POINT_TYPES, dtype=pl.String)


def _float(name: str, values: FloatArray) -> pl.Series:
    return pl.Series(name, np.asarray(values, dtype=np.float64), nan_to_null=True)


def _masked(
    name: str, values: np.ndarray, present: np.ndarray, dtype: type[pl.DataType]
) -> pl.Series:
    series = pl.Series(name, values, dtype=dtype)
    if present.all():
        return series
    return series.scatter(np.flatnonzero(~present), None)


def _lookup(name: str, table: pl.Series, codes: np.ndarray, present: np.ndarray) -> pl.Series:
    index = pl.Series(name, codes.astype(np.uint32), dtype=pl.UInt32)
    if not present.all():
        index = index.scatter(np.flatnonzero(~present), None)
    return table.gather(index).alias(name)


@dataclass(frozen=True)
class SpcColumns:
    """The SPC columns plus the raw per-point codes that series-level summaries need.

    ``present`` and ``point_type_code`` stay in analysed order (before any ``restore``).
    """

    columns: list[pl.Series]
    present: np.ndarray
    point_type_code: np.ndarray


def spc_columns(
    y: FloatArray,
    segments: Segments,
    mean: FloatArray,
    lpl: FloatArray,
    upl: FloatArray,
    near_lpl: FloatArray,
    near_upl: FloatArray,
    n_baseline: np.ndarray,
    trial_threshold: int,
    direction: int | np.ndarray,
    restore: np.ndarray | None = None,
) -> SpcColumns:
    """Classify every point and return the standard SPC columns as polars Series.

    ``mean``/limits are per point (already broadcast from segments); ``n_baseline`` is per
    segment. Non-finite limits become null. ``restore`` (optional) is the permutation taking
    the analysed (series, time) order back to the caller's row order; it is applied to the
    numpy arrays, which is much cheaper than reordering finished string columns.
    """
    rules = classify(y, mean, lpl, upl, near_lpl, near_upl, segments.ids, direction)
    present = rules["present"]
    base = np.asarray(n_baseline, dtype=np.int64)[segments.ids]
    flag = rules["label_code"] != 0

    def out(values: np.ndarray) -> np.ndarray:
        return values if restore is None else values[restore]

    shown = out(present)
    columns = [
        pl.Series("segment", out(segments.local), dtype=pl.Int32),
        _float("y", out(y)),
        _float("mean", out(mean)),
        _float("lpl", out(lpl)),
        _float("upl", out(upl)),
        _float("near_lpl", out(near_lpl)),
        _float("near_upl", out(near_upl)),
        pl.Series("n_baseline", out(base), dtype=pl.Int32),
        pl.Series("trial_limits", out(base < trial_threshold), dtype=pl.Boolean),
        _masked("outside_limits", out(rules["outside_limits"]), shown, pl.Boolean),
        _masked("relative_to_mean", out(rules["relative_to_mean"]), shown, pl.Int8),
        _masked("close_to_limits", out(rules["close_to_limits"]), shown, pl.Boolean),
        _masked("special_cause_flag", out(flag), shown, pl.Boolean),
        _lookup("special_cause_type", _RULES, out(rules["label_code"]), shown),
        _lookup("special_cause_label", _LABELS, out(rules["label_code"]), shown),
        _lookup("point_type", _POINT_TYPES, out(rules["point_type_code"]), shown),
    ]
    return SpcColumns(columns, present, rules["point_type_code"])


def spc_columns_of(
    y: FloatArray,
    segments: Segments,
    arrays: dict[str, np.ndarray],
    trial_threshold: int,
    direction: int | np.ndarray,
    restore: np.ndarray | None = None,
) -> SpcColumns:
    """:func:`spc_columns` of a chart's arrays as ``xmr_arrays`` / ``attribute_arrays``
    return them (``mean``, the limits, ``near_*``, ``n_baseline``): every chart, single
    series (:func:`chart_frame`) or many (``spc_by_series``), hands its limits over the
    same way, so the unpacking is written once."""
    return spc_columns(
        y,
        segments,
        arrays["mean"],
        arrays["lpl"],
        arrays["upl"],
        arrays["near_lpl"],
        arrays["near_upl"],
        arrays["n_baseline"],
        trial_threshold,
        direction,
        restore=restore,
    )


def chart_frame(
    y: FloatArray,
    segments: Segments,
    arrays: dict[str, np.ndarray],
    *,
    trial_threshold: int,
    sign: int,
    x: Sequence[object] | pl.Series | None,
    chart_columns: Sequence[pl.Series],
    improvement_direction: str,
    target: float | None,
) -> pl.DataFrame:
    """One chart's result, as every single-series chart (XmR, P, U, P', U') returns it: the
    point labels ``x`` (default 0..n-1), the standard SPC columns of ``arrays``' centre and
    limits, the chart's own ``chart_columns``, then the direction and target the icons are
    read from."""
    n = len(y)
    columns = spc_columns_of(y, segments, arrays, trial_threshold, sign)
    x_col = pl.Series("x", np.arange(n, dtype=np.int64)) if x is None else pl.Series("x", x)
    if len(x_col) != n:
        raise ValueError(f"x must have one label per value ({n}); got {len(x_col)}")
    carried = [
        pl.Series("improvement_direction", [improvement_direction] * n, dtype=pl.String),
        pl.Series("target", [target] * n, dtype=pl.Float64),
    ]
    return pl.DataFrame([x_col, *columns.columns, *chart_columns, *carried])
