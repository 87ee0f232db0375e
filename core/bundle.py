"""The model bundle: a folder serving can load with no MLflow server, verified before it is loaded.

Layout of a bundle folder:
  model.skops             the fitted model in skops' format (no pickle): the sklearn Pipeline
                          (preprocessing + estimator) inside a FixedThresholdClassifier that carries
                          the decision threshold; what training, scoring and the drift check load
  compiled.json           the same pipeline compiled to numpy operations: the description ...
  compiled.npz            ... and its arrays (read with allow_pickle=False); absent when the model
                          does not compile (core/compiled.py says what does)
  probes.json             probe records with the scores and labels sklearn gave them at packaging;
                          serving refuses a model that does not reproduce them
  bundle.json             metadata: model name and version, run id, threshold (a mirror of the
                          model's, for display), metrics, contract, ...
  MANIFEST.json           sha256 of every other file; checked before anything is loaded
  model_card.md           the model card (training/package.py writes it)
  reference.parquet       training rows and their scores, the drift check's reference
  reference_profile.json  the reference's profile (validation/profile.py writes both)
  (anything else)         listed in the manifest too

training/compile.py writes the compiled form and the probes (`model_files`); serving loads the
compiled form with numpy alone and, for a model that does not compile, the skops file with
`load_model`. Nothing in a bundle is ever unpickled.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BundleIntegrityError
from core.io import atomic_dir, sha256_file

MODEL_FILE = "model.skops"
METADATA_FILE = "bundle.json"
MANIFEST_FILE = "MANIFEST.json"
MODEL_CARD_FILE = "model_card.md"
# The training reference the drift check compares traffic with (validation/profile.py writes it).
REFERENCE_FILE = "reference.parquet"
PROFILE_FILE = "reference_profile.json"
REQUIRED = (MODEL_FILE, METADATA_FILE)
# skops rebuilds these without running code of theirs; any other type in a model file is refused.
TRUSTED_PREFIXES = ("sklearn.", "numpy.dtype", "numpy.random.")
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
    """A loaded, verified bundle: the fitted model (or only its threshold) and what is known about it.

    `pipeline` is None when serving loaded the compiled form instead of the sklearn model; then
    `carried` is the threshold the model carries, read from its probes.
    """

    path: Path
    pipeline: Any
    metadata: dict[str, Any]
    carried: float | None = None

    def __post_init__(self) -> None:
        if self.pipeline is not None:
            object.__setattr__(self, "carried", model_threshold(self.pipeline))
        own, mirror = self.carried, self.metadata.get("threshold")
        if own is not None and mirror is not None and float(mirror) != own:
            raise BundleIntegrityError(
                f"{self.path}: {METADATA_FILE} says threshold {mirror!r}, the model carries "
                f"{own!r}; the labels would depend on who reads which (package it again)"
            )

    @property
    def threshold(self) -> float:
        """The decision threshold: the model's own; bundle.json's for a bare (older) pipeline."""
        return float(self.metadata["threshold"]) if self.carried is None else self.carried

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
        _dump_model(pipeline, staging / MODEL_FILE)
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


def _dump_model(model: Any, file: Path) -> None:
    # Imported here: verifying or serving a compiled bundle needs neither skops nor scikit-learn.
    import skops.io

    skops.io.dump(model, file)


def load_model(path: str | Path) -> Any:
    """Load the sklearn model of a verified bundle folder through skops (never a pickle).

    skops refuses every type that it does not know to be safe unless it is named as trusted; we
    trust only scikit-learn's own classes and numpy dtypes (`TRUSTED_PREFIXES`), so an edited
    model file that names anything else is refused instead of loaded.
    """
    import skops.io

    file = Path(path) / MODEL_FILE
    try:
        untrusted = skops.io.get_untrusted_types(file=file)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise BundleIntegrityError(f"{file}: not a model skops can read ({exc})") from None
    refused = sorted(t for t in untrusted if not t.startswith(TRUSTED_PREFIXES))
    if refused:
        raise BundleIntegrityError(
            f"{file}: names types skops cannot load safely: {', '.join(refused[:5])}"
        )
    try:
        return skops.io.load(file, trusted=untrusted)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleIntegrityError(f"{file}: not a model skops can load ({exc})") from None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Verify the manifest, then read bundle.json (loads no model)."""
    path = Path(path)
    verify_bundle(path)
    metadata: dict[str, Any] = json.loads((path / METADATA_FILE).read_text())
    return metadata


def load_bundle(path: str | Path) -> Bundle:
    """Verify the manifest, then load the pipeline (skops) and metadata."""
    path = Path(path)
    metadata = read_metadata(path)
    return Bundle(path=path, pipeline=load_model(path), metadata=metadata)
