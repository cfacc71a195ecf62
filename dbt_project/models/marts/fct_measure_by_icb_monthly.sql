-- Roll-up: ICB x measure x month, all sectors together. Counts are summed, then divided.
{{ measure_rollup(['icb_code', 'measure_code', 'period', 'programme_code']) }}
