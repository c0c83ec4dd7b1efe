"""`looptrack demo` driven as a user runs it: a subprocess, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from looptrack.demo import DemoError, fresh_database
from tests.conftest import PG_SERVER, Broker, drop_database, free_port, service_env, wait_until


def _get(url: str, key: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Accept", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment mentions `marker` (the demo's own database)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class RunningDemo:
    process: subprocess.Popen[bytes]
    name: str  # its database
    port: int
    output: Path

    def text(self) -> str:
        return self.output.read_text()


@contextmanager
def running_demo(broker: Broker, topic_root: str, tmp_path: Path) -> Iterator[RunningDemo]:
    """`looptrack demo` as a user starts it, in a database and on a port of its own;
    afterwards nothing of it is left running, and its database is gone."""
    name = f"lt_demo_{uuid.uuid4().hex[:10]}"  # the demo creates and migrates it
    port = free_port()
    output = tmp_path / "stdout"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "looptrack", "demo", "--port", str(port), "--database", name],
            env=service_env(PG_SERVER, broker, topic_root),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        yield RunningDemo(process, name, port, output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in _processes_with(name):
            os.kill(pid, signal.SIGKILL)
        drop_database(name)


def test_demo_comes_up_shows_statistics_and_stops_cleanly_on_ctrl_c(
    broker: Broker, topic_root: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    with running_demo(broker, topic_root, tmp_path) as demo:
        url = make_conninfo(PG_SERVER, dbname=demo.name)
        base = f"http://127.0.0.1:{demo.port}"
        text = wait_until(
            lambda: "Ctrl-C stops" in (t := demo.text()) and t,
            30,
            "the demo's welcome text",
        )
        key_match = re.search(r"operator key (\S+)", text)
        item_match = re.search(r"an item +(\S+)", text)
        assert key_match and item_match, text
        key = key_match.group(1)
        assert f"{base}/docs" in text

        # Non-zero statistics within 30 s of the command. The welcome comes once the
        # history is published; the worker may still be storing its last batches then
        # (on a loaded machine), so the figures are asked for until the 30 s are up.
        def statistics() -> set[str] | None:
            """The packaging types with trips, once every type has sales and returns."""
            rates = _get(f"{base}/v1/stats/return-rates?bucket=total", key)["rows"]
            typed = {row["packaging_type"]: row for row in rates if row["packaging_type"]}
            reuse = _get(f"{base}/v1/stats/reuse", key)["rows"]
            reused = {row["packaging_type"] for row in reuse if row["trips"] > 0}
            complete = {"pet-0.5l", "can-0.33l", "glass-0.5l", "crate-24"} <= set(typed) and all(
                row["sold"] > 0 and row["returned"] > 0 for row in typed.values()
            )
            return reused if complete and reused >= {"glass-0.5l", "crate-24"} else None

        reused = wait_until(
            statistics, 30 - (time.monotonic() - began), "non-zero statistics within 30 s"
        )
        assert reused == {"glass-0.5l", "crate-24"}
        assert time.monotonic() - began < 30
        # The printed item link resolves on the public resolver.
        item = _get(item_match.group(1))
        assert item["trips"] >= 1

        # Live traffic keeps arriving.
        with psycopg.connect(url) as conn:

            def stored() -> int:
                row = conn.execute("SELECT count(*) FROM events").fetchone()
                conn.commit()
                assert row is not None
                return int(row[0])

            before = stored()
            wait_until(lambda: stored() > before + 20, 15, "live events stored")

        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(90) == 0, demo.text()[-3000:]
        assert _processes_with(demo.name) == [], "the worker or the API outlived the demo"
        final = demo.text()
        published = re.search(r"published (\d+) events", final)
        assert published, final[-2000:]
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None and row[0] == int(published.group(1))  # none lost
        assert "looptrack demo stopped" in final


def test_demo_says_what_is_missing_and_how_to_start_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPTRACK_")}
    env.update(
        LOOPTRACK_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/looptrack",
        LOOPTRACK_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "looptrack", "demo", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "PostgreSQL does not answer" in result.stderr
    assert "pg_ctlcluster" in result.stderr
    assert "Mosquitto does not answer" in result.stderr
    assert "mosquitto -d -c /etc/mosquitto/mosquitto.conf" in result.stderr
    assert "looptrack demo is running" not in result.stdout


def test_demo_refuses_a_port_in_use_before_touching_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "looptrack", "demo", "--port", str(port)],
            env={k: v for k, v in os.environ.items() if not k.startswith("LOOPTRACK_")},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "--port" in result.stderr


def test_closing_the_terminal_stops_the_demo_and_its_services(
    broker: Broker, topic_root: str, tmp_path: Path
) -> None:
    """SIGHUP, as when the terminal closes: the API and the worker run in process groups
    of their own, so the demo must stop them; the port is free again."""
    with running_demo(broker, topic_root, tmp_path) as demo:
        wait_until(lambda: "Ctrl-C stops" in demo.text(), 60, "the demo's welcome text")
        assert len(_processes_with(demo.name)) >= 2  # the worker and the API
        demo.process.send_signal(signal.SIGHUP)
        assert demo.process.wait(90) == 0, demo.text()[-3000:]
        assert _processes_with(demo.name) == [], "the worker or the API outlived the demo"
        assert "SIGHUP: stopping" in demo.text()
        with socket.socket() as probe:
            # As uvicorn binds: the closed connections' TIME_WAIT does not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", demo.port))  # raises while the API still listens on it


def test_the_demo_starts_afresh_in_its_own_database_and_refuses_one_with_other_data() -> None:
    """A second demo never adds to the first one's numbers: the database it made is made
    again, empty. A database of that name it did not make, holding tables, is refused and
    left as it was."""
    name = f"lt_demo_{uuid.uuid4().hex[:10]}"
    try:
        url = fresh_database(PG_SERVER, name)
        assert url == make_conninfo(PG_SERVER, dbname=name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE earlier_run (n int)")
        assert fresh_database(PG_SERVER, name) == url
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT to_regclass('earlier_run')").fetchone()
        assert row == (None,), "the earlier run's data survived"

        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(name)))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE someone_elses (n int)")
            conn.execute("INSERT INTO someone_elses VALUES (1)")
        with pytest.raises(DemoError, match=r"holds other data.*--database"):
            fresh_database(PG_SERVER, name)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT n FROM someone_elses").fetchall() == [(1,)]
    finally:
        drop_database(name)
