"""NUL characters refused in every path and query parameter: PostgreSQL text cannot hold
one, so a NUL reaching a query made psycopg raise DataError (a 500) instead of a 422."""

from __future__ import annotations

from fastapi import Request

from api.problems import Problem


def refuse_nul(request: Request) -> None:
    """An application-wide dependency, run before any route's own: 422 naming the first
    path or query parameter (name or value) that holds a NUL character."""
    named = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in named:
        if "\x00" in name or "\x00" in str(value):
            shown = name.replace("\x00", "\\x00")
            raise Problem(
                422,
                "nul-character",
                f"{shown}: contains a NUL character (%00), which no parameter may hold",
            )
