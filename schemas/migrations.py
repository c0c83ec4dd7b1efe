"""Applies the numbered `.sql` migrations in order, once each, then the SQL functions file,
safely under concurrency."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schemas.rollups import set_zone

log = logging.getLogger(__name__)

# Any fixed 64-bit number; every migrating process takes this advisory lock first.
MIGRATION_LOCK_KEY = 0x6C6F6F7074726B  # "looptrk"


@dataclass(frozen=True, slots=True)
class Migration:
    """One `NNNN_name.sql` file."""

    version: str
    sql: str


def load_migrations() -> list[Migration]:
    """All migrations shipped with the package, in version order."""
    folder = resources.files("schemas") / "sql" / "migrations"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(entry.name.removesuffix(".sql"), entry.read_text("utf-8")) for entry in files]


def load_functions() -> str:
    """`sql/functions.sql`: every SQL function in its current version (see its header)."""
    return (resources.files("schemas") / "sql" / "functions.sql").read_text("utf-8")


class DatabaseMissingError(RuntimeError):
    """The target database does not exist and creating it is not allowed."""


def ensure_database(database_url: str, *, create: bool) -> bool:
    """Create the database named in `database_url` if it is missing; True when created."""
    try:
        psycopg.connect(database_url, connect_timeout=10).close()
        return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    params = conninfo_to_dict(database_url)
    dbname = str(params.get("dbname") or params.get("user") or "")
    if not create:
        raise DatabaseMissingError(f"database {dbname!r} does not exist (creation disabled)")
    maintenance = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except psycopg.errors.DuplicateDatabase:
            # Another migrating process created it first: fine.
            return False
        except psycopg.errors.UniqueViolation:
            # Concurrent CREATE DATABASE can also surface as a catalog unique violation.
            return False
    log.info("database created dbname=%s", dbname)
    return True


def migrate(database_url: str, *, timescaledb: str = "auto", timezone: str = "UTC") -> list[str]:
    """Apply pending migrations, then the functions file, in one transaction; returns the
    versions applied. `timezone` is the deployment's zone (LOOPTRACK_TIMEZONE) for
    day-level rollups; when it differs from the one they were kept in, they are rebuilt in
    it (by the functions just applied)."""
    migrations = load_migrations()
    functions = load_functions()
    with psycopg.connect(database_url, connect_timeout=10) as conn, conn.transaction():
        # The lock comes before anything else, including creating the bookkeeping table,
        # so concurrent runs queue up instead of racing on the catalog.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute("SELECT set_config('looptrack.timescaledb', %s, true)", (timescaledb,))
        conn.execute("SELECT set_config('looptrack.timezone', %s, true)", (timezone,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            log.info("applying migration version=%s", migration.version)
            # A migration file is trusted, shipped code with several statements.
            conn.execute(migration.sql.encode("utf-8"), prepare=False)
            conn.execute(
                "INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,)
            )
            done.append(migration.version)
        unknown = sorted(applied - {m.version for m in migrations})
        if unknown:
            # Newer code migrated this database: its functions may need tables or
            # arguments this code's file knows nothing of, so they are not replaced by
            # older versions (a previous release's process running migrate during a
            # rolling deployment, say).
            log.warning(
                "database is newer than this code versions=%s: its SQL functions are left as"
                " they are",
                ",".join(unknown),
            )
        else:
            # After the migrations, so the bodies are checked against the tables as they
            # now are; every time, so a function edited by hand is put back.
            conn.execute("SET LOCAL check_function_bodies = on")
            conn.execute(functions.encode("utf-8"), prepare=False)
        set_zone(conn, timezone)
    return done
