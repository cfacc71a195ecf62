"""Deterministic sample data for the North East and North Cumbria (ICB QHM).

Writes, under ``data_samples/`` (or ``--out``):
  ods/etr.csv, ods/epraccur.csv   the QHM rows of the real ODS extracts, byte for byte
  local_register.csv             the ICB, care homes, independent providers, sector
                                 overrides and a merger (RLN, RE9 -> R0B)
  landing/<received month>/...   monthly long-layout returns, one file per trust or
                                 independent provider, ICB-collated files for GP practices
                                 and care homes; a few missing returns, one resubmission
                                 and two deliberately bad rows
  SAMPLE_MANIFEST.json           what the pipeline must find: files, rows, quarantined
                                 rows and the fct_measure_monthly row count

The planted story (``MEASURE_MODEL``: each measure's step month and factor on its rate),
which the impact tables (docs/programme-impact.md section 4) must find:
  NEWS2_ESCALATED  improves by a sixth from April 2024 in every acute trust: the registered
                   intervention CHG-001 (region-wide). Region, ICB and acute-trust sector
                   series sit above their FY2023/24 baseline for all 12 months after.
  PU_CAT2PLUS      steps up about 30% from October 2024 in every sector: the registered
                   definition change CHG-002 (more ulcers counted, not worse care).
  SEPSIS_ABX_1H    improves from July 2024 region-wide with no recorded change: the
                   unexplained shift the observatory must review.
  every other measure holds its rate (factor 1.0): only noise.

Same seed, same bytes. Run: ``python data_samples/generate.py``.

The machinery is region-agnostic: :class:`SampleRegion` holds what makes this the North
East sample (``NORTH_EAST``); another region's sample passes its own to :func:`generate`
(see ``data_samples/regions/``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE_ODS = HERE.parent.parent / "shared" / "reference" / "ods"
SEED = 20240401
FIRST_MONTH = date(2023, 4, 1)
MONTHS = 24
REGION = "QHM"

SECTOR_OVERRIDES = {  # ODS etr.csv carries no trust type; the observatory keeps it locally.
    "RX3": "mental_health_trust",
    "RX4": "mental_health_trust",
    "RX6": "ambulance_trust",
}
CARE_HOMES = [f"VNE{i:02d}" for i in range(1, 13)]
INDEPENDENT = ["NNE01", "NNE02", "NNE03"]

# measure -> (kind, base rate, step month, factor on the rate from that month). The planted
# story (see the module docstring): three measures step, every other one holds (factor 1.0).
MEASURE_MODEL: dict[str, tuple[str, float, date | None, float]] = {
    "FALLS_HARM": ("rate", 0.19, None, 1.0),
    "PU_CAT2PLUS": ("rate", 1.1, date(2024, 10, 1), 1.3),  # CHG-002: definition widened
    "NEWS2_ON_TIME": ("prop", 0.84, None, 1.0),
    "NEWS2_ESCALATED": ("prop", 0.74, date(2024, 4, 1), 1.16),  # CHG-001: the intervention
    "SEPSIS_ABX_1H": ("prop", 0.70, date(2024, 7, 1), 1.12),  # no recorded change
    "MAG_SULPH": ("prop", 0.80, None, 1.0),
    "ANTENATAL_STEROIDS": ("prop", 0.86, None, 1.0),
    "TERM_ADMISSIONS_NNU": ("prop", 0.062, None, 1.0),
    "SMOKING_AT_DELIVERY": ("prop", 0.105, None, 1.0),
    "RESTRICTIVE_PRACTICE": ("rate", 30.0, None, 1.0),
    "OPIOID_HIGH_DOSE": ("prop", 0.045, None, 1.0),
    "MED_INCIDENTS_HARM": ("rate", 0.12, None, 1.0),
    "INCIDENT_REPORTING": ("rate", 48.0, None, 1.0),
    "DEVICE_INCIDENTS": ("rate", 0.9, None, 1.0),
}


def rate_factor(measure: str, period: date) -> float:
    """The planted step: the measure's factor on its rate from its step month, else 1.0."""
    _, _, step, factor = MEASURE_MODEL[measure]
    return factor if step is not None and period >= step else 1.0


# Monthly denominator scale by measure and sector (mean of the org's typical month).
DENOMINATOR_SCALE = {
    "acute_trust": {
        "bed_days": 30000,
        "FALLS_HARM": None,
        "NEWS2_ON_TIME": 500,
        "NEWS2_ESCALATED": 90,
        "SEPSIS_ABX_1H": 70,
        "MAG_SULPH": 4,
        "ANTENATAL_STEROIDS": 12,
        "TERM_ADMISSIONS_NNU": 420,
        "SMOKING_AT_DELIVERY": 450,
    },
    "mental_health_trust": {"bed_days": 26000},
    "community_trust": {"bed_days": 9000},
    "care_home": {"bed_days": 1200},
    "independent_provider": {"bed_days": 2500},
    "gp_practice": {"OPIOID_HIGH_DOSE": 450},
}
MEASURES_BY_SECTOR = {
    "acute_trust": [
        "FALLS_HARM",
        "PU_CAT2PLUS",
        "NEWS2_ON_TIME",
        "NEWS2_ESCALATED",
        "SEPSIS_ABX_1H",
        "MAG_SULPH",
        "ANTENATAL_STEROIDS",
        "TERM_ADMISSIONS_NNU",
        "SMOKING_AT_DELIVERY",
        "MED_INCIDENTS_HARM",
        "INCIDENT_REPORTING",
        "DEVICE_INCIDENTS",
    ],
    "mental_health_trust": [
        "FALLS_HARM",
        "RESTRICTIVE_PRACTICE",
        "MED_INCIDENTS_HARM",
        "INCIDENT_REPORTING",
    ],
    "care_home": ["FALLS_HARM", "PU_CAT2PLUS", "MED_INCIDENTS_HARM"],
    "independent_provider": ["FALLS_HARM", "PU_CAT2PLUS", "INCIDENT_REPORTING", "DEVICE_INCIDENTS"],
    "gp_practice": ["OPIOID_HIGH_DOSE"],
    # None in the North East sample; the catalogue applies these measures to them.
    "community_trust": ["FALLS_HARM", "PU_CAT2PLUS", "MED_INCIDENTS_HARM", "INCIDENT_REPORTING"],
}
MULTIPLIER = {code: 100 if model[0] == "prop" else 1000 for code, model in MEASURE_MODEL.items()}
# Returns that never arrived: (org, period) pairs.
MISSING = {("RVW", date(2024, 2, 1)), ("NNE03", date(2024, 11, 1)), ("NNE03", date(2024, 12, 1))}
MISSING_FROM_COLLATED = {"VNE07": {date(2024, 5, 1), date(2024, 6, 1), date(2024, 7, 1)}}
RESUBMISSION = ("RTD", date(2024, 6, 1))  # resent three months later with corrected falls
# Rows the pipeline must quarantine: numerator and denominator keyed the wrong way round,
# and a mistyped measure code added to a return.
SWAPPED_COUNTS = ("RTF", date(2024, 1, 1), "NEWS2_ON_TIME")
EXTRA_BAD_ROW = ("RR7", date(2024, 3, 1), ["RR7", "2024-03", "NEWS_ON_TIME", "410", "520"])


@dataclass(frozen=True)
class Org:
    code: str
    name: str
    sector: str
    open_date: date | None
    close_date: date | None


# A local register row: org_code, org_name, sector_code, icb_code, open, close, successor.
LocalRow = tuple[str, str, str, str, str, str, str]
LOCAL_REGISTER_HEADER = [
    "org_code",
    "org_name",
    "sector_code",
    "icb_code",
    "open_date",
    "close_date",
    "successor_code",
]


@dataclass(frozen=True)
class SampleRegion:
    """What makes one region's sample: everything :func:`generate` needs besides the ODS
    rows (already extracted into ``ods/``) and the seed.

    ``extra_rows`` are rows the pipeline must quarantine, appended to a file: the key is a
    submitter's code (its own return) or ``<ICB>_<kind>`` (an ICB-collated file, kind
    ``gp_practices`` or ``care_homes``). ``foreign_files`` are whole returns from
    organisations outside the region, which the pipeline must reject.
    """

    icbs: dict[str, str]  # ICB code -> name (the local register's ICB rows)
    first_month: date
    months: int
    sector_overrides: dict[str, str]
    care_homes: dict[str, str]  # code -> ICB
    independent: dict[str, str]  # code -> ICB
    successions: tuple[LocalRow, ...] = ()  # predecessors closed on a merger
    missing: frozenset[tuple[str, date]] = frozenset()
    missing_from_collated: dict[str, set[date]] = field(default_factory=dict)
    resubmission: tuple[str, date] | None = None
    swapped_counts: tuple[str, date, str] | None = None
    extra_rows: tuple[tuple[str, date, list[str]], ...] = ()
    foreign_files: tuple[tuple[date, str, list[list[str]]], ...] = ()


NORTH_EAST = SampleRegion(
    icbs={REGION: "NHS NORTH EAST AND NORTH CUMBRIA INTEGRATED CARE BOARD"},
    first_month=FIRST_MONTH,
    months=MONTHS,
    sector_overrides=SECTOR_OVERRIDES,
    care_homes=dict.fromkeys(CARE_HOMES, REGION),
    independent=dict.fromkeys(INDEPENDENT, REGION),
    successions=(
        (
            "RLN",
            "CITY HOSPITALS SUNDERLAND NHS FOUNDATION TRUST",
            "acute_trust",
            REGION,
            "1994-04-01",
            "2019-03-31",
            "R0B",
        ),
        (
            "RE9",
            "SOUTH TYNESIDE NHS FOUNDATION TRUST",
            "acute_trust",
            REGION,
            "1994-04-01",
            "2019-03-31",
            "R0B",
        ),
    ),
    missing=frozenset(MISSING),
    missing_from_collated=MISSING_FROM_COLLATED,
    resubmission=RESUBMISSION,
    swapped_counts=SWAPPED_COUNTS,
    extra_rows=(EXTRA_BAD_ROW,),
)


def month_add(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def _ods_date(text: str) -> date | None:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if text.strip() else None


def _icb_of(line: bytes) -> str:
    return next(csv.reader([line.decode("latin-1")]))[3]


def extract_region_ods(
    source: Path,
    out: Path,
    icbs: str | tuple[str, ...],
    keep: Callable[[str, list[bytes]], list[bytes]] | None = None,
) -> None:
    """Copy the rows of the region's ICBs from the real ODS extracts, without re-quoting
    them. ``keep(file name, lines)`` may narrow each file's rows further (a smaller sample)."""
    wanted = (icbs,) if isinstance(icbs, str) else icbs
    out.mkdir(parents=True, exist_ok=True)
    for name in ("etr.csv", "epraccur.csv"):
        lines = (source / name).read_bytes().splitlines(keepends=True)
        lines = [ln for ln in lines if _icb_of(ln) in wanted]
        (out / name).write_bytes(b"".join(keep(name, lines) if keep else lines))


def read_orgs(ods_dir: Path, region: SampleRegion = NORTH_EAST) -> list[tuple[Org, str]]:
    """Every organisation the sample reports for, with its ICB: trusts, GP practices
    (active or closed), then the local register's care homes and independent providers."""
    orgs = []
    for row in csv.reader((ods_dir / "etr.csv").open(encoding="utf-8")):
        sector = region.sector_overrides.get(row[0], "acute_trust")
        orgs.append((Org(row[0], row[1], sector, _ods_date(row[10]), _ods_date(row[11])), row[3]))
    for row in csv.reader((ods_dir / "epraccur.csv").open(encoding="utf-8")):
        if row[25] == "4" and row[12] in ("A", "C"):  # GP practices, active or closed
            org = Org(row[0], row[1], "gp_practice", _ods_date(row[10]), _ods_date(row[11]))
            orgs.append((org, row[3]))
    for code, icb in region.care_homes.items():
        orgs.append((Org(code, f"Care home {code}", "care_home", date(2015, 1, 1), None), icb))
    for code, icb in region.independent.items():
        name = f"Independent hospital {code}"
        orgs.append((Org(code, name, "independent_provider", date(2010, 1, 1), None), icb))
    return orgs


def write_local_register(path: Path, region: SampleRegion = NORTH_EAST) -> None:
    """The ICBs, merged predecessors, sector overrides, care homes, independent providers."""
    rows = [LOCAL_REGISTER_HEADER]
    rows += [[icb, name, "icb", icb, "2022-07-01", "", ""] for icb, name in region.icbs.items()]
    rows += [list(row) for row in region.successions]
    rows += [[code, "", sector, "", "", "", ""] for code, sector in region.sector_overrides.items()]
    rows += [
        [c, f"Care home {c}", "care_home", icb, "2015-01-01", "", ""]
        for c, icb in region.care_homes.items()
    ]
    rows += [
        [c, f"Independent hospital {c}", "independent_provider", icb, "2010-01-01", "", ""]
        for c, icb in region.independent.items()
    ]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def is_open(org: Org, period: date) -> bool:
    return (org.open_date is None or org.open_date <= month_add(period, 1)) and (
        org.close_date is None or org.close_date >= period
    )


class SeriesModel:
    """Per (org, measure): a fixed size and rate drawn once, then monthly noise."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.params: dict[tuple[str, str], tuple[float, float]] = {}

    def value(self, org: Org, measure: str, period: date) -> tuple[int, int]:
        kind, base, _, _ = MEASURE_MODEL[measure]
        key = (org.code, measure)
        if key not in self.params:
            scale = DENOMINATOR_SCALE[org.sector]
            size = scale.get(measure) or scale["bed_days"]
            size *= self.rng.uniform(0.5, 1.5)
            self.params[key] = (size, base * self.rng.uniform(0.7, 1.3))
        size, rate = self.params[key]
        rate *= rate_factor(measure, period)
        denominator = max(0, int(self.rng.normal(size, size * 0.06 + 1)))
        if kind == "prop":
            numerator = int(self.rng.binomial(denominator, min(rate, 0.999)))
        else:
            numerator = int(self.rng.poisson(denominator * rate / MULTIPLIER[measure]))
        return numerator, denominator


def generate(out: Path, ods_dir: Path, seed: int = SEED, region: SampleRegion = NORTH_EAST) -> dict:
    """Write the local register, the landing folder and the manifest for ``region``."""
    rng = np.random.default_rng(seed)
    model = SeriesModel(rng)
    orgs = read_orgs(ods_dir, region)
    write_local_register(out / "local_register.csv", region)
    landing = out / "landing"
    stats = {"files": 0, "rows": 0, "rows_quarantined": 0, "keys": set()}
    extra_rows = {(key, period): row for key, period, row in region.extra_rows}

    def write(received: date, name: str, rows: list[list[str]], *, loads: bool = True) -> None:
        """One file in landing; ``loads``: its rows count (a rejected file loads none)."""
        folder = landing / received.strftime("%Y-%m")
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["org_code", "period", "measure_code", "numerator", "denominator"])
        writer.writerows(rows)
        (folder / name).write_text(buf.getvalue(), encoding="utf-8")
        stats["files"] += 1
        stats["rows"] += len(rows) if loads else 0

    def org_rows(org: Org, period: date) -> list[list[str]]:
        rows = []
        for measure in MEASURES_BY_SECTOR.get(org.sector, []):
            numerator, denominator = model.value(org, measure, period)
            rows.append(
                [org.code, period.strftime("%Y-%m"), measure, str(numerator), str(denominator)]
            )
            stats["keys"].add((org.code, period, measure))
        return rows

    def add_extra_row(key: str, period: date, rows: list[list[str]]) -> None:
        if (key, period) in extra_rows:
            rows.append(extra_rows[(key, period)])
            stats["rows_quarantined"] += 1

    for i in range(region.months):
        period = month_add(region.first_month, i)
        received = month_add(period, 1)
        tag = period.strftime("%Y-%m")
        collated: dict[tuple[str, str], list[list[str]]] = {}
        for org, icb in orgs:
            if not is_open(org, period) or (org.code, period) in region.missing:
                continue
            if org.sector == "gp_practice":
                collated.setdefault((icb, "gp_practices"), []).extend(org_rows(org, period))
            elif org.sector == "care_home":
                if period not in region.missing_from_collated.get(org.code, set()):
                    rows = collated.setdefault((icb, "care_homes"), [])
                    rows.extend(org_rows(org, period))
            elif org.sector in MEASURES_BY_SECTOR:
                rows = org_rows(org, period)
                for row in rows:
                    if (row[0], period, row[2]) == region.swapped_counts:
                        row[3], row[4] = row[4], row[3]
                        stats["keys"].discard(region.swapped_counts)
                        stats["rows_quarantined"] += 1
                add_extra_row(org.code, period, rows)
                write(received, f"{org.code}_{tag}.csv", rows)
                if (org.code, period) == region.resubmission:
                    corrected = [
                        [*r[:3], str(int(r[3]) + 1), r[4]] if r[2] == "FALLS_HARM" else r
                        for r in rows
                    ]
                    write(month_add(received, 2), f"{org.code}_{tag}_resubmitted.csv", corrected)
        for (icb, kind), rows in collated.items():
            add_extra_row(f"{icb}_{kind}", period, rows)
            write(received, f"{icb}_{tag}_{kind}.csv", rows)
    for period, submitter, rows in region.foreign_files:
        write(month_add(period, 1), f"{submitter}_{period:%Y-%m}.csv", rows, loads=False)

    manifest = {
        "seed": seed,
        "region_icbs": list(region.icbs),
        "first_period": region.first_month.strftime("%Y-%m"),
        "months": region.months,
        "files": stats["files"],
        "files_rejected": len(region.foreign_files),
        "rows": stats["rows"],
        "rows_quarantined": stats["rows_quarantined"],
        "fct_measure_monthly_rows": len(stats["keys"]),
        "resubmission": (
            {"org_code": region.resubmission[0], "period": f"{region.resubmission[1]:%Y-%m}"}
            if region.resubmission
            else None
        ),
        "missing_returns": sorted(f"{o} {p:%Y-%m}" for o, p in region.missing),
    }
    (out / "SAMPLE_MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--extract-ods-from",
        type=Path,
        default=None,
        help=f"refresh ods/ from the real extracts (e.g. {REFERENCE_ODS})",
    )
    args = parser.parse_args()
    ods_dir = args.out / "ods"
    if args.extract_ods_from:
        extract_region_ods(args.extract_ods_from, ods_dir, REGION)
    manifest = generate(args.out, ods_dir, args.seed)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
