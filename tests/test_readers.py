"""Bulk import readers (I-2): NDJSON and CSV files to wire-protocol events."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cairn.readers import (
    ReaderError,
    generated_id,
    parse_ts,
    read_csv,
    read_events,
    read_ndjson,
    typed_value,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- NDJSON


def test_ndjson_yields_objects_and_skips_blank_lines(tmp_path: Path) -> None:
    events = [{"id": "1", "contact": "c1", "type": "view"}, {"id": "2", "contact": "c2", "type": "buy"}]
    path = write(tmp_path / "e.ndjson", json.dumps(events[0]) + "\n\n   \n" + json.dumps(events[1]) + "\n")
    assert list(read_ndjson(path)) == events


def test_ndjson_bad_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "e.ndjson", '{"id": "1"}\n\n{"id": \n')
    with pytest.raises(ReaderError) as info:
        list(read_ndjson(path))
    assert info.value.line == 3
    assert str(path) in str(info.value) and ":3:" in str(info.value)


def test_ndjson_rejects_non_objects(tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", '{"id": "1"}\n[1, 2]\n')
    with pytest.raises(ReaderError, match="expected a JSON object") as info:
        list(read_ndjson(path))
    assert info.value.line == 2


def test_ndjson_is_lazy(tmp_path: Path) -> None:
    path = write(tmp_path / "e.ndjson", '{"id": "1"}\nnot json\n')
    events = read_ndjson(path)
    assert next(events) == {"id": "1"}  # the bad line is not read yet
    with pytest.raises(ReaderError):
        next(events)


# ------------------------------------------------------------------- CSV


def test_csv_maps_event_columns_and_types_attributes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        "id,contact,type,ts,source,total_amount,attrs.store_code,vip,rate,zip,note\n"
        "e1,42,purchase,1700000000000,web,120,MI,true,0.5,00123,\n",
    )
    [event] = read_csv(path)
    assert event == {
        "id": "e1",
        "contact": "42",  # identifiers stay text even when numeric
        "type": "purchase",
        "ts": 1_700_000_000_000,
        "source": "web",
        "attrs": {"total_amount": 120, "store_code": "MI", "vip": True, "rate": 0.5, "zip": "00123"},
    }


def test_csv_iso_timestamps_become_milliseconds(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        "id,contact,type,ts\n"
        "a,c,view,2023-11-14T22:13:20Z\n"
        "b,c,view,2023-11-14T23:13:20.123+01:00\n"
        "c,c,view,2023-11-14T22:13:20\n",
    )
    assert [e["ts"] for e in read_csv(path)] == [1_700_000_000_000, 1_700_000_000_123, 1_700_000_000_000]


def test_csv_bad_ts_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "id,contact,type,ts\na,c,view,1\nb,c,view,yesterday\n")
    with pytest.raises(ReaderError, match="bad ts") as info:
        list(read_csv(path))
    assert info.value.line == 3 and info.value.path == str(path)


def test_csv_without_id_column_gets_deterministic_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "visits.csv", "contact,type\nc1,store_visit\nc2,store_visit\n")
    first = [e["id"] for e in read_csv(path)]
    assert first == ["visits.csv#1", "visits.csv#2"]
    assert [e["id"] for e in read_csv(path)] == first  # a re-import dedups server-side


def test_csv_empty_id_cell_gets_generated_id(tmp_path: Path) -> None:
    path = write(tmp_path / "v.csv", "id,contact,type\n,c1,x\nkeep,c2,x\n")
    assert [e["id"] for e in read_csv(path)] == ["v.csv#1", "keep"]


def test_generated_id_stays_within_128_bytes() -> None:
    long_name = Path("x" * 300 + ".csv")
    assert len(generated_id(long_name, 99).encode()) <= 128
    assert generated_id(long_name, 1) != generated_id(long_name, 2)


def test_csv_default_type_and_missing_type_column(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "contact,rating\nc1,5\n")
    with pytest.raises(ReaderError, match="no 'type' column"):
        list(read_csv(path))
    [event] = read_csv(path, default_type="review_published")
    assert event["type"] == "review_published" and event["attrs"] == {"rating": 5}


def test_csv_empty_cells_are_omitted_and_blank_rows_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "id,contact,type,ts,a\nx,c,t,,\n,,,,\ny,c,t,5,1\n")
    assert list(read_csv(path)) == [
        {"id": "x", "contact": "c", "type": "t"},
        {"id": "y", "contact": "c", "type": "t", "ts": 5, "attrs": {"a": 1}},
    ]


def test_csv_quoted_multiline_cell_keeps_line_numbers_right(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", 'id,contact,type,ts,note\na,c,t,1,"two\nlines"\nb,c,t,bad,x\n')
    with pytest.raises(ReaderError) as info:
        list(read_csv(path))
    assert info.value.line == 4


def test_csv_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="header"):
        list(read_csv(write(tmp_path / "e.csv", "")))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("-3", -3),
        ("0", 0),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("TRUE", True),
        ("false", False),
        ("007", "007"),
        ("0.5", 0.5),
        ("nan", "nan"),
        ("MI", "MI"),
    ],
)
def test_typed_value(text: str, value: object) -> None:
    result = typed_value(text)
    assert result == value and type(result) is type(value)


def test_parse_ts_accepts_ms_and_iso() -> None:
    assert parse_ts("1700000000000") == 1_700_000_000_000
    assert parse_ts("1970-01-01T00:00:01.5Z") == 1500
    with pytest.raises(ValueError):
        parse_ts("1.5")


# ------------------------------------------------------------ read_events


def test_read_events_picks_reader_and_sets_source(tmp_path: Path) -> None:
    nd = write(tmp_path / "a.ndjson", '{"id": "1", "contact": "c", "type": "t"}\n{"id": "2", "source": "web"}\n')
    assert [e["source"] for e in read_events(nd)] == ["import", "web"]
    assert [e["source"] for e in read_events(nd, source="crm")] == ["crm", "web"]
    csv_path = write(tmp_path / "a.CSV", "id,contact,type\n1,c,t\n")
    assert list(read_events(csv_path)) == [{"id": "1", "contact": "c", "type": "t", "source": "import"}]


def test_read_events_gzip_and_default_type(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write('{"id": "1", "contact": "c"}\n')
    assert list(read_events(path, default_type="gym_check_in")) == [
        {"id": "1", "contact": "c", "type": "gym_check_in", "source": "import"}
    ]


def test_read_events_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="unknown file type"):
        list(read_events(write(tmp_path / "a.txt", "x")))
