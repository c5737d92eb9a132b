"""Fixtures: real PostgreSQL and Redis (embedded, or the servers in DATABASE_URL / REDIS_URL).

With DATABASE_URL set, tests use a separate database on that server (``wa_analytics_test``) and
with REDIS_URL set, Redis database 15, so a developer's own data is never touched.
"""

import os
from pathlib import Path

import psycopg
import pytest
import redis
from helpers import TEST_SECRETS
from psycopg.conninfo import make_conninfo

from wa_analytics.core import embedded
from wa_analytics.core.config import load_settings
from wa_analytics.core.database import migrate
from wa_analytics.core.runtime import export_pg_environment

# Another name (WA_TEST_DATABASE, WA_TEST_REDIS_DB) lets two test runs share the servers.
TEST_DATABASE = os.environ.get("WA_TEST_DATABASE", "wa_analytics_test")
TEST_REDIS_DB = os.environ.get("WA_TEST_REDIS_DB", "15")


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=25,
        help="lists of deliveries tests/test_fuzz_pipeline.py generates (make test: 25)",
    )


def pytest_collection_modifyitems(items):
    """A test that needs the servers (directly or through a fixture) is an integration test:
    `make check`, the inner loop, leaves those out; `make test` runs everything."""
    for item in items:
        if "servers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


RAW_TABLES = "raw.events, raw.deliveries, raw.quarantine, raw.contact_revisions"


def _test_database_url(tmp_dir: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return embedded.ensure_postgres(tmp_dir, TEST_DATABASE)
    embedded.create_database(url, TEST_DATABASE)
    return make_conninfo(url, dbname=TEST_DATABASE)


def _test_redis_url(tmp_dir: Path) -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        return embedded.ensure_redis(tmp_dir)
    client = redis.Redis.from_url(url)
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={TEST_REDIS_DB}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{TEST_REDIS_DB}"


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """Database and Redis URLs for the whole run, exported like the CLI does for subprocesses."""
    uses_embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    tmp_dir = tmp_path_factory.mktemp("servers")
    database_url = _test_database_url(tmp_dir)
    redis_url = _test_redis_url(tmp_dir)
    saved = dict(os.environ)
    os.environ.update(TEST_SECRETS, DATABASE_URL=database_url, REDIS_URL=redis_url)
    os.environ["WA_DATA_DIR"] = str(tmp_dir)
    # Drains called directly return once the queue is empty, as a burst worker's do; the tests
    # of lingering, and the end-to-end run of real workers, use the default.
    os.environ["WA_DRAIN_LINGER_SECONDS"] = "0"
    export_pg_environment(database_url)
    migrate(database_url)
    yield {"database_url": database_url, "redis_url": redis_url}
    os.environ.clear()
    os.environ.update(saved)
    if uses_embedded:
        embedded.stop(tmp_dir)


@pytest.fixture
def settings(servers):
    return load_settings()


@pytest.fixture
def db(servers):
    """A connection to an empty raw schema."""
    with psycopg.connect(servers["database_url"], autocommit=True) as conn:
        conn.execute(f"truncate {RAW_TABLES}")
        yield conn


@pytest.fixture
def redis_conn(servers):
    """An empty Redis database."""
    conn = redis.Redis.from_url(servers["redis_url"])
    conn.flushdb()
    yield conn
    conn.close()


@pytest.fixture
def app(settings, db, redis_conn):
    from ingest_service import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()
