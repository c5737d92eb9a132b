"""Configuration: every setting comes from the environment, read here and nowhere else."""

import os
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What the ingest service, the worker and the CLI need to know about their surroundings."""

    database_url: str | None
    redis_url: str | None
    data_dir: Path
    environment: str
    whatsapp_app_secret: str
    whatsapp_verify_token: str
    crm_webhook_secret: str
    max_body_bytes: int
    queue_name: str
    batch_size: int
    drain_processes: int
    lease_seconds: int
    drain_linger_seconds: float
    watchdog_seconds: float
    redis_timeout_seconds: float
    default_phone_region: str | None
    phone_hash_key: str | None
    transform_interval_seconds: float
    full_build_interval_seconds: float = 3600.0
    log_format: str = "text"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def missing_secrets(self) -> list[str]:
        """Names of the webhook secrets that are not set (webhooks fail closed without them)."""
        wanted = {
            "WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.whatsapp_verify_token,
            "CRM_WEBHOOK_SECRET": self.crm_webhook_secret,
        }
        return [name for name, value in wanted.items() if not value]


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        redis_url=env.get("REDIS_URL") or None,
        data_dir=Path(env.get("WA_DATA_DIR", ".wa-data")).resolve(),
        environment=env.get("WA_ENV", "development"),
        whatsapp_app_secret=env.get("WHATSAPP_APP_SECRET", ""),
        whatsapp_verify_token=env.get("WHATSAPP_VERIFY_TOKEN", ""),
        crm_webhook_secret=env.get("CRM_WEBHOOK_SECRET", ""),
        max_body_bytes=int(env.get("WA_MAX_BODY_BYTES", 3 * MIB)),
        queue_name=env.get("WA_QUEUE", "wa-ingest"),
        batch_size=int(env.get("WA_BATCH_SIZE", 2000)),
        # Processes one drain job uses on a backlog (each parses and COPYs on its own).
        drain_processes=int(env.get("WA_DRAIN_PROCESSES", 0)) or os.cpu_count() or 1,
        # How long a drain's claim outlives the drain if it dies (SIGKILL, a lost machine): its
        # batch then goes back to the buffer. Renewed every batch, so it need outlast only one.
        lease_seconds=int(env.get("WA_LEASE_SECONDS", 90)),
        # How long a drain that caught up waits for more deliveries before it ends: under steady
        # traffic one job (and its connections) serves every delivery. 0 for a burst worker.
        drain_linger_seconds=float(env.get("WA_DRAIN_LINGER_SECONDS", 2)),
        # How often a worker looks for deliveries that wait with no drain job for them.
        watchdog_seconds=float(env.get("WA_WATCHDOG_SECONDS", 30)),
        # How long the ingest service waits for Redis to take a delivery before answering 503
        # (connecting gives up after 0.5 s). bench freshness at 1,494/s on 2 cores: 0.5 s gave
        # 285 spurious 503s, from threads waiting for the CPU, not from Redis (its slow log's
        # worst was 33 ms).
        redis_timeout_seconds=float(env.get("WA_REDIS_TIMEOUT", 2)),
        # Only for CRM numbers written without a country code; unset means "quarantine them".
        default_phone_region=env.get("WA_DEFAULT_PHONE_REGION") or None,
        # Opt-in: store a keyed hash of every number instead of the number (same key everywhere).
        phone_hash_key=env.get("WA_PHONE_HASH_KEY") or None,
        # How often `wa-analytics transform` runs an incremental dbt build of the marts.
        transform_interval_seconds=float(env.get("WA_TRANSFORM_INTERVAL", 30)),
        # How often the transform's round is a whole `dbt build`, with every test (selectors.yml:
        # scheduled_round, the tables only, is every other round).
        full_build_interval_seconds=float(env.get("WA_FULL_BUILD_INTERVAL", 3600)),
        # "json": one JSON object a line, for log collectors; anything else: plain text.
        log_format=env.get("WA_LOG_FORMAT", "text").strip().lower(),
    )
