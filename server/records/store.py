"""The record store: decisions, handoffs, pending actions, feedback.

The database is a backend (server/records/sql.py): SQLite with WAL on one database
thread (the embedded default), or PostgreSQL through a connection pool (many replicas,
one database). Statements never run on the event loop. Decision records go through a
bounded queue drained by a writer task that commits in small batches (group commit):
Respond's `commit_decision` returns once its batch is committed, `submit_decision`
never waits for a write. Until its batch commits, a record stays readable from memory,
so GetDecision right after Respond finds it. State changes people make (claims,
approvals, reviews) are conditional updates: when two replicas race, exactly one wins
and the other gets Conflict. `close()` flushes the queue before closing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec

from server.errors import Conflict, InvalidInput, NotFound, Unavailable, short
from server.records.migrations import migrate
from server.records.sql import Backend, Db, insert_ignore, make_backend, upsert
from server.records.types import DecisionRecord, Feedback, Handoff, PendingAction

log = logging.getLogger(__name__)
T = TypeVar("T")

_DECISION_COLS = ("decision_id", "conversation_id", "customer_id", "channel", "started_at",
                  "finished_at", "intent", "route", "outcome", "record")
_UPSERT_DECISION = upsert("decisions", _DECISION_COLS, ("decision_id",))
_UPSERT_HANDOFF = upsert("handoffs", ("handoff_id", "decision_id", "state", "created_at",
                                      "record"), ("handoff_id",))
_UPSERT_ACTION = upsert("actions", ("action_id", "decision_id", "state", "created_at",
                                    "record"), ("action_id",))
_INSERT_FEEDBACK = insert_ignore("feedback", ("feedback_id", "decision_id", "created_at",
                                              "record"))

_enc = msgspec.json.Encoder()


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Write(msgspec.Struct):
    decision: DecisionRecord
    handoff: Handoff | None
    actions: list[PendingAction]
    committed: asyncio.Future[None] | None = None  # set once its batch is committed


def feedback_id(fb: Feedback) -> str:
    """The same feedback sent twice for a decision (a retried call) is one record."""
    content = msgspec.json.encode(msgspec.structs.replace(fb, feedback_id="", created_at=""))
    return f"fb-{fb.decision_id}-{hashlib.sha256(content).hexdigest()[:16]}"


class RecordStore:
    """`RecordStore(path)` is SQLite at that path; `RecordStore(url="postgresql://...")`
    (or `url="sqlite:///..."`) picks the backend from `records.url`."""

    def __init__(self, path: Path | None = None, queue_size: int = 10_000,
                 synchronous: str = "NORMAL", *, url: str = "", pool_size: int = 4,
                 prepared_statements: bool = True) -> None:
        if path is None and not url:
            raise InvalidInput("the record store needs records.path or records.url")
        self.backend: Backend = make_backend(url, str(path or ""), synchronous, pool_size,
                                             prepared_statements)
        self._queue: asyncio.Queue[_Write | None] | None = None
        self._queue_size = queue_size
        self._pending: dict[str, _Write] = {}
        self._writer: asyncio.Task[None] | None = None
        self.written = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self.backend.open()
        await self.backend.run(migrate)
        self._queue = asyncio.Queue(self._queue_size)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def close(self) -> None:
        """Flush every queued record, then close the database."""
        if self._queue is not None and self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        await self.backend.close()

    async def _run(self, fn: Callable[[Db], T]) -> T:
        return await self.backend.run(fn)

    # -- decisions ---------------------------------------------------------------------
    async def submit_decision(
        self,
        decision: DecisionRecord,
        handoff: Handoff | None = None,
        actions: Sequence[PendingAction] = (),
    ) -> None:
        """Queue a decision (and its handoff and actions) for the writer. Never drops:
        when the queue is full this waits for room (back-pressure, after the answer)."""
        if self._queue is None:
            raise RuntimeError("record store is not started")
        item = _Write(decision, handoff, list(actions))
        self._pending[decision.decision_id] = item
        await self._queue.put(item)

    async def commit_decision(
        self,
        decision: DecisionRecord,
        handoff: Handoff | None = None,
        actions: Sequence[PendingAction] = (),
    ) -> None:
        """Like submit_decision, but return only once the record is committed (group
        commit: it rides in the writer's next transaction with whatever else is queued).
        A caller told "done" after this can rely on it; a failed write is Unavailable."""
        if self._queue is None:
            raise RuntimeError("record store is not started")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Write(decision, handoff, list(actions), done)
        self._pending[decision.decision_id] = item
        await self._queue.put(item)
        # A cancelled caller does not cancel the write: the record still lands.
        await asyncio.shield(done)

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty() and len(batch) < 256:
                batch.append(self._queue.get_nowait())
            items = [b for b in batch if b is not None]
            if items:
                failed: Exception | None = None
                try:
                    await self._run(functools.partial(_write_batch, items=items))
                    self.written += len(items)
                except Exception as exc:
                    log.exception("writing %d decision records failed", len(items))
                    failed = exc
                finally:
                    for it in items:
                        self._pending.pop(it.decision.decision_id, None)
                for it in items:
                    if it.committed is None or it.committed.done():
                        continue
                    if failed is None:
                        it.committed.set_result(None)
                    else:
                        it.committed.set_exception(
                            Unavailable("the decision record could not be stored"))
            for _ in batch:
                self._queue.task_done()
            if any(b is None for b in batch):
                return

    async def get_decision(self, decision_id: str) -> DecisionRecord:
        if not decision_id:
            raise InvalidInput("decision_id is empty")
        pending = self._pending.get(decision_id)
        if pending is not None:
            return pending.decision
        row = await self._run(lambda db: _select_one(db, "decisions", "decision_id",
                                                     decision_id))
        if row is None:
            raise NotFound(f"decision {short(decision_id)} not found")
        return msgspec.json.decode(row, type=DecisionRecord)

    async def list_decision_ids(self) -> list[str]:
        rows = await self._run(
            lambda db: db.execute("SELECT decision_id FROM decisions").fetchall()
        )
        return [r[0] for r in rows]

    # -- handoffs ------------------------------------------------------------------------
    async def list_handoffs(self, state: str = "pending", limit: int = 50) -> list[Handoff]:
        return await self._list("handoffs", Handoff, state or "pending", limit)

    async def _list(self, table: str, typ: type[T], state: str, limit: int) -> list[T]:
        await self.flush_pending()
        def select(db: Db) -> list[bytes]:
            cur = db.execute(
                f"SELECT record FROM {table} WHERE state = ? ORDER BY created_at LIMIT ?",
                (state, max(1, min(limit or 50, 500))),
            )
            return [bytes(r[0]) for r in cur.fetchall()]

        return [msgspec.json.decode(r, type=typ) for r in await self._run(select)]

    async def transition_handoff(
        self, handoff_id: str, agent_id: str, to_state: str, reply: str = ""
    ) -> Handoff:
        """pending -> claimed (by an agent) -> resolved (by the agent who claimed it)."""
        if not agent_id:
            raise InvalidInput("agent_id is empty")
        await self.flush_pending()

        def update(db: Db) -> Handoff:
            raw = _select_one(db, "handoffs", "handoff_id", handoff_id)
            if raw is None:
                raise NotFound(f"handoff {short(handoff_id)} not found")
            h = msgspec.json.decode(raw, type=Handoff)
            if to_state == "claimed" and h.state != "pending":
                raise Conflict(f"handoff {short(handoff_id)} is {h.state}, not pending")
            if to_state == "resolved":
                if h.state != "claimed":
                    raise Conflict(f"handoff {short(handoff_id)} is {h.state}; claim it first")
                if h.agent_id != agent_id:
                    raise Conflict(f"handoff {short(handoff_id)} is claimed by another agent")
                if not reply.strip():
                    raise InvalidInput("reply is empty")
            was = h.state
            h = msgspec.structs.replace(
                h, state=to_state, agent_id=agent_id, reply=reply or h.reply, updated_at=utcnow()
            )
            # Conditional on the state read: of two agents (or replicas) racing, one wins.
            won = db.execute(
                "UPDATE handoffs SET state = ?, record = ? WHERE handoff_id = ? AND state = ?",
                (h.state, _enc.encode(h), handoff_id, was),
            ).rowcount
            if not won:
                raise Conflict(f"handoff {short(handoff_id)} was just changed by another agent")
            return h

        return await self._run(update)

    # -- pending actions ------------------------------------------------------------------
    async def list_actions(self, state: str = "pending", limit: int = 50) -> list[PendingAction]:
        return await self._list("actions", PendingAction, state or "pending", limit)

    async def decide_action(
        self, action_id: str, agent_id: str, approve: bool, note: str = ""
    ) -> PendingAction:
        if not agent_id:
            raise InvalidInput("agent_id is empty")
        await self.flush_pending()

        def update(db: Db) -> PendingAction:
            raw = _select_one(db, "actions", "action_id", action_id)
            if raw is None:
                raise NotFound(f"action {short(action_id)} not found")
            a = msgspec.json.decode(raw, type=PendingAction)
            if a.state != "pending":
                raise Conflict(f"action {short(action_id)} is already {a.state}")
            a = msgspec.structs.replace(
                a, state="approved" if approve else "rejected", agent_id=agent_id, note=note,
                updated_at=utcnow(),
            )
            won = db.execute(
                "UPDATE actions SET state = ?, record = ? WHERE action_id = ? "
                "AND state = 'pending'", (a.state, _enc.encode(a), action_id),
            ).rowcount
            if not won:
                raise Conflict(f"action {short(action_id)} was just decided by another agent")
            return a

        return await self._run(update)

    # -- feedback --------------------------------------------------------------------------
    async def add_feedback(self, fb: Feedback) -> bool:
        """Store feedback (idempotent by `feedback_id`); False when it was there already."""
        await self.get_decision(fb.decision_id)  # NotFound for an unknown decision
        await self.flush_pending()
        row = (fb.feedback_id, fb.decision_id, fb.created_at, _enc.encode(fb))
        return bool(await self._run(lambda db: db.execute(_INSERT_FEEDBACK, row).rowcount))

    async def list_feedback(self, decision_id: str) -> list[Feedback]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT record FROM feedback WHERE decision_id = ? ORDER BY created_at",
                (decision_id,)
            ).fetchall()
        )
        return [msgspec.json.decode(bytes(r[0]), type=Feedback) for r in rows]

    async def flush_pending(self) -> None:
        """Wait until every record queued so far is committed (agent ops read the DB)."""
        if self._queue is not None and self._writer is not None and not self._writer.done():
            await self._queue.join()

    # -- for the record kinds kept in their own modules (drafts, audit, retention, KPIs) ---
    async def run_in_db(self, fn: Callable[[Db], T], flush: bool = True) -> T:
        """Run `fn(db)` off the loop, on the backend; the one door for records/*.py
        modules. `flush` first waits until every record queued so far is committed, so
        reports see them; hot paths that only need their own committed rows skip it."""
        if flush:
            await self.flush_pending()
        return await self._run(fn)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0


def _select_one(db: Db, table: str, key: str, value: str) -> bytes | None:
    row = db.execute(f"SELECT record FROM {table} WHERE {key} = ?", (value,)).fetchone()
    return None if row is None else bytes(row[0])


def _write_batch(db: Db, items: list[_Write]) -> None:
    """One transaction for the batch: every decision with its handoff and actions."""
    decisions: list[tuple[object, ...]] = []
    handoffs: list[tuple[object, ...]] = []
    actions: list[tuple[object, ...]] = []
    for it in items:
        d = it.decision
        decisions.append((d.decision_id, d.conversation_id, d.customer_id, d.channel,
                          d.started_at, d.finished_at, d.intent, d.route, d.outcome,
                          _enc.encode(d)))
        if it.handoff is not None:
            h = it.handoff
            handoffs.append((h.handoff_id, h.decision_id, h.state, h.created_at, _enc.encode(h)))
        actions.extend((a.action_id, a.decision_id, a.state, a.created_at, _enc.encode(a))
                       for a in it.actions)
    with db.transaction():
        db.executemany(_UPSERT_DECISION, decisions)
        if handoffs:
            db.executemany(_UPSERT_HANDOFF, handoffs)
        if actions:
            db.executemany(_UPSERT_ACTION, actions)
