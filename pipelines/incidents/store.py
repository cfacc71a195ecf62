"""The incident tables of the raw layer, and how one extract is written to them.

Incident files share ``raw.submission_log`` with measure returns and surveys (``layout``
starts with ``incidents``). No table here has a column for a name, a date of birth, an
NHS number, a postcode, an exact age, a reference as the provider wrote it, or free text:
what is written is selected column by column from the allow-listed, typed frame.
``raw.incident_records`` is patient-level and never leaves the working file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import polars as pl

from pipelines.incidents.contract import FIELDS
from pipelines.warehouse import insert_frame, quarantine_table

INCIDENT_LAYOUT_PREFIX = "incidents"

INCIDENT_RAW_DDL = (
    """
create schema if not exists raw;

-- One row per patient of an event revision as an extract held it (a row with null
-- patient_no: an event with no patient recorded). event_key is a hash of layout,
-- organisation and reference (pipelines.incidents.rules.event_key).
create table if not exists raw.incident_records (
    submission_id       bigint not null,
    layout              varchar not null,
    event_key           varchar not null,
    revision            bigint not null,
    taxonomy_version    varchar,
    submitted_on        date not null,
    event_date          date not null,
    org_code            varchar not null,
    reporter_org_code   varchar,
    event_type          varchar not null,
    category            varchar,
    subcategory         varchar,
    service_area        varchar,
    location            varchar,
    specialty           varchar,
    agents              varchar[],
    patient_no          bigint,
    physical_harm       smallint,
    psychological_harm  smallint,
    age_band            smallint,
    source_file         varchar not null,
    sha256              varchar not null,
    source_line         bigint not null,
    loaded_at           timestamp not null
);

-- What each loaded extract covers: per organisation, the months from its earliest to its
-- latest event. A later extract replaces an earlier one's events in that range
-- (docs/incidents.md: deletions).
create table if not exists raw.incident_extracts (
    submission_id   bigint not null,
    layout          varchar not null,
    org_code        varchar not null,
    covers_from     date not null,
    covers_to       date not null,
    events          bigint not null,
    loaded_at       timestamp not null
);

-- Rows refused at ingest: same columns as raw.quarantine. raw_record holds the event key,
-- dates and known codes only; any other value is withheld (its length only).
"""
    + quarantine_table("raw.incident_quarantine")
    + """

-- KH03 bed occupancy (pipelines/incidents/kh03.py): per provider, quarter and sector the
-- average daily number of occupied beds as NHS England published it. Bed days per month:
-- stg_raw__kh03_bed_days (docs/incidents.md, "Occupied bed days").
create table if not exists raw.kh03_beds (
    submission_id   bigint not null,
    org_code        varchar not null,
    quarter_start   date not null,
    sector          varchar not null,
    occupied_beds   double not null,
    source_file     varchar not null,
    sha256          varchar not null,
    source_line     bigint not null,
    loaded_at       timestamp not null
);

-- KH03 rows refused at ingest, every rule they broke (a KH03 file holds no personal data).
"""
    + quarantine_table("raw.kh03_quarantine")
)

# The contract's fields as stored: the event reference only as its hash (event_key), and the
# line of the file each record came from.
RECORD_COLUMNS = (
    "event_key",
    *(f for f in FIELDS if f != "event_ref"),
    "source_line",
)


def ensure_incident_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(INCIDENT_RAW_DDL)


_REVISIONS_SCHEMA = {"event_key": pl.String, "stored_revision": pl.Int64}


class StoredRevisions:
    """The latest revision stored per event, for the revision rules of the extracts of one
    ingest, read per organisation and kept up to date as the extracts are stored.

    Why not one query per extract: every extract's revisions were read by aggregating the
    whole of ``raw.incident_records`` again, so a backfill cost extracts x stored records
    (at SCALE=1, 5,352 extracts against up to 5 million records: most of the ingest step).
    An event key is a hash of layout, organisation and reference
    (:func:`pipelines.incidents.rules.event_key`), so an event's stored revisions are those
    of its own organisation: each organisation's are read from the table once, when an
    extract first holds its events, then extended with what each stored extract adds
    (:meth:`add`). The figures are the same as reading the table again each time: the
    table only grows within an ingest, and only by the rows added here.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._by_org: dict[str, pl.DataFrame] = {}

    def of(self, orgs: Iterable[str]) -> pl.DataFrame:
        """``event_key``, ``stored_revision`` of every stored event of ``orgs``."""
        wanted = sorted({o for o in orgs if o is not None})
        missing = [o for o in wanted if o not in self._by_org]
        if missing:
            read = self._con.execute(
                "select org_code, event_key, max(revision) as stored_revision"
                " from raw.incident_records where list_contains(?, org_code) group by 1, 2",
                [missing],
            ).pl()
            parts = read.partition_by("org_code", as_dict=True, include_key=False)
            for org in missing:
                found = parts.get((org,))
                self._by_org[org] = (
                    found if found is not None else pl.DataFrame(schema=_REVISIONS_SCHEMA)
                )
        frames = [self._by_org[o] for o in wanted]
        if not frames:
            return pl.DataFrame(schema=_REVISIONS_SCHEMA)
        return pl.concat(frames)

    def add(self, stored: pl.DataFrame) -> None:
        """Count the records of an extract just stored (``org_code``, ``event_key``,
        ``revision``), for the organisations already read (the others are read from the
        table, where these records now are, when first needed)."""
        latest = stored.group_by("org_code", "event_key").agg(
            pl.col("revision").max().alias("stored_revision")
        )
        for (org,), rows in latest.partition_by("org_code", as_dict=True).items():
            if org not in self._by_org:
                continue
            self._by_org[org] = (
                pl.concat([self._by_org[org], rows.drop("org_code")])
                .group_by("event_key")
                .agg(pl.col("stored_revision").max())
            )


LINEAGE = ("submission_id", "layout", "source_file", "sha256")


def write_extracts(
    con: duckdb.DuckDBPyConnection,
    *,
    good: pl.DataFrame,
    quarantined: pl.DataFrame,
    now: datetime,
) -> None:
    """Records, coverage and quarantined rows of one extract or many (each row carries its
    extract's ``submission_id``, ``layout``, ``source_file`` and ``sha256``), one insert
    per table, inside the caller's transaction. Only the named columns are selected:
    nothing else can reach a table."""
    records = good.select(
        "submission_id",
        "layout",
        *RECORD_COLUMNS,
        "source_file",
        "sha256",
        pl.lit(now).alias("loaded_at"),
    )
    insert_frame(con, "raw.incident_records", records)
    coverage = (
        good.group_by("submission_id", "layout", "org_code")
        .agg(
            pl.col("event_date").min().dt.month_start().alias("covers_from"),
            pl.col("event_date").max().dt.month_end().alias("covers_to"),
            pl.col("event_key").n_unique().alias("events"),
        )
        .with_columns(pl.lit(now).alias("loaded_at"))
    )
    insert_frame(con, "raw.incident_extracts", coverage)
    rows = quarantined.select(
        "submission_id",
        "source_file",
        "sha256",
        "source_line",
        "raw_record",
        "rules",
        "reasons",
        pl.lit(now).alias("quarantined_at"),
    )
    insert_frame(con, "raw.incident_quarantine", rows)
