"""The Event model's rules (SPEC §5), validated with a fixed receiver clock."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import (
    MAX_ATTRS_BYTES,
    MAX_BATCH_EVENTS,
    TIMESTAMP_PATTERN,
    Event,
    EventBatch,
    EventType,
    RejectReason,
    is_usual_timestamp,
    validation_context,
)
from tests.schemas.payloads import DEVICE, GTIN13, GTIN14, NOW, event, without

CONTEXT = validation_context(DEVICE, NOW)


def valid(obj: dict[str, Any]) -> Event:
    return Event.model_validate(obj, context=CONTEXT)


def error_types(obj: Any) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        Event.model_validate(obj, context=CONTEXT)
    return [error["type"] for error in raised.value.errors()]


def test_minimal_event() -> None:
    obj = event()
    parsed = valid(obj)
    assert parsed.event_id == uuid.UUID(obj["event_id"])
    assert parsed.ts == datetime(2025, 6, 1, 11, 59, tzinfo=UTC)
    assert parsed.type is EventType.RETURNED
    assert parsed.item_class == GTIN14
    assert (parsed.serial, parsed.code, parsed.qty, parsed.seq) == (None, None, 1, None)
    assert (parsed.reason, parsed.stream, parsed.attrs, parsed.device_id) == (None,) * 4


def test_event_is_frozen() -> None:
    parsed = valid(event())
    with pytest.raises(ValidationError):
        parsed.qty = 2  # type: ignore[misc]


def test_all_event_types() -> None:
    assert [t.value for t in EventType] == [
        "commissioned",
        "filled",
        "sold",
        "returned",
        "rejected",
        "sorted",
        "washed",
        "recycled",
        "retired",
    ]
    assert [r.value for r in RejectReason] == [
        "unreadable",
        "unknown_product",
        "damaged",
        "not_empty",
        "duplicate",
        "other",
    ]


@pytest.mark.parametrize("gtin", ["96385074", "036000291452", "4006381333931", "09506000134352"])
def test_gtin_is_stored_with_14_digits(gtin: str) -> None:
    assert valid(event(gtin=gtin)).item_class == gtin.zfill(14)


def test_bad_gtin() -> None:
    assert error_types(event(gtin="4006381333932")) == ["invalid_gtin"]
    assert error_types(event(gtin=4006381333931)) == ["string_type"]


def test_unknown_field_is_refused() -> None:
    assert error_types(event(colour="red")) == ["extra_forbidden"]


# --- ts ----------------------------------------------------------------------------------


def test_ts_with_offset_keeps_the_instant() -> None:
    parsed = valid(event(ts="2025-06-01T13:30:00.250+02:00"))
    assert parsed.ts == datetime(2025, 6, 1, 11, 30, 0, 250_000, tzinfo=UTC)
    assert parsed.ts.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "ts",
    [
        "2025-06-01T11:59:00z",
        "2025-06-01t11:59:00Z",
        "2025-06-01 11:59:00Z",
        "2025-06-01T11:59:00-00:00",
    ],
)
def test_rfc3339_variants(ts: str) -> None:
    assert valid(event(ts=ts)).ts == datetime(2025, 6, 1, 11, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "ts", ["2025-06-01T11:59:00", "2025-06-01T11:59:00.5", "2025-06-01 11:59:00"]
)
def test_naive_ts(ts: str) -> None:
    assert error_types(event(ts=ts)) == ["naive_timestamp"]


def test_naive_datetime_object() -> None:
    assert error_types(event(ts=datetime(2025, 6, 1, 11, 59))) == ["naive_timestamp"]


@pytest.mark.parametrize(
    "ts",
    [
        "2025-06-01",
        "1748779140",
        "2025-06-01T11:59Z",
        "2025-02-30T11:59:00Z",
        "2025-06-01T11:59:00+0200",
        "yesterday",
        "",
    ],
)
def test_ts_not_rfc3339(ts: str) -> None:
    assert error_types(event(ts=ts)) == ["timestamp_format"]


# What devices send: Python's isoformat() (devices.client), "Z" forms, other offsets.
USUAL = [
    "2025-06-01T11:59:00Z",
    "2025-06-01T11:59:00.123Z",
    "2025-06-01T11:59:00.123456+00:00",
    "2025-06-01T11:59:00.5-00:00",
    "2025-06-01T13:59:00+02:00",
    "2025-06-01 11:59:00.123456789Z",
]
# Every one of the characters a mutation may put in a usual timestamp's place.
MUTATIONS = "0123456789-+:.,TtZz ٣²\u00e9\ud800"


@pytest.mark.parametrize("ts", USUAL)
def test_usual_timestamps_take_the_fast_check(ts: str) -> None:
    assert is_usual_timestamp(ts)
    assert valid(event(ts=ts)).ts == datetime.fromisoformat(ts)


def test_lower_case_takes_the_full_check() -> None:
    # Still accepted, by the pattern's path: the fast check knows only T, space and Z.
    for ts in ("2025-06-01t13:59:00+02:00", "2025-06-01T11:59:00z"):
        assert not is_usual_timestamp(ts)
        assert valid(event(ts=ts)).ts == datetime(2025, 6, 1, 11, 59, tzinfo=UTC)


def single_edits(text: str) -> set[str]:
    """Every text one replaced, inserted or deleted character away from `text`, with the
    characters of MUTATIONS."""
    edits = {text[:i] + text[i + 1 :] for i in range(len(text))}
    for i in range(len(text) + 1):
        for char in MUTATIONS:
            edits.add(text[:i] + char + text[i:])
            edits.add(text[:i] + char + text[i + 1 :])
    return edits


def test_the_fast_check_accepts_only_what_the_pattern_does() -> None:
    """A text the fast check lets through must be one the RFC 3339 pattern accepts, in upper
    case (fromisoformat reads it as the pattern's path does); checked on every single edit
    of the usual timestamps, and of those edits' edits around the fraction and offset."""
    texts = set().union(*(single_edits(ts) for ts in USUAL))
    texts |= set().union(*(single_edits(ts) for ts in single_edits("2025-06-01T11:59:00.1+02:00")))
    let_through = [ts for ts in texts if is_usual_timestamp(ts)]
    wrong = [
        ts for ts in let_through if not re.fullmatch(TIMESTAMP_PATTERN, ts) or ts != ts.upper()
    ]
    assert wrong == []
    assert len(let_through) > 100  # the edits also make valid timestamps: digits for digits


@pytest.mark.parametrize("ts", [1748779140, 1748779140.5, None, True])
def test_ts_not_a_string(ts: Any) -> None:
    assert error_types(event(ts=ts)) == ["timestamp_type"]


def test_skew_exactly_five_minutes_ahead_is_accepted() -> None:
    assert valid(event(ts="2025-06-01T12:05:00Z")).ts == NOW + timedelta(minutes=5)
    assert valid(event(ts="2025-06-01T14:05:00+02:00")).ts == NOW + timedelta(minutes=5)


def test_skew_over_five_minutes_is_refused() -> None:
    assert error_types(event(ts="2025-06-01T12:05:00.000001Z")) == ["clock_skew"]
    assert error_types(event(ts="2025-06-01T14:05:01+02:00")) == ["clock_skew"]


def test_old_events_are_accepted_back_to_2000() -> None:
    # With a retention reaching back that far (the default's bound: test_retention.py).
    context = validation_context(DEVICE, NOW, retention=timedelta(days=30 * 366))
    for ts in ["2020-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "2000-01-01T00:59:00+00:59"]:
        assert Event.model_validate(event(ts=ts), context=context).ts.year == int(ts[:4])


@pytest.mark.parametrize(
    "ts",
    [
        "1999-12-31T23:59:59.999999Z",
        "2000-01-01T00:59:00+01:00",
        "1970-01-01T00:00:00Z",
        # Year 0 once shifted to UTC: the payload that once stopped the worker.
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00-23:59",
    ],
)
def test_events_before_2000_are_clock_skew_naming_the_bound(ts: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Event.model_validate(event(ts=ts), context=CONTEXT)
    [error] = caught.value.errors()
    assert error["type"] == "clock_skew"
    assert "before 2000-01-01T00:00:00Z" in error["msg"]


def test_skew_uses_the_receiver_clock_from_context() -> None:
    later = validation_context(DEVICE, NOW + timedelta(hours=1))
    obj = event(ts="2025-06-01T12:30:00Z")
    assert Event.model_validate(obj, context=later).ts.minute == 30
    assert error_types(obj) == ["clock_skew"]


def test_without_context_the_wall_clock_is_used() -> None:
    ahead = datetime.now(UTC) + timedelta(minutes=10)
    with pytest.raises(ValidationError, match="ahead of the receiver's clock"):
        Event.model_validate(event(ts=ahead.isoformat()))
    assert Event.model_validate(event(ts=datetime.now(timezone(timedelta(hours=-7)))))


def test_context_clock_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validation_context(DEVICE, datetime(2025, 6, 1, 12, 0))


# --- serial, code ------------------------------------------------------------------------


def test_serial() -> None:
    assert valid(event(serial="A1-b/2")).serial == "A1-b/2"
    assert error_types(event(serial="A 1")) == ["invalid_serial"]
    assert error_types(event(serial="A" * 21)) == ["invalid_serial"]
    assert error_types(event(serial="")) == ["invalid_serial"]


def test_code_fills_gtin_and_serial() -> None:
    code = "https://example.com/01/04006381333931/21/AB%2F12?linkType=all"
    parsed = valid(without(event(code=code), "gtin"))
    assert (parsed.item_class, parsed.serial, parsed.code) == (GTIN14, "AB/12", code)


def test_code_with_bare_gtin() -> None:
    parsed = valid(without(event(code="96385074"), "gtin"))
    assert (parsed.item_class, parsed.serial) == ("00000096385074", None)


def test_dump_validates_again() -> None:
    code = "https://example.com/01/04006381333931/21/AB12"
    parsed = valid(without(event(code=code, attrs={"weight_g": 24}, seq=7), "gtin"))
    dumped = parsed.model_dump(mode="json")
    assert "code" not in dumped
    assert valid(dumped) == parsed.model_copy(update={"code": None})


def test_code_and_gtin_together_is_an_error() -> None:
    assert error_types(event(code=GTIN13)) == ["code_with_key"]
    assert error_types(without(event(code=GTIN13, serial="S1"), "gtin")) == ["code_with_key"]


def test_neither_code_nor_gtin() -> None:
    assert error_types(without(event(), "gtin")) == ["missing"]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("4006381333932", "invalid_gtin"),
        ("https://example.com/01/04006381333932", "invalid_gtin"),
        ("https://example.com/01/04006381333931/21/a%20b", "invalid_serial"),
        ("not a code", "invalid_code"),
        ("https://example.com/" + "x" * 3000, "invalid_code"),
    ],
)
def test_bad_code(code: str, error: str) -> None:
    assert error_types(without(event(code=code), "gtin")) == [error]


# --- qty, seq ----------------------------------------------------------------------------


def test_qty_bounds() -> None:
    assert valid(event(type="sold", qty=1_000_000)).qty == 1_000_000
    assert error_types(event(type="sold", qty=1_000_001)) == ["less_than_equal"]
    assert error_types(event(type="sold", qty=0)) == ["greater_than_equal"]
    assert error_types(event(type="sold", qty=-3)) == ["greater_than_equal"]


@pytest.mark.parametrize("qty", ["2", 2.0, True, None])
def test_qty_must_be_an_integer(qty: Any) -> None:
    assert error_types(event(qty=qty)) == ["int_type"]


def test_qty_must_be_1_with_a_serial() -> None:
    assert valid(event(serial="S1", qty=1)).qty == 1
    assert error_types(event(serial="S1", qty=2)) == ["event_rule"]
    code = "https://example.com/01/04006381333931/21/S1"
    assert error_types(without(event(code=code, qty=5), "gtin")) == ["event_rule"]


def test_seq_bounds() -> None:
    assert valid(event(seq=0)).seq == 0
    assert valid(event(seq=2**63 - 1)).seq == 2**63 - 1
    assert error_types(event(seq=2**63)) == ["less_than_equal"]
    assert error_types(event(seq=-1)) == ["greater_than_equal"]


# --- reason, stream ----------------------------------------------------------------------


def test_rejected_needs_a_reason() -> None:
    assert valid(event(type="rejected", reason="not_empty")).reason is RejectReason.NOT_EMPTY
    assert error_types(event(type="rejected")) == ["event_rule"]
    assert error_types(event(type="rejected", reason="smelly")) == ["enum"]
    assert error_types(event(type="returned", reason="damaged")) == ["event_rule"]


def test_sorted_needs_a_stream() -> None:
    assert valid(event(type="sorted", stream="reuse")).stream == "reuse"
    assert valid(event(type="sorted", stream="pet-clear_2")).stream == "pet-clear_2"
    # SPEC §4 spells materials in capitals; a sorter naming its stream after one is fine.
    assert valid(event(type="sorted", stream="PET")).stream == "PET"
    assert error_types(event(type="sorted")) == ["event_rule"]
    assert error_types(event(type="washed", stream="reuse")) == ["event_rule"]


@pytest.mark.parametrize("stream", ["", "pet clear", "a" * 41, "glas/green"])
def test_bad_stream_name(stream: str) -> None:
    assert error_types(event(type="sorted", stream=stream)) == ["string_pattern_mismatch"]


def test_a_sorted_event_may_carry_its_measured_weight() -> None:
    sorted_ = {"type": "sorted", "stream": "PET", "qty": 40}
    assert valid(event(**sorted_, weight_g=1234.25)).weight_g == 1234.25
    assert valid(event(**sorted_, weight_g=880)).weight_g == 880
    assert valid(event(**sorted_, weight_g=100_000_000)).weight_g == 100_000_000
    assert valid(event(**sorted_)).weight_g is None
    assert error_types(event(**sorted_, weight_g=0)) == ["greater_than"]
    assert error_types(event(**sorted_, weight_g=-5)) == ["greater_than"]
    assert error_types(event(**sorted_, weight_g=100_000_000.5)) == ["less_than_equal"]
    assert error_types(event(**sorted_, weight_g="880")) == ["float_type"]
    assert error_types(event(**sorted_, weight_g=True)) == ["float_type"]
    # A returned bottle's weight is not a sorting site's measurement.
    assert error_types(event(type="returned", weight_g=22)) == ["event_rule"]


def test_unknown_type() -> None:
    assert error_types(event(type="stolen")) == ["enum"]


# --- attrs, device_id --------------------------------------------------------------------


def _attrs_of_size(size: int) -> dict[str, Any]:
    # {"n":"…"} is 8 bytes of JSON around the value.
    return {"n": "x" * (size - 8)}


def test_attrs_up_to_4_kib() -> None:
    assert valid(event(attrs=_attrs_of_size(MAX_ATTRS_BYTES))).attrs is not None
    assert error_types(event(attrs=_attrs_of_size(MAX_ATTRS_BYTES + 1))) == ["attrs_too_large"]


def test_attrs_counts_utf8_bytes() -> None:
    # "ø" is two bytes in UTF-8.
    assert error_types(event(attrs={"n": "ø" * 2045})) == ["attrs_too_large"]


def test_attrs_must_be_an_object() -> None:
    assert error_types(event(attrs=[1, 2])) == ["dict_type"]
    assert valid(event(attrs={"weight_g": 24.5, "fill": {"level": 0.1}, "ok": None})).attrs


def test_device_id_must_match_the_topic() -> None:
    assert valid(event(device_id=DEVICE)).device_id == DEVICE
    assert error_types(event(device_id="rvm-0043")) == ["device_mismatch"]
    # Without a topic (e.g. the device library building events) there is nothing to check.
    assert Event.model_validate(event(device_id="rvm-0043"), context=validation_context(None, NOW))


def test_batch_bounds() -> None:
    assert len(EventBatch.model_validate({"events": [event()]}, context=CONTEXT).events) == 1
    for size in (0, MAX_BATCH_EVENTS + 1):
        with pytest.raises(ValidationError):
            EventBatch.model_validate({"events": [event()] * size}, context=CONTEXT)
