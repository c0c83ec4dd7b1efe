"""Smoke test of the browser rig: chromium opens a commissioned item's public page, served
by the real API, and the page shows the item."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import psycopg
from playwright.sync_api import Page, expect

from schemas.api_keys import Role, create_key
from tests.factories import GTIN_CRATE, seed_registry
from tests.web.conftest import screenshot

CRATE = GTIN_CRATE.zfill(14)


def commission(base_url: str, key: str, gtin: str) -> dict[str, Any]:
    """POST /v1/labels for one item, as a brand owner would; returns that item."""
    request = urllib.request.Request(
        f"{base_url}/v1/labels",
        data=json.dumps({"gtin": gtin, "count": 1}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        (item,) = json.load(response)["items"]
    return dict(item)


def test_a_scanned_item_opens_its_page_in_a_browser(
    db: psycopg.Connection[Any], live_api: str, page: Page, console_errors: list[str]
) -> None:
    seed_registry(db, [])
    item = commission(live_api, create_key(db, Role.BRAND, "b", brand="fjord"), CRATE)
    # The QR code's address, on this API's host: what a phone opens after a scan.
    path = urlsplit(item["url"]).path
    assert path == f"/01/{CRATE}/21/{item['serial']}"

    response = page.goto(live_api + path)
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_text(item["serial"]).first).to_be_visible()
    # The product's name (from seed_registry) stands on its own; the packaging type's too.
    expect(page.get_by_text("Crate", exact=True)).to_be_visible()
    expect(page.get_by_text("Crate 24", exact=True)).to_be_visible()
    screenshot(page, "resolver")
    assert console_errors == []
