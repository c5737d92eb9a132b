"""Connections and schema migrations for PostgreSQL."""

import logging
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process that migrates.
MIGRATION_LOCK_ID = 7_340_001


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A connection with a short connect timeout, so a down database fails fast, not hangs."""
    kwargs.setdefault("connect_timeout", 5)
    return psycopg.connect(url, **kwargs)


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) for every migration shipped with the package, in order."""
    files = sorted((Path(__file__).parent / "migrations").glob("*.sql"))
    return [(f.stem, f.read_text()) for f in files]


def migrate(url: str) -> list[str]:
    """Apply the migrations not yet applied; safe to re-run and to run from several processes.

    Returns the versions applied now.
    """
    applied_now = []
    with connect(url) as conn:
        # Serialise concurrent migrators (a worker and the service starting together).
        conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        conn.execute(
            """
            create schema if not exists raw;
            create table if not exists raw.schema_migrations (
                version text primary key,
                applied_at timestamptz not null default now()
            )
            """
        )
        done = {row[0] for row in conn.execute("select version from raw.schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            log.info("applying migration %s", version)
            conn.execute(sql)
            conn.execute("insert into raw.schema_migrations (version) values (%s)", (version,))
            applied_now.append(version)
    return applied_now
