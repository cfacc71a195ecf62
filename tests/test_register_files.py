"""The organisation register is judged as a whole before it replaces the last one: each
file's layout and vintage recognised (24- and 27-field trust files; ICB-era and CCG-era
practice files, the latter placed in ICBs through their CCG codes), files that are not
what their name says refused naming the file and the rule, and a register that is older
than, or changes much more than, the one in place refused until confirmed. A refused
register leaves the one in place untouched, and every verdict is in ``raw.register_log``.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from register_inputs import (
    BAD_CASES,
    GOOD_CASES,
    NATIONAL,
    NE_LOCAL,
    NE_PRACTICES,
    NE_TRUSTS,
    RegisterCase,
    ccg_era_practices,
    national,
    records,
)

from conftest import SAMPLES
from pipelines.ingest import register_files
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import RegisterRefused, load_register
from pipelines.ingest.sub_icb_mapping import MAPPING_FILE, derive_from_epraccur
from pipelines.warehouse import connect

TODAY = date(2025, 6, 15)
LOCAL = SAMPLES / "local_register.csv"


@pytest.fixture
def con(settings):
    con = connect(settings.working_db)
    yield con
    con.close()


def ods_folder(root: Path, files: dict[str, bytes]) -> Path:
    folder = root / f"ods_{len(list(root.glob('ods_*')))}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def load(con, root: Path, files: dict[str, bytes], *, confirm: bool = False) -> dict[str, int]:
    return load_register(
        con,
        ods_folder(root, files),
        LOCAL,
        ["QHM"],
        run_id="test",
        confirm=confirm,
        max_change_share=0.2,
        today=TODAY,
    )


def load_case(con, root: Path, case: RegisterCase) -> dict[str, int]:
    if case.in_place == "national":
        load(con, root, {n: national(n) for n in ("etr.csv", "epraccur.csv")})
    files = {name: build() for name, build in case.files.items()}
    return load(con, root, files, confirm=case.confirm)


def register_state(con) -> list[tuple]:
    """Everything the register tables hold, to prove a refusal touched nothing."""
    return [
        con.execute(f"select count(*), sum(hash(t)) from raw.{table} t").fetchone()
        for table in ("ods_organisations", "local_organisations", "organisations_outside_region")
    ]


def latest_log(con) -> dict[str, dict]:
    rows = con.execute(
        "select file_name, status, rule, reason, layout, vintage, rows_read, rows_in_region,"
        " notes, confirmed from raw.register_log"
        " where judged_at = (select max(judged_at) from raw.register_log)"
    ).fetchall()
    keys = ["status", "rule", "reason", "layout", "vintage", "rows_read", "rows_in_region"]
    keys += ["notes", "confirmed"]
    return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.name for c in BAD_CASES])
def test_a_bad_register_is_refused_naming_the_file_and_rule(con, tmp_path, case):
    if case.in_place == "national":
        load(con, tmp_path, {n: national(n) for n in ("etr.csv", "epraccur.csv")})
    before = register_state(con)
    files = {name: build() for name, build in case.files.items()}

    with pytest.raises(RegisterRefused) as refused:
        load(con, tmp_path, files, confirm=case.confirm)

    verdicts = {v.file_name: v for v in refused.value.verdicts}
    bad = verdicts[case.refused_file]
    assert (bad.status, bad.rule) == ("refused", case.rule)
    assert bad.reason.startswith(f"{case.rule}: ")
    for text in case.reason_has:
        assert text in bad.reason, bad.reason
    # The register is replaced whole or not at all: every other file is refused too.
    for name, verdict in verdicts.items():
        assert verdict.status == "refused", name
        if name != case.refused_file and case.rule != "register_change_too_large":
            assert verdict.rule == "register_not_replaced", (name, verdict.reason)
            assert f"{case.refused_file} ({case.rule}) was refused" in verdict.reason
    # Nothing half-written: the register in place is exactly as it was.
    assert register_state(con) == before
    # Every verdict is recorded, as the exception carries it.
    log = latest_log(con)
    assert set(log) == set(verdicts)
    assert {n: (r["status"], r["rule"], r["reason"]) for n, r in log.items()} == {
        n: (v.status, v.rule, v.reason) for n, v in verdicts.items()
    }


@pytest.mark.parametrize("case", GOOD_CASES, ids=[c.name for c in GOOD_CASES])
def test_a_good_register_loads_with_its_layout_recorded(con, tmp_path, case):
    counts = load_case(con, tmp_path, case)
    log = latest_log(con)
    assert {row["status"] for row in log.values()} == {"loaded"}
    assert {n: log[n]["layout"] for n in case.layouts} == case.layouts
    assert log["local_register.csv"]["layout"] == "register_local"
    assert counts["local_register.csv"] == NE_LOCAL
    for text in case.reason_has:
        assert all(text in (row["notes"] or "") for row in log.values()), log
    assert all(row["confirmed"] == case.confirm for row in log.values())
    held = con.execute("select count(*) from raw.ods_organisations").fetchone()[0]
    assert held == sum(v for k, v in counts.items() if k != "local_register.csv")


def test_the_national_files_are_recognised_with_their_vintage(con, tmp_path):
    counts = load(con, tmp_path, {n: national(n) for n in ("etr.csv", "epraccur.csv")})
    assert counts == {"epraccur.csv": NE_PRACTICES, "etr.csv": NE_TRUSTS, "local_register.csv": 21}
    log = latest_log(con)
    assert {n: (r["vintage"], r["rows_read"], r["rows_in_region"]) for n, r in log.items()} == {
        "etr.csv": (date(2021, 9, 30), 218, NE_TRUSTS),
        "epraccur.csv": (date(2023, 12, 4), 15971, NE_PRACTICES),
        "local_register.csv": (None, 21, NE_LOCAL),
    }
    # The same files again: nothing changes, nothing refused.
    assert load(con, tmp_path, {n: national(n) for n in ("etr.csv", "epraccur.csv")}) == counts


def test_a_ccg_era_practice_file_places_practices_through_their_ccg(con, tmp_path, settings):
    """The issue's symptom: a practice file from before ICBs filed every practice outside
    the region, and the ICB's collated GP return was quarantined whole. Now the ICB comes
    from the CCG code, so the practices are the region's and their rows load."""
    data = ccg_era_practices()
    rows = records(data)
    assert {row[3] for row in rows} == {"Q45", "Q49", "Q74"}  # no ICB anywhere in field 4
    counts = load(con, tmp_path, {"etr.csv": national("etr.csv"), "epraccur.csv": data})

    assert counts["epraccur.csv"] == len(rows)
    by_ccg = con.execute(
        "select sub_icb_code, icb_code, count(*) from raw.ods_organisations"
        " where record_type = 'gp_practice' group by all order by 1"
    ).fetchall()
    assert {icb for _, icb, _ in by_ccg} == {"QHM"}
    ccgs = {ccg for ccg, _, _ in by_ccg}
    assert {"00C", "00D", "00J", "00K", "00M", "00L", "13T", "99C"} <= ccgs
    assert not {"16C", "84H"} & ccgs  # they did not exist yet
    notes = latest_log(con)["epraccur.csv"]["notes"]
    assert notes.startswith(
        f"a CCG-era practice file (field 4 holds NHS England area codes: Q74): the ICB of "
        f"{len(rows)} of its {len(rows)} practices comes from their CCG code (field 15)"
    )

    (settings.landing_dir / "QHM_2019-04_gp_practices.csv").write_text(
        "org_code,period,measure_code,numerator,denominator\n"
        "A81001,2019-04,OPIOID_HIGH_DOSE,20,410\n"
        "A81002,2019-04,OPIOID_HIGH_DOSE,12,388\n"
    )
    [outcome] = ingest_landing(con, settings, today=TODAY)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 2, 0)


def test_a_ccg_era_file_the_mapping_cannot_place_is_refused(con, tmp_path, monkeypatch):
    """A region whose CCGs merged before ICBs, with no rows in the sub-ICB mapping: its
    practices cannot be placed, and the verdict says what to add."""
    monkeypatch.setattr(register_files, "sub_icb_to_icb", lambda: {"16C": "QHM"})
    with pytest.raises(RegisterRefused) as refused:
        load(con, tmp_path, {"etr.csv": national("etr.csv"), "epraccur.csv": ccg_era_practices()})
    [bad] = [v for v in refused.value.verdicts if v.file_name == "epraccur.csv"]
    assert bad.rule == "unplaceable_practices"
    assert "whose CCG code (field 15) the sub-ICB mapping does not know for" in bad.reason
    assert "add the CCGs to pipelines/ingest/reference/sub_icb_to_icb.csv" in bad.reason


def test_a_file_with_nothing_of_the_region_is_refused(con, tmp_path):
    """Another region's extract in the folder: none of its trusts is the region's."""
    rows = [r for r in records(national("etr.csv")) if r[3] == "QYG"]
    data = "".join(",".join(f'"{f}"' for f in r) + "\n" for r in rows).encode()
    with pytest.raises(RegisterRefused) as refused:
        load(
            con,
            tmp_path,
            {**{n: national(n) for n in ("etr.csv", "epraccur.csv")}, "etr_cm.csv": data},
        )
    [bad] = [v for v in refused.value.verdicts if v.file_name == "etr_cm.csv"]
    assert bad.reason == (
        f"nothing_in_region: none of its {len(rows)} organisations is in the region QHM: a "
        "file of another region, or one whose field 4 holds no ICB codes"
    )


def test_a_new_region_replaces_the_register_without_the_change_guard(con, tmp_path):
    both = {n: national(n) for n in ("etr.csv", "epraccur.csv")}
    load(con, tmp_path, both)
    counts = load_register(
        con, ods_folder(tmp_path, both), None, ["QYG", "QE1"], max_change_share=0.2, today=TODAY
    )
    assert counts == {"epraccur.csv": 1113, "etr.csv": 23}
    notes = latest_log(con)["etr.csv"]["notes"]
    assert notes.startswith("the region changed from QHM to QYG,QE1")


def test_the_sub_icb_mapping_is_what_the_national_file_says():
    """The committed table's derived rows are rebuilt from the real practice file, so
    nothing in it is typed by hand except the curated predecessors."""
    with MAPPING_FILE.open(newline="", encoding="utf-8") as handle:
        committed = list(csv.DictReader(handle))
    derived = [
        {k: row[k] for k in ("code", "icb_code", "active_practices", "evidence")}
        for row in committed
        if row["kind"] == "derived"
    ]
    rebuilt = [
        {k: row[k] for k in ("code", "icb_code", "active_practices", "evidence")}
        for row in derive_from_epraccur(NATIONAL / "epraccur.csv")
    ]
    assert derived == rebuilt
    # The sample region's sub-ICB locations, as epraccur.csv files its practices.
    qhm = {r["code"] for r in committed if r["icb_code"] == "QHM" and r["kind"] == "derived"}
    assert qhm == {"00L", "00N", "00P", "01H", "13T", "16C", "84H", "99C"}
    curated = {r["code"]: r["icb_code"] for r in committed if r["kind"] == "predecessor_ccg"}
    assert curated == dict.fromkeys(["00C", "00D", "00F", "00G", "00H", "00J", "00K", "00M"], "QHM")
