"""MQTT accounts and the Mosquitto password and ACL files made from them (SPEC §9).

A device logs in with its id as username and may publish only under
`{topic_root}/devices/{its id}/` and read only its own receipts; the ingest worker may
read every device's topics (through the shared subscription) and write every device's
receipts; the API may publish events (it relays HTTP posts and
dead-letter replays). Passwords are shown once and kept only as Mosquitto's own hash."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg

from schemas.named_queries import load_queries

QUERIES = load_queries("schemas", "sql/queries/broker_accounts.sql")

# Mosquitto 2's password hash: PBKDF2-SHA512, 101 iterations, 12-byte salt, written as
# `$7$101$<base64 salt>$<base64 hash>` (what `mosquitto_passwd` writes).
HASH_ITERATIONS = 101
SALT_BYTES = 12
# Generated passwords: 32 bytes of randomness, URL-safe (no ':' or whitespace).
PASSWORD_BYTES = 32


class AccountRole(StrEnum):
    DEVICE = "device"
    INGEST = "ingest"
    API = "api"


class AccountError(ValueError):
    """The account cannot be created as asked (a name taken by another role)."""


@dataclass(frozen=True)
class Account:
    username: str
    role: AccountRole
    password_hash: str


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """`password` as a line of Mosquitto's password file expects it after `user:`."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ITERATIONS)
    return (
        f"$7${HASH_ITERATIONS}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def set_password(
    conn: psycopg.Connection[Any], username: str, role: AccountRole, *, device_id: str | None
) -> str:
    """Create the account or give it a new password; returns the password (shown once)."""
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    row = conn.execute(
        QUERIES["set_password"],
        {
            "username": username,
            "role": role.value,
            "device_id": device_id,
            "password_hash": mosquitto_hash(password),
        },
    ).fetchone()
    if row is None:
        raise AccountError(f"{username!r} is already the broker account of another role")
    return password


def revoke(conn: psycopg.Connection[Any], username: str) -> bool:
    """Remove the account's password; False when it had none (unknown or revoked)."""
    return conn.execute(QUERIES["revoke"], {"username": username}).fetchone() is not None


def active_accounts(conn: psycopg.Connection[Any]) -> list[Account]:
    rows = conn.execute(QUERIES["active_accounts"]).fetchall()
    return [Account(name, AccountRole(role), digest) for name, role, digest in rows]


def password_file(accounts: list[Account]) -> str:
    """Mosquitto's `password_file`: one `user:hash` line per active account."""
    return "".join(f"{a.username}:{a.password_hash}\n" for a in accounts)


def acl_file(accounts: list[Account], topic_root: str) -> str:
    """Mosquitto's `acl_file`: devices write their own topics only; services as needed."""
    devices = f"{topic_root}/devices"
    lines = [
        "# Written by looptrack (`looptrack broker files`) from its database: edits are lost.",
        "# Every device (username = device id) may publish only to its own topics,",
        "# and read only its own receipts.",
        f"pattern write {devices}/%u/events",
        f"pattern write {devices}/%u/status",
        f"pattern read {devices}/%u/receipts",
    ]
    for account in accounts:
        if account.role is AccountRole.INGEST:
            lines += [
                "",
                f"user {account.username}",
                f"topic read {devices}/+/events",
                f"topic read {devices}/+/status",
                f"topic write {devices}/+/receipts",
            ]
        elif account.role is AccountRole.API:
            lines += ["", f"user {account.username}", f"topic write {devices}/+/events"]
    return "\n".join(lines) + "\n"


def _replace(path: Path, text: str) -> None:
    """Write `path` atomically, keeping the mode of the file it replaces (else 0600)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_broker_files(
    conn: psycopg.Connection[Any],
    passwords: Path,
    acl: Path,
    topic_root: str,
    *,
    pid_file: Path | None = None,
) -> int:
    """Rewrite both files from the database and, given Mosquitto's pid file, make it
    reload them (SIGHUP). Returns the number of active accounts."""
    accounts = active_accounts(conn)
    _replace(passwords, password_file(accounts))
    _replace(acl, acl_file(accounts, topic_root))
    if pid_file is not None:
        os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
    return len(accounts)
