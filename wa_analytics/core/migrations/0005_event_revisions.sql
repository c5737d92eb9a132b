-- Every replaced event, not only those that changed contact: which message it belonged to and
-- when it happened before its replacement. A report that comes first can move a message's time
-- as well as its contact, and incremental dbt builds recompute each contact from the earliest
-- time any version of its messages had (the model messages_this_run). Rows from before this
-- migration have neither: those contacts are recomputed from their beginning.
alter table raw.contact_revisions
    add column message_id text,
    add column occurred_at timestamptz;
