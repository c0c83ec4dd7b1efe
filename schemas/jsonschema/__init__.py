"""JSON Schemas of the device payload and of the receipts devices get back, for device
makers who do not use Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.events import (
    EARLIEST_TS_TEXT,
    MAX_ATTRS_BYTES,
    MAX_BATCH_EVENTS,
    MAX_CLOCK_SKEW,
    MAX_PAYLOAD_BYTES,
    RETENTION_SETTING,
    Event,
    EventBatch,
)
from schemas.receipts import RECEIPT_MAX_EVENTS, Receipt

PAYLOAD_SCHEMA_PATH = Path(__file__).with_name("event-payload.schema.json")
"""The checked-in schema file; `python -m schemas.jsonschema` rewrites it."""
RECEIPT_SCHEMA_PATH = Path(__file__).with_name("receipt.schema.json")
"""The receipt's checked-in schema file, rewritten the same way."""


def payload_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of an MQTT/HTTP event payload."""
    _, definitions = models_json_schema(
        [(Event, "validation"), (EventBatch, "validation")],
        ref_template="#/$defs/{model}",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "looptrack device event payload",
        "description": (
            "Published as UTF-8 JSON, at most "
            f"{MAX_PAYLOAD_BYTES} bytes ({MAX_PAYLOAD_BYTES // 1024} KiB), to the MQTT "
            "topic looptrack/v1/devices/{device_id}/events (QoS 1) or POSTed to "
            "/v1/devices/{device_id}/events: either one event object or "
            f'{{"events": [...]}} with 1 to {MAX_BATCH_EVENTS} events. A payload that '
            "breaks these rules is dead-lettered, never silently dropped; in a batch only "
            "the bad events are, and the others are stored. Rules this schema cannot "
            "express: the GTIN check digit (GS1 mod-10), a serial inside `code` also "
            "forces qty 1, `ts` at most "
            f"{int(MAX_CLOCK_SKEW.total_seconds()) // 60} minutes ahead of the receiver's "
            f"clock, not before {EARLIEST_TS_TEXT} and not older than the deployment keeps "
            f"events ({RETENTION_SETTING}, 5 years by default), `attrs` at most {MAX_ATTRS_BYTES} "
            "bytes as compact JSON, and "
            "`device_id` equal to the topic's."
        ),
        "oneOf": [{"$ref": "#/$defs/Event"}, {"$ref": "#/$defs/EventBatch"}],
        "$defs": definitions["$defs"],
    }


def render_payload_json_schema() -> str:
    """Return the schema file's exact text (stable key order, trailing newline)."""
    return json.dumps(payload_json_schema(), indent=2, ensure_ascii=False) + "\n"


def receipt_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a receipt message."""
    schema = Receipt.model_json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "looptrack receipt",
        "description": (
            "Published by the ingest, QoS 1, to looptrack/v1/devices/{device_id}/receipts "
            "after each commit that held events of the device (the device may read only "
            "its own). Every event of the messages just acknowledged is named in exactly "
            "one list; a list without entries is left out, and a commit with more than "
            f"{RECEIPT_MAX_EVENTS} events of a device is receipted in several messages. "
            "A device keeps each event until a receipt names it, and sends again what has "
            "none after a timeout: the ingest removes repeats by event_id, so a resent "
            "event comes back as a duplicate. Unknown keys are to be ignored."
        ),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def render_schemas() -> dict[Path, str]:
    """Each checked-in schema file's exact text (stable key order, trailing newline)."""
    return {
        PAYLOAD_SCHEMA_PATH: render_payload_json_schema(),
        RECEIPT_SCHEMA_PATH: json.dumps(receipt_json_schema(), indent=2, ensure_ascii=False) + "\n",
    }
