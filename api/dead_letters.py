"""Dead letters: list them, and replay them through the broker (e.g. after registering
the device); the worker validates a replayed message like any other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devices.publisher import Publisher
from schemas.named_queries import load_queries

QUERIES = load_queries("api", "sql/dead_letters.sql")
# Most dead letters one replay call sends.
MAX_REPLAY = 10_000


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters: by id, reason and device (None = any)."""

    ids: list[int] | None = None
    reason: str | None = None
    device_id: str | None = None


def list_dead_letters(
    conn: psycopg.Connection[Any],
    which: DeadLetterFilter,
    *,
    pending: bool,
    before: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first; `payload` as text where it is UTF-8, else as a hex string."""
    records = conn.cursor(row_factory=dict_row).execute(
        QUERIES["list_dead_letters"],
        {"reason": which.reason, "device_id": which.device_id, "pending": pending,
         "before": before, "limit": limit},
    ).fetchall()  # fmt: skip
    rows = []
    for record in records:
        raw = bytes(record["payload"])
        try:
            record["payload"], record["payload_encoding"] = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            record["payload"], record["payload_encoding"] = raw.hex(), "hex"
        rows.append(record)
    return rows


def replay(
    conn: psycopg.Connection[Any], publisher: Publisher, which: DeadLetterFilter, limit: int
) -> list[int]:
    """Send pending dead letters again to their original topics and mark them replayed,
    each only after the broker acknowledged it; returns the ids sent. Failing again, a
    message becomes a new dead letter."""
    rows = conn.execute(
        QUERIES["pending_for_replay"],
        {"ids": which.ids, "reason": which.reason, "device_id": which.device_id, "limit": limit},
    ).fetchall()
    sent = []
    for dead_letter_id, topic, payload in rows:
        publisher.publish(topic, bytes(payload))
        conn.execute(QUERIES["mark_replayed"], {"id": dead_letter_id})
        sent.append(dead_letter_id)
    return sent
