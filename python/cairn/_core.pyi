"""Typed stubs of ``cairn._core``, the Rust extension (crate ``cairn-py`` over the pure
``cairn-core``). All byte formats are msgpack; see docs/definitions.md and
docs/wire-protocol.md."""

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

class CairnError(Exception):
    """Base class of every error raised by ``cairn._core`` (also raised by
    ``Catalog.apply`` when a stored state cannot be decoded)."""

class DefinitionError(CairnError):
    """Definitions that do not compile. ``str()`` lists every problem, one per line,
    as ``path: message``."""

    errors: list[tuple[str, str]]
    """Every problem found, as (path, message), e.g.
    ``("programs[0].nodes[2].when.all[1].op", "operator 'gt' is not offered ...")``."""

class FrameError(CairnError):
    """A frame (or batch part) that cannot be processed as a whole. ``str()`` is the
    message."""

    code: str
    """Protocol error code: ``"bad_frame"`` (not exactly one msgpack map, or ``op``
    missing / not a string) or ``"invalid"`` (e.g. ``events`` not a list, undecodable
    batch part)."""
    seq: int | None
    """The frame's ``seq`` when it could be read, else None."""

class Catalog:
    """Compiled, immutable definitions, indexed by lowercased event type. Safe to share
    between threads; the GIL is released during ``compile``, ``split_frame`` and
    ``apply``."""

    @staticmethod
    def compile(
        doc: bytes, version: int = 1, previous: Catalog | None = None, secret: bytes | None = None
    ) -> Catalog:
        """Compile the definitions mapping ``doc`` (msgpack bytes of the parsed YAML;
        nil = no definitions) as catalog ``version``. With ``previous`` (the catalog
        this one follows), a program whose definition did not change keeps its
        version, and earlier versions of changed or removed programs stay (retired)
        for the contacts inside them. ``secret`` (32 bytes) keys the reward codes the
        catalog grants (default: ``previous``'s). Raises ``DefinitionError`` listing
        every problem."""

    @property
    def version(self) -> int:
        """The catalog version given to ``compile`` (0 for ``empty_catalog()``)."""

    def named_history(self, raw: bytes, seq: int) -> bytes:
        """``named_history(raw, seq)`` with the decision traces of the row's steps
        rendered as the text they stand for (e.g. ``"attr total_amount = 148 gte
        140: true => yes"``): the program is found by the run's (name, version)
        among this catalog's current and retired programs, and its node's condition
        is replayed on the stored observations. A trace whose program version is not
        here (or that does not fit its node) reads as the fallback text
        ``"decision trace [...]: <why>"``, never an error. ``CairnError`` when
        ``raw`` is not a history row. What stores and explain read rows with."""

    def summary(self) -> dict[str, Any]:
        """``{"version": int, "strict_types": bool, "interaction_types": [lowercased
        names], "declared_attributes": {type: {attribute: type}}, "builtin_types":
        [names], "programs": [names], "program_versions": [{"name", "version",
        "current": bool, "trigger", "nodes": [(id, node type)]}] (current, then
        retired), "segments": [names], "loyalty": [{"name": str, "rules": [names]}]}``,
        in declaration order."""

    def facts(self) -> list[tuple[int, str]]:
        """(key, event type) of every counted history the definitions' history
        conditions use; keys are stable across versions for the same thing counted."""

    def backfill(
        self,
        keys: list[int],
        history: list[bytes],
        states: Callable[[list[bytes]], list[tuple[bytes, bytes]]],
    ) -> Rows:
        """Count stored ``history`` rows (in sequence order) into the counted histories
        ``keys`` of their contacts' states. ``states`` is called with the sorted contact
        keys to read and returns the (key, state) rows found (an LMDB cursor's
        ``getmulti``). Returns the changed (key, state) rows."""

    def named_effect(self, raw: bytes) -> bytes:
        """A stored outbox effect (``BatchResult.outbox``) re-encoded as a msgpack
        named map (see ``BatchResult.outbox``), the templates it names by reference
        (``[]``: those of its node in the program version it names) taken from these
        definitions, which keep every applied version: what delivery reads. Rows
        that carry their templates (written by earlier builds, compact or as named
        maps) read as ``named_effect`` reads them. ``CairnError`` when it cannot be
        decoded, or its node is not in these definitions."""

    def segment_members(self, name: str, states: list[tuple[bytes, bytes]], now_ms: int) -> list[bytes]:
        """The contacts among ``states`` ((contact, stored state) rows) that are in
        segment ``name`` at ``now_ms``. ``ValueError`` for an unknown segment,
        ``CairnError`` for a corrupt state."""

    def split_frame(self, frame: bytes, shards: int, now_ms: int) -> FrameSplit:
        """Decode one wire frame body (one msgpack map). For ``op != "events"`` return
        ``FrameSplit(op, seq, [], [], 0)``; the caller decodes such frames itself. For
        ``"events"``: validate each event alone (rejections carry index, code
        ``"invalid"`` or ``"unknown_type"``, message), normalize the valid ones (type
        lowercased, ts defaulted to ``now_ms``, attrs defaulted to ``{}``) and route each
        to shard ``crc32(contact) % shards``. Raises ``FrameError`` (``bad_frame`` or
        ``invalid`` with ``seq``) when the frame as a whole is unusable, ``ValueError``
        when ``shards < 1``. Never crashes on any bytes."""

    def apply(
        self,
        batch: Batch,
        states: Sequence[tuple[bytes, bytes]],
        seen: list[tuple[bytes, bytes]] | Callable[[list[bytes]], list[tuple[bytes, bytes]]],
        now_ms: int,
        next_seq: int = 1,
        held: States | None = None,
    ) -> BatchResult:
        """Apply ``batch`` in order. ``states``: the (contact, state) pairs found for
        ``batch.state_keys()`` (missing = new contact); with ``held``, only for
        ``held.missing(batch)``: the held states are used and updated in place, and
        the caller must ``held.clear()`` when the result is not committed. ``seen``: the ``seen`` table
        rows found, or a callable (an LMDB cursor's ``getmulti``) that the core calls
        with the keys it needs: only ids of contacts whose older ids spilled out of
        their state's ``recent`` list. ``next_seq``: the shard's next history sequence
        (``BatchResult.next_seq`` of the previous batch). An event whose id is in its
        contact's ``recent`` list or found in ``seen`` is a duplicate and changes
        nothing. A ``$timer`` event (see ``Batch.timers``) wakes the run it names, or
        a loyalty member's timer (releases, expiries, birthday and inactivity
        rules). Within an event: ``$profile`` set/unset, counted histories, then
        loyalty (joins, returns, redemptions, the rules of its type, tiers; ledger
        rows), then the contact's waiting runs (goals, awaited events), then
        triggered programs by priority (entry rules; each walks until End or a
        waiting node), then one history row. GIL released during the core work.
        Deterministic: same inputs, same bytes. Raises ``CairnError`` on a corrupt
        state."""

class Batch:
    """The normalized events of one or more batch parts (each a ``bytes`` from
    ``FrameSplit.batches``), in order."""

    def __init__(self, parts: list[bytes]) -> None:
        """Decode the parts; ``FrameError("invalid")`` on undecodable bytes."""

    @staticmethod
    def timers(keys: list[bytes]) -> Batch:
        """One part of ``$timer`` events, one per due timer key (``timers`` table:
        due ms as 8 bytes BE + contact + b"\x00" + run id as 8 bytes BE), with id
        ``$timer:RUN:DUE``. ``FrameError("invalid")`` for a key of another shape."""

    def state_keys(self) -> list[bytes]:
        """Sorted unique contact ids (utf-8): the state keys to read."""

    def __len__(self) -> int:
        """Number of events, duplicates included."""

class States:
    """A shard's decoded contact states, held between batches (``Catalog.apply(...,
    held=states)``), so that a batch decodes only the states it does not hold. The
    shard is their only writer: clear it when a batch's write transaction does not
    commit, and after anything else writes states. After a batch it holds at most
    ``capacity`` states, or the batch's own contacts when they are more, plus the
    states changed since ``mark_clean`` (never dropped: a shard's state log holds
    them until a checkpoint); which others are dropped is arbitrary (they are read
    again from storage)."""

    def __init__(self, capacity: int) -> None:
        """Hold up to ``capacity`` contacts' states (0: none)."""

    capacity: Final[int]

    def missing(self, batch: Batch) -> list[bytes]:
        """Sorted contact keys of ``batch`` whose state is not held: the keys to read."""

    def load(self, states: Sequence[tuple[bytes, bytes]]) -> None:
        """Decode the stored (contact, state) rows of contacts not held yet (to warm
        the held states; ``Catalog.apply`` loads what a batch misses by itself).
        ``CairnError`` on a corrupt state."""

    def clear(self) -> None:
        """Forget every held state."""

    def mark_clean(self) -> None:
        """Every change so far is in the state table (a checkpoint): any held state
        may be dropped again."""

    dirty: Final[int]
    """How many held states changed since ``mark_clean``."""

    def dirty_rows(self) -> Rows:
        """(contact, stored state) of every state changed since ``mark_clean``,
        sorted by contact: what a checkpoint writes into the state table. The bytes
        are those the batch that last changed each state logged, not encoded again."""

    def dirty_state(self, contact: str) -> bytes | None:
        """The stored form of ``contact``'s state if it changed since
        ``mark_clean``, else None (then the state table's row is current)."""

    def __len__(self) -> int:
        """Number of states held."""

class FrameSplit:
    """The result of ``Catalog.split_frame``."""

    op: Final[str]
    """The frame's ``op``."""
    seq: Final[int | None]
    """The frame's ``seq`` (None when absent or nil)."""
    batches: Final[list[tuple[int, bytes, int]]]
    """(shard, msgpack array of normalized event maps, count): non-empty shards only,
    ascending shard. A normalized event is ``{"id", "contact", "type", "ts", "attrs",
    "source" (None if absent)}``."""
    rejected: Final[list[tuple[int, str, str]]]
    """(index in the frame, code ``"invalid"`` | ``"unknown_type"``, message)."""
    total: Final[int]
    """Number of events in the frame (accepted + rejected)."""

class Rows(Sequence[tuple[bytes, bytes]]):
    """One table's (key, value) rows from the core, ready for LMDB ``putmulti``.
    The rows stay in one Rust buffer; each (key, value) tuple of new ``bytes`` is
    made when it is read (indexing or iterating), so a ``putmulti`` that iterates
    them drops each tuple as soon as it is written instead of holding a batch's
    worth of tuples at once. Indexing takes integers (negative from the end), not
    slices."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[bytes, bytes]: ...  # type: ignore[override]
    def __iter__(self) -> Iterator[tuple[bytes, bytes]]: ...
    def packed(self) -> bytes:
        """All the rows as one value (a batch's state log entry): per row the key's
        and the value's lengths (4 bytes BE each), then both. ``unpack_rows`` reads
        it back."""

class BatchResult:
    """Rows produced by ``Catalog.apply``, ready for LMDB ``putmulti`` in one write
    transaction. Keys: ``seq8`` = 8-byte big-endian unsigned integer."""

    states: Final[Rows]
    """(contact, state) for every contact with an accepted event: sorted by contact
    when the states are written in place (``States`` of capacity 0), in no set
    order when they go to the state log (the checkpoint's ``dirty_rows`` sorts).
    States are stored compactly (msgpack arrays, fields in declaration order); read
    one with ``named_state``: ``{"v": 1, "profile": {...}, "events": n, "ledger_seq":
    next ledger seq (starts at 1), "last_ts": ms, "loyalty": {program: {"joined_ms",
    "qualifying", "non_qualifying"}}, "recent": [[event id, history seq], ...] (the
    latest 16, oldest first), "spilled": how many older ids went to the ``seen``
    table, "runs": [waiting runs {"id", "program", "version", "node", "entered_ms",
    "wake_ms", "trigger": {"id", "type", "ts", "seq", "attrs", "source"}}],
    "last_run": n, "journeys": {program: {"entries", "last_entry_ms",
    "conversions"}}, "facts": {fact key: {value: [ts, ...]}}, "sends": {channel:
    [ts, ...]}}``. Finished runs are not in the state: their steps are in the history
    rows of the events that moved them."""
    seen: Final[Rows]
    """(contact + b"\\x00" + id, seq8 of the event's history row) for ids that no
    longer fit in their contact's ``recent`` list: dedup and history index for older
    events."""
    history: Final[Rows]
    """(seq8 shard history sequence, history row). Append-only: sequences only
    grow. Rows are stored compactly, as the msgpack array ``[id, contact, type, ts,
    attrs, source, runs]`` (the sequence is the key); read one with
    ``Catalog.named_history``: the normalized event map plus ``"seq"`` and
    ``"runs"``: what this event did to each program run, each the array ``[program,
    version, run id (0: not entered), [[node, outcome, reason], ...]]``. As stored,
    the reason of a decision or splitter step is a trace, the array ``[mode,
    observed values...]`` (docs/architecture.md, "Explain"), which
    ``Catalog.named_history`` renders as text; every other reason is text."""
    next_seq: Final[int]
    """The shard's next history sequence after this batch."""
    ledger: Final[Rows]
    """One row per event (or member timer) with ledger entries: (seq8 history
    sequence of the causing event + 4-byte BE 0; append-only; a member's rows are
    found through its history sequences), the array of its entries, each a compact
    array ``[ts, event_id, program, rule, version, kind, entry, delta,
    pending_delta, balance, pending, reason, reference]``, named by
    ``named_ledger``; per kind, ``delta`` sums to the available balance and
    ``pending_delta`` to the pending one)."""
    outbox: Final[Rows]
    """(seq8 history sequence of the causing event + 4-byte BE index of the effect
    within that event; keys only grow, so the outbox is append-only; effect).
    Effects are stored compactly, as the msgpack array ``[id, contact, channel, to
    (nil: the contact), program, version, run, node, created_ms, message, audience,
    webhook, [trigger event [id, type, ts, source, attrs], profile, loyalty {program:
    [qualifying, non_qualifying, pending_qualifying, pending_non_qualifying, tier,
    vip, rewards]}]]`` (the payloads an effect does not carry are nil). ``message``
    and ``webhook`` are ``[]``: the templates (text, subject, html, title; url,
    body) are those of node ``node`` of ``program`` at ``version`` in the
    definitions, not copied into every row (rows of earlier builds carry them
    inline, ``[text, subject, html, title]`` and ``[url, body]``). Read one with
    ``Catalog.named_effect``: ``{"id", "kind": "message" | "audience" | "webhook",
    "contact", "channel", "to", "program", "version", "run", "node", "event_id" (the
    run's trigger), "created_ms", "message"?: {"text", "subject"?, "html"?,
    "title"?}, "audience"?: {"name", "op"}, "webhook"?: {"url", "body"}, "context":
    {"contact", "event": the trigger {"id", "type", "ts", "source", "attrs"},
    "profile": the fields its templates read, "loyalty": {program: {"qualifying",
    "non_qualifying", "pending_qualifying", "pending_non_qualifying", "tier", "vip",
    "rewards"}}}}``, ``loyalty`` being ``{}`` unless a template of the node names
    ``loyalty`` (the word, not part of a longer name; a webhook without a body
    sends the whole context, so it always carries it)."""
    timers: Final[list[bytes]]
    """Timer keys to write (empty values), sorted: runs that now wait."""
    timer_deletes: Final[list[bytes]]
    """Timer keys to delete, sorted: fired, or their run stopped waiting."""
    attributes: Final[list[bytes]]
    """``type \0 attribute \0 inferred type`` for every attribute of the batch's
    accepted events, and ``type \0 \0`` for every type: the attribute catalog."""
    parts: Final[list[tuple[int, int]]]
    """(accepted, duplicates) per input part of the ``Batch``, in order."""
    accepted: Final[int]
    """Events applied."""
    duplicates: Final[int]
    """Events skipped as already seen (stored or earlier in this batch)."""
    effects: Final[int]
    """Outbox rows produced (== len(outbox))."""

def shard_of(contact: str, shards: int) -> int:
    """crc32 (IEEE) of the contact's utf-8 bytes modulo ``shards`` (``ValueError`` when
    ``shards < 1``); the same routing as ``split_frame``."""

class Simulation:
    """A loyalty simulation over one shard's history (``cairn simulate``). Each
    contact starts with no membership; events before ``from_ms`` only rebuild its
    profile and counted histories; from ``from_ms`` on they go through the
    catalog's loyalty programs (journeys do not run), with member timers fired in
    time order. Writes nothing."""

    def __init__(self, catalog: Catalog, from_ms: int) -> None: ...
    def feed(self, rows: list[bytes]) -> None:
        """Replay stored history rows, in history order (``$timer`` rows are
        skipped: the simulation fires its own timers). GIL released."""
    @property
    def events(self) -> int:
        """Events replayed through loyalty so far."""
    @property
    def ledger_rows(self) -> int:
        """Ledger rows the replay would have written so far."""
    def finish(self, until_ms: int) -> list[tuple[str, str, int, int, int, int, str, bool, int]]:
        """Fire member timers due up to ``until_ms``; then one row per member and
        program: (contact, program, qualifying, non_qualifying, pending qualifying,
        pending non-qualifying, tier, vip, rewards). A simulation finishes once."""

def empty_catalog() -> Catalog:
    """A catalog without definitions, version 0."""

def operators(attr_type: str) -> list[str]:
    """The condition operators offered for an attribute type (``"text"``,
    ``"number"``, ``"bool"``, ``"date"``, ``"list"``, ``"map"``); ``ValueError``
    otherwise."""

def named_state(contact: str, raw: bytes) -> bytes:
    """A stored state re-encoded as a msgpack named map (see ``BatchResult.states``);
    ``CairnError`` when it cannot be decoded."""

def named_history(raw: bytes, seq: int) -> bytes:
    """A stored history row (``BatchResult.history``) re-encoded as a msgpack named
    map, ``seq`` being its key's sequence; rows stored as named maps by earlier
    builds read too. Text reasons read as stored; decision traces need the
    definitions (``Catalog.named_history``) and read here as the fallback text
    ``"decision trace [...]: read without the definitions"``. ``CairnError`` when
    it cannot be decoded."""

def unpack_rows(raw: bytes) -> Rows:
    """The rows ``Rows.packed`` wrote. ``CairnError`` naming the row when ``raw``
    is cut short or is not such a value."""

def named_ledger(raw: bytes) -> bytes:
    """A stored ledger row (``BatchResult.ledger``) re-encoded as the msgpack array
    of its entries, each a named map ``{"ts", "event_id", "program", "rule",
    "version", "kind", "entry", "delta", "pending_delta", "balance", "pending",
    "reason", "reference"}``; rows of earlier builds (one entry each, compact or
    named) read as one entry. ``CairnError`` when it is none of these."""

def named_effect(raw: bytes) -> bytes:
    """A stored outbox effect that carries its templates re-encoded as a msgpack
    named map (see ``BatchResult.outbox``): rows of earlier builds, compact or named
    maps, for readers without the definitions. ``CairnError`` when it cannot be
    decoded, or names its node's templates instead of carrying them (every row the
    engine writes now): read those with ``Catalog.named_effect``."""
