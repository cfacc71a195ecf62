"""Incident extracts judged and written set-wise, in chunks, against the file-at-a-time
reference: the same files, in the same order, give the same outcomes and raw tables.

One landing folder holds the baseline, the whole bad-input corpus (CSV, XLSX, LFPSE and
Datix, files refused whole, a duplicate of the baseline), the sample's two years of
generated extracts, the three extracts of test_stored_revisions.py and a planted scenario
of revisions across extracts (below). It is ingested into separate working files:

* once as one ingest (every file in one chunk);
* once as one ingest in chunks of 7 files (revisions carried from chunk to chunk);
* once file by file, one ingest per file (``files=[one]``): each extract judged alone
  against what the table holds, which is what a revision rule means.

``raw.incident_records``, ``raw.incident_extracts``, ``raw.incident_quarantine`` and
``raw.submission_log`` must be identical, submission ids included, except the clock of the
run that wrote a row (``loaded_at``, ``quarantined_at``, ``received_at``) and its run id;
so must the outcomes returned.

The planted scenario, one organisation (RTD), extracts in path order:

* ``x1``: event 7100001 at revision 5; event 7100002 at revision 9 with a taxonomy version
  no contract takes (quarantined: it must NOT make a later revision 2 go backwards); event
  7100003 at revision 7 for two patients, one with a harm outside the list (so the other
  row is quarantined too, as ``event_incomplete``: revision 7 is not stored either); event
  7100004 at revision 2 twice (the repeat dropped alone: revision 2 is stored); event
  7100005 at revisions 2 and 1 in the same extract (both stored: an extract is checked
  against what was stored before it).
* ``x2``: 7100001 at revision 4 (backwards: revision 5 came in x1), 7100002 at revision 2
  and 7100003 at revision 3 (stored), 7100005 at revision 1 (backwards).
* ``x3``: 7100004 at revision 1 (backwards), 7100001 at revision 6 (stored).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import BASELINE, BASELINE_NAME, LFPSE_HEADER, TODAY, cases, lfpse_row
from test_stored_revisions import EXTRACTS

from conftest import point_settings_at
from pipelines.incidents.ingest import ingest_incidents, pending_incident_files
from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT, Settings, load_settings
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"
sys.path.insert(0, str(SAMPLES / "incidents"))
import generate_incidents  # noqa: E402  (the sample's own generator)

TABLES = {
    "raw.incident_records": (
        "select * exclude (loaded_at) from raw.incident_records"
        " order by submission_id, source_line, patient_no"
    ),
    "raw.incident_extracts": (
        "select * exclude (loaded_at) from raw.incident_extracts order by submission_id, org_code"
    ),
    "raw.incident_quarantine": (
        "select * exclude (quarantined_at), raw_record::varchar as raw_record"
        " from raw.incident_quarantine order by submission_id, source_line"
    ),
    "raw.submission_log": (
        "select * exclude (received_at, run_id) from raw.submission_log order by submission_id"
    ),
}
SCENARIO = {
    "x1/RTD_revisions_1.csv": [
        lfpse_row(Reference="7100001", Revision="5"),
        lfpse_row(Reference="7100002", Revision="9", TaxonomyVersion="4"),
        lfpse_row(Reference="7100003", Revision="7", EntityId="1"),
        lfpse_row(Reference="7100003", Revision="7", EntityId="2", OT001="7"),
        lfpse_row(Reference="7100004", Revision="2"),
        lfpse_row(Reference="7100004", Revision="2"),
        lfpse_row(Reference="7100005", Revision="2"),
        lfpse_row(Reference="7100005", Revision="1"),
    ],
    "x2/RTD_revisions_2.csv": [
        lfpse_row(Reference="7100001", Revision="4"),
        lfpse_row(Reference="7100002", Revision="2"),
        lfpse_row(Reference="7100003", Revision="3"),
        lfpse_row(Reference="7100005", Revision="1"),
    ],
    "x3/RTD_revisions_3.csv": [
        lfpse_row(Reference="7100004", Revision="1"),
        lfpse_row(Reference="7100001", Revision="6"),
    ],
}


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("incident_set_wise")
    landing = root / "landing"
    (landing / "a").mkdir(parents=True)
    (landing / "a" / BASELINE_NAME).write_bytes(BASELINE)
    (landing / "b").mkdir()
    for case in cases():
        (landing / "b" / case.name).write_bytes(case.body)
    generate_incidents.generate(root / "sample")
    shutil.copytree(root / "sample" / "landing", landing / "c")
    for name, rows in {**EXTRACTS, **SCENARIO}.items():
        target = landing / "d" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join([LFPSE_HEADER, *rows]) + "\n")
    return landing


def _working(path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(path)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    return con


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {table: con.execute(query).fetchall() for table, query in TABLES.items()}


@pytest.fixture(scope="module")
def one_at_a_time(landing, tmp_path_factory) -> tuple[list, dict, dict]:
    """The reference: one ingest per file, in path order; also the planted scenario's
    quarantined lines and their rules."""
    root = tmp_path_factory.mktemp("one")
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        settings = load_settings()
    con = _working(root / "w.duckdb")
    outcomes = []
    for path, relative in pending_incident_files(con, landing, settings):
        outcomes += ingest_incidents(
            con, settings, landing_dir=landing, files=[(path, relative)], today=TODAY
        )
    planted = con.execute(
        "select source_file, source_line, rules from raw.incident_quarantine"
        " where source_file like 'RTD_revisions%'"
    ).fetchall()
    return outcomes, _tables(con), {(file, line): rules for file, line, rules in planted}


def _set_wise(landing: Path, path: Path, settings: Settings, **chunks: int) -> tuple[list, dict]:
    con = _working(path)
    outcomes = ingest_incidents(con, settings, landing_dir=landing, today=TODAY, **chunks)
    return outcomes, _tables(con)


@pytest.mark.parametrize("chunk_files", [1000, 7])
def test_set_wise_equals_one_file_at_a_time(
    landing, one_at_a_time, tmp_path, settings, chunk_files
):
    outcomes, tables = _set_wise(landing, tmp_path / "w.duckdb", settings, chunk_files=chunk_files)
    reference_outcomes, reference, _ = one_at_a_time
    assert len(outcomes) > 50
    assert {o.status for o in outcomes} == {"loaded", "rejected", "duplicate"}
    assert outcomes == reference_outcomes
    for table, rows in reference.items():
        assert rows, table
        assert tables[table] == rows, table


def test_the_planted_revisions_are_judged_as_one_at_a_time(one_at_a_time):
    assert one_at_a_time[2] == {
        ("RTD_revisions_1.csv", 3): ["unsupported_taxonomy_version"],
        ("RTD_revisions_1.csv", 4): ["event_incomplete"],
        ("RTD_revisions_1.csv", 5): ["harm_outside_list"],
        ("RTD_revisions_1.csv", 7): ["duplicate_row"],
        ("RTD_revisions_2.csv", 2): ["revision_backwards"],
        ("RTD_revisions_2.csv", 5): ["revision_backwards"],
        ("RTD_revisions_3.csv", 2): ["revision_backwards"],
    }
