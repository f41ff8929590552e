"""Versioned schema migrations of the record store, applied at start on either database.

Each migration has a version, a name and its statements, written once in SQLite's
dialect; `_postgres()` maps the few types that differ. `schema_migrations` says which
versions a database has; the missing ones run in order, each in its own transaction,
under a lock (PostgreSQL: an advisory lock, so replicas starting together apply each
migration once; SQLite: BEGIN IMMEDIATE). Statements are `IF NOT EXISTS`, so a
database made before migrations existed takes version 1-5 as a no-op. Append new
versions; never edit an applied one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import NamedTuple

from server.records.sql import POSTGRESQL, Db

log = logging.getLogger(__name__)

_LOCK_KEY = 7_201_301  # pg_advisory_xact_lock key of the record store's migrations


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions, handoffs, actions, feedback", """
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
"""),
    Migration(2, "drafts of assist mode", """
CREATE TABLE IF NOT EXISTS drafts (
  decision_id TEXT PRIMARY KEY, conversation_id TEXT, customer_id TEXT, intent TEXT,
  channel TEXT, state TEXT NOT NULL, agent_id TEXT, created_at TEXT, reviewed_at TEXT,
  text TEXT, edited_text TEXT);
CREATE INDEX IF NOT EXISTS drafts_state ON drafts(state, created_at);
"""),
    Migration(3, "conversation state and contact issues", """
CREATE TABLE IF NOT EXISTS conversations (
  conversation_id TEXT PRIMARY KEY, customer_id TEXT, updated_at TEXT, state BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated_at);
CREATE TABLE IF NOT EXISTS contact_issues (
  decision_id TEXT PRIMARY KEY, conversation_id TEXT, customer_id TEXT, issue TEXT, at TEXT);
CREATE INDEX IF NOT EXISTS contact_issues_key ON contact_issues(customer_id, issue, at);
"""),
    Migration(4, "audit, lifecycle events, corrections", """
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, actor TEXT, action TEXT, target TEXT,
  result TEXT);
CREATE TABLE IF NOT EXISTS lifecycle_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, model TEXT, kind TEXT, detail TEXT,
  actor TEXT);
CREATE INDEX IF NOT EXISTS lifecycle_events_model ON lifecycle_events(model, id);
CREATE TABLE IF NOT EXISTS corrections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, correction_id TEXT UNIQUE, decision_id TEXT,
  text TEXT, text_hash TEXT, true_intent TEXT, note TEXT, actor TEXT, at TEXT,
  UNIQUE(text_hash, true_intent));
"""),
    Migration(5, "retention actions issued", """
CREATE TABLE IF NOT EXISTS retention_issued (
  customer_id TEXT, kind TEXT, product_id TEXT, order_id TEXT, due_at TEXT,
  channel TEXT, as_of TEXT, issued_at TEXT,
  PRIMARY KEY (customer_id, kind, product_id, order_id, due_at));
CREATE INDEX IF NOT EXISTS retention_issued_cap ON retention_issued(customer_id, channel, as_of);
"""),
    Migration(6, "feedback by decision", """
CREATE INDEX IF NOT EXISTS feedback_decision ON feedback(decision_id);
"""),
)


def _postgres(sql: str) -> str:
    return (sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
            .replace("BLOB", "BYTEA"))


def statements(migration: Migration, dialect: str) -> list[str]:
    sql = _postgres(migration.sql) if dialect == POSTGRESQL else migration.sql
    return [s.strip() for s in sql.split(";") if s.strip()]


def _lock(db: Db) -> None:
    if db.dialect == POSTGRESQL:  # held until the transaction ends
        db.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))


def migrate(db: Db) -> list[int]:
    """Apply the missing migrations in order; returns the versions applied now."""
    with db.transaction():
        _lock(db)
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    applied: list[int] = []
    for m in MIGRATIONS:
        with db.transaction():
            _lock(db)
            if db.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                          (m.version,)).fetchone():
                continue
            for stmt in statements(m, db.dialect):
                db.execute(stmt)
            db.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (?,?,?)",
                       (m.version, m.name, datetime.now(UTC).isoformat(timespec="seconds")))
            applied.append(m.version)
    if applied:
        log.info("records schema: applied migrations %s", applied)
    return applied


def current_version(db: Db) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)
