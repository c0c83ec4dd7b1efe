"""Acceptance: nothing is lost or doubled when the worker is SIGKILLed mid-stream or in the
middle of a COPY, when the database is unreachable for 10 s or crashes and restarts, or
when the broker restarts; the worker recovers by itself."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schemas.migrations import migrate
from tests.conftest import Broker, start_publisher, wait_until
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    assert_stored_exactly,
    count,
    event,
    seed_registry,
    write_replay_file,
)
from tests.local_postgres import LocalPostgres
from tests.tcp_proxy import CuttableProxy

pytestmark = [pytest.mark.slow, pytest.mark.fault]

DEVICES = ["rvm-1", "rvm-2", "sorter-1"]
# The worker's COPY into events as pg_stat_activity shows it (after the query's comment).
COPY_EVENTS = "%COPY events (event_id%"


def mixed_traffic(total: int) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """Half single-event messages, half batches of 100, over three devices."""
    events = [
        event(
            ("sold", "returned", "rejected")[i % 3],
            gtin=(GTIN_COLA, GTIN_CRATE)[i % 2],
            **({"reason": "damaged"} if i % 3 == 2 else {}),
        )
        for i in range(total)
    ]
    half = total // 2
    messages: list[tuple[str, Any]] = [(DEVICES[i % 2], e) for i, e in enumerate(events[:half])]
    messages += [(DEVICES[2], {"events": events[i : i + 100]}) for i in range(half, total, 100)]
    return messages, events


def test_sigkill_mid_stream_loses_and_doubles_nothing(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    seed_registry(db, DEVICES)
    messages, events = mixed_traffic(50_000)
    replay = write_replay_file(tmp_path / "events.jsonl", messages)
    first = make_worker()
    publisher = start_publisher(replay, db_url, broker, topic_root)

    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 5_000, 60, "first events")
    first.kill()
    killed_at = count(db, "SELECT count(*) FROM events")
    assert killed_at < 50_000, "the kill must land while events are still in flight"
    time.sleep(1)  # the broker queues for the dead worker's persistent session meanwhile
    # Same client id: the broker hands the session (queue and unacked messages) back.
    second = make_worker(LOOPTRACK_INGEST_CLIENT_ID=first.env["LOOPTRACK_INGEST_CLIENT_ID"])
    assert publisher.wait(180) == 0, replay.with_suffix(".err").read_text()
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 50_000, 120, "50,000 events")
    time.sleep(1)  # anything extra (a double) would arrive now
    assert second.terminate() == 0
    assert_stored_exactly(db, events)
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


def test_sigkill_during_a_copy_rolls_it_back_and_loses_nothing(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    seed_registry(db, DEVICES)
    # A test-only trigger slows the COPY into events to 2 ms a row, so the kill lands while
    # rows stream in; the sequence counts rows the server took in, committed or not.
    db.execute("CREATE SEQUENCE test_rows_copied")
    db.execute(
        "CREATE FUNCTION test_slow_copy() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM nextval('test_rows_copied'); PERFORM pg_sleep(0.002);"
        " RETURN NEW; END$$"
    )
    db.execute(
        "CREATE TRIGGER test_slow_copy BEFORE INSERT ON events"
        " FOR EACH ROW EXECUTE FUNCTION test_slow_copy()"
    )
    messages, events = mixed_traffic(6_000)
    replay = write_replay_file(tmp_path / "events.jsonl", messages)
    first = make_worker()
    publisher = start_publisher(replay, db_url, broker, topic_root)

    def rows_in_open_copy() -> int:
        """Rows inside a COPY not yet committed, while that COPY is running."""
        copying = count(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s",
            COPY_EVENTS,
        )
        copied = count(db, "SELECT last_value FROM test_rows_copied")
        return copied - count(db, "SELECT count(*) FROM events") if copying else 0

    wait_until(lambda: rows_in_open_copy() >= 100, 60, "a COPY 100 rows in")
    first.kill()
    killed_at = count(db, "SELECT count(*) FROM events")
    assert killed_at < 6_000
    # The server notices its client is gone and rolls the COPY back: none of its rows
    # (nor the claims of their ids made before it, in the same transaction) remain.
    wait_until(
        lambda: (
            count(
                db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND query LIKE %s",
                COPY_EVENTS,
            )
            == 0
        ),
        30,
        "the killed worker's COPY to end",
    )
    assert count(db, "SELECT count(*) FROM events") == killed_at
    assert count(db, "SELECT count(*) FROM event_ids") == killed_at
    db.execute("DROP TRIGGER test_slow_copy ON events")
    second = make_worker(LOOPTRACK_INGEST_CLIENT_ID=first.env["LOOPTRACK_INGEST_CLIENT_ID"])
    assert publisher.wait(120) == 0, replay.with_suffix(".err").read_text()
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 6_000, 120, "6,000 events")
    time.sleep(1)
    assert second.terminate() == 0
    assert_stored_exactly(db, events)
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL cluster of this test's own, migrated, to crash and restart."""
    server = LocalPostgres().init()
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE looptrack")
        url = make_conninfo(server.url, dbname="looptrack")
        migrate(url)
        yield server, url
    finally:
        server.destroy()


def test_database_crash_and_restart_mid_stream_loses_and_doubles_nothing(
    own_postgres: tuple[LocalPostgres, str],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    server, url = own_postgres
    with psycopg.connect(url, autocommit=True) as conn:
        seed_registry(conn, DEVICES)
    worker = make_worker(LOOPTRACK_DATABASE_URL=url)
    messages, events = mixed_traffic(30_000)
    publisher = start_publisher(
        write_replay_file(tmp_path / "events.jsonl", messages), url, broker, topic_root
    )

    def stored() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return count(conn, "SELECT count(*) FROM events")

    wait_until(lambda: stored() >= 3_000, 60, "first events")
    # Every server process quits at once, mid-transaction: a crash. Restart replays the WAL.
    before_crash = stored()
    server.stop("immediate")
    assert before_crash < 30_000, "the crash must land while events are still in flight"
    time.sleep(5)
    worker.assert_running()
    server.start()
    assert publisher.wait(120) == 0
    wait_until(lambda: stored() >= 30_000, 120, "30,000 events")
    time.sleep(1)
    assert worker.terminate() == 0
    assert "batch not stored, retrying" in worker.log()
    with psycopg.connect(url, autocommit=True) as conn:
        assert_stored_exactly(conn, events)


# The worker's drain timeout in the outage test (s); production's default is 30.
DRAIN_TIMEOUT_S = 5.0


def test_database_outage_pauses_ingest_and_loses_nothing(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    seed_registry(db, DEVICES)
    params = conninfo_to_dict(db_url)
    proxy = CuttableProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    worker = make_worker(
        LOOPTRACK_DATABASE_URL=make_conninfo(db_url, host="127.0.0.1", port=proxy.port),
        LOOPTRACK_INGEST_DRAIN_TIMEOUT_S=str(DRAIN_TIMEOUT_S),
    )
    messages, events = mixed_traffic(20_000)
    first, rest = messages[:2_000], messages[2_000:]
    publish = start_publisher(
        write_replay_file(tmp_path / "a.jsonl", first), db_url, broker, topic_root
    )
    assert publish.wait(60) == 0
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 2_000, 60, "first events")

    proxy.cut()
    publish = start_publisher(
        write_replay_file(tmp_path / "b.jsonl", rest), db_url, broker, topic_root
    )
    cut_at = time.monotonic()
    assert publish.wait(120) == 0
    time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))
    assert count(db, "SELECT count(*) FROM events") == 2_000, "nothing can be stored during the cut"
    worker.assert_running()
    # Stopped while the database is away: it gives up on what it holds after
    # its drain timeout, however many batches wait, and acknowledges none of them.
    stopped_at = time.monotonic()
    assert worker.terminate(timeout_s=DRAIN_TIMEOUT_S + 30) != 0
    assert time.monotonic() - stopped_at < DRAIN_TIMEOUT_S + 15, worker.log()[-4000:]
    assert "batch not stored, retrying" in worker.log()
    assert "giving up on" in worker.log()
    proxy.restore()

    # The broker kept the unacknowledged messages for the next run.
    again = make_worker(
        LOOPTRACK_DATABASE_URL=make_conninfo(db_url, host="127.0.0.1", port=proxy.port)
    )
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 20_000, 120, "20,000 events")
    time.sleep(1)
    assert again.terminate() == 0
    assert_stored_exactly(db, events)


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    db: psycopg.Connection[Any],
    db_url: str,
    tmp_path: Path,
    topic_root: str,
    make_worker: Any,
) -> None:
    # A broker of this test's own: restarting the session broker would disturb others.
    own = Broker(tmp_path / "broker")
    own.start()
    try:
        seed_registry(db, DEVICES)
        overrides = {"LOOPTRACK_MQTT_URL": own.url}
        worker = make_worker(**overrides)
        events = [event("returned") for _ in range(30_000)]
        messages = [(DEVICES[i % 3], e) for i, e in enumerate(events)]
        publisher = start_publisher(
            write_replay_file(tmp_path / "events.jsonl", messages), db_url, own, topic_root
        )
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 2_000, 60, "first events")
        # Frozen, the worker keeps its unacknowledged messages while the broker queues the
        # rest; then the broker restarts under both (a clean stop persists the queue).
        assert worker.process is not None
        worker.process.send_signal(signal.SIGSTOP)
        assert publisher.wait(120) == 0
        assert count(db, "SELECT count(*) FROM events") < 30_000
        own.stop()
        worker.process.send_signal(signal.SIGCONT)
        time.sleep(2)
        own.start()
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 30_000, 120, "all events")
        time.sleep(1)
        worker.assert_running()
        assert worker.terminate() == 0
        assert worker.log().count("connected to broker") == 2  # it reconnected by itself
        assert_stored_exactly(db, events)
    finally:
        own.stop()
