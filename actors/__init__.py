"""Cairn's Ray actors: one ``ShardActor`` per contact shard (see docs/architecture.md)."""

from actors.shard import ShardActor, shard_actor_class
from actors.store import ShardStore

__all__ = ["ShardActor", "ShardStore", "shard_actor_class"]
