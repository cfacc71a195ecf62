"""Which recorded changes apply to which series, where they cut it, and which points fix
each segment's limits: the rules of docs/programme-impact.md sections 1 and 3, each in one
function so ``fct_spc``, the impact marts and the tests share them.

Everything works on polars frames of a whole measure's series at once (every level, both
tiers), the way ``fct_spc`` computes SPC: no loop per series.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

#: The columns that identify a series in ``fct_spc``.
SERIES_KEY: tuple[str, ...] = ("level", "tier", "series_key", "measure_code")
#: What a series must carry for :func:`changes_for_series` to place it.
SERIES_PLACE: tuple[str, ...] = ("programme_code", "org_code", "sector_code", "icb_code")
#: ``dim_change`` / ``pub_change`` columns the rules read.
CHANGE_COLUMNS: tuple[str, ...] = (
    "change_id",
    "change_month",
    "programme_code",
    "measure_code",
    "scope",
    "scope_code",
    "kind",
    "rebase",
)
#: ``marts.fct_series_change`` / ``public.pub_series_change`` (docs/programme-impact.md §3).
SERIES_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "level": pl.String(),
    "tier": pl.String(),
    "series_key": pl.String(),
    "measure_code": pl.String(),
    "change_id": pl.String(),
    "change_month": pl.Date(),
    "kind": pl.String(),
    "rebases": pl.Boolean(),
}


def applies() -> pl.Expr:
    """True where the change (columns suffixed ``_change``) applies to the series: the
    applicability table of docs/programme-impact.md section 1, as one expression.

    ======================  ============  ============  ======  ======
    scope                   organisation  sector        ICB     region
    ======================  ============  ============  ======  ======
    region                  all           all           all     yes
    icb X                   in ICB X      of ICB X      X       no
    sector S                of sector S   S, any ICB    no      no
    organisation O          O only        no            no      no
    ======================  ============  ============  ======  ======

    A change names a measure, or a programme (every measure of it), or neither (every
    measure). Organisation-scoped changes never reach a public series.
    """
    level, scope, code = pl.col("level"), pl.col("scope"), pl.col("scope_code")
    measure = pl.col("measure_code_change").is_null() | (
        pl.col("measure_code_change") == pl.col("measure_code")
    )
    programme = pl.col("programme_code_change").is_null() | (
        pl.col("programme_code_change") == pl.col("programme_code")
    )
    place = (
        (scope == "region")
        | (
            (scope == "icb")
            & level.is_in(["organisation", "sector", "icb"])
            & (pl.col("icb_code") == code)
        )
        | (
            (scope == "sector")
            & level.is_in(["organisation", "sector"])
            & (pl.col("sector_code") == code)
        )
        | (
            (scope == "organisation")
            & (level == "organisation")
            & (pl.col("tier") == "internal")
            & (pl.col("org_code") == code)
        )
    )
    return (measure & programme & place).fill_null(False)


def changes_for_series(series: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Every (series, change) pair where the change applies to the series.

    ``series``: one row per series (:data:`SERIES_KEY` and :data:`SERIES_PLACE`);
    ``changes``: rows of ``marts.dim_change`` (internal series) or ``public.pub_change``
    (public series). Returns the series key with ``change_id, change_month, kind, rebase``,
    whatever the series' span (see :func:`series_changes` for the span).
    """
    out = {
        **{c: pl.String() for c in SERIES_KEY},
        "change_id": pl.String(),
        "change_month": pl.Date(),
        "kind": pl.String(),
        "rebase": pl.Boolean(),
    }
    if series.is_empty() or changes.is_empty():
        return pl.DataFrame(schema=out)
    candidates = series.select(*SERIES_KEY, *SERIES_PLACE).join(
        changes.select(CHANGE_COLUMNS).rename(
            {"programme_code": "programme_code_change", "measure_code": "measure_code_change"}
        ),
        how="cross",
    )
    return candidates.filter(applies()).select(list(out)).cast(out)  # type: ignore[arg-type]


def series_places(facts: pl.DataFrame) -> pl.DataFrame:
    """One row per series with its span and place (the codes of its latest row: an
    organisation that moved ICB is placed where it is now)."""
    return facts.group_by(list(SERIES_KEY)).agg(
        pl.col("period").min().alias("first_period"),
        pl.col("period").max().alias("last_period"),
        *(pl.col(c).sort_by("period").last() for c in SERIES_PLACE),
    )


def series_changes(places: pl.DataFrame, applicable: pl.DataFrame) -> pl.DataFrame:
    """``fct_series_change`` rows: the applicable changes whose month lies within the
    series' span, ``rebases`` true when the change cuts a segment (rebase true and its month
    after the series' first point: a cut on the first point cuts nothing)."""
    spanned = applicable.join(places, on=list(SERIES_KEY)).filter(
        pl.col("change_month").is_between(pl.col("first_period"), pl.col("last_period"))
    )
    return (
        spanned.with_columns(
            rebases=pl.col("rebase") & (pl.col("change_month") > pl.col("first_period"))
        )
        .select(list(SERIES_CHANGE_SCHEMA))
        .cast(SERIES_CHANGE_SCHEMA)  # type: ignore[arg-type]
        .sort(*SERIES_KEY, "change_month", "change_id")
    )


def rebase_points(facts: pl.DataFrame, cuts: pl.DataFrame) -> pl.Series:
    """Boolean per fact row: the row starts a new segment (its series' first point on or
    after the month of a change that cuts it; a gap in the series moves the cut to the next
    point with a row). ``cuts``: series key and ``change_month`` of cutting changes."""
    if cuts.is_empty():
        return pl.Series("rebase", [False] * facts.height, dtype=pl.Boolean)
    starts = (
        facts.select(*SERIES_KEY, "period")
        .join(cuts.select(*SERIES_KEY, "change_month").unique(), on=list(SERIES_KEY))
        .filter(pl.col("period") >= pl.col("change_month"))
        .group_by(*SERIES_KEY, "change_month")
        .agg(pl.col("period").min())
        .select(*SERIES_KEY, "period")
        .unique()
        .with_columns(rebase=pl.lit(True))
    )
    return (
        facts.select(*SERIES_KEY, "period")
        .join(starts, on=[*SERIES_KEY, "period"], how="left", maintain_order="left")
        .get_column("rebase")
        .fill_null(False)
    )


def baseline_window_mask(
    facts: pl.DataFrame,
    rebase: pl.Series,
    baseline_from: date | None,
    baseline_to: date | None,
    series_cols: Sequence[str] = SERIES_KEY,
) -> pl.Series:
    """Boolean per fact row: the point is in the measure's baseline window *and* in its
    series' first segment (docs/programme-impact.md section 3: the window is the period
    before the programme, so it belongs to segment 0 only; a later segment has no earlier
    months to compare with and falls back to ``baseline_months`` or all its points).

    ``rebase`` is :func:`rebase_points` for the same rows. No window: all false.
    """
    if baseline_from is None or baseline_to is None:
        return pl.Series("in_window", [False] * facts.height, dtype=pl.Boolean)
    frame = facts.select(*series_cols, "period").with_columns(rebase=rebase)
    first_cut = (
        frame.filter(pl.col("rebase"))
        .group_by(list(series_cols))
        .agg(pl.col("period").min().alias("first_cut"))
    )
    return (
        frame.join(first_cut, on=list(series_cols), how="left", maintain_order="left")
        .select(
            (
                pl.col("period").is_between(pl.lit(baseline_from), pl.lit(baseline_to))
                & (pl.col("first_cut").is_null() | (pl.col("period") < pl.col("first_cut")))
            ).alias("in_window")
        )
        .get_column("in_window")
    )
