"""Reading one input file: CSV and Parquet, line numbers, and files that cannot be read."""

from __future__ import annotations

import csv
import io
import json

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_pipeline.ingest.reading import (
    EXTRA_FIELDS_KEY,
    RawFile,
    UnreadableFileError,
    read_file,
    rows_as_json,
)


def _csv(text: str, path: str = "prices/p.csv") -> RawFile:
    return RawFile(path=path, kind="prices", data=text.encode("utf-8"))


def test_plain_csv_keeps_text_exactly_and_counts_lines_past_blank_lines():
    table = read_file(_csv("a,b,c\n1, x ,\n\n3,y,z\n"))
    assert list(table.text.columns) == ["a", "b", "c"]
    assert table.lines.tolist() == [2, 4]
    assert table.text.iloc[0].tolist() == ["1", " x ", None]  # spaces kept, empty -> null
    assert table.text.iloc[1].tolist() == ["3", "y", "z"]


def test_bom_and_crlf_line_ends():
    data = b"\xef\xbb\xbfa,b\r\n1,2\r\n\r\n3,4\r\n"
    table = read_file(RawFile("prices/p.csv", "prices", data))
    assert list(table.text.columns) == ["a", "b"]
    assert table.lines.tolist() == [2, 4]
    assert table.text["b"].tolist() == ["2", "4"]


def test_quoted_fields_with_newlines_and_commas_keep_start_lines():
    text = 'a,b,c\n1,"two\nlines, and a comma",x\n"3","say ""hi""",y\n4,"\n\n",z\n5,e,f\n'
    table = read_file(_csv(text))
    assert table.lines.tolist() == [2, 4, 5, 8]
    assert table.text["b"].tolist() == ["two\nlines, and a comma", 'say "hi"', "\n\n", "e"]


def test_bare_carriage_return_line_ends_are_counted():
    table = read_file(_csv("a,b\r1,2\r3,4\r"))
    assert table.lines.tolist() == [2, 3]
    assert table.text["a"].tolist() == ["1", "3"]


def _reference_lines(text: str) -> list[int]:
    """Start line of each non-blank data record, from the csv module (the reference)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    starts, previous = [], reader.line_num
    for record in reader:
        if record:
            starts.append(previous + 1)
        previous = reader.line_num
    return starts


_CELL = st.text(alphabet="ab1 ,\n\"'", max_size=6)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_CELL, _CELL), max_size=8), blank=st.booleans())
def test_line_numbers_match_the_csv_module_for_any_quoting(rows, blank):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["a", "b"])
    for row in rows:
        writer.writerow(row)
        if blank:
            out.write("\n")
    text = out.getvalue()
    table = read_file(_csv(text))
    expected = [r for r in csv.reader(io.StringIO(text, newline="")) if r][1:]
    assert table.lines.tolist() == _reference_lines(text)
    got = table.text.astype(object).where(table.text.notna(), "").values.tolist()
    assert got == [list(r) for r in expected]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_wrong_field_count_is_a_bad_row_not_a_file_failure(quoted):
    first = '"1"' if quoted else "1"
    table = read_file(_csv(f"a,b,c\n{first},2,3\n4,5\n6,7,8,9\n10,11,12\n"))
    assert table.lines.tolist() == [2, 5]
    assert table.bad_rows["line"].tolist() == [3, 4]
    assert json.loads(table.bad_rows["row"].iloc[0]) == {"a": "4", "b": "5"}
    assert json.loads(table.bad_rows["row"].iloc[1]) == {
        "a": "6",
        "b": "7",
        "c": "8",
        EXTRA_FIELDS_KEY: ["9"],
    }
    assert "expected 3 fields" in table.bad_rows["message"].iloc[1]


def test_ten_thousand_character_field_is_kept():
    long = "x" * 10_000
    table = read_file(_csv(f'a,b\n"{long}",1\n2,3\n'))
    assert table.text["a"].iloc[0] == long
    assert table.lines.tolist() == [2, 3]


def test_rows_as_json_gives_the_cells_as_written():
    table = read_file(_csv('a,b\n"=cmd()", 7.50\n'))
    assert json.loads(rows_as_json(table, np.array([0]))[0]) == {"a": "=cmd()", "b": " 7.50"}


@pytest.mark.parametrize(
    ("path", "data", "reason"),
    [
        ("prices/p.csv", b"", "empty file"),
        ("prices/p.csv", b"\n\n  \n", "empty file"),
        ("prices/p.csv", bytes(range(256)) * 4, "NUL bytes"),
        ("prices/p.csv", "a,b\ncaf\u00e9,1\n".encode("latin-1"), "not UTF-8"),
        ("prices/p.csv", b'a,b\n"unterminated,1\n', "CSV does not parse"),
        ("prices/p.csv", b"a,a\n1,2\n", "duplicate column names"),
        ("prices/p.xlsx", b"a,b\n1,2\n", "unsupported file type '.xlsx'"),
        ("prices/noext", b"a,b\n1,2\n", "unsupported file type"),
        ("prices/p.parquet", b"PAR1 this is not parquet", "not a readable Parquet file"),
    ],
)
def test_unreadable_files_raise_with_a_reason(path, data, reason):
    with pytest.raises(UnreadableFileError, match=reason):
        read_file(RawFile(path, "prices", data))


def test_file_over_the_size_limit_is_unreadable():
    data = b"a,b\n" + b"1,2\n" * 100
    with pytest.raises(UnreadableFileError, match="over the limit of 100 bytes"):
        read_file(RawFile("prices/p.csv", "prices", data), max_file_bytes=100)
    assert len(read_file(RawFile("prices/p.csv", "prices", data), max_file_bytes=len(data)).text)


def test_parquet_values_as_varchar_rows_numbered_and_kept_as_json(tmp_path):
    path = tmp_path / "p.parquet"
    duckdb.execute(
        "COPY (SELECT * FROM (VALUES "
        "('S1', DATE '2024-06-03', 100.0::DOUBLE, 'USD', TIMESTAMP '2024-06-03 00:00:00'), "
        "('S2', DATE '2024-06-04', NULL, 'EUR', TIMESTAMP '2024-06-04 12:30:00')"
        ") t(security_id, date, close, currency, ts)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    table = read_file(RawFile("prices/p.parquet", "prices", path.read_bytes()))
    assert table.lines.tolist() == [1, 2]
    assert table.text["close"].tolist() == ["100.0", None]
    assert table.text["date"].tolist() == ["2024-06-03", "2024-06-04"]
    assert table.text["ts"].tolist() == ["2024-06-03", "2024-06-04 12:30:00"]
    row = json.loads(rows_as_json(table, np.array([1]))[0])
    assert row["security_id"] == "S2"
    assert row["close"] is None
    assert row["currency"] == "EUR"
