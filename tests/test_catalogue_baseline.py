"""The catalogue's baselines (docs/programme-impact.md section 2): read into ``Measure``,
and a malformed one refused at load with a line naming the measure and the rule."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.catalogue import CATALOGUE_CSV, CatalogueError, load_catalogue


def test_every_measure_has_the_financial_year_before_the_programme_as_its_window():
    for measure in load_catalogue().values():
        assert (measure.baseline_from, measure.baseline_to) == (date(2023, 4, 1), date(2024, 3, 1))
        assert measure.baseline_months is None


def _catalogue(tmp_path, baseline_from: str, baseline_to: str, months: str):
    lines = CATALOGUE_CSV.read_text().splitlines()
    row = lines[1].rsplit(",", 3)[0] + f",{baseline_from},{baseline_to},{months}"
    path = tmp_path / "measure_catalogue.csv"
    path.write_text("\n".join([lines[0], row]) + "\n")
    return path


@pytest.mark.parametrize(
    ("baseline_from", "baseline_to", "months", "problem"),
    [
        ("2023-04-01", "", "", "give both baseline_from and baseline_to, or neither"),
        ("", "2024-03-01", "", "give both baseline_from and baseline_to, or neither"),
        ("2024-04-01", "2023-03-01", "", "baseline_from 2024-04-01 is after baseline_to"),
        ("2023-04-15", "2024-03-01", "", "baseline_from '2023-04-15' is not the first day"),
        ("2023-04", "2024-03-01", "", "baseline_from '2023-04' is not a date as YYYY-MM-DD"),
        ("", "", "6", "baseline_months '6' must be a whole number of at least 12"),
        ("", "", "twelve", "baseline_months 'twelve' must be a whole number"),
        ("2023-04-01", "2024-03-01", "12", "name a baseline window or baseline_months, not both"),
    ],
)
def test_a_malformed_baseline_is_refused_naming_the_measure(
    tmp_path, baseline_from, baseline_to, months, problem
):
    path = _catalogue(tmp_path, baseline_from, baseline_to, months)
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(path)
    [line] = refused.value.problems
    assert line.startswith("measure_catalogue.csv: measure FALLS_HARM: "), line
    assert problem in line, line


def test_baseline_months_alone_or_no_baseline_is_good(tmp_path):
    [measure] = load_catalogue(_catalogue(tmp_path, "", "", "12")).values()
    assert (measure.baseline_from, measure.baseline_to, measure.baseline_months) == (None, None, 12)
    (tmp_path / "none").mkdir()
    [measure] = load_catalogue(_catalogue(tmp_path / "none", "", "", "")).values()
    assert measure.baseline_months is None and measure.baseline_from is None
