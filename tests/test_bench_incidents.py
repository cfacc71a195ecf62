"""The benchmark's national incident extracts: what the generator says it wrote is what the
plain-DuckDB baseline (a) counts in the same files, and a lost event fails the bench's count
check (docs/benchmark.md, "Incident extracts")."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLES
from pipelines.bench.baseline import run_baseline
from pipelines.bench.run import INCIDENT_COUNTS, Benchmark, compare_counts, count_failures

sys.path.insert(0, str(SAMPLES))
import national

SCALE = 0.002
MONTHS = 26  # two more than the incident window: the first two have no incidents
LAST = date(2025, 3, 1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("national")
    manifest = national.generate_national(data, scale=SCALE, months=MONTHS, last_period=LAST)
    return data, manifest


def test_incidents_only_for_the_last_24_months_at_the_stated_rate(generated):
    data, manifest = generated
    assert manifest["first_period"] == "2023-02"
    assert manifest["incident_first_period"] == "2023-04"
    event_months = {p.stem.rsplit("_", 1)[1] for p in (data / "incident_landing").rglob("*.csv")}
    assert min(event_months) == "2023-04" and max(event_months) == "2025-03"
    assert len(event_months) == national.INCIDENT_MONTHS
    # An extract holds only what was submitted by the last period: the pipeline quarantines
    # a report dated in the future (docs/incidents.md, report_in_future).
    submitted = set()
    for path in (data / "incident_landing").rglob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            submitted |= {row["SubmissionDate"][:7] for row in csv.DictReader(handle)}
    assert max(submitted) == "2025-03"
    expected = national.INCIDENT_EVENTS_A_YEAR * SCALE * 2  # two years at this scale
    assert 0.9 * expected < manifest["incident_events"] < 1.1 * expected


def test_extracts_of_one_trust_never_overlap(generated):
    """An extract replaces the previous one for the months it covers, from its earliest to
    its latest event (docs/incidents.md): each extract holds one event month, the one it is
    named for, received the month after, so the pipeline deletes none of its events."""
    data, manifest = generated
    with duckdb.connect() as con:
        extracts = con.execute(
            f"""
            select regexp_extract(filename, '([^/]+)_lfpse_(\\d{{4}}-\\d{{2}})', 1) as org,
                   regexp_extract(filename, '_lfpse_(\\d{{4}}-\\d{{2}})', 1) as named,
                   regexp_extract(filename, '/(\\d{{4}}-\\d{{2}})/[^/]+$', 1) as received,
                   strftime(min(T005::date), '%Y-%m') as first_month,
                   strftime(max(T005::date), '%Y-%m') as last_month
            from read_csv('{data / "incident_landing"}/*/*.csv', filename = true,
                          all_varchar = true)
            group by filename
            """
        ).fetchall()
    assert len(extracts) == manifest["incident_files"] == manifest["incident_org_months"]
    covered: set[tuple[str, str]] = set()
    for org, named, received, first_month, last_month in extracts:
        assert first_month == last_month == named, (org, named, first_month, last_month)
        after = national.sample.month_add(date.fromisoformat(named + "-01"), 1)
        assert received == f"{after:%Y-%m}", (org, named, received)
        assert (org, named) not in covered
        covered.add((org, named))


def test_the_bench_regenerates_data_with_overlapping_extracts(generated, tmp_path):
    """Data written before the extracts were by event month (no ``incident_extracts`` in its
    manifest) would fail the pipeline's incident_events count: the bench writes it again."""
    _, manifest = generated
    bench = Benchmark(scale=SCALE, out=tmp_path, months=MONTHS, last_period=LAST, log=print)
    bench.paths.data.mkdir(parents=True)
    manifest_path = bench.paths.data / "NATIONAL_MANIFEST.json"
    manifest_path.write_text(json.dumps(manifest))
    assert bench.generate()["reused"] is True

    stale = {k: v for k, v in manifest.items() if k != "incident_extracts"}
    manifest_path.write_text(json.dumps(stale))
    bench.loads = {}
    bench.paths.logs.mkdir(parents=True)
    assert bench.generate()["reused"] is False
    assert bench.manifest == manifest == json.loads(manifest_path.read_text())


def test_baseline_counts_what_the_generator_wrote(generated, tmp_path):
    data, manifest = generated
    detail = run_baseline(data, tmp_path / "a.duckdb")
    counts = compare_counts(manifest, {"baseline_before": detail})
    assert count_failures(counts) == []
    for name in INCIDENT_COUNTS:
        assert counts[name] == {
            "generator": manifest[name],
            "baseline_before": manifest[name],
            "match": True,
        }
    # Revised events carry both revisions: rows > events, and only the latest counts.
    assert manifest["incident_rows"] > manifest["incident_events"] > 0
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as con:
        revisions = dict(
            con.execute("select revision, count(*) from incident_rows group by 1").fetchall()
        )
        per_org_month = con.execute(
            "select count(*), min(events) from incident_events_monthly"
        ).fetchone()
    assert set(revisions) == {1, 2}
    assert per_org_month[0] == manifest["incident_org_months"] and per_org_month[1] > 0


def _drop_one_event(data: Path) -> str:
    """Remove every row of one event from one extract; returns its reference."""
    victim = sorted((data / "incident_landing").rglob("*.csv"))[0]
    with victim.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    reference = rows[-1][0]
    kept = [row for row in rows if row[0] != reference]
    assert len(rows) - len(kept) >= 1
    with victim.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(kept)
    return reference


def test_a_lost_event_fails_the_count_check(generated, tmp_path):
    source, manifest = generated
    data = tmp_path / "data"
    (data / "incident_landing").mkdir(parents=True)
    for path in (source / "incident_landing").rglob("*.csv"):
        target = data / "incident_landing" / path.relative_to(source / "incident_landing")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    for name in ("ods", "landing"):
        (data / name).symlink_to(source / name)
    (data / "local_register.csv").symlink_to(source / "local_register.csv")
    _drop_one_event(data)

    detail = run_baseline(data, tmp_path / "a.duckdb")
    failures = count_failures(compare_counts(manifest, {"baseline_before": detail}))

    assert detail["incident_events"] == manifest["incident_events"] - 1
    assert (
        f"count incident_events: generator {manifest['incident_events']}, "
        f"baseline_before {manifest['incident_events'] - 1}" in failures
    )
    assert any(f.startswith("count incident_rows:") for f in failures)
    assert not any(f.startswith("count rows:") for f in failures)  # the returns are whole


def test_a_missing_extract_fails_the_file_count(generated, tmp_path):
    source, manifest = generated
    data = tmp_path / "data"
    data.mkdir()
    for name in ("ods", "landing"):
        (data / name).symlink_to(source / name)
    (data / "local_register.csv").symlink_to(source / "local_register.csv")
    # No incident extracts at all: the baseline reads none, and every incident count fails.
    detail = run_baseline(data, tmp_path / "a.duckdb")
    assert {name: detail[name] for name in INCIDENT_COUNTS} == dict.fromkeys(INCIDENT_COUNTS, 0)
    failures = count_failures(compare_counts(manifest, {"baseline_before": detail}))
    assert {f.split(":")[0] for f in failures} == {f"count {n}" for n in INCIDENT_COUNTS}
