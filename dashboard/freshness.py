"""How fresh the marts are: the newest passed build of the whole project, as dbt records it
(audit.dbt_builds, dbt_project/macros/build_log.sql), whoever ran it."""

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from wa_analytics.core.database import connect

# The marts are stale when the last passed build is older than this many transform intervals:
# one late or failed build is normal, three in a row are not.
STALE_AFTER_INTERVALS = 3

LATEST_BUILD = """
select builds.as_of, builds.finished_at, extract(epoch from now() - builds.finished_at)
from audit.dbt_builds as builds
where builds.has_passed
order by builds.finished_at desc
limit 1
"""


@dataclass(frozen=True)
class Build:
    """The newest passed build: the newest ``raw.events.loaded_at`` it read (``as_of``, none
    when raw.events was empty), when it finished, and how long ago (by the database's clock)."""

    as_of: datetime | None
    built_at: datetime
    age_seconds: float


def latest_build(conn: psycopg.Connection) -> Build | None:
    """The newest passed build, none if no build has passed yet (or none was recorded: marts
    built before builds were, are served as never built until the next build)."""
    if conn.execute("select to_regclass('audit.dbt_builds')").fetchone()[0] is None:
        return None
    row = conn.execute(LATEST_BUILD).fetchone()
    return Build(row[0], row[1], float(row[2])) if row else None


def as_json(build: Build | None) -> dict:
    """``as_of`` and ``built_at`` as every metrics answer carries them (ISO 8601, UTC)."""
    return {
        "as_of": _iso(build.as_of) if build else None,
        "built_at": _iso(build.built_at) if build else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def readiness(database_url: str, interval_seconds: float) -> tuple[dict, int]:
    """``/readyz``: 200 when the database answers and the marts are fresh; 503 saying why not
    (database unavailable, marts never built, or stale with their age)."""
    stale_after = STALE_AFTER_INTERVALS * interval_seconds
    try:
        with connect(database_url, connect_timeout=2, options="-c statement_timeout=5s") as conn:
            build = latest_build(conn)
    except psycopg.Error as exc:
        reason = f"database unavailable ({exc.__class__.__name__}); is Postgres up?"
        return {"status": "unavailable", "reason": reason}, 503
    if build is None:
        reason = "the marts were never built: start `wa-analytics transform`"
        return {"status": "stale", "reason": reason, **as_json(None)}, 503
    answer = {**as_json(build), "age_seconds": round(build.age_seconds, 1)}
    if build.age_seconds > stale_after:
        reason = (
            f"the marts are stale: last built {build.age_seconds:.0f} s ago, more than "
            f"{STALE_AFTER_INTERVALS} transform intervals ({stale_after:g} s); "
            "is `wa-analytics transform` running, and are its builds passing?"
        )
        return {"status": "stale", "reason": reason, **answer}, 503
    return {"status": "ready", **answer}, 200
