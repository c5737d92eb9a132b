-- The marketing preference changes (Meta's user_preferences webhook): few among millions, read
-- whole by every dbt build (the model stg_whatsapp__user_preferences) through this index, whose
-- predicate it repeats.
create index if not exists events_preference_updates_idx on raw.events (user_id)
where event_name = 'preference_updated';
