"""EPCIS 2.0 (`GET /v1/epcis/events`, `POST /v1/epcis/capture`): the export validates
against the standard's own JSON Schemas (read from ../shared/data/epcis-2.0 beside the
checkout, never copied here), comes back identical through capture and the real ingest
worker, pages completely, keeps brands apart, and bad input gets specific problems."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from fastapi.testclient import TestClient
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

from api.app import create_app
from api.epcis.export import SUPPORTED_PARAMETERS
from schemas.api_keys import Role, create_key
from schemas.settings import Settings, get_settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker, fresh_database, wait_until
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    assert_stored_exactly,
    count,
    counters,
    register_asset_type,
    seed_registry,
    with_check_digit,
)
from tests.storing import store

EPCIS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "epcis-2.0"
# The standard's files reference each other under this base; the inlined schema holds
# every definition of the files not shipped, under the same names.
GS1_SCHEMA_BASE = "https://gs1.github.io/EPCIS/"
BASE_URL = "https://id.example.no"
VOC = f"{BASE_URL}/voc/"
ZONE = "Europe/Oslo"
# Oslo moves from +01:00 to +02:00 at 2026-03-29T01:00Z: the history spans the change.
T0 = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
CRATE = GTIN_CRATE.zfill(14)
COLA = GTIN_COLA.zfill(14)
GTIN_OTHER = with_check_digit("703801000777").zfill(14)  # a product of brand 'other'
# What the standard's example ObjectEvent.json names: SGTIN company prefix 0614141, item
# reference 107346 → GTIN 1 0614141 07346 and its check digit.
EXAMPLE_GTIN = with_check_digit("1061414107346")

# SPEC §4's table, written out: type → (bizStep, disposition).
SPEC_TABLE = {
    "commissioned": ("commissioning", "active"),
    "filled": (f"{VOC}BizStep-filling", "active"),
    "sold": ("retail_selling", "retail_sold"),
    "returned": ("collecting", "returned"),
    "rejected": ("inspecting", "non_conformant"),
    "washed": (f"{VOC}BizStep-washing", "available"),
    "recycled": ("destroying", "destroyed"),
    "retired": ("decommissioning", "inactive"),
}

pytestmark = pytest.mark.skipif(
    not EPCIS_DIR.is_dir(), reason=f"the EPCIS 2.0 schemas are not at {EPCIS_DIR}"
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def settings_for(db_url: str, broker: Broker, topic_root: str) -> Settings:
    return Settings(
        database_url=db_url,
        mqtt_url=broker.url,
        topic_root=topic_root,
        public_base_url=BASE_URL,
        timezone=ZONE,
    )


@pytest.fixture
def epcis(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    """The API with a public base URL and zone of its own."""
    with TestClient(create_app(settings_for(db_url, broker, topic_root))) as test_client:
        yield test_client


@pytest.fixture
def operator(db: psycopg.Connection[Any]) -> dict[str, str]:
    return bearer(create_key(db, Role.OPERATOR, "epcis operator"))


# --- the standard's JSON Schemas ----------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    return json.loads((EPCIS_DIR / name).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def schemas() -> dict[str, jsonschema.Draft7Validator]:
    """Validators of the standard's inlined schema, its document root and its query root,
    $refs between the files resolved through a referencing registry."""
    inlined = _load("EPCIS-JSON-Schema.json")
    roots = {
        "inlined": inlined,
        "document": _load("EPCIS-Document-JSON-Schema.json"),
        "query": _load("EPCIS-Query-JSON-Schema-root.json"),
    }
    whole = Resource.from_contents(inlined, default_specification=DRAFT7)

    def retrieve(uri: str) -> Resource[Any]:
        # schemas/definitions-JSON-Schema.json, EPCIS-Event-JSON-Schema.json, …: files the
        # roots refer to and the standard's inlined schema contains.
        if uri.startswith(GS1_SCHEMA_BASE):
            return whole
        raise NoSuchResource(ref=uri)

    registry: Registry[Any] = Registry(retrieve=retrieve).with_resources(
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT7))
        for schema in roots.values()
    )
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    return {
        name: jsonschema.Draft7Validator(schema, registry=registry, format_checker=checker)
        for name, schema in roots.items()
    }


def schema_errors(validator: jsonschema.Draft7Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(instance)]


# --- a history of stored events ------------------------------------------------------------


def history() -> list[tuple[str, dict[str, Any]]]:
    """(device, event) pairs: every event type, serialised and counted, with reason,
    stream, seq and attrs, a serial that Digital Link must percent-encode, a timestamp
    with microseconds, and times on both sides of Oslo's change to summer time."""

    def at(minutes: int, type_: str, gtin: str, micro: int = 0, **extra: Any) -> dict[str, Any]:
        ts = T0 + timedelta(minutes=minutes, microseconds=micro)
        return {
            "event_id": str(uuid.uuid4()),
            "ts": ts.isoformat(),
            "type": type_,
            "gtin": gtin,
            **extra,
        }

    crate = {"gtin": CRATE, "serial": "S1"}
    return [
        ("filler-1", at(0, "commissioned", **crate)),
        ("filler-1", at(10, "filled", **crate, seq=1)),
        ("pos-1", at(20, "sold", **crate)),
        ("rvm-1", at(40, "returned", **crate, seq=7, attrs={"fill_level": "empty"})),
        ("rvm-1", at(45, "rejected", COLA, reason="damaged")),
        ("sorter-1", at(60, "sorted", **crate, stream="reuse")),
        ("sorter-1", at(61, "sorted", COLA, qty=40, stream="PET")),
        ("washer-1", at(90, "washed", **crate)),
        ("sorter-1", at(95, "recycled", COLA, qty=3)),
        ("washer-1", at(120, "retired", CRATE, serial="7K/Q%2_x")),
        ("pos-1", at(125, "sold", COLA, qty=24)),
        ("rvm-1", at(130, "returned", COLA, micro=123456)),
    ]


DEVICES = ["filler-1", "pos-1", "rvm-1", "sorter-1", "washer-1"]


def store_history(db: psycopg.Connection[Any]) -> list[tuple[str, dict[str, Any]]]:
    seed_registry(db, DEVICES)
    events = history()
    for device in DEVICES:
        store(db, device, [e for d, e in events if d == device])
    return events


def export_all(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of the export, following the Link headers."""
    documents = []
    url: str | None = "/v1/epcis/events"
    first = True
    while url is not None:
        response = client.get(url, params=params if first else None, headers=headers)
        assert response.status_code == 200, response.text
        documents.append(response.json())
        first = False
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
        if link:
            assert link.endswith('>; rel="next"')
    return documents


def event_list(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]  # type: ignore[no-any-return]


def stored_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT event_id, ts, type, item_class, serial, qty, device_id, site_id, reason, stream,"
        " seq, attrs FROM events ORDER BY event_id"
    ).fetchall()


# --- (a) the export is a valid EPCIS 2.0 query document -----------------------------------


def test_export_is_a_valid_epcis_query_document(
    epcis: TestClient,
    db: psycopg.Connection[Any],
    operator: dict[str, str],
    schemas: dict[str, jsonschema.Draft7Validator],
) -> None:
    events = store_history(db)
    response = epcis.get("/v1/epcis/events", headers=operator)
    assert response.status_code == 200, response.text
    assert response.headers["gs1-epcis-version"] == "2.0"
    assert "link" not in response.headers  # 12 events, 30 per page by default
    document = response.json()
    assert schema_errors(schemas["inlined"], document) == []
    assert schema_errors(schemas["document"], document) == []
    assert document["type"] == "EPCISQueryDocument"
    assert document["schemaVersion"] == "2.0"
    assert document["@context"] == [
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        {"looptrack": VOC},
    ]
    assert document["epcisBody"]["queryResults"]["queryName"] == "SimpleEventQuery"

    exported = {e["eventID"]: e for e in event_list(document)}
    assert len(exported) == len(events)
    for device, sent in events:
        event = exported[f"urn:uuid:{sent['event_id']}"]
        assert event["type"] == "ObjectEvent"
        assert datetime.fromisoformat(event["eventTime"]) == datetime.fromisoformat(sent["ts"])
        assert event["eventTime"].endswith(event["eventTimeZoneOffset"])
        assert event["readPoint"] == {"id": f"{BASE_URL}/devices/{device}"}
        assert event["bizLocation"] == {"id": f"{BASE_URL}/sites/shop-1"}
        assert event["action"] == ("ADD" if sent["type"] == "commissioned" else "OBSERVE")
        if sent["type"] == "sorted":
            disposition = "available" if sent["stream"] == "reuse" else "disposed"
            assert (event["bizStep"], event["disposition"]) == (
                f"{VOC}BizStep-sorting",
                disposition,
            )
            assert event["looptrack:stream"] == sent["stream"]
        else:
            assert (event["bizStep"], event["disposition"]) == SPEC_TABLE[sent["type"]]
        if "serial" in sent:
            assert "quantityList" not in event
            (epc,) = event["epcList"]
            assert epc.startswith(f"{BASE_URL}/01/{sent['gtin']}/21/")
        else:
            assert "epcList" not in event
            assert event["quantityList"] == [
                {"epcClass": f"{BASE_URL}/01/{sent['gtin']}", "quantity": sent.get("qty", 1)}
            ]
    by_type = {e["eventTime"]: e for e in exported.values()}
    # Oslo's offset on each side of the change to summer time.
    assert by_type["2026-03-29T00:30:00+01:00"]["eventTimeZoneOffset"] == "+01:00"
    assert by_type["2026-03-29T03:30:00+02:00"]["eventTimeZoneOffset"] == "+02:00"
    returned = by_type["2026-03-29T01:10:00+01:00"]
    assert (returned["looptrack:seq"], returned["looptrack:attrs"]) == (7, {"fill_level": "empty"})
    rejected = by_type["2026-03-29T01:15:00+01:00"]
    assert rejected["looptrack:reason"] == "damaged"
    retired = by_type["2026-03-29T03:30:00+02:00"]
    assert retired["epcList"] == [f"{BASE_URL}/01/{CRATE}/21/7K%2FQ%252_x"]  # "/" and "%"
    assert by_type["2026-03-29T03:40:00.123456+02:00"]["quantityList"][0]["quantity"] == 1

    # The validator does check: an extension field outside a namespace, or an event
    # without its time zone offset, is refused by the standard's schema.
    broken = json.loads(json.dumps(document))
    event_list(broken)[0]["reason"] = "damaged"
    del event_list(broken)[1]["eventTimeZoneOffset"]
    assert len(schema_errors(schemas["inlined"], broken)) >= 2


def test_query_parameters_are_the_standards(
    schemas: dict[str, jsonschema.Draft7Validator],
) -> None:
    # The standard's query schema admits no other property, so each name it accepts is
    # one of its parameters; the values are in the forms the export understands.
    query = {
        "GE_eventTime": "2026-03-29T00:00:00+01:00",
        "LT_eventTime": "2026-03-30T00:00:00Z",
        "EQ_bizStep": ["collecting", f"{VOC}BizStep-washing"],
        "EQ_disposition": ["available"],
        "EQ_action": ["OBSERVE"],
        "EQ_readPoint": [f"{BASE_URL}/devices/rvm-1"],
        "EQ_bizLocation": [f"{BASE_URL}/sites/shop-1"],
        "EQ_eventID": [f"urn:uuid:{uuid.uuid4()}"],
        "MATCH_epc": [f"{BASE_URL}/01/{CRATE}/21/S1", "urn:epc:idpat:sgtin:7038010.000999.*"],
        "MATCH_anyEPC": [f"{BASE_URL}/01/{CRATE}/21/S1"],
        "MATCH_epcClass": [f"{BASE_URL}/01/{COLA}"],
        "MATCH_anyEPCClass": [f"{BASE_URL}/01/{COLA}"],
    }
    assert schema_errors(schemas["query"], query) == []
    assert schema_errors(schemas["query"], {"EQ_bizStep": ["collecting"], "GE_eventTime": "soon"})
    standard = set(
        _load("EPCIS-Query-JSON-Schema-root.json")["definitions"]["EPCIS-Query"]["properties"]
    )
    # perPage and nextPageToken are the REST binding's paging, not query parameters.
    assert SUPPORTED_PARAMETERS - {"perPage", "nextPageToken"} <= standard


# --- (b) export → capture → the real worker → the same stored events ------------------------


@pytest.fixture
def second_db(template_db: str) -> Iterator[str]:
    """Another fresh database, to capture into."""
    with fresh_database(template_db) as url:
        yield url


RoundTrip = Callable[
    [list[dict[str, Any]], Callable[[psycopg.Connection[Any]], None], list[dict[str, Any]]], None
]


@pytest.fixture
def round_trip(
    db: psycopg.Connection[Any],
    second_db: str,
    broker: Broker,
    topic_root: str,
    make_worker: Callable[..., Any],
) -> RoundTrip:
    """Capture exported pages into the second database (registry made by `seed`) through
    its own API and a real worker: the stored rows equal `db`'s, and capturing them all
    again as one EPCISDocument stores nothing twice. `events` are those `db` holds."""

    def run(
        documents: list[dict[str, Any]],
        seed: Callable[[psycopg.Connection[Any]], None],
        events: list[dict[str, Any]],
    ) -> None:
        with psycopg.connect(second_db, autocommit=True) as fresh:
            seed(fresh)
            key = create_key(fresh, Role.OPERATOR, "capturing operator")
            make_worker(LOOPTRACK_DATABASE_URL=second_db)
            app = create_app(settings_for(second_db, broker, topic_root))
            with TestClient(app) as other:
                # The pages as exported (query documents), then all again as one
                # EPCISDocument.
                for document in documents:
                    response = other.post("/v1/epcis/capture", json=document, headers=bearer(key))
                    assert response.status_code == 202, response.text
                    job = response.json()
                    assert (job["success"], job["errors"]) == (True, [])
                    assert job["eventIDs"] == [e["eventID"] for e in event_list(document)]
                wait_until(
                    lambda: count(fresh, "SELECT count(*) FROM events") == len(events),
                    30,
                    "captured events stored",
                )
                assert stored_rows(fresh) == stored_rows(db)

                again = {
                    "@context": documents[0]["@context"],
                    "type": "EPCISDocument",
                    "schemaVersion": "2.0",
                    "creationDate": datetime.now(UTC).isoformat(),
                    "epcisBody": {"eventList": [e for d in documents for e in event_list(d)]},
                }
                response = other.post("/v1/epcis/capture", json=again, headers=bearer(key))
                assert response.status_code == 202, response.text
                # The same event ids: all duplicates, nothing stored twice.
                wait_until(lambda: counters(fresh)[2] == len(events), 30, "duplicates counted")
                assert stored_rows(fresh) == stored_rows(db)
                assert_stored_exactly(fresh, events)

    return run


def test_export_then_capture_stores_identical_events(
    epcis: TestClient,
    db: psycopg.Connection[Any],
    operator: dict[str, str],
    round_trip: RoundTrip,
) -> None:
    events = store_history(db)
    documents = export_all(epcis, operator, perPage=5)
    assert [len(event_list(d)) for d in documents] == [5, 5, 2]
    round_trip(documents, lambda conn: seed_registry(conn, DEVICES), [e for _, e in events])


# --- (c) the standard's own example -------------------------------------------------------


@pytest.fixture
def kept_since_2005(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """LOOPTRACK_RETENTION_DAYS reaching back to the example's 2005, for the API (process
    settings) and for the worker it starts with the value yielded."""
    days = "36500"
    monkeypatch.setenv("LOOPTRACK_RETENTION_DAYS", days)
    get_settings.cache_clear()
    yield days
    get_settings.cache_clear()


def test_the_standards_example_object_event(
    epcis: TestClient,
    db: psycopg.Connection[Any],
    operator: dict[str, str],
    make_worker: Callable[..., Any],
    kept_since_2005: str,
) -> None:
    seed_registry(db, [])
    make_worker(LOOPTRACK_RETENTION_DAYS=kept_since_2005)
    example = (EPCIS_DIR / "ObjectEvent.json").read_bytes()
    # Its readPoint is a GLN of the standard's example company (SGLN 0614141.07346.1234):
    # captured events need a device there, registered under the SGLN's "sgln-" id.
    gln_device = "sgln-0614141.07346.1234"
    response = epcis.post("/v1/epcis/capture", content=example, headers=operator)
    assert_problem(response, 422, "1 of 1 events cannot be stored, so none was captured")
    assert [e["field"] for e in response.json()["errors"]] == ["eventList[0].readPoint.id"]
    assert f"device {gln_device!r} is not registered" in response.text

    # As published, once its place is registered: a shipment (bizStep shipping, in
    # transit) puts its two SGTINs on the market, SPEC §4's `sold`.
    db.execute(
        "INSERT INTO sites (id, name, kind) VALUES ('sgln-0614141.07346.0', 'Dock', 'other')"
    )
    db.execute(
        "INSERT INTO devices (id, site_id, kind) VALUES (%s, 'sgln-0614141.07346.0', 'other')",
        (gln_device,),
    )
    for _ in range(2):  # a second capture is recognised as the same events
        response = epcis.post("/v1/epcis/capture", content=example, headers=operator)
        assert response.status_code == 202, response.text
    ids = response.json()["eventIDs"]
    assert len(set(ids)) == 2
    wait_until(lambda: counters(db)[2] == 2, 30, "the second capture's duplicates")
    rows = db.execute(
        "SELECT event_id, ts, type, item_class, serial, qty, device_id FROM events ORDER BY serial"
    ).fetchall()
    when = datetime(2005, 4, 3, 20, 33, 31, 116000, tzinfo=UTC) + timedelta(hours=6)
    assert [row[1:] for row in rows] == [
        (when, "sold", EXAMPLE_GTIN, "2017", 1, gln_device),
        (when, "sold", EXAMPLE_GTIN, "2018", 1, gln_device),
    ]
    assert sorted(f"urn:uuid:{row[0]}" for row in rows) == sorted(ids)
    # Exported, the events name their place by its GLN again.
    exported = epcis.get(
        "/v1/epcis/events", params={"EQ_readPoint": "urn:epc:id:sgln:0614141.07346.1234"},
        headers=operator,
    ).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]  # fmt: skip
    assert [e["readPoint"]["id"] for e in exported] == ["urn:epc:id:sgln:0614141.07346.1234"] * 2
    assert {tuple(e["epcList"]) for e in exported} == {
        (f"{BASE_URL}/01/{EXAMPLE_GTIN}/21/{serial}",) for serial in ("2017", "2018")
    }


def test_proceed_relays_the_good_and_dead_letters_what_the_worker_refuses(
    epcis: TestClient,
    db: psycopg.Connection[Any],
    operator: dict[str, str],
    make_worker: Callable[..., Any],
) -> None:
    seed_registry(db, ["rvm-1"])
    make_worker()

    def returned(ts: datetime, serial: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": "ObjectEvent",
            "action": "OBSERVE",
            "bizStep": "collecting",
            "eventTime": ts.isoformat(),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [f"{BASE_URL}/01/{CRATE}/21/{serial}"],
            "readPoint": {"id": f"{BASE_URL}/devices/rvm-1"},
            **extra,
        }

    now = datetime.now(UTC)
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now.isoformat(),
        "epcisBody": {
            "eventList": [
                returned(now - timedelta(minutes=1), "GOOD1"),
                returned(now + timedelta(hours=1), "SKEWED"),  # the worker's clock check
                returned(now, "GOOD2", bizStep="packing"),  # no looptrack type
                returned(now - timedelta(minutes=2), "GOOD3"),
            ]
        },
    }
    rollback = epcis.post("/v1/epcis/capture", json=document, headers=operator)
    assert_problem(rollback, 422, "2 of 4 events cannot be stored")
    assert [e["field"] for e in rollback.json()["errors"]] == [
        "eventList[1].eventTime",
        "eventList[2].bizStep",
    ]
    assert "ahead of the receiver's clock" in rollback.text

    headers = {**operator, "GS1-Capture-Error-Behaviour": "proceed"}
    response = epcis.post("/v1/epcis/capture", json=document, headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["gs1-capture-error-behaviour"] == "proceed"
    job = response.json()
    assert (job["success"], job["running"], len(job["eventIDs"])) == (False, True, 2)
    skewed, unmapped = job["errors"]
    assert (skewed["field"], skewed["deadLetterReason"]) == ("eventList[1].eventTime", "clock_skew")
    assert skewed["eventID"] is not None  # relayed: the worker dead-letters it
    assert (unmapped["field"], unmapped["deadLetterReason"]) == ("eventList[2].bizStep", None)
    wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, 30, "dead letter")
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 2, 30, "good events")
    assert db.execute("SELECT reason, device_id FROM dead_letters").fetchone() == (
        "clock_skew",
        "rvm-1",
    )
    assert sorted(r[0] for r in db.execute("SELECT serial FROM events")) == ["GOOD1", "GOOD3"]


# --- (d) paging --------------------------------------------------------------------------


def test_paging_returns_every_event_exactly_once(
    epcis: TestClient, db: psycopg.Connection[Any], operator: dict[str, str]
) -> None:
    seed_registry(db, ["rvm-1"])
    # Three events per timestamp: pages must break ties by event id.
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "ts": (T0 + timedelta(minutes=i // 3)).isoformat(),
            "type": "returned" if i % 4 else "sold",
            "gtin": COLA,
        }
        for i in range(23)
    ]
    store(db, "rvm-1", events)
    documents = export_all(epcis, operator, perPage=5)
    assert [len(event_list(d)) for d in documents] == [5, 5, 5, 5, 3]
    seen = [e["eventID"] for d in documents for e in event_list(d)]
    assert sorted(seen) == sorted(f"urn:uuid:{e['event_id']}" for e in events)
    times = [datetime.fromisoformat(e["eventTime"]) for d in documents for e in event_list(d)]
    assert times == sorted(times, reverse=True)

    # The Link keeps the filters: only the 17 returns, in pages of 4.
    documents = export_all(epcis, operator, perPage=4, EQ_bizStep="collecting")
    returns = [e for d in documents for e in event_list(d)]
    assert [len(event_list(d)) for d in documents] == [4, 4, 4, 4, 1]
    assert len({e["eventID"] for e in returns}) == 17
    assert {e["bizStep"] for e in returns} == {"collecting"}


# --- filters -----------------------------------------------------------------------------


def test_the_standard_query_parameters_filter(
    epcis: TestClient, db: psycopg.Connection[Any], operator: dict[str, str]
) -> None:
    events = store_history(db)

    def types(**params: Any) -> list[str]:
        documents = export_all(epcis, operator, **params)
        found = [e for d in documents for e in event_list(d)]
        ids = {f"urn:uuid:{e['event_id']}": e["type"] for _, e in events}
        return sorted(ids[e["eventID"]] for e in found)

    assert types(EQ_bizStep="collecting|urn:epcglobal:cbv:bizstep:retail_selling") == [
        "returned",
        "returned",
        "sold",
        "sold",
    ]
    assert types(
        EQ_bizStep=[
            f"{VOC}BizStep-washing",
            "https://ref.gs1.org/cbv/BizStep-destroying",
            "shipping",
        ]
    ) == ["recycled", "washed"]
    assert types(EQ_disposition="available") == ["sorted", "washed"]  # sorted to reuse only
    assert types(EQ_disposition="disposed|non_conformant") == ["rejected", "sorted"]
    assert types(EQ_action="ADD") == ["commissioned"]
    assert types(eventType="AggregationEvent") == []
    assert len(types(eventType="ObjectEvent|AggregationEvent")) == len(events)
    crate_s1 = ["commissioned", "filled", "returned", "sold", "sorted", "washed"]
    assert types(MATCH_epc=f"https://id.gs1.org/01/{CRATE}/21/S1") == crate_s1
    assert types(MATCH_anyEPC="urn:epc:id:sgtin:7038010.000999.S1") == crate_s1
    assert len(types(MATCH_epc="urn:epc:idpat:sgtin:7038010.000999.*")) == 7
    assert types(MATCH_epcClass=f"{BASE_URL}/01/{COLA}", EQ_bizStep="retail_selling") == ["sold"]
    assert types(EQ_readPoint=f"{BASE_URL}/devices/sorter-1") == ["recycled", "sorted", "sorted"]
    assert types(EQ_readPoint="urn:epc:id:sgln:0614141.07346.1234") == []
    assert len(types(EQ_bizLocation=f"{BASE_URL}/sites/shop-1")) == len(events)
    assert types(GE_eventTime="2026-03-29T01:10:00+01:00", LT_eventTime="2026-03-29T00:20:00Z") == [
        "rejected",
        "returned",
    ]
    one = events[3][1]["event_id"]
    assert types(EQ_eventID=f"urn:uuid:{one}") == ["returned"]


# --- (e) roles ---------------------------------------------------------------------------


def test_a_brand_sees_only_its_own_products_events(
    epcis: TestClient, db: psycopg.Connection[Any], keys: dict[str, Any]
) -> None:
    seed_registry(db, ["rvm-1"])  # COLA and CRATE are brand fjord's
    db.execute(
        "INSERT INTO products (item_class, packaging_type_id, brand, name)"
        " VALUES (%s, 'pet-0.5l', 'other', 'Other Cola')",
        (GTIN_OTHER,),
    )
    mine = [
        {
            "event_id": str(uuid.uuid4()),
            "ts": (T0 + timedelta(minutes=i)).isoformat(),
            "type": "returned",
            "gtin": COLA,
        }
        for i in range(3)
    ]
    theirs = [
        {
            "event_id": str(uuid.uuid4()),
            "ts": (T0 + timedelta(minutes=i)).isoformat(),
            "type": "returned",
            "gtin": GTIN_OTHER,
            "serial": f"X{i}",
        }
        for i in range(4)
    ]
    store(db, "rvm-1", mine + theirs)

    def ids(who: str, **params: Any) -> set[str]:
        documents = export_all(epcis, keys[who], perPage=2, **params)
        return {e["eventID"] for d in documents for e in event_list(d)}

    assert ids("fjord") == {f"urn:uuid:{e['event_id']}" for e in mine}
    assert ids("other") == {f"urn:uuid:{e['event_id']}" for e in theirs}
    assert len(ids("operator")) == len(ids("admin")) == 7
    # Not through a filter either.
    assert ids("fjord", MATCH_epc=f"{BASE_URL}/01/{GTIN_OTHER}/21/X1") == set()
    assert ids("fjord", EQ_eventID=f"urn:uuid:{theirs[0]['event_id']}") == set()
    # Device and site are the operator's: no readPoint or bizLocation for a brand, and no
    # query by them; the operator gets both.
    brand_events = [e for d in export_all(epcis, keys["fjord"]) for e in event_list(d)]
    assert brand_events
    assert all("readPoint" not in e and "bizLocation" not in e for e in brand_events)
    operator_events = [e for d in export_all(epcis, keys["operator"]) for e in event_list(d)]
    assert all("readPoint" in e and "bizLocation" in e for e in operator_events)
    read_point = operator_events[0]["readPoint"]["id"]
    assert_problem(
        epcis.get("/v1/epcis/events", params={"EQ_readPoint": read_point}, headers=keys["fjord"]),
        403,
        "operator's",
    )

    device = bearer(create_key(db, Role.DEVICE, "rvm key", device_id="rvm-1"))
    assert_problem(epcis.get("/v1/epcis/events", headers=device), 403, "role device")
    assert_problem(epcis.get("/v1/epcis/events"), 401, "missing API key")
    assert_problem(
        epcis.post("/v1/epcis/capture", json=[], headers=keys["fjord"]), 403, "role brand"
    )


def test_a_device_key_captures_for_its_own_device_only(
    epcis: TestClient, db: psycopg.Connection[Any], make_worker: Callable[..., Any]
) -> None:
    seed_registry(db, ["rvm-1", "rvm-2"])
    make_worker()
    key = bearer(create_key(db, Role.DEVICE, "rvm-1 key", device_id="rvm-1"))
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "collecting",
        "eventTime": (T0 + timedelta(days=1)).isoformat(),
        "epcList": [f"{BASE_URL}/01/{CRATE}/21/S9"],
    }
    # Without a readPoint the event is the key's device's.
    response = epcis.post("/v1/epcis/capture", json=event, headers=key)
    assert response.status_code == 202, response.text
    other = {**event, "readPoint": {"id": f"{BASE_URL}/devices/rvm-2"}}
    assert_problem(
        epcis.post("/v1/epcis/capture", json=[event, other], headers=key),
        403,
        "this key captures as device 'rvm-1' only; eventList[1].readPoint is 'rvm-2'",
    )
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 1, 30, "the event")
    assert db.execute("SELECT device_id, serial FROM events").fetchone() == ("rvm-1", "S9")


# --- (f) bad input -----------------------------------------------------------------------


def test_bad_queries_get_specific_problems(
    epcis: TestClient, db: psycopg.Connection[Any], operator: dict[str, str]
) -> None:
    def get(**params: Any) -> Any:
        return epcis.get("/v1/epcis/events", params=params, headers=operator)

    assert_problem(get(GE_eventTime="yesterday"), 422, "GE_eventTime")
    assert_problem(get(LT_eventTime="2026-03-29T00:00:00"), 422, "LT_eventTime")
    assert_problem(
        get(GE_eventTime="2026-03-30T00:00:00Z", LT_eventTime="2026-03-29T00:00:00Z"),
        422,
        "GE_eventTime must be before LT_eventTime",
    )
    assert_problem(get(perPage=0), 422, "perPage")
    assert_problem(get(perPage=1001), 422, "perPage")
    assert_problem(get(nextPageToken="not-a-token"), 422, "cursor is not one this API handed out")
    assert_problem(get(eventType="PackageEvent"), 422, "eventType: 'PackageEvent' is not an EPCIS")
    assert_problem(get(EQ_action="MOVE"), 422, "EQ_action: 'MOVE' is not one of")
    assert_problem(get(MATCH_epc="banana"), 422, "MATCH_epc: 'banana': not a Digital Link URI")
    assert_problem(get(MATCH_epc=f"{BASE_URL}/01/{COLA}"), 422, "a product (class), not an item")
    assert_problem(get(MATCH_epcClass="urn:epc:id:sgtin:7038010.000999.S1"), 422, "MATCH_epcClass")
    wrong = COLA[:-1] + str((int(COLA[-1]) + 1) % 10)
    assert_problem(get(MATCH_anyEPC=f"{BASE_URL}/01/{wrong}/21/A"), 422, "check digit")
    assert_problem(get(EQ_eventID="urn:uuid:nope"), 422, "EQ_eventID")
    assert_problem(get(EQ_bizStep="collecting||sold"), 422, "EQ_bizStep: empty value")
    assert_problem(get(EQ_bizStep="|".join(["a"] * 101)), 422, "at most 100")
    assert_problem(get(EQ_quantity="3"), 422, "unsupported query parameter 'EQ_quantity'")
    assert_problem(get(limit="3"), 422, "unsupported query parameter 'limit'")


def test_bad_captures_get_specific_problems(
    epcis: TestClient, db: psycopg.Connection[Any], operator: dict[str, str]
) -> None:
    seed_registry(db, ["rvm-1"])

    def capture(body: Any, **headers: str) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return epcis.post("/v1/epcis/capture", content=content, headers={**operator, **headers})

    ok = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "collecting",
        "eventTime": T0.isoformat(),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [f"{BASE_URL}/01/{CRATE}/21/S1"],
        "readPoint": {"id": f"{BASE_URL}/devices/rvm-1"},
    }

    def fields(body: Any) -> list[str]:
        response = capture(body)
        assert_problem(response, 422, "cannot be stored")
        return [e["field"] for e in response.json()["errors"]]

    assert_problem(capture(b"{not json"), 422, "not valid UTF-8 JSON")
    assert_problem(capture(b'{"a": NaN}'), 422, "NaN is not JSON")
    assert_problem(capture("an event"), 422, "expected an EPCISDocument")
    assert_problem(
        capture({"type": "EPCISDocument", "epcisBody": {}}),
        422,
        "epcisBody.eventList: missing or not an array",
    )
    assert_problem(capture({"type": "Invoice"}), 422, "type 'Invoice': expected EPCISDocument")
    assert_problem(
        capture(ok, **{"GS1-Capture-Error-Behaviour": "sometimes"}),
        422,
        "GS1-Capture-Error-Behaviour",
    )
    assert_problem(capture(b"x" * (4 * 1024 * 1024 + 1)), 413, "at most 4194304")

    assert fields([{**ok, "type": "AggregationEvent"}]) == ["eventList[0].type"]
    assert fields([ok, {**ok, "bizStep": "packing"}]) == ["eventList[1].bizStep"]
    # A shipment is stored as `sold` (put on the market), in transit or sold, not returned.
    shipped = {**ok, "bizStep": "shipping", "disposition": "returned"}
    assert fields([shipped]) == ["eventList[0].disposition"]
    assert fields([{k: v for k, v in ok.items() if k != "bizStep"}]) == ["eventList[0].bizStep"]
    assert fields([{**ok, "bizStep": None, "eventTime": None}]) == [
        "eventList[0].bizStep",
        "eventList[0].eventTime",
    ]
    assert fields([{**ok, "disposition": "destroyed"}]) == ["eventList[0].disposition"]
    assert fields([{k: v for k, v in ok.items() if k != "readPoint"}]) == ["eventList[0].readPoint"]
    assert fields([{**ok, "readPoint": {"id": f"{BASE_URL}/devices/rvm-9"}}]) == [
        "eventList[0].readPoint.id"
    ]
    assert fields([{**ok, "bizLocation": {"id": f"{BASE_URL}/sites/elsewhere"}}]) == [
        "eventList[0].bizLocation.id"
    ]
    assert fields([{**ok, "epcList": ["urn:epc:id:sscc:0614141.1234567890", "x"]}]) == [
        "eventList[0].epcList[0]",
        "eventList[0].epcList[1]",
    ]
    assert fields(
        [
            {
                **ok,
                "epcList": [],
                "quantityList": [
                    {"epcClass": f"{BASE_URL}/01/{COLA}", "quantity": 2.5},
                    {"epcClass": f"{BASE_URL}/01/{COLA}", "quantity": 3, "uom": "KGM"},
                ],
            }
        ]
    ) == ["eventList[0].quantityList[0].quantity", "eventList[0].quantityList[1].uom"]
    assert fields([{**ok, "epcList": []}]) == ["eventList[0].epcList"]
    assert fields([{**ok, "bizStep": f"{VOC}BizStep-sorting", "disposition": "disposed"}]) == [
        "eventList[0].looptrack:stream"
    ]
    naive = {k: v for k, v in ok.items() if k != "eventTimeZoneOffset"}
    assert fields([{**naive, "eventTime": "2026-03-29T00:00:00"}]) == ["eventList[0].eventTime"]
    assert fields([{**ok, "eventID": "urn:uuid:12"}]) == ["eventList[0].eventID"]
    assert fields([{**ok, "errorDeclaration": {"declarationTime": T0.isoformat()}}]) == [
        "eventList[0].errorDeclaration"
    ]
    # What only the worker's rules catch is refused before anything is relayed, too.
    assert fields([{**ok, "looptrack:stream": "PET"}]) == ["eventList[0]"]
    assert count(db, "SELECT count(*) FROM events") == 0


# --- (g) returnable assets keyed by GRAI (AI 8003) -----------------------------------------

# A GRAI asset type with the very digits of the crate's GTIN: GS1 numbers the two apart, so
# the asset's items are stored under "8003" and the asset type, never the GTIN.
ASSET_TYPE = CRATE
ASSET_CLASS = "8003" + ASSET_TYPE
# The asset type as an EPC URN names it: company prefix 7038010, asset reference 00999.
GRAI_URN_PREFIX = f"urn:epc:id:grai:{ASSET_TYPE[1:8]}.{ASSET_TYPE[8:13]}."


def grai_history() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(device, event as sent, its items as the export must write them): GRAI asset S1 by
    `grai` and by a scanned /8003/ `code` of another host, the GTIN item with the same 14
    digits and serial, a GRAI serial that Digital Link must percent-encode, and the asset
    type counted without serials."""

    def at(minutes: int, type_: str, **extra: Any) -> dict[str, Any]:
        ts = T0 + timedelta(minutes=minutes)
        return {"event_id": str(uuid.uuid4()), "ts": ts.isoformat(), "type": type_, **extra}

    asset_s1 = {"epcList": [f"{BASE_URL}/8003/{ASSET_TYPE}S1"]}
    gtin_s1 = {"epcList": [f"{BASE_URL}/01/{CRATE}/21/S1"]}
    return [
        ("filler-1", at(0, "commissioned", grai=f"{ASSET_TYPE}S1"), asset_s1),
        ("filler-1", at(5, "filled", gtin=CRATE, serial="S1"), gtin_s1),
        ("rvm-1", at(40, "returned", grai=f"{ASSET_TYPE}S1", seq=3), asset_s1),
        ("rvm-1", at(41, "returned", gtin=CRATE, serial="S1"), gtin_s1),
        (
            "sorter-1",
            at(60, "sorted", grai=ASSET_TYPE, qty=4, stream="reuse"),
            {"quantityList": [{"epcClass": f"{BASE_URL}/8003/{ASSET_TYPE}", "quantity": 4}]},
        ),
        ("washer-1", at(90, "washed", code=f"https://id.gs1.org/8003/{ASSET_TYPE}S1"), asset_s1),
        (
            "washer-1",
            at(120, "retired", grai=f"{ASSET_TYPE}7K/Q%2_x"),
            {
                "epcList": [f"{BASE_URL}/8003/{ASSET_TYPE}7K%2FQ%252_x"]  # "/" and "%"
            },
        ),
    ]


def store_grai_history(
    db: psycopg.Connection[Any],
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    seed_registry(db, DEVICES)
    register_asset_type(db, ASSET_TYPE)
    events = grai_history()
    for device in DEVICES:
        mine = [e for d, e, _ in events if d == device]
        if mine:
            store(db, device, mine)
    return events


def test_grai_items_export_as_8003_links_and_come_back_identical(
    epcis: TestClient,
    db: psycopg.Connection[Any],
    operator: dict[str, str],
    schemas: dict[str, jsonschema.Draft7Validator],
    round_trip: RoundTrip,
) -> None:
    events = store_grai_history(db)
    # Stored apart from the GTIN item of the same digits: 3 events of asset S1, 2 of the
    # GTIN's S1, the asset type's count and the other asset.
    assert db.execute(
        "SELECT item_class, serial, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall() == [
        (CRATE, "S1", 2),
        (ASSET_CLASS, "7K/Q%2_x", 1),
        (ASSET_CLASS, "S1", 3),
        (ASSET_CLASS, None, 1),
    ]

    response = epcis.get("/v1/epcis/events", headers=operator)
    assert response.status_code == 200, response.text
    document = response.json()
    assert schema_errors(schemas["inlined"], document) == []
    assert schema_errors(schemas["document"], document) == []
    exported = {e["eventID"]: e for e in event_list(document)}
    assert len(exported) == len(events)
    for _, sent, items in events:
        event = exported[f"urn:uuid:{sent['event_id']}"]
        assert {k: event[k] for k in ("epcList", "quantityList") if k in event} == items
        assert event["bizStep"] == (
            f"{VOC}BizStep-sorting" if sent["type"] == "sorted" else SPEC_TABLE[sent["type"]][0]
        )

    def ids(**params: Any) -> set[str]:
        return {e["eventID"] for d in export_all(epcis, operator, **params) for e in event_list(d)}

    def sent_ids(items: dict[str, Any]) -> set[str]:
        return {f"urn:uuid:{e['event_id']}" for _, e, i in events if i == items}

    asset_s1 = sent_ids({"epcList": [f"{BASE_URL}/8003/{ASSET_TYPE}S1"]})
    gtin_s1 = sent_ids({"epcList": [f"{BASE_URL}/01/{CRATE}/21/S1"]})
    assert (len(asset_s1), len(gtin_s1)) == (3, 2)
    # MATCH_epc by the asset's link (any host) or URN selects the asset, never the GTIN
    # item with the same 14 digits and serial, and the other way round.
    assert ids(MATCH_epc=f"{BASE_URL}/8003/{ASSET_TYPE}S1") == asset_s1
    assert ids(MATCH_epc=f"https://id.gs1.org/8003/{ASSET_TYPE}S1") == asset_s1
    assert ids(MATCH_anyEPC=f"{GRAI_URN_PREFIX}S1") == asset_s1
    assert ids(MATCH_epc=f"{BASE_URL}/01/{CRATE}/21/S1") == gtin_s1
    assert ids(MATCH_epc="urn:epc:idpat:sgtin:7038010.000999.*") == gtin_s1
    assert ids(MATCH_epc=f"{BASE_URL}/8003/{ASSET_TYPE}S2") == set()
    # A GRAI pattern: every serialised asset of the type, and no GTIN item.
    assets = {
        f"urn:uuid:{e['event_id']}"
        for _, e, i in events
        if i.get("epcList", [""])[0].startswith(f"{BASE_URL}/8003/")
    }
    assert assets > asset_s1
    grai_type = f"urn:epc:idpat:grai:{ASSET_TYPE[1:8]}.{ASSET_TYPE[8:13]}.*"
    assert ids(MATCH_epc=grai_type) == assets
    # The asset type as a class: its count without serials, not the GTIN's.
    (counted,) = [e for _, e, _ in events if e["type"] == "sorted"]
    assert ids(MATCH_epcClass=f"{BASE_URL}/8003/{ASSET_TYPE}") == {
        f"urn:uuid:{counted['event_id']}"
    }
    assert ids(MATCH_epcClass=f"{BASE_URL}/01/{CRATE}") == set()

    documents = export_all(epcis, operator, perPage=3)
    assert [len(event_list(d)) for d in documents] == [3, 3, 1]

    def seed(conn: psycopg.Connection[Any]) -> None:
        seed_registry(conn, DEVICES)
        register_asset_type(conn, ASSET_TYPE)

    round_trip(documents, seed, [e for _, e, _ in events])


def test_a_grai_epc_urn_is_captured_under_its_asset_type(
    epcis: TestClient,
    db: psycopg.Connection[Any],
    operator: dict[str, str],
    make_worker: Callable[..., Any],
) -> None:
    seed_registry(db, ["rvm-1"])
    # Company prefix 7038010 and asset reference 12345: the asset type is a padding 0,
    # those 12 digits and their GS1 check digit.
    asset_type = with_check_digit("0" + "7038010" + "12345")
    register_asset_type(db, asset_type)
    make_worker()

    def event(minutes: int, biz_step: str, epc: str) -> dict[str, Any]:
        return {
            "type": "ObjectEvent",
            "action": "OBSERVE",
            "bizStep": biz_step,
            "eventTime": (T0 + timedelta(minutes=minutes)).isoformat(),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [epc],
            "readPoint": {"id": f"{BASE_URL}/devices/rvm-1"},
        }

    # One asset, its company prefix split three ways; "/" escaped in the URN's serial.
    document = [
        event(0, "collecting", "urn:epc:id:grai:7038010.12345.B%2F7"),
        event(1, f"{VOC}BizStep-washing", "urn:epc:id:grai:703801012.345.B%2F7"),
        event(2, "collecting", "urn:epc:id:grai:703801012345..C1"),
    ]
    response = epcis.post("/v1/epcis/capture", json=document, headers=operator)
    assert response.status_code == 202, response.text
    assert (response.json()["success"], len(response.json()["eventIDs"])) == (True, 3)
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 3, 30, "captured events")
    assert db.execute("SELECT type, item_class, serial FROM events ORDER BY ts").fetchall() == [
        ("returned", "8003" + asset_type, "B/7"),
        ("washed", "8003" + asset_type, "B/7"),
        ("returned", "8003" + asset_type, "C1"),
    ]

    # And out again as the asset's Digital Link.
    link = f"{BASE_URL}/8003/{asset_type}B%2F7"
    documents = export_all(epcis, operator, MATCH_epc=link)
    assert [e["epcList"] for d in documents for e in event_list(d)] == [[link], [link]]


def test_bad_grais_get_specific_problems(
    epcis: TestClient, db: psycopg.Connection[Any], operator: dict[str, str]
) -> None:
    seed_registry(db, ["rvm-1"])
    check = ASSET_TYPE[-1]
    wrong = ASSET_TYPE[:-1] + str((int(check) + 1) % 10)
    # A first digit other than the padding 0, with the check digit right for it.
    unpadded = with_check_digit("1" + ASSET_TYPE[1:13])
    ok = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "collecting",
        "eventTime": T0.isoformat(),
        "eventTimeZoneOffset": "+00:00",
        "readPoint": {"id": f"{BASE_URL}/devices/rvm-1"},
    }
    # (epcList entry, what the error must say); a URN has no check digit to get wrong.
    bad_items = [
        (f"{BASE_URL}/8003/{wrong}S1", f"check digit should be {check}"),
        (f"{BASE_URL}/8003/{unpadded}S1", "padding 0"),
        (f"{BASE_URL}/8003/{ASSET_TYPE}{'A' * 17}", "17 characters, at most 16"),
        (f"{BASE_URL}/8003/{ASSET_TYPE}{'A' * 21}", "21 characters, at most 16"),
        (f"{GRAI_URN_PREFIX}{'A' * 17}", "17 characters, at most 16"),
        (f"{GRAI_URN_PREFIX}{'A' * 21}", "21 characters, at most 16"),
        ("urn:epc:id:grai:7038010.0009.S1", "11 digits together, 12 expected"),
        (f"{BASE_URL}/8003/{ASSET_TYPE}S1/21/S1", "a GRAI carries its serial, not AI 21"),
        (f"{BASE_URL}/8003/{ASSET_TYPE}", "a product (class), not an item"),
    ]
    document: list[dict[str, Any]] = [{**ok, "epcList": [uri]} for uri, _ in bad_items]
    document.append(
        {**ok, "quantityList": [{"epcClass": f"{BASE_URL}/8003/{wrong}", "quantity": 2}]}
    )
    response = epcis.post("/v1/epcis/capture", json=document, headers=operator)
    assert_problem(response, 422, f"{len(document)} of {len(document)} events cannot be stored")
    errors = response.json()["errors"]
    expected = [(f"eventList[{i}].epcList[0]", text) for i, (_, text) in enumerate(bad_items)] + [
        (f"eventList[{len(bad_items)}].quantityList[0].epcClass", f"should be {check}")
    ]
    assert [e["field"] for e in errors] == [field for field, _ in expected]
    for error, (_, text) in zip(errors, expected, strict=True):
        assert text in error["message"], error

    def get(**params: Any) -> Any:
        return epcis.get("/v1/epcis/events", params=params, headers=operator)

    assert_problem(get(MATCH_epc=f"{BASE_URL}/8003/{wrong}S1"), 422, f"should be {check}")
    assert_problem(get(MATCH_anyEPC=f"{GRAI_URN_PREFIX}{'A' * 17}"), 422, "at most 16")
    assert_problem(
        get(MATCH_epcClass=f"{BASE_URL}/8003/{ASSET_TYPE}S1"), 422, "an item, not a product"
    )
    assert count(db, "SELECT count(*) FROM events") == 0
