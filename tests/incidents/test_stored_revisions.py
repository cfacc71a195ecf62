"""The revision rules inside one ingest of many extracts: an extract is checked against
the revisions stored before it, the earlier extracts of the same ingest included, exactly
as if each extract had been ingested by a run of its own.

Why a test of its own: ingest keeps each organisation's stored revisions in memory and
extends them as it stores extracts (``pipelines.incidents.store.StoredRevisions``) rather
than aggregating the whole records table again for every extract (which made a national
backfill cost extracts x records). Forgetting to extend them would let a revision going
backwards through within one batch, so the batch is compared with one run per extract.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import LFPSE_HEADER, TODAY, lfpse_row

from pipelines.incidents.ingest import ingest_incidents
from pipelines.incidents.store import StoredRevisions
from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"

# Three extracts in path order. The ICB's (QHM) names two trusts' events; RTD's own
# extracts then revise one of them twice, once backwards (line 2 of the third extract),
# and send a revision of the other trust's event, which RTD's extracts cannot see
# (another organisation's event key).
EXTRACTS = {
    "a/QHM_lfpse_2024-03.csv": [
        lfpse_row(Reference="7000001", Revision="1"),
        lfpse_row(Reference="7000002", Revision="4", OccurredOrganisationCode="RR7"),
    ],
    "b/RTD_lfpse_2024-03.csv": [
        lfpse_row(Reference="7000001", Revision="3"),
        lfpse_row(Reference="7000003", Revision="1"),
    ],
    "c/RTD_lfpse_2024-04.csv": [
        lfpse_row(Reference="7000001", Revision="2"),
        lfpse_row(Reference="7000003", Revision="2"),
        lfpse_row(Reference="7000004", Revision="1"),
    ],
}
QUARANTINE = (
    "select source_file, source_line, rules, reasons from raw.incident_quarantine"
    " order by source_file, source_line"
)
RECORDS = (
    "select * exclude (submission_id, loaded_at) from raw.incident_records"
    " order by source_file, source_line"
)


def _working(path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(path)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    return con


def _write(landing: Path, name: str) -> None:
    target = landing / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([LFPSE_HEADER, *EXTRACTS[name]]) + "\n")


def test_one_ingest_of_many_extracts_equals_one_run_per_extract(tmp_path, settings):
    batch = _working(tmp_path / "batch.duckdb")
    for name in EXTRACTS:
        _write(tmp_path / "batch", name)
    outcomes = ingest_incidents(batch, settings, landing_dir=tmp_path / "batch", today=TODAY)
    assert [o.status for o in outcomes] == ["loaded"] * 3

    one_by_one = _working(tmp_path / "one_by_one.duckdb")
    for name in EXTRACTS:
        _write(tmp_path / "one", name)
        [outcome] = ingest_incidents(
            one_by_one, settings, landing_dir=tmp_path / "one", today=TODAY
        )
        assert outcome.status == "loaded"

    quarantined = batch.execute(QUARANTINE).fetchall()
    assert [(file, line, rules) for file, line, rules, _ in quarantined] == [
        ("RTD_lfpse_2024-04.csv", 2, ["revision_backwards"])
    ]
    assert "revision 2 is older than revision 3 already stored" in quarantined[0][3]
    assert quarantined == one_by_one.execute(QUARANTINE).fetchall()
    assert batch.execute(RECORDS).fetchall() == one_by_one.execute(RECORDS).fetchall()


def test_stored_revisions_read_each_organisation_once_and_follow_what_is_added(tmp_path, settings):
    con = _working(tmp_path / "w.duckdb")
    _write(tmp_path / "landing", "a/QHM_lfpse_2024-03.csv")
    ingest_incidents(con, settings, landing_dir=tmp_path / "landing", today=TODAY)
    revisions = StoredRevisions(con)

    def table(orgs: list[str]) -> list[tuple]:
        return con.execute(
            "select event_key, max(revision) from raw.incident_records"
            " where list_contains(?, org_code) group by 1 order by 1",
            [orgs],
        ).fetchall()

    def cached(orgs: list[str]) -> list[tuple]:
        return sorted(revisions.of(orgs).iter_rows())

    assert cached(["RTD", "RR7"]) == table(["RTD", "RR7"]) and len(table(["RTD", "RR7"])) == 2
    assert cached(["RTF"]) == [] and cached([]) == []
    # Records stored after RTD was read: counted through add(), as ingest does.
    _write(tmp_path / "landing", "b/RTD_lfpse_2024-03.csv")
    stored = ingest_incidents(con, settings, landing_dir=tmp_path / "landing", today=TODAY)
    assert [o.status for o in stored] == ["loaded"]
    revisions.add(
        con.execute(
            "select org_code, event_key, revision from raw.incident_records"
            " where source_file = 'RTD_lfpse_2024-03.csv'"
        ).pl()
    )
    assert cached(["RTD"]) == table(["RTD"])
    assert sorted(revision for _, revision in cached(["RTD"])) == [1, 3]  # 7000003, 7000001
