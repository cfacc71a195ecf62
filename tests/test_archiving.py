"""Archiving processed files happens after ingest has committed, so it must never fail the
run: across filesystems (landing on an SFTP mount, the archive on local disk) a rename
fails with EXDEV and the file is copied then deleted; any other failure is logged with
its reason and the file stays in landing, where the submission log already marks it
processed."""

from __future__ import annotations

import errno
import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from conftest import SAMPLES
from pipelines.defs.ingest import measure_returns, organisation_register
from pipelines.defs.resources import WorkingFileRun
from pipelines.ingest.measure_returns import archive_processed, ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import connect

TODAY = date(2025, 6, 15)


@pytest.fixture
def landing(settings) -> Path:
    """One real month of the sample's returns (15 files, among them the ICB's collated ones)."""
    shutil.rmtree(settings.landing_dir)
    shutil.copytree(SAMPLES / "landing" / "2024-04", settings.landing_dir / "2024-04")
    return settings.landing_dir


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def rename_across_filesystems(monkeypatch, archive: Path) -> list[str]:
    """``os.rename`` into the archive fails as it does between two filesystems."""
    real_rename = os.rename
    refused: list[str] = []

    def rename(src, dst, *args, **kwargs):
        if Path(dst).is_relative_to(archive):
            refused.append(Path(src).name)
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    return refused


def ingested(settings):
    con = connect(settings.working_db)
    try:
        load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
        return ingest_landing(con, settings, run_id="test", today=TODAY)
    finally:
        con.close()


def test_across_filesystems_files_are_copied_then_deleted(settings, landing, monkeypatch):
    before = files_under(landing)
    mtimes = {p.name: p.stat().st_mtime for p in landing.rglob("*.csv")}
    outcomes = ingested(settings)
    refused = rename_across_filesystems(monkeypatch, settings.archive_dir)

    archived = archive_processed(outcomes, settings, TODAY)

    assert (archived.moved, archived.problems) == (len(before), ())
    assert sorted(refused) == sorted(Path(name).name for name in before)  # rename was tried
    assert files_under(landing) == {}
    day = settings.archive_dir / TODAY.isoformat()
    assert files_under(day) == before  # byte for byte, same paths
    # received_at is the file's modification time: the copy keeps it.
    assert {p.name: p.stat().st_mtime for p in day.rglob("*.csv")} == mtimes


def test_a_file_that_cannot_be_archived_stays_in_landing_with_the_reason(
    settings, landing, monkeypatch
):
    outcomes = ingested(settings)
    rename_across_filesystems(monkeypatch, settings.archive_dir)
    real_copy = shutil.copy2

    def copy_until_the_disk_fills(src, dst, *args, **kwargs):
        if Path(src).name == "RTD_2024-03.csv":
            Path(dst).write_bytes(b"org_code,per")  # a partial copy, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy_until_the_disk_fills)
    archived = archive_processed(outcomes, settings, TODAY)

    assert archived.moved == len(outcomes) - 1
    [problem] = archived.problems
    target = settings.archive_dir / TODAY.isoformat() / "2024-04" / "RTD_2024-03.csv"
    assert problem == (
        f"2024-04/RTD_2024-03.csv: not archived, left in landing "
        f"([Errno 28] No space left on device: '{target}')"
    )
    assert list(files_under(landing)) == ["2024-04/RTD_2024-03.csv"]
    assert not target.exists(), "no half-written copy in the archive"


def test_the_run_does_not_fail_after_its_commit(settings, landing, monkeypatch):
    """The ingest step itself: archiving fails for every file (EXDEV, then the copy is
    refused), yet the step succeeds with the data committed, says which files stayed in
    landing and why, and the next run does not read them again."""
    rename_across_filesystems(monkeypatch, settings.archive_dir)

    def no_copy(src, dst, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(shutil, "copy2", no_copy)
    files = len(files_under(landing))
    assets = [organisation_register, measure_returns]
    resources = {"working_file_run": WorkingFileRun()}
    instance = dg.DagsterInstance.ephemeral()

    first = dg.materialize(assets, resources=resources, instance=instance, raise_on_error=False)

    assert first.success
    [materialization] = [
        m
        for m in first.asset_materializations_for_node("measure_returns")
        if m.asset_key.path[-1] == "submission_log"
    ]
    metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    assert metadata["files_loaded"] == metadata["files_not_archived"] == files == 15
    assert all("Permission denied" in p for p in metadata["archive_problems"])
    warnings = [
        e.message
        for e in instance.all_logs(first.run_id)
        if e.level == 30 and "archiving:" in (e.message or "")
    ]
    assert len(warnings) == files
    assert len(files_under(landing)) == files
    # A second run finds nothing new: the files left in landing are not ingested twice.
    second = dg.materialize(assets, resources=resources, instance=instance)
    [again] = [
        m
        for m in second.asset_materializations_for_node("measure_returns")
        if m.asset_key.path[-1] == "submission_log"
    ]
    assert again.metadata["files_seen"].value == 0
    con = connect(load_settings().working_db)
    try:
        assert con.execute("select count(*) from raw.submission_log").fetchone() == (files,)
    finally:
        con.close()
