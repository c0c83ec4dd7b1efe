"""A throwaway PostgreSQL cluster (initdb in a temp dir, pg_ctl) for fault tests that
stop, crash and restart the database server itself, which the shared server must never be."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from looptrack.local_services import free_port


def _bin_dir() -> Path:
    """The newest installed server's binaries (Debian keeps them off the PATH)."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    return versions[-1]


@dataclass
class LocalPostgres:
    """A cluster of its own on a free port, with trust auth for `postgres`. As root it runs
    as the `postgres` user (initdb refuses root) in a directory that user owns."""

    port: int = field(default_factory=free_port)
    datadir: Path = field(init=False)
    _root: Path = field(init=False)

    def __post_init__(self) -> None:
        self._bin = _bin_dir()
        self._user = "postgres" if os.geteuid() == 0 else None
        self._root = Path(tempfile.mkdtemp(prefix="lt-pg-"))
        self.datadir = self._root / "data"
        if self._user:
            shutil.chown(self._root, self._user)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self._bin / args[0]), *args[1:]], user=self._user, capture_output=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")

    def init(self) -> LocalPostgres:
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "--no-sync")
        return self

    def start(self) -> None:
        """Start and wait until it accepts connections (also after a crash: recovery)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._root}"
        log = self._root / "server.log"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir), "-l", str(log),
                  "-o", options)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown; `immediate`: every server process quits at once,
        as in a crash, and the next start replays the WAL."""
        self._run("pg_ctl", "stop", "-w", "-D", str(self.datadir), "-m", mode)

    def running(self) -> bool:
        done = subprocess.run(
            [str(self._bin / "pg_ctl"), "status", "-D", str(self.datadir)],
            user=self._user,
            capture_output=True,
        )
        return done.returncode == 0

    def destroy(self) -> None:
        if self.datadir.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self._root, ignore_errors=True)
