"""EPCIS 2.0 ObjectEvents in: a captured document mapped back to SPEC §5 event payloads
(one per item), checked the way the ingest worker will check them, and cut into MQTT
payloads per device."""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg

from api.epcis.identifiers import (
    DEVICES_PATH,
    SITES_PATH,
    InvalidEpc,
    device_of,
    event_uuid,
    parse_class,
    parse_item,
    site_of,
)
from api.epcis.vocabulary import ATTRS, REASON, SEQ, STREAM, Vocabulary
from api.problems import Problem
from schemas.api_keys import Principal, Role
from schemas.dead_letters import DeadLetterReason
from schemas.events import (
    MAX_BATCH_EVENTS,
    MAX_PAYLOAD_BYTES,
    MAX_QTY,
    STREAM_REUSE,
    EventType,
    RejectReason,
)
from schemas.gtin import shown
from schemas.messages import Rejected, parse_event
from schemas.named_queries import load_queries

_QUERIES = load_queries("api.epcis", "queries.sql")

MAX_CAPTURE_BYTES = 4 * 1024 * 1024
"""Largest capture body (bytes), advertised as GS1-EPCIS-Capture-File-Size-Limit."""
MAX_CAPTURE_EVENTS = 10_000
"""Most EPCIS events one capture may hold, advertised as GS1-EPCIS-Capture-Limit; also the
most looptrack events (items) they may make."""
MAX_ERRORS_IN_DETAIL = 5
"""Errors spelled out in a problem's `detail`; all of them are in its `errors`."""

_ACTIONS = ("OBSERVE", "ADD", "DELETE")
_has_offset = re.compile(r".*([Zz]|[+-][0-9]{2}:[0-9]{2})").fullmatch
# Dead-letter reasons that come from eventTime, and from an item's identifier.
_TIME_REASONS = frozenset({DeadLetterReason.NAIVE_TIMESTAMP, DeadLetterReason.CLOCK_SKEW})
_KEY_REASONS = frozenset({DeadLetterReason.INVALID_GTIN, DeadLetterReason.INVALID_SERIAL})


class ErrorBehaviour(StrEnum):
    """GS1-Capture-Error-Behaviour: all or nothing (the standard's default), or as many
    events as possible."""

    ROLLBACK = "rollback"
    PROCEED = "proceed"


@dataclass(frozen=True, slots=True)
class CaptureError:
    """Why one EPCIS event (at `index` in the eventList) is not stored."""

    index: int
    field: str
    """The event's field at fault ("bizStep", "epcList[1]"), or "" for the whole event."""
    message: str
    dead_letter_reason: str | None = None
    """When set, the event is relayed anyway (proceed) and the worker dead-letters it."""
    event_id: str | None = None
    """The looptrack event_id, for an event that is relayed."""

    @property
    def path(self) -> str:
        """Where in the document, e.g. "eventList[3].bizStep"."""
        event = f"eventList[{self.index}]"
        return f"{event}.{self.field}" if self.field else event


@dataclass(frozen=True, slots=True)
class CaptureDocument:
    """The events of a captured document and the JSON-LD prefixes it declares."""

    events: list[Any]
    prefixes: dict[str, str]


@dataclass(slots=True)
class Draft:
    """One EPCIS event mapped to looptrack payloads, before its device is checked."""

    index: int
    read_point: str | None  # our device id from readPoint, None when there is none
    site_id: str | None  # our site id from bizLocation, None when there is none
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(the field an item came from, e.g. "epcList[0]"; its SPEC §5 payload)"""


@dataclass(frozen=True, slots=True)
class Mapped:
    """One looptrack event payload ready for its device's topic."""

    index: int
    source: str
    device_id: str
    payload: dict[str, Any]


def _document_problem(detail: str) -> Problem:
    return Problem(422, "epcis-document", detail)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _prefixes(context: Any) -> dict[str, str]:
    """The prefix → IRI terms of a JSON-LD @context (string terms only)."""
    entries = context if isinstance(context, list) else [context]
    return {
        term: iri
        for entry in entries
        if isinstance(entry, dict)
        for term, iri in entry.items()
        if isinstance(term, str) and isinstance(iri, str) and not term.startswith("@")
    }


def _bounded(events: list[Any]) -> list[Any]:
    if len(events) > MAX_CAPTURE_EVENTS:
        raise Problem(
            413, "too-large", f"{len(events)} events, at most {MAX_CAPTURE_EVENTS} per capture"
        )
    return events


def read_document(raw: bytes) -> CaptureDocument:
    """The events of an EPCISDocument, an EPCISQueryDocument (as GET /v1/epcis/events
    answers), a single event, or a bare list of events. 422 when it is none of these."""
    try:
        document = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # also bytes that are not UTF-8
        raise _document_problem(f"not valid UTF-8 JSON: {exc}") from None
    if isinstance(document, list):
        return CaptureDocument(_bounded(document), {})
    if not isinstance(document, dict):
        raise _document_problem("expected an EPCISDocument, an EPCISQueryDocument or an event")
    kind = document.get("type")
    prefixes = _prefixes(document.get("@context"))
    body = document.get("epcisBody")
    if kind == "EPCISDocument":
        events = body.get("eventList") if isinstance(body, dict) else None
        where = "epcisBody.eventList"
    elif kind == "EPCISQueryDocument":
        results = body.get("queryResults") if isinstance(body, dict) else None
        results_body = results.get("resultsBody") if isinstance(results, dict) else None
        events = results_body.get("eventList") if isinstance(results_body, dict) else None
        where = "epcisBody.queryResults.resultsBody.eventList"
    elif isinstance(kind, str) and kind.endswith("Event"):
        return CaptureDocument([document], prefixes)
    else:
        raise _document_problem(
            f"type {kind!r}: expected EPCISDocument, EPCISQueryDocument or an event type"
        )
    if not isinstance(events, list):
        raise _document_problem(f"{where}: missing or not an array")
    return CaptureDocument(_bounded(events), prefixes)


class _EventErrors:
    """The errors found in one EPCIS event."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.found: list[CaptureError] = []

    def add(self, field_name: str, message: str) -> None:
        self.found.append(CaptureError(self.index, field_name, message))


def _string(obj: dict[str, Any], name: str, errors: _EventErrors) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.add(name, "must be a string")
        return None
    return value


def _id_of(obj: dict[str, Any], name: str, errors: _EventErrors) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        errors.add(name, 'must be an object {"id": "<URI>"}')
        return None
    return str(value["id"])


def _event_time(event: dict[str, Any], errors: _EventErrors) -> str | None:
    value = _string(event, "eventTime", errors)
    if value is None:
        if event.get("eventTime") is None:
            errors.add("eventTime", "missing")
        return None
    offset = event.get("eventTimeZoneOffset")
    if not _has_offset(value) and isinstance(offset, str):
        return value + offset  # EPCIS 1.x style: the offset only in eventTimeZoneOffset
    return value


def _base_id(event: dict[str, Any], errors: _EventErrors) -> uuid.UUID | None:
    event_id = event.get("eventID")
    if event_id is not None and not isinstance(event_id, str):
        errors.add("eventID", "must be a string (a URI)")
        return None
    if event_id is None or event_id.startswith("_:"):
        # No identity, or a blank node that names the event only within its document: the
        # event's content is its identity, so capturing the same event again is harmless.
        content = {k: v for k, v in event.items() if k not in ("eventID", "recordTime")}
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return event_uuid(f"content:{canonical}")
    try:
        return event_uuid(event_id)
    except InvalidEpc as exc:
        errors.add("eventID", str(exc))
        return None


def _items(event: dict[str, Any], errors: _EventErrors) -> list[tuple[str, str, str | None, int]]:
    """(field, item class, serial, qty) of each item: epcList entries, then
    quantityList's."""
    items: list[tuple[str, str, str | None, int]] = []
    epc_list = event.get("epcList", [])
    quantity_list = event.get("quantityList", [])
    if not isinstance(epc_list, list):
        errors.add("epcList", "must be an array of URIs")
        epc_list = []
    if not isinstance(quantity_list, list):
        errors.add("quantityList", "must be an array")
        quantity_list = []
    for j, epc in enumerate(epc_list):
        where = f"epcList[{j}]"
        if not isinstance(epc, str):
            errors.add(where, "must be a URI string")
            continue
        try:
            item_class, serial = parse_item(epc)
        except InvalidEpc as exc:
            errors.add(where, str(exc))
            continue
        items.append((where, item_class, serial, 1))
    for j, element in enumerate(quantity_list):
        where = f"quantityList[{j}]"
        if not isinstance(element, dict) or not isinstance(element.get("epcClass"), str):
            errors.add(where, 'must be an object {"epcClass": "<URI>", "quantity": n}')
            continue
        try:
            item_class = parse_class(element["epcClass"])
        except InvalidEpc as exc:
            errors.add(f"{where}.epcClass", str(exc))
            continue
        if element.get("uom") is not None:
            errors.add(f"{where}.uom", "looptrack counts packages: give quantity without uom")
            continue
        quantity = element.get("quantity")
        if isinstance(quantity, float) and quantity.is_integer():
            quantity = int(quantity)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            errors.add(f"{where}.quantity", f"{quantity!r}: a whole number of packages expected")
            continue
        if not 1 <= quantity <= MAX_QTY:
            errors.add(f"{where}.quantity", f"{quantity}: 1 to {MAX_QTY} expected")
            continue
        items.append((where, item_class, None, quantity))
    if not items and not errors.found:
        errors.add("epcList", "no item: an ObjectEvent needs epcList or quantityList")
    return items


def _extensions(
    event: dict[str, Any], vocabulary: Vocabulary, prefixes: dict[str, str]
) -> dict[str, tuple[str, Any]]:
    """Our extension fields by name (reason, stream, seq, attrs): (key as written, value)."""
    ours = {vocabulary.namespace + name: name for name in (REASON, STREAM, SEQ, ATTRS)}
    found = {}
    for key, value in event.items():
        name = ours.get(vocabulary.expand(key, prefixes)) if isinstance(key, str) else None
        if name is not None:
            found[name] = (key, value)
    return found


def _stream(
    disposition: str | None,
    extension: tuple[str, Any] | None,
    errors: _EventErrors,
) -> Any:
    """A sorted event's stream: its extension field, else "reuse" for disposition
    available; and the two must agree."""
    stream = extension[1] if extension else None
    if disposition == "available":
        if stream is None:
            return STREAM_REUSE
        if stream != STREAM_REUSE:
            errors.add("disposition", f"available (back into the loop), but stream {stream!r}")
    elif disposition == "disposed":
        if stream is None:
            errors.add(
                "looptrack:stream",
                "a sorted event disposed to a material stream needs the stream's name",
            )
        elif stream == STREAM_REUSE:
            errors.add("disposition", "disposed, but stream 'reuse' (back into the loop)")
    elif stream is None:
        errors.add(
            "looptrack:stream",
            "a sorted event needs its stream (or disposition available for reuse)",
        )
    return stream


def _type_and_disposition(
    event: dict[str, Any], prefixes: dict[str, str], vocabulary: Vocabulary, errors: _EventErrors
) -> tuple[EventType | None, str | None]:
    """The looptrack type of the event's bizStep, and its disposition (checked against it)."""
    step = None
    biz_step = _string(event, "bizStep", errors)
    if biz_step is None and event.get("bizStep") is None:
        errors.add("bizStep", "missing: it decides the looptrack event type (docs/epcis.md)")
    elif biz_step is not None:
        step = vocabulary.captured_step(biz_step, prefixes)
        if step is None:
            errors.add("bizStep", f"{shown(biz_step)} has no looptrack event type (docs/epcis.md)")
    disposition = _string(event, "disposition", errors)
    if disposition is not None:
        disposition = vocabulary.disposition_name(disposition, prefixes)
        if step is not None and disposition not in step[1]:
            errors.add(
                "disposition",
                f"{shown(disposition)}: a {biz_step} event has {' or '.join(step[1])}",
            )
    return (None if step is None else step[0]), disposition


def _place(
    event: dict[str, Any], base_url: str, errors: _EventErrors
) -> tuple[str | None, str | None]:
    """Our device id from readPoint and site id from bizLocation (None where absent)."""
    base = base_url.rstrip("/")
    places: list[str | None] = []
    for field_name, local_id, noun, path in (
        ("readPoint", device_of, "device", DEVICES_PATH),
        ("bizLocation", site_of, "site", SITES_PATH),
    ):
        uri = _id_of(event, field_name, errors)
        place = None if uri is None else local_id(base_url, uri)
        if uri is not None and place is None:
            errors.add(
                f"{field_name}.id",
                f"{shown(uri)} is not a looptrack {noun} ({base}{path}<id>, or the SGLN of a "
                f"{noun} registered as sgln-<company prefix>.<location ref>.<extension>)",
            )
        places.append(place)
    device_id, site_id = places
    return device_id, site_id


def _extra_fields(
    type_: EventType | None,
    disposition: str | None,
    extensions: dict[str, tuple[str, Any]],
    errors: _EventErrors,
) -> dict[str, Any]:
    """reason, stream, seq and attrs of the payload. A field the type does not allow is
    passed on: the worker's rules refuse it, as they would from a device."""
    extra = {name: value for name, (_, value) in extensions.items()}
    if type_ is EventType.REJECTED and REASON not in extra:
        # Another system's non-conformant return gives no reason of ours.
        extra[REASON] = RejectReason.OTHER.value
    if type_ is EventType.SORTED:
        extra[STREAM] = _stream(disposition, extensions.get(STREAM), errors)
    return extra


def map_event(
    event: Any, index: int, prefixes: dict[str, str], vocabulary: Vocabulary, base_url: str
) -> Draft | list[CaptureError]:
    """One EPCIS event as looptrack payloads (its device still to be checked), or why it
    cannot be: every error found, each naming its field."""
    errors = _EventErrors(index)
    if not isinstance(event, dict):
        errors.add("", "an event must be a JSON object")
        return errors.found
    if event.get("type") != "ObjectEvent":
        errors.add("type", f"{event.get('type')!r}: only ObjectEvents have looptrack events")
        return errors.found
    prefixes = {**prefixes, **_prefixes(event.get("@context"))}
    if "errorDeclaration" in event:
        errors.add("errorDeclaration", "looptrack does not retract stored events")
    if event.get("action") not in _ACTIONS:
        errors.add("action", f"{event.get('action')!r}: one of {', '.join(_ACTIONS)} expected")
    type_, disposition = _type_and_disposition(event, prefixes, vocabulary, errors)
    ts = _event_time(event, errors)
    base_id = _base_id(event, errors)
    device_id, site_id = _place(event, base_url, errors)
    items = _items(event, errors)
    extra = _extra_fields(type_, disposition, _extensions(event, vocabulary, prefixes), errors)
    if errors.found or type_ is None or ts is None or base_id is None:
        return errors.found
    draft = Draft(index, device_id, site_id)
    for source, item_class, serial, qty in items:
        # One item keeps the eventID's UUID (so an exported event comes back as itself);
        # several each get one derived from it and the item, the same on every capture.
        # An EPC is unique within epcList whatever its position; quantityList entries are
        # told apart by position (two lots of one product).
        name = f"{item_class}/{serial}" if serial is not None else f"{source}:{item_class}"
        event_id = base_id if len(items) == 1 else uuid.uuid5(base_id, name)
        # As an event's dump says it: the item class in `gtin` (Event.item_class's alias).
        key = {"gtin": item_class, "serial": serial} if serial is not None else {"gtin": item_class}
        payload = {"event_id": str(event_id), "ts": ts, "type": type_.value, **key, "qty": qty}
        draft.items.append((source, {**payload, **extra}))
    return draft


def map_document(
    document: CaptureDocument, vocabulary: Vocabulary, base_url: str
) -> tuple[list[Draft], list[CaptureError]]:
    """Every event of the document mapped, and the errors of those that cannot be."""
    drafts: list[Draft] = []
    errors: list[CaptureError] = []
    for index, event in enumerate(document.events):
        outcome = map_event(event, index, document.prefixes, vocabulary, base_url)
        if isinstance(outcome, Draft):
            drafts.append(outcome)
        else:
            errors.extend(outcome)
    count = sum(len(d.items) for d in drafts)
    if count > MAX_CAPTURE_EVENTS:
        raise Problem(
            413,
            "too-large",
            f"the document makes {count} looptrack events, "
            f"at most {MAX_CAPTURE_EVENTS} per capture",
        )
    return drafts, errors


def read_points(drafts: list[Draft]) -> set[str]:
    """The devices the drafts name, to look up in the registry."""
    return {d.read_point for d in drafts if d.read_point is not None}


def assign_devices(
    drafts: list[Draft], caller: Principal, sites: dict[str, str], base_url: str
) -> tuple[list[Mapped], list[CaptureError]]:
    """Each draft's device, checked: a device key captures as its own device only (a
    missing readPoint is that device); other keys must name a registered device, and a
    bizLocation must be the device's site. `sites` maps registered device ids to sites.
    403 for a device key naming another device."""
    mapped: list[Mapped] = []
    errors: list[CaptureError] = []
    for draft in drafts:
        device_id = draft.read_point
        if caller.role is Role.DEVICE:
            if device_id is not None and device_id != caller.device_id:
                raise Problem(
                    403,
                    "forbidden",
                    f"this key captures as device "
                    f"{caller.device_id!r} only; eventList[{draft.index}].readPoint "
                    f"is {device_id!r}",
                )
            device_id = caller.device_id
        if device_id is None:
            errors.append(
                CaptureError(
                    draft.index,
                    "readPoint",
                    "missing: looptrack stores "
                    f'a device\'s events; give {{"id": "{base_url.rstrip("/")}'
                    '/devices/<id>"}',
                )
            )
            continue
        site_id = sites.get(device_id)
        if site_id is None:
            errors.append(
                CaptureError(draft.index, "readPoint.id", f"device {device_id!r} is not registered")
            )
            continue
        if draft.site_id is not None and draft.site_id != site_id:
            errors.append(
                CaptureError(
                    draft.index,
                    "bizLocation.id",
                    f"site {draft.site_id!r}, but device {device_id!r} is at site {site_id!r}",
                )
            )
            continue
        mapped.extend(Mapped(draft.index, s, device_id, p) for s, p in draft.items)
    return mapped, errors


def _field_of(rejected: Rejected, source: str) -> str:
    if rejected.reason in _TIME_REASONS:
        return "eventTime"
    if rejected.reason in _KEY_REASONS:
        return source
    return ""


def worker_verdicts(mapped: list[Mapped], now: datetime) -> list[CaptureError]:
    """What the ingest worker will refuse (dead-letter), by the same rules it applies,
    checked at `now` (aware): one error per refused payload."""
    errors = []
    for item in mapped:
        outcome = parse_event(item.payload, item.device_id, now)
        if isinstance(outcome, Rejected):
            errors.append(
                CaptureError(
                    item.index,
                    _field_of(outcome, item.source),
                    outcome.detail,
                    dead_letter_reason=outcome.reason.value,
                    event_id=item.payload["event_id"],
                )
            )
    return errors


def payloads(mapped: list[Mapped]) -> Iterator[tuple[str, bytes]]:
    """(device id, {"events": [...]} payload) messages carrying every mapped event, in
    document order per device, each within the MQTT contract's limits (SPEC §5)."""
    by_device: dict[str, list[bytes]] = defaultdict(list)
    for item in mapped:
        by_device[item.device_id].append(
            json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
        )
    frame = len(b'{"events":[]}')
    for device_id, encoded in by_device.items():
        batch: list[bytes] = []
        size = frame
        for event in encoded:
            full = len(batch) == MAX_BATCH_EVENTS or size + len(event) + 1 > MAX_PAYLOAD_BYTES
            if batch and full:
                yield device_id, b'{"events":[' + b",".join(batch) + b"]}"
                batch, size = [], frame
            batch.append(event)
            size += len(event) + 1
        if batch:
            yield device_id, b'{"events":[' + b",".join(batch) + b"]}"


def summary(errors: list[CaptureError]) -> str:
    """A problem `detail` naming the first few errors."""
    shown_errors = "; ".join(f"{e.path}: {e.message}" for e in errors[:MAX_ERRORS_IN_DETAIL])
    more = len(errors) - MAX_ERRORS_IN_DETAIL
    return shown_errors + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class CapturePlan:
    """What a capture will do: the payloads to relay, the events that cannot be relayed,
    and the relayed ones the worker will dead-letter."""

    mapped: list[Mapped]
    errors: list[CaptureError]
    refused: list[CaptureError]

    @property
    def all_errors(self) -> list[CaptureError]:
        """Every error, in document order."""
        return sorted([*self.errors, *self.refused], key=lambda e: e.index)


def registered_sites(conn: psycopg.Connection[Any], device_ids: set[str]) -> dict[str, str]:
    """The sites of the registered devices among `device_ids`."""
    rows = conn.execute(_QUERIES["devices"], {"ids": sorted(device_ids)}).fetchall()
    return {device_id: site_id for device_id, site_id in rows}


def plan_capture(
    document: CaptureDocument,
    caller: Principal,
    vocabulary: Vocabulary,
    base_url: str,
    sites_of: Callable[[set[str]], dict[str, str]],
    now: datetime,
) -> CapturePlan:
    """Map the document's events, check their devices (`sites_of` looks up registered
    devices' sites) and what the worker will make of them at `now` (aware)."""
    drafts, errors = map_document(document, vocabulary, base_url)
    named = read_points(drafts)
    if caller.device_id is not None:
        named.add(caller.device_id)
    mapped, device_errors = assign_devices(drafts, caller, sites_of(named), base_url)
    return CapturePlan(mapped, [*errors, *device_errors], worker_verdicts(mapped, now))


def rollback_problem(plan: CapturePlan, event_count: int) -> Problem:
    """The 422 of a rollback capture with errors: nothing was relayed."""
    errors = plan.all_errors
    failed = len({e.index for e in errors})
    return Problem(
        422,
        "epcis-capture",
        f"{failed} of {event_count} events cannot be stored, so none was captured "
        f"(GS1-Capture-Error-Behaviour: rollback): {summary(errors)}",
        errors=[{"field": e.path, "message": e.message} for e in errors],
    )


def _job_error(error: CaptureError) -> dict[str, Any]:
    # RFC 9457 members, as the standard's capture job lists its errors, then ours.
    return {
        "type": "/problems/epcis-event",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": error.message,
        "field": error.path,
        "eventID": None if error.event_id is None else f"urn:uuid:{error.event_id}",
        "deadLetterReason": error.dead_letter_reason,
    }


def capture_job(
    plan: CapturePlan, behaviour: ErrorBehaviour, *, running: bool, created: datetime
) -> dict[str, Any]:
    """The standard's capture job document as known on acceptance (looptrack keeps no
    job to poll): `eventIDs` the worker will store, `errors` what it will not."""
    refused = {e.event_id for e in plan.refused}
    return {
        "captureID": str(uuid.uuid4()),
        "createdAt": created.isoformat(),
        "running": running,
        "success": not plan.all_errors,
        "captureErrorBehaviour": behaviour.value,
        "eventIDs": [
            f"urn:uuid:{m.payload['event_id']}"
            for m in plan.mapped
            if m.payload["event_id"] not in refused
        ],
        "errors": [_job_error(e) for e in plan.all_errors],
    }
