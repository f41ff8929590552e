"""Reading the entity files of a shop directory, row by row, into records or quarantine.

Owns: finding an entity's file (CSV or JSONL, or the file the column mapping names),
reading raw rows with the line where each starts, renaming them through the mapping,
running a row builder over them, and collecting the rows that fail as
`QuarantinedRow`s with per-entity counts.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from server.errors import DataError
from server.knowledge.shop import rows
from server.knowledge.shop.mapping import ColumnMapping, EntityMapper
from server.knowledge.shop.normalize import RowError
from server.knowledge.shop.schema import ENTITIES, EntityCount

T = TypeVar("T")


class QuarantinedRow(msgspec.Struct):
    """One rejected row, as written to the quarantine JSONL file."""

    entity: str
    source: str  # file name inside the shop directory
    line: int  # 1-based line where the record starts (CSV header is line 1)
    raw: dict[str, Any] | str  # the row as read; a string when it was not parseable
    reason: str


def entity_file(path: Path, entity: str, name: str = "") -> Path | None:
    """The one file holding `entity` (.csv or .jsonl, or `name`), None when absent."""
    if name:
        return path / name if (path / name).is_file() else None
    found = [p for p in (path / f"{entity}.csv", path / f"{entity}.jsonl") if p.is_file()]
    if len(found) > 1:
        raise DataError(f"both {entity}.csv and {entity}.jsonl exist in {path}; keep one")
    return found[0] if found else None


def iter_raw(
    file: Path, entity: str, mapper: EntityMapper | None = None
) -> Iterator[tuple[int, dict[str, Any] | str, str]]:
    """Yield (line, raw row, problem) per record; problem is "" for a readable row.

    Rows are as read (export column names); `mapper` only checks the CSV header."""
    if file.suffix == ".jsonl":
        decoder = msgspec.json.Decoder()
        with file.open("rb") as fh:
            for no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = decoder.decode(line)
                except msgspec.DecodeError as exc:
                    yield no, line.decode("utf-8", "replace").rstrip("\n"), f"bad JSON: {exc}"
                    continue
                if isinstance(obj, dict):
                    yield no, obj, ""
                else:
                    yield no, line.decode("utf-8", "replace").rstrip("\n"), "not a JSON object"
        return
    with file.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        present = mapper.schema_columns(header) if mapper else set(header)
        missing = [c for c in rows.REQUIRED_COLUMNS[entity] if c not in present]
        if missing:
            hint = " (after the column mapping)" if mapper and mapper.renames else ""
            raise DataError(
                f"{file.name}: missing required column(s) {', '.join(missing)}{hint}"
            )
        width = len(header)
        last = reader.line_num
        for values in reader:
            start, last = last + 1, reader.line_num
            if not values:
                continue
            if len(values) != width:
                row: dict[str, Any] = dict(zip(header, values, strict=False))
                if len(values) > width:
                    row["_extra"] = values[width:]
                yield start, row, f"expected {width} columns, got {len(values)}"
                continue
            yield start, dict(zip(header, values, strict=True)), ""


class RowReader:
    """Runs builders over entity files, routing failures to the quarantine list."""

    def __init__(self, path: Path, mapping: ColumnMapping | None = None) -> None:
        self.path = path
        self.mapping = mapping or ColumnMapping()
        self.quarantined: list[QuarantinedRow] = []
        self.counts = {e: EntityCount() for e in ENTITIES}

    def file(self, entity: str) -> Path | None:
        return entity_file(self.path, entity, self.mapping.entity(entity).file)

    def load(self, entity: str, build: Callable[[dict[str, Any]], T]) -> list[T]:
        """Build one record per row of `entity`'s file (rows renamed by the mapping)."""
        return self.load_lines(entity, lambda _line, _raw, row: build(row))

    def load_lines(
        self, entity: str, build: Callable[[int, dict[str, Any], dict[str, Any]], T]
    ) -> list[T]:
        """Like `load`, for builders that keep where a record came from:
        build(line, row as read, row renamed by the mapping)."""
        file = self.file(entity)
        if file is None:
            return []
        mapper = self.mapping.mapper(entity)
        out: list[T] = []
        count = self.counts.setdefault(entity, EntityCount())
        for line, raw, problem in iter_raw(file, entity, mapper):
            count.read += 1
            if not problem:
                assert isinstance(raw, dict)
                try:
                    out.append(build(line, raw, mapper.apply(raw)))
                    continue
                except RowError as exc:
                    problem = str(exc)
                except (TypeError, ValueError) as exc:  # odd JSON types a builder did not expect
                    problem = f"bad value: {exc}"
            self.quarantine(entity, file.name, line, raw, problem)
        return out

    def quarantine(
        self, entity: str, source: str, line: int, raw: dict[str, Any] | str, reason: str
    ) -> None:
        self.counts.setdefault(entity, EntityCount()).quarantined += 1
        self.quarantined.append(QuarantinedRow(entity, source, line, raw, reason))

    def take(
        self,
        entity: str,
        source: str,
        records: Iterable[tuple[int, dict[str, Any] | str, T]],
        check: Callable[[T], T],
    ) -> list[T]:
        """Records built from another file (transaction lines): count, check, quarantine.

        Each comes with the line and raw row it was built from, for the quarantine."""
        out: list[T] = []
        count = self.counts.setdefault(entity, EntityCount())
        for line, raw, rec in records:
            count.read += 1
            try:
                out.append(check(rec))
            except RowError as exc:
                self.quarantine(entity, source, line, raw, str(exc))
        return out
