select programme_code, programme_name, is_national_programme, sort_order
from {{ ref('programmes') }}
