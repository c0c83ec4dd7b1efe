"""Stored events as EPCIS 2.0 ObjectEvents: the standard's query parameters turned into a
filter, one page of events read, and the EPCISQueryDocument that carries them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.epcis.identifiers import (
    EpcPattern,
    InvalidEpc,
    class_uri,
    device_of,
    device_uri,
    event_uuid,
    item_uri,
    parse_class,
    parse_pattern,
    site_of,
    site_uri,
)
from api.epcis.vocabulary import ATTRS, REASON, SEQ, STREAM, Vocabulary
from api.problems import Problem
from schemas.events import EventType
from schemas.named_queries import load_queries

_QUERIES = load_queries("api.epcis", "queries.sql")

QUERY_NAME = "SimpleEventQuery"
"""The standard's name of the event query that GET /events answers."""
SCHEMA_VERSION = "2.0"
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
"""The EPCIS 2.0 event types; looptrack's events are all ObjectEvents."""
ACTIONS = ("OBSERVE", "ADD", "DELETE")
VALUE_SEPARATOR = "|"
"""Separates several values of one query parameter (REST binding: EQ_bizStep=a|b)."""
MAX_VALUES = 100
"""Most values one query parameter may carry."""
MAX_VALUE_LENGTH = 2048
"""Longest value (characters): Digital Link URIs and eventIDs are far shorter."""

# Parameters given as lists of values, in the order of the standard's query schema.
LIST_PARAMETERS = (
    "eventType",
    "EQ_action",
    "EQ_bizStep",
    "EQ_disposition",
    "EQ_readPoint",
    "EQ_bizLocation",
    "MATCH_epc",
    "MATCH_anyEPC",
    "MATCH_epcClass",
    "MATCH_anyEPCClass",
    "EQ_eventID",
)
SUPPORTED_PARAMETERS = frozenset(
    {*LIST_PARAMETERS, "GE_eventTime", "LT_eventTime", "perPage", "nextPageToken"}
)


def _query_problem(detail: str) -> Problem:
    return Problem(422, "epcis-query", detail)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which stored events a query selects; None for a filter not given. Every filter
    must hold (the standard's parameters are a conjunction)."""

    from_: datetime | None = None
    to: datetime | None = None
    types: frozenset[EventType] | None = None
    sorted_to_reuse: bool | None = None
    event_ids: list[uuid.UUID] | None = None
    device_ids: list[str] | None = None
    site_ids: list[str] | None = None
    epcs: list[EpcPattern] | None = None
    class_item_classes: list[str] | None = None

    @property
    def selects_nothing(self) -> bool:
        """True when some filter cannot match any stored event (e.g. eventType
        AggregationEvent), so the database need not be asked."""
        filters: tuple[frozenset[Any] | list[Any] | None, ...] = (
            self.types,
            self.event_ids,
            self.device_ids,
            self.site_ids,
            self.epcs,
            self.class_item_classes,
        )
        return any(values is not None and not values for values in filters)

    def parameters(self) -> dict[str, Any]:
        """The named query's parameters (without brand, cursor and limit)."""
        return {
            "from": self.from_,
            "to": self.to,
            "types": None if self.types is None else sorted(t.value for t in self.types),
            "sorted_to_reuse": self.sorted_to_reuse,
            "event_ids": self.event_ids,
            "device_ids": self.device_ids,
            "site_ids": self.site_ids,
            "epc_item_classes": None if self.epcs is None else [p.item_class for p in self.epcs],
            "epc_serials": None if self.epcs is None else [p.serial for p in self.epcs],
            "unserialised_item_classes": self.class_item_classes,
        }


def split_values(name: str, raw: list[str]) -> list[str]:
    """The values of a list parameter, given repeated and/or separated by `|`."""
    values = [value for item in raw for value in item.split(VALUE_SEPARATOR)]
    if len(values) > MAX_VALUES:
        raise _query_problem(f"{name}: {len(values)} values, at most {MAX_VALUES}")
    for value in values:
        if not value:
            raise _query_problem(f"{name}: empty value")
        if len(value) > MAX_VALUE_LENGTH:
            raise _query_problem(
                f"{name}: a value of {len(value)} characters, at most {MAX_VALUE_LENGTH}"
            )
    return values


def _intersect(
    current: frozenset[EventType] | None, allowed: set[EventType] | frozenset[EventType]
) -> frozenset[EventType]:
    return frozenset(allowed) if current is None else current & allowed


def _intersect_epcs(a: list[EpcPattern], b: list[EpcPattern]) -> list[EpcPattern]:
    # Both MATCH_epc and MATCH_anyEPC hold for an event with one EPC when it matches a
    # pattern of each: the pairwise intersections of the two lists.
    common = set()
    for x in a:
        for y in b:
            if x.item_class == y.item_class and (
                x.serial is None or y.serial is None or x.serial == y.serial
            ):
                serial = x.serial if x.serial is not None else y.serial
                common.add(EpcPattern(x.item_class, serial))
    return sorted(common, key=lambda p: (p.item_class, p.serial or ""))


def event_query(
    lists: dict[str, list[str]],
    from_: datetime | None,
    to: datetime | None,
    vocabulary: Vocabulary,
    base_url: str,
) -> EventQuery:
    """The filter of the standard's query parameters: `lists` maps each list parameter
    given to its values (already split). A value that names nothing looptrack stores
    (a bizStep such as shipping, another server's readPoint) matches nothing; a value that
    is malformed is a 422 naming the parameter."""
    if from_ is not None and to is not None and from_ >= to:
        raise _query_problem("GE_eventTime must be before LT_eventTime")
    types: frozenset[EventType] | None = None
    sorted_to_reuse: bool | None = None
    no_prefixes: dict[str, str] = {}
    if (names := lists.get("eventType")) is not None:
        unknown = [n for n in names if n not in EVENT_TYPES]
        if unknown:
            raise _query_problem(
                f"eventType: {unknown[0]!r} is not an EPCIS event type ({', '.join(EVENT_TYPES)})"
            )
        types = _intersect(types, set(EventType) if "ObjectEvent" in names else set())
    if (actions := lists.get("EQ_action")) is not None:
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown:
            raise _query_problem(f"EQ_action: {unknown[0]!r} is not one of {', '.join(ACTIONS)}")
        allowed: set[EventType] = set()
        if "ADD" in actions:
            allowed.add(EventType.COMMISSIONED)
        if "OBSERVE" in actions:
            allowed |= set(EventType) - {EventType.COMMISSIONED}
        types = _intersect(types, allowed)
    if (steps := lists.get("EQ_bizStep")) is not None:
        found = {vocabulary.event_type(step, no_prefixes) for step in steps}
        types = _intersect(types, {t for t in found if t is not None})
    if (dispositions := lists.get("EQ_disposition")) is not None:
        matches = [vocabulary.disposition_match(d, no_prefixes) for d in dispositions]
        types = _intersect(types, set().union(*(m.types for m in matches)))
        reuse = {m.sorted_to_reuse for m in matches} - {None}
        sorted_to_reuse = reuse.pop() if len(reuse) == 1 else None
    event_ids = None
    if (ids := lists.get("EQ_eventID")) is not None:
        try:
            event_ids = [event_uuid(i) for i in ids]
        except InvalidEpc as exc:
            raise _query_problem(f"EQ_eventID: {exc}") from None
    device_ids = None
    if (read_points := lists.get("EQ_readPoint")) is not None:
        device_ids = [d for d in (device_of(base_url, r) for r in read_points) if d is not None]
    site_ids = None
    if (locations := lists.get("EQ_bizLocation")) is not None:
        site_ids = [s for s in (site_of(base_url, loc) for loc in locations) if s is not None]
    epcs: list[EpcPattern] | None = None
    for name in ("MATCH_epc", "MATCH_anyEPC"):
        if (values := lists.get(name)) is not None:
            try:
                patterns = [parse_pattern(v) for v in values]
            except InvalidEpc as exc:
                raise _query_problem(f"{name}: {exc}") from None
            epcs = patterns if epcs is None else _intersect_epcs(epcs, patterns)
    class_item_classes: list[str] | None = None
    for name in ("MATCH_epcClass", "MATCH_anyEPCClass"):
        if (values := lists.get(name)) is not None:
            try:
                classes = {parse_class(v) for v in values}
            except InvalidEpc as exc:
                raise _query_problem(f"{name}: {exc}") from None
            class_item_classes = sorted(
                classes if class_item_classes is None else classes & set(class_item_classes)
            )
    return EventQuery(
        from_=from_,
        to=to,
        types=types,
        sorted_to_reuse=sorted_to_reuse,
        event_ids=event_ids,
        device_ids=device_ids,
        site_ids=site_ids,
        epcs=epcs,
        class_item_classes=class_item_classes,
    )


def find_events(
    conn: psycopg.Connection[Any],
    query: EventQuery,
    brand: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    per_page: int,
) -> tuple[list[dict[str, Any]], tuple[datetime, uuid.UUID] | None]:
    """One page of stored events (newest first) after the keyset `after`, and the keyset
    of its last event when more follow (None on the last page). For a brand (`brand`
    given) without readPoint and bizLocation: device and site are the operator's, so a
    brand may not filter by them either (api.dependencies.without_places)."""
    if brand is not None and (query.device_ids is not None or query.site_ids is not None):
        raise Problem(
            403,
            "forbidden",
            "device and site ids are the operator's: a brand key cannot query by "
            "EQ_readPoint or EQ_bizLocation",
        )
    if query.selects_nothing:
        return [], None
    after_ts, after_id = after if after else (None, None)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            _QUERIES["object_events"],
            {
                **query.parameters(),
                "brand": brand,
                "after_ts": after_ts,
                "after_id": after_id,
                # One more than the page: whether a next page exists, without an empty one.
                "limit": per_page + 1,
            },
        )
        .fetchall()
    )
    if brand is not None:
        rows = [{**row, "device_id": None, "site_id": None} for row in rows]
    if len(rows) <= per_page:
        return rows, None
    last = rows[per_page - 1]
    return rows[:per_page], (last["ts"], last["event_id"])


def _offset_seconds(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None, "stored times are aware"
    return int(offset.total_seconds())


def _seconds_off(moment: datetime) -> bool:
    return _offset_seconds(moment) % 60 != 0


def _offset(moment: datetime) -> str:
    minutes = _offset_seconds(moment) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def object_event(
    row: dict[str, Any], vocabulary: Vocabulary, base_url: str, zone: tzinfo
) -> dict[str, Any]:
    """One stored event (a row of `object_events`) as an EPCIS 2.0 ObjectEvent; `zone`
    gives eventTime's offset (the deployment's LOOPTRACK_TIMEZONE)."""
    type_ = EventType(row["type"])
    ts = row["ts"].astimezone(zone)
    if _seconds_off(ts):
        ts = ts.astimezone(UTC)  # a local mean time of old; EPCIS offsets are whole minutes
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{row['event_id']}",
        "eventTime": ts.isoformat(),
        "eventTimeZoneOffset": _offset(ts),
        "recordTime": row["received_at"].astimezone(UTC).isoformat(),
        # CBV: commissioning creates the identifier (ADD); everything else observes it.
        "action": "ADD" if type_ is EventType.COMMISSIONED else "OBSERVE",
        "bizStep": vocabulary.biz_step(type_),
        "disposition": vocabulary.disposition(type_, row["stream"]),
    }
    if row["serial"] is not None:
        event["epcList"] = [item_uri(base_url, row["item_class"], row["serial"])]
    else:
        event["quantityList"] = [
            {"epcClass": class_uri(base_url, row["item_class"]), "quantity": row["qty"]}
        ]
    if row["device_id"] is not None:
        event["readPoint"] = {"id": device_uri(base_url, row["device_id"])}
    if row["site_id"] is not None:
        event["bizLocation"] = {"id": site_uri(base_url, row["site_id"])}
    for name in (REASON, STREAM, SEQ, ATTRS):
        if row[name] is not None:
            event[vocabulary.field(name)] = row[name]
    return event


def query_document(
    events: list[dict[str, Any]], vocabulary: Vocabulary, created: datetime
) -> dict[str, Any]:
    """The EPCISQueryDocument of one page of ObjectEvents."""
    return {
        "@context": vocabulary.context,
        "type": "EPCISQueryDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": created.isoformat(),
        "epcisBody": {
            "queryResults": {"queryName": QUERY_NAME, "resultsBody": {"eventList": events}}
        },
    }
