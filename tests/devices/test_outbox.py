"""The outbox forgets events by the ids receipts name, queue files from before receipts
included."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from devices.outbox import Outbox


def test_a_queue_file_from_before_receipts_is_upgraded_and_receipts_empty_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);"
        "CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL);"
        "INSERT INTO counter VALUES (1, 2);"
    )
    upper = "9F1C3F4E-5A7B-4C1D-8E2F-0A1B2C3D4E5F"  # receipts write ids in lower case
    for seq, event_id in ((1, upper), (2, "0b6c1c1e-0000-4000-8000-000000000002")):
        old.execute("INSERT INTO outbox VALUES (?, ?)", (seq, json.dumps({"event_id": event_id})))
    old.commit()
    old.close()
    outbox = Outbox(path)
    try:
        assert outbox.pending() == 2
        assert outbox.remove_events([upper.lower(), "not-queued"]) == 1
        assert [q.seq for q in outbox.between(1, 2)] == [2]
        queued = outbox.append(lambda seq: json.dumps({"seq": seq}), upper)
        assert queued.seq == 3
        assert outbox.remove_events([upper.lower(), "0b6c1c1e-0000-4000-8000-000000000002"]) == 2
        assert outbox.pending() == 0
    finally:
        outbox.close()
