"""Publishes messages on devices' behalf at QoS 1: the API's HTTP bridge and dead-letter
replay and `looptrack dlq replay` one message at a time, each returning once the broker
has acknowledged it (`publish`); `python -m devices.replay` pipelined (`send`, then
`flush`)."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas.mqtt_connection import configure_client
from schemas.settings import MqttEndpoint

# Unacknowledged publishes in flight at once.
MAX_INFLIGHT = 1000
# Messages handed to paho and not yet acknowledged. paho keys them by packet id, which
# wraps at 65,535: a message queued beyond that would silently replace an earlier one with
# the same id (and it would never be sent). Found by a 120,000-message flood that stalled
# at 66,114.
MAX_OUTSTANDING = 20_000
# How long connect() waits for the broker's CONNACK (s).
CONNECT_TIMEOUT_S = 10.0


class PublishError(RuntimeError):
    """The broker did not acknowledge a message in time (it may still arrive later;
    event_id deduplication makes a retry safe)."""


class Publisher:
    """One MQTT 5 connection, thread-safe, reconnecting by itself."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str) -> None:
        self._endpoint = endpoint
        self._connected = threading.Event()
        # Why the broker refused the latest login (CONNACK's reason), while it does.
        self._refused: str | None = None
        # Messages handed to paho and not yet acknowledged, and their change.
        self._unacked = 0
        self._acked = threading.Condition()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        configure_client(client, endpoint)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        else:
            self._refused = None
            self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._acked:
            self._unacked -= 1
            self._acked.notify_all()

    def state(self, wait_s: float = 0.0) -> tuple[bool, str | None]:
        """(logged in, why the broker refused the login: None when it did not, or when
        it cannot be reached), after waiting up to `wait_s` for a connection in progress."""
        connected = self._connected.wait(wait_s) if wait_s > 0 else self._connected.is_set()
        return connected, None if connected else self._refused

    def start(self) -> None:
        """Connect in the background; publishing waits for the connection."""
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect now (an unreachable broker raises at once); PublishError without the
        broker's CONNACK within `timeout_s`."""
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            raise PublishError(f"no CONNACK from {self._endpoint.host}:{self._endpoint.port}")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(
        self, topic: str, payload: bytes, timeout_s: float = 10.0, *, retain: bool = False
    ) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK; PublishError otherwise."""
        if not self._connected.wait(timeout_s):
            raise PublishError(f"broker {self._endpoint.host}:{self._endpoint.port} unreachable")
        with self._acked:
            self._unacked += 1
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:  # paho: queue full / connection lost
            raise PublishError(f"message not sent: {exc}") from exc
        if not info.is_published():
            raise PublishError(f"no PUBACK from the broker within {timeout_s:.0f} s")

    def send(self, topic: str, payload: bytes, timeout_s: float) -> None:
        """Publish at QoS 1 without waiting for the PUBACK (flush waits for all of them);
        waits up to `timeout_s` while MAX_OUTSTANDING are unacknowledged, then
        PublishError."""
        with self._acked:
            if not self._acked.wait_for(lambda: self._unacked < MAX_OUTSTANDING, timeout_s):
                raise PublishError(f"{self._unacked} messages not acknowledged by the broker")
            self._unacked += 1
        self._client.publish(topic, payload, qos=1)

    def flush(self, timeout_s: float) -> None:
        """Wait until the broker has acknowledged every message; PublishError after
        `timeout_s`."""
        with self._acked:
            if not self._acked.wait_for(lambda: self._unacked <= 0, timeout_s):
                raise PublishError(f"{self._unacked} messages not acknowledged by the broker")
