"""Deterministic safety-culture survey sample for North East and North Cumbria (ICB QHM).

Writes, under ``data_samples/surveys/`` (or ``--out``):
  landing/<wave>/wave.yml        the wave contract: id, name, instrument, open/close dates,
                                 which export columns give organisation and staff group
  landing/<wave>/<ORG>_*.csv|xlsx  one export per organisation, in every supported layout:
                                 Qualtrics (3 header rows; legacy 2-row with BOM),
                                 SurveyMonkey (CSV and XLSX), Microsoft Forms (CSV and
                                 XLSX), and an ICB-collated care-home export whose
                                 organisation comes from a column
  SAMPLE_MANIFEST.json           what the pipeline must find: files, responses read,
                                 loaded and quarantined (by rule), fct_culture_survey rows

Two waves (spring 2024 and spring 2025), five trusts, an independent hospital and four
care homes. Small groups on purpose: the independent hospital has 8 respondents and care
home VNE01 has 9 (suppressed in the public tier), VNE04 has 2 (suppressed internally too).
Planted problems: a Qualtrics preview, a response after the wave closed, an answer label
not on the scale and a care home that is not in the register.

Every export also carries names, e-mail addresses, IP addresses and free-text comments,
which ingest must drop. The instrument is ``pipelines/surveys/instruments/
nhs_safety_culture_v1.yml``. Same seed, same bytes. Run:
``.venv/bin/python data_samples/surveys/generate_surveys.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from survey_exports import (
    ExportSpec,
    Respondent,
    msforms,
    qualtrics,
    qualtrics_legacy,
    surveymonkey,
)

from pipelines.surveys.instrument import Instrument, load_instruments
from pipelines.surveys.normalise import label_key

HERE = Path(__file__).resolve().parent
SEED = 20240304
INSTRUMENT = "nhs_safety_culture_v1"
ORG_QUESTION = "Which organisation do you work for?"
CARE_HOME_QUESTION = "Which care home do you work in?"
STAFF_QUESTION = "Which staff group do you belong to?"
STAFF_GROUPS = [
    "Nursing and midwifery",
    "Medical and dental",
    "Allied health professionals",
    "Admin and clerical",
    "Estates and ancillary",
]
LABELS = {
    1: "Strongly disagree",
    2: "Disagree",
    3: "Neither agree nor disagree",
    4: "Agree",
    5: "Strongly agree",
}
FIRST = ["Alex", "Sam", "Priya", "Tom", "Aisha", "Chris", "Megan", "Dev", "Joanne", "Kwame"]
LAST = ["Smith", "Patel", "Robson", "Nguyen", "Hall", "Okafor", "Charlton", "Milburn", "Shaw"]
COMMENTS = [
    "Handovers on the ward are rushed at night.",
    "My manager always listens when I raise something.",
    "We need more staff on weekends, it does not feel safe.",
    "Good team but I do not hear what happened after I report an incident.",
    "",
]


@dataclass(frozen=True)
class WaveSpec:
    wave_id: str
    name: str
    opens_on: date
    closes_on: date
    shift: float  # culture change since the first wave, on the 1-5 scale


WAVES = [
    WaveSpec(
        "2024-spring",
        "NENC safety culture survey, spring 2024",
        date(2024, 3, 4),
        date(2024, 3, 29),
        shift=0.0,
    ),
    WaveSpec(
        "2025-spring",
        "NENC safety culture survey, spring 2025",
        date(2025, 3, 3),
        date(2025, 3, 28),
        shift=0.2,
    ),
]


@dataclass(frozen=True)
class ExportPlan:
    """One organisation's export in one wave."""

    file_name: str
    tool: str  # qualtrics | qualtrics_legacy | surveymonkey_csv | surveymonkey_xlsx | msforms_*
    groups: dict[str, int]  # organisation answer -> respondents (one entry unless collated)
    organisation_question: str | None = None
    staff_group_question: str | None = STAFF_QUESTION
    text_overrides: dict[str, str] | None = None


def plans(wave: WaveSpec) -> list[ExportPlan]:
    first = wave.wave_id == "2024-spring"
    care_homes = {"Care home VNE01": 9, "Care home VNE02": 14, "VNE03": 6, "Care home VNE04": 2}
    if not first:
        care_homes = {**care_homes, "Care home VNE02": 12, "Care Home VNE99": 1}
    return [
        ExportPlan(
            "RTD_safety_culture_qualtrics.csv",
            "qualtrics",
            {"RTD": 42 if first else 45},
            text_overrides=None if first else {"TW1": "Staff in my team support each other."},
        ),
        ExportPlan("RTF_safety_culture_surveymonkey.xlsx", "surveymonkey_xlsx", {"RTF": 31}),
        ExportPlan(
            "RR7_culture_survey.csv",
            "qualtrics_legacy" if first else "qualtrics",
            {"RR7": 24 if first else 27},
        ),
        ExportPlan("RX3_msforms_export.csv", "msforms_csv", {"RX3": 22 if first else 25}),
        ExportPlan("RX6_staff_survey.csv", "surveymonkey_csv", {"RX6": 18 if first else 16}),
        ExportPlan(
            "NNE01_safety_culture.xlsx", "msforms_xlsx", {"NNE01": 8}, staff_group_question=None
        ),
        ExportPlan(
            "QHM_care_homes_safety_culture.xlsx",
            "msforms_xlsx",
            care_homes,
            organisation_question=CARE_HOME_QUESTION,
            staff_group_question=None,
        ),
    ]


def wave_contract(wave: WaveSpec) -> str:
    return f"""\
# Safety-culture survey wave: every export in this folder belongs to it.
id: {wave.wave_id}
name: {wave.name}
instrument: {INSTRUMENT}
opens_on: {wave.opens_on.isoformat()}
closes_on: {wave.closes_on.isoformat()}
# Columns (by header text, or a Qualtrics export id) that say which organisation and staff
# group a respondent is in. Without an organisation column, the organisation is the ODS
# code the file name starts with. Quote texts: YAML reads a bare '?' specially.
organisation_column:
  - "{ORG_QUESTION}"
  - "{CARE_HOME_QUESTION}"
staff_group_column: "{STAFF_QUESTION}"
# Staff group for whole exports that do not ask it.
files:
  - match: "QHM_care_homes*"
    staff_group: Care staff
  - match: "NNE01_*"
    staff_group: All staff
"""


def _response_id(tool: str, rng: random.Random, n: int) -> str:
    if tool.startswith("qualtrics"):
        return "R_" + "".join(rng.choices(string.ascii_letters + string.digits, k=15))
    if tool.startswith("surveymonkey"):
        return str(114_000_000_000 + rng.randrange(1_000_000_000))
    return str(n + 1)  # Microsoft Forms numbers responses 1, 2, 3, ...


def _answers(
    instrument: Instrument, level: dict[str, float], rng: random.Random, variant: int
) -> dict[str, str]:
    answers = {}
    for q in instrument.questions:
        roll = rng.random()
        if roll < 0.03:
            answers[q.question_id] = ""
            continue
        if roll < 0.08:
            answers[q.question_id] = "Don't know" if roll < 0.06 else "Not applicable"
            continue
        opinion = min(5, max(1, round(level[q.domain] + rng.gauss(0, 0.75))))
        score = 6 - opinion if q.reverse else opinion
        label = LABELS[score]
        if variant == 1 and score == 4:
            label = "agree"  # lower-case from a hand-edited export
        elif variant == 2 and score == 5:
            label = " Strongly  Agree"  # odd spacing and case
        elif variant == 3 and score == 3:
            label = "Neither agree or disagree"  # another tool's wording
        answers[q.question_id] = label
    return answers


def _respondents(
    plan: ExportPlan,
    wave: WaveSpec,
    instrument: Instrument,
    culture: dict[str, dict[str, float]],
    rng: random.Random,
) -> list[Respondent]:
    people = []
    minutes = int((wave.closes_on - wave.opens_on).days * 24 * 60) + 24 * 60 - 1
    variant = {"surveymonkey_csv": 1, "msforms_xlsx": 2, "qualtrics_legacy": 3}.get(plan.tool, 0)
    for organisation, count in plan.groups.items():
        base = culture.get(organisation.split()[-1].upper(), culture["default"])
        for _ in range(count):
            level = {d: v + wave.shift + rng.gauss(0, 0.45) for d, v in base.items()}
            first, last = rng.choice(FIRST), rng.choice(LAST)
            people.append(
                Respondent(
                    response_id=_response_id(plan.tool, rng, len(people)),
                    submitted_at=datetime.combine(wave.opens_on, datetime.min.time())
                    + timedelta(minutes=rng.randrange(minutes), seconds=rng.randrange(60)),
                    answers=_answers(instrument, level, rng, variant),
                    name=f"{first} {last}",
                    email=f"{first.lower()}.{last.lower()}{rng.randrange(100)}@nhs.net",
                    ip_address=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                    comment=rng.choice(COMMENTS),
                    organisation=organisation if plan.organisation_question else None,
                    staff_group=rng.choice(STAFF_GROUPS) if plan.staff_group_question else None,
                )
            )
    people.sort(key=lambda p: p.submitted_at)
    return people


def _plant_problems(plan: ExportPlan, wave: WaveSpec, people: list[Respondent]) -> dict[str, str]:
    """Deliberate bad responses the pipeline must quarantine: response id -> rule."""
    bad: dict[str, str] = {}
    if wave.wave_id != "2024-spring":
        for person in people:
            if person.organisation and "VNE99" in person.organisation.upper():
                bad[person.response_id] = "unknown_organisation"  # not in the register
        return bad
    if plan.tool == "qualtrics":
        people[0] = replace(people[0], status="Survey Preview")
        bad[people[0].response_id] = "test_response"
        late = datetime.combine(wave.closes_on, datetime.min.time()) + timedelta(days=2, hours=9)
        people.append(replace(people[1], response_id="R_LateAfterClose1", submitted_at=late))
        bad["R_LateAfterClose1"] = "outside_wave_window"
    if plan.tool == "surveymonkey_xlsx":
        people[3] = replace(people[3], answers={**people[3].answers, "CM2": "Somewhat agree"})
        bad[people[3].response_id] = "unknown_answer_label"
    return bad


def _column_order(instrument: Instrument, rng: random.Random) -> list[str]:
    """Domains in a random order, statements shuffled within each: like a real survey whose
    matrices were laid out differently, so nothing can rely on the instrument's order."""
    domains = list(instrument.domains)
    rng.shuffle(domains)
    order = []
    for domain in domains:
        ids = [q.question_id for q in instrument.questions if q.domain == domain]
        rng.shuffle(ids)
        order += ids
    return order


def _facts(
    instrument: Instrument, plan: ExportPlan, people: list[Respondent], bad: dict[str, str]
) -> set[tuple[str, str]]:
    """(organisation, domain) pairs with at least one scored answer among loaded responses."""
    domain_of = {q.question_id: q.domain for q in instrument.questions}
    [single] = plan.groups if len(plan.groups) == 1 else [None]
    facts = set()
    for person in people:
        if person.response_id in bad:
            continue
        org = single or (person.organisation or "").split()[-1].upper()
        for question_id, label in person.answers.items():
            if label_key(label) in instrument.scores:
                facts.add((org, domain_of[question_id]))
    return facts


WRITERS: dict[str, Callable[..., bytes]] = {
    "qualtrics": qualtrics,
    "qualtrics_legacy": qualtrics_legacy,
    "surveymonkey_csv": lambda i, r, s: surveymonkey(i, r, s, xlsx=False),
    "surveymonkey_xlsx": lambda i, r, s: surveymonkey(i, r, s, xlsx=True),
    "msforms_csv": lambda i, r, s: msforms(i, r, s, xlsx=False),
    "msforms_xlsx": lambda i, r, s: msforms(i, r, s, xlsx=True),
}


def generate(out: Path) -> dict:
    """Write the sample under ``out``; return the manifest (also written)."""
    rng = random.Random(SEED)
    instrument = load_instruments()[INSTRUMENT]
    domains = list(instrument.domains)
    organisations = ["RTD", "RTF", "RR7", "RX3", "RX6", "NNE01", "VNE01", "VNE02", "VNE03"]
    culture = {
        org: {d: 3.3 + rng.gauss(0, 0.35) for d in domains} for org in [*organisations, "default"]
    }
    landing = out / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    manifest: dict = {"waves": [], "files": 0, "responses_read": 0, "responses_quarantined": 0}
    rules: Counter = Counter()
    fact_rows = 0
    for wave in WAVES:
        folder = landing / wave.wave_id
        folder.mkdir(parents=True)
        (folder / "wave.yml").write_text(wave_contract(wave), encoding="utf-8")
        manifest["waves"].append(wave.wave_id)
        for plan in plans(wave):
            people = _respondents(plan, wave, instrument, culture, rng)
            bad = _plant_problems(plan, wave, people)
            spec = ExportSpec(
                order=_column_order(instrument, rng),
                organisation_question=plan.organisation_question,
                staff_group_question=plan.staff_group_question,
                text_overrides=plan.text_overrides,
            )
            (folder / plan.file_name).write_bytes(WRITERS[plan.tool](instrument, people, spec))
            manifest["files"] += 1
            manifest["responses_read"] += len(people)
            manifest["responses_quarantined"] += len(bad)
            rules.update(bad.values())
            fact_rows += len(_facts(instrument, plan, people, bad))
    manifest["responses_loaded"] = manifest["responses_read"] - manifest["responses_quarantined"]
    manifest["quarantined_by_rule"] = dict(sorted(rules.items()))
    manifest["fct_culture_survey_rows"] = fact_rows
    (out / "SAMPLE_MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    manifest = generate(args.out)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
