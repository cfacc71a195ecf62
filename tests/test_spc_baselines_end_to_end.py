"""NHSRplotthedots' fixed-baseline and rebased limits, reproduced through the pipeline:
returns land, are ingested, dbt builds the marts and the register, and ``fct_spc`` charts
them (the done-when of issue 13, docs/programme-impact.md sections 2 and 3).

No catalogue measure uses an XmR chart, but a Laney P' chart with a constant denominator D
is an XmR chart of p: sigma_i = sqrt(c(1-c)/D) is the same at every point, so the z-scores
are (p - c) / sigma_i, sigma_z = mean moving range of p / (1.128 sigma_i), and the limits
c +/- 3 sigma_i sigma_z = c +/- (3 / 1.128) x mean moving range of p. Two differences from
XmR remain, both bounded here:

- the factor: 3 / 1.128 = 2.65957 against NHSRplotthedots' 2.66, a difference of
  0.00043 x mR-bar (mR-bar is at most 1.32 on these series: < 0.0006);
- the screen: XmR drops moving ranges >= 3.267 x mR-bar before recomputing it, Laney
  charts do not; on rnorm20 the largest moving range is 2.04 x mR-bar of its segment
  (1.70 x on the first 12 points), so nothing is screened and it makes no difference.

The series: rnorm20 (seed 123) + 50, as monthly returns of one acute trust, 2023-04 to
2024-11, NEWS2_ON_TIME with D = 1,000,000 observation sets and numerator
round((y + 50) / 100 x D): value = y + 50 to within 0.00005. The catalogue's baseline
window (2023-04 to 2024-03) is the first 12 points, so with no recorded change the limits
are NHSRplotthedots' ``fix_after_n_points = 12`` (r6); with a definition change in 2024-02
(row 11) segment 0 lies inside the window and rests on all its points, segment 1 (after
the change: no window) on all of its own, which is ``rebase`` at row 11 (r5).
With one trust reporting, its sector, ICB and region series are the same series.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from conftest import FIXTURES, point_settings_at, run_full_pipeline
from pipelines.settings import load_settings

ORACLE = FIXTURES / "spc" / "nhsrplotthedots"
SNAPSHOTS = ORACLE / "expected_from_snapshots.json"
TRUST, ICB, SECTOR = "RTD", "QHM", "acute_trust"
MEASURE = "NEWS2_ON_TIME"
D = 1_000_000
SHIFT = 50.0
MONTHS = [date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(20)]
# 2 x 0.00043 x 1.32 (the 2.66 against 3 / 1.128 factor) + rounding to 1 in a million.
TOLERANCE = 2e-3
HEADER = (
    "change_id,change_date,programme_code,measure_code,scope,scope_code,kind,rebase,description\n"
)

# Full pipeline runs per scenario: end to end.
pytestmark = pytest.mark.e2e
SCENARIOS = {
    "fixed_baseline": ("r6_rnorm20_fix_after_12.csv", ""),
    "rebased": (
        "r5_rnorm20_rebase_at_row11.csv",
        f"CHG-R5,2024-02-01,,{MEASURE},region,,definition_change,,Audit now counts every "
        "observation set\n",
    ),
}


def _write_returns(landing: Path) -> None:
    y = pl.read_csv(ORACLE / "input_rnorm20_seed123.csv")["y"].to_list()
    assert len(y) == len(MONTHS)
    for month, value in zip(MONTHS, y, strict=True):
        numerator = round((value + SHIFT) / 100 * D)
        (landing / f"{TRUST}_{month:%Y-%m}.csv").write_text(
            "org_code,period,measure_code,numerator,denominator\n"
            f"{TRUST},{month:%Y-%m},{MEASURE},{numerator},{D}\n"
        )


@pytest.fixture(scope="module", params=list(SCENARIOS))
def charted(request, tmp_path_factory):
    """One full pipeline run per scenario on the trust's 20 returns; yields (scenario,
    fct_spc rows of the measure, fct_series_change rows)."""
    scenario = request.param
    root = tmp_path_factory.mktemp(scenario)
    register = root / "change_register.csv"
    register.write_text(HEADER + SCENARIOS[scenario][1])
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        mp.setenv("SAFETY_OBS_CHANGE_REGISTER", str(register))
        mp.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", "")
        (root / "landing").mkdir()
        _write_returns(root / "landing")
        result = run_full_pipeline(dg.DagsterInstance.ephemeral(), months=(MONTHS[0], MONTHS[-1]))
        settings = load_settings()
        with duckdb.connect(str(settings.working_db), read_only=True) as con:
            spc = con.execute(
                "select * from marts.spc_points where measure_code = ?"
                " order by level, tier, period",
                [MEASURE],
            ).pl()
            changes = con.execute("select * from marts.spc_series_changes").pl()
        published = {}
        for tier, path in (
            ("internal", settings.published_current / "warehouse.duckdb"),
            ("public", settings.published_current / "public" / "warehouse.duckdb"),
        ):
            if path.exists():
                with duckdb.connect(str(path), read_only=True) as con:
                    published[tier] = {name for (name,) in con.execute("show tables").fetchall()}
        failed = [
            event.event_specific_data.error.message
            for event in result.all_events
            if event.event_type_value == "STEP_FAILURE"
        ]
        yield scenario, spc, changes, result.success, failed, published


def _oracle(scenario: str) -> pl.DataFrame:
    return pl.read_csv(ORACLE / "oracle_synthetic" / SCENARIOS[scenario][0])


@pytest.mark.e2e
def test_the_run_succeeds(charted):
    _, _, _, success, failed, published = charted
    assert success, failed
    # The register and the series' changes reach both tiers (and pass the disclosure scan).
    assert {"dim_change", "fct_series_change", "fct_spc"} <= published["internal"]
    assert {"pub_change", "pub_series_change", "pub_spc"} <= published["public"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("level", "series_key"),
    [
        ("organisation", TRUST),
        ("sector", f"{ICB}|{SECTOR}"),
        ("icb", ICB),
        ("region", "region"),
    ],
)
def test_limits_are_nhsrplotthedots_at_every_level(charted, level, series_key):
    scenario, spc, *_ = charted
    series = spc.filter(
        (pl.col("tier") == "internal")
        & (pl.col("level") == level)
        & (pl.col("series_key") == series_key)
    ).sort("period")
    oracle = _oracle(scenario)
    assert series["period"].to_list() == MONTHS
    assert series["value"].to_list() == pytest.approx((oracle["y"] + SHIFT).to_list(), abs=1e-4)
    for ours, theirs in (("centre", "mean_col"), ("lpl", "lpl"), ("upl", "upl")):
        assert series[ours].to_list() == pytest.approx(
            (oracle[theirs] + SHIFT).to_list(), abs=TOLERANCE
        ), ours
    assert series["segment"].to_list() == oracle["rebase_group"].to_list()
    assert series["special_cause_flag"].to_list() == oracle["special_cause_flag"].to_list()
    if scenario == "fixed_baseline":
        assert series["in_baseline"].to_list() == [True] * 12 + [False] * 8
        assert series["limits_basis"].unique().to_list() == ["baseline_window"]
        assert series["segment_start"].unique().to_list() == [MONTHS[0]]
    else:
        # The upstream snapshot of the same case (expected_from_snapshots.json, rebase_group).
        snapshot = {c["id"]: c for c in json.loads(SNAPSHOTS.read_text())["cases"]}
        expected = snapshot["rebase_group"]["expected"]["rebase_group"]
        assert series["segment"].to_list() == expected
        assert series["in_baseline"].all()
        assert series["limits_basis"].to_list() == ["baseline_window"] * 10 + ["all_points"] * 10
        assert series["segment_start"].to_list() == [MONTHS[0]] * 10 + [MONTHS[10]] * 10


@pytest.mark.e2e
def test_the_change_is_recorded_on_every_series_it_cuts(charted):
    scenario, spc, changes, *_ = charted
    if scenario == "fixed_baseline":
        assert changes.is_empty()
        assert spc["segment"].unique().to_list() == [0]
        return
    mine = changes.filter(pl.col("measure_code") == MEASURE)
    assert set(mine.select("tier", "level").iter_rows()) == {
        ("internal", "organisation"),
        ("internal", "sector"),
        ("internal", "icb"),
        ("internal", "region"),
        ("public", "sector"),
        ("public", "icb"),
        ("public", "region"),
    }
    assert mine["change_id"].unique().to_list() == ["CHG-R5"]
    assert mine["change_month"].unique().to_list() == [MONTHS[10]]
    assert mine["rebases"].all()
