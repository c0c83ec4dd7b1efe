"""CSV exports and spreadsheets: a cell a spreadsheet would run as a formula (starting
with = + - @, a tab or a carriage return) is written as text, whatever put it there. Here
the payload a device sent, which the dead-letter CSV previews from its first byte."""

from __future__ import annotations

import csv
import io
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import Broker

HOSTILE = [
    b'=HYPERLINK("https://evil.example/","open")',
    b"+1+cmd|' /C calc'!A0",
    b"-2+3",
    b"@SUM(1+1)",
    b"\t=1+1",
    b"\r=1+1",
]


def test_a_payload_a_spreadsheet_would_run_is_text_in_the_dead_letter_csv(
    db: psycopg.Connection[Any], db_url: str, broker: Broker
) -> None:
    for payload in HOSTILE:
        db.execute(
            "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
            " payload_size, payload_sha256) VALUES (now(), 'looptrack/v1/devices/rvm-1/events',"
            " 'rvm-1', 'invalid_json', '-not JSON', %s, %s, sha256(%s))",
            (payload, len(payload), payload),
        )
    settings = Settings(database_url=db_url, mqtt_url=broker.url)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        key = create_key(db, Role.OPERATOR, "op")
        assert client.post("/login", data={"key": key}).status_code == 303
        answer = client.get("/dashboard/dead-letters.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    previews = sorted(row["payload_preview"] for row in rows)
    assert previews == sorted("'" + payload.decode() for payload in HOSTILE)
    assert {row["detail"] for row in rows} == {"'-not JSON"}
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
