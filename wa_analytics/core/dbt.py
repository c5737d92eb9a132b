"""Running dbt against the same servers as everything else, one build at a time."""

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wa_analytics.core.database import connect

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = PROJECT_ROOT / "profiles"

# The advisory lock every dbt build holds for its whole run (the dbt var build_lock_key, which
# tests/test_transform.py keeps equal). dbt cannot hold it itself: it opens a connection per
# model and closes its on-run-start connection before the first model, and a session's advisory
# lock ends with the session. So the process that starts dbt holds it, on a connection of its
# own, and names that session in LOCK_SESSION_VARIABLE; the on-run-start hook
# (dbt_project/macros/build_lock.sql) fails a build whose named session does not hold it.
BUILD_LOCK_KEY = 7_340_002
LOCK_SESSION_VARIABLE = "WA_BUILD_LOCK_SESSION"
# dbt commands that run on-run-start hooks, hence need the lock.
LOCKED_COMMANDS = {"build", "run", "seed", "snapshot", "test", "retry"}


@contextmanager
def build_lock(database_url: str | None, wait: bool = True) -> Iterator[bool]:
    """Hold the build lock (across every host on this database) while the block runs.

    Yields True once held; with ``wait=False``, yields False at once if another build holds it.
    Sets LOCK_SESSION_VARIABLE in the environment for the dbt run inside the block."""
    with connect(database_url or "", autocommit=True) as conn:
        held = conn.execute("select pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,)).fetchone()[0]
        if not held and wait:
            log.info("another dbt build is running; waiting for it to finish")
            conn.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
            held = True
        if not held:
            yield False
            return
        previous = os.environ.get(LOCK_SESSION_VARIABLE)
        os.environ[LOCK_SESSION_VARIABLE] = str(conn.info.backend_pid)
        try:
            yield True
        finally:
            if previous is None:
                os.environ.pop(LOCK_SESSION_VARIABLE, None)
            else:
                os.environ[LOCK_SESSION_VARIABLE] = previous
        # Closing the connection releases the lock, also when this process dies.


def run_dbt(args: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """``dbt <args>`` in the project root with the project's profiles (PG* from the environment);
    a command that builds waits for, then holds, the build lock."""
    command = [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args]
    if "--profiles-dir" not in args and args and args[0] not in ("--version", "-h", "--help"):
        command += ["--profiles-dir", str(PROFILES_DIR)]
    if not args or args[0] not in LOCKED_COMMANDS:
        return subprocess.run(command, cwd=PROJECT_ROOT, check=check, **kwargs)
    with build_lock(os.environ.get("DATABASE_URL")):
        if "env" in kwargs:
            session = os.environ[LOCK_SESSION_VARIABLE]
            kwargs["env"] = {**kwargs["env"], LOCK_SESSION_VARIABLE: session}
        return subprocess.run(command, cwd=PROJECT_ROOT, check=check, **kwargs)
