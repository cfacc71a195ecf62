-- Roll-up: ICB x sector x measure x month. Counts are summed, then divided.
{{ measure_rollup(['icb_code', 'sector_code', 'measure_code', 'period', 'programme_code']) }}
