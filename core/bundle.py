"""The model bundle: a folder serving can load with no MLflow server, verified before it is loaded.

Layout of a bundle folder:
  model.joblib            the one fitted sklearn Pipeline (preprocessing + estimator)
  bundle.json             metadata: model name and version, run id, threshold, metrics, contract, ...
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


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle: the fitted pipeline and what is known about it."""

    path: Path
    pipeline: Any
    metadata: dict[str, Any]

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

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
