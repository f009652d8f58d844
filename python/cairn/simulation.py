"""``cairn simulate``: a candidate loyalty rule set replayed over stored history.

Each shard replays its own history twice in one pass, through the candidate rules
and through the live ones, from the same start and with the same clock
(``ShardStore.simulate``; the core's ``Simulation``), writing nothing. This module
builds the candidate document and turns the shards' member rows into the report:
totals per program for both rule sets, and the members whose outcome differs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgpack

from cairn import definitions

#: Sections of the live definitions a candidate rule set may rely on.
_SHARED = ("strict_types", "profile_fields", "interaction_types", "segments")
_FIELDS = ("qualifying", "non_qualifying", "pending_qualifying", "pending_non_qualifying", "tier", "vip", "rewards")


def candidate_document(text: str, name: str, live: bytes | None) -> bytes:
    """The candidate's definitions: its ``loyalty`` (and any types or fields it
    declares) over the live document's types, fields and segments. Its programs,
    if any, are left out: a simulation runs loyalty only. Raises
    ``definitions.DefinitionsInvalid`` naming the file and the path."""
    doc = definitions.read_doc(text, name)
    if not doc.get("loyalty"):
        raise definitions.DefinitionsInvalid(name, [definitions.Problem("loyalty", "a rule set to simulate needs loyalty programs")])
    base = msgpack.unpackb(live, raw=False) if live else {}
    merged = {k: v for k, v in (base or {}).items() if k in _SHARED}
    merged.update({k: v for k, v in doc.items() if k != "programs"})
    packed, _ = definitions.parse_doc(merged, name)
    return packed


def _member(row: tuple[Any, ...]) -> tuple[tuple[str, str], dict[str, Any]]:
    contact, program, *values = row
    return (contact, program), dict(zip(_FIELDS, values, strict=True))


@dataclass
class Totals:
    """One rule set's outcome for one program, summed over members."""

    members: int = 0
    qualifying: int = 0
    non_qualifying: int = 0
    pending: int = 0
    rewards: int = 0

    def add(self, m: dict[str, Any]) -> None:
        self.members += 1
        self.qualifying += m["qualifying"]
        self.non_qualifying += m["non_qualifying"]
        self.pending += m["pending_qualifying"] + m["pending_non_qualifying"]
        self.rewards += m["rewards"]


def report(shards: list[dict[str, Any]], limit: int = 50) -> dict[str, Any]:
    """Combine the shards' results: per program totals and tiers for the candidate
    and the live rules, and up to ``limit`` members whose outcome differs, largest
    change of non-qualifying points first."""
    candidate = dict(_member(r) for s in shards for r in s["candidate"])
    live = dict(_member(r) for s in shards for r in s["live"])
    programs: dict[str, dict[str, Any]] = {}
    for label, members in (("candidate", candidate), ("live", live)):
        for (_, program), m in members.items():
            p = programs.setdefault(program, {"candidate": Totals(), "live": Totals(),
                                              "tiers": {"candidate": Counter(), "live": Counter()}})
            p[label].add(m)
            p["tiers"][label][m["tier"] or "-"] += 1
    empty = dict.fromkeys(_FIELDS, 0) | {"tier": "", "vip": False}
    changed = []
    for key in sorted(candidate.keys() | live.keys()):
        c, l = candidate.get(key, empty), live.get(key, empty)
        if c != l:
            delta = {k: c[k] - l[k] for k in ("qualifying", "non_qualifying", "rewards")}
            changed.append({"contact": key[0], "program": key[1], "candidate": c, "live": l, "delta": delta})
    changed.sort(key=lambda m: (-abs(m["delta"]["non_qualifying"]), -abs(m["delta"]["qualifying"]), m["contact"]))
    events = sum(s["events"] for s in shards)
    seconds = max((s["seconds"] for s in shards), default=0.0)
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds) if seconds else None,
        "shards": [{"events": s["events"], "seconds": round(s["seconds"], 3)} for s in shards],
        "programs": {name: {"candidate": vars(p["candidate"]), "live": vars(p["live"]),
                            "tiers": {k: dict(v) for k, v in p["tiers"].items()}}
                     for name, p in sorted(programs.items())},
        "changed": len(changed),
        "members": changed[:limit],
    }

