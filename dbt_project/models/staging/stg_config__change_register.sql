-- The change register (setting change_register; docs/programme-impact.md section 1), read as
-- text and cast here. The pipeline validates the file before any run starts
-- (pipelines/impact/register.py), so these casts do not fail on a register that was let in;
-- with no register configured the var names a header-only file and this view is empty.
with register as (
    select *
    from read_csv(
        '{{ var('change_register') }}',
        header = true,
        all_varchar = true,
        columns = {
            'change_id': 'varchar',
            'change_date': 'varchar',
            'programme_code': 'varchar',
            'measure_code': 'varchar',
            'scope': 'varchar',
            'scope_code': 'varchar',
            'kind': 'varchar',
            'rebase': 'varchar',
            'description': 'varchar'
        }
    )
)

select
    trim(change_id) as change_id,
    cast(trim(change_date) as date) as change_date,
    nullif(trim(programme_code), '') as programme_code,
    nullif(trim(measure_code), '') as measure_code,
    trim(scope) as scope,
    nullif(trim(scope_code), '') as scope_code,
    trim(kind) as kind,
    cast(nullif(lower(trim(rebase)), '') as boolean) as rebase_given,
    trim(description) as description
from register
where nullif(trim(change_id), '') is not null
