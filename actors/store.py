"""One shard's durable store: an LMDB environment and the batch transaction.

Everything one batch changes (contact states, event history, seen event ids, loyalty
ledger, outbox effects) is written in a single LMDB write transaction, and the caller
acknowledges the batch only after that transaction commits. Per-event work happens in
Rust (``Catalog.apply``); this module only moves bulk rows between LMDB and the core
with ``getmulti``/``putmulti``, so Python never loops over the events of a batch.

Batches can be pipelined (``submit``): while one batch's transaction is written and
fsynced on the store's commit thread, the next batch is computed on the caller's
thread from the states the store holds decoded. ``submit`` reports which batches are
durable; the gateway acknowledges a batch only once it is (docs/architecture.md,
"Pipelined commits").
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb
import msgpack

from cairn import _core

# Named databases of a shard environment, each keyed as documented in
# docs/architecture.md ("Shard storage").
# `outbox` holds effects awaiting their first attempt; `retry` those waiting for
# another, ordered by when; `dead` those that will not be sent.
# `timers` holds the waits of program runs, keyed by due time (keys::timer_key);
# `attributes` the attributes seen per event type with their inferred types (J-6).
# `statelog` holds the states batches changed since the last checkpoint, appended
# (one entry per batch: log sequence -> the batch's packed (contact, state) rows);
# `state` holds every state as of that checkpoint.
DB_NAMES = ("state", "seen", "history", "ledger", "outbox", "retry", "dead", "timers", "attributes", "meta",
            "statelog")
#: `BatchResult` rows written as they are, each to the table of its name.
_ROWS = ("seen", "history", "ledger", "outbox")
_APPEND = frozenset({"history", "ledger", "outbox"})

# Every applied definitions document, under b"definitions/" + version (8 bytes BE):
# contacts inside an older version of a program keep walking it after an apply.
_META_DEFINITIONS = b"definitions/"
_META_VERSION = b"version"
#: The shard's next history sequence (8 bytes BE); history keys only grow.
_META_HISTORY_SEQ = b"history_seq"
#: 32 random bytes, made once per shard: the key of its reward codes.
_META_SECRET = b"reward_secret"
_SEQ = struct.Struct(">Q")
# Handles of due effects name the table they wait in: first attempt, or retry
# (whose keys are the retry time, 8 bytes BE, then the outbox key).
_FIRST, _RETRY = b"o", b"r"
#: Earlier events a template sees as ``recent`` (newest first).
RECENT_EVENTS = 10
#: History rows counted per core call when new definitions start counting them.
_BACKFILL_ROWS = 20_000
#: Contacts whose decoded state a shard keeps between batches (1-2 KB of memory each).
DEFAULT_HELD_STATES = 100_000
#: State log rows after which the states are copied into the state table (about
#: 30-80 MB of log; also done when changed states fill 3/4 of the held capacity).
STATE_LOG_ROWS = 131_072


class StoreError(Exception):
    """The shard's data is not as the store expects; nothing of the batch was written."""


@dataclass(slots=True)
class Submitted:
    """What ``ShardStore.submit`` tells the caller.

    ``number`` is the batch's number in this store (from 1); ``counts`` its
    (accepted, duplicates) per part, valid once it is durable. Every batch numbered up
    to ``durable`` has an outcome: committed, or listed in ``failures`` (number,
    message) by this or an earlier report. Each failure is reported once.
    """

    number: int
    counts: list[tuple[int, int]]
    durable: int
    failures: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Prepared:
    """A batch computed by the core, waiting for its write transaction."""

    result: Any  # _core.BatchResult
    events: int
    now_ms: int
    #: Where its states go: appended to the state log under this sequence, or
    #: (0) written in place in the state table.
    log_seq: int


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def _ledger(txn: lmdb.Transaction, ledger_db: Any, seqs: list[bytes]) -> list[dict[str, Any]]:
    """The ledger entries of the events with history keys ``seqs``, in order, as
    dicts: an event's row holds its entries, stored compactly; the core names them."""
    cursor = txn.cursor(ledger_db)
    return [e for seq in seqs for _, raw in _prefixed(cursor, seq) for e in _unpack(_core.named_ledger(raw))]


def _state(contact: bytes, raw: bytes) -> dict[str, Any]:
    """A stored state as a dict (states are stored compactly; the core names them)."""
    return _unpack(_core.named_state(contact.decode(), raw))


class ShardStore:
    """The LMDB side of one contact shard.

    Guarantees: ``apply`` commits all rows of a batch in one transaction or none;
    a batch that raises changes nothing; effects are written in the same transaction
    as the state change that caused them.
    """

    def __init__(self, path: str | os.PathLike[str], *, map_size: int = 64 << 30, fsync: bool = True,
                 held_states: int = DEFAULT_HELD_STATES) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        # sync=False still survives a crash of the process (committed pages live in
        # the OS page cache); only a crash of the machine can lose them.
        self.env = lmdb.open(
            str(self.path), map_size=map_size, max_dbs=len(DB_NAMES), sync=fsync, metasync=fsync
        )
        self.dbs = {name: self.env.open_db(name.encode()) for name in DB_NAMES}
        self.secret = self._secret()
        self.catalog = self._load_catalog()
        # Decoded states kept between batches: this store is their only writer, so
        # they stay what LMDB holds as long as every batch commits (`_reset` clears
        # them otherwise, `install` after a backfill).
        self.held = _core.States(held_states)
        # Pipelined commits (`submit`): one thread writes and commits, in order; the
        # caller's thread computes the next batch meanwhile.
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-commit")
        self._queued: deque[tuple[int, Future[None]]] = deque()
        self._submitted = 0
        self._durable = 0
        self._failures: list[tuple[int, str]] = []
        self._failed = False  # a queued commit failed: reset before the next batch
        # Set by the commit thread when a commit fails: it refuses the batches queued
        # behind (they were computed on top of the failed one) until `_reset`.
        self._broken = False
        self._generation = 0
        self._lock = threading.Lock()
        self._next_seq = self._stored_next_seq()
        # States are written behind (appended to `statelog`, checkpointed into
        # `state`) when the store holds states: the held copy of a state changed
        # since the checkpoint is never evicted, so no read of `state` is stale.
        self._log_seq = 0
        self._log_rows = 0
        # Where batch time goes, for `cairn status` and benchmarks (seconds). `wait_s`
        # is the caller's wait for earlier commits before it may compute a batch.
        self.timing = {"batches": 0, "events": 0, "read_s": 0.0, "core_s": 0.0, "write_s": 0.0, "commit_s": 0.0,
                       "wait_s": 0.0, "checkpoints": 0, "checkpoint_s": 0.0}
        # CPU of this process (every thread: the commit thread's, Ray's) since the
        # store opened. Unlike the wall-clock phases it does not grow when other
        # processes take the cores, so it compares builds on a noisy machine.
        self._cpu0 = time.process_time()
        self._checkpoint_now(replay=True)  # the states a crash left in the log

    # -- definitions ---------------------------------------------------------------

    def _secret(self) -> bytes:
        """The shard's reward-code key: random once, then stored (codes are
        unguessable without it, and stable across restarts with it)."""
        with self.env.begin(write=True, db=self.dbs["meta"]) as txn:
            secret = txn.get(_META_SECRET)
            if secret is None:
                secret = os.urandom(32)
                txn.put(_META_SECRET, secret)
            return bytes(secret)

    def _load_catalog(self) -> _core.Catalog:
        """Compile every stored version in order, so program versions carry over."""
        catalog = _core.Catalog.compile(msgpack.packb(None), 0, None, self.secret)
        with self.env.begin(db=self.dbs["meta"]) as txn:
            for key, doc in _prefixed(txn.cursor(), _META_DEFINITIONS):
                version = _SEQ.unpack(key[len(_META_DEFINITIONS):])[0]
                catalog = _core.Catalog.compile(doc, version, catalog, self.secret)
        return catalog

    def install(self, doc: bytes, version: int) -> None:
        """Compile and persist a definitions document (msgpack of the parsed YAML)."""
        self.checkpoint()  # a backfill reads and rewrites the state table
        if version <= self.catalog.version:
            return  # installed already (an engine restart repeats the last apply)
        catalog = _core.Catalog.compile(doc, version, self.catalog, self.secret)
        counted_before = {key for key, _ in self.catalog.facts()}
        new_facts = [key for key, _ in catalog.facts() if key not in counted_before]
        try:
            with self.env.begin(write=True) as txn:
                if new_facts:
                    self._backfill(txn, catalog, new_facts)
                txn.put(_META_DEFINITIONS + _SEQ.pack(version), doc, db=self.dbs["meta"])
                txn.put(_META_VERSION, str(version).encode(), db=self.dbs["meta"])
        finally:
            if new_facts:
                self.held.clear()  # the backfill rewrote stored states
        self.catalog = catalog

    def _backfill(self, txn: lmdb.Transaction, catalog: _core.Catalog, facts: list[int]) -> None:
        """Count the stored history into histories the new definitions start counting,
        in the install's transaction: a new segment on "the last 30 days" sees them
        at once, and a crash leaves the old definitions and counts, or the new ones."""
        states = txn.cursor(self.dbs["state"])
        chunk: list[bytes] = []
        for raw in txn.cursor(self.dbs["history"]).iternext(keys=False):
            chunk.append(raw)
            if len(chunk) == _BACKFILL_ROWS:
                states.putmulti(catalog.backfill(facts, chunk, states.getmulti))
                chunk = []
        if chunk:
            states.putmulti(catalog.backfill(facts, chunk, states.getmulti))

    # -- the batch path ------------------------------------------------------------

    def apply(self, parts: list[bytes], now_ms: int) -> list[tuple[int, int]]:
        """Apply event batches (bytes from ``split_frame``) in one transaction,
        committed when this returns. Returns ``(accepted, duplicates)`` per part."""
        self.settle()
        return list(self._apply_now(_core.Batch(parts), now_ms).parts)

    def submit(self, parts: list[bytes], now_ms: int, wait: bool = False) -> Submitted:
        """Compute a batch and queue its transaction on the commit thread; return at
        once with the outcomes known so far (with ``wait``, once it has committed or
        failed). The caller acknowledges the batch when this or a later report says
        it is durable, and fails it if reported failed. A batch whose parts cannot be
        decoded raises here, changing nothing.
        """
        # While a batch is computed, at most one earlier one may be uncommitted: the
        # core may evict from the held states any contact not in the batch at hand,
        # and an evicted contact of an uncommitted batch would be read back stale.
        # Without held states every contact is read back: nothing may be uncommitted.
        t0 = time.perf_counter()
        self._reap(keep=1 if self.held.capacity else 0)
        self.timing["wait_s"] += time.perf_counter() - t0
        if self._failed:
            self._reset()
        self._checkpoint_if_due()
        batch = _core.Batch(parts)
        try:
            prepared = self._prepare(batch, now_ms, pipelined=True)
        except BaseException:
            self._reap(keep=0)
            self._reset()  # the held states may be part-way through this batch
            raise
        self._submitted += 1
        number = self._submitted
        self._next_seq = prepared.result.next_seq
        future = self._committer.submit(self._commit_queued, prepared, self._generation)
        self._queued.append((number, future))
        self._reap(keep=0 if wait else len(self._queued))  # without `wait`: what has finished
        return Submitted(number, list(prepared.result.parts), self._durable, self._take_failures())

    def sync(self) -> Submitted:
        """Wait for every queued commit; report outcomes as ``submit`` does (``number``
        is the last batch submitted, ``counts`` empty)."""
        self.settle()
        return Submitted(self._submitted, [], self._durable, self._take_failures())

    def settle(self) -> None:
        """Wait for every queued commit, keeping their outcomes for the next report;
        after a failure, the held states are dropped. Every write outside the batch
        path starts here (LMDB has one writer)."""
        self._reap(keep=0)
        if self._failed:
            self._reset()

    def fire_due(self, now_ms: int, limit: int = 10_000) -> int:
        """Fire up to ``limit`` timers due at ``now_ms``, through the batch path: the
        runs they wake, their effects and the removal of the timers commit together,
        so a timer fires once, even across a crash. Returns how many fired."""
        self.settle()
        with self.env.begin(db=self.dbs["timers"]) as txn:
            keys = []
            for key in txn.cursor().iternext(values=False):
                if len(keys) >= limit or _SEQ.unpack_from(key)[0] > now_ms:
                    break
                keys.append(key)
        if keys:
            self._apply_now(_core.Batch.timers(keys), now_ms)
        return len(keys)

    def next_timer_ms(self) -> int | None:
        """When the earliest timer is due (None: no timers)."""
        with self.env.begin(db=self.dbs["timers"]) as txn:
            cursor = txn.cursor()
            return _SEQ.unpack_from(cursor.key())[0] if cursor.first() else None

    def _apply_now(self, batch: _core.Batch, now_ms: int) -> Any:
        """Compute and commit one batch on this thread (nothing may be queued)."""
        self._checkpoint_if_due()
        try:
            prepared = self._prepare(batch, now_ms, pipelined=False)
            self._next_seq = prepared.result.next_seq
            self._write(prepared)
        except BaseException:
            self._reset()
            raise
        return prepared.result

    def _prepare(self, batch: _core.Batch, now_ms: int, pipelined: bool) -> _Prepared:
        """Run the core on a batch: read the states it needs that are not held (from
        the last committed transaction: the contacts of an uncommitted batch are
        held), then ``Catalog.apply``."""
        t0 = time.perf_counter()
        missing = self.held.missing(batch)
        if missing:
            with self.env.begin(db=self.dbs["state"]) as txn:
                states = txn.cursor().getmulti(missing)
        else:
            states = []
        t1 = time.perf_counter()
        seen = self._seen_lookup if pipelined else self._seen_now
        result = self.catalog.apply(batch, states, seen, now_ms, self._next_seq, self.held)
        t2 = time.perf_counter()
        self.timing["read_s"] += t1 - t0
        self.timing["core_s"] += t2 - t1
        log_seq = 0
        if self.held.capacity and len(result.states):
            self._log_seq += 1
            self._log_rows += len(result.states)
            log_seq = self._log_seq
        return _Prepared(result, len(batch), now_ms, log_seq)

    def _seen_now(self, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        """The stored ``seen`` rows among ``keys`` (the core asks only about ids its
        states do not hold)."""
        with self.env.begin(db=self.dbs["seen"]) as txn:
            return txn.cursor().getmulti(keys)

    def _seen_lookup(self, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        """``_seen_now`` for a pipelined batch: an uncommitted batch may have moved ids
        to the ``seen`` table, so its commit is awaited first (rare: only contacts
        with more than 16 events ask)."""
        self._reap(keep=0)
        if self._failed:
            # The held states are being updated by this very batch: refuse it; the
            # caller resets once the core has let go of them.
            raise StoreError(f"{self.path}: an earlier batch failed to commit; this one was not applied")
        return self._seen_now(keys)

    def _commit_queued(self, prepared: _Prepared, generation: int) -> None:
        """On the commit thread: write and commit a batch, unless an earlier one failed."""
        with self._lock:
            if self._broken or generation != self._generation:
                raise StoreError(f"{self.path}: an earlier batch failed to commit; this one was not applied")
        try:
            self._write(prepared)
        except BaseException:
            with self._lock:
                self._broken = True
            raise

    def _write(self, prepared: _Prepared) -> None:
        """Write every row of a computed batch in one transaction and commit it."""
        result, now_ms = prepared.result, prepared.now_ms
        t2 = time.perf_counter()
        txn = self.env.begin(write=True)
        try:
            if prepared.log_seq:
                # The batch's changed states as one log entry: one put, not one per state.
                if not txn.put(_SEQ.pack(prepared.log_seq), result.states.packed(), db=self.dbs["statelog"],
                               append=True):
                    raise StoreError(f"{self.path}: state log entry {prepared.log_seq} is not after the last "
                                     "one; the batch was not applied")
            elif len(result.states):
                txn.cursor(self.dbs["state"]).putmulti(result.states)
            for row in _ROWS:
                items = getattr(result, row)
                if items:
                    self._put(txn, row, items)
            if result.timers:
                txn.cursor(self.dbs["timers"]).putmulti([(k, b"") for k in result.timers])
            if result.timer_deletes:
                timers = txn.cursor(self.dbs["timers"])
                for key in result.timer_deletes:
                    if timers.set_key(key):
                        timers.delete()
            if result.attributes:
                # A handful of rows per batch (types x attributes), overwritten with
                # when they were last seen.
                stamp = _SEQ.pack(max(now_ms, 0))
                txn.cursor(self.dbs["attributes"]).putmulti([(k, stamp) for k in result.attributes])
            txn.put(_META_HISTORY_SEQ, _SEQ.pack(result.next_seq), db=self.dbs["meta"])
            t3 = time.perf_counter()
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        t4 = time.perf_counter()
        tm = self.timing
        tm["batches"] += 1
        tm["events"] += prepared.events
        tm["write_s"] += t3 - t2
        tm["commit_s"] += t4 - t3

    def _reap(self, keep: int) -> None:
        """Wait until at most ``keep`` commits are queued, noting each outcome in
        order; after a failure, wait for all (the commit thread refuses them)."""
        while self._queued and (len(self._queued) > keep or self._queued[0][1].done() or self._failed):
            number, future = self._queued.popleft()
            error = future.exception()
            if error is not None:
                self._failed = True
                self._failures.append((number, f"{type(error).__name__}: {error}"))
            self._durable = number

    def _reset(self) -> None:
        """After a failed batch: drop the held states (they may be ahead of LMDB),
        copy the logged states into the state table (the held copies of the changed
        ones are gone), and let the commit thread take batches again."""
        self.held.clear()
        self._next_seq = self._stored_next_seq()
        with self._lock:
            self._generation += 1
            self._broken = False
        self._failed = False
        self._checkpoint_now(replay=True)

    # -- the state log -------------------------------------------------------------

    def checkpoint(self) -> None:
        """Copy the states logged since the last checkpoint into the state table and
        empty the log, in one transaction (after every queued commit). Readers of
        the state table call this first; batches do when the log is long."""
        self.settle()
        self._checkpoint_now()

    def _checkpoint_if_due(self) -> None:
        # Changed held states are never dropped: check them before they fill the
        # held capacity (the batch's own contacts come on top).
        if self._log_rows >= STATE_LOG_ROWS or self.held.dirty > self.held.capacity * 3 // 4:
            self.checkpoint()

    def _checkpoint_now(self, replay: bool = False) -> None:
        """Copy the logged states into the state table and empty the log. The held
        states changed since the last checkpoint are exactly the logged ones, at their
        latest, unless the held states were dropped since (``replay``: after a failed
        batch, or on opening): then the log is read back instead."""
        t0 = time.perf_counter()
        with self.env.begin(write=True) as txn:
            log = txn.cursor(self.dbs["statelog"])
            if log.first():
                if replay:
                    # The log is in batch order: a contact's state is its last one.
                    latest: dict[bytes, bytes] = {}
                    for _, packed in log:
                        latest.update(_core.unpack_rows(packed))
                    rows: Any = sorted(latest.items())
                else:
                    rows = self.held.dirty_rows()
                txn.cursor(self.dbs["state"]).putmulti(rows)
                txn.drop(self.dbs["statelog"], delete=False)
                self.timing["checkpoints"] += 1
        self.held.mark_clean()
        self._log_rows = 0
        self._log_seq = 0
        self.timing["checkpoint_s"] += time.perf_counter() - t0

    def _state_raw(self, txn: lmdb.Transaction, contact: bytes) -> bytes | None:
        """A contact's current stored state: its held copy if changed since the
        last checkpoint, else the state table's row."""
        raw = self.held.dirty_state(contact.decode())
        return raw if raw is not None else txn.get(contact, db=self.dbs["state"])

    def _take_failures(self) -> list[tuple[int, str]]:
        failures, self._failures = self._failures, []
        return failures

    def _stored_next_seq(self) -> int:
        with self.env.begin(db=self.dbs["meta"]) as txn:
            raw = txn.get(_META_HISTORY_SEQ)
        return _SEQ.unpack(raw)[0] if raw else 1

    def _put(self, txn: lmdb.Transaction, table: str, items: _core.Rows) -> None:
        cursor = txn.cursor(self.dbs[table])
        if table not in _APPEND:
            cursor.putmulti(items)
            return
        # History, ledger and outbox keys start with a history sequence above every
        # stored one: append (full pages, only the tail is dirtied). LMDB refuses an
        # out-of-order key without raising, so count: a refused row aborts the batch.
        _, added = cursor.putmulti(items, append=True)
        if added != len(items):
            raise StoreError(f"{self.path}: {len(items) - added} {table} rows were not after the last stored "
                             f"key (history_seq behind the data?); the batch was not applied")

    # -- outbox, drained by the dispatcher ------------------------------------------

    def outbox_due(self, limit: int, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        """Up to ``limit`` effects whose next attempt is due: (handle, effect as a
        msgpack named map, attempts). Effects are stored compactly, naming their
        node instead of carrying its templates; the core names them here and takes
        the templates from the catalog (every applied version is kept), so the
        dispatcher and templates see the documented map.

        Retries whose time has come go first (the ``retry`` table is ordered by that
        time), then first attempts in creation order. Neither scan looks at an effect
        that is not due, however many wait.
        """
        due: list[tuple[bytes, bytes, int]] = []
        with self.env.begin() as txn:
            for key, raw in txn.cursor(self.dbs["retry"]):
                if len(due) >= limit or _SEQ.unpack_from(key)[0] > now_ms:
                    break
                info = _unpack(raw)
                effect = self.catalog.named_effect(info["effect"])
                due.append((_RETRY + key, self._with_recent(txn, key[_SEQ.size:], effect), info["attempts"]))
            for key, raw in txn.cursor(self.dbs["outbox"]):
                if len(due) >= limit:
                    break
                due.append((_FIRST + key, self._with_recent(txn, key, self.catalog.named_effect(raw)), 0))
        return due

    def _with_recent(self, txn: lmdb.Transaction, key: bytes, raw: bytes) -> bytes:
        """Add ``context.recent`` (the contact's events before the one that caused
        the effect, newest first) to an effect (named map) whose templates read
        ``recent``.

        Read here rather than carried in every effect: few templates use it, and
        history before the causing event never changes, so a retry renders the same.
        """
        if b"recent" not in raw:
            return raw
        effect = _unpack(raw)
        sources = [*(effect.get("message") or {}).values(), (effect.get("webhook") or {}).get("body")]
        if not any(isinstance(s, str) and "recent" in s for s in sources):
            return raw
        before = key[:_SEQ.size]
        seqs = [s for s in self._history_seqs(txn, effect["contact"]) if s < before][-RECENT_EVENTS:]
        rows = self._history_rows(txn, seqs)
        effect["context"]["recent"] = [
            {**(r.get("attrs") or {}), "attrs": r.get("attrs") or {}, "id": r["id"], "type": r["type"], "ts": r["ts"]}
            for r in reversed(rows) if not r["type"].startswith("$")]
        return msgpack.packb(effect)

    def _history_rows(self, txn: lmdb.Transaction, keys: list[bytes]) -> list[dict[str, Any]]:
        """The history rows found under ``keys``, in order, as dicts: rows are stored
        compactly, without their sequence (the key), decision reasons as traces; the
        core names them and renders the traces as text with the catalog (which keeps
        every program version applied)."""
        found = txn.cursor(self.dbs["history"]).getmulti(keys)
        named = self.catalog.named_history
        return [_unpack(named(raw, _SEQ.unpack(key)[0])) for key, raw in found]

    def _history_seqs(self, txn: lmdb.Transaction, contact: str) -> list[bytes]:
        """The history keys of ``contact``'s events, oldest first: the latest ids
        live in its state, older ones in the seen table."""
        key = contact.encode()
        raw = self._state_raw(txn, key)
        if raw is None:
            return []
        recent = [_SEQ.pack(seq) for _, seq in _state(key, raw)["recent"]]
        return sorted(recent + [v for _, v in _prefixed(txn.cursor(self.dbs["seen"]), key + b"\x00")])

    def outbox_settle(
        self, sent: list[bytes], failed: list[tuple[bytes, str, int | None]], now_ms: int
    ) -> None:
        """Record delivery results for handles from ``outbox_due``: sent effects leave
        the outbox; failed ones are rescheduled at ``retry_at`` or, with ``None``,
        moved to the dead-letter list."""
        self.settle()
        with self.env.begin(write=True) as txn:
            for handle in sent:
                self._take(txn, handle)
            for handle, error, retry_at in failed:
                taken = self._take(txn, handle)
                if taken is None:
                    continue  # settled already
                key, effect, attempts = taken
                if retry_at is None:
                    # Dead letters are read by people, rarely: they keep the named map,
                    # templates included.
                    row = {"effect": _unpack(self.catalog.named_effect(effect)), "error": error,
                           "attempts": attempts + 1, "ms": now_ms}
                    txn.put(key, msgpack.packb(row), db=self.dbs["dead"])
                else:
                    # The stored (compact) bytes as they are: outbox_due names them.
                    info = {"effect": effect, "attempts": attempts + 1, "error": error}
                    txn.put(_SEQ.pack(retry_at) + key, msgpack.packb(info), db=self.dbs["retry"])

    def _take(self, txn: lmdb.Transaction, handle: bytes) -> tuple[bytes, bytes, int] | None:
        """Remove a due effect from where it waits: (outbox key, effect, attempts)."""
        table, key = handle[:1], handle[1:]
        if table == _FIRST:
            effect = txn.pop(key, db=self.dbs["outbox"])
            return None if effect is None else (key, effect, 0)
        raw = txn.pop(key, db=self.dbs["retry"])
        if raw is None:
            return None
        info = _unpack(raw)
        return key[_SEQ.size:], info["effect"], info["attempts"]

    # -- inspection ----------------------------------------------------------------

    def contact(self, contact: str, last: int = 20) -> dict[str, Any] | None:
        """The contact's state, its last ``last`` events and its loyalty ledger."""
        key = contact.encode()
        with self.env.begin() as txn:
            raw = self._state_raw(txn, key)
            if raw is None:
                return None
            # The contact's ledger rows are keyed by its events' history sequences.
            state = _state(key, raw)
            seqs = self._history_seqs(txn, contact)
            shown = seqs[-last:] if last else []
            history = self._history_rows(txn, shown)
            ledger = _ledger(txn, self.dbs["ledger"], seqs)
            return {"contact": contact, "state": state, "history": history, "ledger": ledger}

    def member(self, contact: str) -> dict[str, Any] | None:
        """The contact's loyalty memberships (tier, balances, rewards) and its whole
        ledger, oldest first; None when it is in no program."""
        key = contact.encode()
        with self.env.begin() as txn:
            raw = self._state_raw(txn, key)
            programs = _state(key, raw)["loyalty"] if raw is not None else {}
            if not programs:
                return None
            ledger = _ledger(txn, self.dbs["ledger"], self._history_seqs(txn, contact))
            return {"contact": contact, "programs": programs, "ledger": ledger}

    def simulate(self, candidate: bytes, from_ms: int, until_ms: int) -> dict[str, Any]:
        """Replay this shard's history through ``candidate`` (a definitions document)
        and through the live catalog, loyalty only, from ``from_ms`` to ``until_ms``;
        one read transaction, nothing written. Rows per member for both."""
        start = time.perf_counter()
        runs = [_core.Simulation(_core.Catalog.compile(candidate, 1, None, self.secret), from_ms),
                _core.Simulation(self.catalog, from_ms)]
        with self.env.begin() as txn:
            chunk: list[bytes] = []
            for raw in txn.cursor(self.dbs["history"]).iternext(keys=False):
                chunk.append(raw)
                if len(chunk) == _BACKFILL_ROWS:
                    for run in runs:
                        run.feed(chunk)
                    chunk = []
            for run in runs:
                run.feed(chunk)
        events = runs[0].events
        candidate_rows, live_rows = (run.finish(until_ms) for run in runs)
        return {"events": events, "seconds": time.perf_counter() - start,
                "candidate": candidate_rows, "live": live_rows}

    def history(self, contact: str) -> list[dict[str, Any]]:
        """Every stored history row of ``contact``, oldest first (explain)."""
        with self.env.begin() as txn:
            seqs = self._history_seqs(txn, contact)
            return self._history_rows(txn, seqs)

    def attributes(self, event_type: str) -> list[tuple[str, str, int]]:
        """(attribute, inferred type, last seen ms) seen on events of ``event_type``."""
        prefix = event_type.lower().encode() + b"\x00"
        with self.env.begin(db=self.dbs["attributes"]) as txn:
            rows = _prefixed(txn.cursor(), prefix)
        out = []
        for key, stamp in rows:
            attr, kind = key[len(prefix):].split(b"\x00")
            if attr:  # the empty attribute only marks the type as seen
                out.append((attr.decode(), kind.decode(), _SEQ.unpack(stamp)[0]))
        return out

    def event_types(self) -> list[str]:
        """Every event type this shard has accepted an event of."""
        types = []
        with self.env.begin(db=self.dbs["attributes"]) as txn:
            cursor = txn.cursor()
            found = cursor.first()
            while found:
                kind = cursor.key().split(b"\x00", 1)[0]
                types.append(kind.decode())
                found = cursor.set_range(kind + b"\x01")  # skip to the next type
        return types

    def segment_page(self, name: str, now_ms: int, after: bytes = b"", limit: int = 5_000
                     ) -> tuple[list[str], bytes | None, int]:
        """Members of segment ``name`` among up to ``limit`` contacts after key
        ``after``: (members, key to continue after or None at the end, contacts read)."""
        self.checkpoint()
        with self.env.begin(db=self.dbs["state"]) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(after + b"\x00") if after else cursor.first()
            rows = []
            while found and len(rows) < limit:
                rows.append(cursor.item())
                found = cursor.next()
        members = self.catalog.segment_members(name, rows, now_ms)
        next_after = rows[-1][0] if found and rows else None
        return [m.decode() for m in members], next_after, len(rows)

    def positions(self) -> tuple[list[tuple[str, int, str, int]], dict[str, list[int]]]:
        """(program, version, node, contacts waiting there) over the shard's states,
        and per program [entries, conversions] (programs with entry rules or a goal)."""
        counts: dict[tuple[str, int, str], int] = {}
        journeys: dict[str, list[int]] = {}
        self.checkpoint()
        with self.env.begin(db=self.dbs["state"]) as txn:
            for contact, raw in txn.cursor():
                state = _state(contact, raw)
                for run in state.get("runs", ()):
                    at = (run["program"], run["version"], run["node"])
                    counts[at] = counts.get(at, 0) + 1
                for name, log in state.get("journeys", {}).items():
                    total = journeys.setdefault(name, [0, 0])
                    total[0] += log["entries"]
                    total[1] += log["conversions"]
        return [(p, v, n, c) for (p, v, n), c in sorted(counts.items())], journeys

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The dead-letter list, oldest first."""
        with self.env.begin(db=self.dbs["dead"]) as txn:
            rows = []
            for _, raw in txn.cursor():
                rows.append(_unpack(raw))
                if len(rows) >= limit:
                    break
            return rows

    def status(self) -> dict[str, Any]:
        """Row counts per table and the installed definitions version."""
        self.checkpoint()  # `contacts` counts the state table
        with self.env.begin() as txn:
            counts = {name: txn.stat(self.dbs[name])["entries"]
                      for name in DB_NAMES if name not in ("meta", "statelog")}
        return {
            "path": str(self.path),
            "contacts": counts["state"],
            "events": counts["history"],
            "ledger_rows": counts["ledger"],
            "outbox": counts["outbox"] + counts["retry"],
            "retrying": counts["retry"],
            "dead_letters": counts["dead"],
            "timers": counts["timers"],
            "definitions_version": self.catalog.version,
            "timing": {**{k: round(v, 3) for k, v in self.timing.items()},
                       "cpu_s": round(time.process_time() - self._cpu0, 3)},
        }

    def close(self) -> None:
        self.checkpoint()
        self._committer.shutdown()
        self.env.close()


def _prefixed(cursor: lmdb.Cursor, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) whose key starts with ``prefix``, in key order."""
    rows = []
    if cursor.set_range(prefix):
        for key, value in cursor:
            if not key.startswith(prefix):
                break
            rows.append((key, value))
    return rows


