"""Events: the stored ones, newest first (`service`, `routes`: GET /v1/events), and devices
posting theirs over HTTP, relayed to the broker (`device_routes`)."""

from api.events.service import decode_cursor, encode_cursor, stored_events

__all__ = ["decode_cursor", "encode_cursor", "stored_events"]
