"""`looptrack dlq`: dead letters listed, shown and replayed through the broker."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from looptrack.cli.common import connect, fail, load_settings

app = typer.Typer(help="Dead letters: inspect and re-ingest.", no_args_is_help=True)


@app.command("list")
def dlq_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    pending: Annotated[bool, typer.Option(help="Hide those already replayed.")] = True,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Dead letters, newest first: id, time, reason, device, batch index, detail, payload
    size, and the payload's first bytes (all of it: `looptrack dlq show ID`)."""
    from api.dead_letters import DeadLetterFilter, list_dead_letters

    with connect(load_settings()) as conn:
        rows = list_dead_letters(
            conn, DeadLetterFilter(reason=reason, device_id=device), pending=pending,
            before=None, limit=limit,
        )  # fmt: skip
    for row in rows:
        index = "" if row["batch_index"] is None else f"[{row['batch_index']}]"
        size = f"{row['payload_size']} B" + (" (head kept)" if row["payload_truncated"] else "")
        typer.echo(
            f"{row['id']}\t{row['received_at']:%Y-%m-%dT%H:%M:%SZ}\t{row['reason']}\t"
            f"{row['device_id'] or '-'}{index}\t{row['detail']}\t{size}\t"
            f"{_one_line(row['payload_preview'], row['payload_encoding'])}"
        )
    typer.echo(f"{len(rows)} dead letter(s)", err=True)


def _one_line(preview: str, encoding: str) -> str:
    """A payload preview fit for one line of a terminal: control characters escaped."""
    if encoding == "hex":
        return f"hex:{preview}"
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in preview)


@app.command("show")
def dlq_show(dead_letter_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Write one dead letter's stored payload to standard output, byte for byte (only its
    first 4 KiB for a payload too large to keep); what it is goes to standard error."""
    from api.dead_letters import stored_dead_letter

    with connect(load_settings()) as conn:
        row = stored_dead_letter(conn, dead_letter_id)
    if row is None:
        raise fail(f"no dead letter {dead_letter_id}")
    payload, size = bytes(row["payload"]), row["payload_size"]
    kept = f"first {len(payload)} bytes kept" if row["payload_truncated"] else "whole"
    typer.echo(
        f"{row['reason']} from {row['device_id'] or '-'}: {size} bytes ({kept}),"
        f" sha256 {row['payload_sha256']}",
        err=True,
    )
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()


@app.command("replay")
def dlq_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Dead letter ids; none = all matching.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
) -> None:
    """Send pending dead letters to their original topics again (e.g. after registering
    the device); the ingest worker validates them like any message."""
    import uuid

    from api.dead_letters import DeadLetterFilter, replay
    from schemas.publisher import Publisher, PublishError

    settings = load_settings()
    publisher = Publisher(settings.mqtt, f"looptrack-dlq-{uuid.uuid4().hex[:8]}")
    publisher.start()
    try:
        with connect(settings) as conn:
            which = DeadLetterFilter(ids=ids or None, reason=reason, device_id=device)
            sent = replay(conn, publisher, which, limit)
    except PublishError as exc:
        raise fail(f"replay stopped: {exc} (none marked replayed; a repeat is harmless)") from exc
    finally:
        publisher.stop()
    typer.echo(f"replayed {len(sent)} dead letter(s)")
