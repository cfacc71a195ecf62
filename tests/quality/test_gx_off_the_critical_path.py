"""Great Expectations costs seconds of CPU to import: loading the code location never
imports it (only the check that runs it does, once in its process), and the check reads
only the months its run covers."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from pipelines.defs.quality import _run_months
from pipelines.settings import PROJECT_ROOT


def test_loading_the_definitions_does_not_import_great_expectations():
    probe = (
        "import sys\n"
        "import pipelines.definitions as d\n"
        "d.defs()\n"
        "import pipelines.defs.quality, pipelines.quality.gx_audit\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'great_expectations'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("tags", "months"),
    [
        (
            {
                "dagster/asset_partition_range_start": "2024-04-01",
                "dagster/asset_partition_range_end": "2024-06-01",
            },
            (date(2024, 4, 1), date(2024, 6, 1)),
        ),
        ({"dagster/partition": "2024-06-01"}, (date(2024, 6, 1), date(2024, 6, 1))),
        ({}, None),
        # Half a range is no range: every month is read rather than a guess.
        ({"dagster/asset_partition_range_start": "2024-04-01"}, None),
    ],
)
def test_the_check_reads_only_the_runs_months(tags, months):
    assert _run_months(tags) == months


def test_a_malformed_month_tag_is_an_error_not_every_month():
    with pytest.raises(ValueError):
        _run_months({"dagster/partition": "June 2024"})
