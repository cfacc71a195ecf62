"""P, U, Laney P' and U' limits against the PowerBI-SPC fixtures (computed in R).

"68/95/99%" limits are the 1/2/3-sigma limits. Each expected list is compared to within half
a unit of the last decimal it is printed with (4 dp for P, 6 for P'/U', 8 for U).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from pipelines.spc import laney_p_prime, laney_u_prime, p_chart, spc_by_series, u_chart

FIXTURES = Path(__file__).parents[1] / "fixtures" / "spc" / "laney"
CHARTS = {"p": p_chart, "pp": laney_p_prime, "u": u_chart, "up": laney_u_prime}
SERIES_CHART = {"p": "p", "pp": "p_prime", "u": "u", "up": "u_prime"}
LIMITS = {"ul99": ("upl", 3), "ul95": ("upl", 2), "ul68": ("upl", 1)} | {
    "ll68": ("lpl", 1),
    "ll95": ("lpl", 2),
    "ll99": ("lpl", 3),
}


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _tolerance(values: list[float]) -> float:
    """Half a unit of the finest decimal place printed in ``values``."""
    places = max(-Decimal(repr(float(v))).as_tuple().exponent for v in values)
    return 0.5 * 10.0**-places * (1 + 1e-9)


def _assert_printed(got: np.ndarray, want: list[float], what: str) -> None:
    np.testing.assert_allclose(got, want, rtol=0, atol=_tolerance(want), err_msg=what)


@pytest.mark.parametrize("name", sorted(CHARTS))
@pytest.mark.parametrize("key", sorted(LIMITS))
def test_limits(name: str, key: str) -> None:
    data = _load(name)
    column, sigma = LIMITS[key]
    result = CHARTS[name](data["inputs"]["numerators"], data["inputs"]["denominators"], sigma=sigma)
    _assert_printed(result[column].to_numpy(), data["expected"][key], f"{name} {key}")


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_centre_line_and_values(name: str) -> None:
    data = _load(name)
    result = CHARTS[name](data["inputs"]["numerators"], data["inputs"]["denominators"])
    _assert_printed(result["mean"].to_numpy(), data["expected"]["targets"], f"{name} centre")
    _assert_printed(result["y"].to_numpy(), data["expected"]["values"], f"{name} values")


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_spc_by_series_gives_the_same_limits(name: str) -> None:
    data = _load(name)
    frame = pl.DataFrame(
        {
            "key": data["inputs"]["keys"],
            "num": data["inputs"]["numerators"],
            "den": data["inputs"]["denominators"],
        }
    ).with_row_index("t")
    result = spc_by_series(
        frame, [], "t", numerator_col="num", denominator_col="den", chart=SERIES_CHART[name]
    )
    _assert_printed(result["upl"].to_numpy(), data["expected"]["ul99"], f"{name} ul99")
    _assert_printed(result["lpl"].to_numpy(), data["expected"]["ll99"], f"{name} ll99")


def test_prime_limits_do_not_depend_on_the_variance_model() -> None:
    """sigma_i x sigma_z cancels the binomial/Poisson constant: P' and U' limits coincide."""
    data = _load("pp")
    args = (data["inputs"]["numerators"], data["inputs"]["denominators"])
    pp, up = laney_p_prime(*args), laney_u_prime(*args)
    np.testing.assert_allclose(pp["upl"].to_numpy(), up["upl"].to_numpy(), rtol=1e-12)
    assert pp["sigma_z"][0] != up["sigma_z"][0]


def test_sigma_z_widens_overdispersed_limits() -> None:
    """With huge denominators a P chart over-signals; P' widens the limits by sigma-z > 1."""
    data = _load("pp")
    args = (data["inputs"]["numerators"], data["inputs"]["denominators"])
    plain, prime = p_chart(*args), laney_p_prime(*args)
    sigma_z = prime["sigma_z"][0]
    assert sigma_z > 1
    assert (prime["sigma_z"] == sigma_z).all()
    np.testing.assert_allclose(
        (prime["upl"] - prime["mean"]).to_numpy(),
        sigma_z * (plain["upl"] - plain["mean"]).to_numpy(),
        rtol=1e-12,
    )
    assert plain["special_cause_flag"].sum() > prime["special_cause_flag"].sum()


def test_multiplier_scales_values_and_limits() -> None:
    data = _load("u")
    args = (data["inputs"]["numerators"], data["inputs"]["denominators"])
    base, per_10k = u_chart(*args), u_chart(*args, multiplier=10_000)
    for column in ("y", "mean", "lpl", "upl"):
        np.testing.assert_allclose(per_10k[column], base[column] * 10_000, rtol=1e-12)
    assert per_10k["point_type"].equals(base["point_type"])


def test_p_limits_are_clipped_to_zero_and_one() -> None:
    result = p_chart([0, 1, 0, 9, 10], [10, 10, 10, 10, 10])
    assert result["lpl"].min() >= 0
    assert result["upl"].max() <= 1
