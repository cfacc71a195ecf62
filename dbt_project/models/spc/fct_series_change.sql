-- The changes that apply to the internal series (source spc.spc_series_changes holds both tiers).
{{ spc_tier_series_changes('internal') }}
