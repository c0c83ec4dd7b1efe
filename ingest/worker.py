"""The ingest worker: MQTT 5 shared subscription → validated batches → PostgreSQL, with
PUBACK only after commit, so a crash anywhere loses nothing and stores nothing twice."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg_pool import ConnectionPool

from ingest import refusal
from ingest.batcher import BATCH_MAX_MESSAGES, IDLE_POLL_S, Received, collect_batch, drain
from ingest.directory import DeviceDirectory
from ingest.intake import Intake, take_in
from ingest.mqtt_client import BurstReadingClient
from ingest.writer import QUERIES, Outcome, prepare_connection, store_batch
from schemas.mqtt_connection import configure_client
from schemas.receipts import ReceiptBuilder, receipts_topic
from schemas.settings import Settings

log = logging.getLogger("looptrack.ingest")

# MQTT 5 Receive Maximum: messages the broker may have in flight to this worker unacked.
# Two batches' worth, so one batch is received while the previous one is committed; it is
# also what bounds the inbox, since nothing more arrives until we acknowledge.
RECEIVE_MAXIMUM = 2 * BATCH_MAX_MESSAGES
INBOX_BOUND = RECEIVE_MAXIMUM + 100
# Database retry after a failed batch: first and longest wait (s).
RETRY_BACKOFF_MIN_S = 0.2
RETRY_BACKOFF_MAX_S = 5.0
# Broker reconnect backoff (s), handled by paho.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
# Seconds between progress log lines.
STATS_LOG_INTERVAL_S = 10.0
MQTT_KEEPALIVE_S = 30
# How long a thread keeps the GIL while another waits for it (Python's default: 5 ms).
# The writer thread needs the GIL back after each database round trip; while the main
# thread parses the next batch, the default made each of a batch's ~10 round trips wait
# up to 5 ms: 500 one-event messages took 92-96 ms to store beside a parsing thread and
# 55-64 ms with 0.5 ms (33-36 ms alone). Set per process by `looptrack ingest`.
GIL_SWITCH_INTERVAL_S = 0.0005
# Allocations between young-generation garbage collections (Python's default: 700). A
# batch's thousands of objects live one batch and are freed by reference counting, yet
# each batch set off dozens of collections: 25-30 % of the time the worker held the GIL
# at 500 serialised events per message. With the objects alive at start frozen out of
# every collection (gc.freeze) and this threshold, the worker's CPU per event fell by
# about a fifth. Set per process by `looptrack ingest`.
GC_THRESHOLD = (50_000, 20, 20)
# Receipts the worker may have unacknowledged by the broker: about one per device per
# commit; above paho's default of 20 so a commit for many devices goes out at once.
RECEIPTS_INFLIGHT = 1000

# Errors after which the same batch is retried on a fresh connection.
_RETRYABLE = (
    psycopg.OperationalError,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


def _retryable(exc: psycopg.Error) -> bool:
    """An outage or a conflict with another worker, as opposed to a refused batch. (Two
    workers claiming the same event id do not conflict: the claim of ingest/queries.sql
    waits for the other's commit and skips the id.)"""
    return isinstance(exc, _RETRYABLE)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _Refused(Exception):
    """A batch failed for what it holds, not for an outage: `cause` says why."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class IngestWorker:
    """Owns the MQTT client, the inbox between the network thread and the writer, and the
    write/ack loop. `run()` returns when `stop` is set and the inbox is drained."""

    def __init__(self, settings: Settings, pool: ConnectionPool) -> None:
        self.settings = settings
        self.pool = pool
        self.inbox: queue.Queue[Received] = queue.Queue(maxsize=INBOX_BOUND)
        self.directory = DeviceDirectory(QUERIES["known_devices"])
        self.connection = 0
        self.totals = {"stored": 0, "duplicates": 0, "dead_lettered": 0, "batches": 0}
        self.drained = True
        # Monotonic deadline for writing at shutdown, set by the first failure after stop.
        self._give_up_at: float | None = None
        self._events_prefix = f"{settings.topic_root}/devices/"
        self.client = self._make_client()

    # -- MQTT side (paho's network thread) -------------------------------------------------

    def _make_client(self) -> BurstReadingClient:
        client = BurstReadingClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.ingest_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        configure_client(client, self.settings.mqtt)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_inflight_messages_set(RECEIPTS_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish_received = self._on_publish_received
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection reason=%s", reason_code)
            return
        self.connection += 1
        if not flags.session_present:
            log.warning(
                "broker has no session for client_id=%s: starting a new one",
                self.settings.ingest_client_id,
            )
        root = self.settings.topic_root
        # Subscribing here renews subscriptions after every reconnect.
        client.subscribe(
            [
                (
                    f"$share/{self.settings.mqtt_group}/{root}/devices/+/events",
                    # Retain handling 2: a retained event is ingested when it is published,
                    # never again from the broker's store at each (re)subscription.
                    SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND),
                ),
                (f"{root}/devices/+/status", SubscribeOptions(qos=1)),
            ]
        )
        log.info(
            "connected to broker client_id=%s session_present=%s connection=%d",
            self.settings.ingest_client_id,
            flags.session_present,
            self.connection,
        )

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: Any, _props: Any
    ) -> None:
        failed = [code for code in reason_codes if code.is_failure]
        if failed:
            log.error("broker refused subscription reasons=%s", failed)
        else:
            log.info(
                "subscribed group=%s root=%s", self.settings.mqtt_group, self.settings.topic_root
            )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        log.warning("disconnected from broker reason=%s", reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        # Never blocks in practice: the broker sends at most RECEIVE_MAXIMUM unacked
        # messages and the inbox holds more than that.
        self.inbox.put(
            Received(
                mid=message.mid,
                qos=message.qos,
                topic=message.topic,
                payload=bytes(message.payload),
                retained=message.retain,
                received_at=time.time(),
                connection=self.connection,
            )
        )

    def _on_publish_received(self, topic: str, mid: int, retained: bool, payload: bytes) -> None:
        # A QoS 1 message taken straight from the wire (BurstReadingClient): as _on_message.
        self.inbox.put(Received(mid, 1, topic, payload, retained, time.time(), self.connection))

    # -- Parsing (main thread) and writing (writer thread) ----------------------------------

    def run(self, stop: threading.Event) -> bool:
        """Ingest until `stop` is set, then drain; True when everything received was
        committed and acknowledged.

        Two stages overlap: the main thread parses batch N+1 while the writer thread
        commits batch N (psycopg releases the GIL while the database works). A hand-over
        queue of one batch keeps memory bounded and passes back-pressure to the broker.
        """
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        endpoint = self.settings.mqtt
        self.client.connect_async(
            endpoint.host,
            endpoint.port,
            keepalive=MQTT_KEEPALIVE_S,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()
        handover: queue.Queue[list[Intake] | None] = queue.Queue(maxsize=1)
        writer = threading.Thread(target=self._write_loop, args=(handover, stop), name="writer")
        writer.start()
        last_stats = time.monotonic()
        try:
            while not stop.is_set() and writer.is_alive():
                batch = collect_batch(self.inbox, stop)
                if batch:
                    self._hand_over(handover, self._take_in(batch), writer)
                if time.monotonic() - last_stats >= STATS_LOG_INTERVAL_S:
                    last_stats = time.monotonic()
                    self._log_totals()
            rest = drain(self.inbox)
            if rest:
                self._hand_over(handover, self._take_in(rest), writer)
            self._hand_over(handover, None, writer)
            writer.join()
            log.info("drained; disconnecting clean=%s", self.drained)
            self._log_totals()
            return self.drained
        finally:
            # DISCONNECT is queued behind the PUBACKs already handed to paho.
            self.client.disconnect()
            self.client.loop_stop()

    def _take_in(self, batch: list[Received]) -> list[Intake]:
        return [take_in(message, self._events_prefix) for message in batch]

    @staticmethod
    def _hand_over(
        handover: queue.Queue[list[Intake] | None],
        item: list[Intake] | None,
        writer: threading.Thread,
    ) -> None:
        """Pass a parsed batch to the writer, waiting while it is busy (back-pressure);
        gives up if the writer has died: the broker still holds that batch."""
        while writer.is_alive():
            try:
                handover.put(item, timeout=IDLE_POLL_S)
                return
            except queue.Full:
                continue

    def _write_loop(
        self, handover: queue.Queue[list[Intake] | None], stop: threading.Event
    ) -> None:
        try:
            while (intakes := handover.get()) is not None:
                if not self._commit_and_ack(intakes, stop):
                    self.drained = False
        except Exception:
            # Not a database outage (those are retried): a bug. Stop without acknowledging
            # anything more; the broker redelivers what is unacknowledged.
            log.exception("writer failed; stopping")
            self.drained = False
            stop.set()

    def _log_totals(self) -> None:
        log.info(
            "totals stored=%d duplicates=%d dead_lettered=%d batches=%d",
            self.totals["stored"],
            self.totals["duplicates"],
            self.totals["dead_lettered"],
            self.totals["batches"],
        )

    def _out_of_time(self, stop: threading.Event) -> bool:
        """Whether shutdown has waited LOOPTRACK_INGEST_DRAIN_TIMEOUT_S for the database
        since its first failure after `stop`: one deadline for every batch still to write,
        not one each, so a stop ends in bounded time."""
        if not stop.is_set():
            return False
        now = time.monotonic()
        if self._give_up_at is None:
            self._give_up_at = now + self.settings.ingest_drain_timeout_s
        return now > self._give_up_at

    def _commit_and_ack(self, intakes: list[Intake], stop: threading.Event) -> bool:
        """Write the batch, then acknowledge it. A batch refused for its content is
        written in parts until what fails is dead-lettered (_isolate); False only when
        shutdown gave up on the database (nothing more acknowledged; the broker keeps it)."""
        try:
            outcome = self._commit(intakes, stop)
        except _Refused as refused:
            return self._isolate(intakes, refused.cause, stop)
        if outcome is None:
            return False
        self._ack([intake.message for intake in intakes])
        self._send_receipts([outcome])
        return True

    def _commit(self, intakes: list[Intake], stop: threading.Event) -> Outcome | None:
        """Write and commit the batch, retrying through database outages. Raises _Refused
        when the content fails (the database refused it, or the writer raised on it). Once
        `stop` is set, returns None when the drain timeout has passed (_out_of_time)."""
        started = time.monotonic()
        backoff = RETRY_BACKOFF_MIN_S
        while True:
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                # Shutdown already waited out the database for an earlier batch.
                log.error(
                    "giving up on %d unacknowledged messages at shutdown: the database "
                    "is still unreachable (the broker will redeliver them)",
                    len(intakes),
                )
                return None
            try:
                with self.pool.connection() as conn:
                    outcome = store_batch(
                        conn,
                        self.directory,
                        intakes,
                        self.settings.ingest_client_id,
                        with_receipts=self.settings.ingest_receipts,
                    )
                break  # committed on leaving the block
            except psycopg.Error as exc:
                if not _retryable(exc):
                    raise _Refused(exc) from exc
                if self._out_of_time(stop):
                    log.error(
                        "giving up on %d unacknowledged messages at shutdown: %s "
                        "(the broker will redeliver them)",
                        len(intakes),
                        exc,
                    )
                    return None
                log.warning(
                    "batch not stored, retrying in %.1fs messages=%d error=%s",
                    backoff,
                    len(intakes),
                    _first_line(exc),
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)
            except Exception as exc:
                # The boundary where no payload may stop ingest. Not an outage: the writer
                # failed on what this batch holds (a bug that a device's input reached).
                # Logged with the traceback, then isolated.
                log.exception("writer failed on a batch of %d messages", len(intakes))
                raise _Refused(exc) from exc
        self._count(outcome, len(intakes), started)
        return outcome

    def _isolate(self, intakes: list[Intake], cause: Exception, stop: threading.Event) -> bool:
        """The batch was refused for its content: write its messages one by one, and of
        the one refused its events one by one, dead-lettering exactly what fails (with
        its index in the payload) rather than stall the stream on it."""
        if len(intakes) > 1:
            log.error(
                "batch refused, storing its %d messages one by one: %s",
                len(intakes),
                _first_line(cause),
            )
            return all([self._commit_and_ack([intake], stop) for intake in intakes])
        intake = intakes[0]
        parts = refusal.split(intake)
        outcomes = []
        for part in parts:
            # A message that cannot be split is known to fail: straight to its dead letter.
            refused = cause if len(parts) == 1 else None
            outcome = self._commit_or_dead_letter(part, refused, stop)
            if outcome is None:
                return False
            outcomes.append(outcome)
        self._ack([intake.message])
        self._send_receipts(outcomes)
        return True

    def _commit_or_dead_letter(
        self, part: Intake, cause: Exception | None, stop: threading.Event
    ) -> Outcome | None:
        """Commit `part` (unless `cause` already says it fails), else its dead letter, else
        a bare dead letter of the whole message. If the database refuses even that, stop:
        the broker keeps the message, and the error is not one a device can cause."""
        if cause is None:
            try:
                return self._commit([part], stop)
            except _Refused as refused:
                cause = refused.cause
        for _ in range(2):
            log.error(
                "message refused, dead-lettered topic=%s device=%s error=%s",
                part.message.topic,
                part.device_id,
                _first_line(cause),
            )
            part = refusal.dead_letter(part, cause)
            try:
                return self._commit([part], stop)
            except _Refused as refused:
                cause = refused.cause
        raise cause

    def _send_receipts(self, outcomes: list[Outcome]) -> None:
        """Tell each device what became of its events (QoS 1). Sent after the
        acknowledgement: a receipt lost to a crash only makes the device resend, which
        the event ids deduplicate."""
        merged: dict[str, ReceiptBuilder] = {}
        for outcome in outcomes:
            for device_id, receipt in outcome.receipts.items():
                merged.setdefault(device_id, ReceiptBuilder()).merge(receipt)
        root = self.settings.topic_root
        for device_id, receipt in merged.items():
            for payload in receipt.payloads():
                self.client.publish(receipts_topic(root, device_id), payload, qos=1)

    def _ack(self, messages: list[Received]) -> None:
        current = self.connection
        # A message of an earlier connection is redelivered on this one with its own id;
        # acknowledging the old id could acknowledge a different message. QoS 1 (all the
        # subscriptions ask for) in one write, in the order received.
        self.client.ack_many(m.mid for m in messages if m.qos == 1 and m.connection == current)
        for message in messages:
            if message.qos == 2 and message.connection == current:
                self.client.ack(message.mid, message.qos)

    def _count(self, outcome: Outcome, messages: int, started: float) -> None:
        self.totals["stored"] += outcome.stored
        self.totals["duplicates"] += outcome.duplicates
        self.totals["dead_lettered"] += outcome.dead_lettered
        self.totals["batches"] += 1
        log.debug(
            "batch committed messages=%d stored=%d duplicates=%d dead_lettered=%d duration_ms=%.1f",
            messages,
            outcome.stored,
            outcome.duplicates,
            outcome.dead_lettered,
            (time.monotonic() - started) * 1000,
        )


def open_pool(settings: Settings) -> ConnectionPool:
    """The worker's connection pool: one writer connection plus one spare."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=2,
        open=False,
        configure=prepare_connection,
        # No check on checkout: a broken connection fails its batch, which is retried,
        # and the pool replaces it. A check would cost a round trip per batch.
        # A batch waits this long for a connection before it is retried (s).
        timeout=5.0,
        name="ingest",
    )
    pool.open(wait=False)
    return pool
