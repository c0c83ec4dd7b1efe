"""What browsers get beside every answer, and what they may not send: security headers,
redirects that never carry a Host header's name, and no form posted to the pages from
another origin (CSRF; SameSite cookies do not separate ports or subdomains)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response

# The pages a person logs in to: everything they load is their own (no script at all).
PAGE_PREFIXES = ("/dashboard", "/portal", "/login", "/logout")
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Elsewhere (the API, /docs with Swagger UI's inline start-up script, the resolver's page
# with its inline style): only never framed.
OTHER_CSP = "frame-ancestors 'none'"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_page(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


class BrowserGuard:
    """ASGI middleware. `public_base_url` (LOOPTRACK_PUBLIC_BASE_URL) is an origin the
    pages are also served under, e.g. behind a proxy that rewrites Host."""

    def __init__(self, app: ASGIApp, public_base_url: str) -> None:
        self.app = app
        self.public_netloc = urlsplit(public_base_url).netloc.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        host = request_headers.get("host", "").lower()
        page = _is_page(scope["path"])

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Content-Security-Policy", PAGE_CSP if page else OTHER_CSP)
                if page:
                    headers["Cache-Control"] = "no-store"
                location = headers.get("location")
                if location is not None:
                    headers["location"] = _local_location(location, host)
            await send(message)

        if page and scope["method"] in UNSAFE_METHODS:
            origin = _sender_origin(request_headers)
            own = {netloc for netloc in (host, self.public_netloc) if netloc}
            if origin is not None and origin not in own:
                refused = problem_response(
                    403,
                    "cross-origin",
                    f"a form posted from {origin or 'an opaque origin'} to this site's pages is"
                    " refused: post it from the page itself",
                    scope["path"],
                )
                await refused(scope, receive, send_guarded)
                return

        await self.app(scope, receive, send_guarded)


def _sender_origin(headers: Headers) -> str | None:
    """host[:port] of the page that sent the request, from Origin or else Referer; "" for
    an opaque origin ("null"); None when the client names none (not a browser's form)."""
    origin = headers.get("origin")
    if origin is not None:
        return "" if origin == "null" else urlsplit(origin).netloc.lower()
    referer = headers.get("referer")
    return urlsplit(referer).netloc.lower() if referer else None


def _local_location(location: str, host: str) -> str:
    """A redirect to this very host as a path: Starlette builds its redirects (the
    trailing-slash one) from the request's Host header, which the client chooses."""
    parts = urlsplit(location)
    if parts.netloc and parts.netloc.lower() == host:
        path = parts.path or "/"
        return path + (f"?{parts.query}" if parts.query else "")
    return location
