"""Two publications of the same data are byte-identical, CSV and Parquet, on the real
pipeline: a second full run over unchanged inputs rebuilds every dbt model (in another
physical order, with parallel sums) and publishes again, and every export has the first
publication's bytes. tests/publish/test_incremental_publication.py proves the sort itself
on a hand-made file; this proves nothing upstream of it moves a byte. The second
publication also carries every organisation page by its fingerprint (docs/dashboard.md,
"Carried pages"), and both sites are byte for byte the first publication's, which rendered
every page from scratch."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from conftest import point_settings_at, run_full_pipeline
from pipelines.settings import load_settings


def export_digests(snapshot: Path) -> dict[str, str]:
    return {
        p.relative_to(snapshot).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(snapshot.rglob("*"))
        if p.suffix in (".csv", ".parquet") and p.parent.name in ("csv", "parquet")
    }


def site_digests(snapshot: Path) -> dict[str, str]:
    return {
        p.relative_to(snapshot).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in (snapshot / "site", snapshot / "public" / "site")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_second_publication_of_the_same_data_has_identical_exports(sample_build, tmp_path):
    first = sample_build.published_snapshot()
    before = export_digests(first)
    # Both tiers' Parquet, and the public tier's CSV (the internal tier's CSV is off by
    # default; it is written from the same sorted table the same way).
    kinds = {(name.startswith("public/"), name.rsplit(".", 1)[1]) for name in before}
    assert kinds == {(False, "parquet"), (True, "csv"), (True, "parquet")}
    assert len(before) >= 50

    # The run publishes into a copy, so the shared sample stays as it was.
    root = tmp_path / "again"
    shutil.copytree(sample_build.working_db.parents[2], root, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        result = run_full_pipeline(dg.DagsterInstance.ephemeral())
        assert result.success
        settings = load_settings()
    second = settings.published_current.resolve()
    assert second.name != first.name
    after = export_digests(second)
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert changed == [] and sorted(after) == sorted(before)
    # And so the second publication carried every export from the first.
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["carried_files"] >= len(before)
    first_manifest = json.loads((first / "manifest.json").read_text())
    assert first_manifest["carried_pages"] == []
    pages = sorted(manifest["rendered_from"])
    assert len(pages) >= 10 and manifest["carried_pages"] == pages
    assert site_digests(second) == site_digests(first)
