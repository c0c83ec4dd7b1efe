"""`looptrack seed` and `looptrack devices add`: rows written, bad input refused clearly."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from api.dependencies import principal_for_key
from tests.conftest import ROOT, wait_until
from tests.factories import count, event, seed_registry


def looptrack(
    db_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looptrack", *args],
        env={
            "LOOPTRACK_DATABASE_URL": db_url,
            "PYTHONPATH": str(ROOT),
            "PATH": "/usr/bin:/bin",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_seed_example_file_twice_is_idempotent(db: psycopg.Connection[Any], db_url: str) -> None:
    for _ in range(2):
        result = looptrack(db_url, "seed", str(ROOT / "looptrack" / "data" / "seed.yaml"))
        assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "5 packaging_types, 5 products, 1 asset_types, 3 sites, 4 devices"
    )
    assert count(db, "SELECT count(*) FROM products") == 6  # the GRAI asset type among them
    # GTIN-13 in the file is stored as 14 digits.
    assert count(db, "SELECT count(*) FROM products WHERE item_class = '07038010001239'") == 1


def test_seed_rejects_a_bad_gtin_without_writing(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"packaging_types": [{"id": "pet-0.5l", "name": "PET", "material": "PET"}],'
        ' "products": [{"gtin": "7038010001234", "packaging_type": "pet-0.5l",'
        ' "brand": "b", "name": "n"}]}'
    )
    result = looptrack(db_url, "seed", str(bad))
    assert result.returncode == 2
    assert "check digit should be 9" in result.stderr
    assert count(db, "SELECT count(*) FROM packaging_types") == 0


def test_seed_rejects_an_unknown_packaging_type(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "products:\n  - {gtin: '7038010001239', packaging_type: nope, brand: b, name: n}\n"
    )
    result = looptrack(db_url, "seed", str(bad))
    assert result.returncode == 2
    assert "nope" in result.stderr and "packaging_types" in result.stderr


def test_devices_add(db: psycopg.Connection[Any], db_url: str) -> None:
    db.execute("INSERT INTO sites (id, name, kind) VALUES ('shop-9', 'Shop', 'shop')")
    ok = looptrack(db_url, "devices", "add", "rvm-9", "--site", "shop-9", "--kind", "rvm")
    assert ok.returncode == 0, ok.stderr
    assert count(db, "SELECT count(*) FROM devices WHERE id = 'rvm-9' AND site_id = 'shop-9'") == 1

    again = looptrack(db_url, "devices", "add", "rvm-9", "--site", "shop-9", "--kind", "rvm")
    assert (again.returncode, again.stderr.strip()) == (
        2,
        "error: device 'rvm-9' is already registered",
    )
    no_site = looptrack(db_url, "devices", "add", "rvm-10", "--site", "nowhere", "--kind", "rvm")
    assert (no_site.returncode, no_site.stderr.strip()) == (
        2,
        "error: unknown site 'nowhere': register it first",
    )
    bad_id = looptrack(db_url, "devices", "add", "rvm/+", "--site", "shop-9", "--kind", "rvm")
    assert bad_id.returncode == 2 and "invalid device: id:" in bad_id.stderr
    bad_kind = looptrack(db_url, "devices", "add", "rvm-11", "--site", "shop-9", "--kind", "robot")
    assert bad_kind.returncode == 2 and "kind:" in bad_kind.stderr
    assert count(db, "SELECT count(*) FROM devices") == 1


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, [])  # products of the brand fjord
    result = looptrack(db_url, "keys", "create", "--role", "brand", "--brand", "fjord")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("lt_") and len(key) > 40
    stored = db.execute("SELECT role, brand, key_hash FROM api_keys").fetchall()
    assert len(stored) == 1
    role, brand, key_hash = stored[0]
    assert (role, brand) == ("brand", "fjord")
    assert key.encode() not in bytes(key_hash)
    assert bytes(key_hash) == hashlib.sha256(key.encode()).digest()

    missing_brand = looptrack(db_url, "keys", "create", "--role", "brand")
    assert missing_brand.returncode == 2 and "--brand" in missing_brand.stderr
    bad_role = looptrack(db_url, "keys", "create", "--role", "root")
    assert bad_role.returncode == 2 and "unknown role 'root'" in bad_role.stderr
    # A brand no product is registered under: a key for it would see nothing.
    unknown = looptrack(db_url, "keys", "create", "--role", "brand", "--brand", "fjrod")
    assert unknown.returncode == 2, unknown.stdout
    assert "unknown brand 'fjrod'" in unknown.stderr and "lt_" not in unknown.stdout
    assert count(db, "SELECT count(*) FROM api_keys") == 1


def test_keys_list_and_revoke_end_a_key_for_good(db: psycopg.Connection[Any], db_url: str) -> None:
    """An operator lists the keys (never the key itself), revokes one by its id, and the
    API refuses it from then on; the other key keeps working."""
    seed_registry(db, ["rvm-1"])
    made = {
        name: looptrack(db_url, "keys", "create", *args, "--name", name).stdout.split()[-1]
        for name, args in {
            "fjord portal": ["--role", "brand", "--brand", "fjord"],
            "rvm-1 posts": ["--role", "device", "--device", "rvm-1"],
        }.items()
    }
    listed = looptrack(db_url, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:-1]}
    ids = dict(db.execute("SELECT name, id::text FROM api_keys").fetchall())
    assert set(rows) == set(ids.values())
    assert "brand" in rows[ids["fjord portal"]] and "brand fjord" in rows[ids["fjord portal"]]
    assert "device rvm-1" in rows[ids["rvm-1 posts"]]
    assert listed.stdout.splitlines()[-1] == "2 keys, 2 in use"
    assert not any(key in listed.stdout for key in made.values())

    revoked = looptrack(db_url, "keys", "revoke", ids["fjord portal"])
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"key {ids['fjord portal']} revoked"
    assert principal_for_key(db, made["fjord portal"]) is None
    assert principal_for_key(db, made["rvm-1 posts"]) is not None
    again = looptrack(db_url, "keys", "revoke", ids["fjord portal"])
    assert again.returncode == 0 and "was revoked already" in again.stdout
    assert looptrack(db_url, "keys", "list").stdout.splitlines()[-1] == "2 keys, 1 in use"

    unknown = looptrack(db_url, "keys", "revoke", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 2 and "no key" in unknown.stderr
    not_an_id = looptrack(db_url, "keys", "revoke", "fjord portal")
    assert not_an_id.returncode == 2 and "not a key id" in not_an_id.stderr


def test_dlq_list_and_replay(
    db: psycopg.Connection[Any], db_url: str, broker: Any, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, ["rvm-1"])
    make_worker()
    sent = event("returned")
    payload = json.dumps(sent).encode()
    db.execute(
        "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
        " payload_size, payload_sha256)"
        " VALUES (now(), %s, 'rvm-1', 'unknown_device', 'not registered then', %s, %s, sha256(%s))",
        (f"{topic_root}/devices/rvm-1/events", payload, len(payload), payload),
    )
    env = {"LOOPTRACK_MQTT_URL": broker.url, "LOOPTRACK_TOPIC_ROOT": topic_root}
    listed = looptrack(db_url, "dlq", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "\tunknown_device\trvm-1\tnot registered then" in listed.stdout
    assert f"\t{len(payload)} B\t{payload[:100].decode()}" in listed.stdout  # preview
    (dead_id,) = db.execute("SELECT id FROM dead_letters").fetchone() or (None,)
    shown = looptrack(db_url, "dlq", "show", str(dead_id), env=env)
    assert (shown.returncode, shown.stdout) == (0, payload.decode()), shown.stderr
    assert f"{len(payload)} bytes (whole)" in shown.stderr
    assert looptrack(db_url, "dlq", "show", str(dead_id + 1), env=env).returncode == 1
    replayed = looptrack(db_url, "dlq", "replay", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "replayed 1 dead letter(s)"
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 1, 30, "replayed event")
    assert count(db, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL") == 0
