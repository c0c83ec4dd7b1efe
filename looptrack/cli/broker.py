"""`looptrack broker`: MQTT service accounts and the broker's password and ACL files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from looptrack.cli.common import EXIT_BAD_INPUT, connect, fail, load_settings
from schemas.broker_accounts import AccountError, AccountRole, set_password
from schemas.settings import Settings

app = typer.Typer(help="MQTT accounts and the broker's files.", no_args_is_help=True)


def sync_broker_files(conn: psycopg.Connection[Any], settings: Settings) -> None:
    """Rewrite the broker's files when they are configured; say so either way."""
    from schemas.broker_accounts import write_broker_files

    if settings.broker_password_file is None or settings.broker_acl_file is None:
        typer.echo(
            "note: LOOPTRACK_BROKER_PASSWORD_FILE / LOOPTRACK_BROKER_ACL_FILE are not set: "
            "the broker's files were not updated (`looptrack broker files` writes them)",
            err=True,
        )
        return
    try:
        accounts = write_broker_files(
            conn,
            settings.broker_password_file,
            settings.broker_acl_file,
            settings.topic_root,
            pid_file=settings.broker_pid_file,
        )
    except (OSError, ValueError) as exc:
        raise fail(f"the broker's files: {exc} (the database is updated)") from exc
    reloaded = " and reloaded the broker" if settings.broker_pid_file else ""
    typer.echo(
        f"wrote {settings.broker_password_file} and {settings.broker_acl_file} "
        f"({accounts} accounts){reloaded}",
        err=True,
    )


@app.command("account")
def broker_account(
    username: Annotated[str, typer.Argument(help="Account name, e.g. looptrack-ingest.")],
    role: Annotated[str, typer.Option(help="ingest (reads all devices) or api (relays).")],
) -> None:
    """Create a service account or give it a new password, printed once on the last line."""
    if role not in (AccountRole.INGEST, AccountRole.API):  # devices get theirs from `add`
        raise fail(f"unknown role {role!r}: ingest or api", EXIT_BAD_INPUT)
    chosen = AccountRole(role)
    settings = load_settings()
    with connect(settings) as conn:
        try:
            password = set_password(conn, username, chosen, device_id=None)
        except (AccountError, psycopg.errors.CheckViolation) as exc:
            raise fail(f"account {username!r}: {exc}", EXIT_BAD_INPUT) from exc
        conn.commit()
        sync_broker_files(conn, settings)
    typer.echo(f"MQTT username {username}; its password (shown once) on the next line:")
    typer.echo(password)


@app.command("files")
def broker_files(
    password_file: Annotated[
        Path | None, typer.Option(help="Default: LOOPTRACK_BROKER_PASSWORD_FILE.")
    ] = None,
    acl_file: Annotated[
        Path | None, typer.Option(help="Default: LOOPTRACK_BROKER_ACL_FILE.")
    ] = None,
) -> None:
    """(Re)write Mosquitto's password and ACL files from the database."""
    settings = load_settings()
    chosen = settings.model_copy(
        update={
            "broker_password_file": password_file or settings.broker_password_file,
            "broker_acl_file": acl_file or settings.broker_acl_file,
        }
    )
    if chosen.broker_password_file is None or chosen.broker_acl_file is None:
        raise fail(
            "give --password-file and --acl-file (or the LOOPTRACK_BROKER_* settings)",
            EXIT_BAD_INPUT,
        )
    with connect(settings) as conn:
        sync_broker_files(conn, chosen)
