"""`looptrack keys create --expires` and `keys list`: the expiry stored as asked, bad
expiries refused before anything is written, and the list showing expiry and last use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.cli.test_registry_commands import looptrack
from tests.factories import count


def stored_expiry(db: psycopg.Connection[Any], name: str) -> datetime:
    row = db.execute("SELECT expires_at FROM api_keys WHERE name = %s", (name,)).fetchone()
    assert row is not None and row[0] is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("expires", "ahead"), [("90d", timedelta(days=90)), ("12h", timedelta(hours=12))]
)
def test_an_expiry_counted_from_now(
    db: psycopg.Connection[Any], db_url: str, expires: str, ahead: timedelta
) -> None:
    made = looptrack(db_url, "keys", "create", "--role", "operator", "--name", "ops",
                     "--expires", expires, env={"PGTZ": "UTC"})  # fmt: skip
    assert made.returncode == 0, made.stderr
    lines = made.stdout.strip().splitlines()
    assert lines[-1].startswith("lt_")  # the key alone on the last line, as ever
    at = stored_expiry(db, "ops")
    assert abs(at - (datetime.now(UTC) + ahead)) < timedelta(minutes=1)
    assert lines[0].endswith(f" expires {at.astimezone(UTC):%Y-%m-%d %H:%M:%S}+0000")


def test_an_expiry_given_as_a_date_or_a_date_time(db: psycopg.Connection[Any], db_url: str) -> None:
    next_year = datetime.now(UTC).year + 1
    for name, expires, expected in [
        ("by date", f"{next_year}-03-01", datetime(next_year, 3, 1, tzinfo=UTC)),
        (
            "by date-time",
            f"{next_year}-03-01T12:00:00+01:00",
            datetime(next_year, 3, 1, 11, tzinfo=UTC),
        ),
    ]:
        made = looptrack(db_url, "keys", "create", "--role", "operator", "--name", name,
                         "--expires", expires)  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert stored_expiry(db, name) == expected


@pytest.mark.parametrize(
    ("expires", "says"),
    [
        ("90", "is not understood"),
        ("3 months", "is not understood"),
        ("0d", "is now"),
        ("3651d", "more than 3650 days ahead"),
        ("2020-01-01", "is not in the future"),
        ("2027-03-01T12:00:00", "has no UTC offset"),
    ],
)
def test_a_bad_expiry_is_refused_and_nothing_is_written(
    db: psycopg.Connection[Any], db_url: str, expires: str, says: str
) -> None:
    made = looptrack(db_url, "keys", "create", "--role", "operator", "--expires", expires)
    assert made.returncode == 2, made.stdout
    assert made.stderr.startswith("error: --expires: ") and says in made.stderr, made.stderr
    assert "lt_" not in made.stdout
    assert count(db, "SELECT count(*) FROM api_keys") == 0


def test_keys_list_shows_expiry_and_last_use(db: psycopg.Connection[Any], db_url: str) -> None:
    for name in ("fresh", "used", "lapsed"):
        assert looptrack(db_url, "keys", "create", "--role", "operator", "--name", name,
                         "--expires", "30d").returncode == 0  # fmt: skip
    db.execute(
        "UPDATE api_keys SET last_used_at = '2026-11-02 10:15:00+00' WHERE name = 'used';"
        "UPDATE api_keys SET created_at = now() - interval '2 days',"
        " expires_at = now() - interval '1 day' WHERE name = 'lapsed'"
    )
    listed = looptrack(db_url, "keys", "list", env={"PGTZ": "UTC"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "expires" in lines[0] and "last used (±5 min)" in lines[0]
    rows = {line.split()[1]: line for line in lines[1:-1]}
    assert "2026-11-02 10:15+0000" in rows["used"]
    assert "(expired)" in rows["lapsed"] and "(expired)" not in rows["fresh"]
    assert "2026-11-02" not in rows["fresh"]
    assert lines[-1] == "3 keys, 2 in use"
