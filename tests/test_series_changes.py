"""Which changes apply to which series, where they cut it and which points fix each
segment's limits (docs/programme-impact.md sections 1 and 3), at unit level: the
applicability table scope by level, and the baseline rules on hand-made series."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from pipelines.defs.spc import MeasureSpc, measure_series_changes, spc_for_measure
from pipelines.impact.changes import changes_for_series

# level, tier, series_key, org, sector, icb
SERIES = [
    ("organisation", "internal", "A1", "A1", "acute_trust", "X1"),
    ("organisation", "internal", "C1", "C1", "care_home", "X1"),
    ("organisation", "internal", "B1", "B1", "acute_trust", "X2"),
    ("sector", "internal", "X1|acute_trust", None, "acute_trust", "X1"),
    ("sector", "internal", "X1|care_home", None, "care_home", "X1"),
    ("sector", "internal", "X2|acute_trust", None, "acute_trust", "X2"),
    ("icb", "internal", "X1", None, None, "X1"),
    ("icb", "internal", "X2", None, None, "X2"),
    ("region", "internal", "region", None, None, None),
    ("sector", "public", "X1|acute_trust", None, "acute_trust", "X1"),
    ("sector", "public", "X2|acute_trust", None, "acute_trust", "X2"),
    ("icb", "public", "X1", None, None, "X1"),
    ("region", "public", "region", None, None, None),
]


def _series(measure: str = "NEWS2", programme: str = "deterioration") -> pl.DataFrame:
    return pl.DataFrame(
        SERIES,
        schema=["level", "tier", "series_key", "org_code", "sector_code", "icb_code"],
        orient="row",
    ).with_columns(measure_code=pl.lit(measure), programme_code=pl.lit(programme))


def _change(scope: str, scope_code: str | None, **fields) -> pl.DataFrame:
    row = {
        "change_id": "CHG-1",
        "change_date": date(2024, 4, 1),
        "change_month": date(2024, 4, 1),
        "programme_code": None,
        "measure_code": None,
        "scope": scope,
        "scope_code": scope_code,
        "kind": "definition_change",
        "rebase": True,
        "description": "A change",
        **fields,
    }
    return pl.DataFrame([row])


ALL_PUBLIC = {
    ("sector", "public", "X1|acute_trust"),
    ("sector", "public", "X2|acute_trust"),
    ("icb", "public", "X1"),
    ("region", "public", "region"),
}


@pytest.mark.parametrize(
    ("scope", "code", "expected"),
    [
        ("region", None, {(s[0], s[1], s[2]) for s in SERIES}),
        (
            "icb",
            "X1",
            {
                ("organisation", "internal", "A1"),
                ("organisation", "internal", "C1"),
                ("sector", "internal", "X1|acute_trust"),
                ("sector", "internal", "X1|care_home"),
                ("icb", "internal", "X1"),
                ("sector", "public", "X1|acute_trust"),
                ("icb", "public", "X1"),
            },
        ),
        (
            "sector",
            "acute_trust",
            {
                ("organisation", "internal", "A1"),
                ("organisation", "internal", "B1"),
                ("sector", "internal", "X1|acute_trust"),
                ("sector", "internal", "X2|acute_trust"),
                ("sector", "public", "X1|acute_trust"),
                ("sector", "public", "X2|acute_trust"),
            },
        ),
        ("organisation", "A1", {("organisation", "internal", "A1")}),
        ("organisation", "ZZZ", set()),
    ],
)
def test_a_change_applies_to_the_series_inside_its_scope(scope, code, expected):
    found = changes_for_series(_series(), _change(scope, code))
    assert set(found.select("level", "tier", "series_key").iter_rows()) == expected
    assert found["rebase"].to_list() == [True] * len(expected)


def test_a_change_names_a_measure_a_programme_or_neither():
    series = pl.concat([_series(), _series("FALLS", "local")])
    by_measure = changes_for_series(series, _change("region", None, measure_code="FALLS"))
    assert set(by_measure["measure_code"]) == {"FALLS"}
    by_programme = changes_for_series(series, _change("region", None, programme_code="local"))
    assert set(by_programme["measure_code"]) == {"FALLS"}
    every = changes_for_series(series, _change("region", None))
    assert set(every["measure_code"]) == {"FALLS", "NEWS2"}
    assert changes_for_series(series, _change("region", None, measure_code="OTHER")).is_empty()


def test_an_organisation_change_never_reaches_a_public_series():
    public_only = _series().filter(pl.col("tier") == "public")
    assert changes_for_series(public_only, _change("organisation", "A1")).is_empty()


# -- segments and baselines ---------------------------------------------------------------

MONTHS = [date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(20)]  # 2023-04..
NOISE = np.random.default_rng(7).normal(0, 2, len(MONTHS))
WINDOW = {"baseline_from": date(2023, 4, 1), "baseline_to": date(2024, 3, 1)}


def _facts(months: list[date] = MONTHS) -> pl.DataFrame:
    """One organisation's series (and its region series), P' with a constant denominator."""
    numerators = [round(float(60 + NOISE[i % len(NOISE)]) * 100) for i in range(len(months))]
    rows = [
        (level, "internal", key, org, "acute_trust", icb, "deterioration", "NEWS2", m, n, 10_000)
        for level, key, org, icb in (
            ("organisation", "A1", "A1", "X1"),
            ("region", "region", None, None),
        )
        for m, n in zip(months, numerators, strict=True)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "level": pl.String,
            "tier": pl.String,
            "series_key": pl.String,
            "org_code": pl.String,
            "sector_code": pl.String,
            "icb_code": pl.String,
            "programme_code": pl.String,
            "measure_code": pl.String,
            "period": pl.Date,
            "numerator": pl.Int64,
            "denominator": pl.Int64,
        },
        orient="row",
    ).with_columns(
        organisations_reporting=pl.lit(None, pl.Int64),
        value=pl.col("numerator") * 100 / pl.col("denominator"),
        is_suppressed=pl.lit(False),
    )


def _spc(facts: pl.DataFrame, changes: pl.DataFrame | None = None, **baseline) -> pl.DataFrame:
    measure = MeasureSpc("NEWS2", "p_prime", "increase", 100.0, None, **baseline)
    registers = {"internal": changes if changes is not None else _change("region", None)[:0]}
    return spc_for_measure(facts, measure, registers).filter(pl.col("level") == "organisation")


def test_the_window_fixes_segment_0_on_its_months():
    spc = _spc(_facts(), **WINDOW)
    assert spc["segment"].unique().to_list() == [0]
    assert spc["segment_start"].unique().to_list() == [MONTHS[0]]
    assert spc["in_baseline"].to_list() == [True] * 12 + [False] * 8
    assert spc["limits_basis"].unique().to_list() == ["baseline_window"]
    assert spc["trial_limits"].unique().to_list() == [False]  # 12 points: firm limits
    fixed = spc.filter(pl.col("in_baseline"))
    expected = fixed["numerator"].sum() * 100 / fixed["denominator"].sum()
    assert spc["centre"].unique().to_list() == [pytest.approx(expected)]


def test_a_rebase_inside_the_window_cuts_it_and_the_window_stays_with_segment_0():
    cut = MONTHS[6]  # 2023-10, inside the window
    spc = _spc(_facts(), _change("organisation", "A1", change_month=cut), **WINDOW)
    assert spc["segment"].to_list() == [0] * 6 + [1] * 14
    assert spc["segment_start"].to_list() == [MONTHS[0]] * 6 + [cut] * 14
    # Segment 0: its window points (all 6); segment 1: no window, so all its points.
    assert spc["in_baseline"].to_list() == [True] * 20
    assert spc["limits_basis"].to_list() == ["baseline_window"] * 6 + ["all_points"] * 14
    centres = spc.group_by("segment").agg(pl.col("centre").n_unique())
    assert centres["centre"].to_list() == [1, 1]


def test_baseline_months_fix_every_segment_on_its_first_points():
    spc = _spc(_facts(), _change("organisation", "A1", change_month=MONTHS[5]), baseline_months=12)
    assert spc["limits_basis"].unique().sort().to_list() == ["first_n_points"]
    # Segment 0 has 5 points (all in its baseline); segment 1 its first 12 of 15.
    assert spc["in_baseline"].to_list() == [True] * 5 + [True] * 12 + [False] * 3


def test_a_series_after_the_window_rests_on_all_its_points():
    late = [date(2024, 4 + i, 1) for i in range(6)]
    spc = _spc(_facts(late), **WINDOW)
    assert spc["limits_basis"].unique().to_list() == ["all_points"]
    assert spc["in_baseline"].all()


def test_a_change_on_the_first_point_or_outside_the_series_cuts_nothing():
    changes = pl.concat(
        [
            _change("region", None, change_id="FIRST", change_month=MONTHS[0]),
            _change("region", None, change_id="LATER", change_month=date(2030, 1, 1)),
            _change("region", None, change_id="EARLIER", change_month=date(2020, 1, 1)),
            _change("region", None, change_id="HUDDLE", change_month=MONTHS[8], rebase=False),
        ]
    )
    spc = _spc(_facts(), changes, **WINDOW)
    assert spc["segment"].unique().to_list() == [0]
    recorded = measure_series_changes(_facts(), {"internal": changes})
    # Recorded where the span holds the month: the first point's change and the huddles.
    assert sorted(recorded.select("series_key", "change_id", "rebases").iter_rows()) == [
        ("A1", "FIRST", False),
        ("A1", "HUDDLE", False),
        ("region", "FIRST", False),
        ("region", "HUDDLE", False),
    ]


def test_a_gap_at_the_change_month_moves_the_cut_to_the_next_point():
    months = MONTHS[:8] + MONTHS[10:]
    spc = _spc(_facts(months), _change("organisation", "A1", change_month=MONTHS[8]))
    assert spc.filter(pl.col("segment") == 1)["segment_start"][0] == MONTHS[10]
