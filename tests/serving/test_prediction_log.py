"""The prediction log on real SQLite and PostgreSQL: batched writes, flush on close, drops counted,
feedback joined by request id, and read_predictions for the drift job."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ServiceUnavailable
from core.prediction_log import read_predictions
from core.sqlite_log import open_sqlite
from serving.prediction_log import PredictionLog


def rows(
    records: list[dict[str, Any]], prefix: str
) -> list[tuple[str, float, str, dict[str, Any]]]:
    return [
        (f"{prefix}-{i}", i / len(records), "Yes" if i % 2 else "No", r)
        for i, r in enumerate(records)
    ]


def test_close_writes_every_buffered_row_and_feedback_joins(
    log_url: str, records: list[dict[str, Any]]
) -> None:
    # A long flush interval keeps rows in memory until close(): close must write them all.
    plog = PredictionLog(log_url, flush_seconds=5.0, batch_size=10_000)
    assert plog.submit("7", rows(records, "a"))
    assert plog.submit("7", rows(records[:50], "b"))
    assert plog.depth == 250
    plog.close()
    assert plog.stats.written == 250 and plog.stats.dropped == 0

    frame = read_predictions(log_url)
    assert len(frame) == 250
    assert list(frame.columns[:5]) == ["request_id", "ts", "model_version", "score", "label"]
    assert set(records[0]) <= set(frame.columns) and frame.columns[-1] == "feedback"
    assert frame["feedback"].isna().all()
    assert str(frame["ts"].dt.tz) == "UTC"
    first = frame.set_index("request_id").loc["a-3"]
    assert first["score"] == pytest.approx(3 / 200) and first["label"] == "Yes"
    assert first["contract"] == records[3]["contract"]

    plog = PredictionLog(log_url)
    assert plog.add_feedback("a-3", "No") == "Yes"  # the label the prediction answered
    assert plog.add_feedback("a-3", "Yes") == "Yes"  # latest wins
    assert plog.add_feedback("never-logged", "Yes") is None
    plog.close()
    frame = read_predictions(log_url).set_index("request_id")
    assert frame.loc["a-3", "feedback"] == "Yes"
    assert frame["feedback"].notna().sum() == 1


def test_a_batch_sent_by_column_is_logged_row_by_row(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    plog = PredictionLog(url, flush_seconds=5.0, batch_size=10_000)
    columns = {name: [r[name] for r in records[:40]] for name in records[0]}
    ids = [f"c-{i}" for i in range(40)]
    assert plog.submit_batch("3", ids, [i / 40 for i in range(40)], ["No"] * 40, columns)
    assert plog.submit("3", [])  # nothing to log is not a failure
    assert plog.depth == 40
    plog.close()
    frame = read_predictions(url).set_index("request_id")
    assert sorted(frame.index) == sorted(ids)  # one timestamp: ties are in request-id order
    frame = frame.loc[ids]
    logged = frame[list(records[0])].astype(object).where(frame[list(records[0])].notna(), None)
    assert logged.to_dict("records") == records[:40]
    assert frame.loc["c-7", "score"] == pytest.approx(7 / 40)


def test_since_and_limit_select_recent_rows_oldest_first(
    log_url: str, records: list[dict[str, Any]]
) -> None:
    plog = PredictionLog(log_url)
    plog.submit("1", rows(records[:10], "old"))
    assert plog.flush()
    time.sleep(0.05)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    plog.submit("2", rows(records[:5], "new"))
    plog.close()
    recent = read_predictions(log_url, since=cut)
    assert sorted(recent["request_id"]) == [f"new-{i}" for i in range(5)]
    assert set(recent["model_version"]) == {"2"}
    assert len(read_predictions(log_url, since=cut.replace(tzinfo=None) - timedelta(hours=1))) == 15
    last = read_predictions(log_url, limit=3)
    assert list(last["ts"]) == sorted(last["ts"]) and len(last) == 3
    assert set(last["request_id"]) <= {f"new-{i}" for i in range(5)}
    before = read_predictions(log_url, until=cut)  # what a drift run at `cut` saw
    assert sorted(before["request_id"]) == sorted(f"old-{i}" for i in range(10))
    assert len(read_predictions(log_url, until=cut, limit=4)) == 4


def test_full_buffer_drops_and_counts_instead_of_blocking(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    plog = PredictionLog(
        f"sqlite:///{tmp_path}/log.db", capacity=100, flush_seconds=5.0, batch_size=10_000
    )
    started = time.perf_counter()
    assert plog.submit("1", rows(records[:80], "a"))
    assert not plog.submit("1", rows(records[:30], "b"))  # 110 > 100: refused whole, counted
    assert time.perf_counter() - started < 1.0
    assert plog.stats.dropped == 30
    plog.close()
    assert len(read_predictions(f"sqlite:///{tmp_path}/log.db")) == 80


def test_concurrent_submitters_lose_nothing(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    plog = PredictionLog(url, batch_size=100, flush_seconds=0.01)

    def work(k: int) -> None:
        for j in range(20):
            plog.submit("1", rows(records[:10], f"t{k}-{j}"))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plog.close()
    assert plog.stats.written == 800
    assert read_predictions(url)["request_id"].nunique() == 800


def test_unreachable_or_missing_log_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable, match="not found"):
        read_predictions(f"sqlite:///{tmp_path}/nothing-here.db")
    with pytest.raises(ServiceUnavailable, match="cannot be opened"):
        PredictionLog("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ServiceUnavailable, match="not a database URL"):
        PredictionLog("not a url")


def test_workers_creating_one_new_log_at_once_all_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two uvicorn workers open a new log together. Replayed deterministically and at its worst:
    # just before each CREATE of this worker, the other worker creates that same table or index.
    # A check-then-create lost this table by table ("table predictions already exists"; a
    # container failed to start on it); CREATE ... IF NOT EXISTS cannot.
    import sqlite3

    from sqlalchemy import event

    import core.prediction_log as log_module

    # The SQLAlchemy path (PostgreSQL's; a driver in the URL takes it on SQLite too).
    path = tmp_path / "race.db"
    url = f"sqlite+pysqlite:///{path}"
    real_create_engine = log_module.create_engine
    rival_ran: list[str] = []

    def create_engine_with_a_rival(*args: Any, **kwargs: Any) -> Any:
        engine = real_create_engine(*args, **kwargs)

        @event.listens_for(engine, "before_cursor_execute")
        def rival_first(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            if statement.lstrip().upper().startswith("CREATE"):
                rival = sqlite3.connect(path)
                ddl = statement.replace(" IF NOT EXISTS", "")
                rival.execute(ddl)  # the other worker's plain CREATE wins
                rival.commit()
                rival.close()
                rival_ran.append(ddl.split("(")[0].strip())

        return engine

    monkeypatch.setattr(log_module, "create_engine", create_engine_with_a_rival)
    plog = PredictionLog(url)
    # The other worker created both tables and the index first, each just before this one.
    assert len(rival_ran) == 3, rival_ran
    assert plog.submit("7", [("r-1", 0.5, "Yes", {"x": 1})])
    plog.close()
    assert read_predictions(url)["request_id"].tolist() == ["r-1"]


def _open_at_once(path: Path, barrier: Any, errors: Any) -> None:
    """One worker of the race below: open the new log the moment every other worker does."""
    barrier.wait()
    try:
        open_sqlite(str(path)).close()
        errors.put(None)
    except Exception as exc:
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_one_new_log_together_all_open_it(tmp_path: Path) -> None:
    # The race for real: four processes released together onto a new file, 25 times. Switching a
    # new file to WAL answered "database is locked" at once (no busy timeout) in about one open
    # of ten, and a uvicorn worker that failed so stopped the whole container at start. (The
    # SQLAlchemy path switches through the same use_wal; its slower import rarely races here.)
    fork = multiprocessing.get_context("fork")
    failures: list[str] = []
    for attempt in range(25):
        path = tmp_path / f"log-{attempt}.db"
        barrier, errors = fork.Barrier(4), fork.Queue()
        workers = [
            fork.Process(target=_open_at_once, args=(path, barrier, errors)) for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        failures += [e for e in (errors.get(timeout=10) for _ in workers) if e is not None]
    assert failures == []


def test_the_sqlite3_tables_are_the_ones_sqlalchemy_creates() -> None:
    # core/sqlite_log.py writes its own DDL so a worker needs no SQLAlchemy: it must not drift
    # from the tables core/prediction_log.py reads.
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from core.prediction_log import metadata
    from core.sqlite_log import DDL

    def words(sql: str) -> str:
        sql = sql.replace("IF NOT EXISTS ", "").replace("(", " ( ").replace(")", " ) ")
        return " ".join(sql.replace(",", " , ").split())

    expected = []
    for table in metadata.sorted_tables:
        expected.append(str(CreateTable(table).compile(dialect=sqlite.dialect())))
        expected += [str(CreateIndex(i).compile(dialect=sqlite.dialect())) for i in table.indexes]
    assert sorted(map(words, DDL)) == sorted(map(words, expected))


def test_sqlite3_and_sqlalchemy_write_logs_that_read_back_the_same(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    frames = []
    for url in (f"sqlite:///{tmp_path}/plain.db", f"sqlite+pysqlite:///{tmp_path}/driver.db"):
        plog = PredictionLog(url, flush_seconds=5.0, batch_size=7)  # several statements
        assert type(plog.store).__name__ == ("SqliteStore" if "+" not in url else "SqlAlchemyStore")
        plog.submit("5", rows(records[:20], "r"))
        columns = {k: [r[k] for r in records[20:30]] for k in records[0]}
        plog.submit_batch("5", [f"c-{i}" for i in range(10)], [0.5] * 10, ["No"] * 10, columns)
        plog.close()
        plog = PredictionLog(url)
        assert plog.add_feedback("r-3", "No") == "Yes"
        assert plog.add_feedback("r-3", "Yes") == "Yes"
        plog.close()
        frame = read_predictions(url)
        assert len(read_predictions(url, since=frame["ts"].iloc[0])) == 30
        frames.append(frame.drop(columns="ts").sort_values("request_id", ignore_index=True))
    assert frames[0].equals(frames[1])
    assert frames[0].set_index("request_id").loc["r-3", "feedback"] == "Yes"
