"""Dead letters: list them, read one, replay them through the broker (`service`), and
their endpoints under /v1/dead-letters (`routes`)."""

from api.dead_letters.service import (
    MAX_REPLAY,
    PREVIEW_BYTES,
    DeadLetterFilter,
    get_dead_letter,
    list_dead_letters,
    replay,
    stored_dead_letter,
)

__all__ = [
    "MAX_REPLAY",
    "PREVIEW_BYTES",
    "DeadLetterFilter",
    "get_dead_letter",
    "list_dead_letters",
    "replay",
    "stored_dead_letter",
]
