"""GS1 Digital Link parsing and building, and the AI (21) serial character set."""

from __future__ import annotations

import pytest

from schemas.digital_link import (
    InvalidCode,
    InvalidSerial,
    build_uri,
    parse_code,
    parse_digital_link,
    validate_serial,
)
from schemas.gtin import InvalidGtin

# GS1 General Specifications, figure 7.11-1 "GS1 AI encodable character set 82", written out.
CHARSET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
GTIN = "09506000134352"


def test_charset_has_82_characters() -> None:
    assert len(set(CHARSET_82)) == 82


@pytest.mark.parametrize("code_point", range(128))
def test_serial_accepts_exactly_charset_82(code_point: int) -> None:
    char = chr(code_point)
    if char in CHARSET_82:
        assert validate_serial(char) == char
    else:
        with pytest.raises(InvalidSerial, match="not in the GS1 AI \\(21\\) set"):
            validate_serial(char)


@pytest.mark.parametrize("serial", ["é", "ABC\u00a0", "\uff21", "1\u200b"])
def test_serial_rejects_non_ascii(serial: str) -> None:
    with pytest.raises(InvalidSerial):
        validate_serial(serial)


def test_serial_length_bounds() -> None:
    assert validate_serial("A" * 20) == "A" * 20
    with pytest.raises(InvalidSerial, match="21 characters, at most 20"):
        validate_serial("A" * 21)
    with pytest.raises(InvalidSerial, match="empty"):
        validate_serial("")


def test_serial_message_names_the_bad_character() -> None:
    with pytest.raises(InvalidSerial, match="character '#'"):
        validate_serial("AB#12")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("4006381333931", ("04006381333931", None)),
        ("96385074", ("00000096385074", None)),
        ("036000291452", ("00036000291452", None)),
        (GTIN, (GTIN, None)),
        ("4006381333931\r\n", ("04006381333931", None)),  # keyboard-wedge scanner suffix
        (f"https://id.gs1.org/01/{GTIN}", (GTIN, None)),
        (f"http://example.com/01/{GTIN}/", (GTIN, None)),
        (f"https://example.com/01/{GTIN}/21/ABC123", (GTIN, "ABC123")),
        (f"HTTPS://EXAMPLE.COM/01/{GTIN}/21/abc", (GTIN, "abc")),
        ("https://example.com/01/4006381333931/21/X", ("04006381333931", "X")),
        ("https://example.com/01/96385074/21/X", ("00000096385074", "X")),
        (f"https://example.com:8443/01/{GTIN}/21/X", (GTIN, "X")),
        # percent-encoded serials
        (f"https://example.com/01/{GTIN}/21/A%2FB%25C", (GTIN, "A/B%C")),
        (f"https://example.com/01/{GTIN}/21/%21%22%26%27%28%29", (GTIN, "!\"&'()")),
        (f"https://example.com/01/{GTIN}/21/a%3fb", (GTIN, "a?b")),
        # path prefixes before the primary key, even ones that look like AIs
        (f"https://brand.example/qr/v2/01/{GTIN}/21/S1", (GTIN, "S1")),
        (f"https://brand.example/01/x/01/{GTIN}/21/S1", (GTIN, "S1")),
        (f"https://brand.example/12/01/{GTIN}/21/S1", (GTIN, "S1")),
        # qualifiers: lot before serial (GS1 order 22, 10, 21) or other AIs after it
        (f"https://example.com/01/{GTIN}/10/LOT7/21/S1", (GTIN, "S1")),
        (f"https://example.com/01/{GTIN}/22/2A/10/LOT7/21/S1", (GTIN, "S1")),
        (f"https://example.com/01/{GTIN}/21/S1/10/LOT7", (GTIN, "S1")),
        (f"https://example.com/01/{GTIN}/10/LOT7", (GTIN, None)),
        # query string (data attributes, linkType) and fragment are ignored
        (f"https://example.com/01/{GTIN}/21/S1?17=271231&linkType=gs1:pip", (GTIN, "S1")),
        (f"https://example.com/01/{GTIN}?21=NOTME", (GTIN, None)),
        (f"https://example.com/01/{GTIN}/21/S1#top", (GTIN, "S1")),
    ],
)
def test_parse_code(code: str, expected: tuple[str, str | None]) -> None:
    assert parse_code(code) == expected


@pytest.mark.parametrize(
    "code",
    [
        "",
        "hello",
        "(01)09506000134352(21)ABC",
        "ftp://example.com/01/09506000134352",
        "example.com/01/09506000134352",
        "https:///01/09506000134352",
        "https://example.com/",
        "https://example.com/01",
        "https://example.com/02/09506000134352",
        "https://example.com/8004/03870585000552987",
        "https://example.com/gtin/09506000134352",
        f"https://example.com/01/{GTIN}/21/A%zz",
        f"https://example.com/01/{GTIN}/21/A%2",
        f"https://example.com/01/{GTIN}/21/%C3%28",
        f"https://example.com/01/{GTIN}/21/A/21/B",
    ],
)
def test_unparseable_codes(code: str) -> None:
    with pytest.raises(InvalidCode):
        parse_code(code)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("4006381333932", InvalidGtin),
        ("123456789", InvalidGtin),
        ("https://example.com/01/09506000134353/21/S1", InvalidGtin),
        ("https://example.com/01/0950600013435X", InvalidGtin),
        ("https://example.com/01/123/21/S1", InvalidGtin),
        (f"https://example.com/01/{GTIN}/21/", InvalidSerial),
        (f"https://example.com/01/{GTIN}/21/%23", InvalidSerial),
        (f"https://example.com/01/{GTIN}/21/a%20b", InvalidSerial),
        (f"https://example.com/01/{GTIN}/21/{'A' * 21}", InvalidSerial),
        (f"https://example.com/01/{GTIN}/21/%C3%A9", InvalidSerial),
    ],
)
def test_bad_key_inside_a_code(code: str, error: type[ValueError]) -> None:
    with pytest.raises(error):
        parse_code(code)


def test_parse_digital_link_keeps_qualifiers() -> None:
    pairs = parse_digital_link(f"https://example.com/r/01/{GTIN}/10/L%2F1/21/S1?x=1")
    assert pairs == {"01": GTIN, "10": "L/1", "21": "S1"}


def test_build_uri_encodes_all_but_unreserved() -> None:
    uri = build_uri("https://example.com/", GTIN, "A%B/1-._z")
    assert uri == f"https://example.com/01/{GTIN}/21/A%25B%2F1-._z"
    assert build_uri("https://example.com", "4006381333931") == (
        "https://example.com/01/04006381333931"
    )


@pytest.mark.parametrize("start", range(0, 82, 20))
def test_build_and_parse_round_trip_every_character(start: int) -> None:
    serial = CHARSET_82[start : start + 20]
    uri = build_uri("http://localhost:8000", GTIN, serial)
    tail = uri.split("/21/", 1)[1]
    assert set(tail) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%")
    assert parse_code(uri) == (GTIN, serial)


def test_build_uri_validates() -> None:
    with pytest.raises(InvalidGtin):
        build_uri("https://example.com", "09506000134353", "S1")
    with pytest.raises(InvalidSerial):
        build_uri("https://example.com", GTIN, "S 1")
