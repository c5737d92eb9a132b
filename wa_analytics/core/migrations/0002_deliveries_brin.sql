-- Deliveries arrive in time order and are read by time range (reprocess, audits), never by a
-- single arrival time: a BRIN index serves that at a fraction of a B-tree's cost per insert,
-- which the worker pays on every delivery.
drop index raw.deliveries_received_at_idx;
create index deliveries_received_at_brin on raw.deliveries using brin (received_at);
