"""The production server: gunicorn serving ``create_app()``, with workers sized to the machine."""

from ingest_service.app import create_app
from wa_analytics.core import server


def serve(host: str, port: int, workers: int | None = None, log_level: str = "info") -> None:
    server.serve(create_app, host, port, workers, log_level)
