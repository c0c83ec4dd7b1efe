"""Per-device broker credentials (SPEC §9), against a real Mosquitto that uses the files
`looptrack devices add` / `revoke` and `looptrack broker account` write."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.client import DeviceClient
from looptrack.local_services import LocalMosquitto
from schemas.broker_accounts import mosquitto_hash
from tests.conftest import ROOT, service_env, wait_until
from tests.factories import GTIN_COLA, count, event, seed_registry

TOPIC_ROOT = "looptrack/v1"  # the ACL is written for the deployment's root


def looptrack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looptrack", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Session:
    """One MQTT 5 connection with given credentials; records what the broker answers."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self._answered = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"t-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self.client = client
        client.connect("127.0.0.1", port)
        client.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        self._answered.set()

    def _on_publish(
        self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Properties | None
    ) -> None:
        with self._lock:
            self.pubacks[mid] = reason

    def connected(self) -> bool:
        assert self._answered.wait(10), "the broker did not answer CONNECT"
        assert self.connack is not None
        return not self.connack.is_failure

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """QoS 1; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        return wait_until(lambda: self.pubacks.get(info.mid), 10, "PUBACK")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mosquitto_hash_is_the_format_mosquitto_passwd_writes(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), "rvm-1", "s3cret"], check=True)
    _, stored = path.read_text().strip().split(":", 1)
    salt = base64.b64decode(stored.split("$")[3])
    assert mosquitto_hash("s3cret", salt) == stored
    assert mosquitto_hash("s3cret") != stored  # a fresh salt each time


def test_a_device_speaks_only_for_itself_and_wrong_or_revoked_logins_are_refused(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, make_worker: Any
) -> None:
    seed_registry(db, [])
    files = tmp_path / "broker"
    broker = LocalMosquitto(
        tmp_path / "mosquitto",
        extra_config=[
            "allow_anonymous false",
            f"password_file {files / 'passwd'}",
            f"acl_file {files / 'acl'}",
        ],
    )
    env = service_env(db_url, broker, TOPIC_ROOT)  # type: ignore[arg-type]
    env.update(
        LOOPTRACK_BROKER_PASSWORD_FILE=str(files / "passwd"),
        LOOPTRACK_BROKER_ACL_FILE=str(files / "acl"),
    )
    passwords = {}
    for device in ("rvm-a", "rvm-b"):
        added = looptrack(env, "devices", "add", device, "--site", "shop-1", "--kind", "rvm")
        assert added.returncode == 0, added.stderr
        passwords[device] = added.stdout.strip().splitlines()[-1]
    worker_account = looptrack(env, "broker", "account", "ingest-1", "--role", "ingest")
    assert worker_account.returncode == 0, worker_account.stderr
    ingest_password = worker_account.stdout.strip().splitlines()[-1]
    # Only hashes are stored, in the database and in the broker's file.
    assert passwords["rvm-a"] not in (files / "passwd").read_text()
    assert count(db, "SELECT count(*) FROM broker_accounts WHERE password_hash LIKE '$7$%%'") == 3

    broker.start()
    try:
        make_worker(
            LOOPTRACK_MQTT_URL=f"mqtt://ingest-1:{ingest_password}@127.0.0.1:{broker.port}",
            LOOPTRACK_TOPIC_ROOT=TOPIC_ROOT,
        )
        a = Session(broker.port, "rvm-a", passwords["rvm-a"])
        assert a.connected()
        own, other = (f"{TOPIC_ROOT}/devices/{d}/events" for d in ("rvm-a", "rvm-b"))

        mine = event(seq=1)
        assert not a.publish(own, json.dumps(mine).encode()).is_failure
        forged = event(seq=1)
        refused = a.publish(other, json.dumps(forged).encode())
        assert refused.is_failure and refused.getName() == "Not authorized"
        a.close()

        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 1, 30, "rvm-a's event")
        # The worker would have stored the forged event within a flush or two.
        b = Session(broker.port, "rvm-b", passwords["rvm-b"])
        assert b.connected()
        assert not b.publish(other, json.dumps(event(seq=1)).encode()).is_failure
        b.close()
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 2, 30, "rvm-b's event")
        rows = db.execute("SELECT event_id::text, device_id FROM events ORDER BY device_id")
        stored = rows.fetchall()
        assert (forged["event_id"], "rvm-b") not in stored
        assert stored[0] == (mine["event_id"], "rvm-a")
        assert count(db, "SELECT count(*) FROM dead_letters") == 0

        # Receipts: the worker may write them, and each device reads only its own.
        spy_got: list[str] = []
        spy = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        spy.username_pw_set("rvm-a", passwords["rvm-a"])
        spy.on_message = lambda _c, _u, message: spy_got.append(message.topic)
        spy.connect("127.0.0.1", broker.port)
        spy.loop_start()
        spy.subscribe([(f"{TOPIC_ROOT}/devices/{d}/receipts", 1) for d in ("rvm-a", "rvm-b")])
        try:
            for device in ("rvm-b", "rvm-a"):
                with DeviceClient(
                    device,
                    broker.url,
                    topic_root=TOPIC_ROOT,
                    username=device,
                    password=passwords[device],
                    client_id=f"c-{uuid.uuid4().hex[:8]}",
                ) as client:
                    client.scan("returned", gtin=GTIN_COLA)
                    client.flush(30)  # returns once the device's own receipt came
            wait_until(lambda: spy_got, 10, "rvm-a's receipt, seen by rvm-a")
            assert set(spy_got) == {f"{TOPIC_ROOT}/devices/rvm-a/receipts"}
        finally:
            spy.disconnect()
            spy.loop_stop()

        def login_works(username: str | None, password: str | None) -> bool:
            session = Session(broker.port, username, password)
            try:
                return session.connected()
            finally:
                session.close()

        assert login_works("rvm-b", passwords["rvm-b"])
        assert not login_works("rvm-a", passwords["rvm-b"])  # wrong password
        assert not login_works(None, None)  # anonymous

        revoked = looptrack(env, "devices", "revoke", "rvm-b")
        assert revoked.returncode == 0, revoked.stderr
        assert "rvm-b:" not in (files / "passwd").read_text()
        broker.reload()
        wait_until(
            lambda: (
                not (s := Session(broker.port, "rvm-b", passwords["rvm-b"])).connected()
                or s.close()
            ),
            10,
            "rvm-b refused after revoke",
        )
        again = looptrack(env, "devices", "revoke", "rvm-b")
        assert again.returncode == 2 and "no active MQTT account" in again.stderr
    finally:
        broker.stop()


def test_a_service_account_cannot_take_a_device_name(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    name = "rvm-a"
    seed_registry(db, [])
    env = {"LOOPTRACK_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    added = looptrack(env, "devices", "add", name, "--site", "shop-1", "--kind", "rvm")
    assert added.returncode == 0, added.stderr
    assert "were not updated" in added.stderr  # no broker files configured: said so
    taken = looptrack(env, "broker", "account", name, "--role", "ingest")
    assert taken.returncode == 2
    assert "another role" in taken.stderr
