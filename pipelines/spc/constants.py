"""Method constants of NHS "Making Data Count" SPC, as used by NHSRplotthedots v0.2.2.

Kept in one place so that every chart (XmR, P, U, P', U') and every test reads the same
numbers; changing one here changes the method everywhere.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

#: XmR process limits sit at mean +/- LIMIT x mean moving range (3 / d2, rounded as upstream).
LIMIT: Final[float] = 2.66
#: Two thirds of the process limit: the "near the limit" (2-sigma) band of the 2-of-3 rule.
NEAR_FRACTION: Final[float] = 2 / 3
#: Moving ranges at or above MR_SCREEN x mean moving range are excluded (Nelson 1982 screen).
MR_SCREEN: Final[float] = 3.267
#: d2 bias constant for moving ranges of two points (sigma = mean MR / D2); used by Laney charts.
D2: Final[float] = 1.128
#: Length of a shift run (points one side of the mean) and of a trend run (points rising/falling).
RUN_LENGTH: Final[int] = 7
#: Segments whose limits rest on fewer non-null points than this are reported as trial limits:
#: NHSRplotthedots' short-group warning (n < 12), so a 12-month baseline gives firm limits.
TRIAL_THRESHOLD: Final[int] = 12
#: Smallest baseline allowed for ``fix_after_n_points`` (upstream refuses fewer).
MIN_FIX_AFTER_N_POINTS: Final[int] = 12
#: Default limit width, in sigmas.
DEFAULT_SIGMA: Final[float] = 3.0

#: The charts a measure can have (the catalogue's ``spc_chart``). dbt's accepted_values tests
#: on ``spc_chart`` / ``chart`` and its ``is_count_chart`` macro repeat this list in SQL and
#: YAML; tests/test_rule_homes.py fails when they drift apart.
Chart = Literal["xmr", "p", "u", "p_prime", "u_prime"]
CHARTS: Final[tuple[Chart, ...]] = get_args(Chart)
#: Charts of counts (numerator over denominator): P, U, P', U'. Their events avoided or added
#: are computed (docs/programme-impact.md §4); XmR charts values alone.
COUNT_CHARTS: Final[frozenset[str]] = frozenset(CHARTS) - {"xmr"}

ImprovementDirection = Literal["increase", "decrease", "neutral"]

DIRECTION_SIGN: Final[dict[str, int]] = {"increase": 1, "decrease": -1, "neutral": 0}
#: The catalogue's wording (``dim_measure.improvement_direction``) -> the SPC wording, which
#: ``fct_spc``, ``fct_programme_impact`` and everything downstream of them use.
DIRECTION_FROM_CATALOGUE: Final[dict[str, ImprovementDirection]] = {
    "higher": "increase",
    "lower": "decrease",
    "neutral": "neutral",
}


def catalogue_direction(value: object, measure_code: str) -> ImprovementDirection:
    """The SPC wording of a measure's catalogue ``improvement_direction``, refusing anything
    else with the measure and the value named: an unknown value silently read as neutral would
    grey out every signal of that measure."""
    if isinstance(value, str) and value in DIRECTION_FROM_CATALOGUE:
        return DIRECTION_FROM_CATALOGUE[value]
    raise ValueError(
        f"measure {measure_code}: improvement_direction {value!r} is not one of "
        f"{', '.join(DIRECTION_FROM_CATALOGUE)}"
    )


def check_chart(value: object, measure_code: str) -> Chart:
    """A measure's ``spc_chart``, refusing anything not in :data:`CHARTS` with the measure
    and the value named."""
    for chart in CHARTS:
        if value == chart:
            return chart
    raise ValueError(
        f"measure {measure_code}: spc_chart {value!r} is not one of {', '.join(CHARTS)}"
    )


def direction_sign(improvement_direction: str) -> int:
    """Map an improvement direction to +1 / -1 / 0, refusing anything else.

    A typo here would silently turn every signal "neutral", so it is an error instead.
    """
    try:
        return DIRECTION_SIGN[improvement_direction]
    except (KeyError, TypeError):
        raise ValueError(
            "improvement_direction must be one of 'increase', 'decrease', 'neutral'; "
            f"got {improvement_direction!r}"
        ) from None


def xmr_limit(sigma: float = DEFAULT_SIGMA) -> float:
    """Multiplier of the mean moving range for an XmR limit at ``sigma`` sigmas (2.66 at 3)."""
    return LIMIT * (sigma / 3.0)


def validate_sigma(sigma: float) -> float:
    """Refuse a non-positive or non-finite limit width: it would make every point a signal."""
    value = float(sigma)
    if not (value > 0 and value != float("inf")):
        raise ValueError(f"sigma must be a positive finite number; got {sigma!r}")
    return value


def validate_fix_after(fix_after_n_points: int | None) -> int | None:
    """Check ``fix_after_n_points`` as upstream does (a single whole number >= 12)."""
    if fix_after_n_points is None:
        return None
    if isinstance(fix_after_n_points, bool) or not isinstance(fix_after_n_points, int):
        raise ValueError(
            "fix_after_n_points must be a single whole number greater than or equal to "
            f"{MIN_FIX_AFTER_N_POINTS}; got {fix_after_n_points!r}"
        )
    if fix_after_n_points < MIN_FIX_AFTER_N_POINTS:
        raise ValueError(
            "fix_after_n_points must be a single whole number greater than or equal to "
            f"{MIN_FIX_AFTER_N_POINTS}; got {fix_after_n_points}"
        )
    return fix_after_n_points
