"""Incremental publication: exports are sorted, so identical data gives identical bytes;
whatever the new snapshot shares with the current one is carried from it (hard-linked, its
checksum reused) rather than written again; and every checksum of the new manifest still
verifies, after pruning and after a publish killed at any point."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.publish import snapshot
from pipelines.publish.snapshot import (
    CRASH_POINTS,
    PreviousSnapshot,
    build_tier,
    publish,
    verify_snapshot,
)
from pipelines.settings import PROJECT_ROOT

TIERS = {
    "internal": {
        "fct_measure_monthly": "marts.fct_measure_monthly",
        "dim_measure": "marts.dim_measure",
    },
    "public": {
        "pub_measure_by_icb_monthly": "public.pub_measure_by_icb_monthly",
        "dim_measure": "marts.dim_measure",
    },
}
CHANGED = "fct_measure_monthly"


def make_working(path: Path, *, seed: float = 0.5, rows: int = 3000) -> Path:
    """A small working file whose rows are inserted in a random order (``seed``), so two
    files with the same rows differ in their physical order."""
    with duckdb.connect(str(path)) as con:
        con.execute(f"select setseed({seed})")
        con.execute("create schema marts")
        con.execute("create schema public")
        con.execute(
            "create table marts.fct_measure_monthly as select"
            " 'R' || lpad((i % 50)::varchar, 2, '0') as org_code,"
            " 'M' || (i // 50 % 6) as measure_code,"
            " date '2020-01-01' + to_months((i // 300)::int) as period,"
            " (i * 37) % 101 as numerator, 200 + (i % 7) as denominator,"
            " case when i % 97 = 0 then '=HYPERLINK(1)' else 'ok' end as note"
            f" from range({rows}) t(i) order by random()"
        )
        con.execute(
            "create table marts.dim_measure as select 'M' || i as measure_code,"
            " 'Measure ' || i as measure_name from range(6) t(i) order by random()"
        )
        con.execute(
            "create table public.pub_measure_by_icb_monthly as select 'QHM' as icb_code,"
            " measure_code, period, sum(numerator) as numerator"
            " from marts.fct_measure_monthly group by all order by random()"
        )
    return path


def change_one_value(working: Path) -> None:
    with duckdb.connect(str(working)) as con:
        con.execute(
            "update marts.fct_measure_monthly set numerator = numerator + 1"
            " where org_code = 'R07' and measure_code = 'M1' and period = date '2020-01-01'"
        )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exports(folder: Path) -> dict[str, Path]:
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".parquet", ".csv")
    }


def test_the_same_rows_in_another_order_give_byte_identical_exports(tmp_path):
    """Sorted exports: the working files hold the same rows in different physical orders
    (and, at 300,000 rows, Parquet with several row groups written by several threads),
    yet every Parquet and CSV file is byte for byte the same; one changed value changes
    exactly its table's files."""
    rows = 300_000
    tables = TIERS["internal"]
    first = make_working(tmp_path / "a.duckdb", seed=0.1, rows=rows)
    second = make_working(tmp_path / "b.duckdb", seed=0.9, rows=rows)
    with duckdb.connect(str(first), read_only=True) as a, duckdb.connect(str(second)) as b:
        order = "select * from marts.fct_measure_monthly limit 20"
        assert a.execute(order).fetchall() != b.execute(order).fetchall()
        assert b.execute("select current_setting('threads')").fetchone()[0] > 1
    build_tier(first, tmp_path / "one", tables, csv=True)
    build_tier(second, tmp_path / "two", tables, csv=True)
    one, two = exports(tmp_path / "one"), exports(tmp_path / "two")
    assert (
        sorted(one)
        == sorted(two)
        == [
            "csv/dim_measure.csv",
            "csv/fct_measure_monthly.csv",
            "parquet/dim_measure.parquet",
            "parquet/fct_measure_monthly.parquet",
        ]
    )
    assert {n: digest(p) for n, p in one.items()} == {n: digest(p) for n, p in two.items()}
    with duckdb.connect() as con:
        groups = con.execute(
            "select count(distinct row_group_id) from parquet_metadata(?)",
            [str(one["parquet/fct_measure_monthly.parquet"])],
        ).fetchone()[0]
    assert groups > 1

    change_one_value(second)
    build_tier(second, tmp_path / "three", tables, csv=True)
    three = exports(tmp_path / "three")
    differ = sorted(n for n in one if digest(one[n]) != digest(three[n]))
    assert differ == ["csv/fct_measure_monthly.csv", "parquet/fct_measure_monthly.parquet"]


def test_only_the_public_tier_has_csv_unless_asked(tmp_path):
    working = make_working(tmp_path / "working.duckdb")
    plain = publish(working, tmp_path / "plain", TIERS, run_id="plain-run", check_results=[])
    assert not (plain.snapshot_dir / "csv").exists()
    assert sorted(p.name for p in (plain.snapshot_dir / "public" / "csv").iterdir()) == [
        "dim_measure.csv",
        "pub_measure_by_icb_monthly.csv",
    ]
    assert (plain.snapshot_dir / "parquet" / f"{CHANGED}.parquet").exists()
    asked = publish(
        working,
        tmp_path / "asked",
        TIERS,
        run_id="asked-run",
        check_results=[],
        internal_csv=True,
    )
    assert (asked.snapshot_dir / "csv" / f"{CHANGED}.csv").exists()
    # Formula-safe as before: the cell a spreadsheet would run keeps its apostrophe.
    assert "'=HYPERLINK(1)" in (asked.snapshot_dir / "csv" / f"{CHANGED}.csv").read_text()


def test_a_second_publication_carries_what_did_not_change(tmp_path):
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    first = publish(
        working, published, TIERS, run_id="first-run", check_results=[], internal_csv=True
    )
    assert first.manifest["carried_files"] == 0
    old = {n: p.stat() for n, p in exports(first.snapshot_dir).items()}
    old_bytes = {n: p.read_bytes() for n, p in exports(first.snapshot_dir).items()}

    change_one_value(working)
    second = publish(
        working,
        published,
        TIERS,
        run_id="second-run",
        check_results=[],
        internal_csv=True,
        keep=1,  # the first snapshot is pruned at once: carried files must survive it
    )
    assert not first.snapshot_dir.exists()
    new = exports(second.snapshot_dir)
    assert sorted(new) == sorted(old)
    changed = {f"parquet/{CHANGED}.parquet", f"csv/{CHANGED}.csv"}
    for name, path in new.items():
        stat = path.stat()
        if name in changed:
            assert stat.st_ino != old[name].st_ino, name
            assert path.read_bytes() != old_bytes[name], name
        else:
            # The same inode, now only reachable from the new snapshot, with its bytes.
            assert stat.st_ino == old[name].st_ino, name
            assert path.read_bytes() == old_bytes[name], name
    assert second.manifest["carried_files"] == len(old) - len(changed)
    assert verify_snapshot(second.snapshot_dir) == []
    assert published.joinpath("current").resolve() == second.snapshot_dir
    with duckdb.connect() as con:
        [(value,)] = con.execute(
            "select numerator from read_parquet(?) where org_code = 'R07'"
            " and measure_code = 'M1' and period = date '2020-01-01'",
            [str(new[f"parquet/{CHANGED}.parquet"])],
        ).fetchall()
    with duckdb.connect(str(working), read_only=True) as con:
        [(expected,)] = con.execute(
            "select numerator from marts.fct_measure_monthly where org_code = 'R07'"
            " and measure_code = 'M1' and period = date '2020-01-01'"
        ).fetchall()
    assert value == expected


def test_an_unchanged_table_is_copied_from_the_previous_tier_file_not_sorted_again(tmp_path):
    """A table whose recipe (columns, order, rows by count and hash sum, DuckDB version) is
    the previous snapshot's is copied from the previous tier file, in its export order,
    with its Parquet linked; a table with one changed value (same row count) is built from
    the working file; and when the previous tier file was touched after its manifest, no
    table is carried, though unchanged exports still are (by their checksums)."""
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    first = publish(working, published, TIERS, run_id="first-run", check_results=[])
    assert first.manifest["carried_tables"] == []
    change_one_value(working)
    second = publish(working, published, TIERS, run_id="second-run", check_results=[])
    unchanged = ["dim_measure", "public/dim_measure", "public/pub_measure_by_icb_monthly"]
    assert second.manifest["carried_tables"] == unchanged
    assert second.manifest["tables"]["dim_measure"] == first.manifest["tables"]["dim_measure"]
    assert second.manifest["tables"][CHANGED] != first.manifest["tables"][CHANGED]
    assert verify_snapshot(second.snapshot_dir) == []
    for folder, table, source in [
        ("", "dim_measure", "marts.dim_measure"),
        ("public/", "pub_measure_by_icb_monthly", "public.pub_measure_by_icb_monthly"),
        ("", CHANGED, f"marts.{CHANGED}"),
    ]:
        with duckdb.connect(str(second.snapshot_dir / folder / "warehouse.duckdb")) as con:
            published_rows = con.execute(f"select * from {table}").fetchall()  # stored order
            con.execute(f"attach '{working}' as working (read_only)")
            order = ", ".join(d[0] for d in con.execute(f"select * from {table}").description)
            if table == CHANGED:
                order = "period, measure_code, org_code, " + order
            expected = con.execute(f"select * from working.{source} order by {order}").fetchall()
        assert published_rows == expected, table

    tier_file = second.snapshot_dir / "warehouse.duckdb"
    os.utime(tier_file)  # newer than the manifest: not to be trusted
    third = publish(working, published, TIERS, run_id="third-run", check_results=[])
    assert third.manifest["carried_tables"] == [t for t in unchanged if t.startswith("public/")]
    assert "parquet/dim_measure.parquet" in {
        n for n in third.manifest["files"] if (third.snapshot_dir / n).stat().st_nlink > 1
    }
    assert verify_snapshot(third.snapshot_dir) == []


def test_a_publication_says_where_its_time_went(tmp_path):
    """Every table of every tier, the extras, the audit, the checksums and the fsync are
    timed (wall and CPU) and come back on the publication, in the order they ran: what
    ``published_snapshot`` logs and ``make bench`` prints under the step."""
    working = make_working(tmp_path / "working.duckdb")

    def extras(snapshot: Path) -> dict:
        time.sleep(0.3)  # waiting costs wall time, not CPU
        return {}

    publication = publish(
        working,
        tmp_path / "published",
        TIERS,
        run_id="timed-run",
        check_results=[],
        extras=extras,
        audit=lambda snapshot: [],
    )
    phases = publication.phases
    assert list(phases) == [
        "table dim_measure",
        "table fct_measure_monthly",
        "checkpoint warehouse.duckdb",
        "table public/dim_measure",
        "table public/pub_measure_by_icb_monthly",
        "checkpoint public/warehouse.duckdb",
        "extras",
        "audit",
        "checksums",
        "fsync",
    ]
    assert phases["extras"]["wall_s"] >= 0.3
    assert phases["extras"]["cpu_s"] < 0.2
    assert all(f["wall_s"] >= 0 and f["cpu_s"] >= 0 for f in phases.values())


def test_a_file_altered_after_publication_is_written_again_not_carried(tmp_path):
    """The checksum a carried file takes from the previous manifest is only trusted if the
    file still has the recorded size and was not modified after that manifest."""
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    first = publish(working, published, TIERS, run_id="first-run", check_results=[])
    altered = first.snapshot_dir / "public" / "csv" / "dim_measure.csv"
    text = altered.read_text()
    os.chmod(altered, 0o644)
    altered.write_text(text.replace("Measure 1", "Measure X"))  # same size, new bytes
    assert verify_snapshot(first.snapshot_dir) == [
        "public/csv/dim_measure.csv: changed since publication"
    ]
    second = publish(working, published, TIERS, run_id="second-run", check_results=[])
    fresh = second.snapshot_dir / "public" / "csv" / "dim_measure.csv"
    assert fresh.stat().st_ino != altered.stat().st_ino
    assert "Measure 1" in fresh.read_text()
    assert verify_snapshot(second.snapshot_dir) == []


def test_a_csv_made_another_way_is_not_carried(tmp_path):
    """Same Parquet bytes, but the previous CSV came from another recipe (another CSV
    query or DuckDB version, here a manifest that records a different one): the CSV is
    written again (and only linked afterwards if its bytes turn out the same)."""
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    first = publish(working, published, TIERS, run_id="first-run", check_results=[])
    manifest_path = first.snapshot_dir / snapshot.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["exports"]["public/csv/dim_measure.csv"] = "another recipe"
    manifest_path.write_text(json.dumps(manifest))
    public = build_tier(
        working,
        tmp_path / "building" / "public",
        TIERS["public"],
        previous=PreviousSnapshot.of(published),
        prefix="public/",
    )
    assert "public/parquet/dim_measure.parquet" in public.carried
    assert "public/csv/dim_measure.csv" not in public.carried  # written again
    assert "public/csv/pub_measure_by_icb_monthly.csv" in public.carried
    assert "public/csv/dim_measure.csv" not in public.files  # to be hashed as written


def test_without_hard_links_carried_files_are_copied(tmp_path, monkeypatch):
    """Across file systems (EXDEV) a carried file is copied: same bytes and checksum."""
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    first = publish(working, published, TIERS, run_id="first-run", check_results=[])

    def no_link(source, target):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(target))

    monkeypatch.setattr(os, "link", no_link)
    second = publish(working, published, TIERS, run_id="second-run", check_results=[])
    assert second.manifest["carried_files"] > 0
    for name, path in exports(second.snapshot_dir).items():
        old = first.snapshot_dir / name
        assert path.stat().st_ino != old.stat().st_ino
        assert path.read_bytes() == old.read_bytes()
    assert verify_snapshot(second.snapshot_dir) == []


PUBLISH_ONCE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from pipelines.publish.snapshot import publish
    publish(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), run_id=sys.argv[4],
            check_results=[], keep=1, internal_csv=True)
    """
)


def test_a_publish_killed_at_any_point_keeps_a_whole_current_publication(tmp_path):
    """Each crash point in turn, with a changed table so that the killed publication both
    carries and writes files: ``current`` stays whole (every checksum verifies, including
    the carried files), and a re-run publishes and cleans up. ``keep=1``, so each re-run
    prunes every older snapshot from which its files were carried."""
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    publish(working, published, TIERS, run_id="base-run", check_results=[], internal_csv=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}

    def run(point: str | None, run_id: str) -> subprocess.CompletedProcess:
        extra = {"SAFETY_OBS_CRASH_AT": point} if point else {}
        return subprocess.run(
            [
                sys.executable,
                "-c",
                PUBLISH_ONCE,
                str(working),
                str(published),
                json.dumps(TIERS),
                run_id,
            ],
            env={**env, **extra},
            capture_output=True,
            cwd=PROJECT_ROOT,
        )

    for point in CRASH_POINTS:
        change_one_value(working)
        old = published.joinpath("current").resolve()
        killed = run(point, f"crash-{point}")
        assert killed.returncode == 137, killed.stderr.decode()[-2000:]
        now = published.joinpath("current").resolve()
        assert verify_snapshot(now) == [], point
        assert (now != old) == (point == "link_swapped"), point
        again = run(None, f"rerun-{point}")
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        latest = published.joinpath("current").resolve()
        assert latest.name.endswith(f"rerun-{point}"[:8])
        assert verify_snapshot(latest) == [], point
        assert [p.name for p in (published / "snapshots").iterdir()] == [latest.name]
        assert not list(published.glob(".current-*"))


@pytest.mark.parametrize("bad", ["not json", '{"files": {}}'])
def test_an_unreadable_or_empty_previous_manifest_carries_nothing(tmp_path, bad):
    working = make_working(tmp_path / "working.duckdb")
    published = tmp_path / "published"
    first = publish(working, published, TIERS, run_id="first-run", check_results=[])
    (first.snapshot_dir / snapshot.MANIFEST_FILE).write_text(bad)
    second = publish(working, published, TIERS, run_id="second-run", check_results=[])
    assert second.manifest["carried_files"] == 0
    assert verify_snapshot(second.snapshot_dir) == []


def test_a_months_facts_lie_together_in_the_published_file(tmp_path):
    """The published facts are ordered by month first, so a query for one month (the
    league table, the missing returns) reads that month's row groups only: every month's
    rows sit in at most two of the file's row groups (122,880 rows each), although the
    working file holds them in random order and there are several row groups."""
    working = make_working(tmp_path / "working.duckdb", rows=300_000)
    build_tier(working, tmp_path / "tier", {CHANGED: TIERS["internal"][CHANGED]}, csv=False)
    with duckdb.connect(str(tmp_path / "tier" / "warehouse.duckdb"), read_only=True) as con:
        spans = con.execute(
            "select period, count(distinct rowid // 122880) from fct_measure_monthly"
            " group by period"
        ).fetchall()
        groups = con.execute(
            "select count(distinct rowid // 122880) from fct_measure_monthly"
        ).fetchone()[0]
    assert groups > 1
    assert len(spans) == 1000
    assert max(n for _, n in spans) <= 2
