"""Deterministic sample for a second region: the Innovation Agency Patient Safety
Collaborative (North West Coast), ICBs QYG (Cheshire and Merseyside) and QE1 (Lancashire
and South Cumbria). The deployment is ``config/profiles/innovation-agency.toml``.

Why a second sample: the North East sample (``data_samples/generate.py``) proves the
pipeline on one ICB; this one proves that another region is a configuration away, with
two ICBs, its own catalogue start (April 2023) and due days, and nothing of the North
East in it. It reuses the North East generator's machinery (measure model, register and
file writers, :class:`generate.SampleRegion`); only what makes the region differs.

Writes, under ``data_samples/regions/innovation_agency/`` (or ``--out``):
  ods/etr.csv, ods/epraccur.csv   real rows of the national ODS extracts, byte for byte:
                                  every trust of QYG and QE1, and per ICB its first 24
                                  active GP practices, 2 closed, 2 dormant and 1 other
                                  prescribing setting (file order), to stay small
  local_register.csv             the two ICBs (they send the collated returns), trust
                                  types ODS does not carry, the 2021 merger of North West
                                  Boroughs (RTV) into Mersey Care (RW4), four care homes
  landing/<received month>/...   six months (April to September 2023) of long-layout
                                  returns: one missing return, one resubmission, one row
                                  with counts swapped, one row for March 2023 (before the
                                  catalogue start), a Greater Manchester practice in the
                                  Lancashire collated file, and a return from North West
                                  Ambulance Service, which ODS files under Greater
                                  Manchester (QOP): both outside the region
  SAMPLE_MANIFEST.json           what the pipeline must find

Same seed, same bytes; the ODS rows are re-extracted from the national files with
``--extract-ods-from`` (a test does both). Run:
``python data_samples/regions/innovation_agency.py``, adding
``--extract-ods-from tests/fixtures/ods_national`` to refresh ``ods/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # data_samples is a folder of scripts, not a package
    sys.path.insert(0, str(HERE.parent))
import generate as sample  # noqa: E402  (the North East sample's machinery, reused)

OUT = HERE / "innovation_agency"
SEED = 20230401
ICBS = ("QYG", "QE1")
# Per ICB, in file order: (status, prescribing setting) -> how many practices to keep.
PRACTICES_PER_ICB = {("A", "4"): 24, ("C", "4"): 2, ("D", "4"): 2}
OTHER_SETTINGS_PER_ICB = 1  # e.g. a bowel cancer screening centre: not expected to report

INNOVATION_AGENCY = sample.SampleRegion(
    icbs={
        "QYG": "NHS CHESHIRE AND MERSEYSIDE INTEGRATED CARE BOARD",
        "QE1": "NHS LANCASHIRE AND SOUTH CUMBRIA INTEGRATED CARE BOARD",
    },
    first_month=date(2023, 4, 1),
    months=6,
    # ODS etr.csv carries no trust type; the observatory keeps it locally.
    sector_overrides={
        "RW4": "mental_health_trust",
        "RXA": "mental_health_trust",
        "RW5": "mental_health_trust",
        "RY2": "community_trust",
        "RY7": "community_trust",
    },
    care_homes={"VIA01": "QYG", "VIA02": "QYG", "VIA03": "QE1", "VIA04": "QE1"},
    independent={},
    successions=(
        (
            "RTV",
            "NORTH WEST BOROUGHS HEALTHCARE NHS FOUNDATION TRUST",
            "mental_health_trust",
            "QYG",
            "2002-04-01",
            "2021-05-31",
            "RW4",
        ),
    ),
    missing=frozenset({("RBN", date(2023, 7, 1))}),
    missing_from_collated={"VIA03": {date(2023, 8, 1)}},
    resubmission=("RXN", date(2023, 6, 1)),
    swapped_counts=("REM", date(2023, 8, 1), "SEPSIS_ABX_1H"),
    extra_rows=(
        # Before this region's catalogue start (2023-04): quarantined.
        ("RBL", date(2023, 4, 1), ["RBL", "2023-03", "FALLS_HARM", "4", "27310"]),
        # A Bolton practice (Greater Manchester, QOP) in Lancashire's collated file.
        (
            "QE1_gp_practices",
            date(2023, 5, 1),
            ["P82001", "2023-05", "OPIOID_HIGH_DOSE", "21", "402"],
        ),
    ),
    foreign_files=(
        # North West Ambulance Service serves this region but ODS files it under QOP.
        (
            date(2023, 9, 1),
            "RX7",
            [
                ["RX7", "2023-09", "INCIDENT_REPORTING", "388", "61200"],
                ["RX7", "2023-09", "MED_INCIDENTS_HARM", "2", "61200"],
            ],
        ),
    ),
)


def keep_sample_rows(name: str, lines: list[bytes]) -> list[bytes]:
    """Every trust; per ICB the first practices of each kind (``PRACTICES_PER_ICB``) and
    ``OTHER_SETTINGS_PER_ICB`` other prescribing settings, in file order."""
    if name == "etr.csv":
        return lines
    taken: dict[tuple[str, str, str], int] = {}
    kept = []
    for line in lines:
        row = next(csv.reader([line.decode("latin-1")]))
        kind = (row[12], row[25]) if row[25] == "4" else ("other", "")
        limit = PRACTICES_PER_ICB.get(kind, OTHER_SETTINGS_PER_ICB if kind[0] == "other" else 0)
        key = (row[3], *kind)
        if taken.get(key, 0) < limit:
            taken[key] = taken.get(key, 0) + 1
            kept.append(line)
    return kept


def generate(out: Path = OUT, extract_ods_from: Path | None = None, seed: int = SEED) -> dict:
    """Write the sample under ``out`` (re-extracting ``ods/`` first if asked)."""
    if extract_ods_from is not None:
        sample.extract_region_ods(extract_ods_from, out / "ods", ICBS, keep_sample_rows)
    return sample.generate(out, out / "ods", seed, INNOVATION_AGENCY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--extract-ods-from",
        type=Path,
        default=None,
        help="refresh ods/ from the national extracts (e.g. tests/fixtures/ods_national)",
    )
    args = parser.parse_args()
    print(json.dumps(generate(args.out, args.extract_ods_from, args.seed), indent=2))


if __name__ == "__main__":
    main()
