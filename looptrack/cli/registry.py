"""Registering things: `looptrack seed`, `looptrack devices` and `looptrack keys`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import psycopg
import typer
import yaml
from pydantic import ValidationError

from looptrack.cli.broker import sync_broker_files
from looptrack.cli.common import EXIT_BAD_INPUT, connect, fail, load_settings
from schemas.broker_accounts import AccountError, AccountRole, set_password

devices_app = typer.Typer(help="Device registry.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


def seed(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON file.")],
) -> None:
    """Upsert packaging types, products, sites and devices from a YAML or JSON file."""
    from schemas.registry import SeedFile, apply_seed

    try:
        raw = file.read_text("utf-8")
        data = json.loads(raw) if file.suffix == ".json" else yaml.safe_load(raw)
        records = SeedFile.model_validate(data or {})
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        # pydantic's ValidationError is a ValueError and names the bad field.
        raise fail(f"{file}: {exc}", EXIT_BAD_INPUT) from exc
    with connect(load_settings()) as conn:
        try:
            counts = apply_seed(conn, records)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise fail(f"{file}: {exc.diag.message_detail or exc}", EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise fail("the schema is missing: run `looptrack db migrate` first") from exc
    typer.echo(", ".join(f"{count} {name}" for name, count in counts.items()))


@devices_app.command("add")
def devices_add(
    device_id: Annotated[str, typer.Argument(help="Device id: letters, digits, '.', '_', '-'.")],
    site: Annotated[str, typer.Option(help="Id of the site the device stands at.")],
    kind: Annotated[str, typer.Option(help="rvm, sorter, filler, washer, pos or other.")],
) -> None:
    """Register a device so its events are accepted."""
    from schemas.registry import Device, insert_device

    try:
        device = Device.model_validate({"id": device_id, "site": site, "kind": kind})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"invalid device: {problems}", EXIT_BAD_INPUT) from exc
    settings = load_settings()
    with connect(settings) as conn:
        try:
            insert_device(conn, device)
            password = set_password(conn, device_id, AccountRole.DEVICE, device_id=device_id)
        except psycopg.errors.UniqueViolation as exc:
            raise fail(f"device {device_id!r} is already registered", EXIT_BAD_INPUT) from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise fail(f"unknown site {site!r}: register it first", EXIT_BAD_INPUT) from exc
        except AccountError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise fail("the schema is missing: run `looptrack db migrate` first") from exc
        conn.commit()
        sync_broker_files(conn, settings)
    typer.echo(f"device {device_id} registered at site {site}")
    typer.echo(f"MQTT username {device_id}; its password (shown once) on the next line:")
    typer.echo(password)


@devices_app.command("revoke")
def devices_revoke(
    device_id: Annotated[str, typer.Argument(help="The device whose MQTT login ends.")],
) -> None:
    """Take the device's MQTT password away: the broker refuses it from the next login."""
    from schemas.broker_accounts import revoke

    settings = load_settings()
    with connect(settings) as conn:
        if not revoke(conn, device_id):
            raise fail(f"device {device_id!r} has no active MQTT account", EXIT_BAD_INPUT)
        conn.commit()
        sync_broker_files(conn, settings)
    typer.echo(f"device {device_id} revoked")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, operator, brand or device.")],
    brand: Annotated[str | None, typer.Option(help="The brand a brand key is bound to.")] = None,
    device: Annotated[str | None, typer.Option(help="The device a device key posts as.")] = None,
    name: Annotated[str, typer.Option(help="What the key is for, for the audit trail.")] = "",
    expires: Annotated[
        str | None,
        typer.Option(
            help="When the key stops working: hours or days from now (12h, 90d), a date "
            "(2027-03-01, from 00:00 UTC) or a date-time with its offset. Default: never."
        ),
    ] = None,
) -> None:
    """Create an API key and print it once, alone on the last line (only its hash is kept)."""
    from datetime import UTC, datetime

    from schemas.api_keys import KeyRequestError, Role, issue_key, parse_expiry

    try:
        chosen = Role(role)
    except ValueError as exc:
        raise fail(
            f"unknown role {role!r}: admin, operator, brand or device", EXIT_BAD_INPUT
        ) from exc
    if (chosen is Role.BRAND) != (brand is not None):
        raise fail("--brand goes with --role brand, and only with it", EXIT_BAD_INPUT)
    if (chosen is Role.DEVICE) != (device is not None):
        raise fail("--device goes with --role device, and only with it", EXIT_BAD_INPUT)
    try:
        expires_at = parse_expiry(expires, datetime.now(UTC)) if expires is not None else None
    except KeyRequestError as exc:
        raise fail(f"--expires: {exc}", EXIT_BAD_INPUT) from exc
    with connect(load_settings()) as conn:
        try:
            issued = issue_key(
                conn,
                chosen,
                name or f"{chosen.value} key",
                brand=brand,
                device_id=device,
                expires_at=expires_at,
            )
        except KeyRequestError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise fail("the schema is missing: run `looptrack db migrate` first") from exc
    record = issued.record
    if record.expires_at is not None:
        typer.echo(f"key {record.id} expires {record.expires_at:%Y-%m-%d %H:%M:%S%z}")
    typer.echo(f"{chosen.value} key created; it is shown only now:")
    typer.echo(issued.key)


@keys_app.command("list")
def keys_list() -> None:
    """Every API key: id, name, role, what it is bound to, when created, when it expires,
    when last used (to within 5 minutes) and when revoked (never the key, which only its
    holder has)."""
    from rich.console import Console
    from rich.table import Table

    from schemas.api_keys import LAST_USED_PRECISION_S, list_keys

    with connect(load_settings()) as conn:
        try:
            keys = list_keys(conn)
        except psycopg.errors.UndefinedTable as exc:
            raise fail("the schema is missing: run `looptrack db migrate` first") from exc
    last_used = f"last used (±{LAST_USED_PRECISION_S // 60} min)"
    table = Table(
        "id", "name", "role", "bound to", "created", "expires", last_used, "revoked", box=None
    )
    for key in keys:
        bound = ""
        if key.brand is not None:
            bound = f"brand {key.brand}"
        elif key.device_id is not None:
            bound = f"device {key.device_id}"
        expires = f"{key.expires_at:%Y-%m-%d %H:%M:%S%z}" if key.expires_at else ""
        table.add_row(
            str(key.id), key.name, key.role.value, bound,
            f"{key.created_at:%Y-%m-%d %H:%M:%S%z}",
            f"{expires} (expired)" if key.state == "expired" else expires,
            f"{key.last_used_at:%Y-%m-%d %H:%M%z}" if key.last_used_at else "",
            f"{key.revoked_at:%Y-%m-%d %H:%M:%S%z}" if key.revoked_at else "",
        )  # fmt: skip
    Console(width=240).print(table)
    in_use = sum(key.state == "active" for key in keys)
    typer.echo(f"{len(keys)} key{'' if len(keys) == 1 else 's'}, {in_use} in use")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (keys list).")],
) -> None:
    """Revoke an API key: every request with it is refused from now on (401)."""
    import uuid

    from schemas.api_keys import revoke_key

    try:
        parsed = uuid.UUID(key_id)
    except ValueError as exc:
        raise fail(
            f"{key_id!r} is not a key id (a UUID: looptrack keys list)", EXIT_BAD_INPUT
        ) from exc
    with connect(load_settings()) as conn:
        revoked = revoke_key(conn, parsed)
        conn.commit()
    if revoked is None:
        raise fail(f"no key {parsed} (looptrack keys list)", EXIT_BAD_INPUT)
    at, now = revoked
    typer.echo(
        f"key {parsed} revoked"
        if now
        else f"key {parsed} was revoked already, {at:%Y-%m-%d %H:%M:%S%z}"
    )
