"""docker-compose.yml, read as a file (no Docker engine runs here): every long-running service
comes back after a crash or a reboot, and says whether it is healthy."""

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
ONE_SHOT = {"migrate", "dbt"}  # run to completion, by `up` or `docker compose run`


def test_every_long_running_service_restarts_and_is_probed():
    services = {name: spec for name, spec in COMPOSE["services"].items() if name not in ONE_SHOT}
    assert {"ingest", "proxy", "worker", "dashboard", "transform"} <= services.keys()
    for name, spec in services.items():
        assert spec.get("restart") == "unless-stopped", name
        assert spec.get("healthcheck", {}).get("test"), name
