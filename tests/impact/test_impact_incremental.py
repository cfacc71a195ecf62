"""The impact method is kept incrementally by series (docs/programme-impact.md, "Incremental
by series"): on the sample's returns, runs that bring one organisation's revised return, a
register move, a deleted recorded change and nothing at all leave every impact table as a
full refresh of the same data builds it, and each rebuilds exactly the series whose inputs
moved (a model that rebuilt everything, or too little, fails)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from support.incremental import assert_same_rows, mark, rebuilt_units
from support.warehouse import dbt_build

from pipelines.defs.spc import refresh_spc
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT, load_settings
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"
# What the SPC step reads (the period facts of both tiers, the register of changes), then
# the SPC views and the impact models with what they read.
BEFORE_SPC = ["+tag:period_partitioned", "+dim_change", "+pub_change", "+dim_measure"]
AFTER_SPC = ["+path:models/spc", "+path:models/impact"]
IMPACT = (
    "intermediate.int_programme_impact__inputs",
    "intermediate.int_programme_impact__series",
    "marts.fct_programme_impact",
    "marts.mart_unexplained_shifts",
    "public.pub_programme_impact",
)
SERIES = "intermediate.int_programme_impact__series"
KEYS = ("level", "series_key", "measure_code")
# A column of the series model nothing downstream reads, never null in a built row: nulled
# before a build, it shows which series the build rebuilt.
MARKED = "is_count_chart"


class Region:
    """A working file with the sample register, a landing folder and a change register
    the test edits run by run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "working.duckdb"
        self.register = root / "change_register.csv"
        shutil.copy(PROJECT_ROOT / "config" / "change_register.csv", self.register)
        self.vars = {**load_settings().dbt_vars(), "change_register": str(self.register)}

    def build(self, select: list[str], *args: str, db: Path | None = None) -> None:
        done = dbt_build(
            db or self.db, self.root / "dbt", select, dbt_vars=self.vars, args=args, timeout=900
        )
        assert done.returncode == 0, done.stdout[-4000:]

    def run(self) -> set[tuple]:
        """One run: the landing folder ingested, the facts built, SPC, the impact models;
        the series the impact build rebuilt."""
        with connect(self.db) as con:
            ingest_landing(con, load_settings())
        self.build(BEFORE_SPC)
        with connect(self.db) as con:
            refresh_spc(con)
        with duckdb.connect(str(self.db), read_only=True) as con:
            first = not con.execute(
                "select count(*) from information_schema.tables where table_name = ?",
                [SERIES.split(".")[1]],
            ).fetchone()[0]
        if first:
            self.build(AFTER_SPC)
            return set()
        marks = mark(self.db, SERIES, MARKED, KEYS)
        self.build(AFTER_SPC)
        return rebuilt_units(self.db, SERIES, MARKED, KEYS, marks)

    def assert_equals_full_refresh(self) -> None:
        full = self.root / "full" / self.db.name
        full.parent.mkdir(exist_ok=True)
        shutil.copy(self.db, full)
        self.build(["path:models/impact"], "--full-refresh", db=full)
        assert_same_rows(self.db, full, IMPACT)
        full.unlink()

    def series(self, where: str, params: list | None = None) -> set[tuple]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            return set(
                con.execute(
                    f"select distinct {', '.join(KEYS)} from {SERIES} where {where}", params or []
                ).fetchall()
            )


@pytest.fixture
def region(tmp_path, monkeypatch) -> Region:
    monkeypatch.setenv("SAFETY_OBS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    shutil.copytree(SAMPLES / "landing", tmp_path / "landing")
    made = Region(tmp_path)
    with connect(made.db) as con:
        load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    return made


def test_incremental_builds_equal_a_full_refresh_and_rebuild_only_what_changed(region):
    # Run 1: the sample's 24 months; the first build.
    assert region.run() == set()
    everything = region.series("true")
    assert {level for level, _, _ in everything} == {"organisation", "sector", "icb", "region"}

    # Run 2: RTD resubmits March 2024 with one more fall: its FALLS_HARM series and those of
    # its sector, ICB and the region, nothing else.
    month = (SAMPLES / "landing" / "2024-04" / "RTD_2024-03.csv").read_text().splitlines()
    revised = [
        ",".join([*f[:3], str(int(f[3]) + 1), f[4]]) if f[2] == "FALLS_HARM" else line
        for line, f in ((line, line.split(",")) for line in month)
    ]
    assert revised != month
    (region.root / "landing" / "2024-05").mkdir(exist_ok=True)
    (region.root / "landing" / "2024-05" / "RTD_2024-03_revised.csv").write_text(
        "\n".join(revised) + "\n"
    )
    with duckdb.connect(str(region.db), read_only=True) as con:
        icb, sector = con.execute(
            f"select icb_code, sector_code from {SERIES}"
            " where level = 'organisation' and org_code = 'RTD' and measure_code = 'FALLS_HARM'"
        ).fetchone()
    assert region.run() == {
        ("organisation", "RTD", "FALLS_HARM"),
        ("sector", f"{icb}|{sector}", "FALLS_HARM"),
        ("icb", icb, "FALLS_HARM"),
        ("region", "region", "FALLS_HARM"),
    }
    region.assert_equals_full_refresh()

    # Run 3: RR7 moves to the community trusts: its own series (their sector shows) and the
    # sector series it left and joined, for the measures it returns; its ICB's and the
    # region's hold the same organisations: kept.
    local = region.root / "local_register.csv"
    local.write_text(
        (SAMPLES / "local_register.csv").read_text().rstrip("\n") + "\nRR7,,community_trust,,,,\n"
    )
    with connect(region.db) as con:
        load_register(con, SAMPLES / "ods", local)
    measures = {m for _, _, m in region.series("org_code = 'RR7'")}
    assert measures
    left = region.series("series_key = 'QHM|acute_trust'")
    rebuilt = region.run()
    joined = region.series("series_key = 'QHM|community_trust'")
    assert rebuilt == region.series("org_code = 'RR7'") | {
        s for s in left | joined if s[2] in measures
    }
    assert {level for level, _, _ in rebuilt} == {"organisation", "sector"}
    region.assert_equals_full_refresh()

    # Run 4: CHG-003 is withdrawn from the change register: the series it applied to.
    with duckdb.connect(str(region.db), read_only=True) as con:
        applied = set(
            con.execute(
                f"select distinct {', '.join(KEYS)} from marts.fct_series_change"
                " where change_id = 'CHG-003'"
            ).fetchall()
        )
    assert applied
    lines = region.register.read_text().splitlines()
    region.register.write_text("\n".join(x for x in lines if not x.startswith("CHG-003,")) + "\n")
    assert region.run() == applied
    region.assert_equals_full_refresh()

    # Run 5: nothing new: nothing rebuilt, nothing lost.
    before = region.series("true")
    assert region.run() == set()
    assert region.series("true") == before
    region.assert_equals_full_refresh()
