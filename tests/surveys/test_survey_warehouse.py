"""Survey exports through ingest and dbt into the marts and the public tier.

One designed scenario, built once: the same four answers exported by Qualtrics,
SurveyMonkey (XLSX), Microsoft Forms and legacy Qualtrics for four acute trusts; a mental
health trust with 12 respondents; a care home with 9 (below the public threshold); a
second wave; and a respondent whose name, e-mail, IP address and comment are planted in
every export.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from survey_support import (
    dbt_build,
    every_cell,
    instrument,
    question_ids,
    spec,
    survey_exports,
    working_file,
    write_wave,
)

from pipelines.publish.disclosure import OrganisationFacts, scan_public_tier
from pipelines.settings import load_settings
from pipelines.surveys.ingest import ingest_surveys
from pipelines.surveys.reconcile import survey_reconciliation_problems

Respondent = survey_exports.Respondent
WAVE_1, WAVE_2 = "2024-test", "2025-test"
PLANTED = {
    "name": "Zebedee Quartermain",
    "email": "zebedee.quartermain@example.net",
    "ip_address": "203.0.113.77",
    "comment": "PLANTED-COMMENT: the night manager on ward 9 shouts at juniors",
}
NEEDLES = ["zebedee", "Quartermain", "example.net", "203.0.113.77", "PLANTED-COMMENT", "ward 9"]

# The hand-computed example (teamwork; TW3 is reverse-scored, so disagreeing is positive).
#        TW1 (score)             TW2 (score)           TW3 (score after reversing)
# R1  Strongly agree (5)      Agree (4)              Disagree (2 -> 4)
# R2  Agree (4)               Don't know (missing)   Strongly agree (5 -> 1)
# R3  Neither (3)             Disagree (2)           Strongly disagree (1 -> 5)
# R4  Strongly disagree (1)   Not applicable (miss.) skipped (missing)
# Scored answers 3 + 2 + 3 + 1 = 9, positive (4 or 5) 3 + 1 + 1 + 0 = 5: 55.56 % positive.
# Respondent scores on 0-100 ((score - 1) x 25, averaged): R1 (100 + 75 + 75) / 3 = 83.33,
# R2 (75 + 0) / 2 = 37.5, R3 (50 + 25 + 100) / 3 = 58.33, R4 0: mean 44.79.
TEAMWORK = [
    {"TW1": "Strongly agree", "TW2": "Agree", "TW3": "Disagree"},
    {"TW1": "Agree", "TW2": "Don't know", "TW3": "Strongly agree"},
    {"TW1": "Neither agree nor disagree", "TW2": "Disagree", "TW3": "Strongly disagree"},
    {"TW1": "Strongly disagree", "TW2": "Not applicable", "TW3": ""},
]
HAND_PCT_POSITIVE = 5 / 9 * 100
HAND_MEAN_SCORE = (250 / 3 + 37.5 + 175 / 3 + 0) / 4
OTHER_LABELS = ["Agree", "Strongly agree", "Disagree", "Neither agree nor disagree", "Agree"]


def hand_answers() -> list[dict[str, str]]:
    rest = [q for q in question_ids() if not q.startswith("TW")]
    return [
        {**tw, **{q: OTHER_LABELS[(i + j) % len(OTHER_LABELS)] for j, q in enumerate(rest)}}
        for i, tw in enumerate(TEAMWORK)
    ]


def restyle(answers: dict[str, str], style: str) -> dict[str, str]:
    """How each tool (or the person who set it up) tends to spell the same label."""
    if style == "lower":
        return {q: a.lower() for q, a in answers.items()}
    if style == "shouty":  # upper case, doubled spaces, a curly apostrophe
        shout = {q: "  " + a.upper().replace(" ", "  ") + " " for q, a in answers.items()}
        return {q: a.replace("'", "\u2019") for q, a in shout.items()}
    if style == "legacy":
        return {q: a.replace("nor", "or") for q, a in answers.items()}
    return answers


def respondents(ids: list[str], style: str, **common) -> list[Respondent]:
    people = []
    for i, (rid, answers) in enumerate(zip(ids, hand_answers(), strict=True)):
        extra = PLANTED if i == 0 else {"name": "Ann Other", "email": "ann@nhs.net"}
        people.append(
            Respondent(
                response_id=rid,
                submitted_at=datetime(2024, 3, 11 + i, 14, 5, 7),
                answers=restyle(answers, style),
                staff_group="Nursing and midwifery",
                **{**extra, **common},
            )
        )
    return people


def simple(n: int, first_id: int, when: datetime, answers: dict, **common) -> list[Respondent]:
    return [
        Respondent(str(first_id + i), when, dict(answers), **{**PLANTED, **common})
        for i in range(n)
    ]


def build_landing(landing: Path) -> None:
    inst = instrument()
    qids = question_ids()
    one = write_wave(landing / "wave_1", wave_id=WAVE_1)
    two = write_wave(
        landing / "wave_2", wave_id=WAVE_2, opens_on="2025-03-01", closes_on="2025-03-31"
    )
    shuffled = qids[::-1]
    (one / "RTD_qualtrics.csv").write_bytes(
        survey_exports.qualtrics(
            inst,
            respondents(["R_1aaa", "R_2bbb", "R_3ccc", "R_4ddd"], "plain"),
            survey_exports.ExportSpec(
                order=shuffled,
                staff_group_question="Which staff group do you belong to?",
                # reworded on this survey: found by its ImportId QID4_1 instead
                text_overrides={"TW1": "Colleagues in my team back each other up."},
            ),
        )
    )
    (one / "RTF_surveymonkey.xlsx").write_bytes(
        survey_exports.surveymonkey(
            inst,
            respondents([str(114200000001 + i) for i in range(4)], "lower"),
            spec(sorted(qids)),
            xlsx=True,
        )
    )
    (one / "RR7_msforms.csv").write_bytes(
        survey_exports.msforms(
            inst, respondents(["1", "2", "3", "4"], "shouty"), spec(qids[3:] + qids[:3]), xlsx=False
        )
    )
    (one / "R0B_qualtrics_legacy.csv").write_bytes(
        survey_exports.qualtrics_legacy(
            inst, respondents(["R_9www", "R_9xxx", "R_9yyy", "R_9zzz"], "legacy"), spec()
        )
    )
    agree = dict.fromkeys(qids, "Agree")
    (one / "RX3_mental_health.csv").write_bytes(
        survey_exports.surveymonkey(
            inst, simple(12, 5000, datetime(2024, 3, 20, 9, 0), agree), spec(), xlsx=False
        )
    )
    (one / "QHM_care_homes.xlsx").write_bytes(
        survey_exports.msforms(
            inst,
            simple(9, 1, datetime(2024, 3, 21, 9, 0), agree, organisation="Care home VNE01"),
            spec(organisation=True, staff_group=False),
            xlsx=True,
        )
    )
    better = {**agree, "TW3": "Disagree"}
    (two / "RTF_surveymonkey.xlsx").write_bytes(
        survey_exports.surveymonkey(
            inst, simple(4, 114300000001, datetime(2025, 3, 12, 10, 0), better), spec(), xlsx=True
        )
    )
    (two / "RTD_qualtrics.csv").write_bytes(
        survey_exports.qualtrics(inst, simple(2, 1, datetime(2025, 3, 12, 10, 0), agree), spec())
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("survey_warehouse")
    working_db = root / "working.duckdb"
    build_landing(root / "landing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETY_OBS_WORKING_DB", str(working_db))
        settings = load_settings()
        con = working_file(working_db)
        try:
            outcomes = ingest_surveys(con, settings, landing_dir=root / "landing")
            assert [o.status for o in outcomes] == ["loaded"] * len(outcomes)
            assert sum(o.rows_quarantined for o in outcomes) == 0
            assert survey_reconciliation_problems(con) == []
        finally:
            con.close()
        result = dbt_build(working_db, root / "dbt")
    assert result.returncode == 0, result.stdout[-4000:]
    return working_db


def rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_same_answers_in_every_export_format_give_the_same_scores(warehouse):
    facts = rows(
        warehouse,
        f"""
        select domain_code, org_code, respondents, pct_positive, mean_score
        from marts.fct_culture_survey
        where wave_id = '{WAVE_1}' and org_code in ('RTD', 'RTF', 'RR7', 'R0B')
        order by domain_code, org_code
        """,
    )
    assert len(facts) == 6 * 4
    by_domain: dict[str, set] = {}
    for domain, _, respondents_, pct, mean in facts:
        by_domain.setdefault(domain, set()).add((respondents_, round(pct, 9), round(mean, 9)))
    assert all(len(values) == 1 for values in by_domain.values()), by_domain


def test_scores_match_the_hand_computed_example(warehouse):
    [(respondents_, pct, mean, suppressed)] = rows(
        warehouse,
        f"""
        select respondents, pct_positive, mean_score, is_suppressed
        from marts.fct_culture_survey
        where wave_id = '{WAVE_1}' and org_code = 'RTD' and domain_code = 'teamwork'
        """,
    )
    assert respondents_ == 4 and not suppressed
    assert pct == pytest.approx(HAND_PCT_POSITIVE) == pytest.approx(55.5556, abs=1e-4)
    assert mean == pytest.approx(HAND_MEAN_SCORE) == pytest.approx(44.7917, abs=1e-4)


def test_change_from_the_previous_wave_and_internal_suppression(warehouse):
    got = dict(
        (org, rest)
        for org, *rest in rows(
            warehouse,
            f"""
            select org_code, respondents, pct_positive, mean_score, previous_wave_id,
                   pct_positive_change, mean_score_change, is_suppressed
            from marts.fct_culture_survey
            where wave_id = '{WAVE_2}' and domain_code = 'teamwork'
            """,
        )
    )
    # RTF: every teamwork answer scores 4 -> 100 % positive, mean 75.
    respondents_, pct, mean, previous, pct_change, mean_change, suppressed = got["RTF"]
    assert (respondents_, pct, mean, previous, suppressed) == (4, 100.0, 75.0, WAVE_1, False)
    assert pct_change == pytest.approx(100 - HAND_PCT_POSITIVE)
    assert mean_change == pytest.approx(75 - HAND_MEAN_SCORE)
    # RTD: two respondents, below the internal threshold of 3: count kept, figures null.
    assert got["RTD"] == [2, None, None, WAVE_1, None, None, True]


def test_rollups_recompute_from_respondents(warehouse):
    [(respondents_, pct)] = rows(
        warehouse,
        f"""
        select respondents, pct_positive from marts.fct_culture_survey_by_sector
        where wave_id = '{WAVE_1}' and sector_code = 'acute_trust' and domain_code = 'teamwork'
        """,
    )
    assert respondents_ == 16
    assert pct == pytest.approx(HAND_PCT_POSITIVE)  # 4 x (5 of 9), not a mean of means
    [(icb_respondents, icb_pct)] = rows(
        warehouse,
        f"""
        select respondents, pct_positive from marts.fct_culture_survey_by_icb
        where wave_id = '{WAVE_1}' and icb_code = 'QHM' and domain_code = 'teamwork'
        """,
    )
    # Mental health and care homes answer "Agree" to all three: TW1, TW2 positive, TW3
    # (reversed) not. Positive answers: acute 4 x 5, others 21 x 2; scored 4 x 9 + 21 x 3.
    assert icb_respondents == 16 + 12 + 9
    assert icb_pct == pytest.approx((20 + 42) / (36 + 63) * 100)


def test_the_nine_respondent_care_home_is_suppressed_in_public_and_not_derivable(warehouse):
    public = {
        sector: rest
        for sector, *rest in rows(
            warehouse,
            f"""
            select sector_code, respondents, pct_positive, mean_score, is_suppressed,
                   suppression_reason
            from public.pub_culture_survey_by_sector
            where wave_id = '{WAVE_1}' and domain_code = 'teamwork'
            """,
        )
    }
    assert public["care_home"] == [None, None, None, True, "primary"]
    # One trust: the sector is that trust's own results.
    assert public["mental_health_trust"] == [None, None, None, True, "contributors"]
    # Otherwise the ICB total minus the acute trusts would be the care home and the mental
    # health trust together, and either would read the other's results.
    assert public["acute_trust"] == [None, None, None, True, "secondary"]
    [(icb_respondents, icb_suppressed)] = rows(
        warehouse,
        f"""
        select respondents, is_suppressed from public.pub_culture_survey_by_icb
        where wave_id = '{WAVE_1}' and domain_code = 'teamwork'
        """,
    )
    assert (icb_respondents, icb_suppressed) == (35, False)
    # The internal tier (threshold 3) still shows the care home to the collaborative.
    [(internal,)] = rows(
        warehouse,
        f"""select is_suppressed from marts.fct_culture_survey
            where org_code = 'VNE01' and wave_id = '{WAVE_1}' and domain_code = 'teamwork'""",
    )
    assert internal is False


def test_no_public_group_can_be_derived_from_a_published_total(warehouse):
    """For every ICB, wave and domain whose total is published, the suppressed sectors are
    none, or at least two holding at least 10 respondents and 3 organisations between them."""
    groups = rows(
        warehouse,
        """
        select p.icb_code, p.wave_id, p.domain_code,
               count(*) filter (where p.is_suppressed) as suppressed,
               coalesce(sum(f.respondents) filter (where p.is_suppressed), 0) as hidden,
               coalesce(sum(f.organisations) filter (where p.is_suppressed), 0) as orgs,
               bool_or(p.is_suppressed and p.respondents is not null) as leaked,
               bool_or(p.respondents = 0) as zero
        from public.pub_culture_survey_by_sector p
        join marts.fct_culture_survey_by_sector f
            using (icb_code, sector_code, wave_id, domain_code)
        join public.pub_culture_survey_by_icb t using (icb_code, wave_id, domain_code)
        where not t.is_suppressed
        group by all
        """,
    )
    assert groups, "the scenario publishes ICB totals"
    for icb, wave, domain, suppressed, hidden, orgs, leaked, zero in groups:
        assert not leaked and not zero, (icb, wave, domain)
        assert suppressed == 0 or (suppressed >= 2 and hidden >= 10 and orgs >= 3), (
            icb,
            wave,
            domain,
        )


def test_planted_personal_data_is_nowhere_in_the_working_file(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cells = every_cell(con)
        schemas = {table.split(".")[0].strip('"') for table, _ in cells}
    assert {"raw", "staging", "intermediate", "marts", "public"} <= schemas
    for table, text in cells:
        for needle in NEEDLES:
            assert needle.lower() not in text.lower(), f"{needle!r} found in {table}"
    data = warehouse.read_bytes().lower()
    for needle in NEEDLES:
        assert needle.lower().encode() not in data


def test_public_tables_pass_the_independent_disclosure_scan(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        problems = scan_public_tier(
            con,
            ["public.pub_culture_survey_by_sector", "public.pub_culture_survey_by_icb"],
            facts=OrganisationFacts(schema="marts"),
        )
    assert problems == []
