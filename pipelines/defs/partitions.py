"""Reporting months: the partitions of every period-grained asset."""

from datetime import date

import dagster as dg

from pipelines.months import MONTH_KEY_FORMAT, month_key
from pipelines.settings import load_settings

_settings = load_settings()

reporting_months = dg.MonthlyPartitionsDefinition(
    start_date=month_key(_settings.catalogue_start),
    # Include the current, still-open month: late returns for it are normal.
    end_offset=1,
    fmt=MONTH_KEY_FORMAT,
)


# Run tag: publish even if the facts shrink sharply or an organisation disappears.
ALLOW_SHRINK_TAG = "safety_observatory/allow_shrink"
# Run tag: accept a new organisation register that is older than the one in place, or
# drops or moves more than max_register_change_share of the region's organisations.
CONFIRM_REGISTER_TAG = "safety_observatory/confirm_register"


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover a range of months (single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": month_key(first),
        "dagster/asset_partition_range_end": month_key(last),
    }
