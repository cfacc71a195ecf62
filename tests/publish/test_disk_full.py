"""A full disk while publishing: nothing is published, the half-written snapshot is gone
(its space freed), ``current`` is untouched, and the refusal names the operating system's
error (``No space left on device``) so whoever reads the publication log knows what to
fix."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from pipelines.publish import snapshot
from pipelines.publish.snapshot import PublicationRefused, publish, verify_snapshot

TIERS = {"internal": {"fct_measure_monthly": "marts.fct_measure_monthly"}}


@pytest.fixture
def working_db(tmp_path: Path) -> Path:
    path = tmp_path / "working.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_measure_monthly as select 'RTD' as org_code,"
            " 'FALLS_HARM' as measure_code, date '2024-06-01' as period, 7 as numerator"
        )
    return path


def disk_full(path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def published_state(published: Path) -> tuple[Path, list[str]]:
    return published.joinpath("current").resolve(), sorted(
        p.name for p in (published / "snapshots").iterdir()
    )


def test_disk_full_while_building_a_tier(working_db, tmp_path, monkeypatch):
    published = tmp_path / "published"
    first = publish(working_db, published, TIERS, run_id="first-run", check_results=[])
    before = published_state(published)
    real_build_tier = snapshot.build_tier

    def build_tier_until_full(working, tier_dir, tables, **options):
        real_build_tier(working, tier_dir, tables, **options)  # some files written, then no space
        raise disk_full(str(tier_dir / "parquet" / "fct_measure_monthly.parquet"))

    monkeypatch.setattr(snapshot, "build_tier", build_tier_until_full)
    with pytest.raises(PublicationRefused) as refused:
        publish(working_db, published, TIERS, run_id="second-run", check_results=[])

    [problem] = refused.value.problems
    assert problem.startswith(
        "writing the snapshot failed: OSError: [Errno 28] No space left on device: '"
    )
    assert problem.endswith("/parquet/fct_measure_monthly.parquet'")
    assert published_state(published) == before  # no .building-* left, current unchanged
    assert verify_snapshot(first.snapshot_dir) == []


def test_disk_full_while_writing_the_manifest(working_db, tmp_path, monkeypatch):
    published = tmp_path / "published"
    publish(working_db, published, TIERS, run_id="first-run", check_results=[])
    before = published_state(published)
    real_write_text = Path.write_text

    def write_text(self: Path, *args, **kwargs):
        if self.name == snapshot.MANIFEST_FILE:
            raise disk_full(str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(PublicationRefused, match="No space left on device"):
        publish(working_db, published, TIERS, run_id="second-run", check_results=[])
    assert published_state(published) == before
