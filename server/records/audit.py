"""Audit trail, lifecycle events and human corrections, in the record store's database.

- Audit records: every admin call, who (the peer, later the authenticated identity),
  what, when and with which result.
- Lifecycle events of models (`loaded`, `load_failed`, `activated`, `rolled_back`,
  `policy_set`, `auto_rollback`, `unloaded`), read back by GetTrafficReport.
- Corrections: an agent's label for an earlier decision's message, stored as a
  labelled example of the redacted text (never raw PII), deduplicated by text and
  label, with who and when. `aftercare models retrain` trains on them.

Statements run on the RecordStore's database thread (`run_in_db`), never on the loop.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from server.errors import InvalidInput
from server.records.sql import Db, connect_sync, insert_ignore
from server.records.store import RecordStore, utcnow

_INSERT_CORRECTION = insert_ignore("corrections", (
    "correction_id", "decision_id", "text", "text_hash", "true_intent", "note", "actor", "at"))
_SELECT_CORRECTIONS = ("SELECT id, correction_id, decision_id, text, true_intent, note, actor, "
                       "at FROM corrections WHERE at >= ? ORDER BY id")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_label(true_intent: str) -> str:
    label = true_intent.strip()
    if not _LABEL_RE.match(label):
        raise InvalidInput("true_intent must be a label of [A-Za-z0-9_.-], 1-64 chars")
    return label


class AuditRecord(msgspec.Struct, frozen=True):
    at: str
    actor: str
    action: str
    target: str
    result: str


class LifecycleEvent(msgspec.Struct, frozen=True):
    at: str
    kind: str
    detail: str
    actor: str


class Correction(msgspec.Struct, frozen=True):
    seq: int  # insertion order: the id range a retrain records
    correction_id: str
    decision_id: str
    text: str  # redacted
    true_intent: str
    note: str
    actor: str
    at: str


class AuditLog:
    def __init__(self, store: RecordStore) -> None:
        self._store = store

    # -- audit -------------------------------------------------------------------------
    async def record(self, actor: str, action: str, target: str, result: str) -> None:
        row = (utcnow(), actor, action, target[:500], result[:500])
        await self._store.run_in_db(
            lambda c: c.execute("INSERT INTO audit (at, actor, action, target, result) "
                                "VALUES (?,?,?,?,?)", row))

    async def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        rows = await self._store.run_in_db(lambda c: c.execute(
            "SELECT at, actor, action, target, result FROM audit ORDER BY id DESC LIMIT ?",
            (limit,)).fetchall())
        return [AuditRecord(*r) for r in reversed(rows)]

    # -- lifecycle events (the EventSink of server/inference/lifecycle.py) --------------
    async def lifecycle_event(self, model: str, kind: str, detail: str, actor: str) -> None:
        row = (utcnow(), model, kind, detail, actor)
        await self._store.run_in_db(
            lambda c: c.execute("INSERT INTO lifecycle_events (at, model, kind, detail, actor) "
                                "VALUES (?,?,?,?,?)", row))

    async def lifecycle_events(self, model: str, limit: int = 200) -> list[LifecycleEvent]:
        rows = await self._store.run_in_db(lambda c: c.execute(
            "SELECT at, kind, detail, actor FROM lifecycle_events WHERE model = ? "
            "ORDER BY id DESC LIMIT ?", (model, limit)).fetchall())
        return [LifecycleEvent(*r) for r in reversed(rows)]

    # -- corrections -------------------------------------------------------------------
    async def add_correction(self, decision_id: str, true_intent: str, note: str,
                             actor: str) -> tuple[str, bool]:
        """Store the decision's redacted text with its true label: (id, duplicate)."""
        label = check_label(true_intent)
        decision = await self._store.get_decision(decision_id)  # NotFound if unknown
        text = decision.redacted_input.strip()
        if not text:
            raise InvalidInput(f"decision {decision_id} has no input text to learn from")
        digest = hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()
        correction_id = "cor_" + hashlib.sha256(f"{digest}:{label}".encode()).hexdigest()[:16]
        row = (correction_id, decision_id, text, digest, label, note[:500], actor, utcnow())

        def insert(c: Db) -> bool:
            return c.execute(_INSERT_CORRECTION, row).rowcount == 0

        duplicate = await self._store.run_in_db(insert)
        return correction_id, duplicate

    async def corrections(self, since: str = "") -> list[Correction]:
        rows = await self._store.run_in_db(
            lambda c: c.execute(_SELECT_CORRECTIONS, (since,)).fetchall())
        return [Correction(*r) for r in rows]


def read_corrections(path: str, since: str = "", url: str = "") -> list[Correction]:
    """Corrections straight from the records database (offline: retrain): `url` is
    `records.url` (wins when set), else `path` is the SQLite file."""
    with connect_sync(url, path) as db:
        try:
            rows = db.execute(_SELECT_CORRECTIONS, (since,)).fetchall()
        except Exception as exc:  # a database no server has started on yet
            if "corrections" not in str(exc):
                raise
            rows = []
    return [Correction(*r) for r in rows]
