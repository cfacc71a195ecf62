-- The changes that apply to the public series (source spc.spc_series_changes holds both tiers).
{{ spc_tier_series_changes('public') }}
