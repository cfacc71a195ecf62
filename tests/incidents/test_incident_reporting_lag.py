"""The median reporting lag (docs/incidents.md, "Median reporting lag"): computed at every
level from the events themselves (a median does not add up), equal to medians the test
works out from the planted extract; the public table withholds small or few-organisation
cells and publishes no count."""

from __future__ import annotations

import statistics
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import LFPSE_HEADER, lfpse_row
from test_incident_warehouse import SAMPLES, dbt_build

from pipelines.incidents.ingest import ingest_incidents
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import connect

# org -> reporting lags (days) of its March 2024 incidents. Acute: RTD, R0B, RTF (14
# incidents from 3 organisations); mental health: RX3 alone with 2 (suppressed publicly).
LAGS = {"RTD": [0, 1, 1, 30, 2, 1, 0], "R0B": [5, 5, 9, 40], "RTF": [3, 0, 12], "RX3": [7, 21]}
SECTOR = {"RTD": "acute_trust", "R0B": "acute_trust", "RTF": "acute_trust"}


def test_the_median_lag_is_computed_at_every_level_from_the_events(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    incidents = tmp_path / "incidents"
    incidents.mkdir()
    rows, n = [], 0
    for org, lags in LAGS.items():
        for i, lag in enumerate(lags):
            event = date(2024, 3, 1 + i)
            n += 1
            rows.append(
                lfpse_row(
                    Reference=f"81000{n}",
                    T005=event.isoformat(),
                    SubmissionDate=(event + timedelta(days=lag)).isoformat(),
                    OccurredOrganisationCode=org,
                )
            )
    (incidents / "QHM_lfpse_2024-03.csv").write_text("\n".join([LFPSE_HEADER, *rows]) + "\n")
    db = tmp_path / "working.duckdb"
    con = connect(db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    [outcome] = ingest_incidents(con, load_settings(), landing_dir=incidents)
    assert outcome.rows_loaded == n
    con.close()
    dbt_build(db, tmp_path, select=["+fct_incident_reporting_lag", "pub_incident_reporting_lag"])
    every = [lag for lags in LAGS.values() for lag in lags]
    acute = [lag for org, lags in LAGS.items() if org in SECTOR for lag in lags]
    expected = {
        **{("organisation", org): statistics.median(lags) for org, lags in LAGS.items()},
        ("sector", "QHM:acute_trust"): statistics.median(acute),
        ("sector", "QHM:mental_health_trust"): statistics.median(LAGS["RX3"]),
        ("icb", "QHM"): statistics.median(every),
        ("region", "region"): statistics.median(every),
    }
    with duckdb.connect(str(db), read_only=True) as built:
        got = {
            (level, group): (median, incidents, organisations)
            for level, group, median, incidents, organisations in built.execute(
                "select level, group_code, median_lag_days, incidents, organisations"
                " from marts.fct_incident_reporting_lag where period = date '2024-03-01'"
            ).fetchall()
        }
        public = built.execute(
            "select level, sector_code, median_lag_days, is_suppressed, suppression_reason"
            " from public.pub_incident_reporting_lag order by level, sector_code"
        ).fetchall()
        public_columns = [
            c for (c,) in built.execute(
                "select column_name from duckdb_columns()"
                " where table_name = 'pub_incident_reporting_lag'"
            ).fetchall()
        ]  # fmt: skip
    assert {k: v[0] for k, v in got.items()} == expected
    # Not the median of the medians: a median does not roll up.
    assert expected[("region", "region")] != statistics.median(
        [statistics.median(lags) for lags in LAGS.values()]
    )
    assert got[("region", "region")][1:] == (len(every), 4)
    # Public: ICB, region and the acute sector (14 incidents, 3 organisations) published to
    # 1 dp; the mental health sector (2 incidents, one organisation) withheld; no counts.
    assert public == [
        ("icb", None, round(statistics.median(every), 1), False, None),
        ("region", None, round(statistics.median(every), 1), False, None),
        ("sector", "acute_trust", round(statistics.median(acute), 1), False, None),
        ("sector", "mental_health_trust", None, True, "primary"),
    ]
    assert not {"incidents", "organisations", "org_code"} & set(public_columns)
