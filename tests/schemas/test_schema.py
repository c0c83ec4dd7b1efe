"""schemas/sql/schema.sql is the schema: `looptrack db migrate` builds exactly it, with
schemas/sql/functions.sql, from an empty database and from a database at any earlier
migration (compared as `pg_dump --schema-only` output, normalised, and as starting rows)."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from schemas.migrations import load_migrations, migrate
from tests.conftest import ROOT, create_database, drop_database

SQL = ROOT / "schemas" / "sql"

# A TOC entry's header in pg_dump's plain output: "--\n-- Name: …; Type: …; …\n--\n".
TOC_HEADER = re.compile(r"^--\n-- (Name: [^\n]*)\n--\n", re.MULTILINE)
# pg_dump ≥ 15.14 fences its output with a random key (CVE-2025-8714).
RESTRICT = re.compile(r"^\\(un)?restrict .*$", re.MULTILINE)
TRAILER = re.compile(r"^--\n-- PostgreSQL database dump complete\n--\n", re.MULTILINE)


def normalise(dump: str) -> list[str]:
    """pg_dump's output as one text per object, sorted: its header comment and SET lines
    (what comes before the first object), the restrict fence, the trailer, owners and
    blank-line runs dropped, so that two databases with the same schema give the same list
    whatever order their objects were created in."""
    dump = TRAILER.split(RESTRICT.sub("", dump))[0]
    parts = TOC_HEADER.split(dump)
    entries = []
    # parts: preamble, then (header, body) pairs.
    for header, body in zip(parts[1::2], parts[2::2], strict=True):
        header = re.sub(r"; Owner: [^;]*$", "", header)
        body = re.sub(r"\n{3,}", "\n\n", body.strip())
        entries.append(f"-- {header}\n{body}")
    return sorted(entries)


def schema_dump(url: str) -> list[str]:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.fail("pg_dump is needed to compare schemas (Debian: postgresql-client)")
    run = subprocess.run(
        [
            pg_dump,
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--no-tablespaces",
            "--no-table-access-method",
            f"--dbname={url}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return normalise(run.stdout)


def starting_rows(url: str) -> dict[str, list[Any]]:
    """Every table's rows (schema_migrations aside: it records how the database was built),
    without the columns that default to now()."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT t.table_name,"
            " coalesce(array_agg(c.column_name) FILTER (WHERE c.column_default = 'now()'), '{}')"
            " FROM information_schema.tables t"
            " LEFT JOIN information_schema.columns c"
            "   ON c.table_schema = t.table_schema AND c.table_name = t.table_name"
            " WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
            "   AND t.table_name <> 'schema_migrations'"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
        rows = {}
        for table, now_columns in tables:
            found = conn.execute(
                f"SELECT coalesce(jsonb_agg(r ORDER BY r::text), '[]')"
                f" FROM (SELECT to_jsonb(t) - %s::text[] AS r FROM {table} t) s",
                (now_columns,),
            ).fetchone()
            assert found is not None
            rows[table] = found[0]
    return rows


def build_from_files(url: str) -> None:
    """schema.sql with functions.sql, as a person reading them would build the database:
    functions first with their bodies unchecked (as pg_dump's own output does), so the view
    and the trigger that use them can follow their tables."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SET LOCAL check_function_bodies = off")
        conn.execute((SQL / "functions.sql").read_bytes(), prepare=False)
        conn.execute("SET LOCAL check_function_bodies = on")
        conn.execute((SQL / "schema.sql").read_bytes(), prepare=False)


def build_as_released(url: str, count: int) -> None:
    """The first `count` migrations, applied as the runner did before functions.sql: what a
    database in the field last migrated by a release that shipped that many holds."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SELECT set_config('looptrack.timescaledb', 'off', true)")
        conn.execute("SELECT set_config('looptrack.timezone', 'UTC', true)")
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations()[:count]:
            conn.execute(migration.sql.encode("utf-8"), prepare=False)
            conn.execute(
                "INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,)
            )


def assert_same(expected: list[str], found: list[str], what: str) -> None:
    if found != expected:
        diff = "\n".join(
            difflib.unified_diff(
                "\n\n".join(expected).splitlines(),
                "\n\n".join(found).splitlines(),
                "schema.sql + functions.sql",
                what,
                lineterm="",
            )
        )
        pytest.fail(f"{what} differs from schemas/sql/schema.sql + functions.sql:\n{diff}")


@pytest.fixture
def empty_db() -> Iterator[str]:
    name = f"lt_schema_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def from_files() -> Iterator[tuple[list[str], dict[str, list[Any]]]]:
    """The dump and rows of a database built from schema.sql and functions.sql."""
    name = f"lt_schema_files_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        build_from_files(url)
        yield schema_dump(url), starting_rows(url)
    finally:
        drop_database(name)


def test_migrate_on_an_empty_database_builds_schema_sql(
    empty_db: str, from_files: tuple[list[str], dict[str, list[Any]]]
) -> None:
    migrate(empty_db, timescaledb="off")
    dump, rows = from_files
    assert_same(dump, schema_dump(empty_db), "migrate() on an empty database")
    assert starting_rows(empty_db) == rows


@pytest.mark.parametrize("released", range(1, len(load_migrations()) + 1))
def test_migrate_from_an_earlier_version_builds_schema_sql(
    released: int, empty_db: str, from_files: tuple[list[str], dict[str, list[Any]]]
) -> None:
    build_as_released(empty_db, released)
    applied = migrate(empty_db, timescaledb="off")
    assert applied == [m.version for m in load_migrations()[released:]]
    dump, rows = from_files
    assert_same(dump, schema_dump(empty_db), f"migrate() from version {released:04d}")
    assert starting_rows(empty_db) == rows


def test_the_comparison_sees_a_schema_change_that_schema_sql_does_not_have(
    empty_db: str, from_files: tuple[list[str], dict[str, list[Any]]]
) -> None:
    """What a migration changing the schema without schema.sql (or a function changed by
    hand) leaves: the dumps differ, and the difference names the object."""
    migrate(empty_db, timescaledb="off")
    with psycopg.connect(empty_db) as conn:
        conn.execute("ALTER TABLE events ADD COLUMN note text")
        conn.execute("CREATE INDEX events_note ON events (note)")
        conn.execute(
            "CREATE OR REPLACE FUNCTION trip_seconds(started_at timestamptz, ended_at timestamptz)"
            " RETURNS numeric LANGUAGE sql IMMUTABLE RETURN 0"
        )
    found = schema_dump(empty_db)
    expected = from_files[0]
    changed = sorted(set(found) ^ set(expected))
    assert [entry.splitlines()[0] for entry in changed] == [
        "-- Name: events; Type: TABLE; Schema: public",
        "-- Name: events; Type: TABLE; Schema: public",
        "-- Name: events_note; Type: INDEX; Schema: public",
        "-- Name: trip_seconds(timestamp with time zone, timestamp with time zone);"
        " Type: FUNCTION; Schema: public",
        "-- Name: trip_seconds(timestamp with time zone, timestamp with time zone);"
        " Type: FUNCTION; Schema: public",
    ]


def test_normalise_keeps_objects_and_drops_what_varies_between_dumps() -> None:
    dump = (
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n"
        "-- Dumped from database version 15.20\n\n"
        "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n"
        "--\n-- Name: b; Type: TABLE; Schema: public; Owner: -\n--\n\n"
        "CREATE TABLE public.b (\n    x integer\n);\n\n\n\n"
        "--\n-- Name: a(integer); Type: FUNCTION; Schema: public; Owner: postgres\n--\n\n"
        "CREATE FUNCTION public.a(x integer) RETURNS integer\n    LANGUAGE sql\n"
        "    AS $$\n-- a comment in a body stays\nSELECT x\n$$;\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"
    )
    assert normalise(dump) == [
        "-- Name: a(integer); Type: FUNCTION; Schema: public\n"
        "CREATE FUNCTION public.a(x integer) RETURNS integer\n    LANGUAGE sql\n"
        "    AS $$\n-- a comment in a body stays\nSELECT x\n$$;",
        "-- Name: b; Type: TABLE; Schema: public\nCREATE TABLE public.b (\n    x integer\n);",
    ]
