"""The detector's order statistics are numpy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.stats import median, percentile


def _series(rng: np.random.Generator, trial: int) -> np.ndarray:
    count = int(rng.integers(1, 320))
    values = rng.normal(-40.0, 20.0, count)
    if trial % 3 == 0:
        values[rng.random(count) < 0.3] = -120.0  # digital silence: many equal values
    if trial % 5 == 0:
        values = np.round(values)
    return values


def test_percentile_is_numpys_to_the_last_bit() -> None:
    rng = np.random.default_rng(7)
    for trial in range(3000):
        values = _series(rng, trial)
        for q in (0.0, 5.0, 50.0, 90.0, 97.5, 100.0, float(rng.uniform(0, 100))):
            expected = float(np.percentile(values, q))
            assert percentile(values, q) == expected, (len(values), q)
            assert percentile(values.tolist(), q) == expected, (len(values), q)


def test_median_is_numpys_to_the_last_bit() -> None:
    rng = np.random.default_rng(11)
    for trial in range(3000):
        values = _series(rng, trial)
        expected = float(np.median(values))
        assert median(values) == expected, len(values)
        assert median(values.tolist()) == expected, len(values)
        assert median(values[: len(values) // 2 + 1]) == float(np.median(values[: len(values) // 2 + 1]))


def test_an_empty_series_is_an_error() -> None:
    with pytest.raises(ValueError):
        median([])
    with pytest.raises(ValueError):
        percentile(np.zeros(0), 90)
