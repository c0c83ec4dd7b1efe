"""What every command shares: exit codes, the failure message, settings and a database
connection."""

from __future__ import annotations

from typing import Any

import psycopg
import typer
from pydantic import ValidationError

from schemas.settings import Settings, get_settings

# Exit codes: 1 = failed at run time, 2 = bad input (typer uses 2 for usage errors too).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print `message` as an error on standard error; the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    """The LOOPTRACK_* settings; exit 2 naming the bad one."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise fail(f"invalid LOOPTRACK_* setting:\n{exc}", EXIT_BAD_INPUT) from exc


def connect(settings: Settings) -> psycopg.Connection[Any]:
    """A connection to the database; exit 1 saying why not."""
    try:
        return psycopg.connect(settings.database_url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise fail(f"cannot connect to the database: {exc}".strip()) from exc
