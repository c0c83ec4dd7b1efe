"""`looptrack db`: the database schema and its retention."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from looptrack.cli.common import fail, load_settings
from schemas.retention import PRUNE_BATCH_ROWS

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("migrate")
def db_migrate() -> None:
    """Create the database if missing, then create or upgrade the schema (idempotent)."""
    from schemas.migrations import DatabaseMissingError, ensure_database, migrate

    settings = load_settings()
    try:
        ensure_database(settings.database_url, create=settings.db_create)
        applied = migrate(
            settings.database_url, timescaledb=settings.timescaledb, timezone=settings.timezone
        )
    except DatabaseMissingError as exc:
        raise fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise fail(f"migration failed: {exc}".strip()) from exc
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@app.command("prune")
def db_prune(
    batch_rows: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Rows deleted per transaction.")
    ] = PRUNE_BATCH_ROWS,
) -> None:
    """Delete raw events, their ids, quarter-hour rollups and dead letters older than
    LOOPTRACK_RETENTION_DAYS (in short batches, beside a running ingest; idempotent). Hour
    and day rollups are kept. Waits while another run is in progress."""
    from datetime import timedelta

    from schemas.retention import prune

    settings = load_settings()
    retention = timedelta(days=settings.retention_days)
    try:
        report = prune(settings.database_url, retention, batch_rows=batch_rows)
    except psycopg.OperationalError as exc:
        raise fail(f"cannot connect to the database: {exc}".strip()) from exc
    except psycopg.Error as exc:
        raise fail(f"prune failed: {exc}".strip()) from exc
    assert report is not None  # None only when not waiting for another run
    typer.echo(
        f"pruned what is older than {report.cutoff:%Y-%m-%dT%H:%M:%SZ} "
        f"(LOOPTRACK_RETENTION_DAYS={settings.retention_days}) in {report.batches} batches, "
        f"{report.seconds:.1f} s:"
    )
    for table, count in report.deleted.items():
        typer.echo(f"  {table}: {count} rows")
    if report.chunks_dropped:
        typer.echo(f"  events: {report.chunks_dropped} TimescaleDB chunks dropped")
    if report.horizon_ahead:
        typer.echo(
            "warning: the database had been pruned further than this setting: another "
            "process runs with a shorter LOOPTRACK_RETENTION_DAYS",
            err=True,
        )
