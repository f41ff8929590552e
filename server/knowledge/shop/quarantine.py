"""The quarantine, summarized: why rows were refused, grouped, most common first.

A reason names the values that failed ("unknown customer 'C404'"); grouping strips
the quoted values and parenthesized hints so that one rule is one group ("unknown
customer"), per entity.
Each group keeps its count and the first row that hit it, as an example a user can
look up in the source file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from server.knowledge.shop.reader import QuarantinedRow

_QUOTED = re.compile(r"""\s*(?:'[^']*'|"[^"]*")""")
_HINT = re.compile(r"\s*\([^)]*\)")
_COLON_TAIL = re.compile(r"[:\s]+$")
TOP = 3


def reason_kind(reason: str) -> str:
    """"bad date in created_at: 'x' (expected '%d')" -> "bad date in created_at"."""
    kind = _QUOTED.sub("", _HINT.sub("", reason))
    return _COLON_TAIL.sub("", re.sub(r"\s{2,}", " ", kind)).strip()


def reason_groups(rows: Iterable[QuarantinedRow]) -> list[dict[str, Any]]:
    """[{entity, reason, count, example}] by count (desc), then entity and reason."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for q in rows:
        key = (q.entity, reason_kind(q.reason))
        group = groups.get(key)
        if group is None:
            groups[key] = {"entity": q.entity, "reason": key[1], "count": 1,
                           "example": msgspec.structs.asdict(q)}
        else:
            group["count"] += 1
    return sorted(groups.values(), key=lambda g: (-g["count"], g["entity"], g["reason"]))


def describe(group: dict[str, Any]) -> str:
    """One line for a person: count, entity, reason, and where the example row is."""
    ex = group["example"]
    raw = ex["raw"] if isinstance(ex["raw"], str) else msgspec.json.encode(ex["raw"]).decode()
    if len(raw) > 160:
        raw = raw[:157] + "..."
    return (f"{group['count']:>7}  {group['entity']}: {group['reason']}\n"
            f"         e.g. {ex['source']}:{ex['line']} ({ex['reason']}) {raw}")
