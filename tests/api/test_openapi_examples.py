"""Every example in the OpenAPI document is valid against the schema it illustrates, so
what a reader copies from the docs is something the API accepts or could answer."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from api.app import create_app
from schemas.settings import Settings


def document() -> dict[str, Any]:
    settings = Settings(database_url="postgresql://unused/unused", mqtt_url="mqtt://unused:1883")
    return create_app(settings).openapi()


def examples() -> list[tuple[str, Any]]:
    found = []
    for name, schema in document()["components"]["schemas"].items():
        for example in schema.get("examples", []):
            found.append((name, example))
    return found


def test_the_main_records_have_examples() -> None:
    names = {name for name, _ in examples()}
    assert {
        "ProductFields",
        "ReturnRateRow",
        "ReuseRow",
        "StoredEvent",
        "Item",
        "DeadLetter",
        "DuplicateReturn",
        "SeqGap",
    } <= names


@pytest.mark.parametrize(("name", "example"), examples())
def test_an_example_matches_its_schema(name: str, example: Any) -> None:
    openapi = document()
    # Component schemas refer to each other as #/components/schemas/…: resolve against
    # the whole document.
    schema = {**openapi["components"]["schemas"][name], "components": openapi["components"]}
    jsonschema_rs.validate(schema, example, draft=jsonschema_rs.Draft202012, validate_formats=True)
