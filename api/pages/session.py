"""Who is looking at a page: the login form checks an API key exactly as an
`Authorization: Bearer` key is checked (SPEC §9), then starts a session
(schemas.page_sessions) whose random id an HttpOnly, SameSite=Strict cookie keeps. The key
itself never goes into the cookie."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from api.dependencies import Conn
from api.keys.last_used import note_key_use
from schemas.api_keys import Principal, Role
from schemas.page_sessions import session_caller

COOKIE = "looptrack_session"
# How long a login lasts (s), in the browser and in the database: a day and a half.
COOKIE_MAX_AGE_S = 36 * 3600


class LoginRequired(Exception):
    """No valid key in the cookie, or a role that may not see the page: the handler sends
    the browser to the login form, which says why."""

    def __init__(self, next_path: str, reason: str) -> None:
        super().__init__(reason)
        self.location = f"/login?next={quote(next_path)}&reason={quote(reason)}"


def page_caller(*roles: Role) -> object:
    """A dependency giving the logged-in caller, admitting only `roles` (and admin)."""
    allowed = {Role.ADMIN, *roles}

    def check(request: Request, conn: Conn) -> Principal:
        session_id = request.cookies.get(COOKIE)
        caller = session_caller(conn, session_id) if session_id else None
        if caller is None:
            raise LoginRequired(request.url.path, "Log in with your API key.")
        if caller.role not in allowed:
            names = " or ".join(sorted(r.value for r in allowed - {Role.ADMIN}))
            article = "an" if names[0] in "aeiou" else "a"
            raise LoginRequired(request.url.path, f"This page needs {article} {names} key.")
        # For an error page the request may still end in: it shows this caller's nav bar.
        request.state.caller = caller
        # A page view is a use of the key that logged in, as a request with it is.
        note_key_use(request.app.state.pool, caller.key_id)
        return caller

    return Depends(check)


OperatorPage = Annotated[Principal, page_caller(Role.OPERATOR)]
BrandPage = Annotated[Principal, page_caller(Role.BRAND)]
