"""monitoring/features.py's DriftSpace: new films of the reference's own distribution keep the
reference's spread in it (the property whose absence made known patients look new), and the
directions do not depend on the reference (or on a version's feature scale)."""

from __future__ import annotations

import numpy as np

from monitoring.features import DriftSpace


def _films(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` films of 600 features with a few strong directions, as pooled features have."""
    scales = np.concatenate([np.full(5, 6.0), np.full(595, 1.0)])
    return rng.normal(size=(n, 600)) * scales + 3.0


def test_other_films_of_the_reference_distribution_keep_its_spread():
    rng = np.random.default_rng(0)
    reference, others = _films(rng, 300), _films(rng, 300)
    stats = rng.normal(size=(300, 7))
    space = DriftSpace.fit(reference, stats)
    ref = space.transform(reference, stats)[:, :20]
    new = space.transform(others, rng.normal(size=(300, 7)))[:, :20]
    ratio = new.std(axis=0) / ref.std(axis=0)
    print(np.round(ratio, 2))
    # The first 20 principal components fitted on these 300 reference films give other
    # films less than half the reference's spread along each of them (0.41 to 0.48).
    assert np.all((ratio > 0.85) & (ratio < 1.15)), ratio


def test_the_directions_are_fitted_on_nothing():
    rng = np.random.default_rng(1)
    a = DriftSpace.fit(_films(rng, 50), rng.normal(size=(50, 7)))
    b = DriftSpace.fit(10.0 * _films(rng, 80), rng.normal(size=(80, 7)))
    assert np.array_equal(a.basis, b.basis)
    assert np.allclose(a.basis @ a.basis.T, np.eye(20))
    assert a.names()[:2] == ["net1", "net2"] and a.names()[-1] == "border"
    narrow = DriftSpace.fit(rng.normal(size=(40, 8)), rng.normal(size=(40, 7)))
    assert np.array_equal(narrow.basis, np.eye(8))  # 8 features: kept as they are
