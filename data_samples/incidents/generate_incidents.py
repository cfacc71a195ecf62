"""Deterministic incident extracts for the North East sample: two years (April 2023 - March
2025) in both layouts, with the personal data and free text real exports carry (the
pipeline must drop all of it; docs/incidents.md).

Writes under ``data_samples/incidents/landing/`` (or ``--out``), one folder per month of
receipt:
  QHM_lfpse_<FY>Q<n>.csv            the ICB's quarterly LFPSE extract of its LFPSE trusts
                                    (financial years: 2023Q1 = April-June 2023)
  RTD_datix_<YYYY-MM>.csv / .xlsx   Newcastle's monthly local (Datix-style) export, the
                                    large acute trust: ~1,000-1,500 events a month; every
                                    sixth month XLSX with a title row above the header
  QHM_lfpse_2023Q4_reextract.csv    January-March 2024 (financial Q4) extracted again:
                                    one event revised and re-graded, one event deleted
  RTD_datix_2024-06_reexport.xlsx   June 2024 exported again: one incident re-graded, one
                                    deleted
and MANIFEST.json (what the pipeline must find).

Also writes ``data_samples/incidents/kh03/`` (``generate_kh03``): one KH03 bed occupancy file
per quarter in NHS England's published layout (title rows, a group row over the column row,
the England row), average occupied beds by sector for the sample's trusts with beds (not
the ambulance trust): the denominator of the incident rates (docs/incidents.md).
Same seed, same bytes; the files are not committed (about 20 MB): ``make demo`` writes them
when the folder is missing.
Run: ``python data_samples/incidents/generate_incidents.py``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20231101
FIRST_MONTH = date(2023, 4, 1)
MONTHS = 24
ICB = "QHM"
# Events a month: Newcastle (RTD) sends Datix-style exports; the others are extracted by the
# ICB from LFPSE. Volumes follow bed numbers (a large acute trust: 1,000-1,500 a month).
DATIX_ORGS = {"RTD": 1250}
LFPSE_ORGS = {
    "R0B": 700,
    "RR7": 300,
    "RTF": 650,
    "RTR": 600,
    "RVW": 450,
    "RXP": 550,
    "RNN": 420,
    "RX3": 380,
    "RX4": 420,
    "RX6": 160,
}
LFPSE_HEADER = [
    "Reference",
    "Revision",
    "TaxonomyVersion",
    "SubmissionDate",
    "T005",
    "OccurredOrganisationCode",
    "ReporterOrganisationCode",
    "CL001",
    "CL021",
    "L003",
    "L004",
    "L006",
    "L006_Other",
    "A001",
    "A008_Other",
    "F001",
    "AC001",
    "EntityId",
    "OT001",
    "OT002",
    "OT003",
    "P004",
    "P007",
    "PatientEthnicity",
    "ReporterContact",
]
DATIX_HEADER = [
    "recordid",
    "inc_ourref",
    "inc_dincident",
    "inc_time",
    "inc_dreported",
    "inc_type",
    "inc_category",
    "inc_subcategory",
    "inc_severity",
    "inc_loctype",
    "inc_locactual",
    "inc_locactual_type",
    "inc_specialty",
    "inc_name",
    "inc_dob",
    "con_nhsno",
    "inc_postcode",
    "con_email",
    "inc_repname",
    "INC_NOTES",
    "INC_ACTIONTAKEN",
]
HARM_P = [0.005, 0.015, 0.05, 0.23, 0.70]  # physical 1 (fatal) .. 5 (none)
DATIX_SEVERITY = ["DEATH", "SEV", "MOD", "LOW", "NONE"]
DATIX_CATEGORY = (
    ["FALL", "MED", "PU", "DEV", "INFC", "TREAT", "ADMDIS", "DOC", "BEH", "OTH"],
    [0.20, 0.15, 0.08, 0.04, 0.05, 0.14, 0.10, 0.08, 0.06, 0.10],
)
DATIX_LOC = (
    ["INPAT", "ED", "OUTPAT", "THEATRE", "MAT", "COMM"],
    [0.55, 0.15, 0.10, 0.06, 0.08, 0.06],
)
DATIX_PLACE = {"COMM": "HOME"}
DATIX_SPEC = ["GENMED", "SURG", "ORTHO", "AE", "PAEDS", "OBS", "ELDERLY", "CARDIO", "ONCOL", "RESP"]
FIRST_NAMES = ["Olivia", "Jack", "Amelia", "Harry", "Isla", "George", "Ava", "Noah"]
SURNAMES = ["Armstrong", "Robson", "Charlton", "Shearer", "Gascoigne", "Milburn", "Keegan"]


def month_add(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def days_in(month: date) -> int:
    return (month_add(month, 1) - month).days


def nhs_number(rng: np.random.Generator) -> str:
    """A 10-digit number with a valid modulus-11 check digit (the shape of an NHS number)."""
    while True:
        digits = [int(d) for d in rng.integers(0, 10, 9)]
        total = sum(d * (10 - i) for i, d in enumerate(digits))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)


_POOL: list[dict[str, str]] = []


def person(rng: np.random.Generator) -> dict[str, str]:
    """One of 499 invented people (a pool keeps the generator fast)."""
    if not _POOL:
        pool_rng = np.random.default_rng(SEED + 1)
        _POOL.extend(_invent(pool_rng) for _ in range(499))
    return _POOL[int(rng.integers(len(_POOL)))]


def _invent(rng: np.random.Generator) -> dict[str, str]:
    """The personal data a local export carries beside each incident (all invented)."""
    first = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]
    last = SURNAMES[int(rng.integers(len(SURNAMES)))]
    dob = date(1930, 1, 1) + timedelta(days=int(rng.integers(0, 33000)))
    return {
        "name": f"{first} {last}",
        "dob": dob.isoformat(),
        "nhs": nhs_number(rng),
        "postcode": f"NE{int(rng.integers(1, 99))} {int(rng.integers(1, 9))}"
        f"{'ABDEFGHJ'[int(rng.integers(8))]}{'LNPQRSTU'[int(rng.integers(8))]}",
        "email": f"{first.lower()}.{last.lower()}@example.nhs.uk",
        "notes": f"{first} {last} found on floor beside bed, NHS no {nhs_number(rng)}",
    }


@dataclass
class Event:
    ref: str
    revision: int
    org: str
    event_date: date
    submitted: date
    service: str
    location: str
    specialty: str
    agents: str
    patients: list[tuple[int, int, int]]  # (physical, psychological, age band)
    event_type: str = "1"


def lfpse_rows(events: list[Event], rng: np.random.Generator) -> list[list[str]]:
    rows = []
    for e in events:
        patients = e.patients or [(0, 0, 0)]
        for number, (phys, psych, band) in enumerate(patients, start=1):
            p = person(rng)
            rows.append(
                [
                    e.ref,
                    str(e.revision),
                    "5",
                    e.submitted.isoformat(),
                    e.event_date.isoformat(),
                    e.org,
                    e.org,
                    e.event_type,
                    f"LOC-{e.ref[-5:]}",
                    e.service,
                    e.location,
                    e.specialty,
                    "",
                    e.agents,
                    "",
                    p["notes"],
                    "Escalated to nurse in charge",
                    str(number) if e.patients else "",
                    str(phys) if phys else "",
                    str(psych) if psych else "",
                    f"Outcome for {p['name']}",
                    str(int(rng.integers(100, 35000))),
                    str(band) if band else "",
                    "A",
                    p["email"],
                ]
            )
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def write_xlsx(path: Path, header: list[str], rows: list[list[str]], title: str) -> None:
    """An XLSX as local systems export it: a title row, a blank row, then the header."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"constant_memory": True, "in_memory": True})
    book.set_properties({"created": __import__("datetime").datetime(2024, 1, 1)})
    sheet = book.add_worksheet("Incidents")
    sheet.write_row(0, 0, [title])
    sheet.write_row(2, 0, header)
    for i, row in enumerate(rows, start=3):
        sheet.write_row(i, 0, row)
    book.close()
    path.write_bytes(buffer.getvalue())


def datix_rows(events: list[Event], rng: np.random.Generator) -> list[list[str]]:
    rows = []
    for e in events:
        p = person(rng)
        cat, loc, spec, sev = e.agents.split("|")
        rows.append(
            [
                e.ref,
                f"W{e.ref}",
                e.event_date.strftime("%d/%m/%Y"),
                "1430",
                e.submitted.strftime("%d/%m/%Y"),
                "PSI",
                cat,
                f"{cat}01",
                sev,
                loc,
                f"Ward {int(rng.integers(1, 40))}, {p['name']}'s bay",
                DATIX_PLACE.get(loc, "WARD"),
                spec,
                p["name"],
                p["dob"],
                p["nhs"],
                p["postcode"],
                p["email"],
                "Staff Nurse Robson",
                p["notes"],
                "Bed rails checked",
            ]
        )
    return rows


def month_events(rng, org, month, n, kind, seq) -> list[Event]:
    """``n`` events of one organisation and month (random draws made a month at a time)."""
    out = []
    days = rng.integers(0, days_in(month), n)
    lags = np.minimum(rng.exponential(6.0, n), 60).astype(int)
    two = rng.random(n) < 0.04
    harms = rng.choice(5, p=HARM_P, size=(n, 2)) + 1
    bands = rng.integers(8, 13, (n, 2))
    draw = rng.random(n)
    revised = rng.random(n) < 0.1
    specs = rng.integers(0, 8, n)
    cats = rng.choice(len(DATIX_CATEGORY[0]), p=DATIX_CATEGORY[1], size=n)
    locs = rng.choice(len(DATIX_LOC[0]), p=DATIX_LOC[1], size=n)
    dspecs = rng.integers(0, len(DATIX_SPEC), n)
    for i in range(n):
        day = month + timedelta(days=int(days[i]))
        submitted = day + timedelta(days=int(lags[i]))
        count = 2 if two[i] else 1
        patients = [
            (int(harms[i, k]), int(min(4, harms[i, k])), int(bands[i, k])) for k in range(count)
        ]
        if kind == "lfpse":
            r = draw[i]
            agents = "4" if r < 0.15 else "3" if r < 0.20 else "4 3" if r < 0.21 else "10"
            service = "4" if org in ("RX3", "RX4") else "3" if org == "RX6" else "1"
            location = "10" if service == "4" else "6" if service == "3" else "4"
            spec = str([2, 42, 97, 105, 77, 65, 44, 10][int(specs[i])])
            out.append(
                Event(
                    f"{seq + i:07d}",
                    1 + int(revised[i]),
                    org,
                    day,
                    submitted,
                    service,
                    location,
                    spec,
                    agents,
                    patients,
                )
            )
        else:
            cat, loc = DATIX_CATEGORY[0][int(cats[i])], DATIX_LOC[0][int(locs[i])]
            sev = DATIX_SEVERITY[patients[0][0] - 1]
            out.append(
                Event(
                    f"{seq + i}",
                    0,
                    org,
                    day,
                    submitted,
                    "",
                    "",
                    "",
                    f"{cat}|{loc}|{DATIX_SPEC[int(dspecs[i])]}|{sev}",
                    patients[:1],
                )
            )
    return out


def volume(rng, base: int, month_index: int) -> int:
    """Monthly volume: the base, a mild winter peak, Poisson noise."""
    season = 1.0 + 0.08 * np.cos((month_index - 9) / 12 * 2 * np.pi)
    return int(rng.poisson(base * season))


def generate(out: Path, seed: int = SEED) -> dict:
    rng = np.random.default_rng(seed)
    landing = out / "landing"
    manifest: dict = {"files": [], "events": 0, "rows": 0}
    seq = 1_000_000
    quarters: dict[date, list[Event]] = {}
    datix_by_month: dict[date, list[Event]] = {}
    for m in range(MONTHS):
        month = month_add(FIRST_MONTH, m)
        for org, base in LFPSE_ORGS.items():
            events = month_events(rng, org, month, volume(rng, base, m), "lfpse", seq)
            seq += len(events)
            quarter = month_add(FIRST_MONTH, (m // 3) * 3)
            quarters.setdefault(quarter, []).extend(events)
        for org, base in DATIX_ORGS.items():
            events = month_events(rng, org, month, volume(rng, base, m), "datix", seq)
            seq += len(events)
            datix_by_month[month] = events

    def fy_quarter(q: date) -> str:
        fy = q.year if q.month >= 4 else q.year - 1
        return f"{fy}Q{((q.month - 4) % 12) // 3 + 1}"

    def received(month: date, months_after: int) -> Path:
        return landing / f"{month_add(month, months_after):%Y-%m}"

    for quarter, events in quarters.items():
        rows = lfpse_rows(events, rng)
        path = received(quarter, 3) / f"{ICB}_lfpse_{fy_quarter(quarter)}.csv"
        write_csv(path, LFPSE_HEADER, rows)
        manifest["files"].append(path.relative_to(landing).as_posix())
        manifest["rows"] += len(rows)
    for index, (month, events) in enumerate(datix_by_month.items()):
        # Most months as CSV, every sixth as XLSX (title rows above the header): both are
        # read the same way, and writing XLSX is what would make the sample slow.
        suffix = "xlsx" if index % 6 == 5 else "csv"
        path = received(month, 1) / f"RTD_datix_{month:%Y-%m}.{suffix}"
        if suffix == "xlsx":
            rows = datix_rows(events, rng)
            write_xlsx(path, DATIX_HEADER, rows, f"RTD incidents {month:%B %Y}")
        else:
            write_csv(path, DATIX_HEADER, datix_rows(events, rng))
        manifest["files"].append(path.relative_to(landing).as_posix())
        manifest["rows"] += len(events)
    # Q1 2024 (January-March) extracted again: revised, re-graded, deleted.
    q1 = date(2024, 1, 1)
    again = [Event(**vars(e)) for e in quarters[q1]]
    regraded, deleted = again[0], again[1]
    regraded.revision += 1
    regraded.submitted = max(regraded.submitted, date(2024, 5, 2))
    regraded.patients = [(3, 3, a) for _, _, a in regraded.patients]  # now moderate harm
    again.remove(deleted)
    path = received(q1, 5) / f"{ICB}_lfpse_{fy_quarter(q1)}_reextract.csv"
    write_csv(path, LFPSE_HEADER, lfpse_rows(again, rng))
    manifest["files"].append(path.relative_to(landing).as_posix())
    manifest["rows"] += sum(max(1, len(e.patients)) for e in again)
    # June 2024 exported again by RTD: one incident re-graded to severe, one deleted.
    june = date(2024, 6, 1)
    redo = [Event(**vars(e)) for e in datix_by_month[june]]
    cat, loc, spec, _ = redo[0].agents.split("|")
    redo[0].agents = f"{cat}|{loc}|{spec}|SEV"
    removed = redo.pop(1)
    path = received(june, 3) / "RTD_datix_2024-06_reexport.xlsx"
    write_xlsx(path, DATIX_HEADER, datix_rows(redo, rng), "RTD incidents June 2024 (re-export)")
    manifest["files"].append(path.relative_to(landing).as_posix())
    manifest["rows"] += len(redo)
    manifest["story"] = {
        "lfpse_regraded": {"reference": regraded.ref, "org": regraded.org, "physical_harm": 3},
        "lfpse_deleted": {"reference": deleted.ref, "org": deleted.org},
        "datix_regraded": {"reference": redo[0].ref, "org": "RTD", "physical_harm": 2},
        "datix_deleted": {"reference": removed.ref, "org": "RTD"},
    }
    events_total = sum(len(v) for v in quarters.values()) + sum(
        len(v) for v in datix_by_month.values()
    )
    manifest["events"] = events_total - 2  # the two deletions
    manifest["files"].sort()
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


# KH03: average occupied beds follow the incident volumes (about 44 incidents per 1,000 bed
# days); mental health trusts' beds are mental illness and learning disabilities beds.
KH03_BEDS_PER_EVENT = 0.75
KH03_MENTAL_HEALTH = {"RX3", "RX4"}
KH03_NO_BEDS = {"RX6"}  # the ambulance trust: not in KH03
KH03_SECTORS = ["General & Acute", "Learning Disabilities", "Maternity", "Mental Illness"]
KH03_PERIOD_END = {4: "June", 7: "September", 10: "December", 1: "March"}


def kh03_beds(org: str, base: int, rng: np.random.Generator) -> list[float]:
    """Average occupied beds by sector (KH03_SECTORS order) for one quarter."""
    beds = base * KH03_BEDS_PER_EVENT * rng.normal(1.0, 0.03)
    split = [0.0, 0.04, 0.0, 0.96] if org in KH03_MENTAL_HEALTH else [0.91, 0.0, 0.09, 0.0]
    return [round(beds * share, 9) for share in split]


def write_kh03(path: Path, quarter: date, rows: list[tuple[str, str, list[float]]]) -> None:
    """One quarter as NHS England publishes KH03: ten title rows, "Provider Level Data",
    a group row (Available / Occupied / % Occupied over five sector columns each), the
    column row, the England row, a blank row, then one row per provider."""
    import xlsxwriter

    fy = quarter.year if quarter.month >= 4 else quarter.year - 1
    year, period_end = f"{fy}-{(fy + 1) % 100:02d}", KH03_PERIOD_END[quarter.month]
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.set_properties({"created": __import__("datetime").datetime(2024, 1, 1)})
    sheet = book.add_worksheet("NHS Trust by Sector")
    last = month_add(quarter, 2)
    titles = [
        ("Title:", "Average daily number of available and occupied beds open overnight by sector"),
        ("Summary:", "KH03 is the collection of data to monitor available bed capacity"),
        (None, None),
        ("Period:", f"{quarter:%B} to {last:%B %Y}"),
        ("Source:", "NHS England: SDCS data collection - KH03"),
        ("Basis:", "Provider"),
        ("Published:", "(sample)"),
        ("Revised:", None),
        ("Status:", "Public"),
        ("Contact:", "(sample)"),
    ]
    for i, (label, text) in enumerate(titles):
        sheet.write_row(i, 0, [label, text])
    sheet.write_row(11, 0, ["Provider Level Data"])
    sectors = ["Total", *KH03_SECTORS]
    for group, first in (("Available", 5), ("Occupied", 11), ("% Occupied", 17)):
        sheet.write(12, first, group)
    sheet.write_row(13, 0, ["Year", "Period End", "Region Code", "Org Code", "Org Name"])
    for first in (5, 11, 17):
        sheet.write_row(13, first, sectors)

    def figures(occupied: list[float]) -> list:
        available = [round(b / 0.9, 9) for b in occupied]
        occupied_row = [sum(occupied), *occupied]
        available_row = [sum(available), *available]
        share = [o / a if a else "-" for o, a in zip(occupied_row, available_row, strict=True)]
        return [*available_row, None, *occupied_row, None, *share]

    total = [sum(r[2][i] for r in rows) for i in range(len(KH03_SECTORS))]
    sheet.write_row(14, 0, [year, period_end, None, None, "England", *figures(total)])
    for i, (org, name, occupied) in enumerate(rows, start=16):
        sheet.write_row(i, 0, [year, period_end, "Y63", org, name, *figures(occupied)])
    book.close()
    path.write_bytes(buffer.getvalue())


def generate_kh03(out: Path, seed: int = SEED) -> list[str]:
    """One KH03 file per quarter of the sample (its own random stream: the incident
    extracts are the same bytes with or without it); the file names written."""
    rng = np.random.default_rng(seed + 3)
    names = {"RTD": "THE NEWCASTLE UPON TYNE HOSPITALS NHS FOUNDATION TRUST"}
    orgs = {**DATIX_ORGS, **LFPSE_ORGS}
    written = []
    for q in range(MONTHS // 3):
        quarter = month_add(FIRST_MONTH, 3 * q)
        rows = [
            (org, names.get(org, f"{org} NHS TRUST"), kh03_beds(org, base, rng))
            for org, base in sorted(orgs.items())
            if org not in KH03_NO_BEDS
        ]
        fy = quarter.year if quarter.month >= 4 else quarter.year - 1
        name = f"Beds-Open-Overnight-Web_File-{fy}-{(fy + 1) % 100:02d}-Q{q % 4 + 1}.xlsx"
        write_kh03(out / "kh03" / name, quarter, rows)
        written.append(name)
    return written


def ensure(out: Path = HERE) -> bool:
    """Write the sample unless its landing folder is already there; True if written."""
    if (out / "landing").exists():
        return False
    generate(out)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    manifest = generate(args.out)
    generate_kh03(args.out)
    print(f"{len(manifest['files'])} files, {manifest['rows']} rows, {manifest['events']} events")


if __name__ == "__main__":
    main()
