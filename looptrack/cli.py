"""The `looptrack` command line: the one place that wires schemas, ingest and api together."""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
import typer
import yaml
from pydantic import ValidationError

from schemas.broker_accounts import AccountError, AccountRole, set_password
from schemas.logs import configure_logging
from schemas.retention import PRUNE_BATCH_ROWS
from schemas.settings import Settings, get_settings

if TYPE_CHECKING:
    from devices.simulator.scenario import Scenario

app = typer.Typer(help="looptrack: closed-loop packaging tracking.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
devices_app = typer.Typer(help="Device registry.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: inspect and re-ingest.", no_args_is_help=True)
broker_app = typer.Typer(help="MQTT accounts and the broker's files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(devices_app, name="devices")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(broker_app, name="broker")

log = logging.getLogger("looptrack.cli")

# How long a stopping worker waits for a retention batch in progress to end (s).
PRUNE_STOP_WAIT_S = 10.0
# Exit codes: 1 = failed at run time, 2 = bad input (typer uses 2 for usage errors too).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise _fail(f"invalid LOOPTRACK_* setting:\n{exc}", EXIT_BAD_INPUT) from exc


def _connect(settings: Settings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.database_url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise _fail(f"cannot connect to the database: {exc}".strip()) from exc


@app.callback()
def _main(
    log_level: Annotated[
        str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.", envvar="LOOPTRACK_LOG_LEVEL")
    ] = "INFO",
) -> None:
    configure_logging(log_level)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create the database if missing, then create or upgrade the schema (idempotent)."""
    from schemas.migrations import DatabaseMissingError, ensure_database, migrate

    settings = _settings()
    try:
        ensure_database(settings.database_url, create=settings.db_create)
        applied = migrate(
            settings.database_url, timescaledb=settings.timescaledb, timezone=settings.timezone
        )
    except DatabaseMissingError as exc:
        raise _fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise _fail(f"migration failed: {exc}".strip()) from exc
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@db_app.command("prune")
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

    settings = _settings()
    retention = timedelta(days=settings.retention_days)
    try:
        report = prune(settings.database_url, retention, batch_rows=batch_rows)
    except psycopg.OperationalError as exc:
        raise _fail(f"cannot connect to the database: {exc}".strip()) from exc
    except psycopg.Error as exc:
        raise _fail(f"prune failed: {exc}".strip()) from exc
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


@app.command()
def ingest() -> None:
    """Run the ingest worker until SIGTERM/SIGINT, then drain and exit 0."""
    from datetime import timedelta

    from ingest.worker import GC_THRESHOLD, GIL_SWITCH_INTERVAL_S, IngestWorker, open_pool
    from schemas.retention import prune_periodically

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.freeze()  # modules, settings, compiled queries: alive as long as the process
    gc.set_threshold(*GC_THRESHOLD)
    settings = _settings()
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


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(_settings()), host=host, port=port, log_config=None)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The API's TCP port.")] = 8000,
    rate: Annotated[
        float, typer.Option(min=0.1, help="Live simulated events/s across all devices.")
    ] = 20.0,
    log_dir: Annotated[
        Path | None, typer.Option(help="Where the worker's and the API's logs go.")
    ] = None,
) -> None:
    """Bring the whole system up on this machine with a sample world and live traffic;
    Ctrl-C stops everything."""
    from looptrack.demo import DemoError, DemoOptions, run_demo

    settings = _settings()
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        typer.echo(f"{signal.Signals(signum).name}: stopping", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        run_demo(settings, DemoOptions(host, port, rate, log_dir), stop)
    except DemoError as exc:
        raise _fail(str(exc)) from exc
    except psycopg.Error as exc:
        raise _fail(f"database: {exc}".strip()) from exc
    typer.echo("looptrack demo stopped")


@app.command()
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
        raise _fail(f"{file}: {exc}", EXIT_BAD_INPUT) from exc
    with _connect(_settings()) as conn:
        try:
            counts = apply_seed(conn, records)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise _fail(f"{file}: {exc.diag.message_detail or exc}", EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise _fail("the schema is missing: run `looptrack db migrate` first") from exc
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
        raise _fail(f"invalid device: {problems}", EXIT_BAD_INPUT) from exc
    settings = _settings()
    with _connect(settings) as conn:
        try:
            insert_device(conn, device)
            password = set_password(conn, device_id, AccountRole.DEVICE, device_id=device_id)
        except psycopg.errors.UniqueViolation as exc:
            raise _fail(f"device {device_id!r} is already registered", EXIT_BAD_INPUT) from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise _fail(f"unknown site {site!r}: register it first", EXIT_BAD_INPUT) from exc
        except AccountError as exc:
            raise _fail(str(exc), EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise _fail("the schema is missing: run `looptrack db migrate` first") from exc
        conn.commit()
        _sync_broker_files(conn, settings)
    typer.echo(f"device {device_id} registered at site {site}")
    typer.echo(f"MQTT username {device_id}; its password (shown once) on the next line:")
    typer.echo(password)


@devices_app.command("revoke")
def devices_revoke(
    device_id: Annotated[str, typer.Argument(help="The device whose MQTT login ends.")],
) -> None:
    """Take the device's MQTT password away: the broker refuses it from the next login."""
    from schemas.broker_accounts import revoke

    settings = _settings()
    with _connect(settings) as conn:
        if not revoke(conn, device_id):
            raise _fail(f"device {device_id!r} has no active MQTT account", EXIT_BAD_INPUT)
        conn.commit()
        _sync_broker_files(conn, settings)
    typer.echo(f"device {device_id} revoked")


def _sync_broker_files(conn: psycopg.Connection[Any], settings: Settings) -> None:
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
        raise _fail(f"the broker's files: {exc} (the database is updated)") from exc
    reloaded = " and reloaded the broker" if settings.broker_pid_file else ""
    typer.echo(
        f"wrote {settings.broker_password_file} and {settings.broker_acl_file} "
        f"({accounts} accounts){reloaded}",
        err=True,
    )


@broker_app.command("account")
def broker_account(
    username: Annotated[str, typer.Argument(help="Account name, e.g. looptrack-ingest.")],
    role: Annotated[str, typer.Option(help="ingest (reads all devices) or api (relays).")],
) -> None:
    """Create a service account or give it a new password, printed once on the last line."""
    if role not in (AccountRole.INGEST, AccountRole.API):  # devices get theirs from `add`
        raise _fail(f"unknown role {role!r}: ingest or api", EXIT_BAD_INPUT)
    chosen = AccountRole(role)
    settings = _settings()
    with _connect(settings) as conn:
        try:
            password = set_password(conn, username, chosen, device_id=None)
        except (AccountError, psycopg.errors.CheckViolation) as exc:
            raise _fail(f"account {username!r}: {exc}", EXIT_BAD_INPUT) from exc
        conn.commit()
        _sync_broker_files(conn, settings)
    typer.echo(f"MQTT username {username}; its password (shown once) on the next line:")
    typer.echo(password)


@broker_app.command("files")
def broker_files(
    password_file: Annotated[
        Path | None, typer.Option(help="Default: LOOPTRACK_BROKER_PASSWORD_FILE.")
    ] = None,
    acl_file: Annotated[
        Path | None, typer.Option(help="Default: LOOPTRACK_BROKER_ACL_FILE.")
    ] = None,
) -> None:
    """(Re)write Mosquitto's password and ACL files from the database."""
    settings = _settings()
    chosen = settings.model_copy(
        update={
            "broker_password_file": password_file or settings.broker_password_file,
            "broker_acl_file": acl_file or settings.broker_acl_file,
        }
    )
    if chosen.broker_password_file is None or chosen.broker_acl_file is None:
        raise _fail(
            "give --password-file and --acl-file (or the LOOPTRACK_BROKER_* settings)",
            EXIT_BAD_INPUT,
        )
    with _connect(settings) as conn:
        _sync_broker_files(conn, chosen)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, operator, brand or device.")],
    brand: Annotated[str | None, typer.Option(help="The brand a brand key is bound to.")] = None,
    device: Annotated[str | None, typer.Option(help="The device a device key posts as.")] = None,
    name: Annotated[str, typer.Option(help="What the key is for, for the audit trail.")] = "",
) -> None:
    """Create an API key and print it once, alone on the last line (only its hash is kept)."""
    from schemas.api_keys import Role, create_key

    try:
        chosen = Role(role)
    except ValueError as exc:
        raise _fail(
            f"unknown role {role!r}: admin, operator, brand or device", EXIT_BAD_INPUT
        ) from exc
    if (chosen is Role.BRAND) != (brand is not None):
        raise _fail("--brand goes with --role brand, and only with it", EXIT_BAD_INPUT)
    if (chosen is Role.DEVICE) != (device is not None):
        raise _fail("--device goes with --role device, and only with it", EXIT_BAD_INPUT)
    with _connect(_settings()) as conn:
        try:
            key = create_key(
                conn, chosen, name or f"{chosen.value} key", brand=brand, device_id=device
            )
        except psycopg.errors.ForeignKeyViolation as exc:
            raise _fail(f"unknown device {device!r}: register it first", EXIT_BAD_INPUT) from exc
        except psycopg.errors.CheckViolation as exc:
            raise _fail(
                f"invalid brand {brand!r}: a slug such as 'fjordbrus'", EXIT_BAD_INPUT
            ) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise _fail("the schema is missing: run `looptrack db migrate` first") from exc
    typer.echo(f"{chosen.value} key created; it is shown only now:")
    typer.echo(key)


@app.command()
def labels(
    count: Annotated[int, typer.Option(min=1, help="Items to commission, one label each.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="FILE.pdf (label sheets) or FILE.zip (PNGs).")
    ],
    gtin: Annotated[str | None, typer.Option(help="GTIN of a registered product.")] = None,
    grai: Annotated[
        str | None,
        typer.Option(help="Instead of --gtin: a registered GRAI asset type (14 digits)."),
    ] = None,
    columns: Annotated[int, typer.Option(min=1, max=8, help="PDF labels across A4.")] = 3,
    rows: Annotated[int, typer.Option(min=1, max=20, help="PDF labels down A4.")] = 8,
) -> None:
    """Commission COUNT new serialised items of GTIN (or returnable assets of a GRAI asset
    type) and write their QR labels to FILE."""
    from rich.progress import Progress

    from api.labels import (
        LabelFormat,
        UnknownProduct,
        batch_items,
        commission,
        labels_for,
        render,
    )
    from schemas.grai import InvalidGrai, grai_item_class, validate_asset_type
    from schemas.gtin import InvalidGtin, normalize_gtin

    settings = _settings()
    formats = {".pdf": LabelFormat.PDF, ".zip": LabelFormat.ZIP}
    fmt = formats.get(output.suffix.lower())
    if fmt is None:
        raise _fail(f"{output}: write a .pdf (label sheets) or a .zip (PNGs)", EXIT_BAD_INPUT)
    if count > settings.labels_max_count:
        raise _fail(
            f"--count {count} is above the maximum of {settings.labels_max_count}"
            " (LOOPTRACK_LABELS_MAX_COUNT)",
            EXIT_BAD_INPUT,
        )
    if (gtin is None) == (grai is None):
        raise _fail("give either --gtin or --grai", EXIT_BAD_INPUT)
    try:
        if grai is not None:
            item_class = grai_item_class(validate_asset_type(grai))
            named = f"asset type {grai}"
        else:
            item_class = normalize_gtin(gtin or "")
            named = f"product {item_class}"
    except (InvalidGtin, InvalidGrai) as exc:
        option = "--gtin" if grai is None else "--grai"
        raise _fail(f"{option} {grai or gtin!r}: {exc}", EXIT_BAD_INPUT) from exc
    with _connect(settings) as conn, Progress(transient=False) as progress:
        commissioned = progress.add_task("commissioning", total=count)
        drawn = progress.add_task("drawing labels", total=count)
        try:
            batch = commission(
                conn,
                item_class,
                count,
                fmt.value,
                created_by="looptrack labels",
                progress=lambda done: progress.update(commissioned, completed=done),
            )
        except UnknownProduct as exc:
            raise _fail(f"no {named}: register it first", EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise _fail("the schema is missing: run `looptrack db migrate` first") from exc
        found = batch_items(conn, batch.id, None)
        assert found is not None  # commissioned in this transaction
        sheet = labels_for(item_class, batch.serials, found[1], settings.public_base_url)
        body = render(
            sheet, fmt, lambda done: progress.update(drawn, completed=done), (columns, rows)
        )
        progress.update(drawn, completed=count)
        try:
            output.write_bytes(body)
        except OSError as exc:
            # The transaction is rolled back: no items without their labels.
            conn.rollback()
            raise _fail(f"{output}: {exc.strerror or exc}") from exc
        conn.commit()
    typer.echo(f"{count} items of {named} commissioned (batch {batch.id}); labels in {output}")


@dlq_app.command("list")
def dlq_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    pending: Annotated[bool, typer.Option(help="Hide those already replayed.")] = True,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Dead letters, newest first: id, time, reason, device, batch index, detail, payload
    size, and the payload's first bytes (all of it: `looptrack dlq show ID`)."""
    from api.dead_letters import DeadLetterFilter, list_dead_letters

    with _connect(_settings()) as conn:
        rows = list_dead_letters(
            conn, DeadLetterFilter(reason=reason, device_id=device), pending=pending,
            before=None, limit=limit,
        )  # fmt: skip
    for row in rows:
        index = "" if row["batch_index"] is None else f"[{row['batch_index']}]"
        size = f"{row['payload_size']} B" + (" (head kept)" if row["payload_truncated"] else "")
        typer.echo(
            f"{row['id']}\t{row['received_at']:%Y-%m-%dT%H:%M:%SZ}\t{row['reason']}\t"
            f"{row['device_id'] or '-'}{index}\t{row['detail']}\t{size}\t"
            f"{_one_line(row['payload_preview'], row['payload_encoding'])}"
        )
    typer.echo(f"{len(rows)} dead letter(s)", err=True)


def _one_line(preview: str, encoding: str) -> str:
    """A payload preview fit for one line of a terminal: control characters escaped."""
    if encoding == "hex":
        return f"hex:{preview}"
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in preview)


@dlq_app.command("show")
def dlq_show(dead_letter_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Write one dead letter's stored payload to standard output, byte for byte (only its
    first 4 KiB for a payload too large to keep); what it is goes to standard error."""
    from api.dead_letters import stored_dead_letter

    with _connect(_settings()) as conn:
        row = stored_dead_letter(conn, dead_letter_id)
    if row is None:
        raise _fail(f"no dead letter {dead_letter_id}")
    payload, size = bytes(row["payload"]), row["payload_size"]
    kept = f"first {len(payload)} bytes kept" if row["payload_truncated"] else "whole"
    typer.echo(
        f"{row['reason']} from {row['device_id'] or '-'}: {size} bytes ({kept}),"
        f" sha256 {row['payload_sha256']}",
        err=True,
    )
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Dead letter ids; none = all matching.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
) -> None:
    """Send pending dead letters to their original topics again (e.g. after registering
    the device); the ingest worker validates them like any message."""
    import uuid

    from api.dead_letters import DeadLetterFilter, replay
    from devices.publisher import Publisher, PublishError

    settings = _settings()
    publisher = Publisher(settings.mqtt, f"looptrack-dlq-{uuid.uuid4().hex[:8]}")
    publisher.start()
    try:
        with _connect(settings) as conn:
            which = DeadLetterFilter(ids=ids or None, reason=reason, device_id=device)
            sent = replay(conn, publisher, which, limit)
    except PublishError as exc:
        raise _fail(f"replay stopped: {exc} (none marked replayed; a repeat is harmless)") from exc
    finally:
        publisher.stop()
    typer.echo(f"replayed {len(sent)} dead letter(s)")


# --- looptrack simulate --------------------------------------------------------------


def _simulation_scenario(scenario: str | None, overrides: dict[str, dict[str, Any]]) -> Scenario:
    """The scenario of `--scenario` (a file, or the name of a shipped one) with the flags
    applied; exits 2 with the problem when it is invalid."""
    from devices.simulator.scenario import Scenario, builtin_scenario, load_scenario

    try:
        if scenario is None:
            base = Scenario()
        elif Path(scenario).is_file():
            base = load_scenario(Path(scenario))
        else:
            base = builtin_scenario(scenario)
        return base.with_overrides(**{k: v for k, v in overrides.items() if v})
    except FileNotFoundError as exc:
        raise _fail(
            f"--scenario {scenario}: no such file or shipped scenario (small, norway-year)",
            EXIT_BAD_INPUT,
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise _fail(f"scenario {scenario or '(flags)'}: {exc}", EXIT_BAD_INPUT) from exc


@app.command()
def simulate(
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario YAML file, or a shipped one: small, norway-year."),
    ] = None,
    shops: Annotated[int | None, typer.Option(min=1, help="Shops (with RVMs).")] = None,
    sorting_sites: Annotated[int | None, typer.Option(min=1, help="Sorting sites.")] = None,
    rvms_per_shop: Annotated[int | None, typer.Option(min=1, help="RVMs in every shop.")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Events/s: the live rate, else a cap.")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(help="Simulated span ending now, e.g. 1y, 30d, 12h (live: wall time)."),
    ] = None,
    events: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    compress: Annotated[
        str | None,
        typer.Option(
            help="Simulated per wall time: 1y/5m, a factor, or max (as fast as possible)."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed: same seed and end, same traffic.")
    ] = None,
    scale: Annotated[
        float | None, typer.Option(min=0.001, help="Multiplies every volume (0.1: a tenth).")
    ] = None,
    live: Annotated[
        bool, typer.Option(help="Timestamps = wall clock now, at --rate, until Ctrl-C.")
    ] = False,
    truth: Annotated[Path, typer.Option(help="Where the ground-truth JSON is written.")] = Path(
        "ground-truth.json"
    ),
    register: Annotated[
        bool, typer.Option(help="Register the world (types, products, sites, devices) first.")
    ] = True,
) -> None:
    """Run a fleet of simulated devices publishing realistic traffic, then write the ground
    truth that /v1/stats/return-rates?bucket=total and /v1/stats/reuse must equal."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from devices.simulator import run_history, run_live, world_seed
    from devices.simulator.runner import BrokerUnreachable
    from devices.simulator.runner import Progress as RunProgress
    from schemas.registry import apply_seed

    chosen = _simulation_scenario(
        scenario,
        {
            "top": {k: v for k, v in {"seed": seed, "scale": scale}.items() if v is not None},
            "world": {
                k: v
                for k, v in {
                    "shops": shops,
                    "sorting_sites": sorting_sites,
                    "rvms_per_shop": (rvms_per_shop, rvms_per_shop) if rvms_per_shop else None,
                }.items()
                if v is not None
            },
            "timing": {
                k: v
                for k, v in {
                    "rate": rate, "duration": duration, "events": events, "compress": compress,
                }.items()
                if v is not None
            },
        },
    )  # fmt: skip
    if chosen.timing.end is not None and not live:
        typer.echo(f"simulating up to {chosen.timing.end.isoformat()} (timing.end)")
    settings = _settings()
    if register:
        with _connect(settings) as conn:
            try:
                counts = apply_seed(conn, world_seed(chosen))
            except psycopg.errors.UndefinedTable as exc:
                raise _fail("the schema is missing: run `looptrack db migrate` first") from exc
        typer.echo("registered " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    # One connect/disconnect line per simulated device would drown the progress bar.
    logging.getLogger("looptrack.device").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console = Console(stderr=True)
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ]
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(
                "live" if live else chosen.name, total=None if live else 1.0, info=""
            )

            def report(update: RunProgress) -> None:
                per_s = update.published / update.elapsed_s if update.elapsed_s else 0.0
                info = f"{update.published:,} events, {per_s:,.0f}/s"
                if update.simulated_until is not None:
                    info += f", at {update.simulated_until:%Y-%m-%d %H:%M} UTC"
                progress.update(task, completed=update.fraction, info=info)

            if live:
                result = run_live(
                    chosen, settings.mqtt, settings.topic_root, stop, report, rate=rate
                )
            else:
                result = run_history(
                    chosen, settings.mqtt, settings.topic_root, stop=stop, on_progress=report
                )
    except BrokerUnreachable as exc:
        raise _fail(f"cannot reach the broker at {settings.mqtt_url}: {exc}") from exc
    except TimeoutError as exc:
        raise _fail(f"the broker at {settings.mqtt_url} stopped acknowledging: {exc}") from exc
    summary = result.summary(as_of=datetime.now(UTC), tz=settings.timezone)
    try:
        truth.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    except OSError as exc:
        raise _fail(f"{truth}: {exc.strerror or exc}") from exc
    for row in summary["return_rates"]["rows"]:
        rate_text = "-" if row["return_rate"] is None else f"{row['return_rate']:.3f}"
        typer.echo(
            f"  {row['packaging_type'] or '(unknown)':<12} sold {row['sold']:>9,}"
            f"  returned {row['returned']:>9,}  rejected {row['rejected']:>7,}  rate {rate_text}"
        )
    for row in summary["reuse"]["rows"]:
        typer.echo(
            f"  {row['packaging_type']:<12} items {row['items']:>7,}  trips {row['trips']:>9,}"
            f"  mean {row['mean_trips']:.2f}  lost {row['lost']}"
        )
    query = summary["return_rates"]["query"]
    typer.echo(
        f"published {result.published:,} events in {result.elapsed_s:.1f} s"
        f"{' (stopped early)' if result.stopped and not live else ''}; ground truth in {truth}\n"
        f"compare: /v1/stats/return-rates?bucket=total&from={query['from']}&to={query['to']}"
        f"&tz={query['tz']} and /v1/stats/reuse"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
