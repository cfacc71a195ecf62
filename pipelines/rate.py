"""A measure's value from its counts: numerator x multiplier / denominator, and no value
(null / NaN) when the denominator is not positive. Roll-ups sum the counts first and call
this on the sums: rates are never averaged.

This is the Python home of the rule; dbt's ``rate()`` macro (``dbt_project/macros/rate.sql``)
is its SQL twin, which every dbt model that computes a value calls. tests/test_rule_homes.py
runs both on the same rows and fails if they ever give different values.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl


def rate(
    numerators: npt.ArrayLike, denominators: npt.ArrayLike, multiplier: npt.ArrayLike = 1.0
) -> npt.NDArray[np.float64]:
    """Per element, ``numerator * multiplier / denominator``; NaN where the denominator is
    zero, negative or missing (``multiplier`` a number or one per element)."""
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    mult = np.asarray(multiplier, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = den > 0
        return np.where(positive, num * mult / np.where(positive, den, 1.0), np.nan)


def rate_expr(numerator: pl.Expr, denominator: pl.Expr, multiplier: pl.Expr) -> pl.Expr:
    """The same rule as a polars expression: null where the denominator is not positive."""
    return pl.when(denominator > 0).then(numerator.cast(pl.Float64) * multiplier / denominator)
