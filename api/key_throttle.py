"""Slows a client that keeps sending unknown API keys: after FAILURES_ALLOWED of them
within WINDOW_S, its requests get 429 with Retry-After until the oldest failure leaves the
window, whatever key they carry. Counted per client address, in this API process."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from api.problems import Problem

FAILURES_ALLOWED = 10
WINDOW_S = 60.0
# Clients tracked at most: the oldest are forgotten first, so a flood of addresses cannot
# grow the API's memory.
MAX_CLIENTS = 10_000


class KeyThrottle:
    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """429 (Problem) while `client` is over its failures."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return
            while failures and failures[0] <= now - WINDOW_S:
                failures.popleft()
            if len(failures) < FAILURES_ALLOWED:
                return
            wait_s = math.ceil(failures[0] + WINDOW_S - now)
        raise Problem(
            429,
            "too-many-attempts",
            f"{FAILURES_ALLOWED} unknown API keys from this client within {WINDOW_S:g} s:"
            f" try again in {wait_s} s",
            headers={"Retry-After": str(max(wait_s, 1))},
        )

    def failed(self, client: str) -> None:
        """Count an unknown key sent by `client`."""
        with self._lock:
            failures = self._failures.pop(client, None) or deque(maxlen=FAILURES_ALLOWED)
            failures.append(time.monotonic())
            self._failures[client] = failures  # now the newest
            while len(self._failures) > MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]
