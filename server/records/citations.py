"""Which documents answered which intent, as people confirmed it: the evidence the
retrieval intent affinity learns from besides titles and tags.

A decision counts when a human vouched for its answer: an agent accepted its draft as
drafted (assist mode), or the customer's feedback says it resolved their issue. Every
passage the answer was grounded in counts once for the decision's intent. Unconfirmed
answers do not count: they were ranked by the affinity itself, and counting them would
only feed it back its own guesses.
"""

from __future__ import annotations

import msgspec

from server.records.sql import POSTGRESQL, Db
from server.records.store import RecordStore

_CONFIRMED = """
SELECT record FROM decisions WHERE decision_id IN (
    SELECT decision_id FROM drafts WHERE state = 'accepted'
    UNION
    SELECT decision_id FROM feedback WHERE {resolved})
ORDER BY started_at DESC LIMIT ?
"""
# Feedback records are msgspec JSON: `resolved` is a JSON boolean.
_RESOLVED = {
    "sqlite": "json_extract(CAST(record AS TEXT), '$.resolved') = 1",
    POSTGRESQL: "(convert_from(record, 'UTF8')::jsonb ->> 'resolved') = 'true'",
}


class _Used(msgspec.Struct):
    intent: str = ""
    passages: list[dict[str, object]] = []


async def confirmed_citations(records: RecordStore, limit: int = 5000,
                              ) -> dict[tuple[str, str], int]:
    """(intent, source_id) -> confirmed answers grounded in it, over the latest `limit`."""
    await records.flush_pending()

    def select(c: Db) -> list[bytes]:
        sql = _CONFIRMED.format(resolved=_RESOLVED[c.dialect])
        return [bytes(r[0]) for r in c.execute(sql, (limit,)).fetchall()]

    counts: dict[tuple[str, str], int] = {}
    decoder = msgspec.json.Decoder(_Used)
    for raw in await records.run_in_db(select):
        used = decoder.decode(raw)
        for sid in {str(p.get("source_id", "")) for p in used.passages} - {""}:
            counts[(used.intent, sid)] = counts.get((used.intent, sid), 0) + 1
    return counts


