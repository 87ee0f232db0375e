"""The prediction log on SQLite through the standard library: no SQLAlchemy in a serving worker.

The tables are core/prediction_log.py's (tests/serving/test_prediction_log.py checks that this DDL
is what SQLAlchemy emits for them), and times are stored as SQLAlchemy's SQLite DateTime stores
them, so `read_predictions` reads what the service wrote here. Only a plain `sqlite:///` URL
(no driver, no query) is opened this way; any other URL goes through SQLAlchemy
(core.prediction_log.connect). Importing SQLAlchemy cost a worker about 40 % of its start-up.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from core.columns import LABEL, MODEL_VERSION, REQUEST_ID, SCORE, TS
from core.errors import ServiceUnavailable

FEATURES = "features"
# A row as a store inserts it: request_id, ts (as that store takes it: `store.time(ts)`),
# model_version, score, label, features as JSON text.
Stored = tuple[str, Any, str, float, str, str]
STORED_COLUMNS = (REQUEST_ID, TS, MODEL_VERSION, SCORE, LABEL, FEATURES)
PLAIN_SQLITE = "sqlite:///"
# SQLAlchemy's SQLite DateTime format; it drops the offset, and the service writes UTC.
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# How long a connection waits out other processes switching the same new file to WAL.
WAL_WAIT_SECONDS = 30.0

DDL = (
    "CREATE TABLE IF NOT EXISTS feedback ("
    f"{REQUEST_ID} VARCHAR(64) NOT NULL, {LABEL} VARCHAR(200) NOT NULL, {TS} DATETIME NOT NULL, "
    f"PRIMARY KEY ({REQUEST_ID}))",
    "CREATE TABLE IF NOT EXISTS predictions ("
    f"{REQUEST_ID} VARCHAR(64) NOT NULL, {TS} DATETIME NOT NULL, "
    f"{MODEL_VERSION} VARCHAR(64) NOT NULL, {SCORE} FLOAT NOT NULL, "
    f"{LABEL} VARCHAR(200) NOT NULL, {FEATURES} TEXT NOT NULL, PRIMARY KEY ({REQUEST_ID}))",
    f"CREATE INDEX IF NOT EXISTS ix_predictions_ts ON predictions ({TS})",
)
INSERT_PREDICTION = (
    f"INSERT INTO predictions ({REQUEST_ID}, {TS}, {MODEL_VERSION}, {SCORE}, {LABEL}, {FEATURES}) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT_LABEL = f"SELECT {LABEL} FROM predictions WHERE {REQUEST_ID} = ?"
# Latest feedback wins.
UPSERT_FEEDBACK = (
    f"INSERT INTO feedback ({REQUEST_ID}, {LABEL}, {TS}) VALUES (?, ?, ?) "
    f"ON CONFLICT ({REQUEST_ID}) DO UPDATE SET {LABEL} = excluded.{LABEL}, {TS} = excluded.{TS}"
)


def sqlite_path(url: str) -> str | None:
    """The file (or ":memory:") of a plain `sqlite:///` URL; None for any other URL."""
    if url == "sqlite://":
        return ":memory:"
    if not url.startswith(PLAIN_SQLITE) or "?" in url:
        return None
    return url[len(PLAIN_SQLITE) :] or ":memory:"


def use_wal(conn: sqlite3.Connection, wait: float = WAL_WAIT_SECONDS) -> None:
    """Put the connection's file in WAL mode (the drift job reads while the service writes) with
    synchronous=NORMAL (durable under WAL).

    Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is locked"
    at once, without its busy timeout, while another process is switching the same file: the
    uvicorn workers opening a new log together (a container stopped at start on it). So this
    retries, with short growing sleeps, for up to `wait` seconds. Raises sqlite3.Error.
    """
    deadline = time.monotonic() + wait
    delay = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    conn.execute("PRAGMA synchronous=NORMAL")


def open_sqlite(path: str) -> sqlite3.Connection:
    """Open (making its folder and tables) the log's SQLite file in WAL mode, autocommit off.

    Several workers may open a new log at once: the WAL switch waits for the others (use_wal)
    and CREATE ... IF NOT EXISTS is one statement each. Raises sqlite3.Error.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    try:
        use_wal(conn)
        for statement in DDL:
            conn.execute(statement)
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def sqlite_time(ts: datetime) -> str:
    """A UTC time as SQLAlchemy's SQLite DateTime stores it."""
    return ts.strftime(TS_FORMAT)


class SqliteStore:
    """The log's SQLite file through sqlite3: one connection, shared by the writer and feedback."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, url: str, path: str) -> None:
        try:
            self._conn = open_sqlite(path)
        except (sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable(
                f"prediction log {url} cannot be opened: {exc.__class__.__name__}: {exc}"
            ) from None
        self._lock = threading.Lock()

    def time(self, ts: datetime) -> str:
        return sqlite_time(ts)

    def insert(self, rows: list[Stored], chunk: int) -> None:
        """Insert `rows` in one transaction (sqlite3 needs no chunks: `chunk` is for the protocol)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(INSERT_PREDICTION, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def logged_label(self, request_id: str) -> str | None:
        """The label a logged prediction answered with (None when no such prediction exists)."""
        with self._lock:
            found = self._conn.execute(SELECT_LABEL, (request_id,)).fetchone()
        return None if found is None else str(found[0])

    def put_feedback(self, request_id: str, label: str, ts: datetime) -> None:
        """Store ground truth for a request id (latest wins)."""
        with self._lock:
            self._conn.execute(UPSERT_FEEDBACK, (request_id, label, sqlite_time(ts)))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
