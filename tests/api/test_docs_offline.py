"""`/docs` works without the internet: Swagger UI's files come from the API itself."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.app import create_app
from schemas.settings import Settings
from tests.conftest import Broker


def test_the_docs_page_loads_every_file_from_the_api_itself(db_url: str, broker: Broker) -> None:
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        # Every script, style sheet and icon the page asks for, and the document it shows.
        referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        referenced += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
        assert referenced, page.text
        assert all(url.startswith("/") for url in referenced), referenced  # no CDN
        for url in referenced:
            answer = client.get(url)
            assert answer.status_code == 200, url
        kinds = {url.rsplit(".", 1)[-1] for url in referenced}
        assert {"js", "css", "json"} <= kinds, referenced
        assert client.get("/redoc").status_code == 404  # ReDoc comes only from a CDN
