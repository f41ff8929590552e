"""The record store's interface: what the pipeline and the servicers need from it.

`RecordStore` implements it on either database (server/records/sql.py: SQLite, the
embedded default, or PostgreSQL for many replicas). Record kinds kept in their own
modules (drafts, conversations, audit, retention, KPIs) reach the database through
`run_in_db`, with SQL both databases accept (`Db.dialect` for what differs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from server.records.sql import Db
from server.records.types import DecisionRecord, Feedback, Handoff, PendingAction

T = TypeVar("T")


@runtime_checkable
class Records(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...

    # Decisions: submit queues; commit returns once the record is durable.
    async def submit_decision(self, decision: DecisionRecord, handoff: Handoff | None = None,
                              actions: Sequence[PendingAction] = ()) -> None: ...
    async def commit_decision(self, decision: DecisionRecord, handoff: Handoff | None = None,
                              actions: Sequence[PendingAction] = ()) -> None: ...
    async def get_decision(self, decision_id: str) -> DecisionRecord: ...

    # The human side: handoffs, approvals, feedback (each call commits before it returns).
    async def list_handoffs(self, state: str = "pending", limit: int = 50) -> list[Handoff]: ...
    async def transition_handoff(self, handoff_id: str, agent_id: str, to_state: str,
                                 reply: str = "") -> Handoff: ...
    async def list_actions(self, state: str = "pending",
                           limit: int = 50) -> list[PendingAction]: ...
    async def decide_action(self, action_id: str, agent_id: str, approve: bool,
                            note: str = "") -> PendingAction: ...
    async def add_feedback(self, fb: Feedback) -> bool: ...
    async def list_feedback(self, decision_id: str) -> list[Feedback]: ...

    async def flush_pending(self) -> None: ...
    async def run_in_db(self, fn: Callable[[Db], T], flush: bool = True) -> T: ...
