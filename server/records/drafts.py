"""Drafts of assist mode: answers that wait for a human agent before they go out.

On a channel with `mode = "assist"` Respond still streams its answer, with route
"draft", and stores it here with its decision id. An agent lists the pending drafts
and reviews each once: accepted (sent as is), edited (sent in the agent's words) or
rejected. The `drafts` table lives in the record store's database and runs on its
database thread; the KPI `draft_acceptance_rate` is accepted / (accepted + edited +
rejected) over it, and `review_rates` gives the acceptance and edit rates per intent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from server.errors import Conflict, InvalidInput, NotFound, short
from server.records.sql import Db
from server.records.store import RecordStore, utcnow

DRAFT_STATES = ("pending", "accepted", "edited", "rejected")
VERDICTS = ("accepted", "edited", "rejected")

_COLUMNS = ("decision_id, conversation_id, customer_id, intent, channel, state, agent_id, "
            "created_at, reviewed_at, text, edited_text")


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: str
    conversation_id: str = ""
    customer_id: str = ""
    intent: str = ""
    channel: str = ""
    state: str = "pending"
    agent_id: str = ""
    created_at: str = ""
    reviewed_at: str = ""
    text: str = ""
    edited_text: str = ""


class ReviewRates(msgspec.Struct, frozen=True):
    intent: str
    accepted: int
    edited: int
    rejected: int

    @property
    def reviewed(self) -> int:
        return self.accepted + self.edited + self.rejected

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.reviewed if self.reviewed else 0.0

    @property
    def edit_rate(self) -> float:
        return self.edited / self.reviewed if self.reviewed else 0.0


def review_rates(counts: Iterable[tuple[str, str, int]]) -> list[ReviewRates]:
    """(intent, state, count) rows -> the review rates per intent, by intent name.
    Pending drafts are not reviewed yet and count for nothing."""
    by: dict[str, dict[str, int]] = {}
    for intent, state, n in counts:
        if state in VERDICTS:
            by.setdefault(intent, dict.fromkeys(VERDICTS, 0))[state] += n
    return [ReviewRates(i, c["accepted"], c["edited"], c["rejected"])
            for i, c in sorted(by.items())]


def _row(r: tuple[str, ...]) -> Draft:
    return Draft(**dict(zip(_COLUMNS.split(", "), (v or "" for v in r), strict=True)))


class DraftStore:
    """The drafts table, on the record store's database thread."""

    def __init__(self, records: RecordStore, redact: Callable[[str], str] | None = None) -> None:
        self._records = records
        # An agent's edit is free text like a customer's: PII is redacted before it is
        # stored, as everywhere else in the record store.
        self._redact = redact or (lambda text: text)

    async def submit(self, draft: Draft) -> None:
        def insert(c: Db) -> None:
            c.execute(f"INSERT INTO drafts ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (draft.decision_id, draft.conversation_id, draft.customer_id,
                       draft.intent, draft.channel, "pending", "", draft.created_at or utcnow(),
                       "", draft.text, ""))

        await self._records.run_in_db(insert, flush=False)  # after its own commit

    async def get(self, decision_id: str) -> Draft:
        if not decision_id:
            raise InvalidInput("decision_id is empty")

        def select(c: Db) -> tuple[str, ...] | None:
            return c.execute(f"SELECT {_COLUMNS} FROM drafts WHERE decision_id = ?",
                             (decision_id,)).fetchone()

        row = await self._records.run_in_db(select)
        if row is None:
            raise NotFound(f"draft {short(decision_id)} not found")
        return _row(row)

    async def list_drafts(self, state: str = "pending", limit: int = 50, intent: str = "",
                   channel: str = "") -> list[Draft]:
        state = state or "pending"
        if state not in DRAFT_STATES:
            raise InvalidInput(f"state must be one of {', '.join(DRAFT_STATES)}")
        where, args = ["state = ?"], [state]
        for col, value in (("intent", intent), ("channel", channel)):
            if value:
                where.append(f"{col} = ?")
                args.append(value)
        sql = (f"SELECT {_COLUMNS} FROM drafts WHERE {' AND '.join(where)} "
               "ORDER BY created_at, decision_id LIMIT ?")
        n = max(1, min(limit or 50, 500))
        rows = await self._records.run_in_db(lambda c: c.execute(sql, (*args, n)).fetchall())
        return [_row(r) for r in rows]

    async def review(self, decision_id: str, agent_id: str, verdict: str,
                     edited_text: str = "") -> Draft:
        """Review a pending draft once: accepted, edited (with the agent's text) or
        rejected."""
        if verdict not in VERDICTS:
            raise InvalidInput(f"verdict must be one of {', '.join(VERDICTS)}")
        if not agent_id:
            raise InvalidInput("agent_id is empty")
        if verdict == "edited" and not edited_text.strip():
            raise InvalidInput("an edited draft needs edited_text")
        if verdict == "accepted" and edited_text.strip():
            raise InvalidInput("an accepted draft goes out as drafted: use verdict 'edited'")
        if not decision_id:
            raise InvalidInput("decision_id is empty")

        stored_edit = self._redact(edited_text) if edited_text else ""

        def update(c: Db) -> tuple[str, ...]:
            # Conditional on pending: of two agents (or replicas) racing, one wins.
            with c.transaction():
                won = c.execute("UPDATE drafts SET state = ?, agent_id = ?, reviewed_at = ?, "
                                "edited_text = ? WHERE decision_id = ? AND state = 'pending'",
                                (verdict, agent_id, utcnow(), stored_edit, decision_id)).rowcount
                row = c.execute(f"SELECT {_COLUMNS} FROM drafts WHERE decision_id = ?",
                                (decision_id,)).fetchone()
            if row is None:
                raise NotFound(f"draft {short(decision_id)} not found")
            if not won:
                raise Conflict(f"draft {short(decision_id)} is already {row[5]}")
            return tuple(row)

        return _row(await self._records.run_in_db(update))

    async def rates(self) -> list[ReviewRates]:
        rows = await self._records.run_in_db(lambda c: c.execute(
            "SELECT intent, state, COUNT(*) FROM drafts GROUP BY intent, state").fetchall())
        return review_rates((i or "", s, n) for i, s, n in rows)
