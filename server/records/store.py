"""SQLite record store (WAL): decisions, handoffs, pending actions, feedback.

One connection, owned by one database thread; every statement runs there, so the
event loop never blocks on disk. Decision records go through a bounded queue drained
by a writer task that commits in small batches: a Respond stream never waits for a
write. Until its batch commits, a record stays readable from memory, so GetDecision
right after Respond finds it. `close()` flushes the queue before closing.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from server.concurrency import run_blocking
from server.errors import Conflict, InvalidInput, NotFound, Unavailable, short
from server.records.types import DecisionRecord, Feedback, Handoff, PendingAction

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
  decision_id TEXT PRIMARY KEY, conversation_id TEXT, customer_id TEXT, channel TEXT,
  started_at TEXT, finished_at TEXT, intent TEXT, route TEXT, outcome TEXT,
  record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_customer ON decisions(customer_id, started_at);
CREATE TABLE IF NOT EXISTS handoffs (
  handoff_id TEXT PRIMARY KEY, decision_id TEXT, state TEXT, created_at TEXT,
  record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS handoffs_state ON handoffs(state, created_at);
CREATE TABLE IF NOT EXISTS actions (
  action_id TEXT PRIMARY KEY, decision_id TEXT, state TEXT, created_at TEXT,
  record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS actions_state ON actions(state, created_at);
CREATE TABLE IF NOT EXISTS feedback (
  feedback_id TEXT PRIMARY KEY, decision_id TEXT, created_at TEXT, record BLOB NOT NULL);
"""

_enc = msgspec.json.Encoder()


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Write(msgspec.Struct):
    decision: DecisionRecord
    handoff: Handoff | None
    actions: list[PendingAction]
    committed: asyncio.Future[None] | None = None  # set once its batch is committed


class RecordStore:
    def __init__(self, path: Path, queue_size: int = 10_000,
                 synchronous: str = "NORMAL") -> None:
        self.path = path
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise InvalidInput("records.synchronous must be NORMAL or FULL")
        self._synchronous = synchronous.upper()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aftercare-db")
        self._conn: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[_Write | None] | None = None
        self._queue_size = queue_size
        self._pending: dict[str, _Write] = {}
        self._writer: asyncio.Task[None] | None = None
        self.written = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self._run(self._open)
        self._queue = asyncio.Queue(self._queue_size)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives the process being killed (the
        # WAL is in the OS's hands); FULL also fsyncs each commit (power loss).
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.executescript(_SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        """Flush every queued record, then close the database."""
        if self._queue is not None and self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._db.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_blocking(self._db, fn, *args)

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("record store is not open")
        return self._conn

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
                    await self._run(self._write_batch, items)
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

    def _write_batch(self, items: list[_Write]) -> None:
        conn = self._c()
        with conn:
            conn.execute("BEGIN")
            for it in items:
                d = it.decision
                conn.execute(
                    "INSERT OR REPLACE INTO decisions VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (d.decision_id, d.conversation_id, d.customer_id, d.channel, d.started_at,
                     d.finished_at, d.intent, d.route, d.outcome, _enc.encode(d)),
                )
                if it.handoff is not None:
                    h = it.handoff
                    conn.execute(
                        "INSERT OR REPLACE INTO handoffs VALUES (?,?,?,?,?)",
                        (h.handoff_id, h.decision_id, h.state, h.created_at, _enc.encode(h)),
                    )
                for a in it.actions:
                    conn.execute(
                        "INSERT OR REPLACE INTO actions VALUES (?,?,?,?,?)",
                        (a.action_id, a.decision_id, a.state, a.created_at, _enc.encode(a)),
                    )

    async def get_decision(self, decision_id: str) -> DecisionRecord:
        if not decision_id:
            raise InvalidInput("decision_id is empty")
        pending = self._pending.get(decision_id)
        if pending is not None:
            return pending.decision
        row = await self._run(self._select_one, "decisions", "decision_id", decision_id)
        if row is None:
            raise NotFound(f"decision {short(decision_id)} not found")
        return msgspec.json.decode(row, type=DecisionRecord)

    def _select_one(self, table: str, key: str, value: str) -> bytes | None:
        cur = self._c().execute(f"SELECT record FROM {table} WHERE {key} = ?", (value,))
        row = cur.fetchone()
        return None if row is None else bytes(row[0])

    async def list_decision_ids(self) -> list[str]:
        rows = await self._run(
            lambda: self._c().execute("SELECT decision_id FROM decisions").fetchall()
        )
        return [r[0] for r in rows]

    # -- handoffs ------------------------------------------------------------------------
    async def list_handoffs(self, state: str = "pending", limit: int = 50) -> list[Handoff]:
        return await self._list("handoffs", Handoff, state or "pending", limit)

    async def _list(self, table: str, typ: type[T], state: str, limit: int) -> list[T]:
        await self.flush_pending()
        def select() -> list[bytes]:
            cur = self._c().execute(
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

        def update() -> Handoff:
            raw = self._select_one("handoffs", "handoff_id", handoff_id)
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
            h = msgspec.structs.replace(
                h, state=to_state, agent_id=agent_id, reply=reply or h.reply, updated_at=utcnow()
            )
            self._c().execute(
                "UPDATE handoffs SET state = ?, record = ? WHERE handoff_id = ?",
                (h.state, _enc.encode(h), handoff_id),
            )
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

        def update() -> PendingAction:
            raw = self._select_one("actions", "action_id", action_id)
            if raw is None:
                raise NotFound(f"action {short(action_id)} not found")
            a = msgspec.json.decode(raw, type=PendingAction)
            if a.state != "pending":
                raise Conflict(f"action {short(action_id)} is already {a.state}")
            a = msgspec.structs.replace(
                a, state="approved" if approve else "rejected", agent_id=agent_id, note=note,
                updated_at=utcnow(),
            )
            self._c().execute(
                "UPDATE actions SET state = ?, record = ? WHERE action_id = ?",
                (a.state, _enc.encode(a), action_id),
            )
            return a

        return await self._run(update)

    # -- feedback --------------------------------------------------------------------------
    async def add_feedback(self, fb: Feedback) -> None:
        await self.get_decision(fb.decision_id)  # NotFound for an unknown decision
        await self.flush_pending()
        await self._run(
            lambda: self._c().execute(
                "INSERT INTO feedback VALUES (?,?,?,?)",
                (fb.feedback_id, fb.decision_id, fb.created_at, _enc.encode(fb)),
            )
        )

    async def list_feedback(self, decision_id: str) -> list[Feedback]:
        rows = await self._run(
            lambda: self._c().execute(
                "SELECT record FROM feedback WHERE decision_id = ?", (decision_id,)
            ).fetchall()
        )
        return [msgspec.json.decode(bytes(r[0]), type=Feedback) for r in rows]

    async def flush_pending(self) -> None:
        """Wait until every record queued so far is committed (agent ops read the DB)."""
        if self._queue is not None and self._writer is not None and not self._writer.done():
            await self._queue.join()

    # -- for the record kinds kept in their own modules (drafts, audit, retention, KPIs) ---
    async def run_in_db(self, fn: Callable[[sqlite3.Connection], T], flush: bool = True) -> T:
        """Run `fn(connection)` on the database thread; the one door for records/*.py
        modules. `flush` first waits until every record queued so far is committed, so
        reports see them; hot paths that only need their own committed rows skip it."""
        if flush:
            await self.flush_pending()
        return await self._run(lambda: fn(self._c()))

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0
