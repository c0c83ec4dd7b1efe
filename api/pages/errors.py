"""Errors as pages for people: a browser that opens a page and meets a problem (a bad
`from`, an unknown path, the database down) is shown an HTML page saying so, not JSON."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.pages.routes import TEMPLATES
from api.problems import ProblemDetails

# Path prefixes that are not pages: the JSON API, the public resolver (which shows its
# own error page to browsers), metrics, health and the static files keep problem+json.
NOT_PAGES = ("/v1", "/01", "/metrics", "/health", "/static")
# Where the error page leads back to, by the section of the site the request was for.
BACK_LINKS = (
    ("/portal", "/portal", "Back to the portal"),
    ("/dashboard", "/dashboard", "Back to the dashboard"),
)
LOGIN_LINK = ("/login", "Go to the login page")


def error_page(
    request: Request, problem: ProblemDetails, headers: dict[str, str] | None
) -> Response | None:
    """The problem as an HTML page with the same status, when the request is for a page
    from a client that takes HTML; None when it should stay problem+json."""
    path = request.url.path
    if path.startswith(NOT_PAGES) or not _takes_html(request):
        return None
    href, label = _back_link(path)
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {"problem": problem, "back_href": href, "back_label": label},
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


def _back_link(path: str) -> tuple[str, str]:
    for section, href, label in BACK_LINKS:
        if path == section or path.startswith(section + "/"):
            return href, label
    return LOGIN_LINK
