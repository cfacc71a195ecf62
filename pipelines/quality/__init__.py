"""Quality gates that run on the built marts before publication (DESIGN §5)."""
