"""Issue 22.12, as a person sees it in headless chromium against the real API started
with LOOPTRACK_TIMEZONE=Europe/Oslo: histogram labels at a readable size with titled
axes, a packaging type in one colour on the dashboard and the portal, times naming their
zone, a return rate above 100 % explained in one line, and error pages under the nav bar.
The scenario is tests/api/test_pages_readable.py's; screenshots land in
test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import Locator, Page, expect

import tests.live_api
from tests.api.test_pages_readable import (
    DEAD_LETTER_SHOWN,
    OVER_FULL,
    ZONE,
    in_zone,
    seed_scenario,
)
from tests.conftest import Broker, service_env
from tests.web.conftest import screenshot

# The smallest text a person reads without effort on a screen (CSS px).
READABLE_PX = 10
# A phone's viewport, the narrowest the pages are laid out for.
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def scenario(db: psycopg.Connection[Any]) -> dict[str, Any]:
    return seed_scenario(db)


@pytest.fixture
def oslo_api(
    db_url: str, broker: Broker, topic_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """`looptrack api` as live_api starts it, with LOOPTRACK_TIMEZONE=Europe/Oslo (the
    database's day rollups stay in UTC: the pages then count from the hourly ones)."""
    monkeypatch.setattr(
        tests.live_api,
        "service_env",
        lambda *args: {**service_env(*args), "LOOPTRACK_TIMEZONE": ZONE},
    )
    with tests.live_api.running_api(db_url, broker, topic_root, tmp_path / "api.log") as api:
        yield api.base_url


def log_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()


def rendered_px(text: Locator) -> list[float]:
    """The size each SVG text is drawn at on the screen (CSS px): its font size scaled by
    the viewBox, as the reader sees it, not the font-size attribute."""
    sizes: list[float] = text.evaluate_all(
        "els => els.map(e => parseFloat(getComputedStyle(e).fontSize) * e.getScreenCTM().a)"
    )
    return sizes


def legend_colours(page: Page) -> dict[str, str]:
    """The return-rate chart's colour per packaging type, as its legend is painted."""
    found: dict[str, str] = page.locator("#return-rates svg.chart").evaluate(
        """svg => Object.fromEntries([...svg.querySelectorAll('text')]
            .filter(t => t.previousElementSibling && t.previousElementSibling.tagName === 'rect')
            .map(t => [t.textContent, getComputedStyle(t.previousElementSibling).fill]))"""
    )
    return found


def bar_colours(page: Page) -> dict[str, str]:
    """Each histogram's bar colour on a reuse page, by its packaging type."""
    found: dict[str, str] = page.locator("#reuse svg.chart").evaluate_all(
        """svgs => Object.fromEntries(svgs.map(s => [
            s.getAttribute('aria-label').split(':')[0],
            getComputedStyle(s.querySelector('rect')).fill]))"""
    )
    return found


def test_histograms_are_readable_with_titled_axes(
    db: psycopg.Connection[Any], scenario: dict[str, Any], oslo_api: str, page: Page,
    console_errors: list[str],
) -> None:  # fmt: skip
    log_in(page, oslo_api, scenario["operator"])
    page.goto(f"{oslo_api}/dashboard/reuse")
    chart = page.get_by_role("img", name="crate-24: items by number of trips")
    expect(chart).to_be_visible()
    expect(chart.locator("text.axis-title")).to_have_text(["Items", "Trips"])
    ticks = chart.locator("text:not(.axis-title)")
    assert ticks.count() >= 4  # the gridlines' counts and the trips under the bars
    assert min(rendered_px(ticks)) >= READABLE_PX, rendered_px(ticks)
    screenshot(page, "readable-reuse")
    # On a phone, too.
    page.set_viewport_size(PHONE)
    assert min(rendered_px(ticks)) >= READABLE_PX, rendered_px(ticks)
    assert console_errors == []


def test_a_packaging_type_has_one_colour_on_the_dashboard_and_the_portal(
    db: psycopg.Connection[Any], scenario: dict[str, Any], oslo_api: str, page: Page,
    console_errors: list[str],
) -> None:  # fmt: skip
    log_in(page, oslo_api, scenario["operator"])
    dashboard = legend_colours(page)
    page.goto(f"{oslo_api}/dashboard/reuse")
    dashboard_bars = bar_colours(page)
    page.goto(f"{oslo_api}/dashboard")
    page.get_by_role("button", name="Log out").click()

    log_in(page, oslo_api, scenario["fjord"])
    expect(page).to_have_url(f"{oslo_api}/portal")
    portal = legend_colours(page)
    screenshot(page, "readable-portal")
    page.goto(f"{oslo_api}/portal/reuse")
    portal_bars = bar_colours(page)

    assert set(dashboard) == {"can-0.33l", "crate-24", "pet-0.5l"}
    assert len(set(dashboard.values())) == 3
    assert portal == {"crate-24": dashboard["crate-24"], "pet-0.5l": dashboard["pet-0.5l"]}
    assert dashboard_bars == portal_bars == {"crate-24": dashboard["crate-24"]}
    assert console_errors == []


def test_times_name_their_zone_and_default_to_the_configured_one(
    db: psycopg.Connection[Any], scenario: dict[str, Any], oslo_api: str, page: Page,
    console_errors: list[str],
) -> None:  # fmt: skip
    log_in(page, oslo_api, scenario["operator"])
    expect(page.get_by_label("Time zone")).to_have_value(ZONE)
    now_abbreviation = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).tzname()
    expect(page.locator("#return-rates .period")).to_contain_text(f"per day in {ZONE}")
    expect(page.locator("#return-rates .period")).to_contain_text(f"00:00 {now_abbreviation}")
    device = page.locator('tr[data-device="rvm-1"] .last-seen')
    expect(device).to_have_text(in_zone(scenario["last_seen"], ZONE))
    expect(page.locator("#dead-letters .received-at")).to_have_text([DEAD_LETTER_SHOWN])
    screenshot(page, "readable-dashboard")

    page.get_by_label("Time zone").select_option("UTC")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#dead-letters .received-at")).to_have_text(["2026-07-01 12:00:00 UTC"])
    page.goto(f"{oslo_api}/dashboard/reuse")
    expect(page.locator("#duplicates td.ts")).to_have_text(
        [in_zone(scenario["duplicate_at"], ZONE)]
    )
    assert console_errors == []


def test_a_return_rate_above_100_percent_is_explained_in_one_line(
    db: psycopg.Connection[Any], scenario: dict[str, Any], oslo_api: str, page: Page,
    console_errors: list[str],
) -> None:  # fmt: skip
    log_in(page, oslo_api, scenario["operator"])
    crates = page.locator('#totals tr[data-packaging-type="crate-24"]')
    expect(crates).to_contain_text("300.0 %")
    note = page.get_by_text(OVER_FULL)
    expect(note).to_be_visible()
    # One line on a desktop: its height is one line's and the padding's, no more.
    box = note.bounding_box()
    one_line, padding = note.evaluate(
        """e => { const s = getComputedStyle(e);
                  return [parseFloat(s.lineHeight),
                          parseFloat(s.paddingTop) + parseFloat(s.paddingBottom)]; }"""
    )
    assert box is not None and box["height"] < 1.5 * one_line + padding, (box, one_line)
    page.get_by_role("button", name="Log out").click()

    log_in(page, oslo_api, scenario["other"])  # its cans: 1 of 5 back
    expect(page.locator('#totals tr[data-packaging-type="can-0.33l"]')).to_contain_text("20.0 %")
    expect(page.get_by_text(OVER_FULL)).to_have_count(0)
    assert console_errors == []


def nav_links(page: Page) -> list[str]:
    nav = page.get_by_role("navigation", name="Main")
    return [text.strip() for text in nav.locator("a, button").all_inner_texts()]


def test_error_pages_keep_the_nav_bar(
    db: psycopg.Connection[Any], scenario: dict[str, Any], oslo_api: str, page: Page,
    console_errors: list[str],
) -> None:  # fmt: skip
    response = page.goto(f"{oslo_api}/nope")
    assert response is not None and response.status == 404
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)  # not logged in

    log_in(page, oslo_api, scenario["operator"])
    response = page.goto(f"{oslo_api}/dashboard/nope")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
    assert nav_links(page) == ["Dashboard", "Materials", "API", "Log out"]
    screenshot(page, "readable-error-404")
    response = page.goto(f"{oslo_api}/dashboard?tz=Mars/Olympus")
    assert response is not None and response.status == 422
    assert nav_links(page) == ["Dashboard", "Materials", "API", "Log out"]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Operator dashboard")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    log_in(page, oslo_api, scenario["fjord"])
    response = page.goto(f"{oslo_api}/nope")
    assert response is not None and response.status == 404
    assert nav_links(page) == ["Portal", "Materials", "API", "Log out"]
    expect(page.get_by_role("link", name="Back to the portal")).to_be_visible()
    assert [e for e in console_errors if "404" not in e and "422" not in e] == []
