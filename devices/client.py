"""The device-side client an RVM, sorter, filler, washer or till embeds: `scan()` records
an event on disk at once; a background thread sends queued events to the broker in
batches (QoS 1, MQTT 5) and forgets them only once the ingest's receipt says it stored
(or dead-lettered) them, sending again what gets no receipt.

    client = DeviceClient("rvm-oslo-1", "mqtts://rvm-oslo-1:secret@broker:8883",
                          queue_path=Path("/var/lib/rvm/outbox.sqlite"))
    client.start()
    client.scan("returned", code="https://id.example.com/01/07038010001239/21/A1B2")
    client.close()

See devices/README.md for the guarantees and the full example."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError
from uuid6 import uuid7

from devices.outbox import DEFAULT_MAX_BYTES, Outbox, Queued, QueueFull
from schemas.dead_letters import DeadLetterReason
from schemas.events import MAX_BATCH_EVENTS, MAX_PAYLOAD_BYTES
from schemas.messages import Rejected, parse_event
from schemas.mqtt_connection import configure_client
from schemas.receipts import DeadLettered, Receipt, receipts_topic
from schemas.settings import MqttEndpoint, parse_mqtt_url

__all__ = ["DeadLettered", "DeviceClient", "InvalidEvent", "QueueFull", "TlsFiles"]

log = logging.getLogger("looptrack.device")

# Batches published but not yet acknowledged; more wait in the queue (on disk), so a long
# outage costs disk, not memory.
MAX_INFLIGHT_BATCHES = 16
# Room left under the broker's payload limit for the {"events": [...]} wrapper (bytes).
PAYLOAD_BUDGET = MAX_PAYLOAD_BYTES - 1024
# After the broker refused a batch (e.g. not authorised, or no subscriber: 0x10), wait this
# long before resending (s).
RETRY_REFUSED_S = 5.0
# PUBACK reason 0x10, "No matching subscribers": the broker kept nothing (MQTT 5 §3.4.2.1).
NO_MATCHING_SUBSCRIBERS = 0x10
# Default wait for a receipt before a sent event goes again (s); it doubles at every
# resend of the same events, up to RECEIPT_BACKOFF_MAX_FACTOR times.
RECEIPT_TIMEOUT_S = 30.0
RECEIPT_BACKOFF_MAX_FACTOR = 8
# Broker reconnect back-off bounds (s).
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
KEEPALIVE_S = 30


class InvalidEvent(ValueError):
    """The event breaks a rule of the wire format (SPEC §5); it was not queued.

    `reason` is the dead-letter reason the ingest would have given it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TlsFiles:
    """Files for `mqtts://`: the CA that signed the broker's certificate (None: the
    system's trust store), and an optional client certificate and its key. Given to
    `DeviceClient`, they replace any files the endpoint carries."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def _with_overrides(
    endpoint: MqttEndpoint, username: str | None, password: str | None, tls: TlsFiles | None
) -> MqttEndpoint:
    """The endpoint with DeviceClient's own credentials and TLS files, where given; a
    ValueError when the files cannot be used (missing, a certificate without its key)."""
    fields = endpoint.model_dump()
    if username:
        fields["username"] = username
    if password:
        fields["password"] = password
    if tls is not None:
        fields.update(ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file)
    return MqttEndpoint.model_validate(fields)


@dataclass(frozen=True)
class _Batch:
    """Events seq first..last, in one message; `attempt` 0 on their first sending."""

    first: int
    last: int
    attempt: int = 0


@dataclass(frozen=True)
class _Awaiting:
    """A batch the broker accepted, waiting for its receipt until `due` (monotonic s)."""

    batch: _Batch
    due: float


class DeviceClient:
    """One device's link to the broker, with a store-and-forward queue.

    Guarantees: an event is queued (on disk when `queue_path` is given) before `scan()`
    returns; queued events are sent in `seq` order; an event is removed from the queue
    only once the ingest's receipt names it (stored, duplicate or dead-lettered), so a
    broker that loses acknowledged messages (a restart, a crash between snapshots), a
    lost connection or a restart of the device process loses nothing: what has no
    receipt after `receipt_timeout_s` is sent again, with back-off. The ingest removes
    repeats by `event_id`. With `receipts=False` an event is removed at the broker's
    PUBACK instead (for an ingest that sends no receipts): then a broker failure can lose
    what it acknowledged.

    When the queue reaches `max_queue_bytes`, `scan()` raises `QueueFull` and records
    nothing: the device should stop taking containers until the broker is reachable.
    """

    def __init__(
        self,
        device_id: str,
        broker: str | MqttEndpoint,
        *,
        topic_root: str = "looptrack/v1",
        queue_path: Path | None = None,
        batch_size: int = 100,
        batch_interval_s: float = 0.5,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        durable: bool = True,
        username: str | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
        client_id: str | None = None,
        receipts: bool = True,
        receipt_timeout_s: float = RECEIPT_TIMEOUT_S,
        on_dead_letter: Callable[[DeadLettered], None] | None = None,
    ) -> None:
        """`broker`: `mqtt://[user:password@]host[:port]` or `mqtts://…` for TLS.
        `queue_path`: the SQLite file of the store-and-forward queue (None: in memory).
        `batch_size`: most events in one message (1 to 1000); `batch_interval_s`: how long
        a partial batch may wait before it is sent (s). `durable`: each scan is on
        disk before `scan()` returns, power cuts included (an fsync per scan); False
        survives a crash of the process only. `receipts`: keep each event until the
        ingest's receipt (False: until the broker's PUBACK). `receipt_timeout_s`: wait for
        a receipt before sending again (s). `on_dead_letter`: called (from the client's
        sender thread) with each event the ingest dead-lettered; it is logged either way."""
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_EVENTS}")
        if batch_interval_s < 0:
            raise ValueError("batch_interval_s must not be negative")
        if receipt_timeout_s <= 0:
            raise ValueError("receipt_timeout_s must be positive")
        endpoint = _with_overrides(
            parse_mqtt_url(broker) if isinstance(broker, str) else broker,
            username,
            password,
            tls,
        )
        self.device_id = device_id
        self.events_topic = f"{topic_root}/devices/{device_id}/events"
        self.status_topic = f"{topic_root}/devices/{device_id}/status"
        self.receipts_topic = receipts_topic(topic_root, device_id)
        self.receipts = receipts
        self.receipt_timeout_s = receipt_timeout_s
        self._on_dead_letter = on_dead_letter
        self.batch_size = batch_size
        self.batch_interval_s = batch_interval_s
        self._endpoint = endpoint
        self._outbox = Outbox(
            queue_path, max_bytes=max_queue_bytes, synchronous="FULL" if durable else "NORMAL"
        )

        self._cv = threading.Condition()
        # Everything below is guarded by _cv.
        self._connected = False
        self._ever_connected = threading.Event()
        self._closing = False
        self._flushing = 0
        self._last_appended = self._outbox.last_seq()
        self._pending = self._outbox.pending()
        first_waiting = self._outbox.after(0, 1)
        self._sent_through = first_waiting[0].seq - 1 if first_waiting else self._last_appended
        self._oldest_unsent_at = time.monotonic() if self._pending else None
        self._inflight: dict[int, _Batch] = {}
        # Accepted by the broker, waiting for a receipt; by first seq.
        self._awaiting: dict[int, _Awaiting] = {}
        self._retry_at = 0.0
        # PUBACKs and receipts, handed from paho's network thread to the sender thread:
        # paho calls back holding its own lock, so a callback must not wait for ours.
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._receipts: queue.SimpleQueue[Receipt] = queue.SimpleQueue()

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"device-{device_id}",
            protocol=mqtt.MQTTv5,
        )
        configure_client(client, endpoint)
        client.max_inflight_messages_set(MAX_INFLIGHT_BATCHES + 2)  # + status messages
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        self._sender = threading.Thread(
            target=self._send_loop, name=f"send-{device_id}", daemon=True
        )

    # --- public API ---------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (and reconnecting) in the background; returns at once.
        Events scanned before the broker is reachable wait in the queue."""
        self._client.connect_async(self._endpoint.host, self._endpoint.port, KEEPALIVE_S)
        self._client.loop_start()
        self._sender.start()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once the broker has accepted the connection (at least once)."""
        return self._ever_connected.wait(timeout_s)

    def scan(
        self,
        type: str,
        *,
        gtin: str | None = None,
        serial: str | None = None,
        code: str | None = None,
        qty: int = 1,
        grai: str | None = None,
        ts: datetime | None = None,
        reason: str | None = None,
        stream: str | None = None,
        weight_g: float | None = None,
        attrs: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> str:
        """Record one event and return its event_id. `ts` must be timezone-aware
        (default: now); give `gtin` (+ `serial`), a returnable asset's `grai`, or the raw
        scanned `code`. `weight_g` is a sorted event's measured weight of all `qty` (g).

        Raises InvalidEvent (nothing queued) when the event breaks SPEC §5, and
        QueueFull when the queue is at its disk bound."""
        when = ts or datetime.now(UTC)
        fields: dict[str, Any] = {
            # Time-ordered (RFC 9562 version 7): see the event_id field of schemas.events.
            "event_id": event_id or str(uuid7()),
            "ts": when.isoformat(),
            "type": type,
        }
        optional = {"gtin": gtin, "serial": serial, "code": code, "grai": grai, "reason": reason}
        fields.update({k: v for k, v in optional.items() if v is not None})
        if stream is not None:
            fields["stream"] = stream
        if weight_g is not None:
            fields["weight_g"] = weight_g
        if qty != 1:
            fields["qty"] = qty
        if attrs:
            fields["attrs"] = dict(attrs)

        def build(seq: int) -> str:
            event = {**fields, "seq": seq}
            try:
                # Strict JSON, as the ingest reads it: a NaN here would dead-letter the
                # whole batch it travels in.
                body = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidEvent(DeadLetterReason.INVALID_JSON.value, f"attrs: {exc}") from None
            checked = parse_event(event, self.device_id, datetime.now(UTC))
            if isinstance(checked, Rejected):
                raise InvalidEvent(checked.reason.value, checked.detail)
            return body

        queued = self._outbox.append(build, str(fields["event_id"]))
        with self._cv:
            self._last_appended = queued.seq
            self._pending += 1
            if self._oldest_unsent_at is None:
                self._oldest_unsent_at = time.monotonic()
            self._cv.notify_all()
        return str(fields["event_id"])

    @property
    def pending(self) -> int:
        """Events recorded and not yet receipted by the ingest (without receipts: not yet
        acknowledged by the broker)."""
        with self._cv:
            return self._pending

    @property
    def last_seq(self) -> int:
        """The seq of the latest event recorded (0 before the first): seqs continue
        across restarts of the device."""
        with self._cv:
            return self._last_appended

    @property
    def connected(self) -> bool:
        with self._cv:
            return self._connected

    def flush(self, timeout_s: float = 60.0) -> None:
        """Send what is queued now and wait for the receipts (without receipts: the
        broker's acknowledgements); raises TimeoutError (events stay queued) when that takes
        longer than `timeout_s`."""
        with self._cv:
            self._flushing += 1
            self._cv.notify_all()
            try:
                if not self._cv.wait_for(lambda: self._pending == 0, timeout_s):
                    raise TimeoutError(
                        f"{self._pending} events not {self._confirmed_by} within "
                        f"{timeout_s:g} s; they stay queued"
                    )
            finally:
                self._flushing -= 1

    @property
    def _confirmed_by(self) -> str:
        return "receipted by the ingest" if self.receipts else "acknowledged by the broker"

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush (up to `timeout_s`), announce `offline` and disconnect. Events without a
        receipt by then stay in the queue for the next start."""
        try:
            if self.connected:
                self.flush(timeout_s)
        except TimeoutError as exc:
            log.warning("close device=%s: %s", self.device_id, exc)
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._sender.is_alive():
            self._sender.join()
        if self.connected:
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
            # If the connection is gone, the Last Will says offline instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(5)
        self._client.disconnect()
        self._client.loop_stop()
        self._outbox.close()

    def publish_raw(self, payload: bytes) -> mqtt.MQTTMessageInfo:
        """Send bytes as they are on the events topic, bypassing queue and validation
        (test tools use it to send malformed payloads). Not for normal events."""
        return self._client.publish(self.events_topic, payload, qos=1)

    def __enter__(self) -> DeviceClient:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # --- paho callbacks (network thread) --------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            log.error("connect refused device=%s reason=%s", self.device_id, reason_code)
            return
        if self.receipts:
            # Before any event of this connection: the broker handles our packets in order.
            client.subscribe(self.receipts_topic, qos=1)
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        with self._cv:
            self._connected = True
            self._cv.notify_all()
        self._ever_connected.set()
        log.info("connected device=%s pending=%d", self.device_id, self._pending)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        with self._cv:
            self._connected = False
        log.info("disconnected device=%s reason=%s", self.device_id, reason_code)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        # 0x10: accepted, but no subscriber got it, so nothing will store it.
        delivered = not reason_code.is_failure and reason_code.value != NO_MATCHING_SUBSCRIBERS
        self._acks.put((mid, delivered, str(reason_code)))
        with self._cv:
            self._cv.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic != self.receipts_topic:
            return
        try:
            receipt = Receipt.model_validate_json(message.payload)
        except ValidationError as exc:
            log.warning("ignoring unreadable receipt device=%s: %s", self.device_id, exc)
            return
        self._receipts.put(receipt)
        with self._cv:
            self._cv.notify_all()

    # --- sender thread --------------------------------------------------------------

    def _due(self) -> bool:
        """Whether a batch should go out now (call with _cv held)."""
        unsent = self._last_appended - self._sent_through
        if unsent <= 0 or not self._connected or len(self._inflight) >= MAX_INFLIGHT_BATCHES:
            return False
        if time.monotonic() < self._retry_at:
            return False
        if unsent >= self.batch_size or self._flushing or self._closing:
            return True
        oldest = self._oldest_unsent_at
        return oldest is not None and time.monotonic() - oldest >= self.batch_interval_s

    def _send_loop(self) -> None:
        while True:
            self._take_acks()
            self._take_receipts()
            self._resend_unreceipted()
            with self._cv:
                if self._closing and (not self._connected or not self._due()):
                    return
                if not self._due():
                    self._cv.wait(self._next_wake())
                    continue
                after = self._sent_through
            batch = self._outbox.after(after, self.batch_size)
            payload, last = self._payload(batch)
            # Never call paho holding _cv: paho's thread holds its lock calling on_publish.
            info = self._client.publish(self.events_topic, payload, qos=1)
            with self._cv:
                self._inflight[info.mid] = _Batch(batch[0].seq, last)
                self._sent_through = last
                self._oldest_unsent_at = time.monotonic() if self._last_appended > last else None

    def _next_wake(self) -> float:
        """Seconds until a partial batch or a refused batch becomes due (with _cv held)."""
        now = time.monotonic()
        waits = [1.0]  # connects and acknowledgements notify; this is a safety net
        if self._connected and len(self._inflight) < MAX_INFLIGHT_BATCHES:
            if self._awaiting:
                waits.append(min(a.due for a in self._awaiting.values()) - now)
            if self._retry_at > now:
                waits.append(self._retry_at - now)
            elif self._oldest_unsent_at is not None:
                waits.append(self._oldest_unsent_at + self.batch_interval_s - now)
        return max(0.001, min(waits))

    @staticmethod
    def _payload(batch: list[Queued]) -> tuple[bytes, int]:
        """The message for the longest prefix of `batch` under the payload budget, and the
        seq of its last event."""
        if len(batch) == 1:
            return batch[0].body.encode(), batch[0].seq
        bodies: list[bytes] = []
        size = 0
        for item in batch:
            body = item.body.encode()
            if bodies and size + len(body) + 1 > PAYLOAD_BUDGET:
                break
            bodies.append(body)
            size += len(body) + 1
        last = batch[len(bodies) - 1].seq
        return b'{"events":[' + b",".join(bodies) + b"]}", last

    def _take_acks(self) -> None:
        while True:
            try:
                mid, accepted, reason = self._acks.get_nowait()
            except queue.Empty:
                return
            with self._cv:
                batch = self._inflight.pop(mid, None)
            if batch is None:
                continue  # a status message
            if accepted and self.receipts:
                factor = min(2**batch.attempt, RECEIPT_BACKOFF_MAX_FACTOR)
                due = time.monotonic() + self.receipt_timeout_s * factor
                with self._cv:
                    self._awaiting[batch.first] = _Awaiting(batch, due)
            elif accepted:
                removed = self._outbox.remove_through(batch.first, batch.last)
                with self._cv:
                    self._pending -= removed
                    self._cv.notify_all()
            else:
                log.error(
                    "broker refused events device=%s seq=%d..%d reason=%s; retrying in %g s",
                    self.device_id,
                    batch.first,
                    batch.last,
                    reason,
                    RETRY_REFUSED_S,
                )
                with self._cv:
                    self._sent_through = min(self._sent_through, batch.first - 1)
                    self._retry_at = time.monotonic() + RETRY_REFUSED_S

    def _take_receipts(self) -> None:
        """Forget the events the ingest's receipts name; report the dead-lettered ones."""
        while True:
            try:
                receipt = self._receipts.get_nowait()
            except queue.Empty:
                return
            removed = self._outbox.remove_events([*receipt.stored, *receipt.duplicate])
            for refused in receipt.dead_lettered:
                # One by one so an event is reported once, though receipts may repeat.
                if self._outbox.remove_events([refused.event_id]):
                    removed += 1
                    log.error(
                        "ingest dead-lettered event device=%s event_id=%s reason=%s: %s",
                        self.device_id,
                        refused.event_id,
                        refused.reason,
                        refused.detail,
                    )
                    if self._on_dead_letter is not None:
                        self._on_dead_letter(refused)
            if removed:
                with self._cv:
                    self._pending -= removed
                    self._cv.notify_all()

    def _resend_unreceipted(self) -> None:
        """Send again the events of an accepted batch whose receipt is overdue."""
        while True:
            now = time.monotonic()
            with self._cv:
                if not self._connected or len(self._inflight) >= MAX_INFLIGHT_BATCHES:
                    return
                due = [a for a in self._awaiting.values() if a.due <= now]
                if not due:
                    return
                overdue = min(due, key=lambda a: a.due).batch
                del self._awaiting[overdue.first]
            waiting = self._outbox.between(overdue.first, overdue.last)
            if not waiting:
                continue  # every event of it was receipted meanwhile
            payload, last = self._payload(waiting)
            log.warning(
                "no receipt for events device=%s seq=%d..%d; sending %d again (attempt %d)",
                self.device_id,
                overdue.first,
                overdue.last,
                len(waiting),
                overdue.attempt + 1,
            )
            info = self._client.publish(self.events_topic, payload, qos=1)
            with self._cv:
                self._inflight[info.mid] = _Batch(waiting[0].seq, last, overdue.attempt + 1)
                if last < overdue.last:  # did not fit in one message: the rest next round
                    rest = _Batch(last + 1, overdue.last, overdue.attempt)
                    self._awaiting[rest.first] = _Awaiting(rest, now)
