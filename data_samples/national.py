"""Deterministic national-scale data for the benchmark (docs/design.md §10): a synthetic England.

Why a second generator: the committed sample (``generate.py``) is one region, 24 months,
byte-for-byte reproducible and small enough to commit; the performance targets are stated
for about 20,000 organisations and ten years. This module reuses the sample's measure model
(``MEASURE_MODEL``, ``DENOMINATOR_SCALE``, ``MEASURES_BY_SECTOR``, ``MULTIPLIER``,
``month_add``, ``Org``) and draws the same kind of series, but vectorised with
numpy, because a per-row Python loop would take longer than the pipeline it is meant to
measure.

Writes, under ``--out`` (never into the repository; the benchmark uses ``var/bench``):
  ods/etr.csv, ods/epraccur.csv  headerless, fully quoted 27-field ODS layouts: trusts over
                                 the ICBs, GP practices (prescribing setting 4), with opening,
                                 closing and mergers
  local_register.csv             the ICBs, care homes, independent providers, trust sector
                                 overrides (mental health, community, ambulance) and
                                 successors, in the columns of data_samples/local_register.csv
  landing/<received month>/...   one return a month per trust (long CSV; about one trust in
                                 ten sends the wide XLSX template under title rows), and
                                 ICB-collated monthly CSVs for GP practices, care homes and
                                 independent providers; a few missing and late returns,
                                 resubmissions and deliberately bad rows
  holdback/<received month>/...  one trust's return for the latest month, kept out of landing:
                                 the benchmark drops it in to time "one new file to published"
  incident_landing/<received month>/<org>_lfpse_<YYYY-MM>.csv
                                 each trust's monthly LFPSE-style extract of the events
                                 of that month (event date), for the last 24 months only
                                 (about 2.5 million events a year at scale 1); extracts of
                                 one trust never overlap (docs/incidents.md: an extract
                                 replaces the previous one for the months it covers)
  NATIONAL_MANIFEST.json         what the pipeline must find (files, rows, quarantined rows,
                                 fct_measure_monthly rows before and after the holdback)

``--scale 1.0`` is about 20,000 organisations (230 trusts, 6,500 GP practices, 12,000 care
homes, 1,000 independent providers, 42 ICBs). Same arguments, same bytes (file modification
times are set to the day each return was received, so they are reproducible too).

Rows follow the starter catalogue: each organisation reports the measures its sector
reports in the sample (GP practices one, care homes three, acute trusts twelve), so 1.0
gives about 4 million rows over the 91 months the pipeline accepts today, not the "about
20 million" of docs/design.md §10: that figure needs about eight measures per organisation-month
over 120 months. Scale organisations up (``--scale 4.5``) to reach the row count.

History: ``--months`` (default 120) back from ``--last-period`` (default: last month), but
never before ``--catalogue-start`` (default 2019-04), the first month the pipeline accepts
and the first month of ``dim_period``: earlier months would be quarantined by ingest and fail
dbt's relationship test to ``dim_period``. The manifest records the window actually written.

Run: ``python data_samples/national.py --scale 0.05 --out var/bench/scale-0.05/data``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import string
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import product
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter
import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # data_samples is a folder of scripts, not a package
    sys.path.insert(0, str(HERE))
import generate as sample  # noqa: E402  (the sample's measure model, reused not copied)

if str(HERE / "incidents") not in sys.path:
    sys.path.insert(0, str(HERE / "incidents"))
import generate_incidents as incidents  # noqa: E402  (the sample's incident rows, reused)

SEED = 20261101
CATALOGUE_START = date(2019, 4, 1)
WIDE_CONTRACT = HERE.parent / "pipelines" / "ingest" / "source_contracts"
WIDE_CONTRACT_FILE = WIDE_CONTRACT / "wide_nenc_monthly_return.yml"
LONG_HEADER = ["org_code", "period", "measure_code", "numerator", "denominator"]
REGION_ICB = sample.REGION  # the default region stays a real code, so QHM queries work

# Organisations at --scale 1.0 (England, roughly): trusts by type, GP practices, care homes
# and independent providers. Floors keep every kind present at tiny scales (the test).
FULL_COUNTS = {
    "icb": 42,
    "acute_trust": 150,
    "mental_health_trust": 50,
    "community_trust": 20,
    "ambulance_trust": 10,
    "gp_practice": 6500,
    "care_home": 12000,
    "independent_provider": 1000,
}
MIN_COUNTS = {"icb": 1, "acute_trust": 2, "mental_health_trust": 1, "gp_practice": 2}
MIN_COUNTS |= {"care_home": 2, "independent_provider": 1}
TRUST_SECTORS = ("acute_trust", "mental_health_trust", "community_trust", "ambulance_trust")
# Sectors sending one ICB-collated file a month, and that file's name suffix.
COLLATED = {
    "gp_practice": "gp_practices",
    "care_home": "care_homes",
    "independent_provider": "independent_providers",
}
# Incident extracts (docs/benchmark.md): about 2.5 million LFPSE events a year at SCALE=1,
# linearly with the scale, for the last 24 months of the window only (LFPSE went live
# nationally in 2023-24). Each trust's share follows the sample's per-trust volumes by
# sector (data_samples/incidents/generate_incidents.py: an acute trust 300-700 a month).
INCIDENT_EVENTS_A_YEAR = 2_500_000
INCIDENT_MONTHS = 24
INCIDENT_WEIGHT = {
    "acute_trust": 600,
    "mental_health_trust": 400,
    "community_trust": 300,
    "ambulance_trust": 160,
}
# Community trusts included (the North East sample has none, other regions' samples do).
MEASURES_BY_SECTOR = sample.MEASURES_BY_SECTOR
DENOMINATOR_SCALE = sample.DENOMINATOR_SCALE
NATIONAL_GROUPINGS = ("Y56", "Y58", "Y59", "Y60", "Y61", "Y62", "Y63")

# Behaviour of providers, as probabilities.
XLSX_SHARE = 0.10  # trusts sending the wide XLSX template instead of long CSV
MISSING_TRUST_RETURN = 0.01  # a trust's month never arrives
MISSING_FROM_COLLATED = 0.005  # an organisation left out of its ICB's collated file
LATE_RETURN = 0.05  # received 25-60 days after month end instead of 5-19
RESUBMITTED = 0.005  # a trust resends a month two months later, falls corrected
MERGED_ACUTE = 0.03  # acute trusts closed mid-window into a successor
GP_CLOSED, GP_OPENED = 0.08, 0.05
CARE_HOME_CLOSED, CARE_HOME_OPENED = 0.10, 0.10
BAD_ROW_EVERY = 200_000  # one deliberately bad row per this many rows (at least two)
XLSX_CREATED = datetime(2024, 4, 1)  # fixed workbook metadata: same arguments, same bytes


@dataclass(frozen=True)
class NationalOrg(sample.Org):
    """The sample's organisation plus what a national register adds: its ICB and how it
    sends returns (``long`` CSV, ``xlsx`` wide template, or ``collated`` by its ICB)."""

    icb: str = ""
    layout: str = "long"
    successor: str = ""


@dataclass
class Register:
    icbs: list[NationalOrg]
    by_sector: dict[str, list[NationalOrg]]
    sub_icb: dict[str, str]

    @property
    def trusts(self) -> list[NationalOrg]:
        return [o for s in TRUST_SECTORS for o in self.by_sector.get(s, [])]


@dataclass
class Stats:
    files: int = 0
    rows: int = 0
    rows_quarantined: int = 0
    fct_rows: int = 0
    bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    rows_by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, rows: int, size: int) -> None:
        self.files += 1
        self.rows += rows
        self.bytes += size
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.rows_by_kind[kind] = self.rows_by_kind.get(kind, 0) + rows


def scaled_counts(scale: float) -> dict[str, int]:
    return {k: max(MIN_COUNTS.get(k, 0), round(n * scale)) for k, n in FULL_COUNTS.items()}


def _codes(rng: np.random.Generator, prefix: str, alphabet: str, n: int, skip=()) -> list[str]:
    pool = [prefix + "".join(p) for p in product(alphabet, repeat=2)]
    pool = [c for c in pool if c not in skip]
    if n > len(pool):
        raise ValueError(f"cannot make {n} distinct {prefix}.. codes")
    return sorted(pool[i] for i in rng.permutation(len(pool))[:n])


def _month_between(rng: np.random.Generator, first: date, months: int) -> date:
    return sample.month_add(first, int(rng.integers(0, months)))


def _month_end(month: date) -> date:
    return sample.month_add(month, 1) - timedelta(days=1)


def build_register(rng: np.random.Generator, scale: float, first: date, months: int) -> Register:
    """Organisations with ICBs, open and close dates and layouts; all draws in fixed order."""
    counts = scaled_counts(scale)
    alnum = string.digits + string.ascii_uppercase
    others = _codes(rng, "Q", alnum, counts["icb"] - 1, skip={REGION_ICB})
    icb_codes = [REGION_ICB, *others]
    icbs = [
        NationalOrg(
            code,
            f"NHS SYNTHETIC ICB {i:02d} INTEGRATED CARE BOARD",
            "icb",
            date(2022, 7, 1),
            None,
            icb=code,
        )
        for i, code in enumerate(icb_codes, start=1)
    ]
    sub_icb = {code: f"{i:02d}{'ABCDEFGH'[i % 8]}" for i, code in enumerate(icb_codes, 1)}
    n_trusts = sum(counts[s] for s in TRUST_SECTORS)
    trust_codes = iter(_codes(rng, "R", alnum, n_trusts))
    by_sector: dict[str, list[NationalOrg]] = {}
    suffix = {
        "acute_trust": "HOSPITALS NHS FOUNDATION TRUST",
        "mental_health_trust": "MENTAL HEALTH NHS FOUNDATION TRUST",
        "community_trust": "COMMUNITY HEALTH NHS TRUST",
        "ambulance_trust": "AMBULANCE SERVICE NHS FOUNDATION TRUST",
    }
    reporting = [s for s in TRUST_SECTORS if s in MEASURES_BY_SECTOR]
    n_reporting = sum(counts[s] for s in reporting)
    xlsx_left = max(1, round(XLSX_SHARE * n_reporting))
    for sector in TRUST_SECTORS:
        orgs = []
        for _ in range(counts[sector]):
            code = next(trust_codes)
            icb = icb_codes[int(rng.integers(0, len(icb_codes)))]
            opened = date(1990 + int(rng.integers(0, 25)), 4, 1)
            # The first acute trust stays long CSV: it is the benchmark's holdback provider.
            wants_xlsx = rng.random() < XLSX_SHARE * 1.5
            layout = "long"
            if sector in reporting and wants_xlsx and xlsx_left and orgs:
                layout, xlsx_left = "xlsx", xlsx_left - 1
            name = f"SYNTHETIC {code} {suffix[sector]}"
            orgs.append(NationalOrg(code, name, sector, opened, None, icb=icb, layout=layout))
        by_sector[sector] = orgs
    if xlsx_left and len(by_sector["acute_trust"]) > 1:  # tiny scales: keep one XLSX sender
        last = by_sector["acute_trust"][-1]
        by_sector["acute_trust"][-1] = replace(last, layout="xlsx")
    # Mergers: a few acute trusts close mid-window; a trust in the same ICB (or any) succeeds.
    acute = by_sector["acute_trust"]
    for i, org in enumerate(acute[1:], start=1):
        if rng.random() < MERGED_ACUTE and months > 6:
            closed = _month_end(_month_between(rng, sample.month_add(first, 3), months - 6))
            heirs = [o for o in acute if o.code != org.code and o.icb == org.icb] or [
                o for o in acute if o.code != org.code
            ]
            acute[i] = replace(org, close_date=closed, successor=heirs[0].code)
    by_sector["gp_practice"] = _community_orgs(
        rng, "gp_practice", counts, icb_codes, first, months, GP_CLOSED, GP_OPENED
    )
    by_sector["care_home"] = _community_orgs(
        rng, "care_home", counts, icb_codes, first, months, CARE_HOME_CLOSED, CARE_HOME_OPENED
    )
    by_sector["independent_provider"] = _community_orgs(
        rng, "independent_provider", counts, icb_codes, first, months, 0.0, 0.0
    )
    return Register(icbs, by_sector, sub_icb)


def _community_orgs(
    rng: np.random.Generator,
    sector: str,
    counts: dict[str, int],
    icb_codes: list[str],
    first: date,
    months: int,
    closed_share: float,
    opened_share: float,
) -> list[NationalOrg]:
    """GP practices, care homes, independent providers: many, small, collated by ICB."""
    n = counts[sector]
    icb_index = rng.integers(0, len(icb_codes), size=n)
    closes = rng.random(n) < closed_share
    opens = rng.random(n) < opened_share
    close_month = rng.integers(0, max(months, 1), size=n)
    open_month = rng.integers(0, max(months, 1), size=n)
    old_year = rng.integers(1974, 2015, size=n)
    orgs = []
    for i in range(n):
        if sector == "gp_practice":
            letter = "ABCDEFGHJKLMNPY"[i % 15]
            code, name = f"{letter}{81000 + i:05d}", f"SYNTHETIC SURGERY {i + 1:05d}"
        elif sector == "care_home":
            code, name = f"VC{i + 1:05d}", f"Care home VC{i + 1:05d}"
        else:
            code, name = f"NI{i + 1:04d}", f"Independent hospital NI{i + 1:04d}"
        opened = date(int(old_year[i]), 4, 1)
        if opens[i]:
            opened = sample.month_add(first, int(open_month[i]))
        closed = None
        if closes[i]:
            closed = _month_end(sample.month_add(first, int(close_month[i])))
            if closed < opened:
                closed = None
        orgs.append(
            NationalOrg(code, name, sector, opened, closed, icb=icb_codes[int(icb_index[i])])
        )
    return orgs


def is_open(org: sample.Org, period: date) -> bool:
    """Open at some point in ``period``: the pipeline's rule (open by the month's last day,
    not closed before its first). The sample's ``is_open`` also accepts an organisation
    opening on the 1st of the next month, which never arises in the sample but does here,
    where practices and care homes open mid-window."""
    return (org.open_date is None or org.open_date <= _month_end(period)) and (
        org.close_date is None or org.close_date >= period
    )


def _ods_date(value: date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def _quoted(fields: list[str]) -> str:
    """ODS style: every field quoted, no header, CRLF-free lines."""
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n"


def _postcode(i: int) -> str:
    return f"ZZ{10 + i % 89} {1 + i % 9}ZZ"


def write_ods(ods_dir: Path, register: Register) -> dict[str, int]:
    """etr.csv and epraccur.csv in the 27-field layouts of the real extracts (see
    data_samples/ods/ and tests/fixtures/ods_national)."""
    ods_dir.mkdir(parents=True, exist_ok=True)
    grouping = {o.code: NATIONAL_GROUPINGS[i % 7] for i, o in enumerate(register.icbs)}
    etr = []
    for i, org in enumerate(sorted(register.trusts, key=lambda o: o.code)):
        status = "C" if org.close_date else "A"
        fields = [org.code, org.name, grouping[org.icb], org.icb, f"SITE {org.code}", "MAIN ROAD"]
        fields += ["", "SYNTHETIC TOWN", "", _postcode(i), _ods_date(org.open_date)]
        fields += [_ods_date(org.close_date), *[""] * 9, "0", "", status, "", "", ""]
        etr.append(_quoted(fields))
    gp = []
    for i, org in enumerate(register.by_sector["gp_practice"]):
        status = "C" if org.close_date else "A"
        sub = register.sub_icb[org.icb]
        fields = [org.code, org.name, grouping[org.icb], org.icb, "THE HEALTH CENTRE", "HIGH ST"]
        fields += ["SYNTHETIC TOWN", "", "", _postcode(i), _ods_date(org.open_date)]
        fields += [_ods_date(org.close_date), status, "B", sub, _ods_date(org.open_date), ""]
        fields += [f"0{1000 + i % 9000} 000000", "", "", "", "0", "", sub, "", "4", ""]
        gp.append(_quoted(fields))
    (ods_dir / "etr.csv").write_text("".join(etr), encoding="utf-8")
    (ods_dir / "epraccur.csv").write_text("".join(gp), encoding="utf-8")
    return {"etr.csv": len(etr), "epraccur.csv": len(gp)}


def write_local_register(path: Path, register: Register) -> int:
    """Same columns as data_samples/local_register.csv: ICBs, sector overrides for trusts
    ODS cannot type, successors, and the care homes and independent providers ODS lacks."""
    rows = [["org_code", "org_name", "sector_code", "icb_code", "open_date", "close_date"]]
    rows[0].append("successor_code")

    def iso(value: date | None) -> str:
        return value.isoformat() if value else ""

    for icb in register.icbs:
        rows.append([icb.code, icb.name, "icb", icb.code, iso(icb.open_date), "", ""])
    for org in register.trusts:
        if org.successor:
            opened, closed = iso(org.open_date), iso(org.close_date)
            rows.append([org.code, org.name, org.sector, org.icb, opened, closed, org.successor])
        elif org.sector != "acute_trust":
            rows.append([org.code, "", org.sector, "", "", "", ""])
    for sector in ("care_home", "independent_provider"):
        for org in register.by_sector[sector]:
            rows.append(
                [org.code, org.name, sector, org.icb, iso(org.open_date), iso(org.close_date), ""]
            )
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return len(rows) - 1


@dataclass
class SectorSeries:
    """The sample's SeriesModel, vectorised over the organisations of one sector: per
    (organisation, measure) a size and a rate drawn once, then monthly noise."""

    sector: str
    orgs: list[NationalOrg]
    measures: list[str]
    size: np.ndarray  # (orgs, measures): typical monthly denominator of proportions
    rate: np.ndarray  # (orgs, measures)
    bed_days: np.ndarray  # (orgs,): occupied bed days, shared by every per-1,000 measure

    @classmethod
    def draw(cls, rng: np.random.Generator, sector: str, orgs: list[NationalOrg]) -> SectorSeries:
        measures = MEASURES_BY_SECTOR[sector]
        scale = DENOMINATOR_SCALE[sector]
        n = len(orgs)
        base_beds = float(scale.get("bed_days", 0))
        bed_days = base_beds * rng.uniform(0.5, 1.5, size=n)
        size = np.zeros((n, len(measures)))
        rate = np.zeros((n, len(measures)))
        for j, measure in enumerate(measures):
            _, base, _, _ = sample.MEASURE_MODEL[measure]
            size[:, j] = (scale.get(measure) or base_beds) * rng.uniform(0.5, 1.5, size=n)
            rate[:, j] = base * rng.uniform(0.7, 1.3, size=n)
        return cls(sector, orgs, measures, size, rate, bed_days)

    def month(self, rng: np.random.Generator, period: date) -> tuple[np.ndarray, np.ndarray]:
        """(numerators, denominators), each (orgs, measures), for one month."""
        n, m = self.size.shape
        beds = np.maximum(0, rng.normal(self.bed_days, self.bed_days * 0.06 + 1)).astype(np.int64)
        num = np.zeros((n, m), dtype=np.int64)
        den = np.zeros((n, m), dtype=np.int64)
        for j, measure in enumerate(self.measures):
            kind = sample.MEASURE_MODEL[measure][0]
            rate = self.rate[:, j] * sample.rate_factor(measure, period)
            if kind == "prop":
                size = self.size[:, j]
                d = np.maximum(0, rng.normal(size, size * 0.06 + 1)).astype(np.int64)
                num[:, j] = rng.binomial(d, np.minimum(rate, 0.999))
            else:
                d = beds
                num[:, j] = rng.poisson(d * rate / sample.MULTIPLIER[measure])
            den[:, j] = d
        return num, den


def wide_labels() -> tuple[str, str, dict[str, tuple[str, str]]]:
    """Header labels of the wide template: the first alias of each column in its contract."""
    spec = yaml.safe_load(WIDE_CONTRACT_FILE.read_text(encoding="utf-8"))
    org, period = spec["columns"]["org_code"][0], spec["columns"]["period"][0]
    labels = {
        code: (pair["numerator"][0], pair["denominator"][0])
        for code, pair in spec["measures"].items()
    }
    return (
        org.capitalize(),
        period.capitalize(),
        {
            code: (numerator.capitalize(), denominator.capitalize())
            for code, (numerator, denominator) in labels.items()
        },
    )


def write_wide_xlsx(path: Path, org: NationalOrg, period: date, rows: pl.DataFrame) -> int:
    """One trust's month in the wide template: title rows, a header, one data row."""
    org_label, month_label, labels = wide_labels_cached()
    header, values = [org_label, month_label], []
    for measure, numerator, denominator in rows.select(
        "measure_code", "numerator", "denominator"
    ).iter_rows():
        num_label, den_label = labels[measure]
        header.append(num_label)
        values.append(numerator)
        if den_label not in header:
            header.append(den_label)
            values.append(denominator)
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    book.set_properties({"created": XLSX_CREATED, "author": "synthetic"})
    sheet = book.add_worksheet("Return")
    sheet.write(0, 0, "National Patient Safety Improvement Programme")
    sheet.write(1, 0, f"Monthly safety return - {org.name}")
    sheet.write_row(3, 0, header)
    sheet.write(4, 0, org.code)
    month_format = book.add_format({"num_format": "mmm-yy"})
    sheet.write_datetime(4, 1, datetime(period.year, period.month, 1), month_format)
    sheet.write_row(4, 2, values)
    book.close()
    path.write_bytes(buf.getvalue())
    return len(buf.getvalue())


_LABELS: list[tuple[str, str, dict[str, tuple[str, str]]]] = []


def wide_labels_cached() -> tuple[str, str, dict[str, tuple[str, str]]]:
    if not _LABELS:
        _LABELS.append(wide_labels())
    return _LABELS[0]


def _received_time(rng: np.random.Generator, period: date) -> float:
    late = rng.random() < LATE_RETURN
    days = int(rng.integers(25, 61)) if late else int(rng.integers(5, 20))
    received = _month_end(period) + timedelta(days=days)
    return datetime(received.year, received.month, received.day, 9, tzinfo=UTC).timestamp()


def generate_national(
    out: Path,
    *,
    scale: float,
    seed: int = SEED,
    months: int = 120,
    last_period: date | None = None,
    catalogue_start: date = CATALOGUE_START,
) -> dict:
    """Write the register and the returns under ``out``; return the manifest."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    last = (last_period or sample.month_add(date.today().replace(day=1), -1)).replace(day=1)
    first = max(sample.month_add(last, -(months - 1)), catalogue_start)
    periods = []
    while (p := sample.month_add(first, len(periods))) <= last:
        periods.append(p)
    rng = np.random.default_rng(seed)
    register = build_register(rng, scale, first, len(periods))
    for folder in ("landing", "holdback", "ods", "incident_landing"):
        shutil.rmtree(out / folder, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    ods_rows = write_ods(out / "ods", register)
    local_rows = write_local_register(out / "local_register.csv", register)
    series = [
        SectorSeries.draw(rng, sector, orgs)
        for sector, orgs in register.by_sector.items()
        if sector in MEASURES_BY_SECTOR and orgs
    ]
    reporting_trusts = [o for o in register.trusts if o.sector in MEASURES_BY_SECTOR]
    holdback_org = next(o for o in register.by_sector["acute_trust"] if o.layout == "long")
    specials = _special_returns(rng, reporting_trusts, periods, holdback_org)
    stats = Stats()
    holdback: dict = {}
    for i, period in enumerate(periods):
        is_last = i == len(periods) - 1
        keep = {holdback_org.code} if is_last else set()
        frame = _month_frame(rng, series, period, keep)
        month = _Month(period, i, is_last)
        holdback |= _write_month(out, rng, frame, register, month, specials, holdback_org, stats)
    holdback_rows = holdback.get("rows", 0)
    incident_counts = write_incidents(out / "incident_landing", rng, register, periods, scale)
    manifest = {
        "generator": "data_samples/national.py",
        "seed": seed,
        "scale": scale,
        "first_period": first.strftime("%Y-%m"),
        "last_period": last.strftime("%Y-%m"),
        "months": len(periods),
        "months_requested": months,
        "catalogue_start": catalogue_start.strftime("%Y-%m"),
        "organisations": {
            "icb": len(register.icbs),
            **{s: len(o) for s, o in register.by_sector.items()},
            "total": len(register.icbs) + sum(len(o) for o in register.by_sector.values()),
        },
        "register_rows": {**ods_rows, "local_register.csv": local_rows},
        "files": stats.files,
        "files_by_kind": dict(sorted(stats.by_kind.items())),
        "rows": stats.rows,
        "rows_by_kind": dict(sorted(stats.rows_by_kind.items())),
        "bytes": stats.bytes,
        "rows_quarantined": stats.rows_quarantined,
        "fct_measure_monthly_rows": stats.fct_rows,
        "fct_measure_monthly_rows_with_holdback": stats.fct_rows + holdback_rows,
        "holdback": holdback,
        **incident_counts,
    }
    (out / "NATIONAL_MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def write_incidents(
    landing: Path, rng: np.random.Generator, register: Register, periods: list[date], scale: float
) -> dict:
    """Every open trust's events for the last ``INCIDENT_MONTHS`` of ``periods``, one
    LFPSE-style extract per trust and month of EVENT, received the month after
    (``<received>/<org>_lfpse_<YYYY-MM>.csv``); rows built by the sample's incident
    generator (one row per patient of an event revision; about one event in ten revised,
    with both revisions in the extract). Events submitted after the last period are not
    reported yet and are not written, as in a real extract (a date in the future is
    quarantined).

    Why per event month, not per month of submission: an extract replaces the previous one
    for what it covers, the months from its earliest to its latest event (docs/incidents.md),
    and the events an earlier extract held there and this one does not are deleted. Extracts
    by submission month hold up to three event months each and overlap, so the pipeline
    would delete most events; extracts by event month never overlap. Each trust's month is
    written as soon as it is drawn, so one trust-month of events is held at a time. Returns
    the manifest's incident counts: files, rows, events (one per reference: the latest
    revision) and organisation-months (month of the event) with events."""
    months = periods[-INCIDENT_MONTHS:]
    a_month = INCIDENT_EVENTS_A_YEAR * scale / 12
    counts = {"incident_files": 0, "incident_rows": 0, "incident_events": 0}
    counts |= {"incident_org_months": 0, "incident_first_period": f"{months[0]:%Y-%m}"}
    # Says the extracts are by event month: the bench regenerates data without it.
    counts |= {"incident_extracts": "by_event_month"}
    seq = 1_000_000
    for index, month in enumerate(months):
        trusts = [o for o in register.trusts if is_open(o, month)]
        weight = sum(INCIDENT_WEIGHT[o.sector] for o in trusts)
        received = sample.month_add(month, 1)
        for org in trusts:
            base = round(a_month * INCIDENT_WEIGHT[org.sector] / weight)
            n = incidents.volume(rng, base, index)
            events = [
                event
                for event in incidents.month_events(rng, org.code, month, n, "lfpse", seq)
                if event.submitted.replace(day=1) <= months[-1]
            ]
            seq += n
            if not events:
                continue
            # A revised event's first revision is in the extract too: the latest counts.
            first = [replace(e, revision=1) for e in events if e.revision > 1]
            rows = incidents.lfpse_rows(first + events, rng)
            path = landing / f"{received:%Y-%m}" / f"{org.code}_lfpse_{month:%Y-%m}.csv"
            incidents.write_csv(path, incidents.LFPSE_HEADER, rows)
            counts["incident_files"] += 1
            counts["incident_rows"] += len(rows)
            counts["incident_events"] += len(events)
            counts["incident_org_months"] += 1
    return counts


@dataclass
class Specials:
    resubmitted: set[tuple[str, int]]
    bad: dict[tuple[str, int], str]  # -> "swap" (numerator > denominator) | "unknown_measure"


def _special_returns(
    rng: np.random.Generator,
    trusts: list[NationalOrg],
    periods: list[date],
    holdback_org: NationalOrg,
) -> Specials:
    """Which trust returns are resubmitted and which carry a bad row, drawn up front."""
    long_trusts = [o for o in trusts if o.layout == "long"]
    resubmitted = {
        (o.code, i)
        for o in long_trusts
        for i in range(max(0, len(periods) - 3))
        if rng.random() < RESUBMITTED
    }
    est_rows = sum(len(MEASURES_BY_SECTOR[o.sector]) for o in trusts) * len(periods)
    n_bad = max(2, est_rows * 10 // BAD_ROW_EVERY)
    acute = [o for o in long_trusts if o.sector == "acute_trust"]
    bad: dict[tuple[str, int], str] = {}
    for k in range(n_bad * 4):
        if len(bad) >= n_bad:
            break
        org = acute[int(rng.integers(0, len(acute)))]
        i = int(rng.integers(0, len(periods)))
        key = (org.code, i)
        if key in resubmitted or (org is holdback_org and i == len(periods) - 1):
            continue
        bad.setdefault(key, "swap" if k % 2 == 0 else "unknown_measure")
    return Specials(resubmitted, bad)


@dataclass(frozen=True)
class _Month:
    period: date
    index: int
    is_last: bool


def _month_frame(
    rng: np.random.Generator, series: list[SectorSeries], period: date, keep: set[str]
) -> pl.DataFrame:
    """Every row any organisation reports for one month (``keep``: never missing)."""
    parts = []
    for block in series:
        num, den = block.month(rng, period)
        open_now = np.array([is_open(o, period) for o in block.orgs])
        missing_p = MISSING_FROM_COLLATED if block.sector in COLLATED else MISSING_TRUST_RETURN
        kept = np.array([o.code in keep for o in block.orgs])
        present = open_now & ((rng.random(len(block.orgs)) >= missing_p) | kept)
        idx = np.flatnonzero(present)
        if idx.size == 0:
            continue
        m = len(block.measures)
        codes = np.array([o.code for o in block.orgs])[idx]
        if block.sector in COLLATED:
            icbs = np.array([o.icb for o in block.orgs])[idx]
            files = np.char.add(np.char.add(icbs, f"_{period:%Y-%m}_"), COLLATED[block.sector])
        else:
            files = codes
        parts.append(
            pl.DataFrame(
                {
                    "file": np.repeat(files, m),
                    "org_code": np.repeat(codes, m),
                    "measure_code": np.tile(np.array(block.measures), idx.size),
                    "numerator": num[idx].ravel(),
                    "denominator": den[idx].ravel(),
                    "sector": block.sector,
                }
            )
        )
    frame = pl.concat(parts)
    return frame.with_columns(pl.lit(period.strftime("%Y-%m")).alias("period"))


def _write_month(
    out: Path,
    rng: np.random.Generator,
    frame: pl.DataFrame,
    register: Register,
    month: _Month,
    specials: Specials,
    holdback_org: NationalOrg,
    stats: Stats,
) -> dict:
    """Split one month into files and write them; returns the holdback's details if this
    month holds it."""
    period, i, is_last = month.period, month.index, month.is_last
    tag = period.strftime("%Y-%m")
    received = sample.month_add(period, 1).strftime("%Y-%m")
    orgs = {o.code: o for o in register.trusts}
    holdback: dict = {}
    # Collated files sort by ICB; trust files by code: the order of folder then name.
    for (name,), rows in sorted(frame.partition_by("file", as_dict=True).items()):
        org = orgs.get(name)
        when = _received_time(rng, period)
        if org is None:  # ICB-collated
            kind = f"collated_{COLLATED[rows['sector'][0]]}"
            path = out / "landing" / received / f"{name}.csv"
            size = _write_long(path, rows, when)
            stats.add(kind, rows.height, size)
            stats.fct_rows += rows.height
            continue
        bad = specials.bad.get((org.code, i))
        rows, quarantined = _spoil(rows, bad)
        if org.layout == "xlsx":
            path = out / "landing" / received / f"{org.code}_{tag}.xlsx"
            path.parent.mkdir(parents=True, exist_ok=True)
            size = write_wide_xlsx(path, org, period, rows)
            os.utime(path, (when, when))
            kind = "trust_xlsx_wide"
        elif org is holdback_org and is_last:
            path = out / "holdback" / received / f"{org.code}_{tag}.csv"
            size = _write_long(path, rows, when)
            holdback = {
                "org_code": org.code,
                "period": tag,
                "path": path.relative_to(out / "holdback").as_posix(),
                "rows": rows.height,
                "bytes": size,
            }
            continue
        else:
            path = out / "landing" / received / f"{org.code}_{tag}.csv"
            size = _write_long(path, rows, when)
            kind = "trust_csv_long"
        stats.add(kind, rows.height, size)
        stats.rows_quarantined += quarantined
        stats.fct_rows += rows.height - quarantined
        if (org.code, i) in specials.resubmitted:
            corrected = rows.with_columns(
                pl.when(pl.col("measure_code") == "FALLS_HARM")
                .then(pl.col("numerator").cast(pl.Int64) + 1)
                .otherwise(pl.col("numerator").cast(pl.Int64))
                .alias("numerator")
            )
            later = sample.month_add(period, 3).strftime("%Y-%m")
            path = out / "landing" / later / f"{org.code}_{tag}_resubmitted.csv"
            size = _write_long(path, corrected, when + 60 * 86400)
            stats.add("trust_csv_resubmission", corrected.height, size)
    return holdback


def _spoil(rows: pl.DataFrame, bad: str | None) -> tuple[pl.DataFrame, int]:
    """Deliberately bad rows the pipeline must quarantine: counts keyed the wrong way round
    in a proportion, or a mistyped measure code added to the return."""
    if bad == "swap":
        target = rows.with_row_index("i").filter(
            pl.col("measure_code").is_in(["NEWS2_ON_TIME", "SMOKING_AT_DELIVERY"])
            & (pl.col("numerator") < pl.col("denominator"))
        )
        if target.height == 0:
            return rows, 0
        i = target["i"][0]
        swapped = rows.with_row_index("i").with_columns(
            pl.when(pl.col("i") == i)
            .then(pl.col("denominator"))
            .otherwise(pl.col("numerator"))
            .alias("numerator"),
            pl.when(pl.col("i") == i)
            .then(pl.col("numerator"))
            .otherwise(pl.col("denominator"))
            .alias("denominator"),
        )
        return swapped.drop("i"), 1
    if bad == "unknown_measure":
        extra = rows.head(1).with_columns(pl.lit("NEWS_ON_TIME").alias("measure_code"))
        return pl.concat([rows, extra]), 1
    return rows, 0


def _write_long(path: Path, rows: pl.DataFrame, when: float) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.select(LONG_HEADER).write_csv(path, line_terminator="\n")
    os.utime(path, (when, when))
    return path.stat().st_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--months", type=int, default=120)
    parser.add_argument("--last-period", default=None, help="YYYY-MM (default: last month)")
    args = parser.parse_args(argv)
    last = None
    if args.last_period:
        year, month = args.last_period.split("-")[:2]
        last = date(int(year), int(month), 1)
    manifest = generate_national(
        args.out, scale=args.scale, seed=args.seed, months=args.months, last_period=last
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
