"""National-scale benchmark (docs/design.md §10, docs/benchmark.md):
``python -m pipelines.bench --scale 0.05``.

Kept inside the package so it runs the same code, settings and Dagster job users run; it
writes only under its ``--out`` folder (``var/bench`` by default), never into the repo.
"""
