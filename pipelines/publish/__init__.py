"""Publication: write-audit-publish of the marts to a snapshot analysts can always open."""
