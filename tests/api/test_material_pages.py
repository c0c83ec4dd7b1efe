"""The material pages (issue 19): the operator's flows and targets and a brand's placed-on-
market view, over HTTP without a browser. The registry goes in through the API and the
events through the ingest's own writer; every figure shown is checked against the
scenario's (tests/api/material_scenario.py), and a brand sees neither another brand's
products nor the scheme's collected and sorted figures."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api import material_scenario as world
from tests.conftest import Broker
from tests.storing import store

# The operator's material CSV, column by column (as GET /v1/stats/materials orders them).
FLOW_CSV = [
    "bucket_start", "material", "placed_kg", "collected_kg", "sorted_kg", "sorted_reuse_kg",
    "sorted_recycling_kg", "sorted_energy_recovery_kg", "sorted_residual_kg",
    "sorted_unmapped_kg", "recycled_content_kg", "renewable_content_kg", "fibre_kg",
    "unweighed_qty", "collection_rate", "material_recycling_rate", "reuse_share",
    "recycled_content_share", "renewable_content_share", "fibre_share",
]  # fmt: skip
# A brand's: the placed-on-market side only.
PLACED_CSV = [
    "bucket_start", "material", "placed_kg", "recycled_content_kg", "recycled_content_share",
    "renewable_content_kg", "renewable_content_share", "fibre_kg", "fibre_share",
    "unweighed_qty",
]  # fmt: skip
TARGET_CSV = [
    "id", "name", "metric", "materials", "value", "year", "baseline_value", "baseline_year",
    "source", "latest_value", "latest_from", "latest_to", "numerator_kg", "denominator_kg",
    "slope_per_year", "projected", "on_track",
]  # fmt: skip
KG = ["placed_kg", "collected_kg", "sorted_kg", "sorted_reuse_kg", "sorted_recycling_kg",
      "sorted_energy_recovery_kg", "sorted_residual_kg", "sorted_unmapped_kg",
      "recycled_content_kg", "renewable_content_kg", "fibre_kg"]  # fmt: skip
PLACED_KG = ["placed_kg", "recycled_content_kg", "renewable_content_kg", "fibre_kg"]
# (rate, numerator kg fields, denominator kg field), as docs/materials.md defines them.
RATES = [
    ("collection_rate", ["collected_kg"], "placed_kg"),
    ("material_recycling_rate", ["sorted_recycling_kg"], "placed_kg"),
    ("reuse_share", ["sorted_reuse_kg"], "sorted_kg"),
    ("recycled_content_share", ["recycled_content_kg"], "placed_kg"),
    ("renewable_content_share", ["renewable_content_kg"], "placed_kg"),
    ("fibre_share", ["fibre_kg"], "placed_kg"),
]
NO_VALUE = "\N{EN DASH}"  # what the pages show where a figure has no value
PLACED_RATES = [r for r in RATES if r[2] == "placed_kg" and r[1][0] in PLACED_KG]


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, mqtt_url=broker.url, topic_root=topic_root)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def keys(db: psycopg.Connection[Any]) -> dict[str, str]:
    return {
        "operator": create_key(db, Role.OPERATOR, "op"),
        "fjord": create_key(db, Role.BRAND, "fjord", brand="fjord"),
        "other": create_key(db, Role.BRAND, "other", brand="other"),
    }


@pytest.fixture
def scenario(client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """The scenario's registry through the API, its events through the ingest's writer."""
    operator = {"Authorization": f"Bearer {keys['operator']}"}
    world.register(lambda path, body: client.put(path, json=body, headers=operator).status_code)
    world.add_devices(db)
    for device, events in world.device_events().items():
        store(db, device, events)


def window() -> dict[str, str]:
    """The page's query for the scenario's two whole months, per month, in UTC."""
    before, _, this = world.months()
    return {"from": before.isoformat(), "to": this.isoformat(), "tz": "UTC", "bucket": "month"}


def log_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    assert client.post("/login", data={"key": key}).status_code == 303


def read_csv(answer: Any) -> tuple[list[str], list[dict[str, str]]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(answer.text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def table_rows(page: str) -> dict[tuple[str, str], dict[str, str]]:
    """(month 'YYYY-MM', material) → field → the text a person reads, from the page's
    table of material rows."""
    table = page[page.index('<table id="material-rows">') :]
    table = table[: table.index("</table>")]
    found = {}
    for bucket, material, cells in re.findall(
        r'<tr data-bucket="([^"]+)" data-material="([^"]+)">(.*?)</tr>', table, re.S
    ):
        values = re.findall(r'<td class="num ([a-z_]+)">([^<]*)</td>', cells)
        found[(bucket[:7], material)] = {field: html.unescape(text) for field, text in values}
    return found


def kg(value: float) -> str:
    return f"{value:,.3f}"


def percent(numerator: float, denominator: float) -> str:
    return f"{100 * numerator / denominator:.1f} %" if denominator else NO_VALUE


def month_label(index: int) -> str:
    return world.months()[index].strftime("%Y-%m")


def test_the_operator_sees_every_flow_figure_rate_and_target(
    client: TestClient, keys: dict[str, str], scenario: None
) -> None:
    log_in(client, keys["operator"])
    answer = client.get("/dashboard/materials", params=window())
    assert answer.status_code == 200, answer.text
    page = answer.text
    expected = world.expected()
    shown = table_rows(page)
    assert set(shown) == {(month_label(m), material) for m, material in expected}
    for (month, material), figures in expected.items():
        row = shown[(month_label(month), material)]
        assert {f: row[f] for f in KG} == {f: kg(figures.get(f, 0.0)) for f in KG}, material
        for name, numerators, denominator in RATES:
            parts = sum(figures.get(n, 0.0) for n in numerators)
            assert row[name] == percent(parts, figures.get(denominator, 0.0)), (material, name)
        assert row["unweighed_qty"] == "0"

    # A flow chart per material, over both months: placed → collected → sorted by outcome.
    for material in sorted({material for _, material in expected}):
        start = page.index(f'<figure data-material="{material}">')
        figure = page[start : page.index("</figure>", start)]
        assert f'role="img" aria-label="{material}: material flow"' in figure
        for stage in ("Placed on market", "Collected", "Sorted"):
            assert f">{stage}</text>" in figure
    pet = page[page.index('<figure data-material="PET">') :]
    pet = pet[: pet.index("</figure>")]
    recycled_pet = 1.850 + 0.790  # the sorting line's measured weights
    assert f"material recycling {recycled_pet:.2f} kg" in pet
    assert "energy recovery 0.200 kg" in pet and "unmapped 0.060 kg" in pet
    placed_pet = (100 + 50 + 50) * 20 / 1000
    collected_pet = (70 + 40 + 45) * 20 / 1000
    assert f"collection rate {percent(collected_pet, placed_pet)}" in pet

    # The targets: latest of the last 12 whole months (both scenario months), in words.
    targets = _target_rows(page)
    assert set(targets) == {
        "no-plastic-recycling-2030", "no-fibre-replacement-2025",
        "no-recycled-renewable-plastic-2030", "eu-ppwr-collection-2029",
    }  # fmt: skip
    plastic_placed = placed_pet + 2 * 1.6  # PET bottles and the crates (HDPE)
    recycling = targets["no-plastic-recycling-2030"]
    assert recycling["latest"] == percent(recycled_pet, plastic_placed)
    assert recycling["goal"] == "55.0 % by 2030"
    assert (
        'role="img" aria-label="Material recycling of plastic packaging: '
        f'{percent(recycled_pet, plastic_placed)} against a target of 55.0 %"'
    ) in page
    all_placed = placed_pet + 40 * 0.010 + 20 * 0.030 + 2 * 1.6
    fibre = targets["no-fibre-replacement-2025"]  # its year is over: judged on the latest value
    assert fibre["latest"] == percent(20 * 0.030, all_placed)
    assert fibre["status"] == "on track"  # 7.3 % ≥ 5 %
    content = targets["no-recycled-renewable-plastic-2030"]
    recycled_plastic = 100 * 0.020 * 0.25 + 50 * 0.020 * 0.50 + 50 * 0.020 * 0.25
    assert content["latest"] == percent(recycled_plastic, plastic_placed)
    # 33 % of the first month's plastic, 6 % of the second's: a falling trend cannot reach 60 %.
    assert content["status"] == "not on track"


def _target_rows(page: str) -> dict[str, dict[str, str]]:
    rows = {}
    for target, cells in re.findall(r'<tr data-target="([^"]+)">(.*?)</tr>', page, re.S):
        rows[target] = {
            "goal": re.search(r'class="num goal">([^<]*)<', cells)[1],  # type: ignore[index]
            "latest": re.search(r'class="num latest">([^<]*)<', cells)[1],  # type: ignore[index]
            "status": re.search(r'class="status [a-z-]+">([^<]*)<', cells)[1],  # type: ignore[index]
        }
    return rows


def test_the_operator_downloads_the_material_and_target_tables(
    client: TestClient, keys: dict[str, str], scenario: None
) -> None:
    log_in(client, keys["operator"])
    page = client.get("/dashboard/materials", params=window()).text
    # The page's own CSV link: the same period and bucket as its table.
    link = html.unescape(re.search(r'href="(/dashboard/materials\.csv\?[^"]*)"', page)[1])  # type: ignore[index]
    header, rows = read_csv(client.get(link))
    assert header == FLOW_CSV
    expected = world.expected()
    before, last, _ = world.months()
    starts = {0: f"{before.isoformat()}T00:00:00+00:00", 1: f"{last.isoformat()}T00:00:00+00:00"}
    assert {(r["bucket_start"], r["material"]) for r in rows} == {
        (starts[m], material) for m, material in expected
    }
    for row in rows:
        month = next(m for m, start in starts.items() if start == row["bucket_start"])
        figures = expected[(month, row["material"])]
        for field in KG:
            assert float(row[field]) == pytest.approx(figures.get(field, 0.0), abs=5e-4)
        for name, numerators, denominator in RATES:
            below = figures.get(denominator, 0.0)
            if below:
                above = sum(figures.get(n, 0.0) for n in numerators)
                assert float(row[name]) == pytest.approx(above / below, rel=1e-9)
            else:
                assert row[name] == ""  # no denominator: no rate
        assert row["unweighed_qty"] == "0"

    header, targets = read_csv(client.get("/dashboard/targets.csv"))
    assert header == TARGET_CSV
    by_id = {t["id"]: t for t in targets}
    fibre = by_id["no-fibre-replacement-2025"]
    assert (fibre["materials"], fibre["value"], fibre["year"], fibre["on_track"]) == (
        "all", "0.05", "2025", "True",
    )  # fmt: skip
    assert float(fibre["numerator_kg"]) == pytest.approx(0.6)
    assert float(fibre["denominator_kg"]) == pytest.approx(4.0 + 0.4 + 0.6 + 3.2)
    content = by_id["no-recycled-renewable-plastic-2030"]
    assert content["materials"] == "PET HDPE PP" and content["on_track"] == "False"
    assert float(content["slope_per_year"]) < 0  # a negative number stays a number
    assert (content["latest_from"], content["latest_to"]) == (
        world.months()[2].replace(year=world.months()[2].year - 1).isoformat(),
        world.months()[2].isoformat(),
    )


def test_a_brand_sees_only_the_placed_side_of_its_own_products(
    client: TestClient, keys: dict[str, str], scenario: None
) -> None:
    log_in(client, keys["fjord"])
    answer = client.get("/portal/materials", params=window())
    assert answer.status_code == 200, answer.text
    page = answer.text
    mine = world.expected(brand="fjord")
    shown = table_rows(page)
    assert set(shown) == {(month_label(m), material) for m, material in mine if
                          mine[(m, material)].get("placed_kg")}  # fmt: skip
    for (month, material), row in shown.items():
        figures = mine[(next(m for m in (0, 1) if month_label(m) == month), material)]
        assert set(row) == {*PLACED_KG, *(r[0] for r in PLACED_RATES), "unweighed_qty"}
        assert {f: row[f] for f in PLACED_KG} == {f: kg(figures.get(f, 0.0)) for f in PLACED_KG}
        for name, (numerator,), denominator in PLACED_RATES:
            assert row[name] == percent(figures.get(numerator, 0.0), figures[denominator])
    # The other brand's bottles are not in fjord's PET: 100 and 50 bottles, not 150 and 50.
    assert shown[(month_label(0), "PET")]["placed_kg"] == kg(100 * 0.020)
    assert 'aria-label="Placed on the market per material, by content"' in page

    header, rows = read_csv(client.get(f"/portal/materials.csv?{_query(page)}"))
    assert header == PLACED_CSV
    assert {r["material"] for r in rows} == {"PET", "aluminium", "fibre", "HDPE"}
    pet = [r for r in rows if r["material"] == "PET"]
    assert sorted(float(r["placed_kg"]) for r in pet) == [1.0, 2.0]
    assert {float(r["recycled_content_share"]) for r in pet} == {0.25}

    # Nothing of the other brand, and none of the scheme's collected or sorted figures.
    everything = page + "".join(
        client.get(path).text for path in ("/portal/materials.csv", "/portal/materials")
    )
    assert world.OTHER_NAME not in everything and world.OTHER not in everything
    lowered = everything.lower()
    assert "collect" not in lowered and "sorted" not in lowered and "recycling" not in lowered
    scheme_only = [kg((70 + 40) * 0.020), kg(1.850), kg(0.790), kg(0.060), kg(1.600)]
    assert not [figure for figure in scheme_only if figure in page]
    assert client.get("/portal/targets.csv").status_code == 404
    assert client.get("/portal/material-flows.csv").status_code == 404


def _query(page: str) -> str:
    link = re.search(r'href="/portal/materials\.csv\?([^"]*)"', page)
    assert link is not None
    return html.unescape(link[1])


def test_the_material_pages_keep_to_their_roles(client: TestClient, keys: dict[str, str]) -> None:
    for path in ("/dashboard/materials", "/portal/materials"):
        answer = client.get(path)  # nobody logged in
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?")
    log_in(client, keys["fjord"])
    for path in ("/dashboard/materials", "/dashboard/materials.csv", "/dashboard/targets.csv"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert "This%20page%20needs%20an%20operator%20key" in answer.headers["location"]
    assert 'href="/portal/materials"' in client.get("/portal").text
    log_in(client, keys["operator"])
    assert client.get("/portal/materials").status_code == 303
    dashboard = client.get("/dashboard").text
    assert 'href="/dashboard/materials"' in dashboard
    empty = client.get("/dashboard/materials").text
    assert "No packaging placed, collected or sorted in this period." in empty
    assert "No material flows in this period." in empty
    header, rows = read_csv(client.get("/dashboard/materials.csv"))
    assert header == FLOW_CSV and rows == []


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text(
    client: TestClient, keys: dict[str, str]
) -> None:
    operator = {"Authorization": f"Bearer {keys['operator']}"}
    hostile = {"name": '=HYPERLINK("https://evil.example/","open")', "metric": "fibre_share",
               "value": 0.1, "year": 2030, "source": "@SUM(1+1)"}  # fmt: skip
    assert client.put("/v1/targets/x", json=hostile, headers=operator).status_code == 201
    log_in(client, keys["operator"])
    _, targets = read_csv(client.get("/dashboard/targets.csv"))
    (row,) = [t for t in targets if t["id"] == "x"]
    assert row["name"] == "'" + hostile["name"] and row["source"] == "'@SUM(1+1)"
    assert row["value"] == "0.1"
    page = client.get("/dashboard/materials").text
    assert "=HYPERLINK(&#34;https://evil.example/&#34;,&#34;open&#34;)" in page or (
        "=HYPERLINK(&quot;https://evil.example/&quot;,&quot;open&quot;)" in page
    )

    world.register(lambda path, body: client.put(path, json=body, headers=operator).status_code)
    renamed = {**world.PRODUCTS[world.COLA], "name": "+1-2 cola"}
    assert client.put(f"/v1/products/{world.COLA}", json=renamed, headers=operator).status_code in (
        200, 201,
    )  # fmt: skip
    log_in(client, keys["fjord"])
    _, products = read_csv(client.get("/portal/products.csv"))
    assert "'+1-2 cola" in {p["name"] for p in products}


def test_each_table_asks_for_its_figures_once(
    client: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures come from the rollups through material_rows and targets, one call per
    table: the flow charts are drawn from the table's own rows."""
    from api.pages import routes

    calls: list[str] = []

    def counted(name: str) -> Any:
        real = getattr(routes, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("material_rows", "targets"):
        monkeypatch.setattr(routes, name, counted(name))
    log_in(client, keys["operator"])
    assert client.get("/dashboard/materials").status_code == 200
    assert sorted(calls) == ["material_rows", "targets"]
    log_in(client, keys["fjord"])
    calls.clear()
    assert client.get("/portal/materials").status_code == 200
    assert calls == ["material_rows"]
