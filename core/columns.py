"""Column and field names several packages share: the prediction log's, the reference's, the API's.

Kept apart from core/prediction_log.py (which imports SQLAlchemy) so the config check, batch
scoring and the tools can name the columns without opening a database.
"""

from __future__ import annotations

# The prediction log's columns, as core/prediction_log.read_predictions returns them beside the
# logged features; batch scoring's output uses SCORE, LABEL and MODEL_VERSION too.
REQUEST_ID = "request_id"
TS = "ts"
MODEL_VERSION = "model_version"
SCORE = "score"  # binary: the positive class's probability; multiclass: the label's; regression: the value
LABEL = "label"  # the class at the model's threshold (the likeliest class; a regression's value as text)
FEEDBACK = "feedback"  # the true class (or value, as text) sent to /feedback, or None
LOG_COLUMNS = (REQUEST_ID, TS, MODEL_VERSION, SCORE, LABEL)
# A drift window read from a file may name its true class so.
FEEDBACK_LABEL = "feedback_label"

# The reference table in a bundle (reference.parquet) holds the model's score beside the features
# under this name, and the drift check's window its true class; the double underscores keep them
# apart from any feature, and bundles already built carry them.
REFERENCE_SCORE = "__score__"
REFERENCE_LABEL = "__label__"
# A multiclass model's predicted class beside the reference's rows and the window's (the class-share
# test of prediction drift compares them).
REFERENCE_PREDICTED = "__predicted__"

# Names a contract feature cannot have: they would collide with these columns beside it.
RESERVED = (*LOG_COLUMNS, FEEDBACK, REFERENCE_SCORE, REFERENCE_LABEL, REFERENCE_PREDICTED)

# The HTTP API's answer to /predict names the score so (public API: never rename it); its other
# fields are REQUEST_ID, LABEL and MODEL_VERSION. A multiclass answer gives PROBABILITIES (class →
# probability) and LABEL; a regression answer VALUE. Batches by column use the plural names.
PROBABILITY = "probability"
PROBABILITIES = "probabilities"
VALUE = "value"
VALUES = "values"
LABELS = "labels"
REQUEST_IDS = "request_ids"
