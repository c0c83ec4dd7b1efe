"""The checked-in JSON Schemas (payload, receipt) are current and state the same rules as
the parser and the worker."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import jsonschema_rs
import pytest

from schemas.digital_link import InvalidSerial, validate_serial
from schemas.jsonschema import (
    PAYLOAD_SCHEMA_PATH,
    RECEIPT_SCHEMA_PATH,
    payload_json_schema,
    receipt_json_schema,
    render_payload_json_schema,
)
from schemas.jsonschema.__main__ import main
from schemas.receipts import ReceiptBuilder

# Patterns are checked with re.fullmatch: Python's "$" alone would also match before a
# final newline, which ECMA-262 (the JSON Schema dialect) does not.
SCHEMA: dict[str, Any] = json.loads(PAYLOAD_SCHEMA_PATH.read_text(encoding="utf-8"))
EVENT = SCHEMA["$defs"]["Event"]["properties"]


def test_checked_in_file_is_not_stale() -> None:
    assert PAYLOAD_SCHEMA_PATH.read_text(encoding="utf-8") == render_payload_json_schema(), (
        "schemas/jsonschema/event-payload.schema.json is stale: run python -m schemas.jsonschema"
    )
    assert main(["--check"]) == 0


def test_payload_is_one_event_or_a_batch() -> None:
    assert payload_json_schema() == SCHEMA
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["oneOf"] == [{"$ref": "#/$defs/Event"}, {"$ref": "#/$defs/EventBatch"}]
    events = SCHEMA["$defs"]["EventBatch"]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 1000)
    assert "262144 bytes" in SCHEMA["description"]
    assert SCHEMA["$defs"]["Event"]["additionalProperties"] is False
    assert SCHEMA["$defs"]["Event"]["required"] == ["event_id", "ts", "type"]


def test_limits_are_documented() -> None:
    assert (EVENT["qty"]["minimum"], EVENT["qty"]["maximum"]) == (1, 1_000_000)
    assert "4096 bytes" in EVENT["attrs"]["description"]
    assert "5 minutes" in EVENT["ts"]["description"]
    assert EVENT["event_id"]["format"] == "uuid"
    assert EVENT["ts"]["format"] == "date-time"


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("96385074", True),
        ("036000291452", True),
        ("4006381333931", True),
        ("09506000134352", True),
        ("9638507", False),
        ("123456789", False),
        ("123456789012345", False),
        ("400638133393a", False),
    ],
)
def test_gtin_pattern(value: str, matches: bool) -> None:
    assert bool(re.fullmatch(EVENT["gtin"]["pattern"], value)) is matches


@pytest.mark.parametrize("code_point", range(128))
def test_serial_pattern_agrees_with_the_parser(code_point: int) -> None:
    serial = "A" + chr(code_point)
    try:
        validate_serial(serial)
        accepted = True
    except InvalidSerial:
        accepted = False
    assert bool(re.fullmatch(EVENT["serial"]["pattern"], serial)) is accepted


@pytest.mark.parametrize(
    ("ts", "matches"),
    [
        ("2025-06-01T12:30:00Z", True),
        ("2025-06-01T12:30:00.250+02:00", True),
        ("2025-06-01T12:30:00", False),
        ("2025-06-01", False),
        ("1748781000", False),
    ],
)
def test_timestamp_pattern(ts: str, matches: bool) -> None:
    assert bool(re.fullmatch(EVENT["ts"]["pattern"], ts)) is matches


def test_receipts_the_worker_writes_validate_against_the_receipt_schema() -> None:
    receipt_schema = json.loads(RECEIPT_SCHEMA_PATH.read_text(encoding="utf-8"))
    assert receipt_schema == receipt_json_schema()
    validator = jsonschema_rs.validator_for(receipt_schema)
    builder = ReceiptBuilder(stored=["a"], duplicate=["b"])
    builder.refused("c", "clock_skew", "x" * 500)
    [payload] = builder.payloads()
    document = json.loads(payload)
    validator.validate(document)
    assert len(document["dead_lettered"][0]["detail"]) == 200
    assert not validator.is_valid({"stored": [1]})
    assert not validator.is_valid({"dead_lettered": [{"event_id": "c"}]})
    assert validator.is_valid({})  # a receipt with nothing in it names no event


def test_receipts_hold_at_most_their_share_of_events_each_named_once_in_order() -> None:
    """2,500 events of three kinds: three receipts of 1,000, 1,000 and 500 events, the
    kinds in order; UUIDs written as canonical text, text ids as given."""
    stored = [uuid.uuid4() for _ in range(1_200)]
    duplicate = [str(uuid.uuid4()).upper() for _ in range(900)]
    builder = ReceiptBuilder(stored=list(stored), duplicate=list(duplicate))
    for i in range(400):
        builder.refused(f"bad-{i}", "schema", "why")

    receipts = [json.loads(payload) for payload in builder.payloads()]

    assert [sum(map(len, r.values())) for r in receipts] == [1_000, 1_000, 500]
    assert [list(r) for r in receipts] == [
        ["stored"],
        ["stored", "duplicate"],
        ["duplicate", "dead_lettered"],
    ]
    assert [i for r in receipts for i in r.get("stored", [])] == [str(u) for u in stored]
    assert [i for r in receipts for i in r.get("duplicate", [])] == duplicate
    assert [d["event_id"] for r in receipts for d in r.get("dead_lettered", [])] == [
        f"bad-{i}" for i in range(400)
    ]
    assert list(ReceiptBuilder().payloads()) == []
