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

import hashlib
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BundleIntegrityError
from core.io import atomic_dir, sha256_file
from core.settings import Settings

MODEL_FILE = "model.skops"
METADATA_FILE = "bundle.json"
MANIFEST_FILE = "MANIFEST.json"
MODEL_CARD_FILE = "model_card.md"
# The training reference the drift check compares traffic with (validation/profile.py writes it).
REFERENCE_FILE = "reference.parquet"
PROFILE_FILE = "reference_profile.json"
REQUIRED = (MODEL_FILE, METADATA_FILE)
# The bundle's digest (`bundle_digest`) is recorded outside the bundle, where whoever can write the
# bundle cannot also write it: the model version's tag in the registry (`make package` sets it) and
# the image's label; consumers get it as MODEL_DIGEST and check it before loading anything.
DIGEST_TAG = "bundle_digest"
DIGEST_LABEL = "io.github.mlops-template.bundle.digest"
_DIGEST = re.compile(r"^(sha256:)?(?P<hex>[0-9a-f]{64})$")

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
    def threshold(self) -> float | None:
        """The decision threshold: the model's own; bundle.json's for a bare pipeline (None: not binary)."""
        if self.carried is not None:
            return self.carried
        mirror = self.metadata.get("threshold")
        return None if mirror is None else float(mirror)

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


def bundle_digest(path: str | Path) -> str:
    """Return the bundle's digest: `sha256:` + sha256 of its manifest's canonical JSON.

    The manifest lists the sha256 of every other file, so this one value pins every byte of the
    bundle; canonical (sorted keys, no spaces) so re-indenting the manifest does not change it.
    """
    manifest_path = Path(path) / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        raise BundleIntegrityError(
            f"{path}: {MANIFEST_FILE} is missing; the bundle cannot be trusted"
        ) from None
    except (OSError, ValueError):
        raise BundleIntegrityError(f"{manifest_path}: not a valid manifest") from None
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def normalise_digest(value: str, source: str = "MODEL_DIGEST") -> str:
    """Return `value` as `sha256:<64 hex>`; raise BundleIntegrityError naming `source` otherwise."""
    match = _DIGEST.match(value.strip().lower())
    if match is None:
        raise BundleIntegrityError(
            f"{source} {value!r} is not a bundle digest (expected sha256:<64 hex digits>)"
        )
    return "sha256:" + match["hex"]


def check_anchor(
    path: str | Path, expected: str | None, *, required: bool, source: str = "MODEL_DIGEST"
) -> str:
    """Check the bundle against the digest recorded outside it; return the bundle's digest.

    Run before anything in the bundle is loaded. Every file must match the manifest and the
    manifest must match `expected` (BundleIntegrityError, exit 5, names the mismatch). Without
    `expected`: refused when `required` (CI, containers), else a warning that only the bundle's
    own manifest was checked, which catches accidents but not an attacker who rewrites it too.
    """
    path = Path(path)
    verify_bundle(path)
    digest = bundle_digest(path)
    if not expected or not expected.strip():
        if required:
            raise BundleIntegrityError(
                f"{path}: no digest to check the bundle against; set {source} to the digest "
                f"`make package` recorded (model version tag {DIGEST_TAG!r}, image label "
                f"{DIGEST_LABEL})"
            )
        print(
            f"warning: {source} is not set: {path} ({digest}) is checked against its own "
            "manifest only, not against the digest recorded at packaging",
            file=sys.stderr,
            flush=True,
        )
        return digest
    want = normalise_digest(expected, source)
    if digest != want:
        raise BundleIntegrityError(
            f"{path}: bundle digest {digest} does not match {source} {want}; this is not the "
            "bundle that was gated and packaged, refusing to load it"
        )
    return digest


def check_settings_anchor(path: str | Path, settings: Settings, expected: str | None = None) -> str:
    """`check_anchor` with the digest from `expected` (a CLI flag) or MODEL_DIGEST, as settings say."""
    return check_anchor(
        path,
        expected if expected else settings.model_digest,
        required=settings.anchor_required,
        source="--expected-digest" if expected else "MODEL_DIGEST",
    )
