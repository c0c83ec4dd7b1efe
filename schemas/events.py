"""Scan events as devices send them (SPEC §5): event types, limits and the pydantic models."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError, to_json

from schemas.digital_link import (
    SERIAL_MAX_LENGTH,
    SERIAL_PATTERN,
    InvalidCode,
    InvalidSerial,
    parse_code,
    validate_serial,
)
from schemas.grai import (
    GRAI_PATTERN,
    GRAI_SERIAL_MAX_LENGTH,
    InvalidGrai,
    asset_type_of,
    check_grai_serial,
    grai_item_class,
    is_grai_class,
    parse_grai,
    validate_asset_type,
)
from schemas.gtin import InvalidGtin, normalize_gtin, shown
from schemas.settings import get_settings


class EventType(StrEnum):
    """What happened to a package (SPEC §4)."""

    COMMISSIONED = "commissioned"
    FILLED = "filled"
    SOLD = "sold"
    RETURNED = "returned"
    REJECTED = "rejected"
    SORTED = "sorted"
    WASHED = "washed"
    RECYCLED = "recycled"
    RETIRED = "retired"


# For the checks run on every event: `EventType.SORTED` is a look-up through the enum's
# metaclass (55 ns, several per event).
_REJECTED, _SORTED = EventType.REJECTED, EventType.SORTED


class RejectReason(StrEnum):
    """Why a return point refused a package (the `reason` of a `rejected` event)."""

    UNREADABLE = "unreadable"
    UNKNOWN_PRODUCT = "unknown_product"
    DAMAGED = "damaged"
    NOT_EMPTY = "not_empty"
    DUPLICATE = "duplicate"
    OTHER = "other"


MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest MQTT/HTTP payload accepted (bytes)."""
MAX_BATCH_EVENTS = 1000
"""Most events in one {"events": [...]} payload."""
MAX_ATTRS_BYTES = 4096
"""Largest `attrs`, measured as compact UTF-8 JSON (bytes)."""
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far an event's `ts` may lie ahead of the receiver's clock."""
EARLIEST_TS_TEXT = "2000-01-01T00:00:00Z"
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
"""The earliest `ts` accepted (SPEC §5): an older clock is unset or broken, and bounding
the past keeps every later step (UTC conversion, epoch seconds, buckets) in range."""
RETENTION_SETTING = "LOOPTRACK_RETENTION_DAYS"
MAX_QTY = 1_000_000
"""Largest `qty` of one event (items)."""
MAX_SEQ = 2**63 - 1
"""Largest `seq`: it is stored as a PostgreSQL bigint."""
MAX_CODE_LENGTH = 2048
"""Longest scanned `code` (characters); Digital Link URIs in QR codes are far shorter."""
MAX_GRAI_LENGTH = 30
"""Longest `grai`: a 14-digit asset type and a serial of up to 16 characters."""
MAX_WEIGHT_G = 100_000_000
"""Heaviest measured `weight_g` of one sorted event (grams): 100 t, more than a truckload."""

STREAM_REUSE = "reuse"
STREAM_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
"""A sorted event's `stream`: "reuse" or a material stream name such as "PET" or "pet-clear"."""
GTIN_PATTERN = r"^([0-9]{8}|[0-9]{12,14})$"
"""GTIN-8, -12, -13 or -14 digits; the check digit is verified on top of this."""
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
"""RFC 3339 date-time with its mandatory UTC offset."""

# The same date-time shape with the offset optional, so a missing offset can be reported
# as naive_timestamp rather than as a generic format error.
_timestamp_match = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
).fullmatch

# The usual timestamps, each digit written as 0: an ASCII text whose digits-as-0 form is
# one of these matches TIMESTAMP_PATTERN (with an upper-case T or a space, and Z or a
# numeric offset), which this look-up tells in a third of the regex's time; any other text
# goes to the regex, whose verdict and messages stand (tests/schemas/test_events.py checks
# that the look-up accepts nothing the regex refuses).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_USUAL_TIMESTAMP_SHAPES = frozenset(
    f"0000-00-00{separator}00:00:00{fraction}{offset}".encode()
    for separator in "T "
    for fraction in ("", *("." + "0" * digits for digits in range(1, 10)))
    for offset in ("Z", "+00:00", "-00:00")
)


def is_usual_timestamp(value: str) -> bool:
    """True when `value` is an RFC 3339 date-time that datetime.fromisoformat reads as it
    is (upper-case T or a space, Z or a numeric offset); fast, for every ingested event."""
    return value.isascii() and value.encode().translate(_DIGITS_AS_ZERO) in _USUAL_TIMESTAMP_SHAPES


CONTEXT_NOW = "now"
"""Validation-context key: the receiver's clock (aware datetime) for the skew check."""
CONTEXT_TOPIC_DEVICE_ID = "topic_device_id"
"""Validation-context key: the device id taken from the MQTT topic or HTTP path."""


# Derived from CONTEXT_NOW once per message instead of once per event.
_CONTEXT_LATEST_TS = "latest_ts"
_CONTEXT_OLDEST_TS = "oldest_ts"
_CONTEXT_RETENTION = "retention"


def configured_retention() -> timedelta:
    """How long the database keeps events: LOOPTRACK_RETENTION_DAYS."""
    return timedelta(days=get_settings().retention_days)


def oldest_accepted(now: datetime, retention: timedelta) -> datetime:
    """The oldest `ts` accepted when received at `now`. The database keeps `retention` of
    events and their ids (schemas.retention prunes only well behind this bound), so an
    older event could be one already stored and pruned: it is refused rather than stored
    a second time."""
    return max(EARLIEST_TS, now - retention)


def validation_context(
    topic_device_id: str | None, now: datetime, retention: timedelta | None = None
) -> dict[str, Any]:
    """Return the pydantic validation context that Event's checks read.

    `now` is the receiver's clock and must be timezone-aware; `retention` is how far back
    from it `ts` may lie (default: configured_retention()).
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    kept = configured_retention() if retention is None else retention
    return {
        CONTEXT_NOW: now,
        CONTEXT_TOPIC_DEVICE_ID: topic_device_id,
        _CONTEXT_LATEST_TS: now + MAX_CLOCK_SKEW,
        _CONTEXT_OLDEST_TS: oldest_accepted(now, kept),
        _CONTEXT_RETENTION: kept,
    }


def _error(error_type: str, detail: str) -> PydanticCustomError:
    # The detail goes through the context so braces in user input are never read as
    # template placeholders.
    return PydanticCustomError(error_type, "{detail}", {"detail": detail})


def _describe_skew(ahead: timedelta) -> str:
    seconds = int(ahead.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s"


def _event_schema_rules(schema: JsonDict) -> None:
    """Add the cross-field rules to Event's JSON Schema, for device makers without Python."""
    schema["description"] = (
        "One event: something that happened to a package (identified by `gtin` and "
        "optional `serial`, by a returnable asset's `grai`, or by a scanned `code`) at the "
        "publishing device at time `ts`."
    )
    # gtin (Event.item_class) is a required field in Python (filled from `code` or `grai`
    # during validation), but on the wire one of `gtin`, `grai` or `code` is required.
    schema["required"] = ["event_id", "ts", "type"]
    string_code: JsonDict = {"required": ["code"], "properties": {"code": {"type": "string"}}}
    string_grai: JsonDict = {"required": ["grai"], "properties": {"grai": {"type": "string"}}}
    string_serial: JsonDict = {
        "required": ["serial"],
        "properties": {"serial": {"type": "string"}},
    }
    null: JsonDict = {"type": "null"}
    not_null: JsonDict = {"not": {"type": "null"}}
    schema["allOf"] = [
        {"oneOf": [{"required": ["gtin"]}, string_code, string_grai]},
        {"if": string_code, "then": {"properties": {"serial": null}}},
        {"if": string_grai, "then": {"properties": {"serial": null}}},
        {"if": string_serial, "then": {"properties": {"qty": {"const": 1}}}},
        {
            "if": {"properties": {"type": {"const": EventType.REJECTED.value}}},
            "then": {"required": ["reason"], "properties": {"reason": not_null}},
            "else": {"properties": {"reason": null}},
        },
        {
            "if": {"properties": {"type": {"const": EventType.SORTED.value}}},
            "then": {"required": ["stream"], "properties": {"stream": not_null}},
            "else": {"properties": {"stream": null, "weight_g": null}},
        },
    ]


class Event(BaseModel):
    """One thing that happened to a package at a device at a time.

    Validation needs the context of `validation_context()`: the receiver's clock for the
    skew check (datetime.now(UTC) when absent) and the topic's device id (no device check
    when absent). `code` and `grai` are input alternatives to `gtin`/`serial`: validation
    fills those from them and keeps the raw text, which is left out of dumps so that a
    dumped event validates again. `item_class` is the wire's `gtin` (its alias, both ways:
    the payload, a dump, the JSON Schema and error locations say `gtin`): a GTIN-14, or for
    a GRAI-keyed event "8003" and the GRAI's asset type (schemas.grai), with the GRAI's
    serial in `serial`.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="Event",
        json_schema_extra=_event_schema_rules,
        # Dumps say `gtin`, as the wire does; the name `item_class` is not accepted as
        # input (validate_by_name stays off), so the payload's fields are unchanged.
        serialize_by_alias=True,
    )

    event_id: UUID = Field(
        description="Unique id chosen by the device; the idempotency key (a resent event "
        "with the same id is stored once). Any UUID; version 7 (RFC 9562, time-ordered) "
        "recommended: the receiver's index of stored ids then takes new ids at one end, "
        "where random ids (version 4) land anywhere in it, which slows ingest once that "
        "index outgrows the database's memory.",
    )
    ts: datetime = Field(
        description="When it happened: RFC 3339 date-time with a UTC offset ('Z' or "
        "±hh:mm; without one the event is dead-lettered as naive_timestamp). At most "
        f"{int(MAX_CLOCK_SKEW.total_seconds()) // 60} minutes ahead of the receiver's "
        "clock, not before "
        f"{EARLIEST_TS_TEXT} and not older than the deployment keeps events "
        f"({RETENTION_SETTING}, 5 years by default) (else clock_skew).",
        json_schema_extra={
            "pattern": TIMESTAMP_PATTERN,
            "examples": ["2025-06-01T12:30:00Z", "2025-06-01T14:30:00.250+02:00"],
        },
    )
    type: EventType = Field(description="What happened to the package.")
    item_class: str = Field(
        alias="gtin",
        description="GTIN-8, GTIN-12, GTIN-13 or GTIN-14 digits; stored left-padded with "
        "zeros to 14 digits. The GS1 mod-10 check digit must hold (else invalid_gtin). "
        "Required unless `code` or `grai` is given.",
        json_schema_extra={"pattern": GTIN_PATTERN, "examples": ["4006381333931"]},
    )
    serial: str | None = Field(
        default=None,
        description=f"Serial number of one item: 1 to {SERIAL_MAX_LENGTH} characters of the "
        "GS1 AI (21) character set 82: A-Z a-z 0-9 ! \" % & ' ( ) * + , - . / : ; < = > ? _ "
        "(else invalid_serial). Not allowed together with `code` or `grai`.",
        json_schema_extra={"pattern": SERIAL_PATTERN},
    )
    code: str | None = Field(
        default=None,
        exclude=True,
        max_length=MAX_CODE_LENGTH,
        description="Instead of `gtin`/`serial`: the raw scanned text, either bare GTIN "
        "digits or a GS1 Digital Link URI such as "
        "https://example.com/01/04006381333931/21/ABC123 (any host and path prefix; "
        "further AIs like /10/{lot} and the query string are ignored; the serial is "
        "percent-decoded), or a returnable asset's GRAI as https://example.com/8003/"
        "{grai}. Unparseable text is dead-lettered as invalid_code.",
    )
    grai: str | None = Field(
        default=None,
        exclude=True,
        max_length=MAX_GRAI_LENGTH,
        description="Instead of `gtin`/`serial`, for a returnable asset (crate, pallet): "
        "its GRAI (GS1 AI 8003), a 14-digit asset type (a padding 0, 12 digits, the mod-10 "
        f"check digit) and an optional serial of up to {GRAI_SERIAL_MAX_LENGTH} characters "
        "of set 82 (else invalid_grai).",
        json_schema_extra={"pattern": GRAI_PATTERN, "examples": ["0703801000001212345"]},
    )
    qty: int = Field(
        default=1,
        ge=1,
        le=MAX_QTY,
        strict=True,
        description="Number of packages this event counts; must be 1 when a serial is "
        "given (directly or in `code`).",
    )
    seq: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEQ,
        strict=True,
        description="Optional per-device counter; gaps are reported per device.",
    )
    reason: RejectReason | None = Field(
        default=None,
        description="Why the package was refused: required for type `rejected`, not "
        "allowed otherwise.",
    )
    stream: str | None = Field(
        default=None,
        pattern=STREAM_PATTERN,
        description="Where the package was sorted to: `reuse` or a material stream name "
        "(1 to 40 of a-z 0-9 _ -). Required for type `sorted`, not allowed otherwise.",
    )
    weight_g: float | None = Field(
        default=None,
        gt=0,
        le=MAX_WEIGHT_G,
        strict=True,
        allow_inf_nan=False,
        description="Measured weight of all `qty` packages in grams (a sorting site's "
        f"scale), > 0 and at most {MAX_WEIGHT_G:,}; only with type `sorted`. Without it, "
        "material statistics count qty times the packaging's nominal weight.",
    )
    attrs: dict[str, Any] | None = Field(
        default=None,
        description=f"Optional extra data (weight_g, fill level…); at most {MAX_ATTRS_BYTES} "
        "bytes as compact UTF-8 JSON.",
    )
    device_id: str | None = Field(
        default=None,
        description="Optional; when given it must equal the device id of the MQTT topic "
        "(or HTTP path) the event arrived on (else device_mismatch).",
    )

    @model_validator(mode="before")
    @classmethod
    def _key_from_code(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        grai = data.get("grai")
        if isinstance(grai, str) and len(grai) <= MAX_GRAI_LENGTH:
            if "gtin" in data or data.get("serial") is not None or "code" in data:
                raise _error("code_with_key", "give one of grai, code or gtin/serial")
            try:
                asset_type, serial = parse_grai(grai)
            except InvalidGrai as exc:
                raise _error("invalid_grai", str(exc)) from None
            return {**data, "gtin": grai_item_class(asset_type), "serial": serial}
        code = data.get("code")
        if code is None or not isinstance(code, str):
            # Without a code a missing gtin is reported with the other field errors; a
            # code of the wrong type is reported by the field's own type check.
            return data
        if len(code) > MAX_CODE_LENGTH:
            raise _error("invalid_code", f"code: {len(code)} characters, at most {MAX_CODE_LENGTH}")
        if "gtin" in data or data.get("serial") is not None:
            raise _error("code_with_key", "give either code or gtin/serial, not both")
        try:
            gtin, serial = parse_code(code)
        except InvalidGtin as exc:
            raise _error("invalid_gtin", str(exc)) from None
        except InvalidSerial as exc:
            raise _error("invalid_serial", str(exc)) from None
        except InvalidGrai as exc:
            raise _error("invalid_grai", str(exc)) from None
        except InvalidCode as exc:
            raise _error("invalid_code", str(exc)) from None
        return {**data, "gtin": gtin, "serial": serial}

    @field_validator("ts", mode="before")
    @classmethod
    def _ts_checked(cls, value: Any, info: ValidationInfo) -> datetime:
        # Parsed here rather than by pydantic, which also takes unix seconds and dates
        # alone; datetime.fromisoformat (C) gives a tzinfo that compares fast, which
        # matters at tens of thousands of events per second.
        if isinstance(value, str):
            text = value
            if not is_usual_timestamp(value):
                match = _timestamp_match(value)
                if match is None:
                    raise _error(
                        "timestamp_format",
                        f"ts {shown(value)}: not an RFC 3339 date-time (e.g. 2025-06-01T12:30:00Z)",
                    )
                if match.group(1) is None:
                    raise _error(
                        "naive_timestamp", f"ts {shown(value)}: no UTC offset; add 'Z' or ±hh:mm"
                    )
                text = value.upper()  # 3.11 rejects a lowercase t/z
            try:
                ts = datetime.fromisoformat(text)
            except ValueError as exc:  # well-formed but impossible, e.g. February 30
                raise _error("timestamp_format", f"ts {shown(value)}: {exc}") from None
        elif isinstance(value, datetime):
            if value.utcoffset() is None:
                raise _error("naive_timestamp", f"ts {value.isoformat()}: no UTC offset")
            ts = value
        else:
            raise _error("timestamp_type", "ts must be an RFC 3339 date-time string")
        context = info.context or {}
        latest, oldest = context.get(_CONTEXT_LATEST_TS), context.get(_CONTEXT_OLDEST_TS)
        if latest is None or oldest is None:
            context = validation_context(None, context.get(CONTEXT_NOW) or datetime.now(UTC))
            latest, oldest = context[_CONTEXT_LATEST_TS], context[_CONTEXT_OLDEST_TS]
        if ts < oldest:  # never before EARLIEST_TS (oldest_accepted)
            if ts < EARLIEST_TS:
                raise _error(
                    "clock_skew",
                    f"ts {ts.isoformat()}: before {EARLIEST_TS_TEXT}, the earliest time "
                    "accepted (is the device's clock set?)",
                )
            raise _error(
                "clock_skew",
                f"ts {ts.isoformat()}: before {oldest.isoformat()}, the oldest time accepted: "
                f"events are kept {context[_CONTEXT_RETENTION].days} days "
                f"({RETENTION_SETTING}) and an older one may have been stored and pruned",
            )
        if ts > latest:
            now = latest - MAX_CLOCK_SKEW
            raise _error(
                "clock_skew",
                f"ts {ts.isoformat()}: {_describe_skew(ts - now)} ahead of the receiver's "
                f"clock {now.isoformat()}, at most {_describe_skew(MAX_CLOCK_SKEW)} allowed",
            )
        return ts

    @field_validator("item_class")
    @classmethod
    def _item_class_normalized(cls, value: str) -> str:
        try:
            if is_grai_class(value) and value.startswith("8003"):
                # The item class a `grai` or `code` gave, as in a dumped event.
                validate_asset_type(asset_type_of(value))
                return value
            return normalize_gtin(value)
        except InvalidGtin as exc:
            raise _error("invalid_gtin", str(exc)) from None
        except InvalidGrai as exc:
            raise _error("invalid_grai", str(exc)) from None

    @field_validator("serial")
    @classmethod
    def _serial_valid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_serial(value)
        except InvalidSerial as exc:
            raise _error("invalid_serial", str(exc)) from None

    @field_validator("attrs")
    @classmethod
    def _attrs_bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Typed Any rather than JsonValue: JsonValue validates every nested value through a
        # Python callback (3x the cost of a whole event), and decoded JSON needs no check.
        # Serialising here still refuses what cannot be written as JSON.
        if value is not None:
            encoded = to_json(value)
            if len(encoded) > MAX_ATTRS_BYTES:
                raise _error(
                    "attrs_too_large",
                    f"attrs: {len(encoded)} bytes as JSON, at most {MAX_ATTRS_BYTES}",
                )
            # Valid JSON, but PostgreSQL's jsonb cannot hold a NUL character.
            if b"\\u0000" in encoded:
                raise _error("attrs_nul", "attrs: contains a NUL character (\\u0000)")
            # A number past the float range (1e400) decodes as infinity, which jsonb
            # cannot hold either; the text test keeps the walk off the usual path.
            if (b"Infinity" in encoded or b"NaN" in encoded) and (where := _non_finite(value)):
                raise _error(
                    "attrs_number",
                    f"attrs.{where}: number outside the range of a double (±1.7e308)",
                )
        return value

    @field_validator("device_id")
    @classmethod
    def _device_matches_topic(cls, value: str | None, info: ValidationInfo) -> str | None:
        topic_device_id = info.context.get(CONTEXT_TOPIC_DEVICE_ID) if info.context else None
        if value is not None and topic_device_id is not None and value != topic_device_id:
            raise _error(
                "device_mismatch",
                f"device_id {shown(value)} in the payload, but the topic is for "
                f"{shown(topic_device_id)}",
            )
        return value

    @model_validator(mode="after")
    def _type_rules(self) -> Event:
        type_, reason, stream = self.type, self.reason, self.stream
        if self.serial is not None:
            if self.qty != 1:
                raise _error("event_rule", f"qty {self.qty}: must be 1 for a serialised item")
            if is_grai_class(self.item_class):
                try:
                    check_grai_serial(self.serial)
                except InvalidGrai as exc:
                    raise _error("invalid_grai", str(exc)) from None
        if (reason is None) == (type_ is _REJECTED):
            raise _error(
                "event_rule",
                "reason is required for type rejected"
                if reason is None
                else f"reason is only allowed with type rejected, not {type_}",
            )
        if (stream is None) == (type_ is _SORTED):
            raise _error(
                "event_rule",
                "stream is required for type sorted"
                if stream is None
                else f"stream is only allowed with type sorted, not {type_}",
            )
        if self.weight_g is not None and type_ is not _SORTED:
            raise _error("event_rule", f"weight_g is only allowed with type sorted, not {type_}")
        return self


def _non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first infinite or NaN number in decoded JSON `value`, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


class EventBatch(BaseModel):
    """Several events in one payload."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="EventBatch")

    events: list[Event] = Field(
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        description=f"1 to {MAX_BATCH_EVENTS} events. Each is checked on its own: a bad "
        "event is dead-lettered with its index, the others are stored.",
    )
