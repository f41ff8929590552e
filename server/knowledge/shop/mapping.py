"""Column mapping: how an export's own files, column names, dates and values meet the schema.

A shop rarely exports our column names. A mapping file (TOML; docs/data-schema.md,
"Column mapping") says, per entity, which file holds it, which export column holds
each schema column, the `strptime` format of its dates and how its values translate
("unavailable" -> "cancelled"). Ingestion applies it to every row before the row
builders see it, so a user writes a mapping, never a converter. Without a mapping a
file uses the schema's own names and ISO 8601 dates, as before.

Owns: the mapping file's typed form (unknown keys and unknown schema columns are
errors, not silent no-ops) and `EntityMapper`, which renames one row and converts its
dates and values.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from server.errors import InvalidInput
from server.knowledge.shop.normalize import RowError

# Every schema column an entity file may carry (docs/data-schema.md, "Columns").
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "email", "phone", "segment", "created_at",
                  "marketing_opt_in", "country", "account_id"),
    "products": ("product_id", "title", "brand", "category", "price", "currency", "in_stock",
                 "warranty_months", "description", "complements", "replenish_days"),
    "policies": ("policy_id", "title", "text", "applies_to", "version", "params"),
    "articles": ("article_id", "title", "body", "tags", "product_ids", "categories", "locale",
                 "doc_type"),
    "orders": ("order_id", "customer_id", "ordered_at", "status", "shipped_at", "delivered_at",
               "total", "currency"),
    "order_items": ("order_id", "product_id", "quantity", "unit_price", "freight"),
    "returns": ("order_id", "product_id", "returned_at", "reason", "refund_status",
                "refund_amount"),
    "warranties": ("warranty_id", "customer_id", "order_id", "product_id", "starts_at",
                   "expires_at", "kind", "claim_status"),
    "transactions": ("order_id", "customer_id", "ordered_at", "product_id", "title", "quantity",
                     "unit_price", "status", "country", "segment", "currency", "category",
                     "brand"),
}
DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("created_at",),
    "orders": ("ordered_at", "shipped_at", "delivered_at"),
    "returns": ("returned_at",),
    "warranties": ("starts_at", "expires_at"),
    "transactions": ("ordered_at",),
}


class EntityMapping(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    file: str = ""  # file name in the shop directory; "" = <entity>.csv / <entity>.jsonl
    columns: dict[str, str] = {}  # schema column -> export column (case-insensitive)
    date_format: str = ""  # strptime format of this file's dates; "" = the file-wide one
    values: dict[str, dict[str, str]] = {}  # schema column -> {export value: schema value}
    cancel_prefix: str = ""  # transactions only: order ids that start with it are credit notes


class ColumnMapping(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    date_format: str = ""  # default strptime format for every date column; "" = ISO 8601
    customers: EntityMapping = msgspec.field(default_factory=EntityMapping)
    products: EntityMapping = msgspec.field(default_factory=EntityMapping)
    policies: EntityMapping = msgspec.field(default_factory=EntityMapping)
    articles: EntityMapping = msgspec.field(default_factory=EntityMapping)
    orders: EntityMapping = msgspec.field(default_factory=EntityMapping)
    order_items: EntityMapping = msgspec.field(default_factory=EntityMapping)
    returns: EntityMapping = msgspec.field(default_factory=EntityMapping)
    warranties: EntityMapping = msgspec.field(default_factory=EntityMapping)
    transactions: EntityMapping = msgspec.field(default_factory=EntityMapping)

    def entity(self, entity: str) -> EntityMapping:
        mapping: EntityMapping = getattr(self, entity)
        return mapping

    def mapper(self, entity: str) -> EntityMapper:
        m = self.entity(entity)
        return EntityMapper(entity, m, m.date_format or self.date_format)


def _check(mapping: ColumnMapping, source: str) -> ColumnMapping:
    for fmt in (mapping.date_format, *(mapping.entity(e).date_format for e in COLUMNS)):
        if fmt and "%" not in fmt:
            raise InvalidInput(f"{source}: date_format {fmt!r} has no strptime directive")
    for entity, known in COLUMNS.items():
        m = mapping.entity(entity)
        for kind, names in (("columns", m.columns), ("values", m.values)):
            unknown = sorted(set(names) - set(known))
            if unknown:
                raise InvalidInput(
                    f"{source}: [{entity}.{kind}] names unknown schema column(s) "
                    f"{', '.join(unknown)}; known: {', '.join(known)}"
                )
        if m.cancel_prefix and entity != "transactions":
            raise InvalidInput(f"{source}: cancel_prefix applies to [transactions] only")
        if m.file and Path(m.file).suffix not in (".csv", ".jsonl"):
            raise InvalidInput(f"{source}: [{entity}] file {m.file!r} must end in .csv or .jsonl")
        if m.file and Path(m.file).name != m.file:
            raise InvalidInput(f"{source}: [{entity}] file {m.file!r} must be a name in DIR")
    return mapping


def parse_mapping(text: str, source: str = "mapping") -> ColumnMapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{source} is not valid TOML: {exc}") from None
    try:
        return _check(msgspec.convert(data, ColumnMapping), source)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{source}: {exc}") from None


def load_mapping(path: str | Path | None) -> ColumnMapping:
    """The mapping file at `path`; an empty (identity) mapping for None or ""."""
    if not path:
        return ColumnMapping()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"mapping file not found: {file}") from None
    return parse_mapping(text, file.name)


class EntityMapper:
    """Renames one entity's rows to schema columns and converts their dates and values."""

    def __init__(self, entity: str, mapping: EntityMapping, date_format: str) -> None:
        self.entity = entity
        self.file = mapping.file
        self.cancel_prefix = mapping.cancel_prefix
        self.date_format = date_format
        # export column (lower case) -> schema column
        self._sources = {src.strip().lower(): col for col, src in mapping.columns.items()}
        self._targets = frozenset(mapping.columns)
        self.renames = bool(mapping.columns)
        self._values = {
            col: {k.strip().lower(): v for k, v in table.items()}
            for col, table in mapping.values.items()
        }
        self._dates = DATE_COLUMNS.get(entity, ()) if date_format else ()
        self.identity = not (self._sources or self._values or self._dates)

    def schema_columns(self, header: Iterable[str]) -> set[str]:
        """The schema columns a file with this header provides."""
        out: set[str] = set()
        for h in header:
            key = h.strip().lower()
            if key in self._sources:
                out.add(self._sources[key])
            elif key not in self._targets:
                out.add(key)
        return out

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """One row as read -> a row keyed by schema columns; RowError for a bad date."""
        if self.identity:  # no mapping: the file uses the schema's names (as read)
            return raw
        row: dict[str, Any] = {}
        for key, value in raw.items():
            k = key.strip().lower() if isinstance(key, str) else key
            if k in self._sources:
                row[self._sources[k]] = value
            elif k not in self._targets:  # an unmapped column named like a mapped one loses
                row.setdefault(k, value)
        for col, table in self._values.items():
            value = row.get(col)
            if isinstance(value, str) and value.strip().lower() in table:
                row[col] = table[value.strip().lower()]
        for col in self._dates:
            value = row.get(col)
            if isinstance(value, str) and value.strip():
                row[col] = self._date(value.strip(), col)
        return row

    def _date(self, value: str, col: str) -> str:
        try:
            return datetime.strptime(value, self.date_format).isoformat()
        except ValueError:
            raise RowError(
                f"bad date in {col}: {value!r} (expected {self.date_format!r})"
            ) from None
