"""What other stages may call from the training stage (the only module they may import).

- `train_and_gate(config, settings, register=True, log=True) -> TrainResult`: train, evaluate,
  gate against the champion, log and register (alias `candidate`); raises GateRejected (exit 4).
- `package_candidate(config, settings, alias="candidate") -> Path`: build the bundle.
- `load_reference(bundle_dir, contract) -> (DataFrame, profile)`: the verified training reference of a bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.bundle import verify_bundle
from core.config import Contract
from training.gate import Decision, RuleResult
from training.package import package_candidate
from training.train import TrainResult, train_and_gate
from validation.api import PROFILE_FILE, REFERENCE_FILE, SCORE_COLUMN, read_reference

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


def load_reference(
    bundle_dir: str | Path, contract: Contract
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Verify the bundle's manifest, then return its reference sample and profile."""
    bundle_dir = Path(bundle_dir)
    verify_bundle(bundle_dir)
    return read_reference(bundle_dir, contract)
