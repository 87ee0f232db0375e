"""The model bundle: a folder serving can load with no MLflow server, verified before it is loaded.

Layout of a bundle folder:
  model.joblib            the fitted model: the sklearn Pipeline (preprocessing + estimator) inside a
                          FixedThresholdClassifier that carries the decision threshold
  bundle.json             metadata: model name and version, run id, threshold (a mirror of the
                          model's, for display), metrics, contract, ...
  MANIFEST.json           sha256 of every other file; checked before anything is unpickled
  model_card.md           the model card (training/package.py writes it)
  reference.parquet       training rows and their scores, the drift check's reference
  reference_profile.json  the reference's profile (validation/profile.py writes both)
  (anything else)         listed in the manifest too
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib

from core.errors import BundleIntegrityError
from core.io import atomic_dir, sha256_file

MODEL_FILE = "model.joblib"
METADATA_FILE = "bundle.json"
MANIFEST_FILE = "MANIFEST.json"
MODEL_CARD_FILE = "model_card.md"
# The training reference the drift check compares traffic with (validation/profile.py writes it).
REFERENCE_FILE = "reference.parquet"
PROFILE_FILE = "reference_profile.json"
REQUIRED = (MODEL_FILE, METADATA_FILE)
# The label the model predicts for the contract's positive class (core.frames.target_vector).
POSITIVE_LABEL = 1


def split_threshold(model: Any) -> tuple[Any, float | None]:
    """Return the fitted pipeline inside `model` and the decision threshold `model` carries.

    A model registered before the threshold moved into it is a bare pipeline: (model, None).
    A wrapper whose labels would not be `predict_proba[:, positive] >= threshold` (another
    positive label, another response, an "auto" threshold) is refused: every consumer labels
    the positive class's probability by that rule, as sklearn's own `predict` does.
    """
    # Imported here: verifying a bundle's files (the image build) needs no scikit-learn.
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    if not isinstance(model, FixedThresholdClassifier):
        return model, None
    threshold = model.threshold
    if (
        model.pos_label != POSITIVE_LABEL
        or model.response_method != "predict_proba"
        or isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
    ):
        raise BundleIntegrityError(
            f"the model's threshold wrapper labels by {model.response_method!r} at "
            f"{threshold!r} for class {model.pos_label!r}; expected predict_proba at a number "
            f"for class {POSITIVE_LABEL}"
        )
    inner = getattr(model, "estimator_", model.estimator)
    if isinstance(inner, FrozenEstimator):
        inner = inner.estimator
    return inner, float(threshold)


def model_threshold(model: Any) -> float | None:
    """The decision threshold the fitted model carries; None for a bare pipeline."""
    return split_threshold(model)[1]


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle: the fitted pipeline and what is known about it."""

    path: Path
    pipeline: Any
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        own = model_threshold(self.pipeline)
        mirror = self.metadata.get("threshold")
        if own is not None and mirror is not None and float(mirror) != own:
            raise BundleIntegrityError(
                f"{self.path}: {METADATA_FILE} says threshold {mirror!r}, the model carries "
                f"{own!r}; the labels would depend on who reads which (package it again)"
            )

    @property
    def threshold(self) -> float:
        """The decision threshold: the model's own; bundle.json's for a bare (older) pipeline."""
        own = model_threshold(self.pipeline)
        return float(self.metadata["threshold"]) if own is None else own

    @property
    def version(self) -> str:
        return str(self.metadata.get("model_version", "unregistered"))


def write_bundle(
    target: str | Path,
    pipeline: Any,
    metadata: dict[str, Any],
    extra_files: dict[str, str | bytes] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write a bundle folder atomically: build it beside the target, then swap it in by rename."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise BundleIntegrityError(f"bundle folder {target} exists; refusing to overwrite it")
    with atomic_dir(target) as staging:
        joblib.dump(pipeline, staging / MODEL_FILE)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
        for name, content in (extra_files or {}).items():
            dest = staging / name
            if dest.resolve().parent != staging.resolve() or name in (MANIFEST_FILE, *REQUIRED):
                raise BundleIntegrityError(f"bundle file name {name!r} is not allowed")
            dest.write_bytes(content.encode() if isinstance(content, str) else content)
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        (staging / MANIFEST_FILE).write_text(
            json.dumps({"algorithm": "sha256", "files": files}, indent=2) + "\n"
        )
    return target


def verify_bundle(path: str | Path) -> dict[str, str]:
    """Check that every file is listed in the manifest with the right sha256, and nothing is missing."""
    path = Path(path)
    if not path.is_dir():
        raise BundleIntegrityError(f"model bundle {path} not found (run `make package` first)")
    manifest_path = path / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, str] = manifest["files"]
    except FileNotFoundError:
        raise BundleIntegrityError(
            f"{path}: {MANIFEST_FILE} is missing; the bundle cannot be trusted"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise BundleIntegrityError(f"{manifest_path}: not a valid manifest") from None
    for name in REQUIRED:
        if name not in files:
            raise BundleIntegrityError(f"{path}: the manifest does not list {name}")
    present = {p.name for p in path.iterdir() if p.is_file() and p.name != MANIFEST_FILE}
    unlisted = sorted(present - set(files))
    if unlisted:
        raise BundleIntegrityError(f"{path}: file(s) not in the manifest: {', '.join(unlisted)}")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise BundleIntegrityError(f"{path}: {name} is listed in the manifest but missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleIntegrityError(
                f"{path}: {name} has sha256 {actual[:12]}…, the manifest says {expected[:12]}…; "
                "the bundle was changed after packaging"
            )
    return files


def load_bundle(path: str | Path) -> Bundle:
    """Verify the manifest, then load the pipeline and metadata. Never unpickles an unverified file."""
    path = Path(path)
    verify_bundle(path)
    metadata = json.loads((path / METADATA_FILE).read_text())
    pipeline = joblib.load(path / MODEL_FILE)
    return Bundle(path=path, pipeline=pipeline, metadata=metadata)
