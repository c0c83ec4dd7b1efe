"""GS1 GTIN validation: mod-10 check digit and normalisation to 14 digits."""

from __future__ import annotations

from functools import lru_cache

GTIN_LENGTHS = (8, 12, 13, 14)
"""Digit counts of GTIN-8, GTIN-12 (UPC-A), GTIN-13 (EAN) and GTIN-14."""

# Error messages quote the offending input; cap it so a hostile payload cannot blow up logs.
_MAX_SHOWN = 80


class InvalidGtin(ValueError):
    """A GTIN has the wrong length, a non-digit, or a wrong check digit."""


def shown(value: str) -> str:
    """Quote `value` for an error message, cut to a bounded length."""
    if len(value) > _MAX_SHOWN:
        return repr(value[:_MAX_SHOWN]) + "…"
    return repr(value)


def is_ascii_digits(value: str) -> bool:
    """Return whether `value` is non-empty and made only of the digits 0-9."""
    # str.isdigit alone accepts other scripts' digits ("٣") and superscripts ("²").
    return value.isascii() and value.isdigit()


def gtin_check_digit(body: str) -> str:
    """Return the GS1 mod-10 check digit for `body` (the GTIN's digits without its last one).

    Weights alternate 3, 1, 3, … starting from the rightmost digit of `body`, so leading
    zeros do not change the result.
    """
    if not is_ascii_digits(body):
        raise InvalidGtin(f"gtin body {shown(body)}: only digits 0-9 allowed")
    # Summing the ASCII codes and subtracting "0" (48) per digit is several times faster
    # than int() per character, and this runs for every ingested event.
    codes = body.encode("ascii")
    tripled, single = codes[-1::-2], codes[-2::-2]
    total = 3 * (sum(tripled) - 48 * len(tripled)) + sum(single) - 48 * len(single)
    return str(-total % 10)


# A site handles a few hundred products at most, so the same GTINs recur in nearly every
# message; a cache hit costs a tenth of the check-digit arithmetic. Errors are not cached.
@lru_cache(maxsize=4096)
def normalize_gtin(value: str) -> str:
    """Return `value` (8, 12, 13 or 14 ASCII digits) as a 14-digit GTIN, left-padded with zeros.

    Raises InvalidGtin naming the problem: non-digit, wrong length, or the check digit that
    was expected.
    """
    if not is_ascii_digits(value):
        raise InvalidGtin(f"gtin {shown(value)}: only digits 0-9 allowed")
    if len(value) not in GTIN_LENGTHS:
        raise InvalidGtin(f"gtin {shown(value)}: {len(value)} digits, expected 8, 12, 13 or 14")
    gtin14 = value.zfill(14)
    expected = gtin_check_digit(gtin14[:13])
    if gtin14[13] != expected:
        raise InvalidGtin(f"gtin {value}: check digit should be {expected}")
    return gtin14
