"""The `looptrack` command line: the one place that wires schemas, ingest and api together.
One module per command group: `run` (ingest, api, demo), `db`, `registry` (seed, devices,
keys), `broker`, `labels`, `dlq`, `simulate`; `common` holds what they share. The order
below is the order `looptrack --help` lists them in."""

from __future__ import annotations

from typing import Annotated

import typer

from looptrack.cli import broker, db, dlq, labels, registry, run, simulate
from schemas.logs import configure_logging

app = typer.Typer(help="looptrack: closed-loop packaging tracking.", no_args_is_help=True)


@app.callback()
def _main(
    log_level: Annotated[
        str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.", envvar="LOOPTRACK_LOG_LEVEL")
    ] = "INFO",
) -> None:
    configure_logging(log_level)


app.command()(run.ingest)
app.command()(run.api)
app.command()(run.demo)
app.command()(registry.seed)
app.command()(labels.labels)
app.command()(simulate.simulate)
app.add_typer(db.app, name="db")
app.add_typer(registry.devices_app, name="devices")
app.add_typer(registry.keys_app, name="keys")
app.add_typer(dlq.app, name="dlq")
app.add_typer(broker.app, name="broker")
