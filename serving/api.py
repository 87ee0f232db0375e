"""What other stages may use from serving: reading the prediction log (the drift job does)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core.errors import ServiceUnavailable
from serving.prediction_log import connect, feedback, predictions

__all__ = ["read_predictions"]


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
        feedback.c.label.label("feedback"),
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
    engine = connect(url, create=False)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(query).all())
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"prediction log cannot be read: {exc.__class__.__name__}"
        ) from None
    finally:
        engine.dispose()
    rows.reverse()
    head = pd.DataFrame(
        {
            "request_id": pd.Series([r.request_id for r in rows], dtype=object),
            "ts": pd.to_datetime([r.ts for r in rows], utc=True),
            "model_version": pd.Series([r.model_version for r in rows], dtype=object),
            "score": pd.Series([r.score for r in rows], dtype="float64"),
            "label": pd.Series([r.label for r in rows], dtype=object),
        }
    )
    features = pd.DataFrame.from_records([orjson.loads(r.features) for r in rows])
    features.index = head.index
    fb = pd.Series([r.feedback for r in rows], dtype=object, name="feedback")
    return pd.concat([head, features, fb], axis=1)
