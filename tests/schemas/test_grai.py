"""GRAI (AI 8003) keys: parsing, Digital Link URIs, and events that carry a GRAI."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.dead_letters import DeadLetterReason
from schemas.digital_link import InvalidCode, build_uri, element_strings, parse_code
from schemas.events import Event, validation_context
from schemas.grai import InvalidGrai, key_fields, parse_grai
from schemas.messages import parse_message
from tests.conftest import ROOT
from tests.schemas.payloads import DEVICE, NOW, encode, event, without


def check_digit(body: str) -> str:
    """GS1 mod-10, written out here rather than taken from schemas.gtin."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


# GS1 Digital Link standard's own GRAI example: asset type 0 3870585 00055 2, serial 987.
GS1_EXAMPLE = "03870585000552987"
ASSET = "0703801000002" + check_digit("0703801000002")  # a crate type of company 7038010
CRATE_CLASS = "8003" + ASSET


def test_the_standards_example_parses() -> None:
    assert check_digit("0387058500055") == "2"
    assert parse_grai(GS1_EXAMPLE) == ("03870585000552", "987")
    assert parse_code(f"https://id.gs1.org/8003/{GS1_EXAMPLE}") == ("800303870585000552", "987")


def test_a_grai_without_serial_names_the_asset_type() -> None:
    assert parse_grai(ASSET) == (ASSET, None)
    assert parse_code(f"https://example.com/8003/{ASSET}") == (CRATE_CLASS, None)


@pytest.mark.parametrize(
    ("grai", "problem"),
    [
        (ASSET[:13] + str((int(ASSET[13]) + 1) % 10) + "S1", "check digit should be"),
        ("1" + ASSET[1:], "padding 0"),
        (ASSET[:12], "12 digits, expected 14"),
        ("07038010000x2S1", "only digits"),
        (ASSET + "A" * 17, "17 characters, at most 16"),
        (ASSET + "A B", "outside the GS1 set 82"),
    ],
)
def test_bad_grai_says_what_is_wrong(grai: str, problem: str) -> None:
    with pytest.raises(InvalidGrai, match=problem):
        parse_grai(grai)


def test_grai_serial_is_percent_decoded() -> None:
    assert parse_code(f"https://example.com/8003/{ASSET}A%2FB") == (CRATE_CLASS, "A/B")


def test_a_grai_carries_its_own_serial_not_ai_21() -> None:
    with pytest.raises(InvalidCode, match="not AI 21"):
        parse_code(f"https://example.com/8003/{ASSET}S1/21/S2")


@pytest.mark.parametrize("serial", [None, "1", "7KQ2M9XH4PZ0", "A/B%C", "x" * 16])
def test_printed_grai_links_read_back_as_their_key(serial: str | None) -> None:
    uri = build_uri("https://id.example.no/", CRATE_CLASS, serial)
    encoded = "" if serial is None else serial.replace("%", "%25").replace("/", "%2F")
    assert uri == f"https://id.example.no/8003/{ASSET}{encoded}"
    assert parse_code(uri) == (CRATE_CLASS, serial)


def test_a_grai_serial_longer_than_16_cannot_be_printed() -> None:
    with pytest.raises(InvalidGrai):
        build_uri("https://id.example.no", CRATE_CLASS, "x" * 17)


def test_same_digits_as_gtin_and_as_grai_stay_two_keys() -> None:
    gtin_class, _ = parse_code(f"https://example.com/01/{ASSET}/21/S1")
    grai_class, _ = parse_code(f"https://example.com/8003/{ASSET}S1")
    assert gtin_class == ASSET
    assert grai_class == CRATE_CLASS
    assert gtin_class != grai_class


def test_human_readable_text_under_the_code() -> None:
    assert element_strings(CRATE_CLASS, "S1") == [f"(8003) {ASSET}S1"]
    assert element_strings(ASSET, "S1") == [f"(01) {ASSET}", "(21) S1"]


# --- events keyed by GRAI -----------------------------------------------------------------


def valid(obj: dict[str, Any]) -> Event:
    return Event.model_validate(obj, context=validation_context(DEVICE, NOW))


def error_types(obj: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        valid(obj)
    return [e["type"] for e in info.value.errors()]


def test_event_by_grai_field() -> None:
    parsed = valid(without(event(grai=ASSET + "C42"), "gtin"))
    assert (parsed.item_class, parsed.serial, parsed.qty) == (CRATE_CLASS, "C42", 1)


def test_event_by_grai_code() -> None:
    parsed = valid(without(event(code=f"https://id.example.no/8003/{ASSET}C42"), "gtin"))
    assert (parsed.item_class, parsed.serial) == (CRATE_CLASS, "C42")


def test_unserialised_grai_may_count_several() -> None:
    parsed = valid(without(event(type="sold", grai=ASSET, qty=40), "gtin"))
    assert (parsed.item_class, parsed.serial, parsed.qty) == (CRATE_CLASS, None, 40)


def test_serialised_grai_counts_one() -> None:
    assert error_types(without(event(type="sold", grai=ASSET + "C1", qty=2), "gtin")) == [
        "event_rule"
    ]


def test_grai_event_dump_validates_again() -> None:
    parsed = valid(without(event(grai=ASSET + "C42"), "gtin"))
    dumped = parsed.model_dump(mode="json")
    assert "grai" not in dumped
    assert valid(dumped) == parsed.model_copy(update={"grai": None})


def test_grai_with_another_key_is_an_error() -> None:
    assert error_types(event(grai=ASSET)) == ["code_with_key"]
    assert error_types(without(event(grai=ASSET, serial="S"), "gtin")) == ["code_with_key"]


def test_bad_grai_is_dead_lettered_as_invalid_grai() -> None:
    bad = ASSET[:13] + str((int(ASSET[13]) + 1) % 10) + "C1"
    good = without(event(grai=ASSET + "C1"), "gtin")
    payload = {"events": [good, without(event(grai=bad), "gtin")]}
    parsed = parse_message(encode(payload), DEVICE, NOW)
    assert [e.serial for e in parsed.events] == ["C1"]
    [rejected] = parsed.rejected
    assert rejected.reason is DeadLetterReason.INVALID_GRAI
    assert rejected.batch_index == 1
    assert "check digit should be" in rejected.detail


def test_key_fields_show_a_gtin_as_it_is_and_an_asset_as_its_whole_grai() -> None:
    gtin14 = "07038010001239"
    assert key_fields(gtin14, "S1") == {"gtin": gtin14, "grai": None}
    assert key_fields(gtin14, None) == {"gtin": gtin14, "grai": None}
    assert key_fields(CRATE_CLASS, "C42") == {"gtin": None, "grai": ASSET + "C42"}
    assert key_fields(CRATE_CLASS, None) == {"gtin": None, "grai": ASSET}


def test_key_fields_is_the_one_place_an_item_class_becomes_gtin_or_grai() -> None:
    # Whatever shows items (api/, the command line, devices/) goes through key_fields
    # rather than taking an item class apart itself; Digital Link addresses and element
    # strings (schemas/digital_link.py) are encodings of their own.
    spelled_out = [
        str(path.relative_to(ROOT))
        for folder in ("api", "devices", "ingest", "looptrack")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "asset_type_of(" in path.read_text("utf-8")
    ]
    assert spelled_out == []


def test_an_event_keeps_gtin_on_the_wire_and_item_class_in_python() -> None:
    parsed = valid(without(event(grai=ASSET + "C42"), "gtin"))
    assert parsed.item_class == CRATE_CLASS
    dumped = parsed.model_dump(mode="json")
    assert dumped["gtin"] == CRATE_CLASS and "item_class" not in dumped
    assert valid(dumped) == parsed.model_copy(update={"grai": None})
    # The Python name is not a wire field.
    assert error_types({**without(event(), "gtin"), "item_class": CRATE_CLASS}) == [
        "missing",
        "extra_forbidden",
    ]
