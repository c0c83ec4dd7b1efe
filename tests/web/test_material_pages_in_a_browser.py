"""Acceptance (issue 19): in headless chromium, against the real API, an operator opens
the material page from the navigation and sees a flow chart per material and the targets
with their progress; a brand owner sees its own packaging's content. Screenshots land in
test-artifacts/screenshots/ (docs/screenshots.py retakes docs/materials.png from the demo)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from playwright.sync_api import Page, expect

from schemas.api_keys import Role, create_key
from tests.api import material_scenario as world
from tests.storing import store
from tests.web.conftest import screenshot


def put(base_url: str, key: str, path: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def log_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()


def test_operator_and_brand_read_the_material_pages_in_a_browser(
    db: psycopg.Connection[Any], live_api: str, page: Page, console_errors: list[str]
) -> None:
    operator = create_key(db, Role.OPERATOR, "ops")
    brand = create_key(db, Role.BRAND, "fjord", brand="fjord")
    world.register(lambda path, body: put(live_api, operator, path, body))
    world.add_devices(db)
    for device, events in world.device_events().items():
        store(db, device, events)
    before, _, this = world.months()

    log_in(page, live_api, operator)
    page.get_by_role("navigation").get_by_role("link", name="Materials").click()
    expect(page).to_have_url(f"{live_api}/dashboard/materials")
    # The period of the scenario's two months, chosen in the form as a person would.
    page.get_by_label("From", exact=True).fill(before.isoformat())
    page.get_by_label("To", exact=True).fill(this.isoformat())
    page.get_by_label("Time zone").select_option("UTC")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Material flows and targets")).to_be_visible()
    for material in ("PET", "aluminium", "fibre", "HDPE"):
        chart = page.get_by_role("img", name=f"{material}: material flow")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    pet = page.locator('figure[data-material="PET"]')
    expect(pet.get_by_text("material recycling 2.64 kg")).to_be_visible()
    expect(pet.get_by_text("Placed on market", exact=True)).to_be_visible()

    targets = page.locator("#targets table")
    expect(targets).to_be_visible()
    expect(targets.locator("tbody tr")).to_have_count(4)
    fibre = targets.locator('tr[data-target="no-fibre-replacement-2025"]')
    expect(fibre.locator(".status")).to_have_text("on track")
    expect(fibre.get_by_role("img", name="against a target of 5.0 %", exact=False)).to_be_visible()
    content = targets.locator('tr[data-target="no-recycled-renewable-plastic-2030"]')
    expect(content.locator(".status")).to_have_text("not on track")
    screenshot(page, "materials")

    # The CSV link downloads the table of the period shown.
    with page.expect_download() as info:
        page.locator("#materials").get_by_role("link", name="CSV").click()
    lines = Path(info.value.path()).read_text().splitlines()
    assert lines[0].startswith("bucket_start,material,placed_kg,collected_kg,")
    assert len(lines) == 1 + len(world.expected())
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_api, brand)
    page.get_by_role("navigation").get_by_role("link", name="Materials").click()
    expect(page).to_have_url(f"{live_api}/portal/materials")
    page.get_by_label("From", exact=True).fill(before.isoformat())
    page.get_by_label("To", exact=True).fill(this.isoformat())
    page.get_by_label("Time zone").select_option("UTC")
    page.get_by_role("button", name="Show").click()
    expect(
        page.get_by_role("img", name="Placed on the market per material, by content")
    ).to_be_visible()
    totals = page.locator('#material-totals tr[data-material="PET"]')
    expect(totals.locator(".placed_kg")).to_have_text("3.000")  # fjord's 150 bottles of 20 g
    expect(totals.locator(".recycled_content_share")).to_have_text("25.0 %")
    content_text = page.content()
    assert world.OTHER_NAME not in content_text and "collected" not in content_text.lower()
    screenshot(page, "portal-materials")
    assert console_errors == []
