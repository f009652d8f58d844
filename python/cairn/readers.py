"""Bulk event files (NDJSON, CSV) turned into wire-protocol events (I-2: import).

Readers are lazy generators, so a file of any size streams straight into
``Client.send``. They check only what they parse themselves (JSON syntax, CSV
timestamps); whether an event is valid is the server's call, which rejects bad
events one by one with their index.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

__all__ = ["ReaderError", "generated_id", "parse_ts", "read_csv", "read_events", "read_ndjson", "typed_value"]

#: CSV columns that are event keys rather than attributes.
EVENT_COLUMNS = ("id", "contact", "type", "ts", "source")
_ATTR_PREFIX = "attrs."
_MAX_ID_BYTES = 128
_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")


class ReaderError(ValueError):
    """A bulk file could not be read; names the file and, when known, the line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


def _open_text(path: Path) -> IO[str]:
    # newline="" lets the csv module handle quoted line breaks itself.
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


# ---------------------------------------------------------------------- NDJSON


def read_ndjson(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield one event per line of an NDJSON file; blank lines are skipped.

    Raises ``ReaderError`` (file and line number) for a line that is not a JSON
    object.
    """
    path = Path(path)
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReaderError(path, number, f"bad JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(event, dict):
                raise ReaderError(path, number, f"expected a JSON object, got {type(event).__name__}")
            yield event


# ------------------------------------------------------------------------- CSV


def typed_value(text: str) -> Any:
    """Type one CSV cell: int, float, true/false, else the text itself.

    Numbers with leading zeros (zip codes, product codes) stay text, and so do
    ``nan``/``inf``, which no attribute filter could use.
    """
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and not re.match(r"[+-]?0[0-9]", text):
        return float(text)
    return text


def parse_ts(text: str) -> int:
    """Parse an event time: integer milliseconds, or ISO 8601 (naive means UTC)."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad ts {text!r}: expected milliseconds or ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # Integer arithmetic on the timedelta avoids float rounding of the milliseconds.
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def generated_id(path: Path, row: int) -> str:
    """Deterministic id for the ``row``-th data row, so a re-import deduplicates."""
    candidate = f"{path.name}#{row}"
    if len(candidate.encode()) <= _MAX_ID_BYTES:
        return candidate
    digest = hashlib.sha256(path.name.encode()).hexdigest()[:32]
    return f"{digest}#{row}"


def _column_target(column: str) -> tuple[str, str]:
    """Map a header to ("event", key) or ("attr", name)."""
    if column in EVENT_COLUMNS:
        return "event", column
    if column.startswith(_ATTR_PREFIX) and len(column) > len(_ATTR_PREFIX):
        return "attr", column[len(_ATTR_PREFIX) :]
    return "attr", column


def _csv_row_event(
    row: dict[str, str], targets: dict[str, tuple[str, str]], default_type: str | None
) -> dict[str, Any]:
    event: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for column, text in row.items():
        if column is None or text is None or text == "":
            continue  # surplus cells (column None) or a missing/empty value
        kind, key = targets[column]
        if kind == "attr":
            attrs[key] = typed_value(text)
        elif key == "ts":
            event["ts"] = parse_ts(text)
        else:
            event[key] = text  # ids and contacts stay text, even when numeric
    if "type" not in event and default_type is not None:
        event["type"] = default_type
    if attrs:
        event["attrs"] = attrs
    return event


def read_csv(path: str | Path, default_type: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one event per data row of a CSV file with a header row.

    Columns ``id``, ``contact``, ``type``, ``ts``, ``source`` are event keys; every
    other column, and ``attrs.X`` as X, is an attribute, typed by ``typed_value``;
    empty cells are omitted. ``ts`` takes milliseconds or ISO 8601. Without an
    ``id`` value the id is built from the file name and the row number. Rows
    without a type get ``default_type``. Errors name the file and line.
    """
    path = Path(path)
    with _open_text(path) as stream:
        reader = csv.DictReader(stream)
        header = reader.fieldnames
        if not header:
            raise ReaderError(path, 1, "empty file: expected a header row")
        if "type" not in header and default_type is None:
            raise ReaderError(path, 1, "no 'type' column and no default type given")
        targets = {column: _column_target(column) for column in header}
        for row_number, row in enumerate(_rows(reader, path), start=1):
            try:
                event = _csv_row_event(row, targets, default_type)
            except ValueError as exc:
                raise ReaderError(path, reader.line_num, str(exc)) from None
            event.setdefault("id", generated_id(path, row_number))
            yield event


def _rows(reader: csv.DictReader, path: Path) -> Iterator[dict[str, str]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ReaderError(path, reader.line_num, f"bad CSV: {exc}") from None
        if not any(value for value in row.values() if isinstance(value, str)):
            continue  # a blank line between rows
        yield row


# ---------------------------------------------------------------------- choose


def read_events(
    path: str | Path, source: str | None = None, default_type: str | None = None
) -> Iterator[dict[str, Any]]:
    """Read events from an ``.ndjson``/``.jsonl``/``.csv`` file (optionally ``.gz``).

    Events without a ``source`` get ``source`` (``"import"`` when not given).
    """
    path = Path(path)
    kind = _kind(path)
    if kind in (".ndjson", ".jsonl"):
        events = read_ndjson(path)
    elif kind == ".csv":
        events = read_csv(path, default_type=default_type)
    else:
        raise ReaderError(path, None, "unknown file type: expected .ndjson, .jsonl or .csv")
    fill = source if source is not None else "import"
    for event in events:
        event.setdefault("source", fill)
        if default_type is not None:
            event.setdefault("type", default_type)
        yield event
