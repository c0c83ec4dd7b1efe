"""Event dicts and payloads for the schema tests, written without the code under test."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
"""The receiver's clock in these tests."""
DEVICE = "rvm-0042"
GTIN13 = "4006381333931"
GTIN14 = "04006381333931"


def event(**fields: Any) -> dict[str, Any]:
    """A valid `returned` event at NOW minus one minute, with `fields` replaced or added."""
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": "2025-06-01T11:59:00Z",
        "type": "returned",
        "gtin": GTIN13,
    }
    base.update(fields)
    return base


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in keys}


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()
