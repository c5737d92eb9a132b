"""The worker: turns queued deliveries into standardised events in Postgres (``raw.events``)."""
