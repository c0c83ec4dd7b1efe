"""paho's MQTT client with buffered, burst reads for a high-rate subscriber."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

# Bytes asked of the socket per read: many small MQTT packets per system call.
RECV_BUFFER_BYTES = 256 * 1024


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
