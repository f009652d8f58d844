"""Readable terminal output (rich) for the CLI and the demo."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def applied(console: Console, name: str, reply: dict[str, Any]) -> None:
    s = reply["summary"]
    console.print(f"[green]applied[/green] {name} as version {reply['version']}: "
                  f"{len(s['interaction_types'])} interaction types, {len(s['programs'])} programs, "
                  f"{len(s.get('segments', []))} segments, "
                  f"{sum(len(p['rules']) for p in s['loyalty'])} loyalty rules")
    for warning in reply.get("warnings", []):
        console.print(f"[yellow]warning[/yellow] {name}: {warning}")


def send_result(console: Console, name: str, result: Any) -> None:
    console.print(f"{name}: [green]{result.accepted} accepted[/green], {result.duplicates} duplicates, "
                  f"[{'red' if result.rejected else 'green'}]{len(result.rejected)} rejected[/]")
    for r in result.rejected[:20]:
        console.print(f"  event {r['index']}: {r['code']}: {r['message']}")
    if len(result.rejected) > 20:
        console.print(f"  ... and {len(result.rejected) - 20} more")


def collect_runs(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The program runs recorded in a contact's returned history rows, oldest first,
    each with the ``event_id`` and ``ts`` of the event that caused it."""
    return [run | {"event_id": row["id"], "ts": row["ts"]}
            for row in found.get("history", []) for run in row.get("runs", [])]


def runs_tree(label: str, runs: list[dict[str, Any]]) -> Tree:
    """A contact's program runs with the reason of every step."""
    tree = Tree(label)
    for run in runs:
        branch = tree.add(f"[bold]{run['program']}[/bold] v{run['version']} on event {run['event_id']} "
                          f"({_when(run.get('ts'))})")
        for step in run.get("steps", []):
            branch.add(f"{step['node']} -> [cyan]{step['outcome']}[/cyan]"
                       + (f"  [dim]{step['reason']}[/dim]" if step.get("reason") else ""))
    return tree


def explain_tree(contact_id: str, runs: list[dict[str, Any]]) -> Tree:
    """``cairn explain``: each run of the contact, its trigger and every step's reason."""
    tree = Tree(f"[bold]{contact_id}[/bold]: {len(runs)} program run(s)")
    for run in runs:
        t = run["trigger"]
        label = (f"[bold]{run['program']}[/bold] v{run['version']} "
                 + (f"run {run['run']}" if run["run"] else "[yellow]not entered[/yellow]")
                 + f" on {t['event_type']} {t['event_id']} ({_when(t['ts'])}): {run['status']}")
        branch = tree.add(label)
        for step in run["steps"]:
            via = "" if step["event_id"] == t["event_id"] else f" [dim](on {step['event_type']} {step['event_id']})[/dim]"
            branch.add(f"{step['node']} -> [cyan]{step['outcome']}[/cyan]{via}"
                       + (f"  [dim]{step['reason']}[/dim]" if step.get("reason") else ""))
    return tree


def programs(console: Console, items: list[dict[str, Any]]) -> None:
    """``cairn programs``: versions, current or retired, and contacts per node."""
    for p in items:
        state = "current" if p["current"] else "retired"
        counted = (f", {p['entries']} entries, {p['conversions']} conversions (all versions)"
                   if p.get("entries") is not None else "")
        table = Table("node", "type", "contacts waiting",
                      title=f"{p['name']} v{p['version']} ({state}, trigger {p['trigger']}): "
                            f"{p['contacts']} contacts inside{counted}", title_justify="left")
        for n in p["nodes"]:
            table.add_row(n["id"], n["type"], str(n["contacts"]))
        console.print(table)


def attributes(console: Console, reply: dict[str, Any]) -> None:
    """``cairn attributes TYPE``: what conditions on that event type may use."""
    table = Table("attribute", "declared", "seen as", "last seen", "operators",
                  title=f"attributes of {reply['event_type']} events", title_justify="left")
    for a in reply["attributes"]:
        ops = "; ".join(f"{t}: {', '.join(o)}" for t, o in a["operators"].items())
        table.add_row(a["attribute"], a["declared"] or "-", ", ".join(a["seen_as"]) or "-",
                      _when(a["last_seen_ms"]), ops)
    console.print(table)


def clock(console: Console, reply: dict[str, Any]) -> None:
    console.print(f"clock now {_when(reply['now_ms'])} UTC; {reply['fired']} timer(s) fired")


def contact(console: Console, found: dict[str, Any]) -> None:
    state = found["state"]
    console.rule(f"contact {found['contact']} (shard {found.get('shard', '?')})")
    profile = Table("field", "value", title="profile", title_justify="left")
    for k, v in sorted(state.get("profile", {}).items()):
        profile.add_row(k, repr(v))
    console.print(profile)
    loyalty = Table("program", "qualifying", "non-qualifying", "member since", title="loyalty", title_justify="left")
    for name, m in sorted(state.get("loyalty", {}).items()):
        loyalty.add_row(name, str(m.get("qualifying", 0)), str(m.get("non_qualifying", 0)), _when(m.get("joined_ms")))
    console.print(loyalty)
    runs = collect_runs(found)
    positions = Table("program", "version", "run", "waiting at", "entered", "wakes", "trigger",
                      title="program positions (runs waiting)", title_justify="left")
    for run in state.get("runs", []):
        positions.add_row(run["program"], f"v{run['version']}", str(run["id"]), run["node"],
                          _when(run["entered_ms"]), _when(run["wake_ms"]),
                          f"{run['trigger']['type']} {run['trigger']['id']}")
    console.print(positions)
    console.print(runs_tree("program runs of these events (newest last)", runs))
    events = Table("time", "type", "id", "attrs", title=f"last {len(found['history'])} events", title_justify="left")
    for e in found["history"]:
        events.add_row(_when(e.get("ts")), e["type"], e["id"], _short(e.get("attrs")))
    console.print(events)
    if found.get("ledger"):
        print_ledger(console, found["ledger"])


def print_ledger(console: Console, rows: list[dict[str, Any]]) -> None:
    """Ledger rows, one per entry: when, program / rule, what moved (pending in
    brackets), the balance after; the reason indented below, wrapping freely."""
    console.print("[bold]ledger[/bold]")
    for r in rows:
        pending = r.get("pending_delta", 0)
        moved = (f"{r['delta']:+}" if r["delta"] or not pending else "") + (f" ({pending:+} pending)" if pending else "")
        who = r["program"] + (f" / {r['rule']}" if r.get("rule") else "")
        balance = f" -> {r['balance']}" if r["kind"] in ("qualifying", "non_qualifying") else ""
        console.print(f"{_when(r.get('ts'))}  {who}  {r.get('entry', '')} {r['kind']} {moved.strip()}{balance}",
                      highlight=False)
        reason = r.get("reason", "") + (f" [{r['reference']}]" if r.get("reference") else "")
        if reason:
            console.print(f"    {reason}", highlight=False, style="dim")


def member(console: Console, found: dict[str, Any]) -> None:
    """``cairn member``: per program the tier and balances, the rewards, the ledger."""
    console.rule(f"member {found['contact']} (shard {found.get('shard', '?')})")
    programs = Table("program", "tier", "qualifying", "non-qualifying", "pending q / nq", "member since", "birthday",
                     title="programs", title_justify="left")
    rewards = Table("program", "reward", "code", "status", "granted", "expires", "redeemed", title="rewards",
                    title_justify="left")
    for name, m in sorted(found["programs"].items()):
        tier = (m.get("tier") or "-") + (" + VIP" if m.get("vip") else "")
        pending = m.get("pending", [0, 0])
        programs.add_row(name, tier, str(m["qualifying"]), str(m["non_qualifying"]), f"{pending[0]} / {pending[1]}",
                         _when(m.get("joined_ms")), m.get("birthday") or "-")
        for g in m.get("rewards", []):
            redeemed = f"{_when(g['redeemed_ms'])} {g.get('redeemed_at', '')}" if g.get("redeemed_ms") else "-"
            rewards.add_row(name, g["reward"], g["code"], g.get("status", "?"), _when(g["granted_ms"]),
                            _when(g["expires_ms"]) if g.get("expires_ms") else "never", redeemed)
    console.print(programs)
    console.print(rewards)
    print_ledger(console, found["ledger"])


def status(console: Console, reply: dict[str, Any]) -> None:
    t = reply["totals"]
    clock = reply.get("clock")
    console.print(f"[bold]{reply['server']}[/bold] at {reply['address']}, up {reply['uptime_s']} s, "
                  f"definitions v{reply['definitions_version']}, {reply['connections']} connections, "
                  f"{reply['events_per_s']} events/s since start"
                  + (f", {clock['kind']} clock at {_when(clock['now_ms'])}" if clock else ""))
    columns = ("contacts", "events", "ledger_rows", "outbox", "retrying", "dead_letters", "timers")
    table = Table("shard", *(c.replace("_", " ") for c in columns))
    for s in reply["shards"]:
        table.add_row(str(s["shard"]), *(str(s.get(k, 0)) for k in columns))
    table.add_row("[bold]all[/bold]", *(f"[bold]{t.get(k, 0)}[/bold]" for k in columns))
    console.print(table)
    if reply.get("channels"):
        console.print(f"channels: {reply['channels']}")


def _short(value: Any, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def simulation(console: Console, found: dict[str, Any]) -> None:
    """``cairn simulate``: both rule sets' totals per program, then changed members."""
    speed = f", {found['events_per_s']:,} events/s" if found.get("events_per_s") else ""
    console.rule(f"simulation from {_when(found['from_ms'])} to {_when(found['until_ms'])}: "
                 f"{found['events']:,} events replayed in {found['seconds']} s{speed}")
    totals = Table("program", "rules", "members", "qualifying", "non-qualifying", "pending", "rewards", "tiers",
                   title="totals", title_justify="left")
    for name, p in found["programs"].items():
        for label in ("live", "candidate"):
            t = p[label]
            tiers = ", ".join(f"{k} {v}" for k, v in sorted(p["tiers"][label].items()))
            totals.add_row(name, label, str(t["members"]), str(t["qualifying"]), str(t["non_qualifying"]),
                           str(t["pending"]), str(t["rewards"]), tiers)
    console.print(totals)
    changed = Table("contact", "program", "qualifying", "non-qualifying", "rewards", "tier",
                    title=f"{found['changed']} member(s) change (largest first)", title_justify="left")
    for m in found["members"]:
        c, l, d = m["candidate"], m["live"], m["delta"]
        tier = f"{l['tier'] or '-'} -> {c['tier'] or '-'}" if c["tier"] != l["tier"] else (c["tier"] or "-")
        changed.add_row(m["contact"], m["program"], f"{l['qualifying']} -> {c['qualifying']} ({d['qualifying']:+})",
                        f"{l['non_qualifying']} -> {c['non_qualifying']} ({d['non_qualifying']:+})",
                        f"{l['rewards']} -> {c['rewards']}", tier)
    console.print(changed)
