"""A table locked by another transaction, so that a statement reading it waits: how tests
make a statement outlast a time limit deterministically, whatever the machine's speed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg import sql


@contextmanager
def locked(db_url: str, table: str, release_after_s: float = 10) -> Iterator[None]:
    """`table` locked by another transaction: every statement reading it waits, until
    the block ends or `release_after_s` have passed (the holder is ended then, so a
    statement with no time limit goes on instead of waiting for ever)."""
    with psycopg.connect(db_url) as holder:
        holder.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table))
        )
        pid = holder.info.backend_pid

        def release() -> None:
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        releaser = threading.Timer(release_after_s, release)
        releaser.start()
        try:
            yield
        finally:
            releaser.cancel()
            releaser.join()
            with suppress(psycopg.OperationalError):  # ended by the releaser
                holder.rollback()
