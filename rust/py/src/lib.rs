//! Thin pyo3 binding of cairn-core, imported as `cairn._core`. Conversion only: all
//! logic lives in the pure core; the GIL is released during the core work.

use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use cairn_core as core;

// The batch apply allocates many small buffers (rows, reasons, effects); mimalloc
// is several times faster than glibc's malloc at that and returns memory promptly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(cairn._core, CairnError, PyException, "Base class of every error raised by cairn._core.");
create_exception!(
    cairn._core,
    DefinitionError,
    CairnError,
    "Definitions that do not compile; `errors` lists every (path, message)."
);
create_exception!(
    cairn._core,
    FrameError,
    CairnError,
    "A frame or batch that cannot be processed; attributes `code` and `seq`."
);

fn definition_error(py: Python<'_>, e: core::DefinitionError) -> PyErr {
    let err = DefinitionError::new_err(e.to_string());
    let errors = PyList::new(py, e.errors.iter().map(|(p, m)| (p.as_str(), m.as_str())));
    if let Ok(errors) = errors {
        let _ = err.value(py).setattr("errors", errors);
    }
    err
}

fn frame_error(py: Python<'_>, e: core::FrameError) -> PyErr {
    let err = FrameError::new_err(e.message.clone());
    let v = err.value(py);
    let _ = v.setattr("code", e.code);
    let _ = v.setattr("seq", e.seq);
    err
}

/// One table's rows from the core, handed to Python as they are read.
///
/// A batch writes about 45,000 rows (90,000 `bytes`); built all at once as a list
/// of tuples they lived, and were counted by the cyclic GC, until the batch's
/// last `putmulti` was done. Here the buffer stays in Rust and each (key, value)
/// tuple is made when an item is read: `putmulti` iterating it drops each tuple as
/// soon as it is written, so it dies young and its memory is reused at once.
#[pyclass(frozen, sequence, module = "cairn._core", name = "Rows")]
struct PyRows {
    inner: core::Rows,
}

/// Row `i` as a (key, value) tuple of new `bytes`.
fn row<'py>(py: Python<'py>, rows: &core::Rows, i: usize) -> PyResult<Bound<'py, PyTuple>> {
    let (k, v) = rows.get(i);
    PyTuple::new(py, [PyBytes::new(py, k), PyBytes::new(py, v)])
}

fn rows(py: Python<'_>, rows: core::Rows) -> PyResult<Py<PyRows>> {
    Py::new(py, PyRows { inner: rows })
}

#[pymethods]
impl PyRows {
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Row `index` (negative: from the end) as a (key, value) tuple.
    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyTuple>> {
        let n = self.inner.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(PyIndexError::new_err("row index out of range"));
        }
        row(py, &self.inner, i as usize)
    }

    fn __iter__(slf: Bound<'_, Self>) -> RowIter {
        RowIter { rows: slf.unbind(), next: 0 }
    }

    /// All the rows as one `bytes` value (`unpack_rows` reads it back).
    fn packed<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let packed = py.detach(|| self.inner.packed());
        PyBytes::new(py, &packed)
    }

    fn __repr__(&self) -> String {
        format!("<Rows {}>", self.inner.len())
    }
}

/// Iterator over a `Rows`, making each tuple as it is asked for.
#[pyclass(module = "cairn._core")]
struct RowIter {
    rows: Py<PyRows>,
    next: usize,
}

#[pymethods]
impl RowIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let rows = &self.rows.get().inner;
        if self.next >= rows.len() {
            return Ok(None);
        }
        self.next += 1;
        row(py, rows, self.next - 1).map(Some)
    }

    fn __length_hint__(&self) -> usize {
        self.rows.get().inner.len().saturating_sub(self.next)
    }
}

/// Compiled, immutable definitions.
#[pyclass(frozen, module = "cairn._core")]
struct Catalog {
    inner: Arc<core::Catalog>,
}

#[pymethods]
impl Catalog {
    /// Compile a msgpack-encoded definitions mapping.
    /// With `previous`, programs whose definition did not change keep their version and
    /// earlier versions stay for the contacts inside them.
    /// `secret` (32 bytes): the shard's key for reward codes (default: the
    /// previous catalog's, else zeros; the store always passes its own).
    #[staticmethod]
    #[pyo3(signature = (doc, version = 1, previous = None, secret = None))]
    fn compile(
        py: Python<'_>,
        doc: PyBackedBytes,
        version: u64,
        previous: Option<&Bound<'_, Catalog>>,
        secret: Option<PyBackedBytes>,
    ) -> PyResult<Catalog> {
        let prev = previous.map(|p| p.get().inner.clone());
        let key: Option<[u8; 32]> = match secret {
            None => prev.as_ref().map(|p| p.secret),
            Some(s) => Some(s.as_ref().try_into().map_err(|_| PyValueError::new_err("secret must be 32 bytes"))?),
        };
        match py.detach(|| core::definitions::compile_next(&doc, version, prev.as_deref())) {
            Ok(mut c) => {
                c.secret = key.unwrap_or_default();
                Ok(Catalog { inner: Arc::new(c) })
            }
            Err(e) => Err(definition_error(py, e)),
        }
    }

    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }

    /// A stored history row as a msgpack named map, like `named_history`, with the
    /// decision traces of its steps rendered as text from this catalog's programs
    /// (every applied version is kept); a trace whose program version is not here
    /// reads as a fallback text.
    fn named_history<'py>(&self, py: Python<'py>, raw: &[u8], seq: u64) -> PyResult<Bound<'py, PyBytes>> {
        let named = core::event::named_history_with(raw, seq, Some(&self.inner))
            .map_err(|e| CairnError::new_err(format!("history row {seq}: {e}")))?;
        Ok(PyBytes::new(py, &named))
    }

    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner;
        let d = PyDict::new(py);
        d.set_item("version", c.version)?;
        d.set_item("strict_types", c.strict_types)?;
        let types: Vec<&str> = c.interaction_types.iter().map(|t| t.name.as_str()).collect();
        d.set_item("interaction_types", types)?;
        let declared = PyDict::new(py);
        for t in &c.interaction_types {
            let attrs = PyDict::new(py);
            for (a, ty) in &t.attributes {
                attrs.set_item(a, ty.name())?;
            }
            declared.set_item(&t.name, attrs)?;
        }
        d.set_item("declared_attributes", declared)?;
        d.set_item("builtin_types", core::definitions::types::BUILTIN_TYPES.to_vec())?;
        let programs: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
        d.set_item("programs", programs)?;
        let versions = PyList::empty(py);
        for p in c.programs.iter().chain(&c.retired) {
            let pd = PyDict::new(py);
            pd.set_item("name", &p.name)?;
            pd.set_item("version", p.version)?;
            pd.set_item("current", c.programs.iter().any(|q| std::ptr::eq(q, p)))?;
            pd.set_item("trigger", &p.event)?;
            pd.set_item("nodes", p.nodes.iter().map(|n| (n.id.as_str(), n.kind.type_name())).collect::<Vec<_>>())?;
            versions.append(pd)?;
        }
        d.set_item("program_versions", versions)?;
        let segments: Vec<&str> = c.segments.iter().map(|s| s.name.as_str()).collect();
        d.set_item("segments", segments)?;
        let loyalty = PyList::empty(py);
        for l in &c.loyalty {
            let ld = PyDict::new(py);
            ld.set_item("name", &l.name)?;
            ld.set_item("rules", l.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())?;
            loyalty.append(ld)?;
        }
        d.set_item("loyalty", loyalty)?;
        Ok(d)
    }

    /// Decode and validate one wire frame, route valid events to shards.
    fn split_frame(&self, py: Python<'_>, frame: PyBackedBytes, shards: u32, now_ms: i64) -> PyResult<FrameSplit> {
        if shards == 0 {
            return Err(PyValueError::new_err("shards must be >= 1"));
        }
        let cat = &self.inner;
        let split = py.detach(|| core::split_frame(cat, &frame, shards, now_ms)).map_err(|e| frame_error(py, e))?;
        let batches = split
            .batches
            .iter()
            .map(|(s, b, n)| (*s, PyBytes::new(py, b), *n).into_pyobject(py))
            .collect::<PyResult<Vec<_>>>()?;
        let rejected = split
            .rejected
            .iter()
            .map(|(i, c, m)| (*i, *c, m.as_str()).into_pyobject(py))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(FrameSplit {
            op: split.op,
            seq: split.seq,
            batches: PyList::new(py, batches)?.unbind(),
            rejected: PyList::new(py, rejected)?.unbind(),
            total: split.total,
        })
    }

    /// Apply a batch to the stored states; GIL released during the core work.
    /// `states` are the stored (contact, state) rows of the batch's contacts (with
    /// `held`, only of those `held.missing(batch)` names). `seen` is either the list
    /// of (seen key, value) rows found, or a callable that takes the list of seen
    /// keys to look up and returns the rows found (e.g. an LMDB cursor's
    /// `getmulti`), called only when some contact has spilled ids. `held` keeps the
    /// decoded states between batches; the caller clears it when the batch's rows
    /// are not committed.
    #[pyo3(signature = (batch, states, seen, now_ms, next_seq = 1, held = None))]
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        py: Python<'_>,
        batch: &Bound<'_, Batch>,
        states: Vec<(PyBackedBytes, PyBackedBytes)>,
        seen: &Bound<'_, PyAny>,
        now_ms: i64,
        next_seq: u64,
        held: Option<&Bound<'_, States>>,
    ) -> PyResult<BatchResult> {
        let cat = &self.inner;
        let b = &batch.get().inner;
        let mut own = core::HeldStates::new(0);
        let mut borrowed = held.map(|h| h.borrow_mut());
        let held = match borrowed.as_mut() {
            Some(h) => &mut h.inner,
            None => &mut own,
        };
        py.detach(|| held.load(b, &states)).map_err(|e| CairnError::new_err(e.to_string()))?;
        let found: Vec<(PyBackedBytes, PyBackedBytes)> = if seen.is_callable() {
            let keys = core::apply::seen_lookups(b, held);
            if keys.is_empty() {
                Vec::new()
            } else {
                let keys = PyList::new(py, keys.iter().map(|k| PyBytes::new(py, k)))?;
                seen.call1((keys,))?.extract()?
            }
        } else {
            seen.extract()?
        };
        let r = py.detach(|| core::apply::apply_held(cat, b, held, &found, now_ms, next_seq));
        Ok(BatchResult {
            states: rows(py, r.states)?,
            seen: rows(py, r.seen)?,
            history: rows(py, r.history)?,
            ledger: rows(py, r.ledger)?,
            outbox: rows(py, r.outbox)?,
            timers: PyList::new(py, r.timers.iter().map(|k| PyBytes::new(py, k)))?.unbind(),
            timer_deletes: PyList::new(py, r.timer_deletes.iter().map(|k| PyBytes::new(py, k)))?.unbind(),
            attributes: PyList::new(py, r.attributes.iter().map(|k| PyBytes::new(py, k)))?.unbind(),
            parts: PyList::new(py, r.parts)?.unbind(),
            next_seq: r.next_seq,
            accepted: r.accepted,
            duplicates: r.duplicates,
            effects: r.effects,
        })
    }

    /// (key, event type) of every counted history (fact) the definitions use.
    fn facts(&self) -> Vec<(u64, String)> {
        self.inner.facts.iter().map(|f| (f.key, f.event.clone())).collect()
    }

    /// Count stored `history` rows (in sequence order) into the facts `keys` of the
    /// states of their contacts; `states` takes the sorted contact keys to read and
    /// returns the (key, state) rows found (an LMDB cursor's `getmulti`). Returns
    /// the changed (key, state) rows.
    fn backfill<'py>(&self, py: Python<'py>, keys: Vec<u64>, history: Vec<PyBackedBytes>, states: &Bound<'py, PyAny>) -> PyResult<Py<PyRows>> {
        let cat = &self.inner;
        let contacts = py.detach(|| core::facts::backfill_contacts(cat, &keys, &history));
        if contacts.is_empty() {
            return rows(py, core::Rows::default());
        }
        let found: Vec<(PyBackedBytes, PyBackedBytes)> = states.call1((PyList::new(py, contacts.iter().map(|k| PyBytes::new(py, k)))?,))?.extract()?;
        let out = py
            .detach(|| core::facts::backfill(cat, &keys, &history, &found))
            .map_err(|e| CairnError::new_err(e.to_string()))?;
        rows(py, out)
    }

    /// A stored outbox effect (any form) as a msgpack named map, the templates it
    /// carries by reference (its node's, in the program version it names) taken
    /// from these definitions: what delivery reads. Rows that carry their
    /// templates read as `named_effect` reads them.
    fn named_effect<'py>(&self, py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let named = core::effect::named_effect_in(&self.inner, raw).map_err(|e| CairnError::new_err(format!("effect: {e}")))?;
        Ok(PyBytes::new(py, &named))
    }

    /// The contacts among `states` ((key, state) rows) in segment `name` at `now_ms`.
    fn segment_members<'py>(&self, py: Python<'py>, name: &str, states: Vec<(PyBackedBytes, PyBackedBytes)>, now_ms: i64) -> PyResult<Bound<'py, PyList>> {
        let cat = &self.inner;
        let Some(idx) = cat.segment_index(name) else {
            let known: Vec<&str> = cat.segments.iter().map(|s| s.name.as_str()).collect();
            return Err(PyValueError::new_err(format!("unknown segment {name:?}; segments: {}", known.join(", "))));
        };
        let members = py
            .detach(|| core::inspect::segment_members(cat, idx, &states, now_ms).map(|m| m.iter().map(|k| k.to_vec()).collect::<Vec<_>>()))
            .map_err(|e| CairnError::new_err(e.to_string()))?;
        PyList::new(py, members.iter().map(|k| PyBytes::new(py, k)))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Catalog version={} programs={} loyalty={} interaction_types={}>",
            self.inner.version,
            self.inner.programs.len(),
            self.inner.loyalty.len(),
            self.inner.interaction_types.len()
        )
    }
}

/// The normalized events of one or more batch parts, in order.
#[pyclass(frozen, module = "cairn._core")]
struct Batch {
    inner: core::Batch,
}

#[pymethods]
impl Batch {
    #[new]
    fn new(py: Python<'_>, parts: Vec<PyBackedBytes>) -> PyResult<Batch> {
        py.detach(|| core::Batch::decode(&parts)).map(|inner| Batch { inner }).map_err(|e| frame_error(py, e))
    }

    /// The `$timer` events of due timer keys, as one batch part.
    #[staticmethod]
    fn timers(py: Python<'_>, keys: Vec<PyBackedBytes>) -> PyResult<Batch> {
        py.detach(|| core::Batch::timers(&keys)).map(|inner| Batch { inner }).map_err(|e| frame_error(py, e))
    }

    fn state_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.state_keys().iter().map(|k| PyBytes::new(py, k)))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("<Batch events={} parts={}>", self.inner.len(), self.inner.part_ends.len())
    }
}

/// A shard's decoded contact states, held between batches (`Catalog.apply(...,
/// held=)`): a batch decodes only the states it does not hold. The shard is the
/// only writer of its states; clear it when a batch's transaction does not commit
/// and after anything else writes states.
#[pyclass(module = "cairn._core")]
struct States {
    inner: core::HeldStates,
}

#[pymethods]
impl States {
    /// Hold up to `capacity` contacts (0: none).
    #[new]
    fn new(capacity: usize) -> States {
        States { inner: core::HeldStates::new(capacity) }
    }

    /// Sorted contact keys of `batch` whose state is not held: the keys to read.
    fn missing<'py>(&self, py: Python<'py>, batch: &Bound<'py, Batch>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.inner.missing(&batch.get().inner).iter().map(|k| PyBytes::new(py, k)))
    }

    /// Decode the stored (contact, state) rows of contacts not held yet.
    fn load(&mut self, py: Python<'_>, states: Vec<(PyBackedBytes, PyBackedBytes)>) -> PyResult<()> {
        let held = &mut self.inner;
        py.detach(|| held.load_rows(&states)).map_err(|e| CairnError::new_err(e.to_string()))
    }

    /// Forget every held state.
    fn clear(&mut self) {
        self.inner.clear();
    }

    /// Every held state's changes are in the state table now: any may be evicted.
    fn mark_clean(&mut self) {
        self.inner.mark_clean();
    }

    /// How many held states changed since `mark_clean` (never evicted until then).
    #[getter]
    fn dirty(&self) -> usize {
        self.inner.dirty_len()
    }

    /// (contact, stored state) rows of every state changed since `mark_clean`, sorted
    /// by contact (encoded with the GIL released).
    fn dirty_rows(&self, py: Python<'_>) -> PyResult<Py<PyRows>> {
        let held = &self.inner;
        let r = py.detach(|| held.dirty_rows());
        rows(py, r)
    }

    /// The stored form of `contact`'s state if it changed since `mark_clean`, else None.
    fn dirty_state<'py>(&self, py: Python<'py>, contact: &str) -> Option<Bound<'py, PyBytes>> {
        self.inner.dirty_state(contact).map(|b| PyBytes::new(py, b))
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("<States held={} capacity={}>", self.inner.len(), self.inner.capacity())
    }
}

/// The result of `Catalog.split_frame`.
#[pyclass(frozen, module = "cairn._core")]
struct FrameSplit {
    #[pyo3(get)]
    op: String,
    #[pyo3(get)]
    seq: Option<u64>,
    #[pyo3(get)]
    batches: Py<PyList>,
    #[pyo3(get)]
    rejected: Py<PyList>,
    #[pyo3(get)]
    total: usize,
}

#[pymethods]
impl FrameSplit {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<FrameSplit op={:?} seq={} batches={} rejected={} total={}>",
            self.op,
            self.seq.map_or_else(|| "None".to_owned(), |s| s.to_string()),
            self.batches.bind(py).len(),
            self.rejected.bind(py).len(),
            self.total
        )
    }
}

/// The result of `Catalog.apply`: rows ready for one LMDB write transaction.
#[pyclass(frozen, module = "cairn._core")]
struct BatchResult {
    #[pyo3(get)]
    states: Py<PyRows>,
    #[pyo3(get)]
    seen: Py<PyRows>,
    #[pyo3(get)]
    history: Py<PyRows>,
    #[pyo3(get)]
    ledger: Py<PyRows>,
    #[pyo3(get)]
    outbox: Py<PyRows>,
    /// Timer keys to put (values empty), sorted.
    #[pyo3(get)]
    timers: Py<PyList>,
    /// Timer keys to delete, sorted.
    #[pyo3(get)]
    timer_deletes: Py<PyList>,
    /// Attribute catalog keys (type \0 attribute \0 inferred type) seen in the batch.
    #[pyo3(get)]
    attributes: Py<PyList>,
    #[pyo3(get)]
    parts: Py<PyList>,
    #[pyo3(get)]
    next_seq: u64,
    #[pyo3(get)]
    accepted: usize,
    #[pyo3(get)]
    duplicates: usize,
    #[pyo3(get)]
    effects: usize,
}

#[pymethods]
impl BatchResult {
    fn __repr__(&self) -> String {
        format!(
            "<BatchResult accepted={} duplicates={} effects={}>",
            self.accepted, self.duplicates, self.effects
        )
    }
}

/// Shard of a contact: crc32 (IEEE) of its utf-8 bytes modulo `shards`.
#[pyfunction]
fn shard_of(contact: &str, shards: u32) -> PyResult<u32> {
    if shards == 0 {
        return Err(PyValueError::new_err("shards must be >= 1"));
    }
    Ok(core::shard_of(contact, shards))
}

/// A stored state as a msgpack named map, for readers outside the core (states are
/// stored compactly, as arrays).
#[pyfunction]
fn named_state<'py>(py: Python<'py>, contact: &str, raw: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let state = core::state::State::decode(contact, raw).map_err(|e| CairnError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &state.encode_named()))
}

/// A stored history row as a msgpack named map, `seq` being its key (history rows
/// are stored compactly, as arrays without their sequence; rows stored as named
/// maps before read too). Decision traces need the definitions to read as text
/// (`Catalog.named_history`): here they read as a fallback text.
#[pyfunction]
fn named_history<'py>(py: Python<'py>, raw: &[u8], seq: u64) -> PyResult<Bound<'py, PyBytes>> {
    let named = core::event::named_history(raw, seq).map_err(|e| CairnError::new_err(format!("history row {seq}: {e}")))?;
    Ok(PyBytes::new(py, &named))
}

/// A stored outbox effect that carries its templates as a msgpack named map
/// (effects stored compactly before templates went by reference, or as named
/// maps). A row the engine writes now names its node's templates instead: read
/// it with `Catalog.named_effect`; here it is an error.
#[pyfunction]
fn named_effect<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let named = core::effect::named_effect(raw).map_err(|e| CairnError::new_err(format!("effect: {e}")))?;
    Ok(PyBytes::new(py, &named))
}

/// The rows `Rows.packed` wrote (a state log entry).
#[pyfunction]
fn unpack_rows(py: Python<'_>, raw: &[u8]) -> PyResult<Py<PyRows>> {
    let unpacked = core::Rows::unpack(raw).map_err(|e| CairnError::new_err(format!("packed rows: {e}")))?;
    rows(py, unpacked)
}

/// A stored ledger row as the msgpack array of its entries as named maps (entries
/// are stored compactly, as arrays; rows of earlier builds read as one entry).
#[pyfunction]
fn named_ledger<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let named = core::loyalty::book::named_ledger(raw).map_err(|e| CairnError::new_err(format!("ledger row: {e}")))?;
    Ok(PyBytes::new(py, &named))
}

/// The operators conditions offer for an attribute type (J-6), e.g. "number".
#[pyfunction]
fn operators(attr_type: &str) -> PyResult<Vec<&'static str>> {
    core::definitions::AttrType::parse(attr_type)
        .map(|t| t.ops().to_vec())
        .ok_or_else(|| PyValueError::new_err(format!("unknown attribute type {attr_type:?}")))
}

/// A catalog without definitions, version 0.
/// A loyalty simulation over one shard's history (`cairn simulate`): feed stored
/// history rows in order, then `finish`. Writes nothing.
#[pyclass(module = "cairn._core")]
struct Simulation {
    inner: Option<core::simulate::Simulation>,
}

/// (contact, program, qualifying, non_qualifying, pending qualifying, pending
/// non-qualifying, tier, vip, rewards) per member at the end of a simulation.
type MemberRow = (String, String, i64, i64, i64, i64, String, bool, usize);

#[pymethods]
impl Simulation {
    #[new]
    fn new(catalog: &Bound<'_, Catalog>, from_ms: i64) -> Simulation {
        Simulation { inner: Some(core::simulate::Simulation::new(catalog.get().inner.clone(), from_ms)) }
    }

    /// Replay stored history rows (in history order); GIL released.
    fn feed(&mut self, py: Python<'_>, rows: Vec<PyBackedBytes>) -> PyResult<()> {
        let sim = self.inner.as_mut().ok_or_else(|| PyValueError::new_err("this simulation is finished"))?;
        py.detach(|| sim.feed(rows.iter().filter_map(|r| core::event::Event::from_history(r))));
        Ok(())
    }

    /// Events replayed through loyalty so far.
    #[getter]
    fn events(&self) -> u64 {
        self.inner.as_ref().map_or(0, |s| s.events)
    }

    /// Ledger rows the replay would have written so far.
    #[getter]
    fn ledger_rows(&self) -> u64 {
        self.inner.as_ref().map_or(0, |s| s.ledger_rows)
    }

    /// Fire member timers due up to `until_ms`; one row per member and program.
    fn finish(&mut self, py: Python<'_>, until_ms: i64) -> PyResult<Vec<MemberRow>> {
        let sim = self.inner.take().ok_or_else(|| PyValueError::new_err("this simulation is finished"))?;
        let out = py.detach(|| sim.finish(until_ms));
        Ok(out
            .into_iter()
            .map(|m| (m.contact, m.program, m.qualifying, m.non_qualifying, m.pending[0], m.pending[1], m.tier, m.vip, m.rewards))
            .collect())
    }
}

#[pyfunction]
fn empty_catalog() -> Catalog {
    Catalog { inner: Arc::new(core::Catalog::empty()) }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Catalog>()?;
    m.add_class::<Batch>()?;
    m.add_class::<States>()?;
    m.add_class::<FrameSplit>()?;
    m.add_class::<BatchResult>()?;
    m.add_class::<Simulation>()?;
    m.add_class::<PyRows>()?;
    m.add_function(wrap_pyfunction!(shard_of, m)?)?;
    m.add_function(wrap_pyfunction!(empty_catalog, m)?)?;
    m.add_function(wrap_pyfunction!(operators, m)?)?;
    m.add_function(wrap_pyfunction!(named_state, m)?)?;
    m.add_function(wrap_pyfunction!(named_history, m)?)?;
    m.add_function(wrap_pyfunction!(named_effect, m)?)?;
    m.add_function(wrap_pyfunction!(named_ledger, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_rows, m)?)?;
    m.add("CairnError", py.get_type::<CairnError>())?;
    m.add("DefinitionError", py.get_type::<DefinitionError>())?;
    m.add("FrameError", py.get_type::<FrameError>())?;
    Ok(())
}
