"""A migrated test database put back to how it was before a migration, so that a test can
check what that migration does to a database holding data."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from schemas.migrations import load_migrations

ITEM_CLASS_MIGRATION = "0021_item_class"

_RENAME = re.compile(
    r"^ALTER (TABLE|VIEW) (\w+) RENAME (COLUMN|CONSTRAINT) (\w+) TO (\w+);$", re.MULTILINE
)
_RENAME_INDEX = re.compile(r"^ALTER INDEX (\w+) RENAME TO (\w+);$", re.MULTILINE)


def before_item_class(conn: psycopg.Connection[Any]) -> None:
    """Undo 0021's renames (item_class back to gtin, with its constraints, indexes and the
    view's column) and forget that it ran. The SQL functions stay as they are: the next
    migrate drops and creates them again."""
    (text,) = (m.sql for m in load_migrations() if m.version == ITEM_CLASS_MIGRATION)
    undo = [
        f"ALTER {kind} {name} RENAME {what} {new} TO {old}"
        for kind, name, what, old, new in _RENAME.findall(text)
    ]
    undo += [f"ALTER INDEX {new} RENAME TO {old}" for old, new in _RENAME_INDEX.findall(text)]
    assert len(undo) == 18, undo  # every rename of the migration
    for statement in reversed(undo):
        conn.execute(statement.encode())
    conn.execute("DELETE FROM schema_migrations WHERE version = %s", (ITEM_CLASS_MIGRATION,))
