"""Quality gates that run on the built marts before publication (docs/design.md §5)."""
