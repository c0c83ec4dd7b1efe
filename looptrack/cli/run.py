"""The commands that run until stopped: `looptrack ingest`, `api` and `demo`."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from looptrack.cli.common import EXIT_FAILED, fail, load_settings

log = logging.getLogger("looptrack.cli")

# How long a stopping worker waits for a retention batch in progress to end (s).
PRUNE_STOP_WAIT_S = 10.0


def ingest() -> None:
    """Run the ingest worker until SIGTERM/SIGINT, then drain and exit 0."""
    from datetime import timedelta

    from ingest.worker import GC_THRESHOLD, GIL_SWITCH_INTERVAL_S, IngestWorker, open_pool
    from schemas.retention import prune_periodically

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.freeze()  # modules, settings, compiled queries: alive as long as the process
    gc.set_threshold(*GC_THRESHOLD)
    settings = load_settings()
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("signal=%s received: draining", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    pool = open_pool(settings)
    # Retention runs beside the ingest, on its own connection (schemas.retention).
    pruning = prune_periodically(
        settings.database_url, timedelta(days=settings.retention_days), stop
    )
    try:
        drained = IngestWorker(settings, pool).run(stop)
    finally:
        pool.close()
        pruning.join(PRUNE_STOP_WAIT_S)
    if not drained:
        raise typer.Exit(EXIT_FAILED)


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port, log_config=None)


def demo(
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The API's TCP port.")] = 8000,
    rate: Annotated[
        float, typer.Option(min=0.1, help="Live simulated events/s across all devices.")
    ] = 20.0,
    log_dir: Annotated[
        Path | None, typer.Option(help="Where the worker's and the API's logs go.")
    ] = None,
    database: Annotated[
        str,
        typer.Option(
            help="The demo's own database, on the server of LOOPTRACK_DATABASE_URL: made "
            "afresh at each start; one that holds other data is refused."
        ),
    ] = "looptrack_demo",
) -> None:
    """Bring the whole system up on this machine with a sample world and live traffic;
    Ctrl-C stops everything."""
    from looptrack.demo import DemoError, DemoOptions, run_demo

    settings = load_settings()
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        typer.echo(f"{signal.Signals(signum).name}: stopping", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # The terminal closed: the API and the worker run in process groups of their own, and
    # would otherwise outlive the demo with the port bound.
    signal.signal(signal.SIGHUP, request_stop)
    try:
        run_demo(settings, DemoOptions(host, port, rate, log_dir, database), stop)
    except DemoError as exc:
        raise fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise fail(f"database: {exc}".strip()) from exc
    typer.echo("looptrack demo stopped")
