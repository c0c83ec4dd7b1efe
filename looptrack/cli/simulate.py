"""`looptrack simulate`: a fleet of simulated devices publishing realistic traffic."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
import typer
import yaml

from looptrack.cli.common import EXIT_BAD_INPUT, connect, fail, load_settings

if TYPE_CHECKING:
    from devices.simulator.scenario import Scenario


def _simulation_scenario(scenario: str | None, overrides: dict[str, dict[str, Any]]) -> Scenario:
    """The scenario of `--scenario` (a file, or the name of a shipped one) with the flags
    applied; exits 2 with the problem when it is invalid."""
    from devices.simulator.scenario import Scenario, builtin_scenario, load_scenario

    try:
        if scenario is None:
            base = Scenario()
        elif Path(scenario).is_file():
            base = load_scenario(Path(scenario))
        else:
            base = builtin_scenario(scenario)
        return base.with_overrides(**{k: v for k, v in overrides.items() if v})
    except FileNotFoundError as exc:
        raise fail(
            f"--scenario {scenario}: no such file or shipped scenario (small, norway-year)",
            EXIT_BAD_INPUT,
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise fail(f"scenario {scenario or '(flags)'}: {exc}", EXIT_BAD_INPUT) from exc


def simulate(
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario YAML file, or a shipped one: small, norway-year."),
    ] = None,
    shops: Annotated[int | None, typer.Option(min=1, help="Shops (with RVMs).")] = None,
    sorting_sites: Annotated[int | None, typer.Option(min=1, help="Sorting sites.")] = None,
    rvms_per_shop: Annotated[int | None, typer.Option(min=1, help="RVMs in every shop.")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Events/s: the live rate, else a cap.")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(help="Simulated span ending now, e.g. 1y, 30d, 12h (live: wall time)."),
    ] = None,
    events: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    compress: Annotated[
        str | None,
        typer.Option(
            help="Simulated per wall time: 1y/5m, a factor, or max (as fast as possible)."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed: same seed and end, same traffic.")
    ] = None,
    scale: Annotated[
        float | None, typer.Option(min=0.001, help="Multiplies every volume (0.1: a tenth).")
    ] = None,
    live: Annotated[
        bool, typer.Option(help="Timestamps = wall clock now, at --rate, until Ctrl-C.")
    ] = False,
    truth: Annotated[Path, typer.Option(help="Where the ground-truth JSON is written.")] = Path(
        "ground-truth.json"
    ),
    register: Annotated[
        bool, typer.Option(help="Register the world (types, products, sites, devices) first.")
    ] = True,
) -> None:
    """Run a fleet of simulated devices publishing realistic traffic, then write the ground
    truth that /v1/stats/return-rates?bucket=total and /v1/stats/reuse must equal."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from devices.simulator import run_history, run_live, world_seed
    from devices.simulator.runner import BrokerUnreachable
    from devices.simulator.runner import Progress as RunProgress
    from schemas.registry import apply_seed

    chosen = _simulation_scenario(
        scenario,
        {
            "top": {k: v for k, v in {"seed": seed, "scale": scale}.items() if v is not None},
            "world": {
                k: v
                for k, v in {
                    "shops": shops,
                    "sorting_sites": sorting_sites,
                    "rvms_per_shop": (rvms_per_shop, rvms_per_shop) if rvms_per_shop else None,
                }.items()
                if v is not None
            },
            "timing": {
                k: v
                for k, v in {
                    "rate": rate, "duration": duration, "events": events, "compress": compress,
                }.items()
                if v is not None
            },
        },
    )  # fmt: skip
    if chosen.timing.end is not None and not live:
        typer.echo(f"simulating up to {chosen.timing.end.isoformat()} (timing.end)")
    settings = load_settings()
    if register:
        with connect(settings) as conn:
            try:
                counts = apply_seed(conn, world_seed(chosen))
            except psycopg.errors.UndefinedTable as exc:
                raise fail("the schema is missing: run `looptrack db migrate` first") from exc
        typer.echo("registered " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    # One connect/disconnect line per simulated device would drown the progress bar.
    logging.getLogger("looptrack.device").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console = Console(stderr=True)
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ]
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(
                "live" if live else chosen.name, total=None if live else 1.0, info=""
            )

            def report(update: RunProgress) -> None:
                per_s = update.published / update.elapsed_s if update.elapsed_s else 0.0
                info = f"{update.published:,} events, {per_s:,.0f}/s"
                if update.simulated_until is not None:
                    info += f", at {update.simulated_until:%Y-%m-%d %H:%M} UTC"
                progress.update(task, completed=update.fraction, info=info)

            if live:
                result = run_live(
                    chosen, settings.mqtt, settings.topic_root, stop, report, rate=rate
                )
            else:
                result = run_history(
                    chosen, settings.mqtt, settings.topic_root, stop=stop, on_progress=report
                )
    except BrokerUnreachable as exc:
        raise fail(f"cannot reach the broker at {settings.mqtt_url}: {exc}") from exc
    except TimeoutError as exc:
        raise fail(f"the broker at {settings.mqtt_url} stopped acknowledging: {exc}") from exc
    summary = result.summary(as_of=datetime.now(UTC), tz=settings.timezone)
    try:
        truth.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    except OSError as exc:
        raise fail(f"{truth}: {exc.strerror or exc}") from exc
    for row in summary["return_rates"]["rows"]:
        rate_text = "-" if row["return_rate"] is None else f"{row['return_rate']:.3f}"
        typer.echo(
            f"  {row['packaging_type'] or '(unknown)':<12} sold {row['sold']:>9,}"
            f"  returned {row['returned']:>9,}  rejected {row['rejected']:>7,}  rate {rate_text}"
        )
    for row in summary["reuse"]["rows"]:
        typer.echo(
            f"  {row['packaging_type']:<12} items {row['items']:>7,}  trips {row['trips']:>9,}"
            f"  mean {row['mean_trips']:.2f}  lost {row['lost']}"
        )
    query = summary["return_rates"]["query"]
    typer.echo(
        f"published {result.published:,} events in {result.elapsed_s:.1f} s"
        f"{' (stopped early)' if result.stopped and not live else ''}; ground truth in {truth}\n"
        f"compare: /v1/stats/return-rates?bucket=total&from={query['from']}&to={query['to']}"
        f"&tz={query['tz']} and /v1/stats/reuse"
    )
