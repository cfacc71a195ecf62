"""The set-wise intake against the file-at-a-time reference: the same files, in the same
order, give the same raw tables.

One landing folder (the bad-input corpus, an identical re-drop, a resubmission correcting
a row, links out of landing and to nothing, and the sample's landing files) is ingested
twice into two working files: once as one run (batches of files, plain long-layout CSVs
read together with one parse per contract and header, one insert per table) and once file
by file (``ingest_landing(files=[one], set_wise=False)``, today's reader on each file
alone). Then a second drop (a file rewritten at a path already seen, a new resubmission,
another identical file) is ingested the same two ways on top.

``raw.measure_values``, ``raw.quarantine`` and ``raw.submission_log`` must be identical,
ids included (each file takes one id, in the order files are applied, both ways), except:

* ``loaded_at`` and ``quarantined_at``: the clock of the run that wrote the row, and the
  file-at-a-time reference is many runs;
* ``run_id``: each of those runs has its own id.

``received_at`` is compared: it is the file's modification time, the same both ways.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest
from bad_inputs import (
    CORPUS,
    GOOD,
    HEADER,
    MAX_FILE_BYTES,
    MAX_XLSX_INFLATED_BYTES,
    install_contracts,
)

from conftest import SAMPLES
from pipelines.defs.ingest import reconciliation_problems
from pipelines.ingest import contracts, measure_returns
from pipelines.ingest.measure_returns import ingest_landing, pending_files
from pipelines.ingest.organisations import load_register
from pipelines.settings import Settings, load_settings
from pipelines.warehouse import connect

TODAY = date(2025, 6, 1)
TABLES = {
    "raw.measure_values": (
        "select * exclude (loaded_at) from raw.measure_values"
        " order by submission_id, source_line, measure_code"
    ),
    "raw.quarantine": (
        "select * exclude (quarantined_at), raw_record::varchar as raw_record"
        " from raw.quarantine order by submission_id, source_line, raw_record::varchar"
    ),
    "raw.submission_log": "select * exclude (run_id) from raw.submission_log order by all",
}


def _settings(mp: pytest.MonkeyPatch, root: Path, landing: Path) -> Settings:
    mp.setenv("SAFETY_OBS_VAR_DIR", str(root / "var"))
    mp.setenv("SAFETY_OBS_WORKING_DB", str(root / "var" / "working.duckdb"))
    mp.setenv("SAFETY_OBS_LANDING_DIR", str(landing))
    mp.setenv("SAFETY_OBS_MAX_FILE_BYTES", str(MAX_FILE_BYTES))
    mp.setenv("SAFETY_OBS_MAX_XLSX_INFLATED_BYTES", str(MAX_XLSX_INFLATED_BYTES))
    return load_settings()


def _first_drop(landing: Path, outside: Path) -> None:
    for case in CORPUS:
        (landing / case.name).write_bytes(case.body)
    (landing / "RTD_zz_identical_redrop.csv").write_bytes(CORPUS[0].body)
    # Corrects the corpus' good row (RTD, 2024-03, FALLS_HARM): supersedes every earlier one.
    (landing / "RTD_zz_resubmission.csv").write_text(HEADER + GOOD.replace(",7,", ",6,"))
    outside.write_text(HEADER + GOOD)
    os.symlink(outside, landing / "RTD_link_out_of_landing.csv")
    os.symlink(landing / "RTD_gone.csv", landing / "RTD_broken_link.csv")
    shutil.copytree(SAMPLES / "landing", landing / "sample")


def _second_drop(landing: Path) -> None:
    # A file rewritten where one was already logged (the same path, new content), a
    # resubmission of a sample month, and a file identical to one loaded in the first drop.
    rewritten = sorted((landing / "sample").rglob("RTD_*.csv"))[-1]
    lines = rewritten.read_text().splitlines(keepends=True)
    rewritten.write_text("".join(lines[:-1]))
    month = sorted((landing / "sample").rglob("RR7_*.csv"))[0]
    (landing / "sample" / "zz").mkdir()
    body = month.read_text().replace(",1,", ",2,")
    (landing / "sample" / "zz" / f"RR7_resubmitted_{month.name}").write_text(body)
    shutil.copy(landing / "RTD_zz_resubmission.csv", landing / "sample" / "zz" / "RTD_again.csv")


def _tables(con) -> dict[str, list[dict]]:
    tables = {}
    for table, query in TABLES.items():
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description]
        tables[table] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return tables


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("set_wise")
    landing = tmp_path / "landing"
    landing.mkdir()
    _first_drop(landing, tmp_path / "secret.csv")
    read_together: list[int] = []
    real_read_deferred = measure_returns.read_deferred

    def counting(files, *args, **kwargs):
        read_together.append(len(files))
        return real_read_deferred(files, *args, **kwargs)

    results = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(contracts, "CONTRACTS_DIR", install_contracts(tmp_path / "contracts"))
        mp.setattr(measure_returns, "read_deferred", counting)
        batch = _settings(mp, tmp_path / "batch", landing)
        one_by_one = _settings(mp, tmp_path / "one_by_one", landing)
        cons = {}
        for name, settings in (("batch", batch), ("one_by_one", one_by_one)):
            cons[name] = connect(settings.working_db)
            load_register(cons[name], SAMPLES / "ods", SAMPLES / "local_register.csv")
        for drop in (1, 2):
            if drop == 2:
                _second_drop(landing)
            read_together.clear()
            ingest_landing(cons["batch"], batch, run_id=f"batch-{drop}", today=TODAY)
            batch_read_together = list(read_together)
            read_together.clear()
            todo = pending_files(cons["one_by_one"], one_by_one)
            for i, (path, source_path) in enumerate(todo):
                ingest_landing(
                    cons["one_by_one"],
                    one_by_one,
                    run_id=f"file-{drop}-{i}",
                    files=[(path, source_path)],
                    today=TODAY,
                    set_wise=False,
                )
            assert read_together == []  # the reference never reads set-wise
            results[drop] = (
                _tables(cons["batch"]),
                _tables(cons["one_by_one"]),
                batch_read_together,
                len(todo),
            )
        results["reconciliation"] = {n: reconciliation_problems(c) for n, c in cons.items()}
        for con in cons.values():
            con.close()
    yield results


@pytest.mark.parametrize("drop", [1, 2])
@pytest.mark.parametrize("table", list(TABLES))
def test_set_wise_and_file_at_a_time_give_identical_tables(both_ways, drop, table):
    batch, one_by_one, _, _ = both_ways[drop]
    assert len(batch[table]) == len(one_by_one[table])
    for row_batch, row_alone in zip(batch[table], one_by_one[table], strict=True):
        assert row_batch == row_alone


def test_the_comparison_covers_every_outcome_and_a_real_set_wise_read(both_ways):
    batch, _, read_together, files = both_ways[1]
    assert files > len(CORPUS) + 300  # the corpus and the sample's landing files
    log = batch["raw.submission_log"]
    assert len(log) == files
    statuses = {row["status"] for row in log}
    assert statuses >= {"loaded", "rejected", "duplicate"}, statuses
    assert len(batch["raw.measure_values"]) > 1_000
    assert any(row["superseded_by"] is not None for row in batch["raw.measure_values"])
    assert len(batch["raw.quarantine"]) >= 40
    # Most files were read together: one call for the batch, hundreds of plain CSVs in it.
    assert read_together and max(read_together) > 300
    _, _, read_together, files = both_ways[2]
    assert files == 3 and read_together


def test_both_ways_reconcile(both_ways):
    assert both_ways["reconciliation"] == {"batch": [], "one_by_one": []}
