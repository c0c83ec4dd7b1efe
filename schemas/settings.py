"""Typed runtime settings read from LOOPTRACK_* environment variables (SPEC §3)."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def tls_files_problem(
    tls: bool,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    names: tuple[str, str, str] = ("ca_file", "cert_file", "key_file"),
) -> str | None:
    """Why these TLS files cannot be used for a connection, or None when they can: every
    file given must exist, a client certificate needs its key (and the key its
    certificate), and files make sense only for `mqtts://`. `names` name the three
    settings in the message."""
    given = dict(zip(names, (ca_file, cert_file, key_file), strict=True))
    for name, path in given.items():
        if path is not None and not path.is_file():
            return f"{name}: {str(path)!r} does not exist or is not a file"
    _, cert_name, key_name = names
    if (cert_file is None) != (key_file is None):
        return (
            f"{cert_name} and {key_name} go together: a client certificate needs its key "
            "(give the same file twice when one PEM file holds both)"
        )
    unused = [name for name, path in given.items() if path is not None]
    if not tls and unused:
        return f"{', '.join(unused)} set, but the broker URL is not mqtts:// (TLS)"
    return None


class MqttEndpoint(BaseModel):
    """Where and how to reach the broker: `LOOPTRACK_MQTT_URL` with, for `mqtts://`, the
    CA to trust (None: the system's trust store) and an optional client certificate."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _tls_files_usable(self) -> MqttEndpoint:
        problem = tls_files_problem(self.tls, self.ca_file, self.cert_file, self.key_file)
        if problem:
            raise ValueError(problem)
        return self


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """`mqtt://[user:password@]host[:port]` (or `mqtts://` for TLS) as an endpoint, with
    credentials percent-decoded; ValueError for another scheme."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, not {url!r}")
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


# The TLS file settings by their environment names, for messages an operator can act on.
ENV_TLS_FILES = ("LOOPTRACK_MQTT_CA_FILE", "LOOPTRACK_MQTT_CERT_FILE", "LOOPTRACK_MQTT_KEY_FILE")


class Settings(BaseSettings):
    """Every setting has a default that works with a local PostgreSQL and Mosquitto."""

    # Errors name the setting but never echo the input: URLs carry passwords.
    model_config = SettingsConfigDict(
        env_prefix="LOOPTRACK_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "postgresql:///looptrack"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    public_base_url: str = "http://localhost:8000"
    timezone: str = "UTC"
    topic_root: str = "looptrack/v1"
    mqtt_group: str = "looptrack"
    # Stable per worker so the broker keeps its session (and queued messages) across restarts.
    ingest_client_id: str = Field(
        default_factory=lambda: f"looptrack-ingest-{socket.gethostname()}"
    )
    # How long the broker keeps a disconnected worker's session and queue (s); 7 days.
    mqtt_session_expiry_s: int = 7 * 24 * 3600
    # On SIGTERM, how long the ingest worker keeps retrying against a down database, for
    # all the batches it still holds, before exiting without acknowledging them (the broker
    # redelivers them later) (s). Keep it under the orchestrator's grace period.
    ingest_drain_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    # Publish a receipt to each device after every commit ({root}/devices/{id}/receipts),
    # so devices keep events until they are stored. Off only to measure what they cost.
    ingest_receipts: bool = True
    # `auto` uses TimescaleDB when the extension can be created, `off` never does.
    timescaledb: str = "auto"
    # Whether `db migrate` may create a missing database.
    db_create: bool = True
    # The broker's password and ACL files, rewritten by `looptrack devices add/revoke` and
    # `looptrack broker ...`; unset: the commands leave the broker's files alone.
    broker_password_file: Path | None = None
    broker_acl_file: Path | None = None
    # Mosquitto's pid_file: when set, it is sent SIGHUP to reload the files.
    broker_pid_file: Path | None = None
    # For `mqtts://`: the CA that signed the broker's certificate (unset: the system's
    # trust store), and a client certificate with its key when the broker asks for one.
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    # Most labels (items) one request or command may commission.
    labels_max_count: int = Field(default=10_000, ge=1, le=1_000_000)
    # Longest a statistics statement may run when it adds up hourly or 15-minute counts
    # (windows other than whole days of the rollup zone) before the request is refused
    # with a 422 naming the windows answered fast (ms); 0: no limit.
    stats_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)
    # How long raw events, their idempotency keys, the quarter-hour rollups and dead letters
    # are kept (days; 1827: 5 years with their leap days). Events older than this are
    # refused as clock_skew, so a pruned event cannot be stored again. The same value for
    # every process: docs/operations.md, Retention.
    retention_days: int = Field(default=1827, ge=1, le=36_525)

    @field_validator("topic_root")
    @classmethod
    def _topic_root_has_no_wildcards(cls, value: str) -> str:
        if (
            not value
            or any(c in value for c in "+#")
            or value.startswith("/")
            or value.endswith("/")
        ):
            raise ValueError("topic_root must be a plain topic prefix such as 'looptrack/v1'")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as Europe/Oslo)"
            ) from None
        return value

    @field_validator("timescaledb")
    @classmethod
    def _timescaledb_mode(cls, value: str) -> str:
        if value not in ("auto", "off"):
            raise ValueError("timescaledb must be 'auto' or 'off'")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("mqtt", "mqtts"):
            raise ValueError("mqtt_url must start with mqtt:// or mqtts://")
        return value

    @model_validator(mode="after")
    def _mqtt_tls_files_usable(self) -> Settings:
        problem = tls_files_problem(
            urlsplit(self.mqtt_url).scheme == "mqtts",
            self.mqtt_ca_file,
            self.mqtt_cert_file,
            self.mqtt_key_file,
            names=ENV_TLS_FILES,
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker endpoint, with credentials percent-decoded and the TLS files."""
        return parse_mqtt_url(self.mqtt_url).model_copy(
            update={
                "ca_file": self.mqtt_ca_file,
                "cert_file": self.mqtt_cert_file,
                "key_file": self.mqtt_key_file,
            }
        )

    def events_topic(self, device_id: str) -> str:
        """The topic a device publishes its events on."""
        return f"{self.topic_root}/devices/{device_id}/events"

    def status_topic(self, device_id: str) -> str:
        """The topic carrying a device's retained online/offline status."""
        return f"{self.topic_root}/devices/{device_id}/status"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
