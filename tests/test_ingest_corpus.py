"""The bad-input corpus in one run: the run succeeds, each case ends where it should with
the expected reason, no good row is lost, and every file reconciles."""

from __future__ import annotations

import os
from datetime import date

import pytest
from bad_inputs import (
    CORPUS,
    GOOD,
    HEADER,
    MAX_FILE_BYTES,
    MAX_XLSX_INFLATED_BYTES,
    MISREAD_CASES,
    install_contracts,
)

from conftest import SAMPLES
from pipelines.defs.ingest import reconciliation_problems
from pipelines.ingest import contracts
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import connect


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("corpus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
        mp.setenv("SAFETY_OBS_WORKING_DB", str(tmp_path / "var" / "working.duckdb"))
        mp.setenv("SAFETY_OBS_LANDING_DIR", str(tmp_path / "landing"))
        mp.setenv("SAFETY_OBS_MAX_FILE_BYTES", str(MAX_FILE_BYTES))
        mp.setenv("SAFETY_OBS_MAX_XLSX_INFLATED_BYTES", str(MAX_XLSX_INFLATED_BYTES))
        settings = load_settings()
    settings.landing_dir.mkdir()
    for case in CORPUS:
        (settings.landing_dir / case.name).write_bytes(case.body)
    (settings.landing_dir / "RTD_zz_identical_redrop.csv").write_bytes(CORPUS[0].body)
    outside = tmp_path / "secret.csv"
    outside.write_text(HEADER + GOOD)
    os.symlink(outside, settings.landing_dir / "RTD_link_out_of_landing.csv")
    # A link left behind when its target moved, and a link to a folder: neither is a file.
    os.symlink(settings.landing_dir / "RTD_gone.csv", settings.landing_dir / "RTD_broken_link.csv")
    (settings.landing_dir / "sub").mkdir()
    os.symlink(settings.landing_dir / "sub", settings.landing_dir / "RTD_link_to_folder.csv")
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    with pytest.MonkeyPatch.context() as mp:
        # Three providers' own contracts (bad_inputs.EXTRA_CONTRACTS) beside the shipped ones.
        mp.setattr(contracts, "CONTRACTS_DIR", install_contracts(tmp_path / "contracts"))
        outcomes = {o.file_name: o for o in ingest_landing(con, settings, today=date(2025, 6, 1))}
    yield con, outcomes
    con.close()


def test_corpus_has_at_least_forty_named_cases():
    assert len(CORPUS) >= 40
    assert len({c.name for c in CORPUS}) == len(CORPUS)
    misread_bad_cases = [c for c in MISREAD_CASES if c.rule]
    assert len(misread_bad_cases) >= 20
    assert all(c.reason for c in misread_bad_cases)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_each_case_lands_where_it_should(corpus_run, case):
    con, outcomes = corpus_run
    outcome = outcomes[case.name]
    assert outcome.status == case.status, outcome.reason
    if case.status == "rejected":
        assert outcome.reason.startswith(f"{case.rule}:"), outcome.reason
        assert case.reason in outcome.reason
        assert (outcome.rows_loaded, outcome.rows_quarantined) == (0, 0)
        return
    assert outcome.rows_loaded == case.loaded
    rows = con.execute(
        "select source_line, rules, reasons from raw.quarantine where submission_id = ?",
        [outcome.submission_id],
    ).fetchall()
    quarantined = {line: rules for line, rules, _ in rows}
    reasons = {line: text for line, _, text in rows}
    assert quarantined.keys() == case.bad_lines.keys()
    for line, rule in case.bad_lines.items():
        assert rule in quarantined[line]
        if rule == case.rule:
            assert case.reason in reasons[line]
    [warnings] = con.execute(
        "select warnings from raw.submission_log where submission_id = ?",
        [outcome.submission_id],
    ).fetchone()
    assert case.warning in (warnings or "")
    assert bool(warnings) == bool(case.warning)


def test_duplicates_links_and_reconciliation(corpus_run):
    con, outcomes = corpus_run
    assert outcomes["RTD_zz_identical_redrop.csv"].status == "duplicate"
    link = outcomes["RTD_link_out_of_landing.csv"]
    assert link.status == "rejected" and link.reason.startswith("outside_landing_folder")
    for name in ("RTD_broken_link.csv", "RTD_link_to_folder.csv"):
        assert outcomes[name].status == "rejected"
        assert outcomes[name].reason.startswith("not_a_regular_file:"), outcomes[name].reason
    assert reconciliation_problems(con) == []
    good_rows = sum(c.loaded for c in CORPUS)
    assert con.execute("select count(*) from raw.measure_values").fetchone()[0] == good_rows
    logged = con.execute("select count(*) from raw.submission_log").fetchone()[0]
    assert logged == len(CORPUS) + 4
