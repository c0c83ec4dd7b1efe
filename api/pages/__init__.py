"""Pages for people, served by the API itself (server-rendered, no build step): the login
form, the operator dashboard and the brand-owner portal. They call the same functions and
read the same aggregates as the JSON endpoints."""

from __future__ import annotations

from api.pages.routes import login_required_handler, router
from api.pages.session import LoginRequired

__all__ = ["LoginRequired", "login_required_handler", "router"]
