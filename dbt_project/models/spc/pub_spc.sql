-- Public tier: the public series' SPC points (computed from the rounded, suppressed counts),
-- without the internal tier's columns, suppressed months blank: macros/spc_tiers.sql.
{{ spc_tier_points('public') }}
