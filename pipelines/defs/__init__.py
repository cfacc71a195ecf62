"""Dagster definitions, one small module per capability, merged in pipelines.definitions."""

# Every asset that writes the working DuckDB file runs in this pool; dagster.yaml limits it
# to one step at a time across all runs, because DuckDB allows a single writing process.
DUCKDB_WRITER_POOL = "duckdb_writer"
