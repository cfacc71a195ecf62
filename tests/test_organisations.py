"""The real ODS extracts load without edits; the register resolves sectors and mergers."""

from __future__ import annotations

import polars as pl
import pytest

from conftest import FIXTURES, SAMPLES
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.organisations import load_register, read_local_register, read_ods_file
from pipelines.warehouse import connect


def test_real_etr_loads_with_qhm_trusts():
    trusts = read_ods_file(FIXTURES / "ods" / "etr.csv", "trust")
    assert trusts.height == 218
    qhm = trusts.filter(pl.col("icb_code") == "QHM")
    assert qhm.height == 11
    rx3 = qhm.filter(pl.col("org_code") == "RX3").row(0, named=True)
    assert rx3["org_name"] == "TEES, ESK AND WEAR VALLEYS NHS FOUNDATION TRUST"  # quoted comma
    assert str(rx3["open_date"]) == "2006-04-01"


def test_real_epraccur_loads_with_qhm_practices_and_closures():
    practices = read_ods_file(FIXTURES / "ods" / "epraccur.csv", "gp_practice")
    assert practices.height == 15971
    qhm = practices.filter(pl.col("icb_code") == "QHM")
    assert qhm.height == 671
    assert qhm.filter(pl.col("prescribing_setting") == "4").height == 384
    closed = qhm.filter(pl.col("status_code") == "C")
    assert closed.height == 34
    assert closed["close_date"].null_count() == 0


def test_older_24_field_layout_loads(tmp_path):
    lines = (FIXTURES / "ods" / "etr.csv").read_text().splitlines()
    short = ['","'.join(line.split('","')[:24]) + '"' for line in lines[:5]]
    (tmp_path / "etr.csv").write_text("\n".join(short) + "\n")
    trusts = read_ods_file(tmp_path / "etr.csv", "trust")
    assert trusts.height == 5 and trusts["org_code"].null_count() == 0


def test_truncated_ods_file_is_rejected(tmp_path):
    (tmp_path / "etr.csv").write_text('"R0A","NAME","Y62"\n')
    with pytest.raises(FileRejected, match="wrong_field_count: 3 fields a line"):
        read_ods_file(tmp_path / "etr.csv", "trust")


def test_local_register_needs_its_columns(tmp_path):
    (tmp_path / "local.csv").write_text("org_code,org_name\nX,Y\n")
    with pytest.raises(FileRejected, match="successor_code"):
        read_local_register(tmp_path / "local.csv")


def test_register_replaces_whole_on_reload(settings):
    con = connect(settings.working_db)
    first = load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    second = load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    assert first == second == {"epraccur.csv": 671, "etr.csv": 11, "local_register.csv": 21}
    assert con.execute("select count(*) from raw.ods_organisations").fetchone()[0] == 682
