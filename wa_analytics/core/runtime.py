"""Where the servers are: the ones in DATABASE_URL / REDIS_URL, or embedded ones started here.

The CLI resolves this once and exports the result, so every process it starts (gunicorn workers,
RQ workers, dbt) talks to the same servers.
"""

import logging
import os

from psycopg.conninfo import conninfo_to_dict

from wa_analytics.core import embedded
from wa_analytics.core.config import Settings, load_settings

log = logging.getLogger(__name__)


def ensure_services(settings: Settings | None = None) -> Settings:
    """Start embedded servers for whatever is not configured; export the URLs; return settings."""
    settings = settings or load_settings()
    if not settings.database_url:
        url = embedded.ensure_postgres(settings.data_dir)
        log.info("using embedded PostgreSQL under %s", settings.data_dir / "pg")
        os.environ["DATABASE_URL"] = url
    if not settings.redis_url:
        url = embedded.ensure_redis(settings.data_dir)
        log.info("using embedded Redis under %s", settings.data_dir / "redis")
        os.environ["REDIS_URL"] = url
    export_pg_environment(os.environ["DATABASE_URL"])
    return load_settings()


def export_pg_environment(database_url: str) -> None:
    """Set the standard PG* variables from the URL, for dbt's profile and for psql."""
    for key, value in pg_environment(database_url).items():
        os.environ[key] = value


def pg_environment(database_url: str) -> dict[str, str]:
    params = conninfo_to_dict(database_url)
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
    }
    env = {names[key]: str(value) for key, value in params.items() if key in names and value}
    env.setdefault("PGPORT", "5432")
    return env
