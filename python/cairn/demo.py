"""``cairn demo``: an embedded engine on the sample stream of examples/, explained.

Starts local Ray and an engine on a temporary data folder, on a manual clock,
applies examples/definitions.yaml and sends examples/events.ndjson through the real
socket with the producer client, waits for the dispatcher to deliver every message
(to the NDJSON file sink), lets a day pass on the clock (durable timers fire), then
prints each contact's path through the programs and why, what was sent on which
channel, and who earned how many points.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import ray
from rich.console import Console
from rich.table import Table

from cairn import render
from cairn.clock import ManualClock
from cairn.raystart import start_ray

EXAMPLES = Path("examples")
DAY_MS = 86_400_000


def run_demo(console: Console, data_dir: Path | None, shards: int, examples: Path = EXAMPLES) -> int:
    """Run the demo; returns the process exit code."""
    definitions, events = examples / "definitions.yaml", examples / "events.ndjson"
    for f in (definitions, events):
        if not f.exists():
            console.print(f"[red]{f} not found: run `cairn demo` from the Cairn repository[/red]")
            return 1
    with console.status("starting Ray (a few seconds)"):
        start_ray(num_cpus=2)
    try:
        if data_dir is not None:
            return asyncio.run(_demo(console, data_dir, shards, definitions, events))
        with tempfile.TemporaryDirectory(prefix="cairn-demo-") as tmp:
            return asyncio.run(_demo(console, Path(tmp), shards, definitions, events))
    finally:
        ray.shutdown()


async def _demo(console: Console, data: Path, shards: int, definitions: Path, events_file: Path) -> int:
    from cairn.client import AsyncClient
    from cairn.engine import Engine, EngineConfig
    from cairn.readers import read_events

    events = list(read_events(events_file))
    # A manual clock just after the sample stream: the demo lets a day pass in a call.
    clock = ManualClock(max(int(e.get("ts") or 0) for e in events) + 60_000)
    engine = Engine(EngineConfig(data_dir=data, shards=shards, port=0, clock=clock))
    with console.status(f"starting {shards} shard actors"):
        await engine.start()
    host, port = engine.address
    console.print(f"engine listening on {host}:{port}, data in {data}")
    try:
        async with AsyncClient(host=host, port=port, name="cairn-demo") as client:
            render.applied(console, definitions.name,
                           await client.request("apply", name=definitions.name, definitions=definitions.read_text()))
            result = await client.send(events)
        render.send_result(console, events_file.name, result)
        with console.status("delivering messages"):
            await engine.flush()
        moved = await engine.advance_clock(DAY_MS)
        console.print(f"a day passes on the manual clock: {moved['fired']} timer(s) fired")
        with console.status("delivering messages"):
            await engine.flush()
        contacts = sorted({e["contact"] for e in events})
        found = [await engine.contact(c) for c in contacts]
        await _journeys(console, engine, contacts)
        _messages(console, data / "sent.ndjson")
        _points(console, [f for f in found if f])
        status = await engine.status()
        console.print(f"dead letters: {status['totals']['dead_letters']}; "
                      f"inspect any contact later with `cairn contact ID` against `cairn serve`.")
    finally:
        await engine.stop()
    return 0


async def _journeys(console: Console, engine: Any, contacts: list[str]) -> None:
    console.rule("journeys: each contact's path through the programs, and why (cairn explain)")
    for c in contacts:
        runs = await engine.explain(c)
        if runs:
            console.print(render.explain_tree(c, runs))
        else:
            console.print(f"[bold]{c}[/bold]: entered no program")


def _messages(console: Console, sink: Path) -> None:
    console.rule("messages sent")
    table = Table("channel", "to", "program/node", "message")
    lines = sink.read_text().splitlines() if sink.exists() else []
    for line in lines:
        m = json.loads(line)
        msg = m.get("message")
        if msg is None:  # an ads audience batch or a webhook call, not a message
            continue
        text = " | ".join(str(msg[k]) for k in ("subject", "title", "text") if msg.get(k))
        table.add_row(m["channel"], str(m["to"]), f"{m['program']}/{m['node']}", text)
    console.print(table if lines else "no message was sent")


def _points(console: Console, found: list[dict[str, Any]]) -> None:
    console.rule("loyalty points")
    table = Table("contact", "program / tier", "qualifying / non-q.", "rewards", "earned by")
    for f in found:
        rules = ", ".join(f"{r['rule']} {r['delta']:+}" for r in f.get("ledger", []) if r["delta"])
        for name, m in sorted(f["state"].get("loyalty", {}).items()):
            rewards = ", ".join(g["reward"] for g in m.get("rewards", [])) or "-"
            table.add_row(f["contact"], f"{name} / {m.get('tier') or '-'}",
                          f"{m.get('qualifying', 0)} / {m.get('non_qualifying', 0)}", rewards, rules)
    console.print(table)
