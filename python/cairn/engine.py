"""The embedded engine: shard actors, gateway, lanes and channel dispatcher.

``Engine`` wires the pieces of docs/architecture.md together in one asyncio process
(the Ray driver). The same object backs ``cairn serve``, ``cairn demo`` and the tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from actors import shard_actor_class
from actors.store import DEFAULT_HELD_STATES
from cairn import _core, definitions, explain, simulation
from cairn.channels import Dispatcher, load_channel_config
from cairn.clock import Clock, ManualClock, parse_duration_ms, wall_clock
from cairn.gateway import AdminError, Gateway, GatewayConfig
from cairn.lanes import Report, ShardLane
from cairn.layout import DataLayout, open_layout, write_atomic
from cairn.raystart import start_ray

#: Timers fired per shard call; the pump calls again while a shard has more due.
TIMER_BATCH = 5_000

log = logging.getLogger("cairn.engine")

VERSION = "0.1.0"


@dataclass
class EngineConfig:
    """Everything ``cairn serve`` can set."""

    data_dir: Path
    shards: int | None = None
    host: str = "127.0.0.1"
    port: int = 7400
    token: str | None = None
    #: parsed channels YAML (see docs/operations.md); None sends everything to a file
    channels: dict[str, Any] | None = None
    #: fsync every batch commit (survives power loss); False survives process crashes
    fsync: bool = True
    #: contacts per shard whose decoded state stays in memory between batches
    held_states: int = DEFAULT_HELD_STATES
    #: Compute a shard's next batch while the one before commits (docs/architecture.md).
    pipelined_commits: bool = True
    batch_events: int = 4000
    linger_ms: float = 2.0
    max_frame: int = 4 * 1024 * 1024
    max_batch: int = 10_000
    #: run the channel dispatcher (off for benchmarks that only measure ingest)
    dispatch: bool = True
    clock: Clock = field(default=wall_clock)
    #: how often due timers are looked for (wall clock; a manual clock fires on advance)
    timer_interval_s: float = 0.2


class ActorOutbox:
    """A shard actor seen as the dispatcher's ``OutboxSource``."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def due(self, limit: int, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        return await self.actor.outbox_due.remote(limit, now_ms)

    async def settle(self, sent: list[bytes], failed: list[tuple[bytes, str, int | None]], now_ms: int) -> None:
        await self.actor.outbox_settle.remote(sent, failed, now_ms)


class Engine:
    """One running Cairn engine. ``await start()``, then serve until ``await stop()``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.layout: DataLayout | None = None
        self.actors: list[Any] = []
        self.lanes: list[ShardLane] = []
        self.catalog: _core.Catalog = _core.empty_catalog()
        self.gateway: Gateway | None = None
        self.server: asyncio.Server | None = None
        self.dispatcher: Dispatcher | None = None
        self._stop_dispatch = asyncio.Event()
        self._dispatch_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._timer_lock = asyncio.Lock()
        self._apply_lock = asyncio.Lock()
        self._started_at = time.monotonic()
        self.address: tuple[str, int] = (config.host, config.port)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Open the data folder, start the shard actors, then accept connections."""
        cfg = self.config
        if not ray.is_initialized():
            start_ray()
        self.layout = open_layout(Path(cfg.data_dir), cfg.shards)
        await self._start_shards()
        await self._restore_definitions()
        self.lanes = [self._lane(a) for a in self.actors]
        gw_cfg = GatewayConfig(token=cfg.token, max_frame=cfg.max_frame, max_batch=cfg.max_batch,
                               server_name=f"cairn/{VERSION}")
        self.gateway = Gateway(gw_cfg, self.lanes, lambda: self.catalog, cfg.clock, self.admin)
        if cfg.dispatch:
            channels = load_channel_config(cfg.channels)
            self.dispatcher = Dispatcher([ActorOutbox(a) for a in self.actors], channels,
                                         self.layout.root, clock=cfg.clock)
            self._dispatch_task = asyncio.ensure_future(self.dispatcher.run(self._stop_dispatch))
        self._timer_task = asyncio.ensure_future(self._pump_timers())
        self.server = await asyncio.start_server(self.gateway.handle, cfg.host, cfg.port)
        self.address = self.server.sockets[0].getsockname()[:2]

    async def _start_shards(self) -> None:
        assert self.layout is not None
        cpus = ray.available_resources().get("CPU", 1.0)
        # Shards share the node's CPUs evenly, so any shard count can be scheduled.
        actor_cls = shard_actor_class(num_cpus=min(1.0, cpus / self.layout.shards))
        self.actors = [
            actor_cls.remote(i, str(self.layout.shard_path(i)), self.config.fsync,
                             held_states=self.config.held_states, pipelined=self.config.pipelined_commits)
            for i in range(self.layout.shards)
        ]
        await asyncio.gather(*(a.ready.remote() for a in self.actors))

    def _lane(self, actor: Any) -> ShardLane:
        async def apply(parts: list[bytes], now_ms: int) -> Report:
            return await actor.apply.remote(parts, now_ms)

        async def sync() -> Report:
            return await actor.sync.remote()

        return ShardLane(apply=apply, sync=sync, clock=self.config.clock, batch_events=self.config.batch_events,
                         linger_ms=self.config.linger_ms)

    async def _restore_definitions(self) -> None:
        """Reload every applied definitions version; repair shards a crash left behind
        (a shard installs the versions it misses, in order)."""
        assert self.layout is not None
        chain = self.layout.definitions_versions()
        for version, doc in chain:
            self.catalog = _core.Catalog.compile(doc, version, self.catalog)
        installed = await asyncio.gather(*(a.ready.remote() for a in self.actors))
        for actor, have in zip(self.actors, installed):
            for version, doc in chain:
                if version > have:
                    await actor.install.remote(doc, version)

    async def stop(self) -> None:
        """Stop accepting, finish what was accepted, stop dispatching, close shards."""
        if self.server is not None:
            self.server.close()
        # Finish (and ack) what was accepted before telling producers to go away.
        if self.gateway is not None:
            self.gateway.stop_reading()
        for lane in self.lanes:
            await lane.drain()
        if self.gateway is not None:
            await self.gateway.shutdown()
        if self._timer_task is not None:
            self._timer_task.cancel()
            await asyncio.gather(self._timer_task, return_exceptions=True)
        self._stop_dispatch.set()
        if self._dispatch_task is not None:
            await self._dispatch_task
        if self.dispatcher is not None:
            await self.dispatcher.close()
        await asyncio.gather(*(a.close.remote() for a in self.actors), return_exceptions=True)
        for a in self.actors:
            ray.kill(a)
        self.actors = []

    # -- operations ------------------------------------------------------------

    async def apply_definitions(self, text: str, name: str) -> dict[str, Any]:
        """Check, version and install a definitions file on every shard.

        Raises ``definitions.DefinitionsInvalid``; an invalid file changes nothing.
        """
        assert self.layout is not None
        async with self._apply_lock:
            version = self.catalog.version + 1
            doc, catalog = definitions.parse(text, name, version, self.catalog)
            seen = await asyncio.gather(*(a.event_types.remote() for a in self.actors))
            warnings = definitions.unknown_types(doc, catalog.summary(), {t for s in seen for t in s})
            # Ray runs these after every batch already sent to each shard.
            await asyncio.gather(*(a.install.remote(doc, version) for a in self.actors))
            self.layout.definitions_dir.mkdir(exist_ok=True)
            write_atomic(self.layout.definitions_file(version), doc)
            self.catalog = catalog
        return {"version": version, "summary": catalog.summary(), "warnings": warnings}

    async def contact(self, contact: str, last: int = 20) -> dict[str, Any] | None:
        """The contact's profile, program runs, loyalty balances, events and ledger."""
        shard = _core.shard_of(contact, len(self.actors))
        found = await self.actors[shard].contact.remote(contact, last)
        if found is not None:
            found["shard"] = shard
            for row in found["history"]:
                row["runs"] = [explain.run_dict(run) for run in row.get("runs", [])]
        return found

    async def member(self, contact: str) -> dict[str, Any] | None:
        """The contact as a loyalty member: per program its tier, balances (available
        and pending) and rewards with their status; and its ledger with the reasons.
        None when it is in no loyalty program."""
        shard = _core.shard_of(contact, len(self.actors))
        found = await self.actors[shard].member.remote(contact)
        if found is not None:
            found["shard"] = shard
            now = self.config.clock()
            for m in found["programs"].values():
                for g in m.get("rewards", []):
                    g["status"] = reward_status(g, now)
        return found

    async def simulate(self, text: str, name: str, from_ms: int, limit: int = 50) -> dict[str, Any]:
        """Replay every shard's stored history (in parallel) through the loyalty rules
        in ``text`` and through the live ones, from ``from_ms`` to now; nothing is
        written. Returns ``simulation.report``. Raises ``DefinitionsInvalid``."""
        assert self.layout is not None
        # The latest applied document (also in folders that kept only that one).
        live = dict(self.layout.definitions_versions()).get(self.catalog.version)
        candidate = simulation.candidate_document(text, name, live)
        now = self.config.clock()
        shards = await asyncio.gather(*(a.simulate.remote(candidate, from_ms, now) for a in self.actors))
        return {"from_ms": from_ms, "until_ms": now, **simulation.report(list(shards), limit)}

    async def explain(self, contact: str, program: str | None = None) -> list[dict[str, Any]]:
        """The contact's path through each program (or through ``program``), run by
        run, with the reason of every step; see ``cairn.explain``."""
        shard = _core.shard_of(contact, len(self.actors))
        rows = await self.actors[shard].history.remote(contact)
        return explain.paths(rows, program)

    # -- timers ----------------------------------------------------------------

    async def fire_timers(self) -> int:
        """Fire every timer due now on every shard; returns how many fired."""
        async with self._timer_lock:
            now = self.config.clock()

            async def drain(actor: Any) -> int:
                fired, total = TIMER_BATCH, 0
                while fired == TIMER_BATCH:
                    fired = await actor.fire_due.remote(now, TIMER_BATCH)
                    total += fired
                return total

            return sum(await asyncio.gather(*(drain(a) for a in self.actors)))

    async def _pump_timers(self) -> None:
        while True:
            await asyncio.sleep(self.config.timer_interval_s)
            try:
                await self.fire_timers()
            except asyncio.CancelledError:
                raise
            except Exception:  # a shard restarting: the timers wait for the next round
                log.exception("firing timers failed; retrying in %.1f s", self.config.timer_interval_s)

    async def advance_clock(self, by_ms: int) -> dict[str, Any]:
        """Move a manual clock forward, then fire what became due."""
        clock = self.config.clock
        if not isinstance(clock, ManualClock):
            raise AdminError("invalid", "this engine runs on the wall clock; start it with --clock manual")
        for lane in self.lanes:
            await lane.drain()  # events sent before the advance happen before it
        now = clock.advance(by_ms)
        return {"now_ms": now, "fired": await self.fire_timers()}

    async def status(self) -> dict[str, Any]:
        """Shards, totals, throughput since start, outbox and dead letters."""
        shards = await asyncio.gather(*(a.status.remote() for a in self.actors))
        uptime = time.monotonic() - self._started_at
        ingested = sum(lane.events for lane in self.lanes)
        return {
            "server": f"cairn/{VERSION}",
            "address": f"{self.address[0]}:{self.address[1]}",
            "uptime_s": round(uptime, 1),
            "connections": self.gateway.connections if self.gateway else 0,
            "definitions_version": self.catalog.version,
            "events_per_s": round(ingested / uptime, 1) if uptime > 0 else 0.0,
            "ingested_since_start": ingested,
            "shards": shards,
            "totals": {k: sum(s[k] for s in shards)
                       for k in ("contacts", "events", "ledger_rows", "outbox", "retrying", "dead_letters",
                                 "timers")},
            "clock": {"kind": "manual" if isinstance(self.config.clock, ManualClock) else "wall",
                      "now_ms": self.config.clock()},
            "channels": self.dispatcher.stats if self.dispatcher else {},
        }

    async def programs(self) -> list[dict[str, Any]]:
        """Every program version (current and retired) with how many contacts wait at
        each of its nodes, across all shards."""
        counted = await asyncio.gather(*(a.positions.remote() for a in self.actors))
        total: dict[tuple[str, int, str], int] = {}
        logs: dict[str, list[int]] = {}
        for positions, journeys in counted:
            for program, version, node, n in positions:
                total[(program, version, node)] = total.get((program, version, node), 0) + n
            for name, (entries, conversions) in journeys.items():
                both = logs.setdefault(name, [0, 0])
                both[0] += entries
                both[1] += conversions
        out = []
        for p in self.catalog.summary()["program_versions"]:
            nodes = [{"id": nid, "type": kind, "contacts": total.get((p["name"], p["version"], nid), 0)}
                     for nid, kind in p["nodes"]]
            entries, conversions = logs.get(p["name"], [None, None])
            out.append(p | {"nodes": nodes, "contacts": sum(n["contacts"] for n in nodes),
                            "entries": entries, "conversions": conversions})
        return out

    async def segment_page(self, name: str, shard: int, after: str = "", limit: int = 5_000) -> dict[str, Any]:
        """One page of segment ``name``'s members on ``shard``, evaluated live now.
        Page on with ``after`` = the reply's ``after`` until it is None."""
        if name.lower() not in (s.lower() for s in self.catalog.summary()["segments"]):
            raise AdminError("invalid", f"unknown segment {name!r}; segments: "
                                        f"{', '.join(self.catalog.summary()['segments']) or 'none defined'}")
        if not 0 <= shard < len(self.actors):
            raise AdminError("invalid", f"shard must be in 0..{len(self.actors) - 1}, got {shard}")
        members, next_after, read = await self.actors[shard].segment_page.remote(
            name, self.config.clock(), after.encode(), limit)
        return {"members": members, "after": None if next_after is None else next_after.decode(), "read": read}

    async def attributes(self, event_type: str) -> dict[str, Any]:
        """The attributes seen on ``event_type`` events across shards, with their
        inferred types, the declared type if any, and the operators each offers."""
        kind = event_type.lower()
        seen = await asyncio.gather(*(a.attributes.remote(kind) for a in self.actors))
        merged: dict[str, dict[str, int]] = {}
        for shard in seen:
            for attr, inferred, last_ms in shard:
                types = merged.setdefault(attr, {})
                types[inferred] = max(types.get(inferred, 0), last_ms)
        declared = self.catalog.summary()["declared_attributes"].get(kind, {})
        rows = []
        for attr in sorted(set(merged) | set(declared)):
            types = sorted(merged.get(attr, {}))
            shown = [declared[attr]] if attr in declared else types
            rows.append({"attribute": attr, "declared": declared.get(attr), "seen_as": types,
                         "last_seen_ms": max(merged.get(attr, {}).values(), default=None),
                         "operators": {t: _core.operators(t) for t in shown}})
        return {"event_type": kind, "attributes": rows}

    async def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await asyncio.gather(*(a.dead_letters.remote(limit) for a in self.actors))
        return [r for shard_rows in rows for r in shard_rows][:limit]

    async def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything accepted is applied and every effect is delivered or
        dead-lettered; ``TimeoutError`` after ``timeout_s`` (retries keep their backoff)."""
        for lane in self.lanes:
            await lane.drain()
        if self.dispatcher is None:
            return
        # The dispatcher's own loop delivers; draining here too could send twice.
        deadline = time.monotonic() + timeout_s
        while (waiting := (await self.status())["totals"]["outbox"]) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{waiting} effects still undelivered after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    # -- admin ops over the socket (docs/wire-protocol.md, "Admin operations") --

    async def admin(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "apply":
            text, name = request.get("definitions"), request.get("name", "<definitions>")
            if not isinstance(text, str):
                raise AdminError("invalid", "apply needs 'definitions': the YAML text")
            try:
                applied = await self.apply_definitions(text, str(name))
            except definitions.DefinitionsInvalid as exc:
                raise AdminError("invalid", str(exc),
                                 errors=[[p.path, p.message] for p in exc.problems]) from None
            return {"op": "applied", **applied}
        if op == "contact":
            contact = request.get("contact")
            if not isinstance(contact, str) or not contact:
                raise AdminError("invalid", "contact needs 'contact': the contact id")
            return {"op": "contact", "found": await self.contact(contact, int(request.get("last", 20)))}
        if op == "simulate":
            text, name, from_ms = request.get("definitions"), request.get("name", "<rules>"), request.get("from_ms")
            if not isinstance(text, str) or not isinstance(from_ms, int):
                raise AdminError("invalid", "simulate needs 'definitions' (the YAML text) and 'from_ms' (int ms)")
            try:
                found = await self.simulate(text, str(name), from_ms, int(request.get("limit", 50)))
            except definitions.DefinitionsInvalid as exc:
                raise AdminError("invalid", str(exc), errors=[[p.path, p.message] for p in exc.problems]) from None
            return {"op": "simulate", **found}
        if op == "member":
            contact = request.get("contact")
            if not isinstance(contact, str) or not contact:
                raise AdminError("invalid", "member needs 'contact': the contact id")
            return {"op": "member", "found": await self.member(contact)}
        if op == "status":
            return {"op": "status", **(await self.status())}
        if op == "dead_letters":
            return {"op": "dead_letters", "rows": await self.dead_letters(int(request.get("limit", 100)))}
        if op == "explain":
            contact = request.get("contact")
            if not isinstance(contact, str) or not contact:
                raise AdminError("invalid", "explain needs 'contact': the contact id")
            return {"op": "explain", "runs": await self.explain(contact, request.get("program"))}
        if op == "clock":
            advance = request.get("advance", 0)
            try:
                by_ms = parse_duration_ms(advance) if isinstance(advance, str) else int(advance)
            except (TypeError, ValueError) as exc:
                raise AdminError("invalid", f"clock 'advance': {exc}") from None
            return {"op": "clock", **(await self.advance_clock(by_ms))}
        if op == "programs":
            return {"op": "programs", "programs": await self.programs()}
        if op == "segment":
            name, shard = request.get("name"), request.get("shard", 0)
            if not isinstance(name, str) or not isinstance(shard, int):
                raise AdminError("invalid", "segment needs 'name' (a segment) and 'shard' (an index)")
            page = await self.segment_page(name, shard, str(request.get("after") or ""),
                                           int(request.get("limit", 5_000)))
            return {"op": "segment", **page}
        if op == "attributes":
            kind = request.get("type")
            if not isinstance(kind, str) or not kind:
                raise AdminError("invalid", "attributes needs 'type': an event type")
            return {"op": "attributes", **(await self.attributes(kind))}
        raise AdminError("unknown_op", f"unknown op {op!r}; known: events, apply, contact, member, simulate, explain, "
                                       f"programs, attributes, segment, clock, status, dead_letters")


def reward_status(grant: dict[str, Any], now_ms: int) -> str:
    """active, redeemed or expired (as the core decides at redemption)."""
    if grant.get("redeemed_ms"):
        return "redeemed"
    if grant.get("expires_ms") and now_ms >= grant["expires_ms"]:
        return "expired"
    return "active"
