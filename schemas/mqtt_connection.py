"""How every looptrack MQTT client (ingest worker, API publisher, replay, devices) logs in
to the broker: the endpoint's username/password and, for `mqtts://`, TLS with its files."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from schemas.settings import MqttEndpoint


def tls_context(endpoint: MqttEndpoint) -> ssl.SSLContext:
    """A client context that verifies the broker's certificate chain and host name against
    `endpoint.ca_file` (None: the system's trust store) and presents the client
    certificate when one is given."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(endpoint.ca_file) if endpoint.ca_file else None,
    )
    # create_default_context already sets both; spelled out because they are the point.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if endpoint.cert_file is not None:
        context.load_cert_chain(
            str(endpoint.cert_file), str(endpoint.key_file) if endpoint.key_file else None
        )
    return context


def configure_client(client: mqtt.Client, endpoint: MqttEndpoint) -> None:
    """Give a paho client (before it connects) the endpoint's credentials and TLS."""
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set_context(tls_context(endpoint))
