"""Typed settings: explicit argument, then environment variable (or `.env`), then a default."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from evalfleet.schema.errors import ConfigurationError

DEFAULT_SQLITE_FILE = "evalfleet.db"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "simulator"}


class Settings(BaseSettings):
    """Everything a producer or worker needs to reach the database, the broker and the API."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, alias="EVALFLEET_DATABASE_URL")
    broker_url: str | None = Field(default=None, alias="EVALFLEET_BROKER_URL")
    queue: str = Field(default="evalfleet", alias="EVALFLEET_QUEUE")
    together_api_key: SecretStr | None = Field(default=None, alias="TOGETHER_API_KEY")
    together_base_url: str | None = Field(default=None, alias="TOGETHER_BASE_URL")
    # The counts of the retry layers; workers/retry_policy.py says which layer retries which
    # failure, and with what delay (docs/architecture.md, "Retry policy").
    api_max_retries: int = Field(default=0, alias="EVALFLEET_API_MAX_RETRIES")
    request_attempts: int = Field(default=4, alias="EVALFLEET_REQUEST_ATTEMPTS")
    api_timeout_s: float = Field(default=60.0, alias="EVALFLEET_API_TIMEOUT_S")
    task_max_retries: int = Field(default=5, alias="EVALFLEET_TASK_MAX_RETRIES")
    # Deliveries of one item (counted in SQL) before it is failed as a poison message.
    max_attempts: int = Field(default=8, alias="EVALFLEET_MAX_ATTEMPTS")
    task_time_limit_s: int = Field(default=600, alias="EVALFLEET_TASK_TIME_LIMIT_S")
    visibility_timeout_s: int = Field(default=900, alias="EVALFLEET_VISIBILITY_TIMEOUT_S")
    # Seconds between sweeps that re-send items Redis lost (one worker sweeps per interval).
    sweep_interval_s: float = Field(default=30.0, alias="EVALFLEET_SWEEP_INTERVAL_S")
    # Where the adaptive limiter starts for a (base URL, model) it has not seen in the last
    # hour; it learns the real limit from 429s (measured: starting 5x over a 600/min limit
    # costs about 1% of requests as 429s).
    initial_rpm: float = Field(default=3000.0, alias="EVALFLEET_INITIAL_RPM")
    prices_file: str | None = Field(default=None, alias="EVALFLEET_PRICES")
    lease_s: float = Field(default=180.0, alias="EVALFLEET_LEASE_S")
    # Short items go several to a message until they hold this many questions (1: one item
    # per message; producer/enqueue.py, group_items).
    questions_per_message: int = Field(default=15, alias="EVALFLEET_QUESTIONS_PER_MESSAGE", ge=1)
    worker_concurrency: int = Field(default=8, alias="EVALFLEET_WORKER_CONCURRENCY")
    # Batch mode (docs/architecture.md, D10): how often a batch is polled (Together asks for
    # 30-60 s), and the provider's limits per batch file (Together: 50,000 requests, 100 MB).
    batch_poll_s: float = Field(default=30.0, alias="EVALFLEET_BATCH_POLL_S")
    batch_max_requests: int = Field(default=50_000, alias="EVALFLEET_BATCH_MAX_REQUESTS", ge=1)
    batch_max_bytes: int = Field(default=100_000_000, alias="EVALFLEET_BATCH_MAX_BYTES", ge=1)
    # A worker's Prometheus /metrics port (`evalfleet worker --metrics-port`); None: off, so
    # several workers on one host do not collide.
    metrics_port: int | None = Field(default=None, alias="EVALFLEET_METRICS_PORT")
    # Celery's task events (sent, received, started, succeeded: what Flower's tasks page
    # shows), off as in Celery: three Redis publishes per message that only Flower reads.
    # Flower turns workers' task events on itself (its enable_events broadcast, every 5 s);
    # on from a worker's first task with this or `evalfleet worker --events`.
    task_events: bool = Field(default=False, alias="EVALFLEET_TASK_EVENTS")

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded default: a SQLite file in the working directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"

    def api_key_for(self, base_url: str | None) -> str:
        """The API key, or a placeholder for a local server; a missing key elsewhere is an error."""
        if self.together_api_key is not None and self.together_api_key.get_secret_value():
            return self.together_api_key.get_secret_value()
        if base_url and is_local_url(base_url):
            return "local-no-key"
        raise ConfigurationError(
            "TOGETHER_API_KEY is not set: set it in the environment or in .env "
            "(only a local TOGETHER_BASE_URL such as http://127.0.0.1:8000 works without a key)"
        )


def is_local_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def validate_base_url(base_url: str) -> str:
    """The together 3.x SDK appends /v1/chat/completions itself: refuse a URL ending in /v1."""
    cleaned = base_url.rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"TOGETHER_BASE_URL {base_url!r} is not an http(s) URL")
    if cleaned.endswith("/v1"):
        raise ConfigurationError(
            f"TOGETHER_BASE_URL {base_url!r} ends with /v1: give the host only "
            f"({cleaned[: -len('/v1')]}); the client appends /v1/chat/completions"
        )
    return cleaned


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
