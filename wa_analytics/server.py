"""Gunicorn serving one of the product's Flask apps (the ingest service, the dashboard)."""

import os
from collections.abc import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication


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
            "worker_class": "sync",
            # Build the app (and check its configuration) once, before forking.
            "preload_app": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": log_level.lower(),
            "timeout": 30,
            "graceful_timeout": 10,
            "keepalive": 5,
            # One shared control socket per user would collide between several services.
            "control_socket_disable": True,
        },
    ).run()
