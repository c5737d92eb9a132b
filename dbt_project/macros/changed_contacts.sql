{#- Which contacts a timeline model recomputes, and from when.

    A contact's history is a timeline: its conversations and waits follow from its messages in
    time order, and a row depends only on what came before its end. So the per-contact models
    upstream record what changed: each merge (delete_insert.sql) writes, for every contact
    whose rows it deleted or added, the earliest time among those rows (`meta: {changed_contacts:
    column}`, into intermediate.changed_contacts). Old and new versions both count, so a late
    status, a message that moved to another contact or an inbound message that turned out not
    to be an outbound one all count at their old and new times.

    A model with `meta: {recompute: {...}}` reads the records its upstream models (`from`) made
    since its own last build (built_at in intermediate.build_watermarks): those contacts, and
    only those, are recomputed, each from its recompute point:
      starts: the column where a row starts. Without `ends`, the point is the earliest recorded
             time g: the upstream rows from g on are read (a response changes with its wait and
             with the conversation it falls in, both of which start at or before it).
      ends:  the column where a row ends (a conversation's window closes, a wait is answered;
             none yet: it has not ended). The stored rows that ended before g cannot change and
             are kept (kept_rows of them); the point is the start of the first other one, or g.
      as_of_build: a column after which a row's value depends on the time of the build (a
             conversation expires unanswered when its window closes): rows it passed since the
             last build are recomputed too.
    The merge compares only the stored and recomputed rows from the point on. With no mark (the
    first build after an upgrade), or after an upstream was rebuilt in full (a record with no
    contact), every touched contact (touched_contacts.sql) is recomputed from the beginning. A
    returning contact then costs its open conversation, not its whole history, and a contact
    whose messages did not change costs nothing. -#}

{% macro create_changed_contacts() %}
    create table if not exists intermediate.changed_contacts (
        model_name text not null,
        contact_id text,
        changed_from timestamptz,
        changed_at timestamptz not null default now()
    );
    create index if not exists changed_contacts_model_changed_at_idx
    on intermediate.changed_contacts (model_name, changed_at);
    {#- The records hold contact ids (personal data): kept only until every reader read them. -#}
    {{ forget_what_was_read('intermediate.changed_contacts', 'recompute', 'built_at') }}
{% endmacro %}

{#- SQL in a data-modifying CTE chain (delete_insert.sql): record each contact's earliest
    `column` among the rows `rows_cte` returned. -#}
{% macro insert_changed_contacts(target, rows_cte, column) %}
    insert into intermediate.changed_contacts (model_name, contact_id, changed_from)
    select
        '{{ target.schema }}.{{ target.identifier }}',
        {{ rows_cte }}.contact_id,
        min({{ rows_cte }}.{{ column }})
    from {{ rows_cte }}
    group by {{ rows_cte }}.contact_id
{% endmacro %}

{#- This model's meta recompute, or none (also while dbt parses, when config holds no values). -#}
{% macro recompute_config() %}
    {%- set meta = config.get('meta') -%}
    {{ return(meta.get('recompute') if execute and meta is mapping else none) }}
{% endmacro %}

{#- When {{ this }} was last built (null before its first recorded build). -#}
{% macro last_built_at() -%}
    (
        select marks.built_at
        from intermediate.build_watermarks as marks
        where marks.model_name = '{{ this.schema }}.{{ this.identifier }}'
    )
{%- endmacro %}

{#- The contacts this incremental build recomputes, each with the earliest time its upstream
    changed at (changed_from; -infinity: from the beginning). -#}
{% macro changed_contacts() %}
    {%- set upstream = [] -%}
    {%- for name in recompute_config()['from'] -%}
        {%- set relation = ref(name) -%}
        {%- do upstream.append(relation.schema ~ '.' ~ relation.identifier) -%}
    {%- endfor -%}
    {%- set upstream_names = "('" ~ (upstream | join("', '")) ~ "')" %}
    select
        changes.contact_id,
        min(changes.changed_from) as changed_from
    from (
        select
            changed.contact_id,
            changed.changed_from
        from intermediate.changed_contacts as changed
        where
            changed.model_name in {{ upstream_names }}
            and changed.contact_id is not null
            and changed.changed_at > {{ last_built_at() }}

        union all

        select
            touched.contact_id,
            '-infinity'::timestamptz as changed_from
        from ({{ touched_keys('contact_id') }}) as touched
        where
            {{ last_built_at() }} is null
            or exists (
                select 1
                from intermediate.changed_contacts as changed
                where
                    changed.model_name in {{ upstream_names }}
                    and changed.contact_id is null
                    and changed.changed_at > {{ last_built_at() }}
            )
    ) as changes
    group by changes.contact_id
{% endmacro %}

{#- The CTEs `changes` and `recomputed` (contact_id, recompute_from, kept_rows), first in a
    model's with and in its merge's: where each recomputed contact's rows are recomputed from.
    With `ends`, the stored rows that ended before the earliest change are kept (kept_rows of
    them), and the rest recomputed from the start of the first of them; otherwise from the
    earliest change. Read before the merge changes anything, so the model's query and its merge
    see the same points; the merge passes the stored rows it reads anyway (`stored_rows`, a CTE
    of the rows of its own `changes`). In a full build, an empty stand-in. -#}
{% macro recomputed_cte(stored_rows=none) -%}
    {%- set recompute = recompute_config() -%}
    {%- if is_incremental() and recompute -%}
    {%- if not stored_rows %}
    changes as materialized (
        {{ changed_contacts() }}
    ),
    {%- endif %}

    recomputed as materialized (
        {%- if recompute.get('ends') %}
        {%- set starts, ends = recompute['starts'], recompute['ends'] %}
        select
            changes.contact_id,
            least(
                changes.changed_from,
                min(stored.{{ starts }}) filter (
                    where stored.{{ ends }} >= changes.changed_from or stored.{{ ends }} is null
                )
            ) as recompute_from,
            count(stored.contact_id) filter (
                where stored.{{ ends }} < changes.changed_from
            ) as kept_rows
        from changes
        left join
            {%- if stored_rows %} {{ stored_rows }} as stored
            {%- else %} (
                select * from {{ this }}
                where contact_id = any(array(select changes.contact_id from changes))
            ) as stored
            {%- endif %}
            on changes.contact_id = stored.contact_id
        group by changes.contact_id, changes.changed_from
        {%- else %}
        select
            changes.contact_id,
            changes.changed_from as recompute_from,
            0::bigint as kept_rows
        from changes
        {%- endif %}
    ),
    {%- else -%}
    recomputed as (
        select
            null::text as contact_id,
            '-infinity'::timestamptz as recompute_from,
            0::bigint as kept_rows
        where false
    ),
    {%- endif -%}
{%- endmacro %}

{#- The condition that a stored or recomputed row (`alias`) of this model may have changed:
    it starts at or after its contact's recompute point, or (as_of_build) its column passed
    since the last build. Every row of the contact without `starts`. -#}
{% macro may_have_changed(alias, recompute) -%}
    {%- if recompute.get('starts') -%}
        ({{ alias }}.{{ recompute['starts'] }} >= recomputed.recompute_from
        {%- if recompute.get('as_of_build') %}
        or {{ alias }}.{{ recompute['as_of_build'] }} > {{ last_built_at() }}
        {%- endif %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` (an upstream model) an incremental build reads: in a model with
    meta recompute, the recomputed contacts' rows, from `column` on (`after`: after it) if
    given; otherwise the touched contacts' rows; every row in a full build. -#}
{% macro rows_to_recompute(relation, column=none, after=false) -%}
    {%- set recompute = recompute_config() -%}
    {%- if is_incremental() and recompute -%}
    select upstream.*
    from {{ relation }} as upstream
    inner join recomputed on upstream.contact_id = recomputed.contact_id
    where
        upstream.contact_id = any(array(select recomputed.contact_id from recomputed))
        {%- if column %}
        and (
            upstream.{{ column }} {{ ">" if after else ">=" }} recomputed.recompute_from
            {%- if recompute.get('as_of_build') %}
            or upstream.{{ recompute['as_of_build'] }} > {{ last_built_at() }}
            {%- endif %}
        )
        {%- endif %}
    {%- else -%}
    select * from {{ relation }}
    where {{ only_touched_contacts('contact_id') }}
    {%- endif -%}
{%- endmacro %}

{#- The recomputed contacts' rows of `relation` before their recompute point (by `column`):
    what a recomputation continues from. None in a full build. -#}
{% macro rows_before_recompute_point(relation, column) -%}
    select earlier.*
    from {{ relation }} as earlier
    {%- if is_incremental() and recompute_config() %}
    inner join recomputed
        on
            earlier.contact_id = recomputed.contact_id
            and earlier.{{ column }} < recomputed.recompute_from
    where earlier.contact_id = any(array(select recomputed.contact_id from recomputed))
    {%- else %}
    where false
    {%- endif %}
{%- endmacro %}
