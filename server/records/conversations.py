"""Conversation state and contact issues, in the record store's database.

Two tables of their own next to the decisions: `conversations` (one row per
conversation_id, the encoded state that server/conversation/state.py defines, redacted:
this module stores bytes and knows nothing of their shape) and
`contact_issues` (one row per answered turn that was about an issue: the customer, the
issue key "<intent family>|<order or product id>" and when), which the repeat-contact
rule counts. State is written when a turn is answered, so it survives a restart and
any replica that shares the database sees it.
"""

from __future__ import annotations

from server.records.sql import Db, upsert
from server.records.store import RecordStore

_SAVE_STATE = upsert("conversations", ("conversation_id", "customer_id", "updated_at",
                                        "state"), ("conversation_id",))
_SAVE_CONTACT = upsert("contact_issues", ("decision_id", "conversation_id", "customer_id",
                                          "issue", "at"), ("decision_id",))


class ConversationStore:
    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def load(self, conversation_id: str) -> bytes | None:
        if not conversation_id:
            return None

        def select(c: Db) -> bytes | None:
            row = c.execute("SELECT state FROM conversations WHERE conversation_id = ?",
                            (conversation_id,)).fetchone()
            return None if row is None else bytes(row[0])

        # Its own tables only (written directly, not through the decision queue).
        return await self._records.run_in_db(select, flush=False)

    async def save(self, conversation_id: str, customer_id: str, updated_at: str,
                   state: bytes | None, decision_id: str, issue: str = "") -> None:
        """Store the state (None: keep none) and, when the turn was about an issue, count it
        as a contact."""

        def write(c: Db) -> None:
            with c.transaction():
                if state is not None:
                    c.execute(_SAVE_STATE, (conversation_id, customer_id, updated_at, state))
                if issue:
                    c.execute(_SAVE_CONTACT,
                              (decision_id, conversation_id, customer_id, issue, updated_at))

        await self._records.run_in_db(write, flush=False)

    async def purge_idle(self, before: str) -> int:
        """Delete the state of conversations idle since before `before` (ISO 8601, UTC):
        past the idle timeout they start over anyway, and kept state is customer text.
        Contact issues stay (the repeat-contact rule counts them over its own window)."""

        def delete(c: Db) -> int:
            return c.execute("DELETE FROM conversations WHERE updated_at < ?",
                             (before,)).rowcount

        return await self._records.run_in_db(delete, flush=False)

    async def issue_contacts(self, customer_id: str, issue: str, since: str,
                             conversation_id: str = "") -> int:
        """Earlier conversations (not this one) in which this customer raised this issue
        since `since`."""
        if not customer_id or not issue:
            return 0

        def count(c: Db) -> int:
            row = c.execute(
                "SELECT COUNT(DISTINCT conversation_id) FROM contact_issues WHERE "
                "customer_id = ? AND issue = ? AND at >= ? AND conversation_id != ?",
                (customer_id, issue, since, conversation_id)).fetchone()
            return int(row[0])

        return await self._records.run_in_db(count, flush=False)
