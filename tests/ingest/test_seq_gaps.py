"""Per-device seq gaps: what never arrived is reported, and closes when it arrives late."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from ingest.seq_gaps import advance
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import count, event, seed_registry


@pytest.mark.parametrize(
    ("max_seq", "gaps", "seqs", "expected"),
    [
        (None, [], [1, 2, 3], (3, [])),  # first contact: no gap before it
        (3, [], [4, 7], (7, [(5, 6)])),
        (7, [(5, 6)], [5], (7, [(6, 6)])),  # late arrival shrinks a gap from below
        (7, [(5, 6)], [6], (7, [(5, 5)])),  # …from above
        (9, [(3, 7)], [5], (9, [(3, 4), (6, 7)])),  # …splits it in the middle
        (7, [(5, 6)], [6, 5], (7, [])),  # closes it
        (7, [(5, 6)], [7, 2], (7, [(5, 6)])),  # repeats and old numbers change nothing
        (7, [(5, 6)], [9, 8, 12], (12, [(5, 6), (10, 11)])),  # order inside a batch is free
    ],
)
def test_advance(
    max_seq: int | None,
    gaps: list[tuple[int, int]],
    seqs: list[int],
    expected: tuple[int, list[tuple[int, int]]],
) -> None:
    assert advance(max_seq, gaps, seqs) == expected


def test_gaps_are_recorded_and_closed_through_the_worker(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, ["rvm-s"])
    make_worker()

    def publish(seqs: list[int]) -> None:
        events = [event("returned", seq=s) for s in seqs]
        publish_all(broker, topic_root, [("rvm-s", json.dumps({"events": events}).encode())])

    def gaps() -> list[tuple[int, int]]:
        return db.execute(
            "SELECT gap_from, gap_to FROM seq_gaps WHERE device_id = 'rvm-s' ORDER BY 1"
        ).fetchall()

    publish([1, 2, 3, 6, 7, 10])
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 6, 30, "6 events")
    assert gaps() == [(4, 5), (8, 9)]
    publish([5, 8, 9])
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 9, 30, "9 events")
    assert gaps() == [(4, 4)]
    assert count(db, "SELECT max_seq FROM device_state WHERE device_id = 'rvm-s'") == 10
