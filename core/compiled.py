"""The compiled model: the fitted pipeline as plain arrays and a JSON description, run by numpy.

`training/compile.py` reads the fitted statistics out of the sklearn pipeline at packaging time
(imputer fill values, scaler means and scales, one-hot categories, the estimator's coefficients)
and writes them as `compiled.json` (the description) and `compiled.npz` (the arrays, read with
`allow_pickle=False`). This module loads and runs that form with numpy alone: serving imports no
scikit-learn, pandas or joblib for a model that compiled, and nothing in these files can run code.

Beside them, `probes.json` holds probe records (synthetic ones that touch every category, null and
range end, plus training rows) with the scores and labels sklearn gave them at packaging. Before a
service reports ready it scores the probes again, by whichever path it serves with, and refuses a
bundle whose answers differ by more than `PROBE_TOLERANCE` (an edited compiled form or edited
probes: `BundleIntegrityError`, exit code 5).

What compiles: a `Pipeline` of a `ColumnTransformer` (branches of `SimpleImputer` first, then
`StandardScaler` / `MinMaxScaler` for numbers, or one `OneHotEncoder(handle_unknown="ignore")`
for categories; "passthrough"; "drop") and a binary `LogisticRegression` (optionally inside the
`FixedThresholdClassifier(FrozenEstimator(...))` that carries the threshold), a multiclass one
(softmax over the classes, scores shape (n, k)), or a linear regressor (`LinearRegression`,
`Ridge`: the value). Anything else is served by the sklearn pipeline itself, loaded through skops
(`core.bundle.load_model`).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BundleIntegrityError

COMPILED_FILE = "compiled.json"
ARRAYS_FILE = "compiled.npz"
PROBES_FILE = "probes.json"
FORMAT = 1
# Both paths run the same float64 operations in the same order: any larger gap is an edit.
PROBE_TOLERANCE = 1e-9

Record = dict[str, Any]
# A batch by column: feature name → its values, every column the same length (None = missing).
Columns = Mapping[str, Sequence[Any]]
FLOAT_OPS = ("sub", "div", "mul", "add")


@dataclass(frozen=True)
class FloatBranch:
    """Columns that stay numbers: impute, then the scalers' operations in sklearn's own order.

    The operations are not folded into one affine map: only the same sequence reproduces sklearn's
    last bit, which a model comparing values with learnt thresholds would notice.
    """

    columns: list[str]
    fill: np.ndarray | None  # per column; None = no imputer
    ops: list[tuple[str, np.ndarray]]  # ("sub" | "div" | "mul" | "add", per-column values)

    @property
    def width(self) -> int:
        return len(self.columns)

    def apply(self, columns: Columns, n: int) -> np.ndarray:
        x = np.empty((n, len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            x[:, j] = np.asarray(columns[c], dtype=np.float64)  # None becomes NaN
        if self.fill is not None:
            x = np.where(np.isnan(x), self.fill, x)
        for op, values in self.ops:
            if op == "sub":
                x -= values
            elif op == "div":
                x /= values
            elif op == "mul":
                x *= values
            else:
                x += values
        return x


@dataclass(frozen=True)
class OneHotBranch:
    """Columns that become indicator blocks: impute a constant, then one-hot encode."""

    columns: list[str]
    categories: list[list[Any]]
    fill: list[Any] | None  # per column: what the imputer puts in for a missing value

    def __post_init__(self) -> None:
        index, offset = [], 0
        for j, cats in enumerate(self.categories):
            lookup = {c: offset + p for p, c in enumerate(cats)}
            if self.fill is not None and self.fill[j] in lookup:
                lookup[None] = lookup[self.fill[j]]
            index.append(lookup)
            offset += len(cats)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_width", offset)

    @property
    def width(self) -> int:
        return int(self._width)  # type: ignore[attr-defined]

    def apply(self, columns: Columns, n: int) -> np.ndarray:
        out = np.zeros((n, self.width), dtype=np.float64)
        index: list[dict[Any, int]] = self._index  # type: ignore[attr-defined]
        pos = np.array(
            [
                list(map(lookup.get, columns[c], repeat(-1)))
                for c, lookup in zip(self.columns, index, strict=True)
            ],
            dtype=np.int64,
        ).reshape(len(self.columns), n)
        rows = np.broadcast_to(np.arange(n), pos.shape)
        known = pos >= 0  # an unseen category gives an all-zero block (handle_unknown="ignore")
        out[rows[known], pos[known]] = 1.0
        return out


Branch = FloatBranch | OneHotBranch


@dataclass(frozen=True)
class Logistic:
    """A binary logistic regression, turned so that it scores the positive class."""

    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


@dataclass(frozen=True)
class Softmax:
    """A multiclass logistic regression: the probability of each class, in contract order."""

    coef: np.ndarray  # (k, width)
    intercept: np.ndarray  # (k,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        # As sklearn's predict_proba: the decision function, then its softmax (max subtracted).
        z = x @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


@dataclass(frozen=True)
class Linear:
    """A linear regressor: the predicted value."""

    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x @ self.coef + self.intercept)


Head = Logistic | Softmax | Linear
HEAD_KINDS: dict[type, str] = {Logistic: "logistic", Softmax: "softmax", Linear: "linear"}


@dataclass(frozen=True)
class CompiledModel:
    """The fitted pipeline as numpy operations: branches, then the estimator on their output."""

    branches: list[Branch]
    estimator: Head
    source: str = "?"  # what it was compiled from, for people (e.g. "LogisticRegression")

    @property
    def features(self) -> list[str]:
        return [c for b in self.branches for c in b.columns]

    def transform(self, columns: Columns, n: int) -> np.ndarray:
        blocks = [b.apply(columns, n) for b in self.branches]
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    def predict(self, columns: Columns, n: int) -> np.ndarray:
        """The task's scores (core/task.py) for `n` validated records given by column."""
        return self.estimator.predict(self.transform(columns, n))

    def to_files(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON description and the arrays it names (what `write_compiled` stores)."""
        arrays: dict[str, np.ndarray] = {}
        branches: list[dict[str, Any]] = []
        for i, b in enumerate(self.branches):
            if isinstance(b, FloatBranch):
                fill = None
                if b.fill is not None:
                    fill = arrays_key(arrays, f"b{i}.fill", b.fill)
                ops = [
                    [op, arrays_key(arrays, f"b{i}.op{k}", v)] for k, (op, v) in enumerate(b.ops)
                ]
                branches.append({"kind": "float", "columns": b.columns, "fill": fill, "ops": ops})
            else:
                branches.append(
                    {
                        "kind": "onehot",
                        "columns": b.columns,
                        "categories": b.categories,
                        "fill": b.fill,
                    }
                )
        head = self.estimator
        estimator: dict[str, Any] = {
            "kind": HEAD_KINDS[type(head)],
            "coef": arrays_key(arrays, "coef", head.coef.reshape(-1)),
        }
        if isinstance(head, Softmax):
            estimator["classes"] = int(head.coef.shape[0])
            estimator["intercept"] = arrays_key(arrays, "intercept", head.intercept)
        else:
            estimator["intercept"] = head.intercept
        description = {
            "format": FORMAT,
            "source": self.source,
            "branches": branches,
            "estimator": estimator,
        }
        return description, arrays


def arrays_key(arrays: dict[str, np.ndarray], key: str, values: np.ndarray) -> str:
    arrays[key] = np.ascontiguousarray(values, dtype=np.float64)
    return key


def _array(arrays: Mapping[str, np.ndarray], key: Any, length: int, where: str) -> np.ndarray:
    """The float64 vector `key` of `length` values; anything else is an integrity error."""
    if not isinstance(key, str) or key not in arrays:
        raise BundleIntegrityError(f"{where}: names array {key!r}, which {ARRAYS_FILE} lacks")
    values = arrays[key]
    if values.dtype != np.float64 or values.shape != (length,):
        raise BundleIntegrityError(
            f"{where}: array {key!r} is {values.dtype}{list(values.shape)}, expected "
            f"float64[{length}]"
        )
    return values


def _branch(raw: Any, arrays: Mapping[str, np.ndarray], where: str) -> Branch:
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), list):
        raise BundleIntegrityError(f"{where}: not a branch description")
    columns = [str(c) for c in raw["columns"]]
    if raw.get("kind") == "float":
        fill = raw.get("fill")
        fill_values = None if fill is None else _array(arrays, fill, len(columns), where)
        ops = []
        for op in raw.get("ops", []):
            if not isinstance(op, list) or len(op) != 2 or op[0] not in FLOAT_OPS:
                raise BundleIntegrityError(f"{where}: unknown operation {op!r}")
            ops.append((str(op[0]), _array(arrays, op[1], len(columns), where)))
        return FloatBranch(columns, fill_values, ops)
    if raw.get("kind") == "onehot":
        categories, fill = raw.get("categories"), raw.get("fill")
        if not isinstance(categories, list) or len(categories) != len(columns):
            raise BundleIntegrityError(f"{where}: needs one category list per column")
        if fill is not None and (not isinstance(fill, list) or len(fill) != len(columns)):
            raise BundleIntegrityError(f"{where}: needs one fill value per column")
        return OneHotBranch(columns, [list(c) for c in categories], fill)
    raise BundleIntegrityError(f"{where}: unknown branch kind {raw.get('kind')!r}")


def from_files(description: Any, arrays: Mapping[str, np.ndarray], where: str) -> CompiledModel:
    """Rebuild the compiled model from its description; anything malformed is refused."""
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise BundleIntegrityError(
            f"{where}: not a compiled model of format {FORMAT} (package the model again)"
        )
    raw_branches = description.get("branches")
    if not isinstance(raw_branches, list) or not raw_branches:
        raise BundleIntegrityError(f"{where}: lists no branches")
    branches = [_branch(b, arrays, f"{where} branch {i}") for i, b in enumerate(raw_branches)]
    raw = description.get("estimator")
    width = sum(b.width for b in branches)
    return CompiledModel(
        branches, _head(raw, arrays, width, where), str(description.get("source", "?"))
    )


def _head(raw: Any, arrays: Mapping[str, np.ndarray], width: int, where: str) -> Head:
    """Rebuild the estimator from its description; anything malformed is refused."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in HEAD_KINDS.values():
        raise BundleIntegrityError(f"{where}: unknown estimator {raw!r:.80}")
    if kind == "softmax":
        k = raw.get("classes")
        if isinstance(k, bool) or not isinstance(k, int) or k < 3:
            raise BundleIntegrityError(
                f"{where}: a softmax needs its number of classes (3 or more)"
            )
        coef = _array(arrays, raw.get("coef"), k * width, where).reshape(k, width)
        return Softmax(coef, _array(arrays, raw.get("intercept"), k, where))
    intercept = raw.get("intercept")
    if isinstance(intercept, bool) or not isinstance(intercept, int | float):
        raise BundleIntegrityError(f"{where}: the intercept is not a number")
    cls = Logistic if kind == "logistic" else Linear
    return cls(_array(arrays, raw.get("coef"), width, where), float(intercept))


def write_compiled(model: CompiledModel) -> dict[str, bytes]:
    """The bundle files of a compiled model: its description and its arrays (no pickle)."""
    description, arrays = model.to_files()
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    text = json.dumps(description, indent=1) + "\n"
    return {COMPILED_FILE: text.encode(), ARRAYS_FILE: buffer.getvalue()}


def load_compiled(bundle: Path) -> CompiledModel | None:
    """The compiled model of a (verified) bundle folder; None when the model did not compile."""
    path = bundle / COMPILED_FILE
    if not path.is_file():
        return None
    where = str(path)
    try:
        description = json.loads(path.read_text())
        with np.load(bundle / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise BundleIntegrityError(f"{bundle}: {COMPILED_FILE} without {ARRAYS_FILE}") from None
    except ValueError as exc:  # bad JSON, a pickled array, not an npz
        raise BundleIntegrityError(f"{where}: cannot be read ({exc})") from None
    return from_files(description, arrays, where)


@dataclass(frozen=True)
class Probes:
    """Records with the scores (and labels, when the model carries its threshold) sklearn gave."""

    records: list[Record]
    scores: np.ndarray
    threshold: float | None  # the model's own; None for a bare pipeline
    positive: np.ndarray | None  # the model's own labels: True where it says the positive class

    def to_bytes(self) -> bytes:
        body = {
            "threshold": self.threshold,
            "records": self.records,
            "scores": self.scores.tolist(),
            "positive": None if self.positive is None else self.positive.tolist(),
        }
        return (json.dumps(body, allow_nan=False) + "\n").encode()

    def columns(self, names: Sequence[str]) -> dict[str, list[Any]]:
        return {name: [r.get(name) for r in self.records] for name in names}


def load_probes(bundle: Path) -> Probes | None:
    """The probes of a (verified) bundle folder; None for a bundle packaged without them."""
    path = bundle / PROBES_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        records, threshold = raw["records"], raw["threshold"]
        scores = np.asarray(raw["scores"], dtype=np.float64)
        positive = None if raw["positive"] is None else np.asarray(raw["positive"], dtype=bool)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleIntegrityError(f"{path}: not a valid probe file ({exc})") from None
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, float)):
        raise BundleIntegrityError(f"{path}: the threshold is not a number")
    # One score per record, or one row of class probabilities (multiclass).
    shapes_ok = scores.ndim in (1, 2) and scores.shape[0] == len(records)
    shapes_ok = shapes_ok and (positive is None or positive.shape == (len(records),))
    if not shapes_ok or not records or not all(isinstance(r, dict) for r in records):
        raise BundleIntegrityError(f"{path}: needs one score (and label) per record")
    return Probes(records, scores, threshold, positive)


def check_probes(scores: np.ndarray, probes: Probes, what: str) -> float:
    """Refuse a model whose scores or labels differ from the stored ones; return the largest gap."""
    if scores.shape != probes.scores.shape:
        raise BundleIntegrityError(f"{what}: gave {scores.shape} scores for the probes")
    gap = float(np.max(np.abs(scores - probes.scores))) if len(scores) else 0.0
    if not gap <= PROBE_TOLERANCE:  # NaN fails too
        raise BundleIntegrityError(
            f"{what}: scores differ from those stored at packaging by up to {gap:.2e} "
            f"(allowed {PROBE_TOLERANCE:.0e}); the model or {PROBES_FILE} was changed"
        )
    if probes.positive is not None and probes.threshold is not None:
        wrong = int(np.sum((scores >= probes.threshold) != probes.positive))
        if wrong:
            raise BundleIntegrityError(
                f"{what}: labels at threshold {probes.threshold!r} differ from the model's own on "
                f"{wrong} of {len(scores)} probe records; the model or {PROBES_FILE} was changed"
            )
    return gap


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
