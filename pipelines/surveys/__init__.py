"""Safety-culture survey exports: instrument, wave contracts, export readers and raw ingest.

Respondent-level answers stop at the raw layer (``raw.survey_answers``); dbt aggregates them
to organisation, sector and ICB with small-group suppression. Names, e-mail addresses, IP
addresses and free-text answers are dropped while a file is read and never stored.
"""
