"""Shared fixtures: per-test databases cloned from a migrated template, a Mosquitto
started with the project's config, and ingest workers run as real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from psycopg.conninfo import make_conninfo

from looptrack.local_services import LocalMosquitto, free_port
from schemas.migrations import migrate
from tests.factories import assert_identity

Broker = LocalMosquitto
__all__ = ["Broker", "free_port"]

ROOT = Path(__file__).resolve().parent.parent
# Server holding the test databases; CI and the dev machine both have it here.
PG_SERVER = os.environ.get("LOOPTRACK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def wait_until(
    check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_SERVER, autocommit=True)


# Tries at cloning a template that a backend is still leaving (see close_to_connections).
CLONE_ATTEMPTS = 20


def create_database(name: str, template: str | None = None) -> str:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    for attempt in range(CLONE_ATTEMPTS):
        try:
            with _admin() as conn:
                conn.execute(query)
            break
        except psycopg.errors.ObjectInUse:
            # A backend that was connected when the template was closed may take a moment
            # to exit; nothing new can connect, so this ends.
            if template is None or attempt == CLONE_ATTEMPTS - 1:
                raise
            close_to_connections(template)
            time.sleep(0.1)
    return make_conninfo(PG_SERVER, dbname=name)


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def close_to_connections(name: str) -> None:
    """Make database `name` a pure template: no new connections, none left open. With
    TimescaleDB its scheduler connects to every database holding the extension, and a
    template with a connection open cannot be cloned (timescale/timescaledb#4048)."""
    with _admin() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A database migrated once per session; tests clone it."""
    name = f"lt_tpl_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    migrate(url)
    close_to_connections(name)
    yield name
    drop_database(name)


@pytest.fixture(scope="session")
def plain_template_db() -> Iterator[str]:
    """A database migrated once per session without TimescaleDB, even on a server that
    has it (LOOPTRACK_TEST_PG): for tests of the plain-PostgreSQL branch, such as pruning
    events row by row where a hypertable drops whole chunks."""
    name = f"lt_plain_tpl_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    migrate(url, timescaledb="off")
    close_to_connections(name)
    yield name
    drop_database(name)


@contextmanager
def fresh_database(template_db: str) -> Iterator[str]:
    """The URL of a new database copied from the migrated template, dropped afterwards."""
    name = f"lt_{uuid.uuid4().hex[:12]}"
    url = create_database(name, template=template_db)
    try:
        yield url
    finally:
        drop_database(name)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own; for a test marked plain_postgres,
    one migrated without TimescaleDB (plain_template_db), also on a server that has it."""
    if request.node.get_closest_marker("plain_postgres"):
        template_db = request.getfixturevalue("plain_template_db")
    with fresh_database(template_db) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to this test's database."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One project-configured Mosquitto for the session; tests isolate by topic root."""
    instance = Broker(tmp_path_factory.mktemp("mosquitto"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def topic_root() -> str:
    return f"lt-test/{uuid.uuid4().hex[:12]}"


@dataclass
class Worker:
    """`looptrack ingest` as a subprocess, with its own client id and log file."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Worker:
        """Start the worker; with `wait`, return once its subscriptions are in place (a
        message published before the first subscription exists goes nowhere)."""
        already = self.log().count("subscribed group=") if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "looptrack", "ingest"], env=self.env, stdout=log, stderr=log
            )
        if wait:
            wait_until(
                lambda: (
                    self.log().count("subscribed group=") > already
                    or self.process.poll() is not None
                ),  # type: ignore[union-attr]
                30,
                "worker subscription",
            )
            self.assert_running()
        return self

    def terminate(self, timeout_s: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, f"worker exited early:\n{self.log()[-3000:]}"


def service_env(db_url: str, broker: Broker, topic_root: str) -> dict[str, str]:
    """Environment for a looptrack process talking to this test's database and broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPTRACK_")}
    env.update(
        LOOPTRACK_DATABASE_URL=db_url,
        LOOPTRACK_MQTT_URL=broker.url,
        LOOPTRACK_TOPIC_ROOT=topic_root,
        LOOPTRACK_MQTT_GROUP=f"g{uuid.uuid4().hex[:8]}",
        LOOPTRACK_INGEST_CLIENT_ID=f"ingest-{uuid.uuid4().hex[:8]}",
        PYTHONPATH=str(ROOT),
    )
    return env


def publish_all(broker: Broker, topic_root: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish (device, payload) pairs at QoS 1 and wait for every PUBACK."""
    # paho keys unacknowledged messages by packet id, which wraps at 65,535.
    assert len(messages) < 65_535, "publish at most 65,534 messages at once"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        infos = [
            client.publish(f"{topic_root}/devices/{device}/events", payload, qos=1)
            for device, payload in messages
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def start_publisher(
    path: Path, db_url: str, broker: Broker, topic_root: str
) -> subprocess.Popen[bytes]:
    """`python -m devices.replay` as a process of its own, publishing the JSON lines of
    `path`; its stderr goes to a file beside `path` (`.err`)."""
    with path.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "devices.replay", "--no-status", str(path)],
            env=service_env(db_url, broker, topic_root),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


@pytest.fixture
def make_worker(
    db_url: str, broker: Broker, topic_root: str, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start ingest workers for this test; all are killed at the end."""
    started: list[Worker] = []
    env = service_env(db_url, broker, topic_root)

    def start(wait: bool = True, **overrides: str) -> Worker:
        worker = Worker({**env, **overrides}, tmp_path / f"worker{len(started)}.log").start(wait)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process and worker.process.poll() is None:
            worker.kill()
    # Whatever the test did to them, the workers' books balance: received = stored +
    # duplicates + dead-lettered (a kill lands between commits, and each commit moves the
    # counters with the rows). Tests where only workers write compare with the tables too.
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert_identity(conn)
