"""GTIN check digits and normalisation, against published example GTINs."""

from __future__ import annotations

import pytest

from schemas.gtin import InvalidGtin, gtin_check_digit, normalize_gtin

# Published examples: GS1's GTIN-13 and GTIN-14 examples, and the EAN-8 / UPC-A / EAN-13
# examples used across the GS1 literature.
VALID = {
    "96385074": "00000096385074",  # GTIN-8
    "036000291452": "00036000291452",  # GTIN-12 (UPC-A)
    "4006381333931": "04006381333931",  # GTIN-13
    "5901234123457": "05901234123457",  # GTIN-13
    "09506000134352": "09506000134352",  # GTIN-14 (GS1 Digital Link examples)
    "10012345678902": "10012345678902",  # GTIN-14 with an indicator digit
    "00012345600012": "00012345600012",  # GTIN-14
}


@pytest.mark.parametrize(("value", "gtin14"), VALID.items())
def test_valid_gtins_normalise_to_14_digits(value: str, gtin14: str) -> None:
    assert normalize_gtin(value) == gtin14


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        ("9638507", "4"),
        ("03600029145", "2"),
        ("400638133393", "1"),
        ("590123412345", "7"),
        ("0950600013435", "2"),
        ("1001234567890", "2"),
        ("000000000000", "0"),
    ],
)
def test_check_digit(body: str, digit: str) -> None:
    assert gtin_check_digit(body) == digit
    # Leading zeros carry no weight, which is what makes padding to 14 digits safe.
    assert gtin_check_digit(body.zfill(13)) == digit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("96385075", "4"),
        ("036000291453", "2"),
        ("4006381333932", "1"),
        ("5901234123458", "7"),
        ("09506000134353", "2"),
    ],
)
def test_wrong_check_digit_names_the_expected_one(value: str, expected: str) -> None:
    with pytest.raises(InvalidGtin) as raised:
        normalize_gtin(value)
    assert str(raised.value) == f"gtin {value}: check digit should be {expected}"


@pytest.mark.parametrize("value", ["1234567", "123456789", "12345678901", "123456789012345", ""])
def test_wrong_length(value: str) -> None:
    with pytest.raises(InvalidGtin, match=r"expected 8, 12, 13 or 14|only digits"):
        normalize_gtin(value)


def test_wrong_length_message_counts_digits() -> None:
    with pytest.raises(InvalidGtin, match=r"9 digits, expected 8, 12, 13 or 14"):
        normalize_gtin("123456789")


@pytest.mark.parametrize(
    "value",
    [
        "400638133393A",
        " 4006381333931",
        "4006381333931\n",
        "-4006381333931",
        "40063813339.1",
        "٤٠٠٦٣٨١٣٣٣٩٣١",  # Arabic-Indic digits: str.isdigit() says yes, GS1 says no
        "96385074²",
    ],
)
def test_non_digits(value: str) -> None:
    with pytest.raises(InvalidGtin, match="only digits 0-9"):
        normalize_gtin(value)


def test_long_input_is_cut_in_the_message() -> None:
    with pytest.raises(InvalidGtin) as raised:
        normalize_gtin("x" * 10_000)
    assert len(str(raised.value)) < 120


def test_invalid_gtin_is_a_value_error() -> None:
    assert issubclass(InvalidGtin, ValueError)
