"""Dead letters: list them (a short preview each), read one with its stored payload, and
replay them through the broker (e.g. after registering the device); the worker validates a
replayed message like any other."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.named_queries import load_queries
from schemas.publisher import Publisher

_QUERIES = load_queries("api.dead_letters", "queries.sql")
# Most dead letters one replay call sends.
MAX_REPLAY = 10_000
# Bytes of each payload a list carries (cut in SQL): about a line, enough to recognise it.
# A page of 1,000 stays under half a megabyte even in hex; the whole is get_dead_letter's.
PREVIEW_BYTES = 200


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters: by id, reason and device (None = any)."""

    ids: list[int] | None = None
    reason: str | None = None
    device_id: str | None = None


def _as_text(raw: bytes, *, cut: bool) -> tuple[str, str]:
    """(text, "utf-8") where `raw` is UTF-8, else (hex, "hex"). A `cut` preview may end
    inside a character: that partial character is left out rather than making it hex."""
    try:
        if cut:
            return codecs.getincrementaldecoder("utf-8")().decode(raw, final=False), "utf-8"
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.hex(), "hex"


def list_dead_letters(
    conn: psycopg.Connection[Any],
    which: DeadLetterFilter,
    *,
    pending: bool,
    before: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, each with `payload_preview` (its first PREVIEW_BYTES bytes, as text
    where they are UTF-8, else hex: `payload_encoding`), `payload_size` (bytes received),
    `payload_sha256` (hex) and `payload_truncated` (only the head is kept)."""
    records = conn.cursor(row_factory=dict_row).execute(
        _QUERIES["list_dead_letters"],
        {"reason": which.reason, "device_id": which.device_id, "pending": pending,
         "before": before, "limit": limit, "preview_bytes": PREVIEW_BYTES},
    ).fetchall()  # fmt: skip
    for record in records:
        preview = bytes(record["payload_preview"])
        cut = record["payload_size"] > len(preview)
        record["payload_preview"], record["payload_encoding"] = _as_text(preview, cut=cut)
    return records


def stored_dead_letter(conn: psycopg.Connection[Any], dead_letter_id: int) -> dict[str, Any] | None:
    """One dead letter with `payload`: the bytes stored of it (a head when
    `payload_truncated`); None if there is no such id."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(_QUERIES["get_dead_letter"], {"id": dead_letter_id})
        .fetchone()
    )


def get_dead_letter(conn: psycopg.Connection[Any], dead_letter_id: int) -> dict[str, Any] | None:
    """One dead letter with `payload`: all that is stored of it (a head when
    `payload_truncated`), as text where it is UTF-8, else hex; None if there is no such id."""
    record = stored_dead_letter(conn, dead_letter_id)
    if record is not None:
        stored = bytes(record["payload"])
        record["payload"], record["payload_encoding"] = _as_text(
            stored, cut=record["payload_truncated"]
        )
    return record


def replay(
    conn: psycopg.Connection[Any], publisher: Publisher, which: DeadLetterFilter, limit: int
) -> list[int]:
    """Send pending dead letters again to their original topics and mark them replayed,
    each only after the broker acknowledged it; returns the ids sent. Failing again, a
    message becomes a new dead letter. One that keeps only the head of its payload is
    never sent (the worker would take the head for the message) and stays pending."""
    rows = conn.execute(
        _QUERIES["pending_for_replay"],
        {"ids": which.ids, "reason": which.reason, "device_id": which.device_id, "limit": limit},
    ).fetchall()
    sent = []
    for dead_letter_id, topic, payload in rows:
        publisher.publish(topic, bytes(payload))
        conn.execute(_QUERIES["mark_replayed"], {"id": dead_letter_id})
        sent.append(dead_letter_id)
    return sent
