"""paho's MQTT client with buffered, burst reads for a high-rate subscriber."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

# Bytes asked of the socket per read: many small MQTT packets per system call.
RECV_BUFFER_BYTES = 256 * 1024

# A PUBACK with reason code 0 (success) and no properties, which MQTT 5 lets a sender
# shorten to the packet identifier: fixed header, remaining length 2, the identifier.
_PUBACK_HEADER = bytes((0x40, 2))

# What a received QoS 1 PUBLISH is handed over as: (topic, packet id, retain, payload).
PublishHandler = Callable[[str, int, bool, bytes], None]


class BurstReadingClient(mqtt.Client):
    """paho 2.x reads a packet in three or four `recv` calls (fixed header, length, rest)
    and one packet per `select()` when the client has nothing of its own in flight, as a
    subscriber never has. Every `recv` also hands the GIL to the parsing and writing
    threads and waits to get it back. At thousands of messages per second that, not the
    work, was the limit. This client reads the socket in large chunks, serves paho's
    small reads from memory, and reads on until both buffer and socket are empty.

    Relies on paho's `_sock_recv`, `_sock_close`, `_packet_read` and `_loop_rc_handle`
    (unchanged through 2.x; the dependency is pinned below 3 in pyproject.toml)."""

    _rbuf: bytearray
    # Set to take QoS 1 PUBLISH packets straight from the wire (see _handle_publish).
    on_publish_received: PublishHandler | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        buffer = self.__dict__.setdefault("_rbuf", bytearray())
        if not buffer:
            chunk = super()._sock_recv(RECV_BUFFER_BYTES)  # BlockingIOError when empty
            if not chunk:
                return b""  # connection closed by the broker
            buffer += chunk
        taken = bytes(buffer[:bufsize])
        del buffer[:bufsize]
        return taken

    def _sock_close(self) -> None:
        # Bytes of a closed connection must never be read as the start of the next one.
        self.__dict__.get("_rbuf", bytearray()).clear()
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # Read until the socket would block: what is buffered has no select() to wake it.
        # The broker sends at most Receive Maximum unacknowledged messages, which bounds
        # how long this runs.
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages (PUBACK), in the given order, as one write. paho's
        `ack` queues each PUBACK as a packet of its own: a wake-up of the network thread
        and a `send` per message, 500 of each per batch at one event per message."""
        packet = b"".join(_PUBACK_HEADER + mid.to_bytes(2, "big") for mid in mids)
        if packet:
            self._packet_queue(mqtt.PUBACK, packet, 0, 1)

    def publish(self, *args: Any, **kwargs: Any) -> mqtt.MQTTMessageInfo:
        with self._out_message_mutex:  # re-entrant: paho takes it again inside
            info = super().publish(*args, **kwargs)
            message = self._out_messages.get(info.mid)
            if message is not None and message.state == mqtt.mqtt_ms_queued:
                self._queued().append(info.mid)  # over the in-flight limit: waits
            return info

    def _messages_reconnect_reset_out(self) -> None:
        super()._messages_reconnect_reset_out()  # re-queues what was in flight
        queued = self._queued()
        queued.clear()
        queued.extend(
            mid for mid, m in self._out_messages.items() if m.state == mqtt.mqtt_ms_queued
        )

    def _queued(self) -> deque[int]:
        return self.__dict__.setdefault("_queued_mids", deque())  # type: ignore[no-any-return]

    def _update_inflight(self) -> MQTTErrorCode:
        """Sends queued messages while in-flight slots are free; paho calls it at every
        PUBACK of a message of ours (a receipt). paho's own walks every outgoing message
        looking for queued ones: once receipts reach the in-flight limit (their PUBACKs
        wait behind the broker's backlog of events to us), that walk of 1,000 messages
        per PUBACK took 15 % of the worker's time at one event per message. This takes
        them from a queue of their ids, in the same order. Called with the outgoing
        messages' lock held."""
        queued = self._queued()
        while queued and self._inflight_messages < self._max_inflight_messages:
            message = self._out_messages.get(queued.popleft())
            if message is None or message.state != mqtt.mqtt_ms_queued:
                continue  # sent meanwhile (on reconnecting) or gone
            self._inflight_messages += 1
            message.state = (
                mqtt.mqtt_ms_wait_for_puback if message.qos == 1 else mqtt.mqtt_ms_wait_for_pubrec
            )
            rc = self._send_publish(
                message.mid,
                message.topic.encode("utf-8"),
                message.payload,
                message.qos,
                message.retain,
                message.dup,
                properties=message.properties,
            )
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_publish(self) -> MQTTErrorCode:
        """A QoS 1 PUBLISH (every event message) goes to `on_publish_received` without
        paho's per-message objects: its MQTT 5 properties are skipped unread, where paho
        builds a Properties object, an MQTTMessage and walks its callback matcher for each
        one (a third of the network thread's time at one event per message). Anything
        else, and anything unusual (another QoS, an empty topic or one that is not UTF-8,
        a malformed length), takes paho's own path, which also reports errors."""
        handler = self.on_publish_received
        header = self._in_packet["command"]
        if handler is None or (header & 0x06) >> 1 != 1 or not self._manual_ack:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        topic_end = 2 + int.from_bytes(packet[0:2], "big")
        props_at = topic_end + 2  # after the packet identifier
        props_length, payload_at = _varint(packet, props_at)
        if topic_end == 2 or props_length is None or payload_at + props_length > len(packet):
            return super()._handle_publish()
        try:
            topic = packet[2:topic_end].decode("utf-8")
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = int.from_bytes(packet[topic_end:props_at], "big")
        handler(topic, mid, bool(header & 0x01), bytes(packet[payload_at + props_length :]))
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def _varint(data: bytes | bytearray, at: int) -> tuple[int | None, int]:
    """The MQTT variable byte integer at `at` and the offset after it; None when it runs
    past the data or over 4 bytes."""
    value = 0
    for shift in range(0, 28, 7):
        if at >= len(data):
            return None, at
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
    return None, at
