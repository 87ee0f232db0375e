"""False alarms and detection of the drift verdict on the default data (a smaller `make bench`)."""

from __future__ import annotations

import pytest

from bench.bench_drift import alarm_rate, prepare
from core.config import Config

TRIALS = 40  # make bench runs 200; 40 keeps this under a minute on a busy machine


@pytest.mark.slow
def test_no_drift_rarely_alarms_and_shifts_are_found(config: Config) -> None:
    setup = prepare(config)
    assert alarm_rate(setup, "none", TRIALS) <= 0.05
    assert alarm_rate(setup, "prior", TRIALS) >= 0.95
    assert alarm_rate(setup, "covariate", 10) == 1.0
    assert alarm_rate(setup, "concept", 10) == 1.0
