"""parse_message: every dead-letter reason, batches with bad events, and size bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.dead_letters import DeadLetterReason
from schemas.events import MAX_PAYLOAD_BYTES, Event
from schemas.messages import ParsedMessage, Rejected, parse_event, parse_message
from tests.schemas.payloads import DEVICE, GTIN14, NOW, encode, event, without


def parse(payload: bytes) -> ParsedMessage:
    return parse_message(payload, DEVICE, NOW)


def only_rejection(payload: bytes) -> Rejected:
    result = parse(payload)
    assert result.events == []
    assert len(result.rejected) == 1
    return result.rejected[0]


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def test_single_event() -> None:
    obj = event(serial="S1", seq=3)
    result = parse(encode(obj))
    assert result.rejected == []
    assert [(e.item_class, e.serial, e.seq) for e in result.events] == [(GTIN14, "S1", 3)]


def test_batch_keeps_payload_order() -> None:
    objs = [event(seq=i) for i in range(10)]
    result = parse(encode({"events": objs}))
    assert result.rejected == []
    assert [e.seq for e in result.events] == list(range(10))
    assert [str(e.event_id) for e in result.events] == [o["event_id"] for o in objs]


# --- message-level failures --------------------------------------------------------------


def test_too_large() -> None:
    payload = encode({"events": [event(attrs={"pad": "x" * 3000}) for _ in range(90)]})
    assert len(payload) > 257 * 1024
    rejection = only_rejection(payload)
    assert rejection.reason is DeadLetterReason.TOO_LARGE
    assert rejection.batch_index is None
    assert rejection.raw == payload
    assert str(MAX_PAYLOAD_BYTES) in rejection.detail


def test_exactly_256_kib_is_not_too_large() -> None:
    payload = encode({"events": [event()]})
    payload += b" " * (MAX_PAYLOAD_BYTES - len(payload))  # JSON allows trailing whitespace
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert len(parse(payload).events) == 1
    assert only_rejection(payload + b" ").reason is DeadLetterReason.TOO_LARGE


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{",
        b'{"event_id": 1,}',
        b"NaN",
        b'{"a": Infinity}',
        b"\xff\xfe{}",
        b'{"serial": "\xc3\x28"}',
        b'"\\ud800"',
        b"{} {}",
        "\ufeff{}".encode(),
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_invalid_json(payload: bytes) -> None:
    rejection = only_rejection(payload)
    assert rejection.reason is DeadLetterReason.INVALID_JSON
    assert (rejection.batch_index, rejection.raw) == (None, payload)


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"[]", "payload is an array"),
        (b"42", "payload is a number"),
        (b'"hello"', "payload is a string"),
        (b"null", "payload is null"),
        (b'{"events": []}', "0 items"),
        (b'{"events": {}}', "events is"),
        (b'{"events": null}', "events is null"),
        (b'{"events": [], "device_id": "x"}', "only the key events"),
    ],
)
def test_whole_message_schema(payload: bytes, detail: str) -> None:
    rejection = only_rejection(payload)
    assert rejection.reason is DeadLetterReason.SCHEMA
    assert detail in rejection.detail
    assert (rejection.batch_index, rejection.raw) == (None, payload)


def test_1000_events_accepted_and_1001_refused() -> None:
    assert len(parse(encode({"events": [event() for _ in range(1000)]})).events) == 1000
    payload = encode({"events": [event() for _ in range(1001)]})
    assert len(payload) < MAX_PAYLOAD_BYTES
    rejection = only_rejection(payload)
    assert rejection.reason is DeadLetterReason.SCHEMA
    assert "1001 items, expected 1 to 1000" in rejection.detail


# --- per-event failures ------------------------------------------------------------------

CASES: dict[DeadLetterReason, tuple[dict[str, Any], str]] = {
    DeadLetterReason.SCHEMA: (without(event(), "type"), "type: Field required"),
    DeadLetterReason.INVALID_GTIN: (
        event(gtin="5901234123458"),
        "gtin 5901234123458: check digit should be 7",
    ),
    DeadLetterReason.INVALID_SERIAL: (event(serial="AB#1"), "character '#'"),
    DeadLetterReason.INVALID_CODE: (without(event(code="see label"), "gtin"), "see label"),
    DeadLetterReason.INVALID_GRAI: (
        without(event(grai="07038010000029C1"), "gtin"),
        "grai 07038010000029: check digit should be 7",
    ),
    DeadLetterReason.NAIVE_TIMESTAMP: (event(ts="2025-06-01T11:59:00"), "no UTC offset"),
    DeadLetterReason.CLOCK_SKEW: (
        event(ts="2025-06-01T12:06:00Z"),
        "6 min 0 s ahead of the receiver's clock",
    ),
    DeadLetterReason.DEVICE_MISMATCH: (event(device_id="rvm-9"), "'rvm-9' in the payload"),
}


def test_every_parser_reason_is_covered() -> None:
    produced = {DeadLetterReason.INVALID_JSON, DeadLetterReason.TOO_LARGE, *CASES}
    # unknown_device needs the device registry, internal_error a failing worker and
    # retained the message's flag: the ingest worker decides those (tests/ingest/).
    assert set(DeadLetterReason) - produced == {
        DeadLetterReason.UNKNOWN_DEVICE,
        DeadLetterReason.INTERNAL_ERROR,
        DeadLetterReason.RETAINED,
    }


@pytest.mark.parametrize("reason", CASES)
def test_single_event_reason(reason: DeadLetterReason) -> None:
    obj, detail = CASES[reason]
    rejection = only_rejection(encode(obj))
    assert rejection.reason is reason
    assert detail in rejection.detail
    assert rejection.batch_index is None
    assert rejection.raw == compact(obj)


@pytest.mark.parametrize("reason", CASES)
def test_batch_with_one_bad_event_keeps_the_others(reason: DeadLetterReason) -> None:
    bad, detail = CASES[reason]
    objs = [event(seq=i) for i in range(5)]
    objs[3] = bad
    result = parse(encode({"events": objs}))
    assert [e.seq for e in result.events] == [0, 1, 2, 4]
    assert len(result.rejected) == 1
    rejection = result.rejected[0]
    assert (rejection.reason, rejection.batch_index) == (reason, 3)
    assert detail in rejection.detail
    assert json.loads(rejection.raw) == bad
    assert rejection.raw == compact(bad)


def test_batch_with_several_bad_events() -> None:
    objs: list[Any] = [event(seq=i) for i in range(6)]
    objs[0] = event(gtin="123")
    objs[2] = "not an object"
    objs[5] = event(ts="2025-06-01T11:59:00")
    result = parse(encode({"events": objs}))
    assert [e.seq for e in result.events] == [1, 3, 4]
    assert [(r.batch_index, r.reason) for r in result.rejected] == [
        (0, DeadLetterReason.INVALID_GTIN),
        (2, DeadLetterReason.SCHEMA),
        (5, DeadLetterReason.NAIVE_TIMESTAMP),
    ]
    assert result.rejected[1].raw == b'"not an object"'


def test_raw_keeps_non_ascii_as_utf8() -> None:
    obj = event(gtin="bad", attrs={"note": "blåbær"})
    rejection = only_rejection(encode(obj))
    assert "blåbær".encode() in rejection.raw


def test_the_most_specific_reason_wins() -> None:
    obj = event(gtin="4006381333932", ts="2025-06-01T13:00:00Z", qty="x")
    rejection = only_rejection(encode(obj))
    assert rejection.reason is DeadLetterReason.INVALID_GTIN
    assert "check digit" in rejection.detail and "ahead" in rejection.detail
    assert "qty" in rejection.detail

    mismatch = event(gtin="4006381333932", device_id="rvm-9")
    assert only_rejection(encode(mismatch)).reason is DeadLetterReason.DEVICE_MISMATCH


def test_detail_is_bounded() -> None:
    obj = {f"extra{i}": i for i in range(50)}
    rejection = only_rejection(encode(obj))
    assert rejection.reason is DeadLetterReason.SCHEMA
    assert rejection.detail == (
        "event_id: Field required; ts: Field required; type: Field required; "
        "gtin or code is required; extra0: Extra inputs are not permitted; and 49 more"
    )
    assert len(rejection.detail) < 1000


def test_offset_timestamp_in_a_message() -> None:
    (parsed,) = parse(encode(event(ts="2025-06-01T13:59:00+02:00"))).events
    assert parsed.ts == NOW.replace(minute=59, hour=11)


def test_parse_event() -> None:
    assert isinstance(parse_event(event(), DEVICE, NOW), Event)
    rejection = parse_event(event(device_id="other"), DEVICE, NOW)
    assert isinstance(rejection, Rejected)
    assert (rejection.reason, rejection.batch_index) == (DeadLetterReason.DEVICE_MISMATCH, None)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E+309"])
def test_attrs_numbers_past_the_double_range_are_a_schema_dead_letter(number: str) -> None:
    """JSON has no bound on numbers, but jsonb cannot hold the infinity they decode to."""
    raw = json.dumps(event(attrs={"scale": {"weight_g": 0}})).replace(
        '"weight_g": 0', f'"weight_g": {number}'
    )
    parsed = parse_message(raw.encode(), DEVICE, NOW)
    [rejected] = parsed.rejected
    assert rejected.reason is DeadLetterReason.SCHEMA
    assert (
        rejected.detail == "attrs.scale.weight_g: number outside the range of a double (±1.7e308)"
    )
    within = parse_message(raw.replace(number, "1.7e308").encode(), DEVICE, NOW)
    assert within.events and not within.rejected
    # A string that merely reads "Infinity" is data, not a number.
    assert parse_message(encode(event(attrs={"note": "Infinity NaN"})), DEVICE, NOW).events
