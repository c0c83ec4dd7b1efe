"""`looptrack db prune`: what it deleted, per table, and clear errors with their exit codes;
`looptrack db migrate` refusing a new time zone once history was pruned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from schemas.migrations import migrate
from tests.cli.test_registry_commands import looptrack
from tests.conftest import create_database, drop_database
from tests.factories import count, event, seed_registry
from tests.storing import store

# Events pruned row by row: the plain-PostgreSQL branch, also on a server with
# TimescaleDB, where a hypertable drops whole chunks instead (tested apart, on a database
# of its own).
pytestmark = pytest.mark.plain_postgres


def test_prune_reports_what_it_deleted(db: psycopg.Connection[Any], db_url: str) -> None:
    seed_registry(db, ["rvm-1"])
    now = datetime.now(UTC)
    store(db, "rvm-1", [event("sold", ts=now - timedelta(days=40), qty=3) for _ in range(3)])
    store(db, "rvm-1", [event("sold", ts=now - timedelta(hours=2))])

    result = looptrack(db_url, "db", "prune", "--batch-rows", "2", env=_retention("10"))

    assert result.returncode == 0, result.stderr
    # 10 days and one, down to the quarter hour (the one the command started in).
    cutoffs = {_quarter_floor(t - timedelta(days=11)) for t in (now, datetime.now(UTC))}
    head, *tables = result.stdout.splitlines()
    assert any(
        head.startswith(
            f"pruned what is older than {cutoff:%Y-%m-%dT%H:%M:%SZ}"
            " (LOOPTRACK_RETENTION_DAYS=10) in 6 batches, "  # events 2 + 1, the others 1 each
        )
        for cutoff in cutoffs
    ), head
    assert tables == [
        "  events: 3 rows",
        "  event_ids: 3 rows",
        "  event_counts_15m: 1 rows",
        "  material_counts_15m: 1 rows",
        "  dead_letters: 0 rows",
        "  seq_gaps: 0 rows",
    ]
    assert count(db, "SELECT count(*) FROM events") == 1
    assert count(db, "SELECT sum(sold) FROM return_counts_daily") == 3 * 3 + 1

    again = looptrack(db_url, "db", "prune", env=_retention("10"))
    assert again.returncode == 0, again.stderr
    assert "  events: 0 rows" in again.stdout.splitlines()


def test_prune_refuses_a_retention_of_zero_days(db_url: str) -> None:
    result = looptrack(db_url, "db", "prune", env=_retention("0"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid LOOPTRACK_* setting")
    assert "retention_days" in result.stderr


def test_prune_refuses_a_batch_of_no_rows(db_url: str) -> None:
    result = looptrack(db_url, "db", "prune", "--batch-rows", "0")
    assert result.returncode == 2
    assert "--batch-rows" in result.stderr


def test_prune_without_a_database_is_a_clear_error() -> None:
    result = looptrack("postgresql://postgres@127.0.0.1:1/looptrack", "db", "prune")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the database: ")
    assert "Traceback" not in result.stderr


def test_migrate_to_another_zone_after_pruning_says_why_not() -> None:
    name = f"lt_zone_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        migrate(url, timezone="UTC")
        with psycopg.connect(url, autocommit=True) as db:
            seed_registry(db, ["rvm-1"])
            store(db, "rvm-1", [event("sold", ts=datetime.now(UTC) - timedelta(days=40))])
        assert looptrack(url, "db", "prune", env=_retention("10")).returncode == 0

        result = looptrack(url, "db", "migrate", env={"LOOPTRACK_TIMEZONE": "Europe/Oslo"})

        assert result.returncode == 1
        assert result.stderr.startswith(
            "error: migration failed: LOOPTRACK_TIMEZONE=Europe/Oslo: rebuilding the day rollups"
            " kept in UTC needs every raw event and quarter-hour count, but those before "
        )
        assert "; keep LOOPTRACK_TIMEZONE=UTC" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        drop_database(name)


def _retention(days: str) -> dict[str, str]:
    return {"LOOPTRACK_RETENTION_DAYS": days}


def _quarter_floor(instant: datetime) -> datetime:
    return instant.replace(minute=instant.minute - instant.minute % 15, second=0, microsecond=0)
