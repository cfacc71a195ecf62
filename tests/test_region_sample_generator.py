"""The Innovation Agency sample is exactly what its generator writes from the national ODS
files: same seed, same bytes, and nothing of the North East in it."""

from __future__ import annotations

import csv
import filecmp
import json
import sys
from pathlib import Path

from conftest import FIXTURES, SAMPLES

sys.path.insert(0, str(SAMPLES / "regions"))
import innovation_agency

COMMITTED = SAMPLES / "regions" / "innovation_agency"
NORTH_EAST_CODES = {"QHM", "RTD", "RTF", "RR7", "R0B", "RX3", "A81001", "VNE01", "NNE01"}


def relative_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_generator_reproduces_the_committed_sample_from_the_national_files(tmp_path):
    manifest = innovation_agency.generate(tmp_path, extract_ods_from=FIXTURES / "ods_national")
    assert manifest == json.loads((COMMITTED / "SAMPLE_MANIFEST.json").read_text())
    assert relative_files(tmp_path) == relative_files(COMMITTED)
    _, mismatch, errors = filecmp.cmpfiles(COMMITTED, tmp_path, relative_files(COMMITTED), False)
    assert mismatch == [] and errors == []


def test_sample_ods_rows_are_real_rows_of_the_two_icbs_and_small():
    national = {
        name: set((FIXTURES / "ods_national" / name).read_bytes().splitlines())
        for name in ("etr.csv", "epraccur.csv")
    }
    for name, lines in national.items():
        rows = (COMMITTED / "ods" / name).read_bytes().splitlines()
        assert rows and set(rows) <= lines  # byte for byte from the national file
        icbs = {next(csv.reader([r.decode("latin-1")]))[3] for r in rows}
        assert icbs == {"QYG", "QE1"}
    practices = list(csv.reader((COMMITTED / "ods" / "epraccur.csv").open(encoding="utf-8")))
    assert len([p for p in practices if p[25] == "4"]) <= 60


def test_sample_holds_nothing_of_the_north_east():
    manifest = json.loads((COMMITTED / "SAMPLE_MANIFEST.json").read_text())
    assert manifest["region_icbs"] == ["QYG", "QE1"]
    assert manifest["first_period"] == "2023-04"
    seen: set[str] = set()
    for path in (COMMITTED / "landing").rglob("*.csv"):
        seen.add(path.name.split("_")[0])
        seen |= {row["org_code"] for row in csv.DictReader(path.open(encoding="utf-8"))}
    for row in csv.DictReader((COMMITTED / "local_register.csv").open(encoding="utf-8")):
        seen |= {row["org_code"], row["icb_code"], row["successor_code"]}
    assert not seen & NORTH_EAST_CODES
    # The planted outsiders: North West Ambulance Service (ODS files it under QOP) and a
    # Bolton practice, which the pipeline must refuse.
    assert {"RX7", "P82001"} <= seen
