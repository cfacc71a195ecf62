select
    wave_id,
    wave_name,
    instrument_id,
    opens_on,
    closes_on,
    contract_path
from {{ source('raw', 'survey_waves') }}
