"""The change register's bad-input corpus: register files named after what is wrong with them.

Every row case carries one good row (row 2) beside the bad one (row 3), so the test can show
that the problem names the bad row alone and that the good row is read. Each says the rule
its one problem line must hold (``problem``), as docs/programme-impact.md section 1 states it.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER = (
    "change_id,change_date,programme_code,measure_code,scope,scope_code,kind,rebase,description\n"
)
GOOD = (
    "CHG-001,2024-04-01,managing_deterioration,NEWS2_ESCALATED,region,,intervention,,"
    "Regional escalation bundle launched\n"
)


@dataclass(frozen=True)
class RegisterCase:
    name: str
    body: str
    problem: str  # what the one problem line must hold after "<file> row <n>: "
    row: int = 3


def _row(name: str, bad_row: str, problem: str) -> RegisterCase:
    return RegisterCase(f"change_register_{name}.csv", HEADER + GOOD + bad_row + "\n", problem)


ROW_CASES = [
    _row(
        "kind_misspelt",
        "CHG-002,2024-05-01,,,region,,interv,,Huddles",
        "kind 'interv' is not one of intervention, definition_change, data_collection_change",
    ),
    _row(
        "change_id_repeated",
        "CHG-001,2024-05-01,,,region,,intervention,,Huddles",
        "change_id 'CHG-001' is already used on row 2",
    ),
    _row(
        "change_id_with_spaces",
        "CHG 002,2024-05-01,,,region,,intervention,,Huddles",
        "change_id 'CHG 002' must be 1 to 32 letters, digits",
    ),
    _row("change_id_blank", ",2024-05-01,,,region,,intervention,,Huddles", "change_id is required"),
    _row(
        "change_date_day_first",
        "CHG-002,01/05/2024,,,region,,intervention,,Huddles",
        "change_date '01/05/2024' is not a date as YYYY-MM-DD",
    ),
    _row(
        "change_date_impossible",
        "CHG-002,2024-02-30,,,region,,intervention,,Huddles",
        "change_date '2024-02-30' is not a date",
    ),
    _row(
        "change_date_blank", "CHG-002,,,,region,,intervention,,Huddles", "change_date is required"
    ),
    _row(
        "programme_unknown",
        "CHG-002,2024-05-01,deterioration,,region,,intervention,,Huddles",
        "programme_code 'deterioration' is not a programme in programmes.csv",
    ),
    _row(
        "measure_unknown",
        "CHG-002,2024-05-01,,NEWS2,region,,intervention,,Huddles",
        "measure_code 'NEWS2' is not in the measure catalogue",
    ),
    _row(
        "measure_outside_its_programme",
        "CHG-002,2024-05-01,local_priority,NEWS2_ON_TIME,region,,intervention,,Huddles",
        "measure_code 'NEWS2_ON_TIME' is in programme 'managing_deterioration', "
        "not 'local_priority'",
    ),
    _row(
        "scope_unknown",
        "CHG-002,2024-05-01,,,trust,RR7,intervention,,Huddles",
        "scope 'trust' is not one of region, icb, sector, organisation",
    ),
    _row(
        "scope_code_on_region",
        "CHG-002,2024-05-01,,,region,QHM,intervention,,Huddles",
        "scope_code 'QHM' must be blank for scope region",
    ),
    _row(
        "scope_code_missing",
        "CHG-002,2024-05-01,,,icb,,intervention,,Huddles",
        "scope_code is required for scope icb",
    ),
    _row(
        "icb_outside_the_region",
        "CHG-002,2024-05-01,,,icb,QYG,intervention,,Huddles",
        "scope_code 'QYG' is not one of the region's ICBs (QHM)",
    ),
    _row(
        "sector_unknown",
        "CHG-002,2024-05-01,,,sector,acute,intervention,,Huddles",
        "scope_code 'acute' is not a sector in sectors.csv",
    ),
    _row(
        "organisation_code_malformed",
        "CHG-002,2024-05-01,,,organisation,rr7 trust,intervention,,Huddles",
        "scope_code 'rr7 trust' is not an organisation code",
    ),
    _row(
        "rebase_yes",
        "CHG-002,2024-05-01,,,region,,intervention,yes,Huddles",
        "rebase 'yes' is not true, false or blank",
    ),
    _row(
        "description_blank",
        "CHG-002,2024-05-01,,,region,,intervention,,",
        "description is required",
    ),
    _row(
        "description_too_long",
        "CHG-002,2024-05-01,,,region,,intervention,," + "x" * 201,
        "description is 201 characters; at most 200 allowed",
    ),
    _row(
        "description_with_unquoted_comma",
        "CHG-002,2024-05-01,,,region,,intervention,,Huddles, daily",
        "10 fields, expected 9 (quote a description that holds a comma)",
    ),
]
FILE_CASES = [
    RegisterCase(
        "change_register_header_renamed.csv",
        HEADER.replace("kind", "type") + GOOD,
        "the header must be change_id,change_date,programme_code,measure_code,scope,"
        "scope_code,kind,rebase,description (missing kind; unknown type)",
        row=1,
    ),
    RegisterCase(
        "change_register_columns_reordered.csv",
        "change_date,change_id,programme_code,measure_code,scope,scope_code,kind,rebase,"
        "description\n",
        "(in that order)",
        row=1,
    ),
]
#: Odd but good: each must read with no problem.
GOOD_CASES = [
    RegisterCase("change_register_header_only.csv", HEADER, ""),
    RegisterCase(
        "change_register_quoted_description_and_spaces.csv",
        HEADER + GOOD + " CHG-002 , 2024-05-01 ,,, organisation , RR7 , definition_change , FALSE ,"
        '"Huddles, daily"\n\n',
        "",
    ),
]
CORPUS = ROW_CASES + FILE_CASES
