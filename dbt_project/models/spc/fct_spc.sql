-- Internal tier: the internal series' SPC points, as the SPC step computed them
-- (source spc.spc_points holds both tiers; the public series are pub_spc).
{{ spc_tier_points('internal') }}
