"""The record store's database backends: SQLite (embedded, the default) and PostgreSQL
(many replicas, one database), behind one small interface.

Record modules write their SQL once, with `?` placeholders and statements both
databases accept (`INSERT ... ON CONFLICT`, conditional `UPDATE`s whose row count says
who won); `Db` adapts a connection of either kind to that, and `Db.dialect` names the
database for the few statements that differ. A backend runs `fn(db)` off the event
loop: SQLite on its one database thread, PostgreSQL on a small thread pool with a
connection pool (psycopg 3), so several calls proceed at once.

`records.url`: "" or `sqlite:///relative/path` / `sqlite:////absolute/path` = SQLite;
`postgresql://user@host:port/db` = PostgreSQL (libpq's URL, so `PGPASSWORD` and the
other libpq variables apply).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from server.concurrency import run_blocking
from server.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE, POSTGRESQL = "sqlite", "postgresql"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """One connection, as record modules see it."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...


class SqliteDb:
    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        return self.conn.executemany(sql, rows).rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front: a read-then-write inside cannot race.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (and a literal `%` escaped)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class PgDb:
    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(pg_sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        with self.conn.cursor() as cur:
            cur.executemany(pg_sql(sql), rows)
            return cur.rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT of every column that replaces the row with the same key (both dialects)."""
    cols = ", ".join(columns)
    marks = ",".join("?" * len(columns))
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")


def insert_ignore(table: str, columns: Sequence[str]) -> str:
    """INSERT that leaves an existing row with the same unique key alone."""
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({','.join('?' * len(columns))}) ON CONFLICT DO NOTHING")


# -- where the records live ---------------------------------------------------------------
def redact_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def parse_url(url: str, path: str) -> tuple[str, str]:
    """(dialect, sqlite path or PostgreSQL URL) of `records.url`, else `records.path`."""
    if not url:
        return SQLITE, path
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///"):]
        if not rest:
            raise InvalidInput("records.url sqlite:/// names no file")
        return SQLITE, rest
    if url.startswith(("postgresql://", "postgres://")):
        return POSTGRESQL, url
    raise InvalidInput(f"records.url must start with sqlite:/// or postgresql://, "
                       f"not {redact_url(url)[:40]!r}")


class Backend(Protocol):
    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def run(self, fn: Callable[[Db], T]) -> T: ...


class SqliteBackend:
    """One connection, owned by one database thread; every statement runs there."""

    dialect = SQLITE

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise InvalidInput("records.synchronous must be NORMAL or FULL")
        self.path = path
        self._synchronous = synchronous.upper()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aftercare-db")
        self._db: SqliteDb | None = None

    async def open(self) -> None:
        await run_blocking(self._pool, self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: wait for another process's write lock on the same file (busy_timeout).
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        for attempt in range(20):
            try:  # switching a new file to WAL can meet another opener's lock (no wait)
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.05)
        # WAL + NORMAL: a committed transaction survives the process being killed (the
        # WAL is in the OS's hands); FULL also fsyncs each commit (power loss).
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        self._db = SqliteDb(conn)

    async def close(self) -> None:
        if self._db is not None:
            await run_blocking(self._pool, self._db.conn.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def run(self, fn: Callable[[Db], T]) -> T:
        return await run_blocking(self._pool, self._call, fn)

    def _call(self, fn: Callable[[Db], T]) -> T:
        if self._db is None:
            raise RuntimeError("record store is not open")
        return fn(self._db)


class PostgresBackend:
    """A psycopg 3 connection pool used from a thread pool of the same size: each call
    takes a connection (autocommit; `Db.transaction()` for more than one statement)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, pool_size: int = 4, connect_timeout_s: float = 10.0,
                 prepared_statements: bool = True) -> None:
        self.url = url
        self._prepare = prepared_statements
        self.where = redact_url(url)  # for logs and errors
        self._size = max(1, pool_size)
        self._timeout = connect_timeout_s
        self._threads = ThreadPoolExecutor(max_workers=self._size,
                                           thread_name_prefix="aftercare-pg")
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None

    async def open(self) -> None:
        await run_blocking(self._threads, self._open)

    def _open(self) -> None:
        import psycopg_pool

        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            self.url, min_size=1, max_size=self._size, open=False, name="aftercare-records",
            kwargs={"autocommit": True, **({} if self._prepare else {"prepare_threshold": None})},
            timeout=self._timeout)
        try:
            pool.open(wait=True, timeout=self._timeout)
        except Exception as exc:
            pool.close()
            raise Unavailable(f"cannot reach the records database at {self.where}: "
                              f"{type(exc).__name__}") from None
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await run_blocking(self._threads, self._pool.close)
            self._pool = None
        self._threads.shutdown(wait=True)

    async def run(self, fn: Callable[[Db], T]) -> T:
        return await run_blocking(self._threads, self._call, fn)

    def _call(self, fn: Callable[[Db], T]) -> T:
        import psycopg
        import psycopg_pool

        if self._pool is None:
            raise RuntimeError("record store is not open")
        try:
            with self._pool.connection() as conn:
                return fn(PgDb(conn))
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            log.warning("records database at %s: %s", self.where, type(exc).__name__)
            raise Unavailable("the records database is unavailable") from None


def make_backend(url: str, path: str, synchronous: str = "NORMAL",
                 pool_size: int = 4, prepared_statements: bool = True) -> Backend:
    dialect, where = parse_url(url, path)
    if dialect == POSTGRESQL:
        return PostgresBackend(where, pool_size, prepared_statements=prepared_statements)
    return SqliteBackend(Path(where), synchronous)


@contextlib.contextmanager
def connect_sync(url: str, path: str) -> Iterator[Db]:
    """One connection outside a server (offline commands, e.g. `models retrain`)."""
    dialect, where = parse_url(url, path)
    if dialect == POSTGRESQL:
        import psycopg

        with psycopg.connect(where, autocommit=True) as pg:
            yield PgDb(pg)
        return
    conn = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
    try:
        yield SqliteDb(conn)
    finally:
        conn.close()
