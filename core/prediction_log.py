"""The prediction log's one schema: its tables, how to open it, and how to read it back.

The service writes it (`serving/prediction_log.py`, off the request path: `SqlAlchemyStore` here,
or for a plain SQLite URL core/sqlite_log.py, which writes the same tables with no SQLAlchemy);
the drift check and `make retrain` read it (`read_predictions`). SQLite (WAL) by default,
PostgreSQL by URL, read through SQLAlchemy Core. Feedback (ground truth) lives in its own table,
joined by request id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from core.columns import FEEDBACK, LABEL, MODEL_VERSION, REQUEST_ID, SCORE, TS
from core.errors import ServiceUnavailable
from core.sqlite_log import FEATURES, STORED_COLUMNS, Stored, use_wal

if TYPE_CHECKING:
    import pandas as pd

metadata = MetaData()
predictions = Table(
    "predictions",
    metadata,
    Column(REQUEST_ID, String(64), primary_key=True),
    Column(TS, DateTime(timezone=True), nullable=False, index=True),
    Column(MODEL_VERSION, String(64), nullable=False),
    Column(SCORE, Float, nullable=False),
    Column(LABEL, String(200), nullable=False),
    Column(FEATURES, Text, nullable=False),  # JSON object: contract feature → value
)
feedback = Table(
    "feedback",
    metadata,
    Column(REQUEST_ID, String(64), primary_key=True),
    Column(LABEL, String(200), nullable=False),
    Column(TS, DateTime(timezone=True), nullable=False),
)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for a plain postgresql:// URL (SQLAlchemy's default driver is not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


CREATE_ATTEMPTS = 3


def connect(url: str, *, create: bool = True) -> Engine:
    """Open the log's database; with `create`, make a SQLite file's folder and the tables too."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ServiceUnavailable(
            f"prediction log URL {url!r} is not a database URL: {exc}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            if not create and not Path(parsed.database).is_file():
                raise ServiceUnavailable(f"prediction log {parsed.database} not found")
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            use_wal(dbapi_conn)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        if create:
            _create_tables(engine)
        else:
            with engine.connect() as conn:
                missing = [t for t in metadata.tables if not engine.dialect.has_table(conn, t)]
            if missing:
                engine.dispose()
                raise ServiceUnavailable(
                    f"prediction log {parsed.render_as_string(hide_password=True)} has no "
                    f"{' or '.join(missing)} table (has the service written to it yet?)"
                )
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ServiceUnavailable(
            f"prediction log {parsed.render_as_string(hide_password=True)} cannot be opened: "
            f"{exc.__class__.__name__}: {str(exc.orig if hasattr(exc, 'orig') else exc).strip()}"
        ) from None
    return engine


def _create_tables(engine: Engine) -> None:
    """Create the log's tables and index, tolerating other processes creating them at the same moment.

    Several uvicorn workers start together on one new log. A check-then-create (`create_all`)
    loses that race table by table ("table predictions already exists"), so every statement is
    `CREATE ... IF NOT EXISTS` (SQLite and PostgreSQL); a few retries cover a backend whose
    IF NOT EXISTS can still collide (PostgreSQL's catalog under concurrent creation).
    """
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with engine.begin() as conn:
                for table in metadata.sorted_tables:
                    conn.execute(CreateTable(table, if_not_exists=True))
                    for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
                        conn.execute(CreateIndex(index, if_not_exists=True))
            return
        except SQLAlchemyError:
            if attempt == CREATE_ATTEMPTS - 1:
                raise


class SqlAlchemyStore:
    """The log through SQLAlchemy Core (PostgreSQL, or any URL naming a driver): the writer's store."""

    errors: tuple[type[Exception], ...] = (SQLAlchemyError,)

    def __init__(self, url: str) -> None:
        self.engine = connect(url)

    def time(self, ts: datetime) -> datetime:
        return ts

    def insert(self, rows: list[Stored], chunk: int) -> None:
        """Insert `rows` in one transaction, `chunk` rows a statement."""
        params = [dict(zip(STORED_COLUMNS, row, strict=True)) for row in rows]
        with self.engine.begin() as conn:
            for start in range(0, len(params), chunk):
                conn.execute(insert(predictions), params[start : start + chunk])

    def logged_label(self, request_id: str) -> str | None:
        """The label a logged prediction answered with (None when no such prediction exists)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(predictions.c.label).where(predictions.c.request_id == request_id)
            ).first()
        return None if found is None else str(found[0])

    def put_feedback(self, request_id: str, label: str, ts: datetime) -> None:
        """Store ground truth for a request id (latest wins)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(feedback), {REQUEST_ID: request_id, LABEL: label, TS: ts})
        except IntegrityError:
            with self.engine.begin() as conn:
                conn.execute(
                    update(feedback)
                    .where(feedback.c.request_id == request_id)
                    .values(label=label, ts=ts)
                )

    def close(self) -> None:
        self.engine.dispose()


def read_predictions(
    url: str,
    since: datetime | None = None,
    limit: int | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Read logged predictions, oldest first, with their feedback label where one was sent.

    Columns: request_id, ts (UTC), model_version, score, label, every logged feature, feedback
    (the true class, or None). `since` keeps rows at or after that time, `until` rows at or before
    it (a naive datetime is read as UTC); `limit` keeps the most recent rows. Raises ServiceUnavailable when the log cannot be
    read.
    """
    # Imported here: the service writes this log with no pandas in the process.
    import pandas as pd

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    query = select(
        predictions.c.request_id,
        predictions.c.ts,
        predictions.c.model_version,
        predictions.c.score,
        predictions.c.label,
        predictions.c.features,
        feedback.c.label.label(FEEDBACK),
    ).select_from(
        predictions.outerjoin(feedback, feedback.c.request_id == predictions.c.request_id)
    )
    if since is not None:
        query = query.where(predictions.c.ts >= since)
    if until is not None:
        query = query.where(predictions.c.ts <= until)
    query = query.order_by(predictions.c.ts.desc(), predictions.c.request_id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = _fetch(url, query)
    rows.reverse()
    head = pd.DataFrame(
        {
            REQUEST_ID: pd.Series([r.request_id for r in rows], dtype=object),
            TS: pd.to_datetime([r.ts for r in rows], utc=True),
            MODEL_VERSION: pd.Series([r.model_version for r in rows], dtype=object),
            SCORE: pd.Series([r.score for r in rows], dtype="float64"),
            LABEL: pd.Series([r.label for r in rows], dtype=object),
        }
    )
    features = pd.DataFrame.from_records([orjson.loads(r.features) for r in rows])
    features.index = head.index
    fb = pd.Series([r.feedback for r in rows], dtype=object, name=FEEDBACK)
    return pd.concat([head, features, fb], axis=1)


def first_logged(url: str, model_version: str) -> datetime | None:
    """Return when `model_version` wrote its first logged prediction (UTC), or None if never.

    The drift window of a version starts no earlier: rows before it belong to the one it replaced.
    """
    query = select(func.min(predictions.c.ts)).where(predictions.c.model_version == model_version)
    first = _fetch(url, query)[0][0]
    if first is None:
        return None
    # SQLite hands back a naive time; the service logs UTC.
    return first if first.tzinfo is not None else first.replace(tzinfo=UTC)


def _fetch(url: str, query: Any) -> list[Any]:
    """Run a read query on the log; raise ServiceUnavailable when it cannot be read."""
    engine = connect(url, create=False)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"prediction log cannot be read: {exc.__class__.__name__}"
        ) from None
    finally:
        engine.dispose()
