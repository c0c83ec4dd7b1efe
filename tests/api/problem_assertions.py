"""Asserting RFC 9457 problem responses."""

from __future__ import annotations

from typing import Any


def assert_problem(response: Any, status: int, detail_part: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert detail_part in body["detail"], body
