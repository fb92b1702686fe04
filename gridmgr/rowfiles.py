"""Reading the rows of a CSV or JSON-lines file: the one reader of every import that takes rows
(past cases, component inventories).

A file is UTF-8 (a byte-order mark is skipped). A CSV's first line is its header and its rows
end at line breaks only (``str.splitlines()`` would also break at \\v, \\f, U+2028 …, which may
be inside a quoted note). A JSON-lines file holds one object per line; blank lines are skipped,
and a line that is not JSON, not an object or nested too deep is refused by its number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridmgr.errors import InvalidInput

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class RowFile:
    """A file's rows: its columns (a CSV's header; every key a JSON line uses, in the order
    first met), each row's line number and each row's values as the file gives them (a CSV
    row may be shorter or longer than its header; a JSON line's missing keys are None)."""

    columns: list[str]
    numbers: list[int]
    values: list[list]

    def __len__(self) -> int:
        return len(self.numbers)

    def records(self) -> Iterator[tuple[int, dict]]:
        """(line number, fields) of every row, as ``csv.DictReader`` makes them: values past
        the header's end as a list under the key None, missing ones None."""
        width = len(self.columns)
        for number, row in zip(self.numbers, self.values, strict=True):
            record = dict(zip(self.columns, row, strict=False))
            if len(row) < width:
                record.update(dict.fromkeys(self.columns[len(row):]))
            elif len(row) > width:
                record[None] = row[width:]
            yield number, record

    def column_values(self) -> list[list]:
        """Each row's values cut or padded (None) to the columns, for a table."""
        width = len(self.columns)
        return [row if len(row) == width else (row + [None] * width)[:width]
                for row in self.values]


def is_row_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def read_rows(path: Path, what: str) -> RowFile:
    """The rows of ``path`` (.csv, .jsonl or .ndjson); ``what`` names such files in the
    refusals ("history files are .csv or .jsonl")."""
    if not path.is_file():
        raise InvalidInput(f"There is no file {str(path)!r:.200}.", code="file_not_found")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(f"{path.name}: {what} files are .csv or .jsonl.", code="bad_file")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text.", code="bad_file") from exc
    return _csv(content) if kind == "csv" else _json_lines(path.name, content)


def _csv(content: str) -> RowFile:
    reader = csv.reader(io.StringIO(content, newline=""))
    columns = next(reader, [])
    numbers, values = [], []
    for row in reader:
        if row:  # csv.DictReader skips empty lines too
            numbers.append(reader.line_num)
            values.append(row)
    return RowFile(columns, numbers, values)


def _json_lines(name: str, content: str) -> RowFile:
    records = []
    for number, line in enumerate(io.StringIO(content, newline=""), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name} line {number} is not JSON: {exc.msg}.",
                               code="bad_file", row=number) from exc
        except RecursionError as exc:  # the parser recurses once per level of nesting
            raise InvalidInput(f"{name} line {number} nests too deep to be a row.",
                               code="bad_file", row=number) from exc
        if not isinstance(record, dict):
            raise InvalidInput(f"{name} line {number} is not a JSON object.",
                               code="bad_file", row=number)
        records.append((number, record))
    columns = list(dict.fromkeys(key for _, record in records for key in record))
    return RowFile(columns, [n for n, _ in records],
                   [[record.get(c) for c in columns] for _, record in records])
