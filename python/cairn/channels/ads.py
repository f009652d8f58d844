"""Ads adapter: syncs digital-ads audiences in batches, with a delay (J-7).

``kind: audience`` effects (channel ``ads``, ``to`` = contact id) add a contact
to, or remove it from, a named audience.  Semantics:

- Changes are buffered per audience.  A batch is taken when ``batch_size``
  changes are buffered, or ``sync_delay_s`` after the first change of the batch
  was buffered, whichever comes first; ``close`` takes every buffered batch.
- A batch is one JSON document ``{"audience", "add": [contacts], "remove":
  [contacts], "effect_ids": [...]}``: POSTed to ``ads.url`` with an
  ``Idempotency-Key`` derived from its effect ids (status rules of
  :func:`.webhook.post`), or, without a URL, appended as one line to the file
  sink (fsynced before it counts as delivered).  Within a batch the last change
  of a contact wins; batches of one audience are delivered one at a time, in order.
- Durability: :meth:`AdsAdapter.submit` returns a future that completes when the
  batch holding the effect was delivered (or fails with that batch's error), so
  the dispatcher settles an effect only after its batch arrived.  The dispatcher
  awaits these futures outside its concurrency slots and passes, so the effects
  of many passes and shards form one batch and other channels are not held up.
  A crash before settling resends the effects; receivers dedupe by effect id.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

import httpx

from .config import AdsSettings
from .errors import ChannelError, PermanentError, TemporaryError
from .filesink import FileSinkAdapter
from .webhook import post

_OPS = frozenset({"add", "remove"})


@dataclass
class _Change:
    """One buffered audience change and the future its sender waits on."""

    effect_id: str
    contact: str
    op: str
    done: asyncio.Future[None] = field(repr=False)


def _parse(effect: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(audience name, op, contact)``; raises PermanentError on a malformed effect."""
    audience = effect.get("audience")
    name = audience.get("name") if isinstance(audience, Mapping) else None
    op = audience.get("op") if isinstance(audience, Mapping) else None
    contact = effect.get("to") or effect.get("contact")
    if not isinstance(name, str) or not name or op not in _OPS or not isinstance(contact, str) or not contact:
        raise PermanentError(f"ads: invalid audience change {audience!r} for {contact!r}")
    return name, op, contact


def batch_document(name: str, changes: list[_Change]) -> dict[str, Any]:
    """The document sent for one batch; the last change of each contact wins."""
    final: dict[str, str] = {}
    for change in changes:
        final[change.contact] = change.op
    return {
        "audience": name,
        "add": [contact for contact, op in final.items() if op == "add"],
        "remove": [contact for contact, op in final.items() if op == "remove"],
        "effect_ids": [change.effect_id for change in changes],
    }


def _batch_key(doc: Mapping[str, Any]) -> str:
    # Stable for the same set of effects, so a resent identical batch can be dropped.
    joined = "\0".join([doc["audience"], *doc["effect_ids"]]).encode()
    return hashlib.blake2b(joined, digest_size=8).hexdigest()


class AdsAdapter:
    """Adapter for audience effects; see the module docstring for the batching rules."""

    def __init__(self, settings: AdsSettings, sink: FileSinkAdapter | None = None) -> None:
        if settings.url is None and sink is None:
            raise ValueError("ads adapter needs a url or a file sink")
        self._settings = settings
        self._sink = sink
        self._client = (
            httpx.AsyncClient(timeout=settings.timeout_s, headers=dict(settings.headers)) if settings.url else None
        )
        self._buffers: dict[str, list[_Change]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._order: dict[str, asyncio.Lock] = {}  # one audience's batches go out in order
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def max_delay_s(self) -> float:
        """Longest a change waits before its batch is taken."""
        return self._settings.sync_delay_s

    def submit(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> asyncio.Future[None]:
        """Buffer the change now; the future completes when its batch was delivered."""
        name, op, contact = _parse(effect)
        loop = asyncio.get_running_loop()
        change = _Change(str(effect.get("id", "")), contact, op, loop.create_future())
        buffer = self._buffers.setdefault(name, [])
        buffer.append(change)
        if len(buffer) >= self._settings.batch_size:
            self._take(name)
        elif name not in self._timers:
            self._timers[name] = loop.call_later(self._settings.sync_delay_s, self._take, name)
        return change.done

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """Buffer the change and wait until its batch was delivered."""
        await self.submit(effect, rendered)

    def _take(self, name: str) -> None:
        """Start delivering the buffered batch of ``name``."""
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        # Senders that gave up (timed out) withdrew their change; it will be retried.
        batch = [c for c in self._buffers.pop(name, []) if not c.done.done()]
        if batch:
            task = asyncio.get_running_loop().create_task(self._deliver(name, batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _deliver(self, name: str, batch: list[_Change]) -> None:
        """Send one batch and complete its changes' futures with the outcome."""
        error: ChannelError | None = None
        async with self._order.setdefault(name, asyncio.Lock()):
            try:
                await self._write(batch_document(name, batch))
            except ChannelError as err:
                error = err
            except Exception as err:  # noqa: BLE001 - unexpected: retry the batch rather than lose it
                error = TemporaryError(f"ads: {type(err).__name__}: {err}")
        for change in batch:
            if change.done.done():
                continue
            if error is None:
                change.done.set_result(None)
            else:
                change.done.set_exception(type(error)(str(error)))

    async def _write(self, doc: dict[str, Any]) -> None:
        if self._client is not None:
            assert self._settings.url is not None
            headers = {"Idempotency-Key": _batch_key(doc)}
            await post(self._client, self._settings.url, what="ads", json=doc, headers=headers)
            return
        assert self._sink is not None
        try:
            await self._sink.append(doc)
            await self._sink.flush()
        except OSError as err:  # e.g. disk full on fsync
            raise TemporaryError(f"ads file sink: {err}") from err

    async def flush(self) -> None:
        """Nothing to do: a change's future completes only once its batch is durable."""

    async def close(self) -> None:
        """Deliver every buffered batch, wait for batches in flight, close the client."""
        for name in list(self._buffers):
            self._take(name)
        while self._flushing:
            await asyncio.gather(*list(self._flushing), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
