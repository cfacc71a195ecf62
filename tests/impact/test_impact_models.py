"""The impact models (docs/programme-impact.md section 4) on stand-in SPC outputs: a real
working file, the real dbt models built by ``dbt build --select +tag:after_spc``, and every
expected figure worked out here from the stand-in counts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from impact_support import Change, Series, dbt_build_after_spc, write_stand_ins

from pipelines.defs.spc import write_pub_spc
from pipelines.settings import load_settings


def _alternate(low: int, high: int, n: int, den: int = 1000) -> list[tuple[int, int]]:
    """n months alternating between two numerators, the last one low: no run on either
    side of the mean, and none that a later step continues."""
    return [((low if (n - 1 - i) % 2 == 0 else high), den) for i in range(n)]


# NEWS2: 12 baseline months around 740/1000, then 12 months at 850/1000 from April 2024.
NEWS2 = Series(
    "region",
    "region",
    "NEWS2_ESCALATED",
    "managing_deterioration",
    "p_prime",
    "increase",
    _alternate(730, 750, 12) + [(850, 1000)] * 12,
)
# SEPSIS: flat for 15 months, then 9 months higher from July 2024, no change recorded.
SEPSIS = Series(
    "region",
    "region",
    "SEPSIS_ABX_1H",
    "managing_deterioration",
    "p_prime",
    "increase",
    _alternate(700, 720, 15) + [(800, 1000)] * 9,
)
# Pressure ulcers: a definition change in October 2024 cuts a segment; no run in either.
ULCERS = Series(
    "region",
    "region",
    "PU_CAT2PLUS",
    "local_priority",
    "u_prime",
    "decrease",
    _alternate(30, 34, 18, 30000) + _alternate(40, 44, 6, 30000),
    multiplier=1000,
    cuts=(18,),
)
# An ICB series whose runs of 12 are each broken in two: by a month with no value, by a
# point exactly on the mean (71.0), by a month with no row at all.
ABOVE = [(800, 1000)] * 6
BROKEN = Series(
    "icb",
    "QHM",
    "SEPSIS_ABX_1H",
    "managing_deterioration",
    "p_prime",
    "increase",
    _alternate(700, 720, 12)
    + ABOVE
    + [None]
    + ABOVE
    + [(710, 1000)]
    + ABOVE
    + [(800, 1000)]
    + ABOVE,
    icb_code="QHM",
    skip={32},
)
# An organisation getting worse (lower is better, values above the mean for 8 months).
FALLS_ORG = Series(
    "organisation",
    "RTD",
    "FALLS_HARM",
    "local_priority",
    "u_prime",
    "decrease",
    _alternate(5, 7, 16, 30000) + [(12, 30000)] * 8,
    multiplier=1000,
    org_code="RTD",
    sector_code="acute_trust",
    icb_code="QHM",
)
# A neutral measure on an XmR chart, above its mean for the last 7 months.
NEUTRAL = Series(
    "sector",
    "QHM|acute_trust",
    "INCIDENT_REPORTING",
    "safety_culture",
    "xmr",
    "neutral",
    _alternate(45, 55, 17) + [(70, 1)] * 7,
    multiplier=1,
    sector_code="acute_trust",
    icb_code="QHM",
)
# Small counts: 12 baseline months of 50 per 1,000, then one month of 55: five events more
# than the baseline rate predicts, which the public tier must not show.
SMALL = Series(
    "sector",
    "QHM|care_home",
    "MED_INCIDENTS_HARM",
    "medicines_safety",
    "p_prime",
    "decrease",
    [(50, 1000)] * 23 + [(55, 1000)],
    sector_code="care_home",
    icb_code="QHM",
)
SERIES = [NEWS2, SEPSIS, ULCERS, BROKEN, FALLS_ORG, NEUTRAL, SMALL]

CHG_001 = Change("CHG-001", date(2024, 4, 1), "NEWS2 escalation bundle, region-wide")
CHG_002 = Change(
    "CHG-002", date(2024, 10, 1), "Category 2 definition widened", "definition_change", True
)
APPLIES = {
    ("region", "NEWS2_ESCALATED"): [
        Change("CHG-OLD", date(2023, 9, 1), "Too long before the shift"),  # 7 months before
        Change("CHG-EARLIER", date(2023, 11, 1), "In the window, but not the latest"),
        CHG_001,
        Change("CHG-LATER", date(2024, 5, 1), "After the shift began"),
    ],
    ("region", "PU_CAT2PLUS"): [CHG_002],
    # SEPSIS_ABX_1H: no recorded change.
}


@pytest.fixture(scope="module")
def impact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("impact")
    working_db = root / "working.duckdb"
    write_stand_ins(working_db, SERIES, APPLIES)
    built = dbt_build_after_spc(root, load_settings(), working_db)
    assert built.returncode == 0, built.stdout[-6000:]
    return working_db


def _rows(working_db: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(working_db), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _impact(working_db: Path, table: str, series: Series) -> dict:
    [row] = _rows(
        working_db,
        f"select * from {table} where level = '{series.level}'"
        f" and series_key = '{series.series_key}' and measure_code = '{series.measure_code}'",
    )
    return row


def _pooled(counts: list[tuple[int, int] | None], multiplier: int) -> float:
    present = [c for c in counts if c is not None]
    return sum(n for n, _ in present) * multiplier / sum(d for _, d in present)


def test_the_intervention_shift_is_found_and_attributed_to_the_latest_change_in_the_window(impact):
    row = _impact(impact, "marts.fct_programme_impact", NEWS2)
    baseline = _pooled(NEWS2.counts[:12], 100)
    last_12 = _pooled(NEWS2.counts[12:], 100)
    assert row["signal"] == "improvement"
    assert row["signal_start"] == date(2024, 4, 1)
    assert row["attributed_change_id"] == "CHG-001"
    assert row["attributed_change_description"] == CHG_001.description
    assert (row["baseline_from"], row["baseline_to"], row["baseline_points"]) == (
        date(2023, 4, 1),
        date(2024, 3, 1),
        12,
    )
    assert row["baseline_mean"] == pytest.approx(baseline)
    # Limits that move with the month: the baseline's are their average over its months.
    assert row["baseline_lpl"] == pytest.approx(baseline - 3.0 - sum(range(12)) / 1200)
    assert row["current_segment_start"] == date(2023, 4, 1)
    assert row["current_upl"] == pytest.approx(baseline + 3.0 + 23 / 100)  # the last month's
    assert (row["last_12_from"], row["last_12_to"]) == (date(2024, 4, 1), date(2025, 3, 1))
    assert row["last_12_value"] == pytest.approx(last_12)
    assert row["improvement_abs"] == pytest.approx(last_12 - baseline)
    assert row["improvement_rel"] == pytest.approx((last_12 - baseline) / baseline)
    # Financial years: 2024/25 against 2023/24, each pooled.
    assert (row["fy_current"], row["fy_current_months"]) == ("2024/25", 12)
    assert (row["fy_previous"], row["fy_previous_months"]) == ("2023/24", 12)
    assert row["fy_current_value"] == pytest.approx(last_12)
    assert row["fy_change_abs"] == pytest.approx(last_12 - baseline)
    # Events: 12,000 denominators at the baseline rate, against what happened.
    expected = 12 * 1000 * baseline / 100
    assert row["expected_events"] == pytest.approx(expected)
    assert row["observed_events"] == 12 * 850
    assert row["excess_events"] == pytest.approx(12 * 850 - expected)
    assert row["events_better"] == pytest.approx(12 * 850 - expected)


def test_a_shift_with_no_change_in_the_window_is_unexplained(impact):
    row = _impact(impact, "marts.fct_programme_impact", SEPSIS)
    assert (row["signal"], row["signal_start"], row["attributed_change_id"]) == (
        "improvement",
        date(2024, 7, 1),
        None,
    )
    shifts = _rows(
        impact,
        "select level, series_key, measure_code, signal, run_start, run_end, points"
        " from marts.mart_unexplained_shifts order by level, series_key, measure_code",
    )
    assert {
        "level": "region",
        "series_key": "region",
        "measure_code": "SEPSIS_ABX_1H",
        "signal": "improvement",
        "run_start": date(2024, 7, 1),
        "run_end": date(2025, 3, 1),
        "points": 9,
    } in shifts
    # The NEWS2 shift follows CHG-001: not unexplained. A worse organisation and a neutral
    # measure are; the broken runs and the rebased ulcers have none.
    assert {(s["measure_code"], s["level"], s["signal"]) for s in shifts} == {
        ("SEPSIS_ABX_1H", "region", "improvement"),
        ("FALLS_HARM", "organisation", "concern"),
        ("INCIDENT_REPORTING", "sector", "neutral"),
    }
    [org] = [s for s in shifts if s["level"] == "organisation"]
    [org_row] = _rows(
        impact,
        "select org_code, sector_code, icb_code from marts.mart_unexplained_shifts"
        " where level = 'organisation'",
    )
    assert org["points"] == 8 and org_row == {
        "org_code": "RTD",
        "sector_code": "acute_trust",
        "icb_code": "QHM",
    }


def test_a_missing_value_a_point_on_the_mean_and_a_missing_month_end_a_run(impact):
    row = _impact(impact, "marts.fct_programme_impact", BROKEN)
    assert row["signal"] is None and row["signal_start"] is None
    assert _rows(impact, "select * from marts.mart_unexplained_shifts where level = 'icb'") == []
    # The last 12 months (July 2025 - June 2026) pool the months with counts: the one with
    # no row is not a zero.
    last_12 = [c for n, c in enumerate(BROKEN.counts) if n >= 27 and n not in BROKEN.skip]
    assert (row["last_12_from"], row["last_12_to"]) == (date(2025, 7, 1), date(2026, 6, 1))
    assert row["last_12_value"] == pytest.approx(_pooled(last_12, 100))
    assert row["observed_events"] == sum(n for n, _ in last_12)
    # 2026/27 has April to June; 2025/26 all but December 2025 (no row).
    assert (row["fy_current"], row["fy_current_months"]) == ("2026/27", 3)
    assert (row["fy_previous"], row["fy_previous_months"]) == ("2025/26", 11)


def test_a_rebased_series_reports_its_new_segment_and_no_signal(impact):
    row = _impact(impact, "marts.fct_programme_impact", ULCERS)
    assert row["signal"] is None
    assert row["current_segment_start"] == date(2024, 10, 1)
    assert row["current_mean"] == pytest.approx(_pooled(ULCERS.counts[18:], 1000))
    assert row["baseline_mean"] == pytest.approx(_pooled(ULCERS.counts[:12], 1000))
    # Lower is better: more ulcers counted is a negative change.
    assert row["improvement_abs"] < 0 and row["events_better"] < 0


def test_an_xmr_series_pools_the_mean_of_its_values_and_has_no_events(impact):
    row = _impact(impact, "marts.fct_programme_impact", NEUTRAL)
    values = [n / d for n, d in NEUTRAL.counts[12:]]
    assert row["last_12_value"] == pytest.approx(sum(values) / 12)
    assert row["signal"] == "neutral" and row["improvement_abs"] == 0
    assert row["expected_events"] is None and row["events_better"] is None


def test_the_public_tier_has_no_organisation_series_and_rounds_or_withholds_events(impact):
    levels = {r["level"] for r in _rows(impact, "select level from public.pub_programme_impact")}
    assert levels == {"sector", "icb", "region"}
    news2 = _impact(impact, "public.pub_programme_impact", NEWS2)
    internal = _impact(impact, "marts.fct_programme_impact", NEWS2)
    base = load_settings().public_rounding_base
    assert news2["attributed_change_id"] == "CHG-001"
    assert news2["expected_events"] == base * round(internal["expected_events"] / base)
    assert news2["observed_events"] == 12 * 850
    assert news2["excess_events"] == news2["observed_events"] - news2["expected_events"]
    # Five more incidents than predicted: a small count, so all four figures are withheld.
    small = _impact(impact, "marts.fct_programme_impact", SMALL)
    assert small["excess_events"] == pytest.approx(5)
    public_small = _impact(impact, "public.pub_programme_impact", SMALL)
    assert [public_small[c] for c in ("expected_events", "observed_events", "excess_events")] == [
        None,
        None,
        None,
    ]
    assert public_small["last_12_value"] == pytest.approx(small["last_12_value"])


def test_the_disclosure_scan_passes_the_public_impact_table(impact):
    from pipelines.publish.disclosure import scan_public_tier

    with duckdb.connect(str(impact), read_only=True) as con:
        assert scan_public_tier(con, ["public.pub_programme_impact"]) == []


def test_dbt_splits_the_spc_step_output_into_one_table_per_tier(impact):
    """dbt's fct_spc / fct_series_change hold the internal series only, pub_spc /
    pub_series_change the public ones; pub_spc is exactly what write_pub_spc (dbt's model
    rendered outside dbt, for hand-made snapshots) makes of the SPC step's public rows."""
    with duckdb.connect(str(impact)) as con:
        tiers = {
            table: {
                tier for (tier,) in con.execute(f"select distinct tier from {table}").fetchall()
            }
            for table in ("marts.fct_spc", "marts.fct_series_change", "public.pub_series_change")
        }
        assert tiers == {
            "marts.fct_spc": {"internal"},
            "marts.fct_series_change": {"internal"},
            "public.pub_series_change": {"public"},
        }
        counts = dict(
            con.execute("select tier, count(*) from marts.spc_points group by tier").fetchall()
        )
        [(internal,)] = con.execute("select count(*) from marts.fct_spc").fetchall()
        assert internal == counts["internal"]
        assert "tier" not in {d[0] for d in con.execute("select * from public.pub_spc").description}
        written = write_pub_spc(con, table="main.pub_spc_python")
        assert written == counts["public"] > 0
        [(differ,)] = con.execute(
            """select count(*) from (
                (select * from public.pub_spc except all select * from main.pub_spc_python)
                union all
                (select * from main.pub_spc_python except all select * from public.pub_spc))"""
        ).fetchall()
    assert differ == 0
