"""Device-side MQTT client: publishes scan events with QoS 1 and keeps a retained
online/offline status (offline as Last Will), the way an RVM or sorter should."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas.settings import MqttEndpoint

# Unacknowledged QoS 1 publishes a device keeps in flight; the broker's own Receive
# Maximum caps it further.
MAX_INFLIGHT = 1000
CONNECT_TIMEOUT_S = 10.0


class DeviceClient:
    """One device's connection to the broker."""

    def __init__(
        self,
        device_id: str,
        endpoint: MqttEndpoint,
        topic_root: str,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.device_id = device_id
        self.events_topic = f"{topic_root}/devices/{device_id}/events"
        self.status_topic = f"{topic_root}/devices/{device_id}/status"
        self._endpoint = endpoint
        self._connected = threading.Event()
        self._unacked = 0
        self._lock = threading.Condition()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"device-{device_id}", protocol=mqtt.MQTTv5
        )
        user = username or endpoint.username
        if user:
            client.username_pw_set(user, password or endpoint.password)
        if endpoint.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)  # unbounded local queue: never drop before sending
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self._client = client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if not reason_code.is_failure:
            client.publish(self.status_topic, b"online", qos=1, retain=True)
            self._connected.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            self._unacked -= 1
            self._lock.notify_all()

    def connect(self) -> None:
        """Connect and announce `online`; raises TimeoutError if the broker does not answer."""
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self._client.loop_stop()
            raise TimeoutError(f"no CONNACK from {self._endpoint.host}:{self._endpoint.port}")

    def publish_raw(self, payload: bytes) -> None:
        """Queue one message on the events topic (QoS 1); see `flush()`."""
        with self._lock:
            self._unacked += 1
        self._client.publish(self.events_topic, payload, qos=1)

    def publish_events(self, events: Sequence[dict[str, Any]]) -> None:
        """Queue one event as a single payload, or several as {"events": [...]}."""
        body: Any = events[0] if len(events) == 1 else {"events": list(events)}
        self.publish_raw(json.dumps(body, separators=(",", ":")).encode())

    def flush(self, timeout_s: float = 120.0) -> None:
        """Wait until the broker has acknowledged every queued message."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._unacked <= 0, timeout_s):
                raise TimeoutError(f"{self._unacked} messages not acknowledged by the broker")

    def close(self, *, announce_offline: bool = True) -> None:
        """Flush, publish `offline` and disconnect cleanly."""
        self.flush()
        if announce_offline:
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
            info.wait_for_publish(CONNECT_TIMEOUT_S)
        self._client.disconnect()
        self._client.loop_stop()
