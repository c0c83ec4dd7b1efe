"""The time limit of statistics that add up hourly or 15-minute counts, and the 422 that
refuses a window over it, naming the windows the rollups answer fast instead."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from api.problems import Problem, ProblemDetails, documented

# The name it had before api/stats/ was a package, which log filters may know.
log = logging.getLogger("api.time_limit")

SLUG = "slow-window"
# Named in every refusal, so whoever reads it knows what to change.
SETTING = "LOOPTRACK_STATS_TIMEOUT_MS"


class FastWindow(BaseModel):
    """A kind of window the rollups answer fast, with the request's window widened to it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rollup": "day",
                    "tz": "Europe/Oslo",
                    "bounds": "local-midnight",
                    "site_id": True,
                    "query": {"from": "2026-03-01", "to": "2026-04-01", "tz": "Europe/Oslo"},
                }
            ]
        }
    )

    rollup: Literal["day", "hour"] = Field(description="the rollup that answers it")
    tz: str | None = Field(
        description="the zone `tz` must name (the day rollups' zone); null: any zone whose "
        "UTC offset is a whole number of hours throughout the window"
    )
    bounds: Literal["local-midnight", "whole-hour"] = Field(
        description="what `from` and `to` must fall on: midnight in `tz`, or a whole UTC hour"
    )
    site_id: bool = Field(description="whether `site_id` may be given")
    query: dict[str, str] = Field(
        description="`from`, `to` and `tz` of the request's window widened to this kind"
    )


class SlowWindowProblem(ProblemDetails):
    """A 422 of the statistics endpoints: an invalid parameter (`detail` names it), or
    `type` /problems/slow-window, with the time limit and the windows answered fast."""

    timeout_ms: int | None = Field(
        default=None, description="slow-window: the limit each statement ran into (ms)"
    )
    fast_windows: list[FastWindow] | None = Field(
        default=None, description="slow-window: the windows the rollups answer fast"
    )


# For the OpenAPI document of the endpoints with a time limit.
SLOW_WINDOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: documented(
        "Invalid parameter (detail names the field and rule), or /problems/slow-window: the "
        "window's hourly or 15-minute counts took longer than the server's time limit to add "
        "up; fast_windows lists the windows read fast from day or hour totals",
        SlowWindowProblem,
    )
}


class SlowWindow(Problem):
    """A statistics window whose counts took longer than the time limit to add up: 422,
    with `timeout_ms` and `fast_windows` (what the day and hour rollups answer fast)."""

    def __init__(self, detail: str, timeout_ms: int, fast_windows: list[dict[str, Any]]) -> None:
        super().__init__(422, SLUG, detail, timeout_ms=timeout_ms, fast_windows=fast_windows)
        self.timeout_ms = timeout_ms
        self.fast_windows = fast_windows


@contextmanager
def time_limited(
    conn: psycopg.Connection[Any], timeout_ms: int | None, refusal: Callable[[], Problem]
) -> Iterator[None]:
    """Runs the block's statements with a statement timeout of `timeout_ms` each (None or
    0: no limit). They run in a savepoint: one cancelled for running longer is rolled back
    to it, so the caller's transaction stays usable (a page still shows its other
    tables), and `refusal()` is raised instead. The limit ends with the block."""
    if not timeout_ms:
        yield
        return
    started = time.monotonic()
    try:
        with conn.transaction():
            row = conn.execute("SELECT current_setting('statement_timeout')").fetchone()
            assert row is not None
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
            yield
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (row[0],))
    except psycopg.errors.QueryCanceled:
        # The same error is raised for a statement cancelled by someone else (an
        # operator's pg_cancel_backend): only one that ran as long as the limit is ours.
        # The server's message is not used to tell them apart: it is translated.
        elapsed_ms = (time.monotonic() - started) * 1000
        if elapsed_ms < timeout_ms:
            raise
        refused = refusal()
        log.info(
            "statistics window refused problem=%s timeout_ms=%d elapsed_ms=%.0f",
            refused.slug, timeout_ms, elapsed_ms,
        )  # fmt: skip
        raise refused from None
