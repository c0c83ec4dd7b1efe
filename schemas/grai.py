"""GS1 GRAI (AI 8003), the key of returnable assets such as crates and pallets, and the
item class under which GRAI-keyed items are stored beside GTIN-keyed ones.

A GRAI is a 14-digit asset type (a padding "0", the GS1 company prefix with the asset
reference, and a mod-10 check digit) followed by an optional serial of up to 16 characters
of GS1 set 82. Items are stored by (item class, serial) where the item class of a GTIN item
is its GTIN-14. GRAI asset types and GTINs are numbered independently, so the same 14 digits
may name both; the item class of a GRAI is therefore the asset type behind the AI, "8003"
followed by its 14 digits: 18 digits, which no GTIN-14 can be.
"""

from __future__ import annotations

import re

from schemas.gtin import gtin_check_digit, is_ascii_digits, shown

AI_GRAI = "8003"
ASSET_TYPE_LENGTH = 14
GRAI_SERIAL_MAX_LENGTH = 16
GRAI_PATTERN = r'^0[0-9]{13}[!"%-?A-Z_a-z]{0,16}$'
"""A whole GRAI: "0", 13 digits (the last a check digit), an optional serial of set 82."""
ASSET_TYPE_PATTERN = r"^0[0-9]{13}$"
ITEM_CLASS_PATTERN = r"^([0-9]{14}|8003[0-9]{14})$"
"""An item class as stored: a GTIN-14, or "8003" and a GRAI asset type (the schema's CHECK)."""

_serial_fullmatch = re.compile(r'[!"%-?A-Z_a-z]{1,16}').fullmatch


class InvalidGrai(ValueError):
    """A GRAI has a bad asset type (length, padding digit, check digit) or a bad serial."""


def validate_asset_type(value: str) -> str:
    """Return `value` if it is a 14-digit GRAI asset type: "0", 12 digits, a check digit."""
    if not is_ascii_digits(value):
        raise InvalidGrai(f"grai asset type {shown(value)}: only digits 0-9 allowed")
    if len(value) != ASSET_TYPE_LENGTH:
        raise InvalidGrai(
            f"grai asset type {shown(value)}: {len(value)} digits, expected {ASSET_TYPE_LENGTH}"
        )
    if value[0] != "0":
        raise InvalidGrai(f"grai {value}: the first digit is a padding 0, not {value[0]}")
    expected = gtin_check_digit(value[:13])
    if value[13] != expected:
        raise InvalidGrai(f"grai {value}: check digit should be {expected}")
    return value


def parse_grai(value: str) -> tuple[str, str | None]:
    """Return (asset type, serial or None) of a whole GRAI; raises InvalidGrai."""
    asset_type = validate_asset_type(value[:ASSET_TYPE_LENGTH])
    serial = value[ASSET_TYPE_LENGTH:]
    if not serial:
        return asset_type, None
    if _serial_fullmatch(serial) is None:
        if len(serial) > GRAI_SERIAL_MAX_LENGTH:
            problem = f"{len(serial)} characters, at most {GRAI_SERIAL_MAX_LENGTH}"
        else:
            problem = "a character outside the GS1 set 82 (A-Z a-z 0-9 and !\"%&'()*+,-./:;<=>?_)"
        raise InvalidGrai(f"grai serial {shown(serial)}: {problem}")
    return asset_type, serial


def grai_item_class(asset_type: str) -> str:
    """The item class under which items of a (valid) GRAI asset type are stored."""
    return AI_GRAI + asset_type


def is_grai_class(item_class: str) -> bool:
    """Whether a stored item class is a GRAI asset type rather than a GTIN-14."""
    return len(item_class) == len(AI_GRAI) + ASSET_TYPE_LENGTH


def asset_type_of(item_class: str) -> str:
    """The 14-digit asset type of a GRAI item class."""
    return item_class[len(AI_GRAI) :]


def key_fields(item_class: str, serial: str | None) -> dict[str, str | None]:
    """The `gtin` and `grai` a record shows for an item class and serial: a GTIN as it is
    (grai None); a GRAI as the whole GRAI, asset type and serial (gtin None), never as the
    stored item class."""
    if is_grai_class(item_class):
        return {"gtin": None, "grai": asset_type_of(item_class) + (serial or "")}
    return {"gtin": item_class, "grai": None}


def check_grai_serial(serial: str) -> str:
    """Return `serial` if it fits a GRAI (at most 16 characters; set 82 is checked as for
    AI 21); raises InvalidGrai."""
    if len(serial) > GRAI_SERIAL_MAX_LENGTH:
        raise InvalidGrai(
            f"grai serial {shown(serial)}: {len(serial)} characters, "
            f"at most {GRAI_SERIAL_MAX_LENGTH}"
        )
    return serial
