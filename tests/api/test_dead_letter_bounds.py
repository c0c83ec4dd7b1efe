"""Issue 17 item 6: dead letters stay bounded. Sixty 1 MiB payloads through the real
broker and worker are kept as their first 4 KiB with size and SHA-256; the lists (API,
dashboard, CSV) answered by a real `looptrack api` process stay small and barely move its
memory; the stored head is served per id; replay never sends a head as if it were whole."""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from schemas.api_keys import Role, create_key
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import count, event, seed_registry
from tests.live_api import LiveApi, running_api

DEVICE = "rvm-big"
MIB = 1024 * 1024
LETTERS = 60
# What the issue asks for: the head a too_large dead letter keeps, and the bounds.
HEAD_BYTES = 4096
MAX_RESPONSE_BYTES = 1_000_000
MAX_RSS_GROWTH_MB = 20
# "A short preview": about a line of text per dead letter.
MAX_PREVIEW_CHARS = 256


@pytest.fixture
def live_api(db_url: str, broker: Broker, topic_root: str, tmp_path: Path) -> Iterator[LiveApi]:
    with running_api(db_url, broker, topic_root, tmp_path / "api.log") as api:
        yield api


def big_payload() -> bytes:
    """Exactly 1 MiB that starts like a device's batch and differs from every other."""
    start = b'{"events":[{"attrs":{"pad":"'
    return start + secrets.token_hex(MIB).encode()[: MIB - len(start)]


def log_in(api: LiveApi, key: str) -> dict[str, str]:
    """The pages' session cookie for `key`, as a browser gets it from the login form."""
    status, headers, body = api.request(
        "POST",
        "/login",
        {"Content-Type": "application/x-www-form-urlencoded"},
        urllib.parse.urlencode({"key": key}).encode(),
    )
    assert status == 303, body[:500]
    return {"Cookie": headers["set-cookie"].split(";", 1)[0]}


def test_sixty_one_mib_dead_letters_keep_lists_small_and_the_api_lean(
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    live_api: LiveApi,
) -> None:
    seed_registry(db, [DEVICE])
    operator = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 'op')}"}
    make_worker()
    sent = [big_payload() for _ in range(LETTERS)]
    publish_all(broker, topic_root, [(DEVICE, payload) for payload in sent])
    wait_until(
        lambda: count(db, "SELECT count(*) FROM dead_letters") >= LETTERS, 120, "the dead letters"
    )

    # Warm the API up (imports, templates, pool) on requests that hold no payload.
    cookie = log_in(live_api, create_key(db, Role.OPERATOR, "pages"))
    # (/dashboard itself would already list them all.)
    for warm_up in ("/v1/dead-letters?limit=1", "/dashboard/reuse"):
        live_api.request("GET", warm_up, {**operator, **cookie})
    before_mb = live_api.reset_peak() / 1024

    listed_status, _, listed = live_api.request("GET", "/v1/dead-letters", operator)
    page_status, _, page = live_api.request("GET", "/dashboard", cookie)
    csv_status, _, csv = live_api.request("GET", "/dashboard/dead-letters.csv", cookie)
    growth_mb = live_api.memory_kib("VmHWM") / 1024 - before_mb
    print(
        f"\n/v1/dead-letters {len(listed):,} B, /dashboard {len(page):,} B,"
        f" CSV {len(csv):,} B, API peak RSS growth {growth_mb:.1f} MB"
    )
    assert (listed_status, page_status, csv_status) == (200, 200, 200)
    assert len(listed) < MAX_RESPONSE_BYTES
    assert len(page) < MAX_RESPONSE_BYTES
    assert len(csv) < MAX_RESPONSE_BYTES
    assert growth_mb < MAX_RSS_GROWTH_MB

    # Stored: the head, the whole payload's size and SHA-256, as the worker received it.
    by_digest = {hashlib.sha256(payload).digest(): payload for payload in sent}
    rows = db.execute(
        "SELECT reason, payload, payload_size, payload_sha256 FROM dead_letters"
    ).fetchall()
    assert len(rows) == LETTERS
    for reason, head, size, digest in rows:
        assert reason == "too_large"
        original = by_digest.pop(bytes(digest))
        assert (len(head), size) == (HEAD_BYTES, MIB)
        assert bytes(head) == original[:HEAD_BYTES]
    assert not by_digest  # each payload sent is exactly one dead letter

    letters = json.loads(listed)["dead_letters"]
    assert len(letters) == LETTERS
    sizes = {(letter["payload_size"], letter["payload_truncated"]) for letter in letters}
    assert sizes == {(MIB, True)}
    digests = {letter["payload_sha256"] for letter in letters}
    assert digests == {hashlib.sha256(payload).hexdigest() for payload in sent}
    originals = {hashlib.sha256(payload).hexdigest(): payload for payload in sent}
    for letter in letters:
        preview = letter["payload_preview"]
        assert letter["payload_encoding"] == "utf-8"
        assert 0 < len(preview) <= MAX_PREVIEW_CHARS
        assert originals[letter["payload_sha256"]].startswith(preview.encode())

    # Per id: the whole of what is stored, the 4 KiB head.
    newest = letters[0]
    status, _, body = live_api.request("GET", f"/v1/dead-letters/{newest['id']}", operator)
    assert status == 200, body[:500]
    one = json.loads(body)
    original = originals[newest["payload_sha256"]]
    assert (one["payload"], one["payload_encoding"]) == (original[:HEAD_BYTES].decode(), "utf-8")
    assert (one["payload_size"], one["payload_truncated"]) == (MIB, True)

    # A head is not the message: replay sends none of them, and leaves them pending.
    status, _, body = live_api.request(
        "POST",
        "/v1/dead-letters/replay",
        {**operator, "Content-Type": "application/json"},
        json.dumps({"reason": "too_large"}).encode(),
    )
    assert (status, json.loads(body)) == (200, {"replayed": []})
    assert count(db, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL") == LETTERS


def test_a_dead_letter_per_id_needs_an_operator_and_an_existing_id(
    db: psycopg.Connection[Any], live_api: LiveApi
) -> None:
    operator = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 'op')}"}
    brand = {"Authorization": f"Bearer {create_key(db, Role.BRAND, 'b', brand='fjord')}"}
    payload = json.dumps(event()).encode()
    (dead_id,) = db.execute(
        "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
        " payload_size, payload_sha256) VALUES (now(), 't', 'rvm-x', 'unknown_device', 'd',"
        " %s, %s, sha256(%s)) RETURNING id",
        (payload, len(payload), payload),
    ).fetchone() or (None,)

    status, _, body = live_api.request("GET", f"/v1/dead-letters/{dead_id}", operator)
    assert status == 200
    one = json.loads(body)
    assert (one["payload"], one["payload_truncated"]) == (payload.decode(), False)
    assert one["payload_sha256"] == hashlib.sha256(payload).hexdigest()

    status, headers, body = live_api.request("GET", f"/v1/dead-letters/{dead_id + 1}", operator)
    assert status == 404 and headers["content-type"] == "application/problem+json"
    assert f"no dead letter {dead_id + 1}" in json.loads(body)["detail"]
    assert live_api.request("GET", f"/v1/dead-letters/{dead_id}", brand)[0] == 403
    assert live_api.request("GET", f"/v1/dead-letters/{dead_id}")[0] == 401
