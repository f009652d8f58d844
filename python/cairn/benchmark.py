"""``cairn bench``: an embedded engine under load over real sockets, plus the baseline.

Starts Ray and an engine with synthetic definitions (``benchdefs``), drives it with
the load generator (N pipelined connections, acks after commit, latency in an
HdrHistogram), then optionally runs the naive baseline pipeline with the same event
count in a subprocess and reports the ratio measured in this one run.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import ray
from rich.console import Console

from cairn.benchdefs import bench_definitions
from cairn.raystart import start_ray


def run_bench(console: Console, *, events: int, connections: int, frame_events: int, contacts: int,
              in_flight: int, shards: int, programs: int, rules: int, baseline: Path | None,
              fsync: bool, rate: float | None = None, pipelined_commits: bool = True) -> dict[str, Any]:
    """Run the load and return the JSON report."""
    with console.status("starting Ray and the engine"):
        start_ray(num_cpus=2)
    try:
        with tempfile.TemporaryDirectory(prefix="cairn-bench-") as data:
            with console.status(f"sending {events:,} events over {connections} connections"):
                report = asyncio.run(_load(Path(data), events=events, connections=connections,
                                           frame_events=frame_events, contacts=contacts, in_flight=in_flight,
                                           shards=shards, programs=programs, rules=rules, fsync=fsync,
                                           pipelined_commits=pipelined_commits,
                                           rate=rate))
    finally:
        ray.shutdown()
    report["setup"] = {"shards": shards, "programs": programs, "rules": rules, "fsync": fsync,
                       "pipelined_commits": pipelined_commits,
                       "dispatcher": "off (effects stay durable in the outbox)",
                       "generator": "same machine, same process as the gateway"}
    report["machine"] = _machine()
    if baseline is not None:
        with console.status("running the naive baseline"):
            base = run_baseline(baseline, events=events, shards=shards, contacts=contacts)
        report["baseline_events_per_s"] = base
        report["ratio_to_baseline"] = round(report["events_per_s"] / base, 2) if base else None
    return report


async def _load(data: Path, *, events: int, connections: int, frame_events: int, contacts: int,
                in_flight: int, shards: int, programs: int, rules: int, fsync: bool, pipelined_commits: bool,
                rate: float | None) -> dict[str, Any]:
    from cairn.engine import Engine, EngineConfig
    from cairn.loadgen import run_load

    engine = Engine(EngineConfig(data_dir=data, shards=shards, port=0, fsync=fsync, dispatch=False,
                                 pipelined_commits=pipelined_commits))
    await engine.start()
    try:
        import yaml

        await engine.apply_definitions(yaml.safe_dump(bench_definitions(programs, rules)), "bench.yaml")
        host, port = engine.address
        before = await engine.status()
        report = await run_load(host, port, events=events, connections=connections, frame_events=frame_events,
                                contacts=contacts, in_flight=in_flight, rate=rate)
        status = await engine.status()
        report["engine_status"] = status["totals"]
        report["shard_timing"] = [s["timing"] for s in status["shards"]]
        # CPU of all shard processes over the load and the checkpoint that ends it:
        # the figure to compare builds by on a noisy machine (docs/benchmarks.md).
        shard_cpu = sum(s["timing"]["cpu_s"] - b["timing"]["cpu_s"] for s, b in zip(status["shards"], before["shards"]))
        report["shard_cpu_us_per_event"] = round(shard_cpu / max(events, 1) * 1e6, 2)
        return report
    finally:
        await engine.stop()


def _machine() -> dict[str, Any]:
    import os
    import platform

    import lmdb

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
            "lmdb": lmdb.__version__, "platform": platform.platform()}


def run_baseline(script: Path, *, events: int, shards: int, contacts: int) -> float:
    """Run the naive pipeline script and return its events/s."""
    out = subprocess.run([sys.executable, str(script), "--events", str(events), "--shards", str(shards),
                          "--contacts", str(contacts)], capture_output=True, text=True, check=True, timeout=900)
    match = re.search(r"events_per_s=(\d+)", out.stdout)
    if not match:
        raise RuntimeError(f"baseline printed no events_per_s: {out.stdout!r} {out.stderr[-500:]!r}")
    return float(match.group(1))
