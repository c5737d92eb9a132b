"""Gunicorn serving one of the product's Flask apps (the ingest service, the dashboard)."""

import os
from collections.abc import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from wa_analytics.core import logs, metrics

# Connections a worker holds at once, each with a thread of its own. gunicorn's threaded worker
# gives a new connection a thread for up to 5 s while it waits for the first bytes (then closes
# it: keepalive 0 below); with as many threads as connections a worker never queues a request
# behind idle sockets, and one at its limit stops accepting, leaving new connections to the
# other workers. So workers x THREADS idle connections (640 for the ingest service on 2 cores,
# 256 for the dashboard's 2 workers) delay no answer; beyond that, or facing the internet, the
# buffering proxy (deploy/nginx) takes them. Measured in BENCHMARKS.md ("Idle clients").
THREADS = 128


def default_workers() -> int:
    """Gunicorn's guidance, 2 x cores + 1: the work is short and waits on Redis or Postgres."""
    return int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1))


class FlaskServer(BaseApplication):
    def __init__(self, app_factory: Callable[[], Flask], options: dict):
        self.app_factory = app_factory
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn's own documented variable, e.g. GUNICORN_CMD_ARGS="--threads 128": an
        # operator's tuning (and the bench's variants) without a change here.
        env_args = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for key, value in vars(env_args).items():
            if value is not None and key != "args":
                self.cfg.set(key.lower(), value)

    def load(self):
        return self.app_factory()


class JsonLogger(Logger):
    """gunicorn's logger, writing its lines as JSON (WA_LOG_FORMAT=json) where it writes them.
    (Its ``logconfig_dict`` would also turn its access log on, a cost on every request.)"""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(logs.JsonFormatter())


def serve(
    app_factory: Callable[[], Flask],
    host: str,
    port: int,
    workers: int | None = None,
    log_level: str = "info",
) -> None:
    FlaskServer(
        app_factory,
        {
            "bind": f"{host}:{port}",
            "workers": workers or default_workers(),
            "worker_class": "gthread",
            "threads": THREADS,
            "worker_connections": THREADS,
            # Build the app (and check its configuration) once, before forking.
            "preload_app": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": log_level.lower(),
            "timeout": 30,
            "graceful_timeout": 10,
            # gunicorn keeps no connection alive when every connection has its thread (nor did
            # its sync workers); 0 also closes a connection silent for 5 s at once, where 5
            # would park it 5 s longer.
            "keepalive": 0,
            # One shared control socket per user would collide between several services.
            "control_socket_disable": True,
            # A dead worker's metrics files (PROMETHEUS_MULTIPROC_DIR) are marked as such.
            "child_exit": metrics.child_exit,
            "logger_class": JsonLogger if logs.is_json() else Logger,
        },
    ).run()
