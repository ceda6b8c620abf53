"""Settings, read once from the environment by the composition roots (web/app.py, cli.py).

Everything below the roots receives values, never reads the environment itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESKGATE_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///deskgate.db"
    """SQLAlchemy URL. `postgresql+psycopg://user:pass@host/db` for PostgreSQL."""

    database_pool_size: int = Field(default=10, ge=1, le=100)
    """PostgreSQL: connections each worker process keeps open. Every worker has its own pool, so
    a node holds up to workers x (pool size + overflow): keep that under max_connections (100)."""
    database_pool_max_overflow: int = Field(default=5, ge=0, le=100)
    """PostgreSQL: extra connections a worker may open under a burst."""

    base_url: str = "http://127.0.0.1:8000"
    """Public origin used to build every absolute URL (ACS, entity IDs, SCIM base URLs)."""

    secret_key: SecretStr | None = None
    """Signs CSRF tokens. When unset, generated once and kept in the database."""

    session_lifetime_hours: int = Field(default=12, ge=1, le=24 * 30)
    saml_clock_skew_seconds: int = Field(default=120, ge=0, le=600)
    allow_private_metadata_urls: bool = False
    """Lets a metadata URL point at loopback or private addresses (tests, intranet IdPs)."""

    login_failure_limit: int = Field(default=5, ge=1)
    """Failed password sign-ins allowed per email (and 4x that per IP) in the window."""
    login_failure_window_seconds: int = Field(default=900, ge=1)

    # Retention (services/retention.py), run by every node and by `deskgate retention run`.
    # Expired sessions, SAML requests, seen assertion IDs and throttle rows go as soon as they
    # can no longer matter; these keep what the admin reads.
    retention_login_attempts_days: int = Field(default=90, ge=1)
    retention_login_attempts_per_account: int = Field(default=10_000, ge=100)
    """Newest sign-in attempts kept per account, whatever their age."""
    retention_scim_request_log_days: int = Field(default=30, ge=1)
    retention_scim_request_log_per_account: int = Field(default=10_000, ge=100)
    retention_interval_seconds: int = Field(default=900, ge=1)
    retention_batch_size: int = Field(default=1000, ge=1, le=10_000)
    retention_events_days: int = Field(default=400, ge=1)
    """Events (audit log, GET /api/v1/events, webhooks) older than this are deleted."""
    """Rows deleted per transaction: SQLite's write lock is never held long."""

    # What one source IP may make the server write, per account, without signing in.
    sso_refusals_recorded_per_ip_per_minute: int = Field(default=10, ge=1)
    """ACS refusals recorded as rows; more are counted on the last row, not stored."""
    sso_pending_requests_per_ip: int = Field(default=50, ge=1)
    """Unanswered SP-initiated sign-ins; past this, /login/<idp> answers 429."""
    scim_unauthenticated_recorded_per_ip_per_minute: int = Field(default=10, ge=1)
    """SCIM 401s written to the request log; more from the same source are not recorded."""

    # Operations (README "Operations"). /metrics is off unless one of these is set.
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    """Serves /metrics on the app's own port to `Authorization: Bearer <token>` only."""
    metrics_bind: str | None = None
    """`host:port` where a separate listener serves /metrics, without a token (e.g. 127.0.0.1:9100)."""
    workers: int | None = Field(default=None, ge=1, le=256)
    """`deskgate serve` worker processes (`--workers` wins); default: one per CPU this process may use."""
    log_level: str = Field(default="info", pattern="(?i)^(debug|info|warning|error|critical)$")
    shutdown_grace_seconds: int = Field(default=30, ge=0, le=3600)
    """On SIGTERM, how long in-flight requests get to finish before connections are closed."""
    certificate_overlap_days: int = Field(default=14, ge=0, le=365)
    """How long an IdP certificate the metadata dropped, or the SP key a rollover retired, is
    still accepted (certificate lifecycle)."""

    # Webhooks (services/webhook_dispatch.py), sent by every `deskgate serve` worker.
    allow_private_webhook_urls: bool = False
    """Lets a webhook URL point at loopback or private addresses and use plain http (tests, an
    intranet receiver). Separate from metadata URLs: a webhook POSTs to wherever an admin says."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """A delivery that has no answer within this (in all) failed."""
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often an idle dispatcher looks for new events and due retries."""
    webhook_retry_schedule_seconds: str = "5,30,120,600,1800,3600,7200,14400,28800"
    """Waits after the 1st, 2nd, … failed attempt; the last one repeats."""
    webhook_retry_for_hours: float = Field(default=72.0, gt=0)
    """A delivery still failing this long after its first attempt is given up (failed)."""
    webhook_deliveries_retention_days: int = Field(default=30, ge=1)
    """Delivered and failed deliveries (and their attempts) are kept this long (delivery log)."""

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _delays(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",")]
        except ValueError:
            delays = []
        if not delays or any(not 0 < delay <= 86_400 for delay in delays):
            raise ValueError(
                "DESKGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS must be comma-separated seconds "
                f"(each above 0, at most 86400), not {value!r}"
            )
        return value

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.webhook_retry_schedule_seconds.split(","))

    @field_validator("metrics_bind")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"DESKGATE_METRICS_BIND must be host:port (e.g. 127.0.0.1:9100), not {value!r}"
            )
        return value

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        if self.metrics_bind is None:
            return None
        host, _, port = self.metrics_bind.rpartition(":")
        return host.strip("[]"), int(port)

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("DESKGATE_BASE_URL must start with http:// or https://")
        return value

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def certificate_overlap(self) -> dt.timedelta:
        return dt.timedelta(days=self.certificate_overlap_days)

    dns_resolver: str | None = None
    """`host:port` of the DNS server that domain verification asks (services/dns_txt.py);
    default: the first nameserver in /etc/resolv.conf, port 53."""

    @field_validator("dns_resolver")
    @classmethod
    def _resolver_host_and_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, _, port = value.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"DESKGATE_DNS_RESOLVER must be host:port (e.g. 127.0.0.1:53), not {value!r}"
            )
        return value


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `environ` (default: the process environment) plus overrides."""
    if environ is None:
        return Settings(**overrides)  # type: ignore[arg-type]
    prefixed = {
        key[len("DESKGATE_") :].lower(): value
        for key, value in environ.items()
        if key.startswith("DESKGATE_")
    }
    return Settings.model_validate({**prefixed, **overrides})
