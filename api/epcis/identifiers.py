"""Identifiers in EPCIS documents: items and products as GS1 Digital Link URIs or EPC URNs
(SGTIN; GRAI for returnable assets), and the URIs of our devices (readPoint) and sites
(bizLocation). Items are named by (item class, serial) as in schemas.digital_link."""

from __future__ import annotations

import re
import uuid
from typing import NamedTuple
from urllib.parse import quote, unquote

from schemas.digital_link import (
    InvalidCode,
    InvalidSerial,
    build_uri,
    parse_code,
    validate_serial,
)
from schemas.grai import InvalidGrai, check_grai_serial, grai_item_class
from schemas.gtin import InvalidGtin, gtin_check_digit, shown
from schemas.registry import DEVICE_ID_PATTERN, SLUG_PATTERN

EVENT_ID_NAMESPACE = uuid.UUID("2ebb174d-a04d-473e-8ff6-d3fbcf7804d1")
"""Fixed namespace of the UUIDs derived from eventIDs that are not `urn:uuid:`; changing it
would make a re-capture store its events twice."""
URN_UUID = "urn:uuid:"
DEVICES_PATH = "/devices/"
SITES_PATH = "/sites/"

# EPC URNs (GS1 EPC Tag Data Standard): company prefix and item reference (its first
# digit the GTIN's indicator) together have 13 digits; the company prefix 6 to 12.
_SGTIN = re.compile(r"urn:epc:id:sgtin:([0-9]{6,12})\.([0-9]{1,7})\.(.+)", re.IGNORECASE)
_SGTIN_PATTERN = re.compile(r"urn:epc:idpat:sgtin:([0-9]{6,12})\.([0-9]{1,7})\.(.+)", re.IGNORECASE)
# A GRAI's company prefix and asset reference have 12 digits together; its serial is
# required in an EPC (a GRAI without one names the asset type, not an asset).
_GRAI = re.compile(r"urn:epc:id:grai:([0-9]{6,12})\.([0-9]{0,6})\.(.+)", re.IGNORECASE)
# Every asset of a GRAI asset type, as EPCIS queries ask for it.
_GRAI_TYPE_PATTERN = re.compile(r"urn:epc:idpat:grai:([0-9]{6,12})\.([0-9]{0,6})\.\*", re.I)
# A place named by a GLN: the device (readPoint) or site (bizLocation) registered under
# "sgln-" and the SGLN's company prefix, location reference and extension.
SGLN_ID_PREFIX = "sgln-"
_SGLN = re.compile(r"urn:epc:id:sgln:([0-9]{6,12}\.[0-9]{0,6}\.[!%-?A-Z_a-z\"]{1,20})", re.I)
_SGLN_ID = re.compile(r"sgln-([0-9]{6,12}\.[0-9]{0,6}\.[!%-?A-Z_a-z\"]{1,20})")
_LGTIN_CLASS = re.compile(r"urn:epc:class:lgtin:([0-9]{6,12})\.([0-9]{1,7})\..+", re.IGNORECASE)
_device_id_match = re.compile(DEVICE_ID_PATTERN).fullmatch
_site_id_match = re.compile(SLUG_PATTERN).fullmatch


class InvalidEpc(ValueError):
    """Text that is not an identifier looptrack understands in this place."""


class EpcPattern(NamedTuple):
    """Items an EPC or EPC pattern stands for: one item class's item `serial`, or (serial
    None) any serialised item of the item class (a GTIN-14, or "8003" + a GRAI asset type)."""

    item_class: str
    serial: str | None


def item_uri(base_url: str, item_class: str, serial: str) -> str:
    """The Digital Link URI of one item, the address printed in its QR code."""
    return build_uri(base_url, item_class, serial)


def class_uri(base_url: str, item_class: str) -> str:
    """The Digital Link URI of a product (class level): `{base}/01/{gtin14}`, or an asset
    type's `{base}/8003/{asset type}`."""
    return build_uri(base_url, item_class)


def event_uuid(event_id: str) -> uuid.UUID:
    """The looptrack event_id of an EPCIS eventID: the UUID of `urn:uuid:…`, else a UUID
    derived from the whole eventID (e.g. `ni:///sha-256;…`), the same on every capture.
    Raises InvalidEpc for a malformed `urn:uuid:`."""
    if event_id[: len(URN_UUID)].lower() == URN_UUID:
        try:
            return uuid.UUID(event_id[len(URN_UUID) :])
        except ValueError:
            raise InvalidEpc(f"{shown(event_id)}: not a UUID after urn:uuid:") from None
    return uuid.uuid5(EVENT_ID_NAMESPACE, event_id)


def device_uri(base_url: str, device_id: str) -> str:
    """The readPoint id of a device: `{base}/devices/{id}`, or the SGLN URN of a device
    registered as `sgln-…`."""
    if (match := _SGLN_ID.fullmatch(device_id)) is not None:
        return f"urn:epc:id:sgln:{match.group(1)}"
    return f"{base_url.rstrip('/')}{DEVICES_PATH}{quote(device_id, safe='')}"


def site_uri(base_url: str, site_id: str) -> str:
    """The bizLocation id of a site: `{base}/sites/{id}`, or the SGLN URN of a site
    registered as `sgln-…`."""
    if (match := _SGLN_ID.fullmatch(site_id)) is not None:
        return f"urn:epc:id:sgln:{match.group(1)}"
    return f"{base_url.rstrip('/')}{SITES_PATH}{quote(site_id, safe='')}"


def _gln_place(uri: str) -> str | None:
    """The id a place named by an SGLN URN is registered under, e.g. sgln-0614141.07346.1234."""
    match = _SGLN.fullmatch(uri)
    return None if match is None else SGLN_ID_PREFIX + match.group(1)


def _local_id(base_url: str, path: str, uri: str) -> str | None:
    prefix = base_url.rstrip("/") + path
    if not uri.startswith(prefix):
        return None
    return unquote(uri[len(prefix) :])


def device_of(base_url: str, uri: str) -> str | None:
    """The device id of our readPoint URI or of an SGLN URN, or None for any other URI."""
    device_id = _local_id(base_url, DEVICES_PATH, uri)
    if device_id is None:
        device_id = _gln_place(uri)
    return device_id if device_id is not None and _device_id_match(device_id) else None


def site_of(base_url: str, uri: str) -> str | None:
    """The site id of our bizLocation URI or of an SGLN URN, or None for any other URI."""
    site_id = _local_id(base_url, SITES_PATH, uri)
    if site_id is None:
        site_id = _gln_place(uri)
    return site_id if site_id is not None and _site_id_match(site_id) else None


def _gtin_of_urn(company_prefix: str, item_reference: str, uri: str) -> str:
    if len(company_prefix) + len(item_reference) != 13:
        raise InvalidEpc(
            f"{shown(uri)}: company prefix and item reference have "
            f"{len(company_prefix) + len(item_reference)} digits together, 13 expected"
        )
    body = item_reference[0] + company_prefix + item_reference[1:]
    return body + gtin_check_digit(body)


def _serial_of_urn(escaped: str, uri: str) -> str:
    try:
        return validate_serial(unquote(escaped, errors="strict"))
    except (InvalidSerial, UnicodeDecodeError) as exc:
        raise InvalidEpc(f"{shown(uri)}: {exc}") from None


def _grai_of_urn(company_prefix: str, asset_reference: str, uri: str) -> str:
    """The item class of a GRAI EPC URN; its serial is checked by the caller."""
    if len(company_prefix) + len(asset_reference) != 12:
        raise InvalidEpc(
            f"{shown(uri)}: company prefix and asset reference have "
            f"{len(company_prefix) + len(asset_reference)} digits together, 12 expected"
        )
    body = "0" + company_prefix + asset_reference
    return grai_item_class(body + gtin_check_digit(body))


def _digital_link(uri: str) -> tuple[str, str | None]:
    """(item class, serial or None) of a Digital Link with a GTIN or a GRAI."""
    try:
        return parse_code(uri)
    except (InvalidCode, InvalidGtin, InvalidSerial, InvalidGrai) as exc:
        raise InvalidEpc(str(exc)) from None


def _not_understood(uri: str, expected: str) -> InvalidEpc:
    return InvalidEpc(f"{shown(uri)}: not {expected}")


def parse_item(uri: str) -> tuple[str, str]:
    """(item class, serial) of one item: a Digital Link URI with a serial (any host), an
    SGTIN EPC URN (`urn:epc:id:sgtin:0614141.107346.2017`) or a GRAI EPC URN of a
    returnable asset (`urn:epc:id:grai:0614141.12345.400`). Raises InvalidEpc."""
    if (match := _SGTIN.fullmatch(uri)) is not None:
        company_prefix, item_reference, serial = match.groups()
        return _gtin_of_urn(company_prefix, item_reference, uri), _serial_of_urn(serial, uri)
    if (match := _GRAI.fullmatch(uri)) is not None:
        company_prefix, asset_reference, escaped = match.groups()
        item_class = _grai_of_urn(company_prefix, asset_reference, uri)
        try:
            # The GRAI's limit (16) first: AI 21's check below would name its own (20).
            check_grai_serial(unquote(escaped))
        except InvalidGrai as exc:
            raise InvalidEpc(f"{shown(uri)}: {exc}") from None
        return item_class, _serial_of_urn(escaped, uri)
    if uri.lower().startswith(("http://", "https://")):
        gtin, serial = _digital_link(uri)
        if serial is None:
            raise InvalidEpc(
                f"{shown(uri)}: a product (class), not an item: put it in quantityList"
            )
        return gtin, serial
    raise _not_understood(uri, "a Digital Link URI, SGTIN or GRAI URN of an item")


def parse_class(uri: str) -> str:
    """The item class of a product or GRAI asset type: a Digital Link URI without a serial
    (further qualifiers such as a lot are ignored), an SGTIN pattern for any serial
    (`urn:epc:idpat:sgtin:0614141.107346.*`) or an LGTIN class URN. Raises InvalidEpc."""
    if (match := _SGTIN_PATTERN.fullmatch(uri)) is not None and match.group(3) == "*":
        return _gtin_of_urn(match.group(1), match.group(2), uri)
    if (match := _LGTIN_CLASS.fullmatch(uri)) is not None:
        return _gtin_of_urn(match.group(1), match.group(2), uri)
    if uri.lower().startswith(("http://", "https://")):
        gtin, serial = _digital_link(uri)
        if serial is not None:
            raise InvalidEpc(f"{shown(uri)}: an item, not a product (class): put it in epcList")
        return gtin
    raise _not_understood(uri, "a Digital Link URI, SGTIN pattern or LGTIN URN of a product")


def parse_pattern(uri: str) -> EpcPattern:
    """What a `MATCH_epc` value selects: one item, or with an SGTIN pattern whose serial is
    `*`, every item of a GTIN, or with a GRAI pattern (`urn:epc:idpat:grai:CP.AT.*`) every
    asset of a GRAI asset type. Raises InvalidEpc."""
    if (match := _SGTIN_PATTERN.fullmatch(uri)) is not None:
        company_prefix, item_reference, serial = match.groups()
        gtin = _gtin_of_urn(company_prefix, item_reference, uri)
        return EpcPattern(gtin, None if serial == "*" else _serial_of_urn(serial, uri))
    if (match := _GRAI_TYPE_PATTERN.fullmatch(uri)) is not None:
        return EpcPattern(_grai_of_urn(match.group(1), match.group(2), uri), None)
    return EpcPattern(*parse_item(uri))
