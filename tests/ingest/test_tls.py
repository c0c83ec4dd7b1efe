"""TLS to the broker (`mqtts://` with LOOPTRACK_MQTT_CA_FILE / _CERT_FILE / _KEY_FILE):
against a real Mosquitto with a TLS listener and a throwaway CA made with the openssl CLI,
the worker stores what a device with a client certificate sends, and a client that does
not trust the CA, has no certificate, or reaches a broker under another name is refused."""

from __future__ import annotations

import gc
import secrets
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from devices.client import DeviceClient, TlsFiles
from looptrack.local_services import PROJECT_MOSQUITTO_CONF, LocalMosquitto, free_port, port_open
from schemas.broker_accounts import Account, AccountRole, acl_file, mosquitto_hash, password_file
from schemas.mqtt_connection import configure_client
from schemas.settings import Settings, parse_mqtt_url
from tests.conftest import ROOT, wait_until
from tests.factories import GTIN_COLA, count, seed_registry

# paho (2.2) leaves the socket of a failed TLS handshake for the garbage collector, which
# warns; a refused handshake is what these tests provoke.
unclosed_tls_socket = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

PRODUCTION_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto-production.conf"
TLS_CONF_EXAMPLE = ROOT / "deploy" / "mosquitto" / "conf.d" / "tls.conf.example"
# Where the production config expects things in the eclipse-mosquitto container.
CONTAINER_ACCOUNTS, CONTAINER_CERTS = "/mosquitto/accounts/", "/mosquitto/certs/"

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


@pytest.fixture(autouse=True)
def collect_closed_clients() -> Iterator[None]:
    """paho closes a client's wake-up socket pair on neither disconnect nor loop_stop, and
    DeviceClient and its paho client reference each other: collect this test's clients
    now, quietly, rather than let the collector warn during some later test."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


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


def options(conf: Path) -> list[str]:
    return [line for line in conf.read_text().splitlines() if line and not line.startswith("#")]


def test_the_production_config_keeps_the_development_configs_tuning() -> None:
    """Only access differs: accounts, listeners, the TLS include."""
    access = ("listener", "allow_anonymous", "password_file", "acl_file", "include_dir")
    assert [o for o in options(PRODUCTION_CONF) if not o.startswith(access)] == [
        o for o in options(PROJECT_MOSQUITTO_CONF) if not o.startswith(access)
    ]
    assert "allow_anonymous false" in options(PRODUCTION_CONF)
    # Where docker-compose.yml mounts the files `looptrack broker files` writes.
    assert f"password_file {CONTAINER_ACCOUNTS}passwd" in options(PRODUCTION_CONF)
    assert f"acl_file {CONTAINER_ACCOUNTS}acl" in options(PRODUCTION_CONF)


@unclosed_tls_socket
def test_the_shipped_production_config_serves_accounts_over_tls_with_client_certificates(
    pki: TestCa, tmp_path: Path
) -> None:
    """deploy/mosquitto/mosquitto-production.conf with conf.d/tls.conf.example turned on
    (require_certificate too), moved from the container's paths into tmp_path."""
    server = pki.issue("prod-broker", "server", san="IP:127.0.0.1")
    device_pair = pki.issue("rvm-prod-1", "client")
    accounts = tmp_path / "accounts"
    accounts.mkdir()
    passwords = {"rvm-prod-1": "device-secret", "looptrack-ingest": "ingest-secret"}
    roles = {"rvm-prod-1": AccountRole.DEVICE, "looptrack-ingest": AccountRole.INGEST}
    known = [Account(name, roles[name], mosquitto_hash(pw)) for name, pw in passwords.items()]
    (accounts / "passwd").write_text(password_file(known))
    (accounts / "acl").write_text(acl_file(known, "looptrack/v1"))
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    tls_port = free_port()
    tls_conf = TLS_CONF_EXAMPLE.read_text().replace("#require_certificate", "require_certificate")
    tls_conf = tls_conf.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
    for name, path in {"ca.pem": pki.ca.cert, "server.pem": server.cert}.items():
        tls_conf = tls_conf.replace(CONTAINER_CERTS + name, str(path))
    tls_conf = tls_conf.replace(CONTAINER_CERTS + "server.key", str(server.key))
    assert not any(CONTAINER_CERTS in line for line in tls_conf.splitlines() if line[:1] != "#")
    (conf_d / "tls.conf").write_text(tls_conf)
    broker = LocalMosquitto(
        tmp_path / "mosquitto",
        config=PRODUCTION_CONF,
        extra_config=[
            f"password_file {accounts / 'passwd'}",
            f"acl_file {accounts / 'acl'}",
            f"include_dir {conf_d}",
        ],
    )
    broker.start()  # the plain listener, moved to a free port
    clients: list[DeviceClient] = []

    def started(url: str, tls: TlsFiles | None = None) -> DeviceClient:
        client = DeviceClient("rvm-prod-1", url, tls=tls, client_id=f"c{len(clients)}")
        clients.append(client)
        client.start()
        return client

    try:
        wait_until(lambda: port_open(tls_port), 10, "the TLS listener")
        device_tls = TlsFiles(pki.ca.cert, device_pair.cert, device_pair.key)
        tls_url = f"mqtts://rvm-prod-1:device-secret@127.0.0.1:{tls_port}"
        refused = [
            started(tls_url.replace("device-secret", "guess"), device_tls),
            started(tls_url, TlsFiles(pki.ca.cert)),  # no client certificate
            started(f"mqtt://127.0.0.1:{broker.port}"),  # anonymous, plain listener
        ]
        assert started(tls_url, device_tls).wait_connected(10)
        ingest_url = f"mqtt://looptrack-ingest:ingest-secret@127.0.0.1:{broker.port}"
        assert started(ingest_url).wait_connected(10)
        assert not any(client.wait_connected(0.5) for client in refused)
    finally:
        for client in clients:
            client.close(timeout_s=0)
        broker.stop()


@unclosed_tls_socket
def test_the_trial_certificate_recipe_makes_a_broker_devices_can_trust(tmp_path: Path) -> None:
    """The recipe in deploy/mosquitto/certs/README.md, run as written: its broker
    certificate passes a strict check against its CA, and a device trusting only that CA
    connects over TLS."""
    readme = (ROOT / "deploy" / "mosquitto" / "certs" / "README.md").read_text()
    recipe = readme.split("## Certificates for a trial", 1)[1].split("```sh\n", 1)[1]
    made = tmp_path / "certs"
    made.mkdir()
    subprocess.run(["bash", "-e", "-c", recipe.split("```", 1)[0]], cwd=made, check=True)
    strict = ["openssl", "verify", "-x509_strict", "-CAfile", "ca.pem", "server.pem"]
    subprocess.run(strict, cwd=made, check=True, capture_output=True)

    ca = Pair(made / "ca.pem", made / "ca.key")
    server = Pair(made / "server.pem", made / "server.key")
    broker = tls_broker(tmp_path / "mosquitto", server, ca, require_certificate=False)
    broker.start()
    device = DeviceClient("rvm-trial", broker.url, tls=TlsFiles(ca.cert))
    try:
        device.start()
        assert device.wait_connected(10), "a device trusting ca.pem could not connect"
    finally:
        device.close(timeout_s=0)
        broker.stop()
