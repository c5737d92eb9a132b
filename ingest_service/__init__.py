"""The ingest service: signed webhooks in, deliveries queued in Redis."""

from ingest_service.app import create_app

__all__ = ["create_app"]
