"""TLS to the broker (`mqtts://` with LOOPTRACK_MQTT_CA_FILE / _CERT_FILE / _KEY_FILE):
against a real Mosquitto with a TLS listener and a throwaway CA made with the openssl CLI,
the worker stores what a device with a client certificate sends, and a client that does
not trust the CA, has no certificate, or reaches a broker under another name is refused."""

from __future__ import annotations

import secrets
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from devices.client import DeviceClient, TlsFiles
from looptrack.local_services import LocalMosquitto
from schemas.mqtt_connection import configure_client
from schemas.settings import Settings, parse_mqtt_url
from tests.conftest import wait_until
from tests.factories import GTIN_COLA, count, seed_registry

# paho (2.2) leaves the socket of a failed TLS handshake for the garbage collector, which
# warns; a refused handshake is what these tests provoke.
unclosed_tls_socket = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

# Minimal OpenSSL config: every extension spelled out, so the certificates pass strict
# X.509 checks too (Python 3.13 turns VERIFY_X509_STRICT on by default).
OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
# How long the refused clients get to try (they fail at the first handshake, ~ms).
REFUSAL_GRACE_S = 2.0


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


class TestCa:
    """A CA of its own in `directory`, issuing server and client certificates."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True)
        self.directory = directory
        self.cnf = directory / "openssl.cnf"
        self.cnf.write_text(OPENSSL_CNF)
        self.ca = self._pair("ca")
        self._openssl(
            "req", "-x509", *KEY_ARGS, "-keyout", self.ca.key, "-out", self.ca.cert,
            "-days", "2", "-subj", f"/CN={name}", "-extensions", "ca",
        )  # fmt: skip

    def issue(self, name: str, kind: str, san: str = "") -> Pair:
        """A certificate for `name`, `kind` "server" (with `san`) or "client"."""
        pair = self._pair(name)
        csr = self.directory / f"{name}.csr"
        self._openssl("req", "-new", *KEY_ARGS, "-keyout", pair.key, "-out", csr,
                      "-subj", f"/CN={name}")  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key,
            "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "2", "-out", pair.cert,
            "-extfile", self.cnf, "-extensions", kind,
            san=san,
        )  # fmt: skip
        return pair

    def _pair(self, name: str) -> Pair:
        return Pair(self.directory / f"{name}.pem", self.directory / f"{name}.key")

    def _openssl(self, *args: str | Path, san: str = "") -> None:
        # OpenSSL expands $ENV::SAN when it reads the file, whichever section is used.
        config = ["-config", str(self.cnf)] if args[0] == "req" else []
        subprocess.run(
            ["openssl", *map(str, args), *config],
            env={"SAN": san or "DNS:unused", "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("pki") / "ca", "looptrack test CA")


def tls_broker(
    workdir: Path, server: Pair, ca: Pair, *, require_certificate: bool
) -> LocalMosquitto:
    return LocalMosquitto(
        workdir,
        listener_config=[
            f"cafile {ca.cert}",
            f"certfile {server.cert}",
            f"keyfile {server.key}",
            f"require_certificate {'true' if require_certificate else 'false'}",
        ],
    )


@unclosed_tls_socket
def test_over_tls_the_worker_stores_a_certified_devices_events_and_refused_clients_send_none(
    db: psycopg.Connection[Any], pki: TestCa, tmp_path: Path, topic_root: str, make_worker: Any
) -> None:
    devices = {"certified": "rvm-tls-1", "untrusting": "rvm-tls-2", "no_cert": "rvm-tls-3"}
    seed_registry(db, list(devices.values()))  # all known: a leak would be stored, not DLQ'd
    server = pki.issue("broker", "server", san="IP:127.0.0.1, DNS:localhost")
    worker_pair = pki.issue("looptrack-ingest", "client")
    device_pair = pki.issue("rvm-tls-1", "client")
    broker = tls_broker(tmp_path / "mosquitto", server, pki.ca, require_certificate=True)
    broker.start()
    assert broker.url.startswith("mqtts://127.0.0.1:")
    by_role: dict[str, DeviceClient] = {}
    try:
        make_worker(
            LOOPTRACK_MQTT_URL=broker.url,
            LOOPTRACK_MQTT_CA_FILE=str(pki.ca.cert),
            LOOPTRACK_MQTT_CERT_FILE=str(worker_pair.cert),
            LOOPTRACK_MQTT_KEY_FILE=str(worker_pair.key),
        )
        tls_of = {
            "certified": TlsFiles(pki.ca.cert, device_pair.cert, device_pair.key),
            # The system's trust store does not know the throwaway CA.
            "untrusting": TlsFiles(None, device_pair.cert, device_pair.key),
            "no_cert": TlsFiles(pki.ca.cert),
        }
        for role, device in devices.items():
            by_role[role] = DeviceClient(
                device, broker.url, topic_root=topic_root, batch_interval_s=0.05, tls=tls_of[role]
            )
            by_role[role].start()
        sent = {
            role: [client.scan("returned", gtin=GTIN_COLA) for _ in range(5)]
            for role, client in by_role.items()
        }

        assert by_role["certified"].wait_connected(10)
        by_role["certified"].flush(10)
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 5, 10, "stored events")
        # The refused ones fail at their first handshake; give them a retry or two anyway.
        assert not by_role["untrusting"].wait_connected(REFUSAL_GRACE_S)
        assert not by_role["no_cert"].wait_connected(0.1)
        assert by_role["untrusting"].pending == 5
        assert by_role["no_cert"].pending == 5

        stored = {str(row[0]) for row in db.execute("SELECT event_id FROM events")}
        assert stored == set(sent["certified"])
        assert count(db, "SELECT count(*) FROM dead_letters") == 0
    finally:
        for client in by_role.values():
            client.close(timeout_s=0)
        broker.stop()


def refusal(url: str, tls: TlsFiles) -> str | None:
    """Why the client refuses the broker's certificate, connecting once with the shared
    client set-up; None when it connects."""
    endpoint = parse_mqtt_url(url).model_copy(
        update={"ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    configure_client(client, endpoint)
    try:
        client.connect(endpoint.host, endpoint.port)
    except ssl.SSLCertVerificationError as exc:
        # A string, not the exception: its traceback would keep paho's socket alive.
        return str(exc.verify_message)
    client.disconnect()
    return None


@unclosed_tls_socket
def test_the_brokers_certificate_must_name_the_host_connected_to(
    pki: TestCa, tmp_path: Path
) -> None:
    trusted = TlsFiles(pki.ca.cert)
    elsewhere = pki.issue("elsewhere", "server", san="DNS:broker.example")
    broker = tls_broker(tmp_path / "elsewhere", elsewhere, pki.ca, require_certificate=False)
    broker.start()
    try:
        refused = refusal(broker.url, trusted)  # a certificate of our CA, for another host
        assert refused is not None and "mismatch" in refused
    finally:
        broker.stop()
    named = pki.issue("named", "server", san="IP:127.0.0.1")
    broker = tls_broker(tmp_path / "named", named, pki.ca, require_certificate=False)
    broker.start()
    try:
        assert refusal(broker.url, trusted) is None  # same CA, right name: accepted
        # The system's trust store does not know the throwaway CA.
        assert refusal(broker.url, TlsFiles()) is not None
    finally:
        broker.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOOPTRACK_MQTT_CA_FILE": "{missing}"}, "LOOPTRACK_MQTT_CA_FILE: '{missing}' does not"),
        ({"LOOPTRACK_MQTT_CERT_FILE": "{file}"}, "_CERT_FILE and LOOPTRACK_MQTT_KEY_FILE go"),
        ({"LOOPTRACK_MQTT_KEY_FILE": "{file}"}, "_CERT_FILE and LOOPTRACK_MQTT_KEY_FILE go"),
        (
            {"LOOPTRACK_MQTT_URL": "mqtt://h:1883", "LOOPTRACK_MQTT_CA_FILE": "{file}"},
            "LOOPTRACK_MQTT_CA_FILE set, but the broker URL is not mqtts://",
        ),
    ],
)
def test_tls_settings_that_cannot_work_are_refused_with_the_setting_named(
    env: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {"file": str(tmp_path / "ca.pem"), "missing": str(tmp_path / "nope.pem")}
    (tmp_path / "ca.pem").write_text("not checked here: ssl reads it at connect\n")
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("LOOPTRACK_MQTT_URL", "mqtts://user:secret@broker.example")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**names))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert message.format(**names) in str(refused.value)
    assert "secret" not in str(refused.value)  # the URL's password is not echoed


def test_tls_settings_reach_the_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).touch()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPTRACK_MQTT_URL", "mqtts://ingest:pw@broker.example")
    monkeypatch.setenv("LOOPTRACK_MQTT_CA_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("LOOPTRACK_MQTT_CERT_FILE", str(tmp_path / "client.pem"))
    monkeypatch.setenv("LOOPTRACK_MQTT_KEY_FILE", str(tmp_path / "client.key"))
    endpoint = Settings().mqtt
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("broker.example", 8883, True)
    assert (endpoint.username, endpoint.password) == ("ingest", "pw")
    assert endpoint.ca_file == tmp_path / "ca.pem"
    assert (endpoint.cert_file, endpoint.key_file) == (
        tmp_path / "client.pem",
        tmp_path / "client.key",
    )
