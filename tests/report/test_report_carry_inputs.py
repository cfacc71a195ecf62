"""Board reports carried on their input fingerprint (pipelines/report/carry.py): a report
whose inputs are the previous build's is linked from it before its organisations are read
or any template is rendered; anything else is rendered as before, and every build's bytes
are a fresh build's (the run's id aside, as a carried report keeps the run that rendered
it).

Built on the report fixture's real DuckDB tier files (tests/report/report_fixtures.py),
changed with SQL as a run would change them. Each case builds once from scratch, once
after the change with the first build as the previous folder, and once from scratch after
the change: the carried build must equal the fresh one byte for byte, so a fingerprint
that left out the changed input would carry a stale file and fail here."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import jinja2
import pytest
from report_fixtures import make_report_warehouse, public_warehouse

from pipelines.publish.disclosure import DisclosureRules
from pipelines.publish.snapshot import link_or_copy
from pipelines.report import build as report_build
from pipelines.report.build import INPUTS_FILE, build_reports, previous_reports
from pipelines.report.carry import read_previous

PUBLISHED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
REPORTS = ["icb-QYY", "icb-QZZ", "region"]


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> Path:
    """The fixture snapshot's internal file (the public one beside it); read-only."""
    return make_report_warehouse(tmp_path_factory.mktemp("fixture") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def first(tmp_path_factory, fixture: Path) -> dict[str, Path]:
    """Each tier's reports built once from the fixture: the previous folder of every case."""
    root = tmp_path_factory.mktemp("first")
    return {
        tier: _build(_source(fixture, tier), root / tier, tier, "run-first")
        for tier in ("internal", "public")
    }


@pytest.fixture
def snapshot(tmp_path, fixture: Path) -> Path:
    """A copy of the fixture snapshot's two tier files, for a case to change."""
    shutil.copy(fixture, tmp_path / "warehouse.duckdb")
    shutil.copytree(fixture.parent / "public", tmp_path / "public")
    return tmp_path / "warehouse.duckdb"


class Watch:
    """Counts, on the real code, the ICBs whose organisations are loaded and the
    templates rendered (a wrapper that calls through: nothing is stubbed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loaded: list[str] = []
        self.rendered: list[str] = []
        load, render = report_build.load_icb_organisations, jinja2.Template.render

        def loading(con, site, icb):
            self.loaded.append(icb)
            return load(con, site, icb)

        def rendering(template, *args, **kwargs):
            self.rendered.append(template.name)
            return render(template, *args, **kwargs)

        monkeypatch.setattr(report_build, "load_icb_organisations", loading)
        monkeypatch.setattr(jinja2.Template, "render", rendering)


def _source(internal: Path, tier: str) -> Path:
    return internal if tier == "internal" else public_warehouse(internal)


def _build(
    source: Path,
    out: Path,
    tier: str,
    run_id: str,
    previous: Path | None = None,
    rules: DisclosureRules | None = None,
) -> Path:
    """Build ``tier``'s reports (HTML only) into ``out``, carrying from ``previous``."""

    def carry(name: str, target: Path) -> bool:
        assert previous is not None
        if not (previous / name).is_file():
            return False
        link_or_copy(previous / name, target)
        return True

    build_reports(
        source,
        out,
        tier,
        region_name="Test Region",
        published_at=PUBLISHED_AT,
        run_id=run_id,
        rules=rules or DisclosureRules(),
        pdf=False,
        previous=previous_reports(previous, carry) if previous is not None else None,
    )
    return out


def _files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix in (".html", ".json")}


def _relinked(after: Path, before: Path) -> dict[str, bool]:
    """Each report file of ``after`` (index aside): whether it is ``before``'s very file."""
    old = _files(before)
    return {
        name: name in old and path.stat().st_ino == old[name].stat().st_ino
        for name, path in _files(after).items()
        if name.endswith(".html") and name != "index.html"
    }


def _reports(names: set[str]) -> list[str]:
    return sorted({n.removesuffix(".html").removesuffix("-organisations") for n in names})


def _same_as_fresh(carried: Path, fresh: Path, run_ids: dict[str, str]) -> None:
    """``carried`` holds ``fresh``'s bytes in every file, each report's run stamp aside
    (``run_ids``: the run id each build wrote, replaced by one placeholder)."""

    def text(path: Path) -> str:
        body = path.read_text()
        for run_id in run_ids:
            body = body.replace(run_id, "RUN")
        return body

    a, b = _files(carried), _files(fresh)
    assert sorted(a) == sorted(b)
    for name in a:
        assert text(a[name]) == text(b[name]), name


def _carried_build(
    snapshot: Path, previous: Path, tier: str, tmp_path: Path, monkeypatch, **kwargs
) -> tuple[Path, Watch]:
    """The changed snapshot built with ``previous`` as the previous folder (watched),
    and checked against a fresh build of it."""
    watch = Watch(monkeypatch)
    carried = _build(_source(snapshot, tier), tmp_path / "carried", tier, "run-carried",
                     previous, **kwargs)  # fmt: skip
    monkeypatch.undo()
    fresh = _build(_source(snapshot, tier), tmp_path / "fresh", tier, "run-fresh", **kwargs)
    _same_as_fresh(carried, fresh, {"run-carried": "", "run-fresh": "", "run-first": ""})
    return carried, watch


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_nothing_changed_carries_every_report_without_reading_or_rendering(
    tier, first, snapshot, tmp_path, monkeypatch
):
    carried, watch = _carried_build(snapshot, first[tier], tier, tmp_path, monkeypatch)
    relinked = _relinked(carried, first[tier])
    assert relinked and all(relinked.values()), relinked
    if tier == "internal":
        assert {"icb-QZZ-organisations.html", "icb-QYY-organisations.html"} <= set(relinked)
    assert watch.loaded == []
    assert watch.rendered == ["index.html.j2"]
    # The carried reports keep the run that rendered them; their records are the first's.
    assert "run-first" in (carried / "region.html").read_text()
    records = json.loads((carried / INPUTS_FILE).read_text())
    assert records == json.loads((first[tier] / INPUTS_FILE).read_text())
    assert sorted(records) == REPORTS and all(r["inputs"] for r in records.values())


def _update(path: Path, sql: str, params: list, rows: int) -> None:
    with duckdb.connect(str(path)) as con:
        assert con.execute(sql, params).fetchone()[0] == rows


LATEST_FALLS = (
    "measure_code = 'FALLS' and period = (select max(period) from fct_spc"
    " where measure_code = 'FALLS')"
)


@pytest.mark.parametrize(
    ("change", "rows", "rendered"),
    [
        # One organisation's SPC row: its ICB's report only (its organisations page shows
        # it; no aggregate moved).
        ("level = 'organisation' and series_key = 'RYY01'", 1, ["icb-QYY"]),
        # With the rows its month reaches above it (ICB and region), as a run recomputes
        # them: the region report shows the ICB, so it is rendered too.
        ("(level = 'organisation' and series_key = 'RYY01') or (level = 'icb'"
         " and series_key = 'QYY') or level = 'region'", 3, ["icb-QYY", "region"]),
    ],
)  # fmt: skip
def test_an_organisations_changed_month_renders_only_the_reports_it_reaches(
    change, rows, rendered, first, snapshot, tmp_path, monkeypatch
):
    _update(
        snapshot,
        f"update fct_spc set value = value * 1.5, numerator = numerator + 7"
        f" where tier = 'internal' and {LATEST_FALLS} and ({change})",
        [],
        rows,
    )
    carried, watch = _carried_build(snapshot, first["internal"], "internal", tmp_path,
                                    monkeypatch)  # fmt: skip
    relinked = _relinked(carried, first["internal"])
    assert _reports({n for n, same in relinked.items() if not same}) == rendered
    assert watch.loaded == ["QYY"]
    assert "run-carried" in (carried / "icb-QYY-organisations.html").read_text()


def test_an_organisations_impact_row_renders_its_icbs_report(
    first, snapshot, tmp_path, monkeypatch
):
    """Organisation impact rows are read ICB by ICB while writing: the fingerprint covers
    them from the table."""
    _update(
        snapshot,
        "update fct_programme_impact set last_12_value = last_12_value + 0.25,"
        " improvement_abs = null where level = 'organisation' and series_key = 'RYY01'"
        " and measure_code = 'FALLS'",
        [],
        1,
    )
    carried, watch = _carried_build(snapshot, first["internal"], "internal", tmp_path,
                                    monkeypatch)  # fmt: skip
    relinked = _relinked(carried, first["internal"])
    assert _reports({n for n, same in relinked.items() if not same}) == ["icb-QYY"]
    assert watch.loaded == ["QYY"]


def test_a_renamed_organisation_renders_its_icbs_report(first, snapshot, tmp_path, monkeypatch):
    _update(
        snapshot,
        "update dim_organisation set org_name = 'RIVERBANK NHS TRUST' where org_code = ?",
        ["RYY01"],
        1,
    )
    carried, watch = _carried_build(snapshot, first["internal"], "internal", tmp_path,
                                    monkeypatch)  # fmt: skip
    relinked = _relinked(carried, first["internal"])
    assert _reports({n for n, same in relinked.items() if not same}) == ["icb-QYY"]
    assert watch.loaded == ["QYY"]
    assert "Riverbank" in (carried / "icb-QYY-organisations.html").read_text()


def test_a_previous_folder_without_input_fingerprints_renders_and_compares_as_before(
    first, snapshot, tmp_path, monkeypatch
):
    """The older format (each report's rendered-HTML fingerprint alone): every report is
    read and rendered, and carried because its HTML is the same; the new records are
    written for the next build."""
    old = tmp_path / "old"
    shutil.copytree(first["internal"], old)  # copies: new inodes of their own
    records = json.loads((old / INPUTS_FILE).read_text())
    (old / INPUTS_FILE).write_text(json.dumps({k: v["fingerprint"] for k, v in records.items()}))
    carried, watch = _carried_build(snapshot, old, "internal", tmp_path, monkeypatch)
    relinked = _relinked(carried, old)
    assert relinked and all(relinked.values()), relinked
    assert sorted(watch.loaded) == ["QYY", "QZZ"]
    assert watch.rendered.count("report.html.j2") == 3 + 2  # main pages, organisation pages
    assert json.loads((carried / INPUTS_FILE).read_text()) == records


@pytest.mark.parametrize("edited", ["templates/report.html.j2", "static/report.css"])
def test_a_changed_template_or_stylesheet_renders_every_report(
    edited, first, snapshot, tmp_path, monkeypatch
):
    """The report's templates and stylesheet as they are when the build runs (a copy,
    edited, in place of the package's folders). The edit shows in every page, so none
    can be carried on its HTML either."""
    for folder in ("templates", "static"):
        shutil.copytree(report_build.HERE / folder, tmp_path / "code" / folder)
    path = tmp_path / "code" / edited
    marker = "<!-- edited -->" if path.suffix == ".j2" else "/* edited */"
    path.write_text(path.read_text() + f"\n{marker}\n")
    monkeypatch.setattr(report_build, "TEMPLATES", tmp_path / "code" / "templates")
    monkeypatch.setattr(report_build, "STATIC", tmp_path / "code" / "static")
    watch = Watch(monkeypatch)
    carried = _build(snapshot, tmp_path / "carried", "internal", "run-carried",
                     first["internal"])  # fmt: skip
    fresh = _build(snapshot, tmp_path / "fresh", "internal", "run-fresh")
    _same_as_fresh(carried, fresh, {"run-carried": "", "run-fresh": "", "run-first": ""})
    relinked = _relinked(carried, first["internal"])
    assert relinked and not any(relinked.values()), relinked
    assert sorted(set(watch.loaded)) == ["QYY", "QZZ"]
    for name in relinked:
        assert marker in (carried / name).read_text(), name


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_changed_disclosure_rules_render_every_report(tier, first, snapshot, tmp_path, monkeypatch):
    """The rules shape what a report prints (counts suppressed, the rounding it names):
    every report is rendered again. The public reports name the rounding base, so none is
    the previous file; the internal ones print no rule, so their HTML is the same and they
    are still carried, on their rendered HTML as before."""
    defaults = DisclosureRules()
    rules = DisclosureRules(
        max_suppressed_count=defaults.max_suppressed_count + 3,
        rounding_base=defaults.rounding_base * 2,
    )
    carried, watch = _carried_build(snapshot, first[tier], tier, tmp_path, monkeypatch,
                                    rules=rules)  # fmt: skip
    pages = {"internal": 3 + 2, "public": 3}[tier]  # main pages and organisation pages
    assert watch.rendered.count("report.html.j2") == pages
    assert sorted(watch.loaded) == (["QYY", "QZZ"] if tier == "internal" else [])
    relinked = _relinked(carried, first[tier])
    assert len(relinked) == pages
    assert not any(relinked.values()) if tier == "public" else all(relinked.values())


def test_records_that_do_not_name_the_reports_own_files_are_not_carried_on_inputs(tmp_path):
    """``report-inputs.json`` is read from the previous snapshot: a record naming a file
    that is not one of its report's (or not a list of names) is never used to link files;
    its HTML fingerprint still counts. Not JSON, or not an object: nothing is carried."""
    linked: list[str] = []

    def carry(name: str, target: Path) -> bool:
        linked.append(name)
        return True

    good = {"fingerprint": "h1", "inputs": "i1", "files": ["region.html", "region.pdf"]}
    text = json.dumps(
        {
            "region": good,
            "icb-QZZ": {"fingerprint": "h2", "inputs": "i2", "files": ["../site/index.html"]},
            "icb-QYY": {"fingerprint": "h3", "inputs": "i3", "files": "icb-QYY.html"},
            "icb-QXX": "h4",  # the older format
            "icb-QWW": {"inputs": "i5", "files": ["icb-QWW.html"]},  # no HTML fingerprint
        }
    )
    previous = read_previous(text, carry)
    assert previous is not None
    assert previous.fingerprints == {"region": "h1", "icb-QZZ": "h2", "icb-QYY": "h3",
                                     "icb-QXX": "h4"}  # fmt: skip
    for stem, inputs in (("icb-QZZ", "i2"), ("icb-QYY", "i3"), ("icb-QXX", "h4"),
                         ("icb-QWW", "i5")):  # fmt: skip
        assert previous.take(stem, inputs, tmp_path) is None, stem
    assert linked == []
    assert previous.take("region", "another", tmp_path) is None
    assert previous.take("region", "i1", tmp_path) == good
    assert linked == ["region.html", "region.pdf"]
    assert read_previous("{not json", carry) is None
    assert read_previous("[1, 2]", carry) is None
