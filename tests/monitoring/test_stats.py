"""The drift statistics on synthetic data whose truth is known: exact binomial tails, the
patient-level permutations, and the aggregated test's level and power."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.stats import aggregate_test, binomial_tail, holm, permutation_masks


def test_binomial_tails_are_exact():
    # P(X <= 2), X ~ B(10, 1/2) = (1 + 10 + 45) / 1024
    assert binomial_tail(2, 10, 0.5, lower=True) == pytest.approx(56 / 1024, abs=1e-12)
    assert binomial_tail(8, 10, 0.5, lower=False) == pytest.approx(56 / 1024, abs=1e-12)
    assert binomial_tail(0, 5, 0.2, lower=True) == pytest.approx(0.8**5, abs=1e-12)
    assert binomial_tail(3, 0, 0.5, lower=True) == 1.0  # no cases: no evidence
    assert holm([0.01, 0.04, 0.03], 0.05) == [True, False, False]


def test_permutations_draw_whole_patients_as_many_as_the_window_has():
    inverse = np.array([0, 0, 0, 1, 2, 2, 3, 4, 4, 4, 4])  # 5 patients, 11 films
    masks = permutation_masks(inverse, 2, 300, np.random.default_rng(0))
    for mask in masks:
        patients = set(inverse[mask])
        assert len(patients) == 2  # exactly two patients ...
        assert mask.sum() == sum(int(np.sum(inverse == p)) for p in patients)  # ... whole
    assert len({tuple(m) for m in masks}) == 10  # every pair of the 5 patients comes up


def _patients(rng: np.random.Generator, count: int, tag: str, shift: float = 0.0):
    """``count`` patients with 1 to 6 films each: a patient effect plus film noise."""
    sizes = rng.integers(1, 7, count)
    centres = rng.normal(size=(count, 6)) + shift
    films = np.concatenate([c + 0.4 * rng.normal(size=(k, 6)) for c, k in zip(centres, sizes,
                                                                                  strict=True)])
    return films, np.repeat([f"{tag}{i}" for i in range(count)], sizes)


def test_patient_level_test_keeps_its_level_where_film_permutations_do_not():
    rng = np.random.default_rng(5)
    by_patient = by_film = 0
    repeats = 150
    for _ in range(repeats):
        ref, ref_ids = _patients(rng, 50, "r")
        cur, cur_ids = _patients(rng, 6, "c")
        ids = np.concatenate([ref_ids, cur_ids])
        by_patient += aggregate_test(ref, cur, 100, rng, clusters=ids).p_value < 0.05
        by_film += aggregate_test(ref, cur, 100, rng).p_value < 0.05
    print(f"false alarms: {by_patient / repeats:.3f} by patient, {by_film / repeats:.3f} by film")
    assert by_patient / repeats <= 0.09  # 0.05 expected; 0.09 is 3 sd above it
    assert by_film / repeats >= 0.3  # six correlated patients look like a new site


def test_a_shift_of_one_feature_is_found_and_named():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(150, 12))
    cur = rng.normal(size=(30, 12))
    cur[:, 3] += 1.0  # one feature moves by one sd: the kernel on 12 features dilutes it
    res = aggregate_test(ref, cur, 200, rng)
    assert res.p_value < 0.01 and res.statistic == "feature 3"
    same = aggregate_test(ref, rng.normal(size=(30, 12)), 200, rng)
    assert same.p_value > 0.05
