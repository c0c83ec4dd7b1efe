"""Errors as pages for people: a browser that opens a page and meets a problem (a bad
`from`, an unknown path, the database down) is shown an HTML page saying so, not JSON,
under the same nav bar as the page it wanted (the logged-in visitor's links)."""

from __future__ import annotations

import logging

import psycopg
from fastapi import Request
from fastapi.responses import Response
from psycopg_pool import PoolTimeout

from api.pages.routes import TEMPLATES
from api.pages.session import COOKIE
from api.problems import ProblemDetails
from schemas.api_keys import Principal, Role
from schemas.page_sessions import session_caller

log = logging.getLogger(__name__)

# Path prefixes that are not pages: the JSON API, the public resolver (which shows its
# own error page to browsers), metrics, health and the static files keep problem+json.
NOT_PAGES = ("/v1", "/01", "/metrics", "/health", "/static")
# Where the error page leads back to, by the section of the site the request was for.
BACK_LINKS = (
    ("/portal", "/portal", "Back to the portal"),
    ("/dashboard", "/dashboard", "Back to the dashboard"),
)
LOGIN_LINK = ("/login", "Go to the login page")
# Where a logged-in visitor's error page outside those sections leads back to.
HOME_LINKS = {
    Role.BRAND: ("/portal", "Back to the portal"),
    Role.OPERATOR: ("/dashboard", "Back to the dashboard"),
    Role.ADMIN: ("/dashboard", "Back to the dashboard"),
}
# How long an error page waits for a connection to look its visitor's session up (s).
# The error handlers run on the event loop, so this wait holds every request: it is
# short, and a visitor whose session cannot be read in time gets the page without links.
SESSION_LOOKUP_WAIT_S = 0.25


def error_page(
    request: Request, problem: ProblemDetails, headers: dict[str, str] | None
) -> Response | None:
    """The problem as an HTML page with the same status, when the request is for a page
    from a client that takes HTML; None when it should stay problem+json."""
    path = request.url.path
    if path.startswith(NOT_PAGES) or not _takes_html(request):
        return None
    caller = _visitor(request, problem.status)
    href, label = _back_link(path, caller)
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {"problem": problem, "caller": caller, "back_href": href, "back_label": label},
        status_code=problem.status,
        headers=headers,
    )


def _takes_html(request: Request) -> bool:
    """Whether the Accept header names text/html (as browsers' do) with a weight above 0."""
    for media_range in request.headers.get("accept", "").split(","):
        kind, *params = media_range.split(";")
        if kind.strip().lower() != "text/html":
            continue
        weights = [p.split("=", 1)[1] for p in params if p.strip().lower().startswith("q=")]
        return not weights or _weight(weights[0]) > 0
    return False


def _weight(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0  # an unreadable weight: RFC 9110's default


def _visitor(request: Request, status: int) -> Principal | None:
    """Who is logged in, for the nav bar: the caller the page's login check found, or,
    when the request failed before one ran (an unknown path), the session of its cookie.
    None for a visitor without a session, and when the database is what failed (503)."""
    known: Principal | None = getattr(request.state, "caller", None)
    session_id = request.cookies.get(COOKIE)
    if known is not None or not session_id or status == 503:
        return known
    try:
        with request.app.state.pool.connection(timeout=SESSION_LOOKUP_WAIT_S) as conn:
            return session_caller(conn, session_id)
    except (psycopg.Error, PoolTimeout) as exc:
        log.warning("error page without its nav bar: session lookup failed error=%s", exc)
        return None


def _back_link(path: str, caller: Principal | None) -> tuple[str, str]:
    for section, href, label in BACK_LINKS:
        if path == section or path.startswith(section + "/"):
            return href, label
    if caller is not None and caller.role in HOME_LINKS:
        return HOME_LINKS[caller.role]
    return LOGIN_LINK
