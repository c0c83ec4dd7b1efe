"""Publishes messages on devices' behalf (the HTTP bridge, dead-letter replay) at QoS 1,
returning only once the broker has acknowledged them."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas.mqtt_connection import configure_client
from schemas.settings import MqttEndpoint

# Unacknowledged publishes in flight at once.
MAX_INFLIGHT = 1000


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
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        configure_client(client, endpoint)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        else:
            self._refused = None
            self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self._connected.clear()

    def state(self, wait_s: float = 0.0) -> tuple[bool, str | None]:
        """(logged in, why the broker refused the login: None when it did not, or when
        it cannot be reached), after waiting up to `wait_s` for a connection in progress."""
        connected = self._connected.wait(wait_s) if wait_s > 0 else self._connected.is_set()
        return connected, None if connected else self._refused

    def start(self) -> None:
        """Connect in the background; publishing waits for the connection."""
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK; PublishError otherwise."""
        if not self._connected.wait(timeout_s):
            raise PublishError(f"broker {self._endpoint.host}:{self._endpoint.port} unreachable")
        info = self._client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:  # paho: queue full / connection lost
            raise PublishError(f"message not sent: {exc}") from exc
        if not info.is_published():
            raise PublishError(f"no PUBACK from the broker within {timeout_s:.0f} s")
