"""What other stages may call from the training stage (the only module they may import).

- `train_and_gate(config, settings, register=True, log=True) -> TrainResult`: train, evaluate,
  gate against the champion, log and register (alias `candidate`); raises GateRejected (exit 4).
- `package_candidate(config, settings, alias="candidate") -> Path`: build the bundle.
- `load_reference(bundle_dir) -> (DataFrame, profile)`: the verified training reference of a bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import verify_bundle
from training.gate import Decision, RuleResult
from training.package import package_candidate
from training.reference import SCORE_COLUMN
from training.train import TrainResult, train_and_gate

REFERENCE_FILE = "reference.parquet"
PROFILE_FILE = "reference_profile.json"

__all__ = [
    "PROFILE_FILE",
    "REFERENCE_FILE",
    "SCORE_COLUMN",
    "Decision",
    "RuleResult",
    "TrainResult",
    "load_reference",
    "package_candidate",
    "train_and_gate",
]


def load_reference(bundle_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Verify the bundle's manifest, then return its reference sample and profile."""
    bundle_dir = Path(bundle_dir)
    files = verify_bundle(bundle_dir)
    from core.errors import BundleIntegrityError

    for name in (REFERENCE_FILE, PROFILE_FILE):
        if name not in files:
            raise BundleIntegrityError(
                f"{bundle_dir}: no {name}; package the model with `make package`"
            )
    frame = pd.read_parquet(bundle_dir / REFERENCE_FILE)
    profile = json.loads((bundle_dir / PROFILE_FILE).read_text())
    return frame, profile
