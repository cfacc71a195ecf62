"""Patient safety incident records (LFPSE extracts and local risk-management exports):
read through an allow-list, checked, and stored as codes and dates only (docs/incidents.md)."""
