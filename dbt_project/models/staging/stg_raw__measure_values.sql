select
    submission_id,
    org_code,
    period,
    measure_code,
    numerator,
    denominator,
    superseded_by,
    superseded_by is null as is_current,
    source_file,
    sha256,
    source_line,
    loaded_at
from {{ source('raw', 'measure_values') }}
