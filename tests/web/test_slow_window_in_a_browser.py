"""In headless chromium, against the real API with its default time limit: a person who
asks the dashboard for a period it cannot count in time sees why, with the rest of the
page, and reaches the figures through the link to the whole days around it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from playwright.sync_api import Page, expect

from schemas.api_keys import Role, create_key
from tests.factories import event, seed_registry
from tests.storing import store
from tests.table_locks import locked
from tests.web.conftest import screenshot


def test_a_period_over_the_time_limit_says_so_and_links_the_figures(
    db: psycopg.Connection[Any], db_url: str, live_api: str, page: Page,
    console_errors: list[str],
) -> None:  # fmt: skip
    seed_registry(db, ["rvm-1"])
    sale = event("sold", ts=datetime(2026, 3, 3, 10, tzinfo=UTC), qty=3)
    store(db, "rvm-1", [sale])
    operator = create_key(db, Role.OPERATOR, "ops")
    page.goto(f"{live_api}/login")
    page.get_by_label("API key").fill(operator)
    page.get_by_role("button", name="Log in").click()

    # A week of whole days in Asia/Kolkata (+05:30) reads hour and quarter-hour counts:
    # with them locked, it outlasts the limit (5 s by default).
    with locked(db_url, "event_counts_15m", release_after_s=30):
        page.goto(f"{live_api}/dashboard?from=2026-03-02&to=2026-03-09&tz=Asia/Kolkata")
        alert = page.locator(".slow-window")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text("could not be counted fast enough")
        expect(alert).to_contain_text("took longer than 5000 ms")
        expect(page.get_by_text("Not counted: see above.")).to_be_visible()
        # The rest of the page is there.
        expect(page.get_by_role("heading", name="Devices")).to_be_visible()
        screenshot(page, "dashboard-slow-window")

        # Whole days in the rollup zone (UTC here) read day counts: no limit, no lock.
        alert.get_by_role("link", name="Whole days in UTC: 2026-03-01 to 2026-03-08").click()
        expect(page).to_have_url(f"{live_api}/dashboard?from=2026-03-01&to=2026-03-09&tz=UTC")
        expect(page.locator(".slow-window")).to_have_count(0)
        expect(page.locator('#totals tr[data-packaging-type="pet-0.5l"] .sold')).to_have_text("3")
    assert console_errors == []
