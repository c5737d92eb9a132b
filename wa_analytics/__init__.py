"""WhatsApp analytics on a unified event stream: shared configuration and plumbing.

The ingest service (`ingest_service`) and the worker (`worker`) both depend on this package and
never on each other.
"""
