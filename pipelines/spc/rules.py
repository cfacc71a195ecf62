"""Special-cause rules of "Making Data Count", with NHSRplotthedots v0.2.2 semantics.

Each rule is a vectorised numpy function that mirrors one upstream R helper (same name without
the ``ptd_`` prefix, same inputs, same output) so the upstream unit cases replay one to one;
every function also takes an optional per-point ``segment`` so that, on the flat array of
many series, no run or window ever crosses a series or a rebase.

Missing points (NaN ``y``, 0 ``relative_to_mean``) never extend a run: they break it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipelines.spc.constants import RUN_LENGTH
from pipelines.spc.segments import BoolArray, FloatArray, run_position, segment_ids

Int8Array = npt.NDArray[np.int8]

#: Upstream wording of ``special_cause_type``, in code order (code 0 = common cause).
SPECIAL_CAUSE_LABELS: tuple[str, ...] = (
    "Common Cause",
    "Above UCL",
    "Below LCL",
    "7 Point Trend (Increasing)",
    "7 Point Trend (Decreasing)",
    "2 in 3 Above CL",
    "2 in 3 Below CL",
    "7 Points Above CL",
    "7 Points Below CL",
)
#: Short rule name of each label code (None = no special cause).
SPECIAL_CAUSE_RULES: tuple[str | None, ...] = (
    None,
    "outside",
    "outside",
    "trend",
    "trend",
    "two_of_three",
    "two_of_three",
    "shift",
    "shift",
)
#: +1 for "Above"/"Increasing" labels, -1 for "Below"/"Decreasing", 0 for common cause.
LABEL_SIGN: npt.NDArray[np.int8] = np.array([0, 1, -1, 1, -1, 1, -1, 1, -1], dtype=np.int8)
#: Upstream ``point_type`` values, in code order.
POINT_TYPES: tuple[str, ...] = (
    "common_cause",
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neutral_high",
    "special_cause_neutral_low",
)


def _int_sign(values: npt.ArrayLike) -> Int8Array:
    """Sign of each value as int8, with NaN (missing) mapped to 0 so it breaks runs."""
    arr = np.asarray(values)
    if arr.dtype == np.int8:
        return np.sign(arr)
    if arr.dtype.kind in "biu":
        return np.sign(arr).astype(np.int8)
    signs = np.sign(np.asarray(arr, dtype=np.float64))
    signs[np.isnan(signs)] = 0
    return signs.astype(np.int8)


def _nonzero(values: npt.ArrayLike) -> BoolArray:
    """Truthiness as R's ``&`` sees it: any non-zero, non-missing value is TRUE."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "iu":
        return arr != 0
    floats = np.asarray(arr, dtype=np.float64)
    return (floats != 0) & ~np.isnan(floats)


def _same_as_previous(seg: npt.NDArray[np.int64]) -> BoolArray:
    same = np.zeros(len(seg), dtype=bool)
    same[1:] = seg[1:] == seg[:-1]
    return same


# Each rule has a public form (any array-like input, optional segment labels, exactly the
# upstream helper's contract) and a private form on clean arrays and segment ids that
# ``classify`` chains without re-normalising 10^7-point arrays at every step.


def _one_side_ends(rtm: Int8Array, seg: npt.NDArray[np.int64]) -> BoolArray:
    prev = np.zeros_like(rtm)
    prev[1:] = rtm[:-1]
    new_run = ~_same_as_previous(seg) | (rtm != prev) | (rtm == 0)
    return (rtm != 0) & (run_position(new_run) >= RUN_LENGTH - 1)


def seven_point_one_side_mean(
    relative_to_mean: npt.ArrayLike, segment: npt.ArrayLike | None = None
) -> Int8Array:
    """Shift run ends: 1 where this point and the 6 before it share a side of the mean.

    Mirrors ``ptd_seven_point_one_side_mean``: a point on the mean (0) never counts and breaks
    the run; only the 7th and later points of a run carry the marker.
    """
    rtm = _int_sign(relative_to_mean)
    return _one_side_ends(rtm, segment_ids(segment, len(rtm))).astype(np.int8)


def _part_of_seven(marked: BoolArray, seg: npt.NDArray[np.int64]) -> BoolArray:
    n = len(marked)
    idx = np.arange(n, dtype=np.int64)
    next_marker = np.where(marked, idx, n)
    next_marker = np.minimum.accumulate(next_marker[::-1])[::-1]
    found = next_marker < n
    target = np.where(found, next_marker, 0)
    return found & (next_marker - idx <= RUN_LENGTH - 1) & (seg[target] == seg)


def part_of_seven_trend(markers: npt.ArrayLike, segment: npt.ArrayLike | None = None) -> Int8Array:
    """Back-fill run-end markers: 1 if this point or any of the next 6 carries a marker.

    Mirrors ``ptd_part_of_seven_trend`` (used for shift and trend), so that every member of a
    7-point run is flagged, not just its end.
    """
    marked = _nonzero(markers)
    return _part_of_seven(marked, segment_ids(segment, len(marked))).astype(np.int8)


def _step_signs(y: FloatArray, seg: npt.NDArray[np.int64]) -> Int8Array:
    """sign(y[i] - y[i-1]) inside a segment; 0 at a segment start or next to a missing point."""
    steps = np.zeros(len(y), dtype=np.int8)
    if len(y) > 1:
        with np.errstate(invalid="ignore"):
            diff = y[1:] - y[:-1]
        steps[1:] = _int_sign(diff)
        steps[1:][seg[1:] != seg[:-1]] = 0
    return steps


def _trend_ends(steps: Int8Array) -> Int8Array:
    prev = np.zeros_like(steps)
    prev[1:] = steps[:-1]
    new_run = (steps == 0) | (steps != prev)
    return np.where(run_position(new_run) >= RUN_LENGTH - 2, steps, 0).astype(np.int8)


def seven_point_trend(y: npt.ArrayLike, segment: npt.ArrayLike | None = None) -> Int8Array:
    """Trend run ends: +1 / -1 where this point ends 7 strictly rising / falling points.

    Mirrors ``ptd_seven_point_trend``: 6 consecutive differences of the same strict sign; a tie
    (or a missing point) breaks the trend; series shorter than 7 give all 0.
    """
    values = np.asarray(y, dtype=np.float64)
    return _trend_ends(_step_signs(values, segment_ids(segment, len(values))))


def _two_in_three(close: BoolArray, rtm: Int8Array, seg: npt.NDArray[np.int64]) -> BoolArray:
    n = len(close)
    flags = np.zeros(n, dtype=bool)
    if n < 3:
        return flags
    c = close.astype(np.int8)
    a, b, z = slice(0, n - 2), slice(1, n - 1), slice(2, n)
    valid = (
        (seg[a] == seg[z])
        & (c[a] + c[b] + c[z] >= 2)
        & (rtm[a] != 0)
        & (rtm[a] == rtm[b])
        & (rtm[b] == rtm[z])
    )
    flags[a] |= valid
    flags[b] |= valid
    flags[z] |= valid
    return flags


def two_in_three(
    close_to_limits: npt.ArrayLike,
    relative_to_mean: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
) -> Int8Array:
    """1 for every member of a 3-point window with >= 2 points near a limit, all one side.

    Mirrors ``ptd_two_in_three``: windows are 3 consecutive points of one segment, at least two
    of them close to the limits and all three strictly on the same side of the mean.
    """
    close = _nonzero(close_to_limits)
    rtm = _int_sign(relative_to_mean)
    if len(rtm) != len(close):
        raise ValueError(
            "close_to_limits and relative_to_mean must have the same length; "
            f"got {len(close)} and {len(rtm)}"
        )
    return _two_in_three(close, rtm, segment_ids(segment, len(close))).astype(np.int8)


def part_of_two_in_three(window_flags: npt.ArrayLike, close_to_limits: npt.ArrayLike) -> Int8Array:
    """Keep only window members that are themselves near a limit (``ptd_part_of_two_in_three``)."""
    flags = np.nan_to_num(np.asarray(window_flags, dtype=np.float64), nan=0.0) == 1
    close = np.abs(np.nan_to_num(np.asarray(close_to_limits, dtype=np.float64), nan=0.0)) == 1
    return (flags & close).astype(np.int8)


def _trend_direction(y: FloatArray, part: BoolArray, seg: npt.NDArray[np.int64]) -> Int8Array:
    backward = _step_signs(y, seg)
    forward = np.zeros_like(backward)
    next_in_trend = np.zeros(len(y), dtype=bool)
    if len(y) > 1:
        forward[:-1] = backward[1:]
        next_in_trend[:-1] = part[1:] & (seg[1:] == seg[:-1])
    return np.where(part & next_in_trend, forward, backward).astype(np.int8)


def trend_direction(
    y: npt.ArrayLike, part_trend: npt.ArrayLike, segment: npt.ArrayLike | None = None
) -> Int8Array:
    """Direction used to word a trend point, exactly as upstream computes ``sdy``.

    A trend point whose successor is also a trend point takes the sign of the step to the
    successor; otherwise the sign of the step from its predecessor (0 at a segment start).
    This labels the first point of a falling run "Decreasing" even if it rose from the point
    before it.
    """
    values = np.asarray(y, dtype=np.float64)
    seg = segment_ids(segment, len(values))
    return _trend_direction(values, _nonzero(part_trend), seg)


def _codes(
    y: FloatArray,
    rtm: Int8Array,
    outside: BoolArray,
    trend: BoolArray,
    two: BoolArray,
    shift: BoolArray,
    seg: npt.NDArray[np.int64],
) -> Int8Array:
    # Lowest precedence first, each rule overwriting the ones it outranks.
    above = (rtm > 0).astype(np.int8)
    codes = np.where(shift, 8 - above, 0).astype(np.int8)
    codes = np.where(two, 6 - above, codes)
    if trend.any():
        rising = (_trend_direction(y, trend, seg) == 1).astype(np.int8)
        codes = np.where(trend, 4 - rising, codes)
    codes = np.where(outside, 2 - (rtm == 1).astype(np.int8), codes)
    return codes.astype(np.int8)


def special_cause_codes(
    y: npt.ArrayLike,
    relative_to_mean: npt.ArrayLike,
    outside_limits: npt.ArrayLike,
    part_trend: npt.ArrayLike,
    part_two_in_three: npt.ArrayLike,
    part_shift: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
) -> Int8Array:
    """Index into ``SPECIAL_CAUSE_LABELS`` per point, applying the upstream precedence.

    Precedence (``dplyr::case_when`` order): outside the limits > trend > two-of-three > shift.
    Takes the rule components ready-made, so a caller (or a test) can inject them.
    """
    values = np.asarray(y, dtype=np.float64)
    return _codes(
        values,
        _int_sign(relative_to_mean),
        _nonzero(outside_limits),
        _nonzero(part_trend),
        _nonzero(part_two_in_three),
        _nonzero(part_shift),
        segment_ids(segment, len(values)),
    )


def special_cause_labels(codes: npt.ArrayLike) -> list[str]:
    """Upstream wording ("Above UCL", "7 Points Below CL", ...) for label codes."""
    return [SPECIAL_CAUSE_LABELS[int(code)] for code in np.asarray(codes)]


def point_type_codes(label_codes: npt.ArrayLike, direction: int | npt.ArrayLike) -> Int8Array:
    """Index into ``POINT_TYPES`` per point (``ptd_point_type``).

    "Above"/"Increasing" count +1 and "Below"/"Decreasing" -1; times the improvement direction
    (+1 increase, -1 decrease) that is improvement (> 0) or concern (< 0). A neutral direction
    (0) gives neutral high / low instead. ``direction`` may vary per point.
    """
    sign = LABEL_SIGN[np.asarray(label_codes, dtype=np.int64)]
    dirs = np.broadcast_to(np.asarray(direction, dtype=np.int8), sign.shape)
    oriented = sign * dirs
    directed = np.where(oriented > 0, 1, np.where(oriented < 0, 2, 0))
    neutral = np.where(sign > 0, 3, np.where(sign < 0, 4, 0))
    return np.where(dirs == 0, neutral, directed).astype(np.int8)


def classify(
    y: FloatArray,
    mean: FloatArray,
    lpl: FloatArray,
    upl: FloatArray,
    near_lpl: FloatArray,
    near_upl: FloatArray,
    segment: npt.ArrayLike | None = None,
    direction: int | npt.ArrayLike = 0,
) -> dict[str, np.ndarray]:
    """Apply every rule to points with per-point centre, limits and near-limit band.

    Works for XmR (limits constant per segment) and P/U/P'/U' (limits vary per point) alike.
    Returns plain numpy arrays; missing points get ``relative_to_mean`` 0 and no flag here, and
    the caller masks them to null.
    """
    values = np.asarray(y, dtype=np.float64)
    seg = segment_ids(segment, len(values))
    present = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        outside = present & ((values > upl) | (values < lpl))
        rtm = _int_sign(values - mean)
        close = present & ~outside & ((values < near_lpl) | (values > near_upl))
    shift = _part_of_seven(_one_side_ends(rtm, seg), seg)
    trend = _part_of_seven(_trend_ends(_step_signs(values, seg)) != 0, seg)
    two = _two_in_three(close, rtm, seg) & close
    codes = _codes(values, rtm, outside, trend, two, shift, seg)
    return {
        "present": present,
        "outside_limits": outside,
        "relative_to_mean": rtm,
        "close_to_limits": close,
        "label_code": codes,
        "point_type_code": point_type_codes(codes, direction),
    }
