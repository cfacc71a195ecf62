"""SPC for a long table of many series at once (the ``fct_spc`` builder).

The warehouse holds one row per series x period. Looping over ~100k series in Python would
take minutes; instead the frame is sorted once, laid flat, and every limit and rule runs as
a segment-aware numpy pass over all series together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from pipelines.spc.constants import (
    DEFAULT_SIGMA,
    DIRECTION_SIGN,
    TRIAL_THRESHOLD,
    Chart,
    direction_sign,
)
from pipelines.spc.icons import (
    ASSURANCE_TYPES,
    VARIATION_ICONS,
    assurance_codes,
    variation_icon_codes,
)
from pipelines.spc.laney import attribute_arrays
from pipelines.spc.output import SPC_COLUMNS, spc_columns_of
from pipelines.spc.segments import LIMITS_BASIS, Segments
from pipelines.spc.xmr import xmr_arrays

_ATTRIBUTE: dict[str, tuple[Literal["p", "u"], bool]] = {
    "p": ("p", False),
    "u": ("u", False),
    "p_prime": ("p", True),
    "u_prime": ("u", True),
}
#: Series-level columns added to every row of a series.
SERIES_COLUMNS: tuple[str, ...] = ("variation_icon", "assurance_type")
#: Which points the limits rest on: ``in_baseline`` per point, ``limits_basis`` (one of
#: :data:`pipelines.spc.segments.LIMITS_BASIS`) per segment, repeated on its rows.
BASELINE_COLUMNS: tuple[str, ...] = ("in_baseline", "limits_basis")


def _added_columns(chart: str) -> tuple[str, ...]:
    extra = ("moving_range", "mean_moving_range") if chart == "xmr" else ("sigma_i", "sigma_z")
    return (*SPC_COLUMNS, *extra, *BASELINE_COLUMNS, *SERIES_COLUMNS)


def _require(frame: pl.DataFrame, columns: Sequence[str | None]) -> None:
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}")


def _float_column(frame: pl.DataFrame, name: str) -> np.ndarray:
    column = frame[name]
    if not column.dtype.is_numeric():
        raise ValueError(f"column {name!r} must be numeric; got {column.dtype}")
    values = column.cast(pl.Float64).to_numpy()
    if np.isinf(values).any():
        raise ValueError(f"column {name!r} contains infinite values")
    return values


def _direction_signs(frame: pl.DataFrame, direction_col: str | None, default: str) -> np.ndarray:
    if direction_col is None:
        return np.full(frame.height, direction_sign(default), dtype=np.int8)
    column = frame[direction_col]
    unknown = column.filter(~column.is_in(list(DIRECTION_SIGN)) | column.is_null()).unique()
    if len(unknown):
        raise ValueError(
            f"column {direction_col!r} must hold 'increase', 'decrease' or 'neutral'; "
            f"found {unknown.to_list()[:5]}"
        )
    return column.replace_strict(DIRECTION_SIGN, return_dtype=pl.Int8).to_numpy()


def _last_per_series(series_id: np.ndarray, mask: np.ndarray, n_series: int) -> np.ndarray:
    """Row index of the last row selected by ``mask`` in each series (-1 if none)."""
    last = np.full(n_series, -1, dtype=np.int64)
    rows = np.flatnonzero(mask)
    if len(rows):
        sids = series_id[rows]
        ends = np.ones(len(rows), dtype=bool)
        ends[:-1] = sids[1:] != sids[:-1]
        last[sids[ends]] = rows[ends]
    return last


def _restored(values: np.ndarray, restore: np.ndarray | None) -> np.ndarray:
    return values if restore is None else values[restore]


def _lookup(name: str, table: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    index = pl.Series(name, np.where(codes < 0, 0, codes).astype(np.uint32), dtype=pl.UInt32)
    missing = np.flatnonzero(codes < 0)
    if len(missing):
        index = index.scatter(missing, None)
    return pl.Series(name, table, dtype=pl.String).gather(index).alias(name)


def _already_ordered(frame: pl.DataFrame, series_cols: list[str], order_col: str) -> bool:
    """True if rows are already grouped by series and ordered by ``order_col`` (one pass).

    Frames read from the warehouse usually arrive ordered (ORDER BY); then no sort is needed.
    """
    if frame.height < 2:
        return True
    comparable = all(
        frame.schema[c].is_numeric()
        or frame.schema[c].is_temporal()
        or frame.schema[c] in (pl.String, pl.Boolean)
        for c in [*series_cols, order_col]
    )
    if not comparable or any(frame[c].null_count() for c in series_cols):
        return False
    ordered = pl.col(order_col).shift(1) < pl.col(order_col)
    for column in reversed(series_cols):
        prev, this = pl.col(column).shift(1), pl.col(column)
        ordered = (prev < this) | ((prev == this) & ordered)
    # Ties in order_col are duplicates (refused later), so strict order is what we need.
    return bool(frame.select(ordered.slice(1).all()).item())


def _series_hash(frame: pl.DataFrame, series_cols: list[str]) -> pl.Series:
    """64-bit hash of each row's series key (collisions are possible, and handled)."""
    return frame.select(pl.struct(series_cols).hash())[:, 0]


def _sort_permutation(
    frame: pl.DataFrame, series_cols: list[str], order_col: str
) -> np.ndarray | None:
    """Row permutation that groups rows by series, each ordered by ``order_col``.

    None if the frame already is. Series are grouped by a 64-bit hash of their key columns
    (sorting integers is ~4x faster than sorting string keys); a hash collision is detected
    (more key runs than hash runs) and falls back to sorting on the key columns themselves.
    """
    if _already_ordered(frame, series_cols, order_col):
        return None
    if not series_cols:
        return frame.select(pl.arg_sort_by(order_col))[:, 0].to_numpy()
    hashed = pl.DataFrame({"h": _series_hash(frame, series_cols), "o": frame[order_col]})
    perm = hashed.select(pl.arg_sort_by(["h", "o"]))[:, 0].to_numpy()
    hashes = hashed["h"].to_numpy()[perm]
    hash_runs = 1 + int(np.count_nonzero(hashes[1:] != hashes[:-1]))
    key_runs = frame.select(series_cols)[perm].select(pl.struct(series_cols).rle_id().max())
    if int(key_runs.item()) + 1 == hash_runs:
        return perm
    return frame.select(pl.arg_sort_by([*series_cols, order_col], nulls_last=True))[:, 0].to_numpy()


def spc_by_series(
    frame: pl.DataFrame,
    series_cols: Sequence[str],
    order_col: str,
    value_col: str | None = None,
    numerator_col: str | None = None,
    denominator_col: str | None = None,
    *,
    chart: Chart = "xmr",
    improvement_direction: str = "neutral",
    direction_col: str | None = None,
    target: float | None = None,
    target_col: str | None = None,
    sigma: float = DEFAULT_SIGMA,
    multiplier: float = 1.0,
    rebase_col: str | None = None,
    fix_after_n_points: int | None = None,
    screen_outliers: bool | None = None,
    trial_threshold: int = TRIAL_THRESHOLD,
    baseline_col: str | None = None,
) -> pl.DataFrame:
    """Add SPC columns to a long frame, analysing each series (``series_cols``) separately.

    ``chart`` "xmr" reads ``value_col``; "p", "u", "p_prime", "u_prime" read
    ``numerator_col``/``denominator_col`` (``y`` = numerator / denominator x ``multiplier``).
    ``rebase_col`` is a boolean column, true on the first point of a new segment (rebase).
    ``improvement_direction``/``target`` apply to every series unless ``direction_col``/
    ``target_col`` give them per row (the series' last row is used for its icons).
    ``screen_outliers`` defaults to True for XmR (as upstream) and False for Laney charts.
    ``baseline_col`` is an optional boolean column: the points a segment's limits rest on;
    a segment where it marks no point with a value uses its first ``fix_after_n_points``
    (or all points) as without it. ``in_baseline`` and ``limits_basis`` say what was used
    (``given_points``, ``first_n_points`` or ``all_points``).

    Returns ``frame`` (same rows, same order) with the per-point SPC columns added, plus
    ``variation_icon`` and ``assurance_type`` of the series repeated on each of its rows.
    Duplicate (series, order) rows or a null order value are refused.

    The steps, one function each: check the arguments (:func:`_chart_inputs`), put the
    rows in series order (:func:`_in_series_order`), find each series and segment
    (:func:`_series_keys`, ``Segments.build``), compute the limits
    (:func:`_chart_arrays`), classify the points (``spc_columns_of``), then the series'
    icons (:func:`_variation_icons`, :func:`_assurance`).
    """
    series_cols = list(series_cols)
    inputs = _chart_inputs(chart, value_col, numerator_col, denominator_col)
    _require(
        frame,
        [*series_cols, order_col, *inputs, direction_col, target_col, rebase_col, baseline_col],
    )
    _check_options(frame, chart, improvement_direction, multiplier, target, target_col)
    if frame[order_col].null_count():
        raise ValueError(f"column {order_col!r} has null values; every point needs an order")
    optional = [direction_col, target_col, rebase_col, baseline_col]
    data, restore = _in_series_order(frame, series_cols, order_col, [*inputs, *optional])
    keys, series_start = _series_keys(data, series_cols, order_col)
    rebase = _flags(data, rebase_col)
    segments = Segments.build(data.height, series_start=series_start, rebase=rebase)
    signs = _direction_signs(data, direction_col, improvement_direction)
    y, arrays, extra = _chart_arrays(
        data,
        segments,
        restore,
        chart=chart,
        inputs=inputs,
        multiplier=multiplier,
        sigma=sigma,
        fix_after_n_points=fix_after_n_points,
        screen_outliers=screen_outliers,
        given=_flags(data, baseline_col),
    )
    spc = spc_columns_of(y, segments, arrays, trial_threshold, signs, restore=restore)
    icon_codes = _variation_icons(keys, spc.present, spc.point_type_code, signs)
    assurance = _assurance(keys, arrays, signs, _series_targets(data, keys, target, target_col))
    row_series = keys if restore is None else keys[restore]
    series_level = [
        _lookup("variation_icon", VARIATION_ICONS, icon_codes[row_series]),
        _lookup("assurance_type", ASSURANCE_TYPES, assurance[row_series]),
    ]
    baseline = _baseline_columns(arrays, segments, restore)
    return frame.with_columns([*spc.columns, *extra, *baseline, *series_level])


def _chart_inputs(
    chart: str, value_col: str | None, numerator_col: str | None, denominator_col: str | None
) -> list[str]:
    """The columns the chart reads: XmR a value, the attribute charts a numerator and a
    denominator; refuses an unknown chart or a missing input before any work."""
    if chart != "xmr" and chart not in _ATTRIBUTE:
        raise ValueError(f"chart must be one of 'xmr', {sorted(_ATTRIBUTE)}; got {chart!r}")
    if chart == "xmr":
        if value_col is None:
            raise ValueError("chart 'xmr' needs value_col")
        return [value_col]
    if numerator_col is None or denominator_col is None:
        raise ValueError(f"chart {chart!r} needs numerator_col and denominator_col")
    return [numerator_col, denominator_col]


def _check_options(
    frame: pl.DataFrame,
    chart: str,
    improvement_direction: str,
    multiplier: float,
    target: float | None,
    target_col: str | None,
) -> None:
    """Refuse options that would give wrong results silently: output columns that would
    overwrite the caller's, an unknown direction, a non-positive multiplier, two targets."""
    clash = sorted(set(_added_columns(chart)) & set(frame.columns))
    if clash:
        raise ValueError(f"frame already has output column(s) {clash}; rename them first")
    direction_sign(improvement_direction)
    if not (np.isfinite(multiplier) and multiplier > 0):
        raise ValueError(f"multiplier must be a positive finite number; got {multiplier!r}")
    if target is not None and target_col is not None:
        raise ValueError("give target or target_col, not both")


def _in_series_order(
    frame: pl.DataFrame, series_cols: list[str], order_col: str, columns: list[str | None]
) -> tuple[pl.DataFrame, np.ndarray | None]:
    """The columns the analysis reads, in (series, order) order, and the permutation that
    puts results back in the caller's row order (None when the rows were already in order).

    Only these columns are gathered, and results scattered back, so the caller's rows
    never move (and a frame already in order costs no sort)."""
    needed = list(dict.fromkeys([*series_cols, order_col, *[c for c in columns if c]]))
    perm = _sort_permutation(frame, series_cols, order_col)
    if perm is None:
        return frame.select(needed), None
    restore = np.empty_like(perm)
    restore[perm] = np.arange(frame.height, dtype=perm.dtype)
    return frame.select(needed)[perm], restore


def _series_keys(
    data: pl.DataFrame, series_cols: list[str], order_col: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's series number (0, 1, ... in order) and whether it starts its series;
    refuses two rows of one series at the same order value (the chart would be ambiguous)."""
    n = data.height
    keys = (
        data.select(pl.struct(series_cols).rle_id().alias("sid"))["sid"].to_numpy()
        if series_cols
        else np.zeros(n, dtype=np.uint32)
    ).astype(np.int64)
    series_start = np.ones(n, dtype=bool)
    if n:
        series_start[1:] = keys[1:] != keys[:-1]
    order = data[order_col]
    if n > 1:
        same_order = (order.slice(1) == order.slice(0, n - 1)).to_numpy()
        if (same_order & ~series_start[1:]).any():
            raise ValueError(f"duplicate {order_col!r} values within a series")
    return keys, series_start


def _flags(data: pl.DataFrame, column: str | None) -> np.ndarray | None:
    """An optional boolean column (rebase, baseline) as an array, null read as false."""
    if column is None:
        return None
    return data[column].cast(pl.Boolean).fill_null(False).to_numpy()


def _chart_arrays(
    data: pl.DataFrame,
    segments: Segments,
    restore: np.ndarray | None,
    *,
    chart: str,
    inputs: list[str],
    multiplier: float,
    sigma: float,
    fix_after_n_points: int | None,
    screen_outliers: bool | None,
    given: np.ndarray | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], list[pl.Series]]:
    """The chart's values and limits per point (``y``, the arrays ``spc_columns`` reads)
    and the chart's own extra columns in the caller's order: XmR its moving ranges, the
    attribute charts their per-point sigmas. Outlier screening defaults to on for XmR
    (as upstream) and off for the attribute charts."""
    if chart == "xmr":
        y = _float_column(data, inputs[0]) * multiplier
        arrays = xmr_arrays(
            y,
            segments,
            fix_after_n_points=fix_after_n_points,
            screen_outliers=True if screen_outliers is None else screen_outliers,
            sigma=sigma,
            baseline_mask=given,
        )
        names = ("moving_range", "mean_moving_range")
    else:
        kind, prime = _ATTRIBUTE[chart]
        arrays = attribute_arrays(
            _float_column(data, inputs[0]),
            _float_column(data, inputs[1]),
            segments,
            kind=kind,
            prime=prime,
            sigma=sigma,
            fix_after_n_points=fix_after_n_points,
            screen_outliers=bool(screen_outliers),
            multiplier=multiplier,
            baseline_mask=given,
        )
        y = arrays["y"]
        names = ("sigma_i", "sigma_z")
    extra = [pl.Series(n, _restored(arrays[n], restore), nan_to_null=True) for n in names]
    return y, arrays, extra


def _variation_icons(
    keys: np.ndarray, present: np.ndarray, point_type_code: np.ndarray, signs: np.ndarray
) -> np.ndarray:
    """Each series' variation icon code, from its last point with a value (-1: none)."""
    n_series = int(keys[-1]) + 1 if keys.size else 0
    last_point = _last_per_series(keys, present, n_series)
    has_point = last_point >= 0
    at_point = np.where(has_point, last_point, 0)
    pt_codes = np.where(has_point, point_type_code[at_point], -1)
    icon_codes = variation_icon_codes(pt_codes, signs[at_point])
    return np.where(has_point, icon_codes, -1)


def _series_targets(
    data: pl.DataFrame, keys: np.ndarray, target: float | None, target_col: str | None
) -> np.ndarray:
    """Each series' target: ``target_col`` on its last row, else ``target`` (NaN: none)."""
    n_series = int(keys[-1]) + 1 if keys.size else 0
    if target_col is not None:
        last_row = _last_per_series(keys, np.ones(keys.size, dtype=bool), n_series)
        return _float_column(data, target_col)[last_row]
    return np.full(n_series, np.nan if target is None else float(target))


def _assurance(
    keys: np.ndarray, arrays: dict[str, np.ndarray], signs: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Each series' assurance code, from the limits of its last point that has them and
    the direction on its last row (-1: the series has no limits)."""
    n_series = targets.size
    with np.errstate(invalid="ignore"):
        has_limits = np.isfinite(arrays["lpl"]) & np.isfinite(arrays["upl"])
    last_limits = _last_per_series(keys, has_limits, n_series)
    last_row = _last_per_series(keys, np.ones(keys.size, dtype=bool), n_series)
    at_limits = np.where(last_limits >= 0, last_limits, 0)
    assurance = assurance_codes(
        arrays["lpl"][at_limits], arrays["upl"][at_limits], targets, signs[last_row]
    )
    return np.where(last_limits >= 0, assurance, -1)


def _baseline_columns(
    arrays: dict[str, np.ndarray], segments: Segments, restore: np.ndarray | None
) -> list[pl.Series]:
    """Which points the limits rest on and, per point, how its segment's baseline was
    chosen (``limits_basis``), in the caller's order."""
    return [
        pl.Series("in_baseline", _restored(arrays["in_baseline"], restore), dtype=pl.Boolean),
        _lookup(
            "limits_basis",
            LIMITS_BASIS,
            _restored(arrays["basis"][segments.ids], restore).astype(np.int64),
        ),
    ]
