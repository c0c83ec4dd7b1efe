"""`looptrack api` run as a real subprocess for tests that need a listening server."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Broker, free_port, service_env, wait_until

# How long the API gets to answer /health after starting: imports, pool and templates
# take a few seconds on a loaded CI machine (s).
API_START_TIMEOUT_S = 30
# How long the API gets to exit after SIGTERM before it is killed, and then to be reaped
# (s): a clean shutdown closes the pool and takes well under a second.
API_STOP_TIMEOUT_S = 10
# How long one /health probe may take before it counts as no answer (s): it answers in
# milliseconds when nothing starves it.
HEALTH_TIMEOUT_S = 5
# How long any other request may take (s): large lists and CSV exports included.
REQUEST_TIMEOUT_S = 60
# How much of the API's log a failure shows (characters).
LOG_TAIL_CHARS = 3000


@dataclass
class LiveApi:
    """A running `looptrack api`: plain HTTP requests to it, and its memory."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request on a connection of its own; the status, headers and body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def health_status(self) -> int:
        """The status /health answers with, 0 when it does not answer in time."""
        try:
            return self.request("GET", "/health", timeout_s=HEALTH_TIMEOUT_S)[0]
        except (http.client.HTTPException, OSError):
            return 0

    def memory_kib(self, field: str) -> int:
        """A line of /proc/PID/status, e.g. VmRSS or VmHWM (peak resident), in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def reset_peak(self) -> int:
        """Reset the peak resident memory (VmHWM) to the current one; returns that in KiB."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        return self.memory_kib("VmRSS")

    def log_tail(self) -> str:
        """The end of the API's log, for a failure message."""
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]


@contextmanager
def running_api(db_url: str, broker: Broker, topic_root: str, log_path: Path) -> Iterator[LiveApi]:
    """`looptrack api` on a free port, on this database and broker, logging to `log_path`;
    entered once /health answers 200, stopped with SIGTERM (then killed) on exit."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "looptrack", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=service_env(db_url, broker, topic_root),
            stdout=log,
            stderr=log,
        )
    api = LiveApi(port, process, log_path)
    try:
        wait_until(
            lambda: process.poll() is not None or api.health_status() == 200,
            API_START_TIMEOUT_S,
            "the API's /health",
        )
        if process.poll() is not None:
            pytest.fail(f"the API exited:\n{api.log_tail()}")
        yield api
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(API_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(API_STOP_TIMEOUT_S)
