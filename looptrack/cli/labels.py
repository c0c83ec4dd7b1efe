"""`looptrack labels`: commission serialised items and write their label sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import psycopg
import typer

from looptrack.cli.common import EXIT_BAD_INPUT, connect, fail, load_settings


def labels(
    count: Annotated[int, typer.Option(min=1, help="Items to commission, one label each.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="FILE.pdf (label sheets) or FILE.zip (PNGs).")
    ],
    gtin: Annotated[str | None, typer.Option(help="GTIN of a registered product.")] = None,
    grai: Annotated[
        str | None,
        typer.Option(help="Instead of --gtin: a registered GRAI asset type (14 digits)."),
    ] = None,
    columns: Annotated[int, typer.Option(min=1, max=8, help="PDF labels across A4.")] = 3,
    rows: Annotated[int, typer.Option(min=1, max=20, help="PDF labels down A4.")] = 8,
) -> None:
    """Commission COUNT new serialised items of GTIN (or returnable assets of a GRAI asset
    type) and write their QR labels to FILE."""
    from rich.progress import Progress

    from api.labels import (
        LabelFormat,
        UnknownProduct,
        batch_items,
        commission,
        labels_for,
        render,
    )
    from schemas.grai import InvalidGrai, grai_item_class, validate_asset_type
    from schemas.gtin import InvalidGtin, normalize_gtin

    settings = load_settings()
    formats = {".pdf": LabelFormat.PDF, ".zip": LabelFormat.ZIP}
    fmt = formats.get(output.suffix.lower())
    if fmt is None:
        raise fail(f"{output}: write a .pdf (label sheets) or a .zip (PNGs)", EXIT_BAD_INPUT)
    if count > settings.labels_max_count:
        raise fail(
            f"--count {count} is above the maximum of {settings.labels_max_count}"
            " (LOOPTRACK_LABELS_MAX_COUNT)",
            EXIT_BAD_INPUT,
        )
    if (gtin is None) == (grai is None):
        raise fail("give either --gtin or --grai", EXIT_BAD_INPUT)
    try:
        if grai is not None:
            item_class = grai_item_class(validate_asset_type(grai))
            named = f"asset type {grai}"
        else:
            item_class = normalize_gtin(gtin or "")
            named = f"product {item_class}"
    except (InvalidGtin, InvalidGrai) as exc:
        option = "--gtin" if grai is None else "--grai"
        raise fail(f"{option} {grai or gtin!r}: {exc}", EXIT_BAD_INPUT) from exc
    with connect(settings) as conn, Progress(transient=False) as progress:
        commissioned = progress.add_task("commissioning", total=count)
        drawn = progress.add_task("drawing labels", total=count)
        try:
            batch = commission(
                conn,
                item_class,
                count,
                fmt.value,
                created_by="looptrack labels",
                progress=lambda done: progress.update(commissioned, completed=done),
            )
        except UnknownProduct as exc:
            raise fail(f"no {named}: register it first", EXIT_BAD_INPUT) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise fail("the schema is missing: run `looptrack db migrate` first") from exc
        found = batch_items(conn, batch.id, None)
        assert found is not None  # commissioned in this transaction
        sheet = labels_for(item_class, batch.serials, found[1], settings.public_base_url)
        body = render(
            sheet, fmt, lambda done: progress.update(drawn, completed=done), (columns, rows)
        )
        progress.update(drawn, completed=count)
        try:
            output.write_bytes(body)
        except OSError as exc:
            # The transaction is rolled back: no items without their labels.
            conn.rollback()
            raise fail(f"{output}: {exc.strerror or exc}") from exc
        conn.commit()
    typer.echo(f"{count} items of {named} commissioned (batch {batch.id}); labels in {output}")
