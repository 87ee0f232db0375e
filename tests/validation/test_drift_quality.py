"""False alarms and detection of the drift verdict on the churn fixture (a smaller `make bench`)."""

from __future__ import annotations

import pytest

from bench.bench_drift import PLANS, alarm_rate, prepare
from core.config import Config

TRIALS = 40  # make bench runs more, at three window sizes; 40 keeps this near a minute


@pytest.mark.slow
def test_no_drift_rarely_alarms_and_shifts_are_found(config: Config) -> None:
    setup = prepare(config)
    assert alarm_rate(setup, "none", TRIALS) <= 0.05
    assert alarm_rate(setup, "small shift", TRIALS) <= 0.10  # below the floor: seldom
    assert alarm_rate(setup, "prior", TRIALS) >= 0.95
    assert alarm_rate(setup, "covariate, one", 10) == 1.0
    assert alarm_rate(setup, "concept", 10) == 1.0
    # Larger windows: the floor, above PSI's noise, keeps a tiny shift quiet.
    assert alarm_rate(setup, "small shift", 5, PLANS[1]) == 0.0
