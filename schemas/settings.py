"""Typed runtime settings read from LOOPTRACK_* environment variables (SPEC §3)."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MqttEndpoint(BaseModel):
    """Where and how to reach the broker, parsed from `LOOPTRACK_MQTT_URL`."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


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


class Settings(BaseSettings):
    """Every setting has a default that works with a local PostgreSQL and Mosquitto."""

    model_config = SettingsConfigDict(env_prefix="LOOPTRACK_", env_file=".env", extra="ignore")

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
    # Most labels (items) one request or command may commission.
    labels_max_count: int = Field(default=10_000, ge=1, le=1_000_000)

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

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker endpoint, with credentials percent-decoded."""
        return parse_mqtt_url(self.mqtt_url)

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
