"""Conversion and checking of caller inputs (values, rebase positions).

Bad input should fail loudly with a message naming the problem, not surface later as a wrong
limit: infinities and non-numbers are refused; None/NaN are accepted as missing points.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import polars as pl

from pipelines.spc.segments import BoolArray, FloatArray


def as_float_array(values: npt.ArrayLike | pl.Series, name: str = "values") -> FloatArray:
    """Values as a 1-D float array with missing points (None, NaN, null) as NaN."""
    if isinstance(values, pl.Series):
        try:
            values = values.cast(pl.Float64).to_numpy()
        except pl.exceptions.PolarsError as exc:
            raise ValueError(f"{name} must be numeric; got dtype {values.dtype}") from exc
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers (None/NaN for missing points): {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values; use None/NaN for a missing point")
    return arr


def rebase_flags(rebase_at: Iterable[int], n: int) -> BoolArray:
    """Mark the 0-based positions where a new segment (rebase) starts.

    Position 0 is allowed and changes nothing (the first segment always starts there).
    """
    flags = np.zeros(n, dtype=bool)
    for position in rebase_at:
        if isinstance(position, bool) or not isinstance(position, int | np.integer):
            raise ValueError(f"rebase_at must hold whole-number positions; got {position!r}")
        if not 0 <= position < n:
            raise ValueError(f"rebase_at position {position} is outside the series (0..{n - 1})")
        flags[position] = True
    return flags
