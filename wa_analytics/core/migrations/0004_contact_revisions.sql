-- Contacts whose history changed without a new event of theirs: when a report that comes first
-- (worker.processing.precedence) replaces a stored event and names another contact (the CRM and
-- Meta spelling one number differently), the event leaves its old contact. Incremental dbt
-- builds recompute the contacts listed here since their last build (macro touched_contacts).
create table raw.contact_revisions (
    user_id text not null,
    revised_at timestamptz not null default now()
);
create index contact_revisions_revised_at_idx on raw.contact_revisions (revised_at);
