"""Property: whatever a device puts in an event's fields, the real worker stores it or
dead-letters it with a reason, and the next good event is stored. Timestamps range over
all of datetime with every offset from -23:59 to +23:59; numbers go up to and past every
bound. Derandomised, so CI runs the same examples every time."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.dead_letters import DeadLetterReason
from tests.conftest import Broker, Worker, publish_all, wait_until
from tests.factories import GTIN_COLA, assert_identity, count, event, seed_registry

DEVICE = "rvm-prop"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
SKEW = timedelta(minutes=5)
# The worker's LOOPTRACK_RETENTION_DAYS: nothing older is accepted (docs/operations.md).
RETENTION = timedelta(days=1827)
# Numbers JSON can carry but a double cannot: written into the payload as they are.
HUGE_NUMBERS = ["1e400", "-1e400", "1E+309"]
_RAW = "__raw_number_{}__"
ABSENT = object()
REASONS = {reason.value for reason in DeadLetterReason}

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1)
any_instant = st.datetimes(min_value=datetime.min, max_value=datetime.max)
recent_instant = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2100, 1, 1))
# Up to and past every bound: qty 1..1,000,000, seq 0..2^63-1, ints past 64 bits.
edge_integers = st.sampled_from(
    [-1, 0, 1, 999_999, 1_000_000, 1_000_001, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    edge_integers,
    st.floats(),  # NaN and ±infinity too: json.dumps writes them as invalid JSON tokens
    st.sampled_from([_RAW.format(i) for i in range(len(HUGE_NUMBERS))]),
)
attr_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20) | st.text(min_size=3000),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


def rfc3339(instant: datetime, offset_min: int) -> str:
    sign = "-" if offset_min < 0 else "+"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{instant.isoformat()}{sign}{hours:02d}:{minutes:02d}"


@st.composite
def fuzzed_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event as a device could send it: key fields valid, the rest from the edges."""
    instant = draw(st.one_of(any_instant, recent_instant))
    fields: dict[str, Any] = {
        "ts": rfc3339(instant, draw(offsets)),
        "type": draw(st.sampled_from(["returned", "sold", "filled"])),
        "gtin": GTIN_COLA,
    }
    for name, values in (
        ("qty", st.one_of(numbers, st.integers(min_value=1, max_value=1_000_000))),
        ("seq", st.one_of(numbers, st.integers(min_value=0, max_value=2**63 - 1))),
        ("attrs", st.one_of(st.dictionaries(st.text(max_size=8), attr_values, max_size=4),
                            st.fixed_dictionaries({"weight_g": numbers}))),
    ):  # fmt: skip
        value = draw(st.one_of(st.just(ABSENT), values))
        if value is not ABSENT:
            fields[name] = value
    return fields


def encode(fields: dict[str, Any]) -> bytes:
    text = json.dumps(fields)
    for index, number in enumerate(HUGE_NUMBERS):
        text = text.replace(f'"{_RAW.format(index)}"', number)
    return text.encode()


def utc_instant(ts: str) -> datetime | None:
    """The UTC instant `ts` names, computed here without the parser; None when it lies
    outside what datetime can hold once shifted to UTC."""
    local, sign, offset = ts[:-6], ts[-6], ts[-5:]
    minutes = int(offset[:2]) * 60 + int(offset[3:])
    shift = timedelta(minutes=minutes if sign == "+" else -minutes)
    try:
        return datetime.fromisoformat(local).replace(tzinfo=UTC) - shift
    except OverflowError:
        return None


def strict_json(payload: bytes) -> bool:
    def refuse(token: str) -> None:
        raise ValueError(token)

    try:
        json.loads(payload, parse_constant=refuse)
    except ValueError:
        return False
    return True


def plain(fields: dict[str, Any]) -> bool:
    """Whether nothing but `ts` could make this event invalid (so ts alone decides)."""
    qty, seq = fields.get("qty", 1), fields.get("seq", 0)
    return (
        type(qty) is int
        and 1 <= qty <= 1_000_000
        and type(seq) is int
        and 0 <= seq < 2**63
        and "attrs" not in fields
    )


@pytest.fixture
def worker(db: psycopg.Connection[Any], make_worker: Any) -> Worker:
    seed_registry(db, [DEVICE])
    started: Worker = make_worker(LOOPTRACK_RETENTION_DAYS=str(RETENTION.days))
    return started


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(fuzzed_events(), min_size=1, max_size=6))
def test_every_event_is_stored_or_dead_lettered_and_ingest_goes_on(
    batch: list[dict[str, Any]],
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    worker: Worker,
) -> None:
    sent = [{"event_id": str(uuid.uuid4()), **fields} for fields in batch]
    good = event()
    messages = [(DEVICE, encode(fields)) for fields in sent]
    publish_all(broker, topic_root, [*messages, (DEVICE, json.dumps(good).encode())])
    wait_until(
        lambda: count(db, "SELECT count(*) FROM events WHERE event_id = %s", good["event_id"]),
        30,
        "the good event after the fuzzed ones",
    )
    now = datetime.now(UTC)
    # Received less than a minute before `now`, so refused for its age if older than this.
    oldest = max(EARLIEST, now - RETENTION - timedelta(minutes=1))
    for fields in sent:
        event_id = fields["event_id"]
        is_stored = count(db, "SELECT count(*) FROM events WHERE event_id = %s", event_id)
        reasons = [
            reason
            for (reason,) in db.execute(
                "SELECT reason FROM dead_letters WHERE position(%s::bytea in payload) > 0",
                (event_id.encode(),),
            )
        ]
        assert is_stored + len(reasons) == 1, (fields, is_stored, reasons)
        assert set(reasons) <= REASONS
        instant = utc_instant(fields["ts"])
        if not strict_json(encode(fields)):
            assert reasons == ["invalid_json"], fields  # NaN, Infinity: not JSON at all
        elif instant is None or instant < oldest or instant > now + SKEW:
            assert reasons == ["clock_skew"], fields
        elif plain(fields) and now - RETENTION < instant < now + SKEW - timedelta(minutes=1):
            assert is_stored, (fields, reasons)
    worker.assert_running()
    assert_identity(db)


def test_the_instant_oracle_agrees_with_python_where_python_can() -> None:
    """utc_instant, the test's own reading of a timestamp, against datetime's."""
    for ts in ["2025-06-01T14:30:00+02:00", "2000-01-01T00:00:00-23:59"]:
        expected = datetime.fromisoformat(ts).astimezone(UTC)
        assert utc_instant(ts) == expected
    assert utc_instant("0001-01-01T00:00:00+14:00") is None
    late = datetime.max.replace(tzinfo=timezone(timedelta(minutes=-1439)))
    assert utc_instant(late.isoformat()) is None
