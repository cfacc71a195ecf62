"""Programme impact: the change register, which changes apply to which series, and the
baselines SPC limits rest on (docs/programme-impact.md is the method)."""
