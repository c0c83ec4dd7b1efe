"""GS1 Digital Link URIs and AI (21) serials: parse scanned codes, build label URIs.

Items are named by (item class, serial): a GTIN-14 and its AI (21) serial, or a GRAI's
asset type as item class (schemas.grai) and the GRAI's serial component."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from schemas.grai import (
    AI_GRAI,
    asset_type_of,
    check_grai_serial,
    grai_item_class,
    is_grai_class,
    parse_grai,
)
from schemas.gtin import is_ascii_digits, normalize_gtin, shown

AI_GTIN = "01"
AI_SERIAL = "21"
PRIMARY_KEY_AIS = frozenset({AI_GTIN, AI_GRAI})
"""AIs that identify the item in a Digital Link path: GTIN (01) and GRAI (8003)."""

SERIAL_MAX_LENGTH = 20
SERIAL_CHARSET_82 = (
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
"""GS1 "AI encodable character set 82", the characters allowed in AI (21) serials."""

SERIAL_PATTERN = r'^[!"%-?A-Z_a-z]{1,20}$'
"""SERIAL_CHARSET_82 as a regular expression (ECMA-262 and Python); %-? spans % & ' ( ) * +
, - . / 0-9 : ; < = > ?."""

_serial_fullmatch = re.compile(SERIAL_PATTERN).fullmatch
_SERIAL_CHARS = frozenset(SERIAL_CHARSET_82)
# scheme://host[:port] then the path, an optional query and fragment; no white space.
# A regular expression rather than urlsplit: a third of the cost, for every scanned code.
_http_uri_fullmatch = re.compile(
    r"(?i:https?)://[^/?#\s]+(/[^?#\s]*)?(?:\?[^#\s]*)?(?:#\S*)?"
).fullmatch
# A GS1 Application Identifier is 2 to 4 digits.
_ai_fullmatch = re.compile(r"[0-9]{2,4}").fullmatch
_NO_KEY = "no GTIN (AI 01) or GRAI (AI 8003) in the Digital Link path"
# A "%" must start a %XX escape: GS1 Digital Link encodes a literal "%" as %25.
_bad_percent_search = re.compile(r"%(?![0-9A-Fa-f]{2})").search


class InvalidSerial(ValueError):
    """A serial is empty, longer than 20 characters, or uses a character outside set 82."""


class InvalidCode(ValueError):
    """Scanned text is neither bare GTIN digits nor a GS1 Digital Link URI with a GTIN or
    a GRAI."""


def validate_serial(serial: str) -> str:
    """Return `serial` unchanged if it is 1 to 20 characters of GS1 character set 82."""
    if _serial_fullmatch(serial):
        return serial
    if not serial:
        raise InvalidSerial("serial is empty; 1 to 20 characters expected")
    bad = sorted({ch for ch in serial if ch not in _SERIAL_CHARS})
    if bad:
        listed = ", ".join(repr(ch) for ch in bad[:5])
        raise InvalidSerial(
            f"serial {shown(serial)}: character {listed} not in the GS1 AI (21) set "
            "(A-Z a-z 0-9 and ! \" % & ' ( ) * + , - . / : ; < = > ? _)"
        )
    raise InvalidSerial(
        f"serial {shown(serial)}: {len(serial)} characters, at most {SERIAL_MAX_LENGTH}"
    )


def parse_digital_link(uri: str) -> dict[str, str]:
    """Return the AI → value pairs of a GS1 Digital Link URI's path, values percent-decoded.

    The first pair is the primary key (AI 01 GTIN or AI 8003 GRAI), the rest its
    qualifiers in path order (22 cpv, 10 lot, 21 serial …). Any http/https host and any
    path prefix before the primary key are accepted; the query string and fragment are
    ignored (they carry data attributes and link types, not keys). Values are not
    validated here. Raises InvalidCode when the text is not such a URI.
    """
    match = _http_uri_fullmatch(uri)
    if match is None:
        raise InvalidCode(f"code {shown(uri)}: neither GTIN digits nor an http(s) URI")
    segments = (match.group(1) or "").split("/")[1:]
    if len(segments) % 2 and segments[-1] == "":
        segments.pop()  # a trailing slash; but in ".../21/" the empty value is the serial
    # The keys sit in the tail of the path made only of (AI, value) pairs, starting at the
    # last primary-key AI: qualifiers never repeat a primary key, while the resolver's own
    # prefix before it may contain anything, even "01".
    start = len(segments)
    key_start = None
    while start >= 2 and _ai_fullmatch(segments[start - 2]):
        start -= 2
        if segments[start] in PRIMARY_KEY_AIS:
            key_start = start
            break
    if key_start is None:
        raise InvalidCode(f"code {shown(uri)}: {_NO_KEY}")
    pairs: dict[str, str] = {}
    for i in range(key_start, len(segments), 2):
        ai, raw_value = segments[i], segments[i + 1]
        if ai in pairs:
            raise InvalidCode(f"code {shown(uri)}: AI {ai} appears twice")
        if _bad_percent_search(raw_value):
            raise InvalidCode(f"code {shown(uri)}: malformed percent-encoding in AI {ai}")
        if "%" not in raw_value:
            pairs[ai] = raw_value
            continue
        try:
            pairs[ai] = unquote(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise InvalidCode(
                f"code {shown(uri)}: percent-encoding in AI {ai} is not UTF-8"
            ) from None
    return pairs


def parse_code(code: str) -> tuple[str, str | None]:
    """Return (item class, serial or None) from scanned text: bare GTIN digits or a
    Digital Link.

    A Digital Link must carry a GTIN (AI 01, optionally with a serial, AI 21) or a GRAI
    (AI 8003: asset type and optional serial in one value, schemas.grai); further
    qualifiers such as lot (AI 10) are ignored. Raises InvalidCode for unparseable text,
    InvalidGtin, InvalidSerial or InvalidGrai for a bad key inside.
    """
    # Scanners in keyboard-wedge mode append CR/LF or a tab.
    text = code.strip(" \t\r\n")
    if is_ascii_digits(text):
        return normalize_gtin(text), None
    pairs = parse_digital_link(text)
    gtin = pairs.get(AI_GTIN)
    if gtin is None:
        grai = pairs[AI_GRAI]  # parse_digital_link found one of the two primary keys
        if AI_SERIAL in pairs:
            raise InvalidCode(f"code {shown(code)}: a GRAI carries its serial, not AI 21")
        asset_type, serial = parse_grai(grai)
        return grai_item_class(asset_type), serial
    serial = pairs.get(AI_SERIAL)
    return normalize_gtin(gtin), None if serial is None else validate_serial(serial)


def build_uri(base_url: str, item_class: str, serial: str | None = None) -> str:
    """Return the address printed in QR codes: `{base_url}/01/{gtin14}[/21/{serial}]`, or
    `{base_url}/8003/{asset type}[{serial}]` for a GRAI item class.

    A GTIN is normalised to 14 digits; the serial is percent-encoded as GS1 Digital Link
    requires: only RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) stay literal.
    """
    base = base_url.rstrip("/")
    if is_grai_class(item_class):
        uri = f"{base}/{AI_GRAI}/{asset_type_of(item_class)}"
        if serial is None:
            return uri
        return uri + quote(check_grai_serial(validate_serial(serial)), safe="")
    uri = f"{base}/{AI_GTIN}/{normalize_gtin(item_class)}"
    if serial is None:
        return uri
    return f"{uri}/{AI_SERIAL}/{quote(validate_serial(serial), safe='')}"


def element_strings(item_class: str, serial: str | None = None) -> list[str]:
    """The human-readable GS1 element strings of an item, as printed under its QR code:
    ["(01) {gtin}", "(21) {serial}"], or ["(8003) {asset type}{serial}"] for a GRAI."""
    if is_grai_class(item_class):
        return [f"({AI_GRAI}) {asset_type_of(item_class)}{serial or ''}"]
    texts = [f"({AI_GTIN}) {item_class}"]
    return texts if serial is None else [*texts, f"({AI_SERIAL}) {serial}"]
