"""Machine-readable reasons why a message or event was dead-lettered instead of stored."""

from enum import StrEnum


class DeadLetterReason(StrEnum):
    """Why a payload or one of its events could not be stored (SPEC §5)."""

    INVALID_JSON = "invalid_json"
    """Not UTF-8, or not JSON."""
    TOO_LARGE = "too_large"
    """Payload over MAX_PAYLOAD_BYTES."""
    SCHEMA = "schema"
    """Valid JSON that breaks the event or payload rules (missing field, wrong type…)."""
    INVALID_GTIN = "invalid_gtin"
    """GTIN of wrong length, with a non-digit, or with a wrong check digit."""
    INVALID_SERIAL = "invalid_serial"
    """Serial empty, over 20 characters, or outside the GS1 AI (21) character set."""
    INVALID_CODE = "invalid_code"
    """Scanned `code` is neither GTIN digits nor a GS1 Digital Link URI with a GTIN or GRAI."""
    INVALID_GRAI = "invalid_grai"
    """GRAI with a bad asset type (length, padding digit, check digit) or serial."""
    NAIVE_TIMESTAMP = "naive_timestamp"
    """`ts` has no UTC offset."""
    CLOCK_SKEW = "clock_skew"
    """`ts` is more than MAX_CLOCK_SKEW ahead of the receiver's clock."""
    UNKNOWN_DEVICE = "unknown_device"
    """The topic's device is not registered (decided by the ingest worker)."""
    DEVICE_MISMATCH = "device_mismatch"
    """The payload's `device_id` differs from the topic's."""
    RETAINED = "retained"
    """A retained copy the broker replayed on an events topic, not a new publication."""
    INTERNAL_ERROR = "internal_error"
    """The worker failed on this message (a bug, logged with its traceback); replayable."""
