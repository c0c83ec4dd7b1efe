"""`looptrack demo`: the whole system on this machine, with a sample world and live traffic.

Checks that PostgreSQL and Mosquitto answer (and says how to start the one that does
not), makes its own database afresh (never adding to an earlier run's numbers, never
writing into a database that holds other data), migrates, registers the simulator's small
Norwegian-style world, starts the ingest worker and the API as child processes, publishes
30 days of simulated past and then live traffic, prints where to look, and stops
everything on Ctrl-C, SIGTERM or SIGHUP (the terminal closed)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from devices.simulator import builtin_scenario, world_seed
from devices.simulator.runner import BrokerUnreachable, Progress, RunResult, run_live
from schemas.api_keys import Role, create_key
from schemas.digital_link import build_uri
from schemas.migrations import migrate
from schemas.registry import apply_seed
from schemas.settings import Settings

# The demo's own database, on the server of LOOPTRACK_DATABASE_URL (--database).
DEMO_DATABASE = "looptrack_demo"
# Its comment: what lets the next demo drop it and start afresh.
DEMO_MARK = "looptrack demo: made afresh by every start of looptrack demo"
# The sample world and its traffic.
SCENARIO = "small"
BACKFILL = timedelta(days=30)  # simulated past published first: statistics start full
DEFAULT_RATE = 20.0  # live events/s across all devices
# How long each service may take to come up (s).
READY_TIMEOUT_S = 30.0
# How long the welcome waits for the worker to have the published history (s).
HISTORY_TIMEOUT_S = 120.0
# How long a service may take to drain and exit after SIGTERM before it is killed (s).
STOP_TIMEOUT_S = 30.0
# What the worker logs once its subscription is in place: events from then on are kept.
WORKER_READY = "subscribed group="


class DemoError(RuntimeError):
    """The demo cannot start or a service died; the message says what to do."""


@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    rate: float = DEFAULT_RATE
    log_dir: Path | None = None  # default: a new temporary directory
    database: str = DEMO_DATABASE


def missing_services(settings: Settings) -> list[str]:
    """One message per service that does not answer, each with how to start it."""
    problems = []
    try:
        server = make_conninfo(settings.database_url, dbname="postgres", connect_timeout=3)
        psycopg.connect(server).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(
            f"PostgreSQL does not answer at {settings.database_url} ({reason}).\n"
            "  Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            "  (Debian), or: sudo systemctl start postgresql\n"
            "  or point LOOPTRACK_DATABASE_URL at a running server."
        )
    endpoint = settings.mqtt
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=3).close()
    except OSError as exc:
        problems.append(
            f"Mosquitto does not answer at {settings.mqtt_url} ({exc.strerror or exc}).\n"
            "  Start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf"
            "  or: sudo systemctl start mosquitto\n"
            "  or point LOOPTRACK_MQTT_URL at a running broker."
        )
    return problems


def fresh_database(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url`, new and empty, marked as
    the demo's. One an earlier demo made is dropped and made again, so numbers never add
    up over runs; any other database of that name that holds tables is refused, untouched."""
    url = make_conninfo(server_url, dbname=name)
    database = sql.Identifier(name)
    try:
        with psycopg.connect(
            make_conninfo(server_url, dbname="postgres"), autocommit=True, connect_timeout=10
        ) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
            if row is not None and row[0] == DEMO_MARK:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(database))
            elif row is not None and _holds_tables(url):
                raise DemoError(
                    f"database {name!r} holds other data: the demo writes its sample world"
                    " only into a database of its own. Pass --database with a new name."
                )
            if row is None or row[0] == DEMO_MARK:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(database))
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(database, sql.Literal(DEMO_MARK))
            )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DemoError(f"cannot make the demo's database {name!r}: {reason}") from exc
    return url


def _holds_tables(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'v', 'm')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_%'"
        ).fetchone()
    return row is not None and row[0] > 0


def _port_free(host: str, port: int) -> bool:
    """Whether nothing listens on the port. SO_REUSEADDR as uvicorn binds: the closed
    connections of a demo just stopped (TIME_WAIT) do not make the port look taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Service:
    """A `looptrack` child process whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{args[0]}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "looptrack", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own process group: Ctrl-C reaches the demo alone, which then stops the
            # traffic first, the API next and the worker last (it drains).
            process_group=0,
        )

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def died(self) -> str | None:
        """Why the service is gone (with the end of its log), or None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        tail = "\n".join("  " + line for line in self.log_text().splitlines()[-15:])
        return f"the {self.name} exited with code {code}; the end of {self.log_path}:\n{tail}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _wait_for(
    ready: Callable[[], bool], services: list[Service], what: str, stop: threading.Event
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        for service in services:
            if (why := service.died()) is not None:
                raise DemoError(why)
        if stop.is_set():
            return
        if time.monotonic() > deadline:
            raise DemoError(f"{what} not ready after {READY_TIMEOUT_S:g} s")
        time.sleep(0.1)


def _wait_for_history(
    database_url: str, published: int, services: list[Service], stop: threading.Event
) -> None:
    """Until the worker has taken in `published` events (stored, duplicate or
    dead-lettered), or HISTORY_TIMEOUT_S: a slow machine gets its welcome late, not never."""
    deadline = time.monotonic() + HISTORY_TIMEOUT_S
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline and not stop.is_set():
            row = conn.execute("SELECT coalesce(sum(received), 0) FROM ingest_counters").fetchone()
            if row is not None and row[0] >= published:
                return
            for service in services:
                if (why := service.died()) is not None:
                    raise DemoError(why)
            time.sleep(0.2)


def _api_answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _sample_item(conn: psycopg.Connection[Any]) -> tuple[str, str] | None:
    """The serialised item returned most often so far: the most telling resolver page."""
    row = conn.execute(
        "SELECT item_class, serial FROM events WHERE serial IS NOT NULL AND type = 'returned' "
        "GROUP BY item_class, serial ORDER BY count(*) DESC, item_class, serial LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def run_demo(settings: Settings, options: DemoOptions, stop: threading.Event) -> None:
    """Run until `stop` is set; DemoError when something is missing or a service dies."""
    if problems := missing_services(settings):
        raise DemoError("\n".join(problems))
    if not _port_free(options.host, options.port):
        raise DemoError(f"port {options.port} on {options.host} is in use: pass --port")
    base = f"http://{options.host}:{options.port}"
    # The QR/resolver base: the user's (environment or .env), else this API's address.
    chosen_base = settings.public_base_url
    public_base = (
        base if chosen_base == Settings.model_fields["public_base_url"].default else chosen_base
    )
    settings = settings.model_copy(
        update={"database_url": fresh_database(settings.database_url, options.database)}
    )
    env = {
        **os.environ,
        "LOOPTRACK_PUBLIC_BASE_URL": public_base,
        "LOOPTRACK_DATABASE_URL": settings.database_url,
    }
    migrate(settings.database_url, timescaledb=settings.timescaledb, timezone=settings.timezone)
    scenario = builtin_scenario(SCENARIO)
    with psycopg.connect(settings.database_url) as conn:
        counts = apply_seed(conn, world_seed(scenario))
        key = create_key(conn, Role.OPERATOR, "looptrack demo")
    print("registered " + ", ".join(f"{n} {name}" for name, n in counts.items()), flush=True)

    # One line per simulated device connecting would bury the welcome text.
    logging.getLogger("looptrack.device").setLevel(logging.WARNING)
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="looptrack-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    services: list[Service] = []
    traffic: threading.Thread | None = None
    failure: list[BaseException] = []
    try:
        services.append(Service("ingest worker", ["ingest"], log_dir, env))
        worker = services[0]
        _wait_for(lambda: WORKER_READY in worker.log_text(), services, "the worker", stop)
        services.append(
            Service(
                "API",
                ["api", "--host", options.host, "--port", str(options.port)],
                log_dir,
                env,
            )
        )
        _wait_for(lambda: _api_answers(base), services, "the API", stop)
        if stop.is_set():
            return

        backfilled = threading.Event()
        published_first: list[int] = []  # events out when the live part first reported

        def publish() -> None:
            def progress(report: Progress) -> None:
                if not published_first:  # the first report comes from the live part
                    published_first.append(report.published)
                backfilled.set()

            try:
                result: RunResult = run_live(
                    scenario,
                    settings.mqtt,
                    settings.topic_root,
                    stop,
                    progress,
                    rate=options.rate,
                    backfill=BACKFILL,
                )
                print(f"published {result.published} events", flush=True)
            except Exception as exc:  # noqa: BLE001 - re-raised by the main thread
                failure.append(exc)
                stop.set()
            finally:
                backfilled.set()

        traffic = threading.Thread(target=publish, name="simulator")
        traffic.start()
        backfilled.wait()
        if failure:
            raise failure[0]
        # The welcome names an item with trips: not before the worker has the history.
        if published_first:
            _wait_for_history(settings.database_url, published_first[0], services, stop)
        _print_welcome(settings, options, base, public_base, key, log_dir)
        while not stop.wait(0.5):
            for service in services:
                if (why := service.died()) is not None:
                    raise DemoError(why)
    finally:
        stop.set()
        if traffic is not None:
            traffic.join()
        for service in reversed(services):  # the API first, then the worker drains
            service.stop()
    if failure and not isinstance(failure[0], BrokerUnreachable | TimeoutError):
        raise failure[0]
    if failure:
        raise DemoError(f"the simulated devices lost the broker: {failure[0]}")


def _print_welcome(
    settings: Settings,
    options: DemoOptions,
    base: str,
    public_base: str,
    key: str,
    log_dir: Path,
) -> None:
    with psycopg.connect(settings.database_url) as conn:
        item = _sample_item(conn)
    item_line = (
        f"  an item      {build_uri(public_base, *item)}\n" if item else ""
    )  # the resolver page of a reusable bottle or crate
    print(
        "looptrack demo is running\n"
        f"  API docs     {base}/docs\n"
        f"  health       {base}/health\n"
        f"{item_line}"
        f"  operator key {key}\n"
        f"  try          curl -H 'Authorization: Bearer {key}' "
        f"'{base}/v1/stats/return-rates?bucket=total'\n"
        f"               curl -H 'Authorization: Bearer {key}' '{base}/v1/stats/reuse'\n"
        f"               curl -H 'Authorization: Bearer {key}' '{base}/v1/stats/materials'\n"
        f"  broker       {settings.mqtt_url}  (topics {settings.topic_root}/devices/+/events)\n"
        f"  database     {settings.database_url}\n"
        f"  logs         {log_dir}\n"
        f"30 days of simulated history published; live traffic at {options.rate:g} events/s. "
        "Ctrl-C stops everything; the next start makes the database afresh.",
        flush=True,
    )
