"""Ingest: read provider files, apply row rules, load raw with lineage, quarantine the rest."""
