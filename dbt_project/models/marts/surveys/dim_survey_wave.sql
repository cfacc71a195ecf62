-- Survey waves as their wave.yml contracts say; wave_number orders them by opening date.
select
    wave_id,
    wave_name,
    instrument_id,
    opens_on,
    closes_on,
    cast(row_number() over (order by opens_on, wave_id) as integer) as wave_number
from {{ ref('stg_raw__survey_waves') }}
