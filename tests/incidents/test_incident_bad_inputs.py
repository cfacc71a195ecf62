"""Every named bad input for incident extracts: a clear reason naming the file, the line
and the rule; the good rows beside it loaded; nothing stored before lost or changed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import BASELINE, BASELINE_EVENTS, BASELINE_NAME, TODAY, Case, cases

from pipelines.incidents.ingest import incident_reconciliation_problems, ingest_incidents
from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"
CASES = cases()


def test_the_corpus_has_at_least_twenty_named_bad_inputs():
    bad = [c for c in CASES if c.status != "loaded" or c.bad_lines]
    assert len(bad) >= 20
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture
def working(tmp_path, settings):
    con = connect(tmp_path / "working.duckdb")
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    landing = tmp_path / "incidents"
    landing.mkdir()
    (landing / "a").mkdir()
    (landing / "a" / BASELINE_NAME).write_bytes(BASELINE)
    [first] = ingest_incidents(con, settings, landing_dir=landing, today=TODAY)
    assert first.status == "loaded" and first.rows_loaded == BASELINE_EVENTS
    yield con, landing
    con.close()


def _snapshot(con, submission_id: int) -> list[tuple]:
    return con.execute(
        "select * exclude (loaded_at) from raw.incident_records where submission_id = ?"
        " order by source_line",
        [submission_id],
    ).fetchall()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case: Case, working, settings):
    con, landing = working
    before = _snapshot(con, 1)
    (landing / "b").mkdir()
    (landing / "b" / case.name).write_bytes(case.body)
    [outcome] = ingest_incidents(con, settings, landing_dir=landing, today=TODAY)

    assert outcome.status == case.status, outcome.reason
    log = con.execute(
        "select status, reason, rows_read, rows_loaded, rows_quarantined, warnings"
        " from raw.submission_log where submission_id = ?",
        [outcome.submission_id],
    ).fetchone()
    status, reason, read, loaded, quarantined, warnings = log
    assert status == case.status
    if case.status == "rejected":
        assert reason.startswith(f"{case.rule}: "), reason
        assert case.reason in reason
        assert con.execute(
            "select count(*) from raw.incident_records where submission_id = ?",
            [outcome.submission_id],
        ).fetchone() == (0,)
    if case.status == "loaded":
        assert loaded == case.loaded
        assert read == loaded + quarantined == loaded + len(case.bad_lines)
        rows = con.execute(
            "select source_line, rules, reasons from raw.incident_quarantine"
            " where submission_id = ? order by source_line",
            [outcome.submission_id],
        ).fetchall()
        assert {line for line, _, _ in rows} == set(case.bad_lines)
        for line, rules, reasons in rows:
            assert case.bad_lines[line] in rules, (line, rules, reasons)
            # The reason names the file, the line and the rule.
            assert reasons.startswith(f"{case.name} line {line}: "), reasons
            assert case.bad_lines[line] in reasons
    if case.warning:
        assert case.warning in (warnings or "")
    # Nothing stored before is lost or changed; the books balance.
    assert _snapshot(con, 1) == before
    assert incident_reconciliation_problems(con) == []
    # Values planted in the bad rows (personal data, free text) are stored nowhere.
    for secret in case.secrets:
        for table in ("incident_records", "incident_quarantine", "submission_log"):
            hits = con.execute(
                f"select count(*) from raw.{table} t where t::varchar ilike ?", [f"%{secret}%"]
            ).fetchone()[0]
            assert hits == 0, (secret, table)


def test_a_return_naming_a_derived_incident_measure_is_refused(tmp_path, settings):
    """Incident measures are derived from the records, never returned: a return naming one
    is quarantined; the returned measure beside it loads."""
    from pipelines.ingest.measure_returns import ingest_landing

    con = connect(tmp_path / "returns.duckdb")
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    (settings.landing_dir / "RTD_2024-03.csv").write_text(
        "org_code,period,measure_code,numerator,denominator\n"
        "RTD,2024-03,INCIDENT_REPORTING,1200,41000\n"
        "RTD,2024-03,INC_REPORTING_RATE,1200,41000\n"
    )
    [outcome] = ingest_landing(con, settings, today=TODAY)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 1)
    [(reasons,)] = con.execute("select reasons from raw.quarantine").fetchall()
    assert "INC_REPORTING_RATE" in reasons and "not in the measure catalogue" in reasons
