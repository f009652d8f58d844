"""The ``cairn`` command line (click + rich)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cairn import render, wire

console = Console()
err_console = Console(stderr=True)


def _connection_options(f: Any) -> Any:
    f = click.option("--host", default="127.0.0.1", show_default=True, help="Engine address.")(f)
    f = click.option("--port", default=wire.DEFAULT_PORT, show_default=True, help="Engine port.")(f)
    f = click.option("--token", envvar="CAIRN_TOKEN", default=None, help="Auth token (or $CAIRN_TOKEN).")(f)
    return f


def _client(host: str, port: int, token: str | None) -> Any:
    from cairn.client import CairnServerError, Client

    try:
        return Client(host=host, port=port, token=token)
    except CairnServerError as exc:
        raise click.ClickException(f"{host}:{port} refused the connection: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach a Cairn engine at {host}:{port}: {exc}") from None


def _show(data: Any, as_json: bool, show: Callable[[Console, Any], None]) -> None:
    """Print ``data`` as JSON for tools, or readably with ``show``."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        show(console, data)


@click.group()
@click.version_option(package_name="cairn-engine")
def main() -> None:
    """Cairn: real-time journeys and loyalty, per contact, explained."""


@main.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data folder (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=wire.DEFAULT_PORT, show_default=True)
@click.option("--shards", type=click.IntRange(1, 1024), default=None, help="Contact shards [default: CPU count].")
@click.option("--token", envvar="CAIRN_TOKEN", default=None, help="Require this token in hello.")
@click.option("--channels", "channels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Channels YAML (SMTP, webhooks, file sinks); default: every channel to DATA/sent.ndjson.")
@click.option("--fsync/--no-fsync", default=True, show_default=True,
              help="fsync each batch commit (power-loss safe) or rely on the OS (process-crash safe).")
@click.option("--held-states", default=None, type=click.IntRange(0),
              help="Contacts per shard whose decoded state stays in memory between batches "
                   "(0: none) [default: 100000].")
@click.option("--pipelined-commits/--no-pipelined-commits", default=True, show_default=True,
              help="Compute a shard's next batch while the one before commits (acks still follow commits).")
@click.option("--batch-events", default=4000, show_default=True, help="Events per shard call at most.")
@click.option("--linger-ms", default=2.0, show_default=True, help="Longest wait to fill a shard batch.")
@click.option("--clock", "clock_kind", type=click.Choice(["wall", "manual"]), default="wall", show_default=True,
              help="manual: time moves only with `cairn clock advance` (try a 3-day wait in a second).")
@click.option("--clock-start", default=None,
              help="Manual clock start, ISO 8601 (e.g. 2026-11-23T09:00:00Z) [default: now].")
def serve(data_dir: Path, host: str, port: int, shards: int | None, token: str | None,
          channels_file: Path | None, fsync: bool, held_states: int | None, pipelined_commits: bool,
          batch_events: int, linger_ms: float, clock_kind: str, clock_start: str | None) -> None:
    """Run an engine until SIGINT or SIGTERM."""
    from cairn.channels import ConfigError, load_channel_config
    from cairn.clock import ManualClock, wall_clock
    from cairn.engine import Engine, EngineConfig
    from cairn.layout import LayoutError

    try:
        channels = yaml.safe_load(channels_file.read_text()) if channels_file else None
        load_channel_config(channels)  # refuse a bad file before starting anything
    except (yaml.YAMLError, ConfigError) as exc:
        raise click.ClickException(f"{channels_file}: {exc}") from None
    if clock_start is not None and clock_kind != "manual":
        raise click.ClickException("--clock-start needs --clock manual")
    clock = ManualClock(_iso_ms(clock_start) if clock_start else None) if clock_kind == "manual" else wall_clock
    config = EngineConfig(data_dir=data_dir, shards=shards, host=host, port=port, token=token,
                          channels=channels, fsync=fsync, batch_events=batch_events, linger_ms=linger_ms,
                          clock=clock, pipelined_commits=pipelined_commits)
    if held_states is not None:
        config.held_states = held_states

    async def run() -> None:
        engine = Engine(config)
        # Start (and so ray.init, which installs its own SIGTERM handler) first, then
        # take SIGINT/SIGTERM over for a clean stop.
        await engine.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        h, p = engine.address
        print(f"cairn listening on {h}:{p}", flush=True)
        await stop.wait()
        err_console.print("cairn: stopping (finishing accepted batches)")
        await engine.stop()

    try:
        asyncio.run(run())
    except LayoutError as exc:
        raise click.ClickException(str(exc)) from None


def _iso_ms(text: str) -> int:
    """An ISO 8601 date or date-time in ms (UTC unless it carries an offset)."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.ClickException(f"{text!r} is not an ISO 8601 date-time, e.g. 2026-11-23T09:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


@main.group()
def clock() -> None:
    """Move a manual clock (an engine started with --clock manual)."""


@clock.command()
@click.argument("duration")
@_connection_options
def advance(duration: str, host: str, port: int, token: str | None) -> None:
    """Advance the engine's clock by DURATION (90s, 30m, 12h, 3d, 1d12h) and fire what
    became due."""
    from cairn.client import CairnServerError

    with _client(host, port, token) as client:
        try:
            reply = client.request("clock", advance=duration)
        except CairnServerError as exc:
            raise click.ClickException(exc.message) from None
    render.clock(console, reply)


@main.command()
@click.argument("contact_id")
@click.argument("program", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def explain(contact_id: str, program: str | None, as_json: bool, host: str, port: int, token: str | None) -> None:
    """Show CONTACT_ID's path through its programs (or PROGRAM), with every reason."""
    with _client(host, port, token) as client:
        reply = client.request("explain", contact=contact_id, program=program)
    if as_json:
        click.echo(json.dumps(reply["runs"], indent=2, default=str))
    elif not reply["runs"]:
        raise click.ClickException(f"no program runs recorded for {contact_id!r}"
                                   + (f" in {program!r}" if program else ""))
    else:
        console.print(render.explain_tree(contact_id, reply["runs"]))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def programs(as_json: bool, host: str, port: int, token: str | None) -> None:
    """Program versions and how many contacts wait at each node."""
    with _client(host, port, token) as client:
        reply = client.request("programs")
    _show(reply["programs"], as_json, render.programs)


@main.command()
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the members here, one per line [default: standard output].")
@click.option("--count", "count_only", is_flag=True, help="Only count the members.")
@_connection_options
def segment(name: str, out: Path | None, count_only: bool, host: str, port: int, token: str | None) -> None:
    """Count and export the members of segment NAME across all shards (evaluated now)."""
    from cairn.client import CairnServerError

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with _client(host, port, token) as client:
        shards = client.request("status")["shards"]
        sink = open(out, "w") if out else None  # noqa: SIM115 (closed below)
        total = 0
        try:
            with Progress(*columns, console=err_console) as progress:
                task = progress.add_task(f"segment {name}", total=sum(s["contacts"] for s in shards))
                for s in shards:
                    after: str | None = ""
                    while after is not None:
                        try:
                            page = client.request("segment", name=name, shard=s["shard"], after=after)
                        except CairnServerError as exc:
                            raise click.ClickException(exc.message) from None
                        total += len(page["members"])
                        if not count_only:
                            for m in page["members"]:
                                (sink.write(m + "\n") if sink else click.echo(m))
                        progress.advance(task, page["read"])
                        after = page["after"]
        finally:
            if sink:
                sink.close()
    err_console.print(f"segment {name}: {total} member(s)")


@main.command()
@click.argument("event_type")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def attributes(event_type: str, as_json: bool, host: str, port: int, token: str | None) -> None:
    """The attributes seen on EVENT_TYPE events, their types and the operators each offers."""
    with _client(host, port, token) as client:
        reply = client.request("attributes", type=event_type)
    _show(reply, as_json, render.attributes)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_connection_options
def apply(file: Path, host: str, port: int, token: str | None) -> None:
    """Validate and install a definitions FILE on a running engine."""
    from cairn.client import CairnServerError

    with _client(host, port, token) as client:
        try:
            reply = client.request("apply", name=file.name, definitions=file.read_text())
        except CairnServerError as exc:
            err_console.print(f"[red]{exc.message}[/red]")
            sys.exit(1)
    render.applied(console, file.name, reply)


def _send_file(file: Path, host: str, port: int, token: str | None, source: str | None) -> None:
    from cairn.readers import ReaderError, read_events

    try:
        events = list(read_events(file, source=source))
    except ReaderError as exc:
        raise click.ClickException(str(exc)) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with _client(host, port, token) as client, Progress(*columns, console=err_console) as progress:
        task = progress.add_task(f"sending {file.name}", total=len(events))
        result = client.send(events, progress=lambda n: progress.update(task, completed=n))
    render.send_result(console, file.name, result)
    if result.rejected:
        sys.exit(2)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_connection_options
def send(file: Path, host: str, port: int, token: str | None) -> None:
    """Send the events of an NDJSON FILE (one event object per line)."""
    _send_file(file, host, port, token, source="api")


@main.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_connection_options
def import_(file: Path, host: str, port: int, token: str | None) -> None:
    """Bulk-load interactions from a CSV or NDJSON FILE (same durable path as the API)."""
    _send_file(file, host, port, token, source="import")


@main.command()
@click.argument("contact_id")
@click.option("--last", default=20, show_default=True, help="How many recent events to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def contact(contact_id: str, last: int, as_json: bool, host: str, port: int, token: str | None) -> None:
    """Show a contact: profile, points, program runs with reasons, last events."""
    with _client(host, port, token) as client:
        reply = client.request("contact", contact=contact_id, last=last)
    found = reply.get("found")
    if found is None:
        raise click.ClickException(f"no contact {contact_id!r} (no accepted event names it)")
    _show(found, as_json, render.contact)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--from", "from_", required=True, help="Replay history from this date (ISO, UTC unless an offset is given).")
@click.option("--members", default=20, show_default=True, help="How many changed members to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def simulate(file: Path, from_: str, members: int, as_json: bool, host: str, port: int, token: str | None) -> None:
    """Replay stored history through the loyalty rules in FILE and the live rules;
    report points, tiers and rewards of both, per program and per member. Writes nothing."""
    from cairn.client import CairnServerError

    from_ms = _iso_ms(from_)
    with _client(host, port, token) as client, err_console.status(f"replaying history through {file.name} on every shard"):
        try:
            found = client.simulate(file.read_text(), from_ms, name=file.name, limit=members)
        except CairnServerError as exc:
            err_console.print(f"[red]{exc.message}[/red]")
            sys.exit(1)
    _show(found, as_json, render.simulation)


@main.command()
@click.argument("contact_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def member(contact_id: str, as_json: bool, host: str, port: int, token: str | None) -> None:
    """Show a loyalty member: tier, balances, rewards and the ledger with reasons."""
    with _client(host, port, token) as client:
        found = client.member(contact_id)
    if found is None:
        raise click.ClickException(f"{contact_id!r} is not a member of any loyalty program")
    _show(found, as_json, render.member)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_connection_options
def status(as_json: bool, host: str, port: int, token: str | None) -> None:
    """Shards, events/s, outbox and dead letters of a running engine."""
    with _client(host, port, token) as client:
        reply = client.request("status")
    _show(reply, as_json, render.status)


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the demo's data here instead of a temporary folder.")
@click.option("--shards", type=click.IntRange(1, 64), default=2, show_default=True)
def demo(data_dir: Path | None, shards: int) -> None:
    """Run an embedded engine on examples/ and show what happened."""
    from cairn.demo import run_demo

    sys.exit(run_demo(console, data_dir, shards))


@main.command()
@click.option("--events", default=400_000, show_default=True)
@click.option("--connections", default=2, show_default=True)
@click.option("--frame-events", default=500, show_default=True)
@click.option("--contacts", default=100_000, show_default=True)
@click.option("--in-flight", default=16, show_default=True, help="Frames awaiting ack per connection.")
@click.option("--shards", default=2, show_default=True)
@click.option("--programs", default=100, show_default=True, help="Programs loaded (embedded engine).")
@click.option("--rules", default=100, show_default=True, help="Loyalty rules loaded (embedded engine).")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also run this naive pipeline script with the same events and report the ratio.")
@click.option("--rate", type=float, default=None,
              help="Open loop: send at this many events/s and time from the intended send time "
                   "[default: closed loop, as fast as acks allow].")
@click.option("--fsync/--no-fsync", default=True, show_default=True)
@click.option("--pipelined-commits/--no-pipelined-commits", default=True, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the JSON report here.")
def bench(events: int, connections: int, frame_events: int, contacts: int, in_flight: int, shards: int,
          programs: int, rules: int, baseline: Path | None, rate: float | None, fsync: bool,
          pipelined_commits: bool, out: Path | None) -> None:
    """Load-test an embedded engine over real sockets; events/s and latency percentiles."""
    from cairn.benchmark import run_bench

    report = run_bench(console, events=events, connections=connections, frame_events=frame_events,
                       contacts=contacts, in_flight=in_flight, shards=shards, programs=programs,
                       rules=rules, baseline=baseline, rate=rate, fsync=fsync,
                       pipelined_commits=pipelined_commits)
    text = json.dumps(report, indent=2)
    if out:
        out.write_text(text + "\n")
    click.echo(text)


if __name__ == "__main__":
    main()
