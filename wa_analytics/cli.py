"""``wa-analytics``: the one command operators and analysts use."""

import argparse
import logging
import sys
from importlib.metadata import entry_points

from wa_analytics.core.logs import configure_logging

log = logging.getLogger("wa_analytics")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    return args.handler(args) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wa-analytics",
        description="WhatsApp analytics: webhooks -> RQ -> Postgres -> dbt marts. Without "
        "DATABASE_URL / REDIS_URL, embedded servers are started under WA_DATA_DIR (.wa-data).",
    )
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the ingest service (gunicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, help="gunicorn workers (default 2 x cores + 1)")
    serve.set_defaults(handler=cmd_serve)

    dashboard = commands.add_parser(
        "dashboard", help="serve the dashboard and the metrics API (/api/v1/metrics/)"
    )
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8050)
    dashboard.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    dashboard.set_defaults(handler=cmd_dashboard)

    worker = commands.add_parser("worker", help="run an RQ worker that stores queued deliveries")
    worker.add_argument("--burst", action="store_true", help="process what is queued, then exit")
    worker.add_argument("--metrics-port", type=int, help="serve Prometheus's /metrics on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(handler=cmd_worker)

    transform = commands.add_parser(
        "transform",
        help="keep the marts fresh: an incremental dbt build every WA_TRANSFORM_INTERVAL seconds",
    )
    transform.add_argument("--vars", help="dbt vars, e.g. '{reporting_timezone: Europe/Berlin}'")
    transform.add_argument(
        "--metrics-port", type=int, help="serve Prometheus's /metrics on this port"
    )
    transform.add_argument("--metrics-host", default="127.0.0.1")
    transform.set_defaults(handler=cmd_transform)

    migrate = commands.add_parser("migrate", help="create or upgrade the raw schema")
    migrate.set_defaults(handler=cmd_migrate)

    failed = commands.add_parser(
        "failed",
        help="list drain jobs that failed for good and dead letters; --requeue runs them again",
    )
    failed.add_argument("--requeue", action="store_true", help="requeue every failed job")
    failed.set_defaults(handler=cmd_failed)

    reprocess = commands.add_parser(
        "reprocess", help="re-derive raw.events from the stored deliveries"
    )
    reprocess.set_defaults(handler=cmd_reprocess)

    dbt = commands.add_parser(
        "dbt", help="run dbt on the same servers, e.g. `wa-analytics dbt build`"
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(handler=cmd_dbt)

    env = commands.add_parser("env", help="print shell exports for the servers in use")
    env.set_defaults(handler=cmd_env)

    stop = commands.add_parser(
        "stop", help="stop the demo's dashboard and transform, and the embedded servers"
    )
    stop.set_defaults(handler=cmd_stop)
    # The developer tools (the demo, the bench) add their commands themselves, as entry points
    # of the group "wa_analytics.commands" (pyproject.toml): the command line imports none of
    # them, and an install without them simply lacks their commands.
    for entry in sorted(entry_points(group="wa_analytics.commands"), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def _services():
    from wa_analytics.core.runtime import ensure_services  # noqa: PLC0415 - keeps --help fast

    return ensure_services()


def _migrated_services(wait: bool = False):
    """The servers, with the schema migrated; with ``wait``, as a long-running process starts:
    PostgreSQL unreachable is waited for with backoff (logged once), not a reason to exit."""
    import psycopg  # noqa: PLC0415

    from wa_analytics.core import outages  # noqa: PLC0415
    from wa_analytics.core.database import migrate  # noqa: PLC0415

    settings = _services()
    if wait:
        errors = (psycopg.OperationalError,)
        applied = outages.retry(lambda: migrate(settings.database_url), outages.POSTGRES, errors)
    else:
        applied = migrate(settings.database_url)
    if applied:
        log.info("applied migrations %s", ", ".join(applied))
    return settings


def _multiprocess_metrics(service: str, port: int) -> None:
    """Gunicorn's workers count in files of a fresh directory (before prometheus_client loads)."""
    from wa_analytics.core.config import load_settings  # noqa: PLC0415
    from wa_analytics.core.metrics import prepare_multiprocess_dir  # noqa: PLC0415

    prepare_multiprocess_dir(load_settings().data_dir, f"{service}-{port}")


def cmd_serve(args) -> int:
    _multiprocess_metrics("ingest", args.port)
    import psycopg  # noqa: PLC0415

    from ingest_service.server import serve  # noqa: PLC0415
    from wa_analytics.core import outages  # noqa: PLC0415

    try:
        _migrated_services()
    except psycopg.OperationalError as exc:
        # The door needs only Redis to take deliveries: they wait there while PostgreSQL is
        # down, and the workers (which migrate too) store them once it answers.
        log.warning("postgresql unreachable; serving without it (%s)", outages.describe(exc))
    serve(args.host, args.port, args.workers, args.log_level)
    return 0


def cmd_dashboard(args) -> int:
    _multiprocess_metrics("dashboard", args.port)
    from dashboard.app import create_app  # noqa: PLC0415
    from wa_analytics.core import server  # noqa: PLC0415

    _services()
    server.serve(create_app, args.host, args.port, args.workers, args.log_level)
    return 0


def _metrics_in_memory() -> None:
    """A single-process service (a worker, the transform) counts in its own memory: a web
    service's multiprocess metrics directory is not its. Call before importing its metrics."""
    import os  # noqa: PLC0415

    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def cmd_worker(args) -> int:
    _metrics_in_memory()
    from worker.runner import run_worker  # noqa: PLC0415

    run_worker(
        _migrated_services(wait=not args.burst),
        burst=args.burst,
        log_level=args.log_level,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    return 0


def cmd_transform(args) -> int:
    if not _dbt_installed():
        return 2
    _metrics_in_memory()
    from wa_analytics.transform import run_transform  # noqa: PLC0415

    run_transform(
        _migrated_services(wait=True),
        dbt_vars=args.vars,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    return 0


def cmd_migrate(args) -> int:
    settings = _services()
    from wa_analytics.core.database import migrate  # noqa: PLC0415

    applied = migrate(settings.database_url)
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def cmd_failed(args) -> int:
    from wa_analytics.core.queueing import redis_client  # noqa: PLC0415
    from worker.dead_letters import dead_letters, requeue_dead_letters  # noqa: PLC0415
    from worker.failures import failed_jobs, requeue_failed, waiting_deliveries  # noqa: PLC0415

    settings = _services()
    connection = redis_client(settings.redis_url, timeout=5)
    jobs = failed_jobs(connection, settings.queue_name)
    for job in jobs:
        print(f"{job.job_id}  {job.ended_at or '-'}  {job.reason}")
    print(f"{len(jobs)} failed drain jobs; {waiting_deliveries(connection)} deliveries waiting")
    letters = dead_letters(connection)
    for letter in letters:
        received = f"{letter.received_at:%Y-%m-%dT%H:%M:%SZ}" if letter.received_at else "-"
        print(
            f"dead letter {letter.delivery_id}  {letter.source}  received {received}  "
            f"failed {letter.failed_at:%Y-%m-%dT%H:%M:%SZ}  {letter.body_bytes} bytes  "
            f"{letter.reason}"
        )
    print(f"{len(letters)} dead letters (deliveries that could not be stored at all)")
    if args.requeue and jobs:
        print(f"requeued {requeue_failed(connection, settings.queue_name)} jobs")
    if args.requeue and letters:
        requeued = requeue_dead_letters(connection, settings.queue_name, settings.batch_size)
        print(f"requeued {requeued} dead letters")
    return 0


def cmd_reprocess(args) -> int:
    from worker.phones import PhoneRules  # noqa: PLC0415
    from worker.reprocess import reprocess  # noqa: PLC0415

    settings = _migrated_services()
    totals = reprocess(settings.database_url, PhoneRules.from_settings(settings))
    print(
        f"re-derived {totals['events']} events and {totals['quarantine']} quarantined items "
        f"from {totals['deliveries']} deliveries"
    )
    return 0


def cmd_dbt(args) -> int:
    from wa_analytics.core.dbt import run_dbt  # noqa: PLC0415

    if not _dbt_installed():
        return 2
    _migrated_services()
    return run_dbt(args.dbt_args, check=False).returncode


def _dbt_installed() -> bool:
    """dbt is an extra (the transform's): say how to get it rather than fail on an import."""
    from importlib.util import find_spec  # noqa: PLC0415

    if find_spec("dbt") is None:
        print("dbt is not installed here: pip install 'wa-analytics[transform]'", file=sys.stderr)
        return False
    return True


def cmd_env(args) -> int:
    import os  # noqa: PLC0415
    import shlex  # noqa: PLC0415

    # Its output is meant for `eval`: keep log lines out of it.
    logging.getLogger().setLevel(logging.WARNING)
    _services()
    for key in ("DATABASE_URL", "REDIS_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD",
                "PGDATABASE"):  # fmt: skip
        if os.environ.get(key):
            print(f"export {key}={shlex.quote(os.environ[key])}")
    return 0


def cmd_stop(args) -> int:
    from wa_analytics.core import embedded  # noqa: PLC0415
    from wa_analytics.core.config import load_settings  # noqa: PLC0415
    from wa_analytics.core.processes import stop_detached  # noqa: PLC0415

    data_dir = load_settings().data_dir
    stopped = ["dashboard"] if stop_detached("dashboard", data_dir) else []
    stopped += embedded.stop(data_dir)  # and the demo's transform
    print("stopped: " + ", ".join(stopped) if stopped else "no embedded server was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
