"""`looptrack demo`: the whole system on this machine with sample data and live traffic."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from importlib import resources
from typing import Any

import psycopg
import yaml

from devices.client import DeviceClient
from schemas.api_keys import Role, create_key
from schemas.migrations import ensure_database, migrate
from schemas.registry import SeedFile, apply_seed
from schemas.settings import Settings

# Simulated traffic: messages per second across all sample devices.
DEMO_RATE_PER_S = 20
API_PORT = 8000


def sample_seed() -> SeedFile:
    """The sample registry shipped with the package."""
    text = (resources.files("looptrack") / "data" / "seed.yaml").read_text("utf-8")
    return SeedFile.model_validate(yaml.safe_load(text))


def _event(seed: SeedFile) -> dict[str, Any]:
    product = random.choice(seed.products)
    kind = random.choices(["sold", "returned", "rejected"], weights=[50, 45, 5])[0]
    event: dict[str, Any] = {"type": kind, "gtin": product.gtin}
    if kind == "rejected":
        event["reason"] = random.choice(["damaged", "unreadable", "not_empty"])
    return event


def run_demo(settings: Settings) -> None:
    """Migrate, seed, start the worker and the API, publish traffic until Ctrl-C."""
    ensure_database(settings.database_url, create=settings.db_create)
    migrate(settings.database_url, timescaledb=settings.timescaledb, timezone=settings.timezone)
    seed = sample_seed()
    with psycopg.connect(settings.database_url) as conn:
        apply_seed(conn, seed)
        key = create_key(conn, Role.OPERATOR, "looptrack demo")
    children = [
        subprocess.Popen([sys.executable, "-m", "looptrack", "ingest"]),
        subprocess.Popen([sys.executable, "-m", "looptrack", "api", "--port", str(API_PORT)]),
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    time.sleep(2)  # let the worker subscribe before the first event
    clients = [
        DeviceClient(d.id, settings.mqtt, topic_root=settings.topic_root) for d in seed.devices
    ]
    for client in clients:
        client.start()
    print(
        f"looptrack demo is running\n"
        f"  API health   http://127.0.0.1:{API_PORT}/health\n"
        f"  API docs     http://127.0.0.1:{API_PORT}/docs\n"
        f"  broker       {settings.mqtt_url}  (topics {settings.topic_root}/devices/+/events)\n"
        f"  database     {settings.database_url}\n"
        f"  operator key {key}\n"
        f"  try: curl -H 'Authorization: Bearer {key}' "
        f"'http://127.0.0.1:{API_PORT}/v1/stats/return-rates?bucket=total'\n"
        f"publishing ~{DEMO_RATE_PER_S} events/s from {len(clients)} devices; Ctrl-C stops",
        flush=True,
    )
    try:
        while not stop.wait(1 / DEMO_RATE_PER_S):
            random.choice(clients).scan(**_event(seed))
    finally:
        for client in clients:
            client.close()
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(60)
