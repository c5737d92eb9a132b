-- preference_updated: a contact stopped or resumed a business's marketing messages (Meta's
-- user_preferences webhook). The check on event_name was declared on its column in
-- 0001_raw_schema.sql, so PostgreSQL named it events_event_name_check; it is replaced under the
-- same name. Every stored row passed the narrower check, so this one holds for them too (the
-- scan that proves it runs once, inside the migration's transaction).
alter table raw.events drop constraint if exists events_event_name_check;
alter table raw.events add constraint events_event_name_check
    check (event_name in ('message_received', 'message_sent', 'status_updated', 'preference_updated'));
