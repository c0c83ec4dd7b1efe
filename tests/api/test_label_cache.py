"""Downloading a label batch again: served from the cache, byte for byte, never to another
brand, never stale, within its byte bound; identical downloads at once render once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import POOL_MAX, create_app
from api.labels import sheets
from api.labels.cache import LabelCache, Outcome
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker
from tests.factories import GTIN_COLA, seed_registry
from tests.qr import page_texts

COLA = GTIN_COLA.zfill(14)

# -- the cache on its own -----------------------------------------------------------------


def rendered(data: bytes, calls: list[bytes]) -> Any:
    """A render that returns `data` and notes that it ran."""

    def render() -> bytes:
        calls.append(data)
        return data

    return render


def test_the_cache_stays_within_its_bound_evicting_the_least_recently_used() -> None:
    cache = LabelCache(max_bytes=1000)  # files up to 200 bytes are kept
    calls: list[bytes] = []
    for n in range(10):
        cache.get_or_render(b"k%d" % n, rendered(bytes([n]) * 150, calls))
        assert cache.stats().bytes <= 1000
    stats = cache.stats()
    assert (stats.entries, stats.bytes, stats.evictions) == (6, 900, 4)
    # The four oldest went; the newest are still there.
    assert cache.get_or_render(b"k9", rendered(b"new", calls)) == (bytes([9]) * 150, Outcome.HIT)
    assert cache.get_or_render(b"k0", rendered(b"again", calls)) == (b"again", Outcome.MISS)
    assert len(calls) == 11


def test_a_file_downloaded_again_outlives_a_stream_of_first_downloads() -> None:
    cache = LabelCache(max_bytes=1000)
    calls: list[bytes] = []
    cache.get_or_render(b"reprinted", rendered(b"r" * 150, calls))
    cache.get_or_render(b"reprinted", rendered(b"unused", calls))  # protected from now on
    for n in range(50):  # fresh batches, each downloaded once
        cache.get_or_render(b"fresh%d" % n, rendered(b"f" * 150, calls))
    assert cache.get_or_render(b"reprinted", rendered(b"unused", calls)) == (
        b"r" * 150,
        Outcome.HIT,
    )
    assert cache.stats().bytes <= 1000
    assert b"unused" not in calls


def test_a_file_above_a_fifth_of_the_bound_is_served_but_not_kept() -> None:
    cache = LabelCache(max_bytes=1000)
    calls: list[bytes] = []
    cache.get_or_render(b"small", rendered(b"s" * 150, calls))
    assert cache.get_or_render(b"big", rendered(b"b" * 201, calls)) == (b"b" * 201, Outcome.MISS)
    assert cache.get_or_render(b"big", rendered(b"b" * 201, calls))[1] is Outcome.MISS
    assert cache.get_or_render(b"small", rendered(b"unused", calls))[1] is Outcome.HIT
    assert LabelCache(max_bytes=0).get_or_render(b"k", rendered(b"x", calls)) == (
        b"x",
        Outcome.MISS,
    )


def four_at_once(cache: LabelCache, key: bytes, result: bytes | Exception) -> tuple[int, list]:
    """Four identical requests, the first one's render held until the three others
    wait: (renders that ran, what each request got: (bytes, outcome) or the exception)."""
    finish = threading.Event()
    renders: list[bytes] = []
    got: list[object] = []

    def render() -> bytes:
        renders.append(key)
        assert finish.wait(10)
        if isinstance(result, Exception):
            raise result
        return result

    def download() -> None:
        try:
            got.append(cache.get_or_render(key, render))
        except RuntimeError as exc:
            got.append(exc)

    shared_before = cache.stats().outcomes[Outcome.SHARED]
    threads = [threading.Thread(target=download) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while cache.stats().outcomes[Outcome.SHARED] < shared_before + 3:
        assert time.monotonic() < deadline, "the others did not wait for the first render"
        time.sleep(0.01)
    finish.set()
    for thread in threads:
        thread.join(10)
    return len(renders), got


def test_identical_requests_during_a_render_wait_for_it_and_share_its_failure() -> None:
    cache = LabelCache(max_bytes=10_000)
    renders, got = four_at_once(cache, b"sheet", b"%PDF sheet")
    assert renders == 1
    assert sorted(got) == [(b"%PDF sheet", Outcome.MISS)] + [(b"%PDF sheet", Outcome.SHARED)] * 3
    failure = RuntimeError("render failed")
    renders, got = four_at_once(cache, b"broken", failure)
    assert renders == 1 and got == [failure] * 4
    # The sheet is kept; the failure left nothing behind, nor a render in flight.
    assert cache.stats().entries == 1
    assert cache.get_or_render(b"sheet", lambda: b"unused") == (b"%PDF sheet", Outcome.HIT)
    assert cache.get_or_render(b"broken", lambda: b"fixed") == (b"fixed", Outcome.MISS)


# -- through the API ----------------------------------------------------------------------


def make_client(db_url: str, broker: Broker, topic_root: str, **settings: Any) -> TestClient:
    return TestClient(
        create_app(
            Settings(database_url=db_url, mqtt_url=broker.url, topic_root=topic_root, **settings)
        )
    )


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    with make_client(db_url, broker, topic_root) as test_client:
        yield test_client


def commission(client: TestClient, keys: dict[str, Any], count: int, gtin: str = GTIN_COLA) -> str:
    made = client.post("/v1/labels", json={"gtin": gtin, "count": count}, headers=keys["fjord"])
    assert made.status_code == 201, made.text
    return str(made.json()["download"])


def cache_metrics(client: TestClient, keys: dict[str, Any]) -> dict[str, float]:
    """The cache's series on /metrics: hit, shared, miss, evictions, bytes."""
    text = client.get("/metrics", headers=keys["operator"]).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "looptrack_label_downloads_total":
                found[sample.labels["outcome"]] = sample.value
            elif sample.name == "looptrack_label_cache_evictions_total":
                found["evictions"] = sample.value
            elif sample.name == "looptrack_label_cache_bytes":
                found["bytes"] = sample.value
    return found


def test_a_download_again_is_the_same_bytes_from_the_cache_and_304_with_its_etag(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    download = commission(client, keys, 30)
    before = cache_metrics(client, keys)
    assert (before["hit"], before["miss"], before["bytes"]) == (0, 0, 0)

    first = client.get(download, headers=keys["fjord"])
    again = client.get(download, headers=keys["fjord"])
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and first.content.startswith(b"%PDF")
    after = cache_metrics(client, keys)
    assert (after["miss"], after["hit"]) == (1, 1)
    assert after["bytes"] == len(first.content)
    assert first.headers["etag"] == again.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"

    # An admin is let in as well, to the same file; its ETag answers 304 without a body.
    assert client.get(download, headers=keys["admin"]).content == first.content
    for tags in (first.headers["etag"], f'"other", {first.headers["etag"]}', "*"):
        unchanged = client.get(download, headers={**keys["fjord"], "If-None-Match": tags})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == first.headers["etag"]
    stale = client.get(download, headers={**keys["fjord"], "If-None-Match": 'W/"0123"'})
    assert stale.status_code == 200 and stale.content == first.content
    assert cache_metrics(client, keys)["hit"] == 3


def test_another_brand_gets_nothing_of_a_cached_batch_nor_a_brand_that_lost_the_product(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    download = commission(client, keys, 5)
    mine = client.get(download, headers=keys["fjord"])
    assert mine.status_code == 200
    etag = mine.headers["etag"]
    assert_problem(client.get(download, headers=keys["other"]), 404, "no label batch")
    guessed = client.get(download, headers={**keys["other"], "If-None-Match": etag})
    assert_problem(guessed, 404, "no label batch")
    assert cache_metrics(client, keys)["hit"] == 0

    # The product moves to the other brand: access is checked on every download.
    moved = client.put(
        f"/v1/products/{COLA}",
        json={"packaging_type": "pet-0.5l", "brand": "other", "name": "Fjord Cola 0.5 l"},
        headers=keys["admin"],
    )
    assert moved.status_code in (200, 201), moved.text
    assert_problem(client.get(download, headers=keys["fjord"]), 404, "no label batch")
    theirs = client.get(download, headers=keys["other"])
    assert theirs.content == mine.content
    assert cache_metrics(client, keys)["hit"] == 1


def test_other_options_or_changed_labels_are_rendered_not_served_from_the_cache(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    download = commission(client, keys, 30)

    def get(**params: Any) -> Any:
        response = client.get(download, params=params, headers=keys["fjord"])
        assert response.status_code == 200, response.text
        return response

    variants = [get(), get(columns=4, rows=10), get(columns=4, rows=8), get(format="zip")]
    assert len({v.content for v in variants}) == len({v.headers["etag"] for v in variants}) == 4
    assert [len(page_texts(v.content)) for v in variants[:3]] == [2, 1, 1]
    # The zip's layout parameters make no file of their own.
    assert get(format="zip", columns=2).content == variants[3].content
    assert cache_metrics(client, keys) | {"bytes": 0} == {
        "hit": 1,
        "shared": 0,
        "miss": 4,
        "evictions": 0,
        "bytes": 0,
    }

    # A renamed product or a new deposit: new labels, never the cached ones.
    db.execute("UPDATE products SET name = 'Fjord Cola Zero 0.5 l' WHERE item_class = %s", (COLA,))
    renamed = get()
    assert renamed.headers["etag"] != variants[0].headers["etag"]
    assert "Fjord Cola Zero" in page_texts(renamed.content)[0]
    assert "Fjord Cola Zero" not in page_texts(variants[0].content)[0]
    db.execute("UPDATE packaging_types SET deposit = 300 WHERE id = 'pet-0.5l'")
    dearer = get()
    assert "3.00 NOK" in page_texts(dearer.content)[0]
    assert "2.00 NOK" in page_texts(renamed.content)[0]
    stale = client.get(
        download, headers={**keys["fjord"], "If-None-Match": renamed.headers["etag"]}
    )
    assert stale.status_code == 200 and stale.content == dearer.content
    assert cache_metrics(client, keys)["miss"] == 6


def test_the_cache_keeps_to_labels_cache_size_and_renders_what_it_let_go(
    db_url: str, broker: Broker, topic_root: str, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    size = 40_000
    with make_client(db_url, broker, topic_root, labels_cache_size=f"{size}B") as client:
        downloads = [commission(client, keys, 5) for _ in range(10)]
        sizes = []
        for download in downloads:
            response = client.get(download, headers=keys["fjord"])
            assert response.status_code == 200
            sizes.append(len(response.content))
            assert cache_metrics(client, keys)["bytes"] <= size
        # Small sheets, but more of them than fit (none above a fifth of the bound).
        assert max(sizes) <= size / 5 < sum(sizes)
        held = cache_metrics(client, keys)
        assert held["evictions"] >= 1 and held["miss"] == len(downloads)
        again = client.get(downloads[0], headers=keys["fjord"])  # the least recent: gone
        assert again.status_code == 200
        assert cache_metrics(client, keys)["miss"] == len(downloads) + 1
        assert client.get(downloads[-1], headers=keys["fjord"]).status_code == 200
        assert cache_metrics(client, keys)["hit"] == 1


def test_the_same_large_download_at_once_renders_once(
    client: TestClient,
    keys: dict[str, Any],
    db: psycopg.Connection[Any],
) -> None:
    seed_registry(db, [])
    download = commission(client, keys, sheets.SMALL_RENDER + 20)
    answers: list[Any] = []
    # Both render slots taken, as if two other large renders ran: the first request
    # waits for a slot, the others for its render.
    taken = [sheets._render_slots.acquire(timeout=5) for _ in range(sheets.RENDER_SLOTS)]
    try:
        assert all(taken)
        threads = [
            threading.Thread(
                target=lambda: answers.append(client.get(download, headers=keys["fjord"]))
            )
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
    finally:
        for _ in taken:
            sheets._render_slots.release()
    for thread in threads:
        thread.join(30)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1
    counts = cache_metrics(client, keys)
    assert counts["miss"] == 1 and counts["hit"] + counts["shared"] == 2


def shared(client: TestClient) -> int:
    """Downloads that waited for an identical render (0 before the cache is made)."""
    cache = getattr(client.app.state, "label_cache", None)  # type: ignore[attr-defined]
    return 0 if cache is None else int(cache.stats().outcomes[Outcome.SHARED])


def test_downloads_waiting_for_a_render_hold_no_database_connection(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    """More waiting downloads than the pool has connections (api.app.POOL_MAX): other
    requests are still answered while they wait."""
    seed_registry(db, [])
    download = commission(client, keys, sheets.SMALL_RENDER + 20)
    waiting = POOL_MAX + 2
    answers: list[int] = []
    taken = [sheets._render_slots.acquire(timeout=5) for _ in range(sheets.RENDER_SLOTS)]
    try:
        assert all(taken)
        threads = [
            threading.Thread(
                target=lambda: answers.append(
                    client.get(download, headers=keys["fjord"]).status_code
                )
            )
            for _ in range(waiting)
        ]
        for thread in threads:
            thread.start()
        # All of them waiting: one for a render slot, the others for its render.
        deadline = time.monotonic() + 20
        while shared(client) < waiting - 1:
            assert time.monotonic() < deadline, "downloads stuck before the cache"
            time.sleep(0.05)
        small = threading.Thread(
            target=lambda: answers.append(
                client.get("/v1/products", headers=keys["fjord"]).status_code
            )
        )
        small.start()
        small.join(10)
        assert not small.is_alive(), "a small request waited for the renders"
        assert answers == [200]
    finally:
        for _ in taken:
            sheets._render_slots.release()
    for thread in threads:
        thread.join(30)
    assert answers == [200] * (waiting + 1)
