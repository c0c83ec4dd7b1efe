"""Errors on the pages for people: a browser that opens a page and meets a problem gets an
HTML page with the same status, the problem's title and detail (escaped) and a link back;
the JSON API, the pages asked for without text/html, and the other machine paths keep
answering problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.api.test_pages import log_in
from tests.conftest import Broker
from tests.factories import GTIN_CRATE, seed_registry

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# Labels one batch may hold in these tests: the portal's form is refused above it.
LABELS_MAX = 50
# How long a request waits for a table lock before the database gives up (ms).
LOCK_TIMEOUT_MS = 300


@pytest.fixture
def keys(db: psycopg.Connection[Any]) -> dict[str, str]:
    seed_registry(db, ["rvm-1"])
    return {
        "operator": create_key(db, Role.OPERATOR, "op"),
        "brand": create_key(db, Role.BRAND, "fjord", brand="fjord"),
    }


@pytest.fixture
def settings(db_url: str, broker: Broker, topic_root: str) -> Settings:
    # A lock held elsewhere makes a query fail after LOCK_TIMEOUT_MS instead of waiting:
    # the way these tests make the database unable to answer, with a real database.
    database_url = make_conninfo(db_url, options=f"-c lock_timeout={LOCK_TIMEOUT_MS}")
    return Settings(
        database_url=database_url,
        mqtt_url=broker.url,
        topic_root=topic_root,
        labels_max_count=LABELS_MAX,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


class _Page(HTMLParser):
    """What a person reads on a page (its text, entities decoded), where its links go,
    and which of them are in its nav bar (with the nav's forms' actions)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self.nav: list[str] = []
        self._in_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "nav":
            self._in_nav = True
        if tag == "a":
            self.links += [value or "" for name, value in attrs if name == "href"]
        if self._in_nav and tag in ("a", "form"):
            self.nav += [value or "" for name, value in attrs if name in ("href", "action")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def nav_bar(answer: Any) -> list[str]:
    """Where the links (and the log-out form) of a page's nav bar go; [] without one."""
    page = _Page()
    page.feed(answer.text)
    return page.nav


OPERATOR_NAV = ["/dashboard", "/dashboard/materials", "/docs", "/logout"]
BRAND_NAV = ["/portal", "/portal/materials", "/docs", "/logout"]


def error_page(answer: Any, status: int, back: str) -> str:
    """Assert `answer` is an HTML error page with `status` and a link to `back`; its text."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    page = _Page()
    page.feed(answer.text)
    assert back in page.links, page.links
    text = " ".join("".join(page.text).split())
    assert f"Error {status}" in text
    return text


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "yesterday"}, "from 'yesterday': expected a date (2026-03-29)"),
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"bucket": "hour"}, "bucket: Input should be"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "must be before to"),
    ],
)
def test_a_bad_period_on_the_dashboard_is_a_422_page_naming_it(
    client: TestClient, keys: dict[str, str], params: dict[str, str], detail: str
) -> None:
    log_in(client, keys["operator"])
    answer = client.get("/dashboard", params=params, headers=BROWSER)
    text = error_page(answer, 422, back="/dashboard")
    assert "Unprocessable" in text and detail in text


def test_the_portal_and_its_csv_links_answer_errors_as_pages_leading_back_to_it(
    client: TestClient, keys: dict[str, str]
) -> None:
    log_in(client, keys["brand"])
    answer = client.get("/portal", params={"tz": "Nowhere/City"}, headers=BROWSER)
    assert "unknown time zone 'Nowhere/City'" in error_page(answer, 422, back="/portal")
    answer = client.get("/portal/devices.csv", headers=BROWSER)
    assert "no table 'devices' in the portal" in error_page(answer, 404, back="/portal")
    answer = client.get("/portal/reuse.csv", params={"from": "soon"}, headers=BROWSER)
    assert "from 'soon'" in error_page(answer, 422, back="/portal")


def test_the_label_form_refusing_a_batch_answers_a_page(
    client: TestClient, keys: dict[str, str]
) -> None:
    log_in(client, keys["brand"])
    form = {"product": GTIN_CRATE.zfill(14), "count": str(LABELS_MAX + 1)}
    answer = client.post("/portal/labels", data=form, headers=BROWSER)
    assert f"at most {LABELS_MAX} per batch" in error_page(answer, 422, back="/portal")


def test_unknown_paths_are_404_pages(client: TestClient, keys: dict[str, str]) -> None:
    answer = client.get("/dashboard/nope", headers=BROWSER)
    assert "There is no page at /dashboard/nope." in error_page(answer, 404, back="/dashboard")
    answer = client.get("/nope", headers=BROWSER)
    assert "There is no page at /nope." in error_page(answer, 404, back="/login")
    log_in(client, keys["operator"])
    answer = client.get("/dashboard/nope.csv", headers=BROWSER)
    assert "no table 'nope'" in error_page(answer, 404, back="/dashboard")


def test_the_login_form_refusing_its_input_answers_a_page_without_the_key(
    client: TestClient,
) -> None:
    too_long = "lt_" + "k" * 300
    answer = client.post("/login", data={"key": too_long}, headers=BROWSER)
    text = error_page(answer, 422, back="/login")
    assert "key: String should have at most 200 characters" in text
    assert too_long not in answer.text


def test_hostile_text_in_a_parameter_is_shown_escaped(
    client: TestClient, keys: dict[str, str]
) -> None:
    log_in(client, keys["operator"])
    hostile = "<script>alert(1)</script>"
    answer = client.get("/dashboard", params={"tz": hostile}, headers=BROWSER)
    text = error_page(answer, 422, back="/dashboard")
    assert f"unknown time zone '{hostile}'" in text  # read as text ...
    assert "<script>" not in answer.text  # ... never run
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


def test_a_wrong_key_or_none_still_goes_to_the_login_form(
    client: TestClient, keys: dict[str, str]
) -> None:
    answer = client.get("/dashboard", headers=BROWSER)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
    log_in(client, keys["brand"])
    answer = client.get("/dashboard", headers=BROWSER)
    assert answer.status_code == 303
    assert "reason=This%20page%20needs%20an%20operator%20key." in answer.headers["location"]


def test_the_database_unable_to_answer_is_a_503_page_and_stays_json_for_the_api(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    log_in(client, keys["operator"])
    bearer = {"Authorization": f"Bearer {keys['operator']}"}
    with db.transaction():
        db.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        page = client.get("/dashboard", headers=BROWSER)
        api = client.get("/v1/devices", headers={**bearer, **BROWSER})
    assert "the database could not complete the request" in error_page(page, 503, "/dashboard")
    assert nav_bar(page) == OPERATOR_NAV  # the caller was known before the database failed
    assert page.headers["retry-after"] == "5"
    assert_problem(api, 503, "the database could not complete the request")
    assert client.get("/dashboard", headers=BROWSER).status_code == 200  # lock gone: back


def test_an_unexpected_error_is_a_500_page_that_names_nothing_of_it(
    settings: Settings, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    app = create_app(settings)
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
        log_in(client, keys["operator"])
        bearer = {"Authorization": f"Bearer {keys['operator']}"}
        # A schema the code does not expect: a bug, not the database being unavailable.
        db.execute("ALTER TABLE devices RENAME TO devices_moved")
        page = client.get("/dashboard", headers=BROWSER)
        api = client.get("/v1/devices", headers={**bearer, **BROWSER})
    text = error_page(page, 500, back="/dashboard")
    assert nav_bar(page) == OPERATOR_NAV
    assert "Internal Server Error" in text and "unexpected error" in text
    assert "devices" not in text and "exist" not in text  # nothing of the SQL error
    assert_problem(api, 500, "unexpected error")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/stats/return-rates?from=yesterday", 422),
        ("/v1/nope", 404),
        ("/metrics?x=1", 401),
        ("/static/nope.css", 404),
    ],
)
def test_the_api_and_other_machine_paths_keep_problem_json_for_a_browser(
    client: TestClient, keys: dict[str, str], path: str, status: int
) -> None:
    headers = {**BROWSER}
    if path.startswith("/v1/stats"):
        headers["Authorization"] = f"Bearer {keys['operator']}"
    answer = client.get(path, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == status


@pytest.mark.parametrize(
    "accept", [None, "application/json", "application/problem+json", "text/html;q=0, */*"]
)
def test_a_page_asked_for_without_html_keeps_problem_json(
    client: TestClient, keys: dict[str, str], accept: str | None
) -> None:
    log_in(client, keys["operator"])
    headers = {"Accept": accept} if accept is not None else {}
    answer = client.get("/dashboard", params={"from": "yesterday"}, headers=headers)
    assert_problem(answer, 422, "from 'yesterday': expected a date")
    assert_problem(client.get("/dashboard/nope", headers=headers), 404, "Not Found")


def test_a_wrong_method_names_the_allowed_ones(client: TestClient) -> None:
    answer = client.delete("/health")
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "GET" in answer.headers["allow"]


def test_an_error_page_keeps_the_nav_bar_of_who_is_logged_in(
    client: TestClient, keys: dict[str, str]
) -> None:
    """Issue 22.12: an error page has the nav bar of the pages around it: the operator's
    links for an operator, the portal's for a brand owner, none for a visitor who is not
    logged in; a logged-in visitor's 404 outside the sections leads back home."""
    assert nav_bar(client.get("/nope", headers=BROWSER)) == []
    assert nav_bar(client.get("/dashboard/nope", headers=BROWSER)) == []

    log_in(client, keys["operator"])
    for path, status in (("/dashboard/nope", 404), ("/dashboard?tz=Mars/Olympus", 422)):
        answer = client.get(path, headers=BROWSER)
        error_page(answer, status, back="/dashboard")
        assert nav_bar(answer) == OPERATOR_NAV, path
    answer = client.get("/nope", headers=BROWSER)  # no page's login check ran: the cookie's
    error_page(answer, 404, back="/dashboard")
    assert nav_bar(answer) == OPERATOR_NAV

    log_in(client, keys["brand"])
    for path, status in (("/portal?from=soon", 422), ("/portal/devices.csv", 404)):
        answer = client.get(path, headers=BROWSER)
        error_page(answer, status, back="/portal")
        assert nav_bar(answer) == BRAND_NAV, path
    answer = client.get("/nope", headers=BROWSER)
    error_page(answer, 404, back="/portal")
    assert nav_bar(answer) == BRAND_NAV

    client.cookies.clear()
    client.cookies.set("looptrack_session", "not-a-session")  # a stale cookie: no nav
    answer = client.get("/nope", headers=BROWSER)
    error_page(answer, 404, back="/login")
    assert nav_bar(answer) == []
