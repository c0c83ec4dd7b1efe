"""Retakes docs/dashboard.png, docs/materials.png and docs/portal.png for the README from a
running demo.

    python docs/screenshots.py

Runs `looptrack demo` (its own database, its own Mosquitto, a free port), waits until its
30 days of simulated history are stored, then logs in with headless Debian chromium
(Playwright, `LOOPTRACK_TEST_CHROMIUM` or `chromium` on the PATH) as the operator (the
dashboard and its material page) and as a brand owner and saves full-page screenshots.
Stops the demo with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from playwright.sync_api import Page, sync_playwright
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from looptrack.local_services import LocalMosquitto, free_port  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402

PG_SERVER = os.environ.get("LOOPTRACK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# The stored event count is sampled this often (s); once it grows by no more than the
# live traffic would (the demo's default 20 events/s, with room), the history is in.
SETTLE_S = 5
LIVE_GROWTH = 40 * SETTLE_S


def log_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()


def main() -> None:
    chromium = os.environ.get("LOOPTRACK_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("no chromium: apt-get install -y chromium")
    name = f"looptrack_docs_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(PG_SERVER, dbname=name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="looptrack-docs-") as tmp:
        broker = LocalMosquitto(Path(tmp) / "mosquitto")
        broker.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPTRACK_")}
        env.update(LOOPTRACK_DATABASE_URL=url, LOOPTRACK_MQTT_URL=broker.url,
                   PYTHONPATH=str(ROOT))  # fmt: skip
        out = Path(tmp) / "demo.out"
        with out.open("w") as sink:
            demo = subprocess.Popen(
                [sys.executable, "-m", "looptrack", "demo", "--port", str(port)],
                env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "Ctrl-C stops" not in out.read_text():
                if demo.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the demo did not come up:\n{out.read_text()[-3000:]}")
                time.sleep(0.5)
            match = re.search(r"operator key (\S+)", out.read_text())
            assert match, out.read_text()
            operator = match.group(1)
            with psycopg.connect(url, autocommit=True) as conn:
                brand_name = conn.execute("SELECT min(brand) FROM products").fetchone()
                assert brand_name is not None
                brand = create_key(conn, Role.BRAND, "docs", brand=brand_name[0])
                # The history is stored once the count grows only at the live rate.
                stored = -LIVE_GROWTH
                while True:
                    time.sleep(SETTLE_S)
                    row = conn.execute("SELECT count(*) FROM events").fetchone()
                    now = row[0] if row else 0
                    if now - stored <= LIVE_GROWTH:
                        break
                    stored = now
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                log_in(page, base, operator)
                page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)
                page.get_by_role("navigation").get_by_role("link", name="Materials").click()
                page.get_by_role("heading", name="Material flows and targets").wait_for()
                page.screenshot(path=str(ROOT / "docs" / "materials.png"), full_page=True)
                page.get_by_role("button", name="Log out").click()
                log_in(page, base, brand)
                page.screenshot(path=str(ROOT / "docs" / "portal.png"), full_page=True)
                browser.close()
            print(f"docs/dashboard.png, docs/materials.png and docs/portal.png from {now:,} events")
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
            broker.stop()
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
