select
    submission_id,
    file_name,
    source_path,
    sha256,
    size_bytes,
    received_at,
    submitter_code,
    layout,
    period_min,
    period_max,
    rows_read,
    rows_loaded,
    rows_quarantined,
    status,
    reason,
    duplicate_of
from {{ source('raw', 'submission_log') }}
