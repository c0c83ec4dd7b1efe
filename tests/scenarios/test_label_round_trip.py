"""A brand owner prints labels; a phone scans one and lands on that item; an RVM scans it
and the item is credited. The QR codes are read back from the printed PDF by decoders
the project does not write; the CLI commissions a batch of 10,000 the same way."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import ROOT, Broker, publish_all, wait_until
from tests.factories import GTIN_CRATE, count, seed_registry
from tests.qr import cells, opencv_decode, rendered_pages, zxing_decode

pytestmark = pytest.mark.slow

CRATE = GTIN_CRATE.zfill(14)
BASE = "https://id.example.no"


def test_printed_labels_lead_to_their_items_and_credit_them_when_returned(
    db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str,
    make_worker: Any,
) -> None:  # fmt: skip
    seed_registry(db, ["rvm-1"])
    brand = {"Authorization": f"Bearer {create_key(db, Role.BRAND, 'b', brand='fjord')}"}
    settings = Settings(
        database_url=db_url, mqtt_url=broker.url, topic_root=topic_root, public_base_url=BASE
    )
    with TestClient(create_app(settings)) as client:
        made = client.post("/v1/labels", json={"gtin": CRATE, "count": 24}, headers=brand)
        assert made.status_code == 201, made.text
        expected = [item["url"] for item in made.json()["items"]]
        pdf = client.get(made.json()["download"], headers=brand).content
        (page,) = rendered_pages(pdf)
        assert sorted(zxing_decode(page)) == sorted(expected)
        # Each 3 x 8 cell holds one code, in sheet order, for OpenCV too.
        assert [opencv_decode(cell) for cell in cells(page, 3, 8)] == expected

        scanned = expected[5]
        path = urlsplit(scanned).path
        serial = made.json()["items"][5]["serial"]
        record = client.get(path, headers={"Accept": "application/json"})
        assert record.status_code == 200, record.text
        assert record.json()["serial"] == serial and record.json()["trips"] == 0
        page_html = client.get(path, headers={"Accept": "text/html"})
        assert "Crate" in page_html.text and serial in page_html.text

        # An RVM scans the same code: the item is credited with its return.
        make_worker()
        returned = {
            "event_id": str(uuid.uuid4()),
            "ts": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
            "type": "returned",
            "code": scanned,
        }
        publish_all(broker, topic_root, [("rvm-1", json.dumps(returned).encode())])
        wait_until(
            lambda: count(
                db,
                "SELECT count(*) FROM events"
                " WHERE item_class = %s AND serial = %s AND type = 'returned'",
                CRATE,
                serial,
            ),
            30,
            "the return stored against the scanned item",
        )
        after = client.get(path, headers={"Accept": "application/json"}).json()
        assert after["trips"] == 1


def test_the_cli_prints_ten_thousand_unique_labels(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    seed_registry(db, [])
    sheet = tmp_path / "crates.pdf"
    run = subprocess.run(
        [sys.executable, "-m", "looptrack", "labels", "--gtin", CRATE, "--count", "10000",
         "-o", str(sheet), "--columns", "4", "--rows", "10"],
        env={"LOOPTRACK_DATABASE_URL": db_url, "LOOPTRACK_PUBLIC_BASE_URL": BASE,
             "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "100"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "10000 items of" in run.stdout and "commissioning" in run.stdout
    assert (
        count(db, "SELECT count(DISTINCT serial) FROM items WHERE item_class = %s", CRATE) == 10_000
    )
    pages = rendered_pages(sheet.read_bytes())
    assert len(pages) == 10_000 // 40  # 4 x 10 per page
    # The first and the last page read back to serials commissioned in the database.
    serials = {r[0] for r in db.execute("SELECT serial FROM items WHERE item_class = %s", (CRATE,))}
    for page in (pages[0], pages[-1]):
        for uri in zxing_decode(page):
            assert uri.startswith(f"{BASE}/01/{CRATE}/21/")
            assert uri.rsplit("/", 1)[1] in serials
    assert len(zxing_decode(pages[-1])) == 40
