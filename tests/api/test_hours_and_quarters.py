"""The quarter hours a window outside whole days of the rollup zone reads grow with its
buckets and its cut bounds, not with its length: everything else comes from hour rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api.stats.return_rates import Bucket, hours_and_quarters
from api.time_window import Window

KOLKATA = ZoneInfo("Asia/Kolkata")
YEAR = Window(
    datetime(2026, 1, 1, tzinfo=KOLKATA).astimezone(UTC),
    datetime(2027, 1, 1, tzinfo=KOLKATA).astimezone(UTC),
    KOLKATA,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("bucket", "hours", "quarters"),
    [
        # 2026-01-01 00:00 +05:30 is 2025-12-31 18:30 UTC: the first and the last hour are
        # cut by the bounds (two quarter hours inside each); every other bucket's start
        # cuts one more hour (four quarter hours).
        (Bucket.TOTAL, 2, 2 + 2),
        (Bucket.MONTH, 2 + 11, 2 + 11 * 4 + 2),
        (Bucket.WEEK, 2 + 52, 2 + 52 * 4 + 2),
        (Bucket.DAY, 2 + 364, 2 + 364 * 4 + 2),
    ],
)
def test_a_year_in_a_half_hour_zone_reads_the_quarter_hours_around_its_buckets(
    db: psycopg.Connection[Any], bucket: Bucket, hours: int, quarters: int
) -> None:
    found = hours_and_quarters(db, YEAR, bucket)
    assert found["from_hour"] == at("2025-12-31T18:00:00Z")
    assert len(found["split_hours"]) == hours
    assert len(found["quarters"]) == quarters
    assert found["quarters"][:2] == [at("2025-12-31T18:30:00Z"), at("2025-12-31T18:45:00Z")]
    assert found["quarters"][-2:] == [at("2026-12-31T18:00:00Z"), at("2026-12-31T18:15:00Z")]
    if bucket is Bucket.MONTH:  # 2026-02-01 00:00 +05:30
        assert found["quarters"][2:6] == [at("2026-01-31T18:00:00Z") + timedelta(minutes=m)
                                          for m in (0, 15, 30, 45)]  # fmt: skip


def test_whole_hours_of_a_whole_hour_zone_read_no_quarter_hour(
    db: psycopg.Connection[Any],
) -> None:
    oslo = ZoneInfo("Europe/Oslo")
    year = Window(at("2025-12-31T23:00:00Z"), at("2026-12-31T23:00:00Z"), oslo)
    assert hours_and_quarters(db, year, Bucket.DAY) == {
        "from_hour": at("2025-12-31T23:00:00Z"),
        "split_hours": [],
        "quarters": [],
    }


def test_bounds_on_quarter_hours_read_the_quarter_hours_up_to_the_next_hour(
    db: psycopg.Connection[Any],
) -> None:
    window = Window(at("2026-03-01T10:45:00Z"), at("2026-03-09T07:15:00Z"), ZoneInfo("UTC"))
    assert hours_and_quarters(db, window, Bucket.DAY) == {
        "from_hour": at("2026-03-01T10:00:00Z"),
        "split_hours": [at("2026-03-01T10:00:00Z"), at("2026-03-09T07:00:00Z")],
        "quarters": [at("2026-03-01T10:45:00Z"), at("2026-03-09T07:00:00Z")],
    }
