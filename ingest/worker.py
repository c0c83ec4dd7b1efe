"""The ingest worker: MQTT 5 shared subscription → validated batches → PostgreSQL, with
PUBACK only after commit, so a crash anywhere loses nothing and stores nothing twice."""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg_pool import ConnectionPool

from ingest.batcher import BATCH_MAX_MESSAGES, Received, collect_batch, drain
from ingest.directory import DeviceDirectory
from ingest.writer import (
    QUERIES,
    Batch,
    DeadLetter,
    Outcome,
    StagedEvent,
    StatusUpdate,
    prepare_connection,
    write_batch,
)
from schemas.dead_letters import DeadLetterReason
from schemas.messages import parse_message
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
# On SIGTERM, how long to keep retrying the last batch against a down database (s)
# before exiting without acknowledging it (the broker redelivers it later).
DRAIN_TIMEOUT_S = 30.0
# Seconds between progress log lines.
STATS_LOG_INTERVAL_S = 10.0
MQTT_KEEPALIVE_S = 30

# Errors after which the same batch is retried on a fresh connection.
_RETRYABLE = (
    psycopg.OperationalError,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


class IngestWorker:
    """Owns the MQTT client, the inbox between the network thread and the writer, and the
    write/ack loop. `run()` returns when `stop` is set and the inbox is drained."""

    def __init__(self, settings: Settings, pool: ConnectionPool) -> None:
        self.settings = settings
        self.pool = pool
        self.inbox: queue.Queue[Received] = queue.Queue(maxsize=INBOX_BOUND)
        self.directory = DeviceDirectory(QUERIES["known_devices"])
        self.connection = 0
        self.connected = threading.Event()
        self.totals = {"stored": 0, "duplicates": 0, "dead_lettered": 0, "batches": 0}
        self._events_prefix = f"{settings.topic_root}/devices/"
        self.client = self._make_client()

    # -- MQTT side (paho's network thread) -------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.ingest_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        endpoint = self.settings.mqtt
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
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
                    SubscribeOptions(qos=1),
                ),
                (f"{root}/devices/+/status", SubscribeOptions(qos=1)),
            ]
        )
        self.connected.set()
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
        self.connected.clear()
        log.warning("disconnected from broker reason=%s (paho reconnects)", reason_code)

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

    # -- Writer side (main thread) ---------------------------------------------------------

    def run(self, stop: threading.Event) -> bool:
        """Ingest until `stop` is set, then drain; True when everything received was
        committed and acknowledged."""
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
        last_stats = time.monotonic()
        try:
            while not stop.is_set():
                batch = collect_batch(self.inbox, stop)
                if batch:
                    self._commit_and_ack(batch, stop=None)
                if time.monotonic() - last_stats >= STATS_LOG_INTERVAL_S:
                    last_stats = time.monotonic()
                    self._log_totals()
            drained = self._commit_and_ack(drain(self.inbox), stop=stop)
            log.info("drained; disconnecting clean=%s", drained)
            self._log_totals()
            return drained
        finally:
            # DISCONNECT is queued behind the PUBACKs already handed to paho.
            self.client.disconnect()
            self.client.loop_stop()

    def _log_totals(self) -> None:
        log.info(
            "totals stored=%d duplicates=%d dead_lettered=%d batches=%d",
            self.totals["stored"],
            self.totals["duplicates"],
            self.totals["dead_lettered"],
            self.totals["batches"],
        )

    def _commit_and_ack(self, messages: list[Received], stop: threading.Event | None) -> bool:
        """Write the batch, retrying through database outages, then acknowledge it. With
        `stop` given (draining), gives up after DRAIN_TIMEOUT_S and acknowledges nothing."""
        if not messages:
            return True
        started = time.monotonic()
        backoff = RETRY_BACKOFF_MIN_S
        while True:
            try:
                with self.pool.connection() as conn:
                    batch = self._prepare(conn, messages)
                    outcome = write_batch(conn, batch, self.settings.ingest_client_id)
                break  # committed on leaving the block
            except _RETRYABLE as exc:
                if stop is not None and time.monotonic() - started > DRAIN_TIMEOUT_S:
                    log.error(
                        "giving up on %d unacknowledged messages at shutdown: %s "
                        "(the broker will redeliver them)",
                        len(messages),
                        exc,
                    )
                    return False
                log.warning(
                    "batch not stored, retrying in %.1fs messages=%d error=%s",
                    backoff,
                    len(messages),
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)
        self._ack(messages)
        self._count(outcome, messages, started)
        return True

    def _ack(self, messages: list[Received]) -> None:
        current = self.connection
        for message in messages:
            # A message of an earlier connection is redelivered on this one with its own
            # id; acknowledging the old id could acknowledge a different message.
            if message.qos > 0 and message.connection == current:
                self.client.ack(message.mid, message.qos)

    def _count(self, outcome: Outcome, messages: list[Received], started: float) -> None:
        self.totals["stored"] += outcome.stored
        self.totals["duplicates"] += outcome.duplicates
        self.totals["dead_lettered"] += outcome.dead_lettered
        self.totals["batches"] += 1
        log.debug(
            "batch committed messages=%d stored=%d duplicates=%d dead_lettered=%d duration_ms=%.1f",
            len(messages),
            outcome.stored,
            outcome.duplicates,
            outcome.dead_lettered,
            (time.monotonic() - started) * 1000,
        )

    def _prepare(self, conn: psycopg.Connection, messages: list[Received]) -> Batch:
        """Sort messages into events, statuses and dead letters."""
        batch = Batch()
        routed: list[tuple[Received, str, str]] = []  # (message, device_id, kind)
        for message in messages:
            device_id, kind = self._route(message.topic)
            if device_id is None:
                # Only possible if the subscription filters change; keep it visible anyway.
                batch.dead_letters.append(
                    _dead(message, None, DeadLetterReason.SCHEMA, "unexpected topic", None)
                )
            else:
                routed.append((message, device_id, kind))
        sites = self.directory.sites(conn, {d for m, d, k in routed if k == "events"})
        for message, device_id, kind in routed:
            received_at = datetime.fromtimestamp(message.received_at, UTC)
            if kind == "status":
                self._prepare_status(batch, message, device_id, received_at)
                continue
            site_id = sites.get(device_id)
            if site_id is None:
                batch.dead_letters.append(
                    _dead(
                        message,
                        device_id,
                        DeadLetterReason.UNKNOWN_DEVICE,
                        f"device {device_id!r} is not registered",
                        None,
                    )
                )
                continue
            try:
                parsed = parse_message(message.payload, device_id, received_at)
            except Exception as exc:  # noqa: BLE001 - boundary: one poison message must not stall ingest
                log.error(
                    "parser failed topic=%s device=%s\n%s",
                    message.topic,
                    device_id,
                    traceback.format_exc(),
                )
                batch.dead_letters.append(
                    _dead(message, device_id, DeadLetterReason.INTERNAL_ERROR, repr(exc), None)
                )
                continue
            for event in parsed.events:
                batch.events.append(StagedEvent(event, device_id, site_id, received_at))
            for bad in parsed.rejected:
                batch.dead_letters.append(
                    DeadLetter(
                        received_at=received_at,
                        topic=message.topic,
                        device_id=device_id,
                        reason=bad.reason.value,
                        detail=bad.detail,
                        batch_index=bad.batch_index,
                        payload=bad.raw,
                    )
                )
        return batch

    def _prepare_status(
        self, batch: Batch, message: Received, device_id: str, received_at: datetime
    ) -> None:
        text = message.payload.decode("utf-8", "replace").strip()
        if text not in ("online", "offline"):
            log.warning("ignoring status topic=%s payload=%.40r", message.topic, text)
            return
        batch.statuses.append(
            StatusUpdate(device_id, text == "online", received_at, message.retained)
        )

    def _route(self, topic: str) -> tuple[str | None, str]:
        """(device_id, 'events' | 'status') from `{root}/devices/{id}/{kind}`."""
        if not topic.startswith(self._events_prefix):
            return None, ""
        device_id, _, kind = topic[len(self._events_prefix) :].partition("/")
        if not device_id or kind not in ("events", "status"):
            return None, ""
        return device_id, kind


def _dead(
    message: Received,
    device_id: str | None,
    reason: DeadLetterReason,
    detail: str,
    index: int | None,
) -> DeadLetter:
    return DeadLetter(
        received_at=datetime.fromtimestamp(message.received_at, UTC),
        topic=message.topic,
        device_id=device_id,
        reason=reason.value,
        detail=detail,
        batch_index=index,
        payload=message.payload,
    )


def open_pool(settings: Settings) -> ConnectionPool:
    """The worker's connection pool: one writer connection plus one spare, checked before use."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=2,
        open=False,
        configure=prepare_connection,
        check=ConnectionPool.check_connection,
        # A batch waits this long for a connection before it is retried (s).
        timeout=5.0,
        name="ingest",
    )
    pool.open(wait=False)
    return pool
