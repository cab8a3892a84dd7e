"""How often the data-drift verdict is wrong, measured on real sources by resampling.

* **False alarms**: windows of whole patients of one known source, tested the way the job
  tests a site against the references with those patients taken out of them: the null
  each test actually uses. Every "new" verdict is a false alarm.
* **Power**: windows of a source held out of the reference (a new hospital), or of known
  patients whose films were altered (``bench/drift_shifts.py``): every "new" verdict is
  a detection.

Each rate comes with its 95% Wilson interval. ``bench/drift.py`` prints the figures of the
README's drift section; ``tests/monitoring/test_drift_calibration.py`` asserts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitoring.drift import ALPHA, MIN_REFERENCE, Window, against, references
from monitoring.stats import wilson

REPEATS = 500  # windows per measured rate
PERMUTATIONS = 100  # per test: a permutation test is exact for any number of them, and
# 1/101 resolves alpha = 0.05 (the verdict is measured here, not a reported p-value)


@dataclass(frozen=True)
class Rate:
    """``hits`` "new" verdicts out of ``n`` windows, with the Wilson interval."""

    hits: int
    n: int

    @property
    def rate(self) -> float:
        """hits / n."""
        return self.hits / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the rate."""
        return wilson(self.hits, self.n)

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.rate:.3f} [{low:.3f}, {high:.3f}] ({self.hits}/{self.n})"


def draw_patients(patients: np.ndarray, pool: np.ndarray, size: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Mask of a uniform random set of whole patients of ``pool`` (a mask), as many as hold
    ``size`` films on average there (at least 2).

    Uniform over sets of patients, not "patients until ``size`` films": stopping at a film
    count picks few patients with many films more often, and patients with many films
    (follow-ups in intensive care) are not like the others - that window would not be
    exchangeable with the rest of the source, and its false-alarm rate not the test's."""
    ids = np.unique(patients[pool])
    count = max(2, round(size * len(ids) / int(pool.sum())))
    chosen = rng.choice(ids, size=min(count, len(ids) - 1), replace=False)
    return pool & np.isin(patients, chosen)


def is_new(refs: dict[str, Window], window: Window, alpha: float, permutations: int,
           rng: np.random.Generator) -> bool:
    """The job's verdict on one window: every reference tells it apart at ``alpha``.

    The references are tried nearest first (by the distance of their means), stopping at
    the first that cannot tell the window apart: the verdict is the same, sooner."""
    centre = window.vectors.mean(axis=0)
    order = sorted(refs, key=lambda k: float(np.sum((refs[k].vectors.mean(axis=0) - centre)
                                                    ** 2)))
    tests = against({k: refs[k] for k in order}, window, permutations, rng, stop_at=alpha)
    return max(p for p, _ in tests.values()) < alpha


def flag_rate(data: Window, reference: np.ndarray, pool: np.ndarray, size: int,
              repeats: int = REPEATS, alpha: float = ALPHA,
              permutations: int = PERMUTATIONS, seed: int = 0) -> Rate:
    """Share of ``repeats`` windows of ``size`` films (whole patients of the rows ``pool``)
    called new against the references of the rows ``reference`` minus the window's rows.

    ``data.groups`` are the sources, ``data.clusters`` the patients (unique across sources).
    """
    if data.clusters is None:
        raise ValueError("the calibration needs patient ids")
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(repeats):
        window = draw_patients(data.clusters, pool, size, rng)
        refs = references(data.subset(reference & ~window))
        part = data.subset(window)
        hits += is_new(refs, Window(part.vectors, np.array(["site"] * len(part.vectors)),
                                    part.clusters), alpha, permutations, rng)
    return Rate(hits, repeats)


def false_alarms(data: Window, size: int, repeats: int = REPEATS, alpha: float = ALPHA,
                 permutations: int = PERMUTATIONS, seed: int = 0) -> dict[str, Rate]:
    """Per known source: windows of its own patients against the references (its own
    included, without those patients). Sources too small to keep :data:`MIN_REFERENCE`
    patients beside a window of ``size`` films are left out: they are judged only inside
    the mixture, whose own null is measured with :func:`flag_rate` on mixed windows."""
    out = {}
    assert data.clusters is not None
    for source in sorted({str(s) for s in data.groups}):
        own = data.groups == source
        patients = len(np.unique(data.clusters[own]))
        if patients * (1.0 - size / own.sum()) < MIN_REFERENCE:
            continue
        out[source] = flag_rate(data, np.ones(len(own), bool), own, size, repeats, alpha,
                                permutations, seed)
    return out


def smallest_window(rates: dict[int, Rate], power: float = 0.8) -> int | None:
    """The smallest window size whose detection rate reaches ``power``; None if none does."""
    sizes = sorted(n for n, r in rates.items() if r.rate >= power)
    return sizes[0] if sizes else None
