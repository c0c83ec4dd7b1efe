"""Property-based fuzzing of the two parsers that read untrusted input: the device payload
parser and the Digital Link parser. Every input is either valid or refused with a reason;
nothing raises. The budget is fixed and the examples derandomised, so CI runs the same
inputs every time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.dead_letters import DeadLetterReason
from schemas.digital_link import InvalidCode, InvalidSerial, build_uri, parse_code
from schemas.events import MAX_BATCH_EVENTS
from schemas.grai import InvalidGrai
from schemas.gtin import InvalidGtin
from schemas.messages import ParsedMessage, parse_message
from tests.factories import GTIN_COLA, event

BUDGET = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DEVICE = "rvm-1"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)

# Fields of an event, each either plausible or anything at all.
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.uuids().map(str) | json_values,
    "ts": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    | st.just((NOW - timedelta(minutes=1)).isoformat())
    | json_values,
    "type": st.sampled_from(["sold", "returned", "rejected", "sorted", "filled", "x"])
    | json_values,
    "gtin": st.just(GTIN_COLA) | st.text(alphabet="0123456789", max_size=15) | json_values,
    "serial": st.text(max_size=25) | json_values,
    "code": st.just(f"https://id.example/01/{GTIN_COLA.zfill(14)}/21/A1") | st.text() | json_values,
    "qty": st.integers(-2, 2_000_000) | json_values,
    "seq": st.integers(-1, 2**64) | json_values,
    "reason": st.sampled_from(["damaged", "unreadable", "other", "?"]) | json_values,
    "stream": st.sampled_from(["reuse", "PET"]) | json_values,
    "device_id": st.sampled_from([DEVICE, "rvm-2"]) | json_values,
    "attrs": st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values,
}
event_objects = st.fixed_dictionaries({}, optional=FIELDS) | st.dictionaries(st.text(), json_values)


def assert_accounted(parsed: ParsedMessage, items: int | None) -> None:
    """Every event is either kept or refused with a known reason and a detail."""
    for rejected in parsed.rejected:
        assert isinstance(rejected.reason, DeadLetterReason)
        assert rejected.detail
    whole = [r for r in parsed.rejected if r.batch_index is None]
    if items is None or (whole and not parsed.events and len(parsed.rejected) == 1):
        assert len(parsed.events) + len(parsed.rejected) >= 1
    else:
        assert len(parsed.events) + len(parsed.rejected) == items
        indexes = [r.batch_index for r in parsed.rejected]
        assert indexes == sorted(set(indexes))


@BUDGET
@given(st.binary(max_size=2_000))
def test_any_bytes_are_stored_or_dead_lettered(payload: bytes) -> None:
    assert_accounted(parse_message(payload, DEVICE, NOW), None)


@BUDGET
@given(json_values)
def test_any_json_document_is_stored_or_dead_lettered(document: Any) -> None:
    assert_accounted(parse_message(json.dumps(document).encode(), DEVICE, NOW), None)


@BUDGET
@given(event_objects)
def test_any_single_event_is_stored_or_dead_lettered(obj: dict[str, Any]) -> None:
    assert_accounted(parse_message(json.dumps(obj).encode(), DEVICE, NOW), 1)


@BUDGET
@given(st.lists(event_objects, min_size=1, max_size=20), st.integers(0, 20))
def test_a_batch_keeps_its_valid_events_and_refuses_each_bad_one(batch: list[Any], at: int) -> None:
    good = event(ts=NOW - timedelta(minutes=1))
    batch.insert(min(at, len(batch)), good)
    parsed = parse_message(json.dumps({"events": batch}).encode(), DEVICE, NOW)
    assert_accounted(parsed, len(batch))
    assert good["event_id"] in {str(kept.event_id) for kept in parsed.events}


def test_deeply_nested_or_oversized_json_is_dead_lettered_not_a_crash() -> None:
    for depth in (100, 1_000, 100_000):
        nested = ("[" * depth + "]" * depth).encode()
        parsed = parse_message(nested, DEVICE, NOW)
        assert not parsed.events and len(parsed.rejected) == 1
        deep_attrs = ('{"attrs": ' + '{"a": ' * depth + "1" + "}" * depth + "}").encode()
        assert not parse_message(deep_attrs, DEVICE, NOW).events
    too_many = json.dumps({"events": [{}] * (MAX_BATCH_EVENTS + 1)}).encode()
    assert parse_message(too_many, DEVICE, NOW).rejected[0].reason is DeadLetterReason.SCHEMA
    huge = b'{"events": [' + b'"x",' * 200_000 + b'"x"]}'
    assert parse_message(huge, DEVICE, NOW).rejected[0].reason is DeadLetterReason.TOO_LARGE


@BUDGET
@given(st.text(max_size=300))
def test_any_scanned_text_is_a_key_or_a_clear_refusal(text: str) -> None:
    try:
        gtin, serial = parse_code(text)
    except (InvalidCode, InvalidGtin, InvalidSerial, InvalidGrai) as refused:
        assert str(refused)
    else:
        assert len(gtin) == 14 and gtin.isdigit()
        assert serial is None or 1 <= len(serial) <= 20


serials = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!\"%&'()*+,-./:;<=>?_",
    min_size=1,
    max_size=20,
)


@BUDGET
@given(
    st.sampled_from(["https://id.example.com", "http://x.test/some/prefix/01/x", "https://a.b"]),
    serials,
)
def test_every_printed_link_reads_back_as_its_key(base: str, serial: str) -> None:
    gtin14 = GTIN_COLA.zfill(14)
    assert parse_code(build_uri(base, gtin14, serial)) == (gtin14, serial)


@BUDGET
@given(
    st.lists(st.sampled_from(["01", "21", "10", "8003", "", "%", "%zz", "a/b", "0"]), max_size=12)
)
def test_mangled_link_paths_are_refused_with_a_reason(parts: list[str]) -> None:
    text = "https://id.example.com/" + "/".join(parts)
    try:
        parse_code(text)
    except (InvalidCode, InvalidGtin, InvalidSerial, InvalidGrai) as refused:
        assert str(refused)
