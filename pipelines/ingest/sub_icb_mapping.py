"""Which ICB a CCG or sub-ICB location code belongs to: how a practice file that predates
ICBs (July 2022) gets an ICB.

Practice files before April 2020 carry NHS England's own geography in field 4 (area teams
``Q44``-``Q59``, local offices ``Q70``-``Q79``), not an ICB; what places a practice is
field 15, the CCG that commissioned it. ICBs took over their CCGs' areas, and each CCG
code of 2022 became a sub-ICB location code unchanged, so a CCG code names an ICB.

The table, ``pipelines/ingest/reference/sub_icb_to_icb.csv``, has two kinds of row:

``derived``
    Built by :func:`derive_from_epraccur` from the national practice file of about
    December 2023 (``tests/fixtures/ods_national/epraccur.csv``): every field-15 code of
    an active practice, with the ICB (field 4) that at least 90% of that code's active
    practices carry; and codes that only closed practices still carry, where their
    field 4 is an ICB (or STP: ICBs kept their STPs' codes) code. Run
    ``python -m pipelines.ingest.sub_icb_mapping <epraccur.csv>`` to rebuild these rows
    from a newer file; curated rows are kept.
``predecessor_ccg``
    CCGs merged away before ICBs existed, which no current file carries with an ICB, so
    they are written by hand with their successor. Only the sample region's are here
    (the North East and North Cumbria's 2015 and 2020 mergers); another region whose
    practice files predate its CCG mergers adds its own, with the evidence.

Coverage is honest, not complete: a code the table does not know places its practices in
no ICB (outside every region), and the register's verdict names such codes.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

from pipelines.settings import ENGLAND_ICBS

MAPPING_FILE = Path(__file__).parent / "reference" / "sub_icb_to_icb.csv"
COLUMNS = ["code", "icb_code", "kind", "active_practices", "name", "evidence"]
MAJORITY = 0.9


@cache
def sub_icb_to_icb(path: Path = MAPPING_FILE) -> dict[str, str]:
    """CCG or sub-ICB location code -> ICB code."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["code"]: row["icb_code"] for row in csv.DictReader(handle)}


def derive_from_epraccur(epraccur: Path) -> list[dict[str, str]]:
    """The ``derived`` rows from a national, ICB-era practice file (27 fields, no header)."""
    active: dict[str, Counter[str]] = defaultdict(Counter)
    closed: dict[str, Counter[str]] = defaultdict(Counter)
    with epraccur.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            icb, code, status = row[3].strip(), row[14].strip(), row[12].strip()
            if not code or icb not in ENGLAND_ICBS:
                continue
            (active if status == "A" else closed)[code][icb] += 1
    rows = []
    for code in sorted(set(active) | set(closed)):
        counts = active.get(code) or closed[code]
        icb, n = counts.most_common(1)[0]
        total = sum(counts.values())
        if n < MAJORITY * total:
            continue  # no clear ICB: left out rather than guessed
        if code in active:
            others = ", ".join(f"{k} {v}" for k, v in counts.most_common()[1:])
            evidence = f"{n} of {total} active practices under this code carry {icb}"
            evidence += f" (also: {others})" if others else ""
        else:
            evidence = f"no active practice; {n} closed practice(s) carry {icb}"
        rows.append(
            {
                "code": code,
                "icb_code": icb,
                "kind": "derived",
                "active_practices": str(sum(active[code].values()) if code in active else 0),
                "name": "",
                "evidence": evidence,
            }
        )
    return rows


def rebuild(epraccur: Path, path: Path = MAPPING_FILE) -> int:
    """Replace the derived rows from ``epraccur``, keep every curated row and every name."""
    with path.open(newline="", encoding="utf-8") as handle:
        existing = list(csv.DictReader(handle))
    names = {row["code"]: row["name"] for row in existing if row["name"]}
    curated = [row for row in existing if row["kind"] != "derived"]
    curated_codes = {row["code"] for row in curated}
    derived = [
        {**row, "name": names.get(row["code"], "")}
        for row in derive_from_epraccur(epraccur)
        if row["code"] not in curated_codes
    ]
    rows = sorted(derived + curated, key=lambda row: (row["kind"] != "derived", row["code"]))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    sub_icb_to_icb.cache_clear()
    return len(rows)


if __name__ == "__main__":
    print(f"{rebuild(Path(sys.argv[1]))} codes in {MAPPING_FILE}")
