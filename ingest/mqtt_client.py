"""paho's MQTT client, reading every packet already waiting per wake-up."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

# Packets read per wake-up of the network thread, at most; bounds how long the thread
# goes without looking at its outgoing queue (PUBACKs).
READ_BURST = 1000


class BurstReadingClient(mqtt.Client):
    """paho 2.x reads a single packet per select() call when the client has nothing of
    its own in flight, which is always the case for a subscriber: at thousands of
    messages per second the network thread then spends most of its time in select().
    This reads on until the socket would block. Relies on paho's `_packet_read` and
    `_loop_rc_handle` (stable through 2.x; pinned in pyproject.toml)."""

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _ in range(max(max_packets, READ_BURST)):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS
