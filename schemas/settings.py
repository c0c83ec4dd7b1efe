"""Typed runtime settings read from LOOPTRACK_* environment variables (SPEC §3)."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ByteSize, Field, field_validator, model_validator
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

    database_url: str = Field(
        default="postgresql:///looptrack",
        description="The PostgreSQL database (libpq URL; the default is the local socket).",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="The broker: `mqtt://` or `mqtts://` (TLS); user and password may be in "
        "the URL.",
    )
    public_base_url: str = Field(
        default="http://localhost:8000",
        description="The host printed into QR codes (GS1 Digital Link) and resolver links.",
    )
    timezone: str = Field(
        default="UTC",
        description="Default zone of day, week and month buckets (an IANA name such as "
        "Europe/Oslo), and the zone the day rollups are kept in.",
    )
    topic_root: str = Field(
        default="looptrack/v1",
        description="The topic prefix: devices publish on {root}/devices/{id}/events.",
    )
    mqtt_group: str = Field(
        default="looptrack", description="The ingest workers' shared-subscription group."
    )
    ingest_client_id: str = Field(
        default_factory=lambda: f"looptrack-ingest-{socket.gethostname()}",
        description="The worker's MQTT client id: stable per worker, so the broker keeps its "
        "session and queue while it is down.",
        json_schema_extra={"default_shown": "looptrack-ingest-<hostname>"},
    )
    mqtt_session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        description="How long the broker keeps a disconnected worker's session and queue (s).",
    )
    ingest_drain_timeout_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long the worker keeps retrying against a down database "
        "for the batches it holds before exiting without acknowledging them (the broker "
        "redelivers them) (s). Keep it under the orchestrator's grace period.",
    )
    ingest_receipts: bool = Field(
        default=True,
        description="Publish a receipt to each device after every commit "
        "({root}/devices/{id}/receipts), so devices keep events until they are stored. "
        "Off only to measure what receipts cost.",
    )
    timescaledb: str = Field(
        default="auto",
        description="`auto` uses TimescaleDB when the extension can be created, `off` never.",
    )
    db_create: bool = Field(
        default=True, description="Whether `looptrack db migrate` may create a missing database."
    )
    broker_password_file: Path | None = Field(
        default=None,
        description="The broker's password file, rewritten by `looptrack devices add/revoke` "
        "and `looptrack broker …`; unset: the commands leave the broker's files alone.",
    )
    broker_acl_file: Path | None = Field(
        default=None, description="The broker's ACL file, rewritten like the password file."
    )
    broker_pid_file: Path | None = Field(
        default=None,
        description="Mosquitto's pid_file: when set, the broker is sent SIGHUP to read the "
        "files again.",
    )
    mqtt_ca_file: Path | None = Field(
        default=None,
        description="For `mqtts://`: the CA that signed the broker's certificate (unset: the "
        "system's trust store).",
    )
    mqtt_cert_file: Path | None = Field(
        default=None,
        description="For `mqtts://`: a client certificate, when the broker asks for one.",
    )
    mqtt_key_file: Path | None = Field(
        default=None, description="The client certificate's key (the same file may hold both)."
    )
    labels_max_count: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most labels (items) one request or command may commission.",
    )
    labels_cache_size: ByteSize = Field(
        default=ByteSize(128 * 2**20),
        ge=0,
        description="Rendered label files each API process keeps for downloads of the same "
        "batch, format and layout again (bytes, or with a unit: `512MiB`; a file above a "
        "fifth of it is not kept; 0: none) (docs/labels.md).",
        json_schema_extra={"default_shown": "128MiB"},
    )
    stats_timeout_ms: int = Field(
        default=5_000,
        ge=0,
        le=600_000,
        description="Longest a statistics statement may add up hourly or 15-minute counts "
        "(windows other than whole days of the rollup zone) before the request is a 422 "
        "naming the windows answered fast (ms); 0: no limit (docs/statistics.md).",
    )
    retention_days: int = Field(
        default=1827,
        ge=1,
        le=36_525,
        description="How long raw events, their ids, the quarter-hour rollups, dead letters "
        "and seq gaps are kept (days; 1827: five years with their leap days). Older events "
        "are refused as clock_skew. The same value for every process "
        "(docs/operations.md, Retention).",
    )

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


def settings_table() -> str:
    """The settings as the Markdown table in README.md (`python -m schemas.settings`
    prints it; a test keeps the README's copy equal to it)."""
    rows = ["| variable | default | what |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "default_shown" in extra:
            default = f"`{extra['default_shown']}`"
        elif field.default is None:
            default = "unset"
        elif isinstance(field.default, bool):
            default = f"`{str(field.default).lower()}`"
        else:
            default = f"`{field.default}`"
        rows.append(f"| `LOOPTRACK_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
