"""A Mosquitto of our own on a free local port, started with the project's config: for
tests, benchmarks and the demo, which must not depend on the machine's broker settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_MOSQUITTO_CONF = (
    Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "mosquitto.conf"
)
# How long mosquitto may take to accept connections after start (s).
START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass
class LocalMosquitto:
    """Mosquitto with deploy/mosquitto/mosquitto.conf (or `config`), its data and log in
    `workdir`, listening on `port` instead of the config's listeners."""

    workdir: Path
    port: int = field(default_factory=free_port)
    config: Path = PROJECT_MOSQUITTO_CONF
    process: subprocess.Popen[bytes] | None = None
    # Config lines that replace the project's for the same option (e.g. `allow_anonymous
    # false`, `password_file …`, `acl_file …`).
    extra_config: list[str] = field(default_factory=list)
    # Lines for the listener itself, written after its `listener` line (Mosquitto applies
    # `cafile`, `certfile`, `keyfile`, `require_certificate` to the listener above them):
    # with a `certfile` the listener speaks TLS only.
    listener_config: list[str] = field(default_factory=list)

    @property
    def tls(self) -> bool:
        return any(line.split()[:1] == ["certfile"] for line in self.listener_config)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart, keeping the persisted sessions) and wait until it accepts."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        own = [line.split()[0] for line in self.extra_config if line.strip()]
        replaced = ("listener", "persistence_location", "log_dest", "pid_file", *own)
        lines = [
            line for line in self.config.read_text().splitlines() if not line.startswith(replaced)
        ]
        lines += [
            *self.extra_config,
            f"pid_file {self.pid_file}",
            f"listener {self.port} 127.0.0.1",
            *self.listener_config,
            f"persistence_location {data}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            # As root, mosquitto would drop to its own user and lose access to workdir.
            *(["user root"] if os.geteuid() == 0 else []),
        ]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start; see {self.workdir / 'mosquitto.log'}")
            time.sleep(0.05)

    @property
    def pid_file(self) -> Path:
        return self.workdir / "mosquitto.pid"

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password and ACL files again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop cleanly (mosquitto writes its persistence file on the way out)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
