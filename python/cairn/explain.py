"""Explain: a contact's path through its programs, with the reason of every step.

The core records, in the history row of each event, what that event did to each
program run: ``[program, version, run, [[node, outcome, reason], ...]]``. A run that
waits continues in the rows of later events (an awaited event, a goal, a ``$timer``)
under the same run id, so a path is the run's steps gathered across rows in order.
Run id 0 marks a trigger that did not enter (entry rules), with the reason.
"""

from __future__ import annotations

from typing import Any

#: Outcomes after which a run is over.
_FINAL = frozenset({"end", "goal", "control", "not_entered"})


def run_dict(run: list[Any]) -> dict[str, Any]:
    """A stored run record as a dict."""
    program, version, run_id, steps = run
    return {"program": program, "version": version, "run": run_id,
            "steps": [{"node": n, "outcome": o, "reason": r} for n, o, r in steps]}


def paths(rows: list[dict[str, Any]], program: str | None = None) -> list[dict[str, Any]]:
    """The runs recorded in a contact's history ``rows`` (oldest first), each with its
    steps in order; every step names the event that caused it. ``program`` keeps one
    program's runs (case-insensitive)."""
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    order: list[dict[str, Any]] = []
    for row in rows:
        for record in row.get("runs", ()):
            rec = record if isinstance(record, dict) else run_dict(record)
            if program is not None and rec["program"].lower() != program.lower():
                continue
            cause = {"event_id": row["id"], "event_type": row["type"], "ts": row["ts"]}
            steps = [step | cause for step in rec["steps"]]
            key = (rec["program"], rec["run"])
            if rec["run"] == 0 or key not in runs:
                path = {"program": rec["program"], "version": rec["version"], "run": rec["run"],
                        "trigger": cause, "steps": []}
                order.append(path)
                if rec["run"]:
                    runs[key] = path
            runs.get(key, order[-1])["steps"].extend(steps)
    for path in order:
        last = path["steps"][-1] if path["steps"] else None
        path["status"] = ("left" if last is None or last["outcome"] in _FINAL
                          else f"waiting at {last['node']}")
    return order
