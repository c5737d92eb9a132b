-- The events that say two identifiers are one contact (a number and its business-scoped user id,
-- a number change): few among millions, read whole by every dbt build (the model
-- stg_whatsapp__contact_links) through this index, whose predicate it repeats.
create index events_other_ids_idx on raw.events (user_id)
where properties ?| array['contact_user_id', 'changed_to_user_id'];
