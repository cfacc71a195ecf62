"""The register's bad-input corpus: register folders named after what is wrong with them.

Every case is built at test time from real ODS files (the national extracts of about
December 2023 in ``fixtures/ods_national/``, the 2020 trust rows in ``fixtures/
ods_vintages/``), changed the way such files really go wrong: an older extract, a file
from before ICBs, another file under the register's name, a re-export with a header, a
truncated download, two extracts joined. Each says which register is in place when it
arrives (``in_place``), what must happen (``status``, ``rule``) and the words its reason
must hold (``reason_has``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
NATIONAL = FIXTURES / "ods_national"
VINTAGES = FIXTURES / "ods_vintages"
REGION = "QHM"
# The North East's organisations in the national files and the sample's local register.
NE_TRUSTS, NE_PRACTICES, NE_LOCAL = 11, 671, 21
# Distinct codes: 11 trusts + 671 practices + 21 local rows, 3 of which override ODS rows.
NE_REGISTER = 700


@cache
def national(name: str) -> bytes:
    return (NATIONAL / name).read_bytes()


def records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def ods_bytes(rows: list[list[str]]) -> bytes:
    """As ODS writes them: every field quoted, no header, LF line ends."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def cut_to_24_fields(data: bytes) -> bytes:
    """The 24-field layout of older extracts: fields 25-27 (all null) not there."""
    return ods_bytes([row[:24] for row in records(data)])


def etr_2020_24_fields() -> bytes:
    return cut_to_24_fields((VINTAGES / "etr_2020.csv").read_bytes())


# -- a CCG-era practice file ---------------------------------------------------------------
CUTOFF = "20190331"
# CCGs of 31 March 2019 for the practices that Tees Valley (16C) and County Durham (84H)
# took over on 1 April 2020, told apart by postcode district.
_TEES = {"DL1": "00C", "DL2": "00C", "DL3": "00C"}
_SOUTH_TEES = {f"TS{n}" for n in range(1, 15)}
NE_CCGS = {"00C", "00D", "00F", "00G", "00H", "00J", "00K", "00L", "00M", "00N", "00P", "01H"}
NE_CCGS |= {"13T", "16C", "84H", "99C"}


def _ccg_2019(sub_icb: str, postcode: str) -> str:
    district = postcode.split(" ")[0]
    if sub_icb == "16C":
        return _TEES.get(district) or ("00M" if district in _SOUTH_TEES else "00K")
    if sub_icb == "84H":
        return "00J" if district.startswith("DH") else "00D"
    return sub_icb


@cache
def ccg_era_practices() -> bytes:
    """The North East's practices as a practice file of 31 March 2019 would list them.

    From the real December 2023 file: practices of ``QHM`` open by then, with the geography
    of that time (national grouping ``Y63``, field 4 NHS England's local office ``Q74``,
    as the practices closed in 2019 carry them in the real file) and the CCG of the day in
    fields 15 and 24 (Tees Valley's and County Durham's predecessors by postcode
    district); closures and commissioner changes after the cut-off undone. The four ``42D``
    (North Yorkshire) practices ODS files under QHM are left out: no 2019 North East CCG
    held them. Plus the real records of practices that closed under the region's CCGs
    before the cut-off, unchanged (``Q45``/``Q74`` in field 4 already).
    """
    rows = []
    for row in records(national("epraccur.csv")):
        if row[3] == REGION and row[14] != "42D" and row[10] <= CUTOFF:
            row = list(row)
            row[2], row[3] = "Y63", "Q74"
            ccg = _ccg_2019(row[14], row[9])
            row[14] = row[23] = ccg
            if row[11] > CUTOFF:
                row[11] = row[16] = ""
                row[12] = "A"
            if row[15] > CUTOFF:
                row[15] = "20130401"
            rows.append(row)
        elif row[3] != REGION and row[14] in NE_CCGS and row[11] and row[11] <= CUTOFF:
            rows.append(row)
    return ods_bytes(sorted(rows))


# -- other kinds of files ------------------------------------------------------------------
MAP_HEADER = (
    "PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,PRACTICE_POSTCODE,PCN_CODE,"
    "PCN_NAME,SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_NAME,ONS_SUB_ICB_LOCATION_CODE,"
    "ICB_CODE,ICB_NAME,ONS_ICB_CODE,COMM_REGION_CODE,COMM_REGION_NAME,ONS_COMM_REGION_CODE"
)


@cache
def practice_map() -> bytes:
    """A practice *list*, not the register: the layout of NHS Digital's
    ``gp-reg-pat-prac-map.csv`` (Patients Registered at a GP Practice), one row per
    active GP practice of the December 2023 file with its real code, name, postcode,
    sub-ICB and ICB; the PCN, name and ONS columns, which the real file fills, are left
    empty here (nothing reads them)."""
    lines = [MAP_HEADER]
    for row in records(national("epraccur.csv")):
        if row[12] == "A" and row[25] == "4" and row[3].startswith("Q") and row[3] != "Q99":
            fields = ["GP_PRAC_PAT_LIST", "2023-12-01", row[0], row[1], row[9], "", ""]
            fields += [row[14], "", "", row[3], "", "", row[2], "", ""]
            lines.append(",".join(f'"{f}"' if "," in f else f for f in fields))
    return ("\n".join(lines) + "\n").encode("utf-8")


EPRACCUR_HEADER = [
    "Organisation Code",
    "Name",
    "National Grouping",
    "High Level Health Geography",
    "Address Line 1",
    "Address Line 2",
    "Address Line 3",
    "Address Line 4",
    "Address Line 5",
    "Postcode",
    "Open Date",
    "Close Date",
    "Status Code",
    "Organisation Sub-Type Code",
    "Commissioner",
    "Join Provider/Purchaser Date",
    "Left Provider/Purchaser Date",
    "Contact Telephone Number",
    "Null",
    "Null",
    "Null",
    "Amended Record Indicator",
    "Null",
    "Provider/Purchaser",
    "Null",
    "Prescribing Setting",
    "Null",
]


def with_header() -> bytes:
    """The practice file re-exported from a spreadsheet: the field names of the ODS
    specification (epraccur.pdf) as a first line."""
    return ods_bytes([EPRACCUR_HEADER]) + national("epraccur.csv")


def truncated_download() -> bytes:
    """The trust file cut off part-way through its last record."""
    data = national("etr.csv")
    last_line = data.rindex(b"\n", 0, len(data) - 1) + 1
    return data[: data.index(b'","', last_line + 60)] + b'"\n'


def appended_twice() -> bytes:
    """This month's practice file appended to last month's: every code twice."""
    return national("epraccur.csv") + national("epraccur.csv")


def dates_reformatted() -> bytes:
    """Saved from a spreadsheet that showed open dates as dd/mm/yyyy."""
    rows = records(national("epraccur.csv"))
    for row in rows:
        date = row[10]
        row[10] = f"{date[6:]}/{date[4:6]}/{date[:4]}"
    return ods_bytes(rows)


# NHS England local offices, by national grouping, as the trusts that closed before April
# 2020 carry them in the real 2020 file (RNL Q74, RQ6 Q75, RC1 Q79, R0C Q71, R1J Q86).
_LOCAL_OFFICE = {"Y63": "Q74", "Y62": "Q75", "Y61": "Q79", "Y56": "Q71", "Y58": "Q86"}


def pre_icb_trusts() -> bytes:
    """A trust file from before April 2020: the 2020 rows with each open English trust's
    field 4 as its grouping's local office (no evidence for the South East's, Y59: left)."""
    rows = records((VINTAGES / "etr_2020.csv").read_bytes())
    for row in rows:
        if not row[11] and row[2] in _LOCAL_OFFICE:
            row[3] = _LOCAL_OFFICE[row[2]]
    return ods_bytes([row[:24] for row in rows])


def drop_share_of_region_practices(share: float) -> bytes:
    """The national practice file with ``share`` of the register's North East
    organisations missing (all of them GP practices, every n-th one)."""
    rows = records(national("epraccur.csv"))
    region = [i for i, row in enumerate(rows) if row[3] == REGION]
    n = round(share * NE_REGISTER)
    step = len(region) / n
    gone = {region[int(k * step)] for k in range(n)}
    return ods_bytes([row for i, row in enumerate(rows) if i not in gone])


def trusts_as_practices() -> bytes:
    return national("etr.csv")


def practitioners_as_practices() -> bytes:
    """A GP *practitioner* file under the practice file's name: the layout of ODS's
    ``egpcur.csv`` (27 fields, field 1 an 8-character practitioner code ``G`` + 7 digits,
    field 15 the practice), here with synthetic practitioner codes and names over the real
    practices' rows, one practitioner each."""
    rows = records(national("epraccur.csv"))
    for n, row in enumerate(rows):
        row[14] = row[0]
        row[0] = f"G{8100000 + n:07d}"
        row[1] = f"PRACTITIONER {n + 1:05d}"
    return ods_bytes(rows)


def zip_saved_as_csv() -> bytes:
    """ODS publishes the practice file zipped (``epraccur.zip``); the zip itself saved under
    the CSV's name."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("epraccur.csv", national("epraccur.csv"))
    return out.getvalue()


@dataclass(frozen=True)
class RegisterCase:
    """``files``: what the ODS folder holds (name -> bytes builder); the sample's local
    register is beside it. ``in_place``: the register already loaded (``national``: the
    December 2023 files; None: an empty warehouse)."""

    name: str
    files: dict[str, Callable[[], bytes]]
    status: str
    rule: str | None = None
    refused_file: str | None = None
    reason_has: tuple[str, ...] = ()
    in_place: str | None = "national"
    confirm: bool = False
    layouts: dict[str, str] = field(default_factory=dict)


def _national_with(**replacements: Callable[[], bytes]) -> dict[str, Callable[[], bytes]]:
    files: dict[str, Callable[[], bytes]] = {
        "etr.csv": lambda: national("etr.csv"),
        "epraccur.csv": lambda: national("epraccur.csv"),
    }
    files.update({name.replace("__", "."): build for name, build in replacements.items()})
    return files


BAD_CASES = [
    RegisterCase(
        "etr_2020_24_fields_older_than_register",
        _national_with(etr__csv=etr_2020_24_fields),
        "refused",
        "older_than_register",
        "etr.csv",
        (
            "its latest date is 2020-10-01, but the trust register in place (etr.csv, loaded ",
            ") runs to 2021-09-30: an older extract would undo later openings, closures and "
            "mergers; if the change is meant, run with --confirm-register",
        ),
    ),
    RegisterCase(
        "etr_pre_icb_trust_file",
        _national_with(etr__csv=pre_icb_trusts),
        "refused",
        "pre_icb_trust_file",
        "etr.csv",
        (
            "field 4 of 19 of its 20 open English trusts holds an NHS England area code "
            "(Q74, Q75, Q86 and 1 more), not an ICB code: a trust file from before April 2020, "
            "whose trusts cannot be placed in ICBs",
        ),
    ),
    RegisterCase(
        "epraccur_ccg_era_older_than_register",
        _national_with(epraccur__csv=ccg_era_practices),
        "refused",
        "older_than_register",
        "epraccur.csv",
        (
            "its latest date is 2019-01-31, but the gp practice register in place "
            "(epraccur.csv, loaded ",
            ") runs to 2023-12-04",
        ),
    ),
    RegisterCase(
        "epraccur_practice_map_is_a_practice_list",
        {**_national_with(), "epraccur_practice_map.csv": practice_map},
        "refused",
        "wrong_field_count",
        "epraccur_practice_map.csv",
        (
            "16 fields a line, where an ODS GP practice file has 27; its first line is a "
            "header (PUBLICATION, EXTRACT_DATE, PRACTICE_CODE, PRACTICE_NAME, "
            "PRACTICE_POSTCODE, PCN_CODE and 10 more): this is another kind of file under "
            "the name of ODS's epraccur.csv",
        ),
    ),
    RegisterCase(
        "epraccur_with_a_header_row",
        _national_with(epraccur__csv=with_header),
        "refused",
        "header_row",
        "epraccur.csv",
        (
            "line 1 is a header (Organisation Code, Name, National Grouping, High Level "
            "Health Geography and 23 more): ODS publishes epraccur.csv without one",
        ),
    ),
    RegisterCase(
        "epraccur_empty_file",
        _national_with(epraccur__csv=lambda: b""),
        "refused",
        "empty_file",
        "epraccur.csv",
        ("the file is empty",),
    ),
    RegisterCase(
        "epraccur_drops_30_percent_of_the_region",
        _national_with(epraccur__csv=lambda: drop_share_of_region_practices(0.3)),
        "refused",
        "register_change_too_large",
        "epraccur.csv",
        (
            "the new register drops 210 of the 700 organisations in place (210 gp practice) "
            "and moves 0 to another ICB, 30.0% of the register; dropped: A81001, ",
            "more than max_register_change_share (20%); the previous register stays in "
            "place; if the change is meant, run with --confirm-register",
        ),
    ),
    RegisterCase(
        "epraccur_trusts_is_a_trust_file",
        {**_national_with(), "epraccur_trusts.csv": trusts_as_practices},
        "refused",
        "wrong_record_type",
        "epraccur_trusts.csv",
        (
            "its codes are NHS trust codes (R0A, R0B, R0D and 215 more), not GP practice "
            "codes: this is ODS's etr.csv under the name of epraccur.csv",
        ),
    ),
    RegisterCase(
        "epraccur_is_a_gp_practitioner_file",
        _national_with(epraccur__csv=practitioners_as_practices),
        "refused",
        "invalid_codes",
        "epraccur.csv",
        (
            "15971 of 15971 lines have a code that is not an ODS GP practice code (line 1: "
            "'G8100000', line 2: 'G8100001', line 3: 'G8100002' and 15968 more)",
        ),
    ),
    RegisterCase(
        "epraccur_zip_saved_as_csv",
        _national_with(epraccur__csv=zip_saved_as_csv),
        "refused",
        "binary_content",
        "epraccur.csv",
        ("the file holds binary data, not CSV text",),
    ),
    RegisterCase(
        "etr_truncated_download",
        _national_with(etr__csv=truncated_download),
        "refused",
        "ragged_rows",
        "etr.csv",
        ("1 line(s) do not have the file's 27 fields (line 218: ",),
    ),
    RegisterCase(
        "epraccur_two_extracts_joined",
        _national_with(epraccur__csv=appended_twice),
        "refused",
        "duplicate_codes",
        "epraccur.csv",
        ("15971 code(s) appear more than once (A81001 on lines 1 and 15972",),
    ),
    RegisterCase(
        "epraccur_dates_reformatted",
        _national_with(epraccur__csv=dates_reformatted),
        "refused",
        "invalid_dates",
        "epraccur.csv",
        ("15971 line(s) have an open or close date that is not YYYYMMDD (line 1: '01/04/1974'",),
    ),
]

GOOD_CASES = [
    RegisterCase(
        "national_27_field_files",
        _national_with(),
        "loaded",
        in_place=None,
        layouts={"etr.csv": "register_etr_27", "epraccur.csv": "register_epraccur_27"},
    ),
    RegisterCase(
        "etr_24_fields_of_the_same_vintage",
        _national_with(etr__csv=lambda: cut_to_24_fields(national("etr.csv"))),
        "loaded",
        layouts={"etr.csv": "register_etr_24", "epraccur.csv": "register_epraccur_27"},
    ),
    RegisterCase(
        "etr_2020_24_fields_as_the_first_register",
        _national_with(etr__csv=etr_2020_24_fields),
        "loaded",
        in_place=None,
        layouts={"etr.csv": "register_etr_24"},
    ),
    RegisterCase(
        "epraccur_ccg_era_as_the_first_register",
        _national_with(epraccur__csv=ccg_era_practices),
        "loaded",
        in_place=None,
        layouts={"epraccur.csv": "register_epraccur_27_ccg"},
    ),
    RegisterCase(
        "epraccur_drops_30_percent_confirmed",
        _national_with(epraccur__csv=lambda: drop_share_of_region_practices(0.3)),
        "loaded",
        confirm=True,
        reason_has=("register change confirmed: drops 210 of the 700 organisations in place",),
    ),
]
