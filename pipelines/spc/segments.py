"""Flat layout of many series in one array, cut into independently analysed segments.

A segment is one series between rebases. Keeping every segment of every series in one flat,
sorted numpy array lets the whole ``fct_spc`` table be computed with a handful of vectorised
passes instead of a Python loop per series; every rule and limit below is segment-aware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Segments:
    """Segment membership of each point of a flat, ordered array of points.

    ``ids`` is the global segment number of each point (non-decreasing, every segment
    contiguous), ``position`` the 0-based place of the point inside its segment and ``local``
    the segment number inside its own series (0 before the first rebase), which is what a
    reader of one series expects to see.
    """

    ids: IntArray
    count: int
    position: IntArray
    local: IntArray

    @classmethod
    def build(
        cls,
        n: int,
        series_start: BoolArray | None = None,
        rebase: BoolArray | None = None,
    ) -> Segments:
        """Cut ``n`` ordered points into segments.

        ``series_start`` marks the first point of each series (point 0 always starts one);
        ``rebase`` marks points that start a new segment inside a series. A rebase on the
        first point of a series is a no-op, so every series has a segment 0.
        """
        idx = np.arange(n, dtype=np.int64)
        starts = np.zeros(n, dtype=bool)
        if n:
            starts[0] = True
        if series_start is not None:
            starts |= np.asarray(series_start, dtype=bool)
        rebase_inside = (
            np.zeros(n, dtype=bool) if rebase is None else np.asarray(rebase, dtype=bool) & ~starts
        )
        seg_starts = starts | rebase_inside
        ids = np.cumsum(seg_starts, dtype=np.int64) - 1
        position = idx - np.maximum.accumulate(np.where(seg_starts, idx, 0))
        rebase_count = np.cumsum(rebase_inside, dtype=np.int64)
        series_first = np.maximum.accumulate(np.where(starts, idx, 0))
        local = rebase_count - rebase_count[series_first] if n else rebase_count
        return cls(ids=ids, count=int(ids[-1]) + 1 if n else 0, position=position, local=local)

    @classmethod
    def single(cls, n: int) -> Segments:
        """One segment holding all ``n`` points."""
        return cls.build(n)

    def same_as_previous(self) -> BoolArray:
        """True where a point is in the same segment as the point before it."""
        same = np.zeros(len(self.ids), dtype=bool)
        same[1:] = self.ids[1:] == self.ids[:-1]
        return same

    def sum(self, values: FloatArray, where: BoolArray) -> FloatArray:
        """Per-segment sum of ``values`` over the points selected by ``where``."""
        weights = np.where(where, values, 0.0)
        return np.bincount(self.ids, weights=weights, minlength=self.count).astype(np.float64)

    def count_where(self, where: BoolArray) -> IntArray:
        """Per-segment number of points selected by ``where``."""
        return np.bincount(self.ids, weights=where.astype(np.float64), minlength=self.count).astype(
            np.int64
        )

    def mean(self, values: FloatArray, where: BoolArray) -> FloatArray:
        """Per-segment mean of ``values`` over ``where`` (NaN for a segment with no point)."""
        total = self.sum(values, where)
        count = self.count_where(where)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)


#: How a segment's limits were fixed (``BaselinePoints.basis`` codes index this): on the
#: points a caller's baseline mask gave, on the first n points, or on all points.
LIMITS_BASIS: tuple[str, ...] = ("given_points", "first_n_points", "all_points")


@dataclass(frozen=True)
class BaselinePoints:
    """The points each segment's limits rest on, and how they were chosen.

    ``mask`` is per point; ``basis`` per segment (an index into :data:`LIMITS_BASIS`).
    """

    mask: BoolArray
    basis: IntArray


def baseline_points(
    present: BoolArray,
    segments: Segments,
    fix_after: int | None = None,
    given: BoolArray | None = None,
) -> BaselinePoints:
    """The baseline of every segment: its present points that ``given`` marks, if it marks
    any; else its first ``fix_after`` points (NHSRplotthedots' ``fix_after_n_points``,
    counted from the segment's first row); else all its present points.

    One rule for XmR and Laney charts, so a caller's baseline (a fixed window of months,
    docs/programme-impact.md section 3) reaches every chart the same way, and with no
    ``given`` mask the result is exactly the upstream ``fix_after_n_points`` behaviour.
    """
    fallback = present if fix_after is None else present & (segments.position < fix_after)
    fallback_basis = np.full(segments.count, 2 if fix_after is None else 1, dtype=np.int64)
    if given is None:
        return BaselinePoints(fallback, fallback_basis)
    chosen = present & np.asarray(given, dtype=bool)
    has_given = segments.count_where(chosen) > 0
    mask = np.where(has_given[segments.ids], chosen, fallback)
    return BaselinePoints(mask, np.where(has_given, 0, fallback_basis))


def segment_ids(segment: npt.ArrayLike | None, n: int) -> IntArray:
    """Normalise an optional per-point segment labelling to contiguous integer ids.

    Rule functions accept ``segment=None`` (one segment) so that they can be called on a single
    series exactly like the upstream R helpers; any change of label starts a new segment.
    """
    if segment is None:
        return np.zeros(n, dtype=np.int64)
    labels = np.asarray(segment)
    if labels.shape != (n,):
        raise ValueError(f"segment must have one label per point ({n}); got shape {labels.shape}")
    change = np.zeros(n, dtype=bool)
    change[1:] = labels[1:] != labels[:-1]
    return np.cumsum(change, dtype=np.int64)


def run_position(new_run: BoolArray) -> IntArray:
    """0-based position of each point inside its run, given where runs start."""
    idx = np.arange(len(new_run), dtype=np.int64)
    return idx - np.maximum.accumulate(np.where(new_run, idx, 0))
