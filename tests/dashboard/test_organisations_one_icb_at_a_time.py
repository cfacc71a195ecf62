"""The site and the board reports hold one ICB's organisation charts at a time.

A national internal site has ~100,000 organisations; loading every organisation chart of a
measure (or, for the reports, of every measure) before rendering made publication's memory
grow with the nation (issue 14). ``load_series`` now loads a subset (the aggregate levels,
or one ICB's organisations), ``organisations_by_icb`` streams a measure's organisations ICB
by ICB from one ordered query, and a measure's time span comes from SQL. These tests pin
that the subsets are exactly the full load's charts, and count the organisation charts
alive while each page and report is written on the real build (DuckDB real, nothing
mocked)."""

from __future__ import annotations

import gc
import shutil
import weakref
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import duckdb
import pytest
from dashboard_fixtures import MONTHS, make_published_warehouse, public_warehouse

from pipelines.dashboard import build as site_build
from pipelines.dashboard.build import (
    _SERIES_COLUMNS,
    AGGREGATE_LEVELS,
    NAMES_SOURCES,
    load_series,
    load_site,
    organisations_by_icb,
)
from pipelines.dashboard.carry import organisation_page_digests
from pipelines.dashboard.model import Series
from pipelines.months import month_index
from pipelines.report import build as report_build
from pipelines.report.build import load_icb_organisations


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return make_published_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def moved(tmp_path_factory, warehouse: Path) -> Path:
    """The fixture snapshot where Hilltop (RZZ02, Zedshire) moved to Wyeshire halfway:
    its rows from the second year carry the new ICB, as an incremental fact keeps them."""
    folder = tmp_path_factory.mktemp("moved")
    shutil.copy(warehouse, folder / "warehouse.duckdb")
    shutil.copytree(warehouse.parent / "public", folder / "public")
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.execute(
            "update fct_spc set icb_code = 'QYY' where level = 'organisation'"
            " and series_key = 'RZZ02' and period >= ?",
            [MONTHS[12]],
        )
    return folder / "warehouse.duckdb"


def _full(con, tier: str = "internal"):
    site = load_site(con, tier)
    for measure in site.measures.values():
        load_series(con, site, measure)
    return site


def _charts(series: list[Series]) -> list[dict]:
    return [asdict(s) for s in series]


def _spc_counts(con) -> Counter:
    """Organisation charts per (measure, ICB of the chart's first month), from SQL."""
    rows = con.execute(
        """select measure_code, arg_min(icb_code, period) from fct_spc
           where tier = 'internal' and level = 'organisation' group by measure_code, series_key"""
    ).fetchall()
    return Counter(rows)


@pytest.mark.parametrize("fixture", ["warehouse", "moved"])
def test_one_icbs_organisations_are_the_full_loads_with_the_same_points(request, fixture):
    path = request.getfixturevalue(fixture)
    with duckdb.connect(str(path), read_only=True) as con:
        full = _full(con)
        icbs = sorted({s.icb_code for m in full.measures.values() for s in m.series["icb"]})
        assert icbs == ["QYY", "QZZ"]
        counts = _spc_counts(con)
        digests = organisation_page_digests(
            con, full.series_source, _SERIES_COLUMNS, NAMES_SOURCES["internal"], "internal"
        )
        for code, measure in full.measures.items():
            whole = measure.series["organisation"]
            for icb in icbs:
                site = load_site(con, "internal")
                load_series(con, site, site.measures[code], icb=icb)
                one = site.measures[code].series
                assert {level for level, charts in one.items() if charts} <= {"organisation"}
                want = [s for s in whole if s.icb_code == icb]
                assert _charts(one["organisation"]) == _charts(want)
                assert len(want) == counts[(code, icb)]
            # Streamed by ICB from one query: the same charts, each ICB's once, in page order.
            site = load_site(con, "internal")
            groups = list(organisations_by_icb(con, site, site.measures[code]))
            assert [icb for icb, _ in groups] == sorted({s.icb_code for s in whole})
            for icb, members in groups:
                assert _charts(members) == _charts([s for s in whole if s.icb_code == icb])
                # The pages left to render after others were carried: that ICB's alone.
                site = load_site(con, "internal")
                only = list(organisations_by_icb(con, site, site.measures[code], [icb]))
                assert [(i, _charts(m)) for i, m in only] == [(icb, _charts(members))]
            # Nothing without an ICB here; and a page's fingerprint is taken over the rows of
            # exactly the charts it shows (each chart on its first month's ICB's page).
            assert list(organisations_by_icb(con, site, site.measures[code], [None])) == []
            assert sorted(icb for c, icb in digests if c == code) == [i for i, _ in groups]
            # The aggregate levels alone: the full load's, and no organisation.
            site = load_site(con, "internal")
            load_series(con, site, site.measures[code], levels=AGGREGATE_LEVELS)
            aggregates = site.measures[code].series
            assert not aggregates.get("organisation")
            for level in AGGREGATE_LEVELS:
                assert _charts(aggregates.get(level, [])) == _charts(measure.series.get(level, []))
        # An ICB nobody belongs to has no organisation chart.
        site = load_site(con, "internal")
        load_series(con, site, site.measures["FALLS"], icb="Q00")
        assert not site.measures["FALLS"].series.get("organisation")


def test_an_organisation_that_moved_icb_keeps_one_chart_on_its_first_icbs_page(moved, tmp_path):
    with duckdb.connect(str(moved), read_only=True) as con:
        site = load_site(con, "internal")
        load_series(con, site, site.measures["FALLS"], icb="QYY")
        assert "RZZ02" not in {s.series_key for s in site.measures["FALLS"].series["organisation"]}
        load_series(con, site, site.measures["FALLS"], icb="QZZ")
        [hilltop] = [
            s for s in site.measures["FALLS"].series["organisation"] if s.series_key == "RZZ02"
        ]
        assert hilltop.icb_code == "QZZ" and len(hilltop.points) == len(MONTHS)
    site = site_build.build_site(moved, tmp_path / "site").parent
    assert "RZZ02" in (site / "measures" / "FALLS" / "QZZ.csv").read_text()
    assert "RZZ02" not in (site / "measures" / "FALLS" / "QYY.csv").read_text()


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_a_measures_time_span_is_its_charts_before_any_is_loaded(warehouse, tier):
    """The shared x axis comes from SQL at load_site, and is what the charts span."""
    path = warehouse if tier == "internal" else public_warehouse(warehouse)
    with duckdb.connect(str(path), read_only=True) as con:
        site = _full(con, tier)
        fresh = load_site(con, tier)
    spanned = 0
    for code, measure in site.measures.items():
        periods = [p.period for group in measure.series.values() for s in group for p in s.points]
        assert not fresh.measures[code].series
        if not periods:
            assert fresh.measures[code].months is None  # EMPTY: nothing sent yet
            continue
        spanned += 1
        assert fresh.measures[code].span == (min(periods), max(periods))
        assert fresh.measures[code].months == (month_index(min(periods)), month_index(max(periods)))
        assert fresh.measures[code].last_period == max(periods)
    assert spanned == 2


class _Alive:
    """Every organisation chart the build makes, counted while alive (weak references)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.charts: weakref.WeakSet[Series] = weakref.WeakSet()
        alive = self

        class Counted(Series):
            __hash__ = object.__hash__  # by identity, for the weak set

            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                if self.level == "organisation":
                    alive.charts.add(self)

        monkeypatch.setattr(site_build, "Series", Counted)

    def now(self) -> Counter:
        gc.collect()  # what is still reachable, not garbage awaiting a collection
        return Counter(s.icb_code for s in self.charts)


def test_the_site_holds_one_icbs_organisations_while_writing_its_page(
    warehouse, tmp_path, monkeypatch
):
    alive = _Alive(monkeypatch)
    written = []
    page = site_build._organisation_page

    def watched(env, common, site, measure, icb, members, out_dir):
        written.append((measure.code, icb, len(members), alive.now()))
        return page(env, common, site, measure, icb, members, out_dir)

    monkeypatch.setattr(site_build, "_organisation_page", watched)
    site_build.build_site(warehouse, tmp_path / "site")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = _spc_counts(con)
    assert {(code, icb): n for code, icb, n, _ in written} == dict(counts)
    for _, icb, members, held in written:
        assert held == Counter({icb: members})  # that ICB's charts, nothing else
    # The largest ICB bounds the charts held (Zedshire's falls: three of the four).
    assert max(sum(held.values()) for *_, held in written) == max(counts.values()) == 3
    assert sum(n for (code, _), n in counts.items() if code == "FALLS") == 4


def test_the_reports_hold_one_icbs_organisations_while_writing_its_report(
    warehouse, tmp_path, monkeypatch
):
    alive = _Alive(monkeypatch)
    written = []
    write = report_build._write_report

    def watched(ctx, *args, **kwargs):
        organisations = {o["code"] for o in ctx["organisations"]}
        written.append((ctx["spec"].code, organisations, alive.now()))
        return write(ctx, *args, **kwargs)

    monkeypatch.setattr(report_build, "_write_report", watched)
    report_build.build_reports(warehouse, tmp_path / "reports", pdf=False)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        per_icb = Counter(
            icb
            for (icb,) in con.execute(
                """select any_value(icb_code) from fct_spc where tier = 'internal'
                   and level = 'organisation' group by measure_code, series_key"""
            ).fetchall()
        )
        orgs = dict(
            con.execute(
                "select icb_code, list(distinct org_code order by org_code) from fct_spc"
                " where tier = 'internal' and level = 'organisation' group by icb_code"
            ).fetchall()
        )
    assert [code for code, *_ in written] == [None, "QYY", "QZZ"]
    for code, organisations, held in written:
        if code is None:  # the region's report: no organisation
            assert not organisations and not held
            continue
        assert organisations == set(orgs[code])
        assert held == Counter({code: per_icb[code]})  # every measure's, of this ICB only
    # Each ICB report still links its organisations page and the dashboard's script.
    folder = tmp_path / "reports"
    assert (folder / "icb-QZZ-organisations.html").is_file()
    assert (folder / "dashboard.js").is_file()


def test_a_report_of_one_icb_loads_every_measures_organisations_of_it(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        full = _full(con)
        site = load_site(con, "internal")
        load_icb_organisations(con, site, "QZZ")
    for code, measure in site.measures.items():
        want = [s for s in full.measures[code].series["organisation"] if s.icb_code == "QZZ"]
        assert _charts(measure.series.get("organisation", [])) == _charts(want)
    assert sum(len(m.series["organisation"]) for m in site.measures.values()) == 5
