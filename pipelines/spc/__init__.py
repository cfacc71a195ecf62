"""Statistical process control, NHS "Making Data Count" style, as pure functions.

Reproduces NHSRplotthedots v0.2.2 (XmR charts with its special-cause rules, point types and
icons) and adds P, U and Laney P'/U' charts for proportions and rates. No Dagster in here: the
pipeline calls :func:`spc_by_series` from an asset to build ``fct_spc``.

Decisions worth knowing (each documented where it is made):

- Missing points (None/NaN, or a zero denominator) stay as rows with their segment's limits
  but null flags and labels; they are left out of the mean, no moving range spans them, and
  they break shift/trend/two-of-three runs.
- A segment whose baseline moving ranges are all 0 gets limits on the mean (upstream: NaN).
- ``trial_limits`` is true when a segment's limits rest on fewer than 12 points (upstream's
  short-group warning), so a 12-month baseline is not trial.
- Icons use the last point that has a value (variation) and the last limits (assurance).
"""

from pipelines.spc.constants import (
    D2,
    LIMIT,
    MR_SCREEN,
    NEAR_FRACTION,
    RUN_LENGTH,
    TRIAL_THRESHOLD,
    ImprovementDirection,
)
from pipelines.spc.icons import (
    ASSURANCE_TYPES,
    VARIATION_ICONS,
    assurance_icon,
    assurance_type,
    variation_icon,
    variation_icon_for,
)
from pipelines.spc.laney import laney_p_prime, laney_u_prime, p_chart, u_chart
from pipelines.spc.output import SPC_COLUMNS
from pipelines.spc.rules import POINT_TYPES, SPECIAL_CAUSE_LABELS
from pipelines.spc.series import SERIES_COLUMNS, spc_by_series
from pipelines.spc.xmr import xmr

__all__ = [
    "ASSURANCE_TYPES",
    "D2",
    "LIMIT",
    "MR_SCREEN",
    "NEAR_FRACTION",
    "POINT_TYPES",
    "RUN_LENGTH",
    "SERIES_COLUMNS",
    "SPC_COLUMNS",
    "SPECIAL_CAUSE_LABELS",
    "TRIAL_THRESHOLD",
    "VARIATION_ICONS",
    "ImprovementDirection",
    "assurance_icon",
    "assurance_type",
    "laney_p_prime",
    "laney_u_prime",
    "p_chart",
    "spc_by_series",
    "u_chart",
    "variation_icon",
    "variation_icon_for",
    "xmr",
]
