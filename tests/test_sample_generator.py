"""The committed sample is exactly what the generator writes: same seed, same bytes."""

from __future__ import annotations

import filecmp
import json
import shutil
import sys

from conftest import SAMPLES

sys.path.insert(0, str(SAMPLES))
import generate


def test_generator_reproduces_the_committed_sample(tmp_path):
    shutil.copytree(SAMPLES / "ods", tmp_path / "ods")
    manifest = generate.generate(tmp_path, tmp_path / "ods")
    assert manifest == json.loads((SAMPLES / "SAMPLE_MANIFEST.json").read_text())
    committed = sorted(p.relative_to(SAMPLES) for p in (SAMPLES / "landing").rglob("*.csv"))
    written = sorted(p.relative_to(tmp_path) for p in (tmp_path / "landing").rglob("*.csv"))
    assert committed == written
    _, mismatch, errors = filecmp.cmpfiles(SAMPLES, tmp_path, [str(p) for p in committed], False)
    assert mismatch == [] and errors == []
    assert (SAMPLES / "local_register.csv").read_bytes() == (
        tmp_path / "local_register.csv"
    ).read_bytes()


def test_sample_has_missing_returns_and_a_resubmission():
    manifest = json.loads((SAMPLES / "SAMPLE_MANIFEST.json").read_text())
    assert manifest["months"] == 24
    assert not (SAMPLES / "landing" / "2024-03" / "RVW_2024-02.csv").exists()
    assert (SAMPLES / "landing" / "2024-09" / "RTD_2024-06_resubmitted.csv").exists()
    assert manifest["fct_measure_monthly_rows"] < manifest["rows"]
