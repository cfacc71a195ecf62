-- Roll-up: programme x measure x month over every organisation in the warehouse (the
-- whole region by default). Counts are summed, then divided.
{{ measure_rollup(
    ['programme_code', 'measure_code', 'period'],
    ['count(distinct facts.icb_code) as icbs_reporting'],
) }}
