"""Statistics of the drift checks: MMD and aggregated two-sample permutation tests, KS,
Holm, exact binomial tails, Wilson.

Pure NumPy (no SciPy on the hosts). Each function documents the test it implements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)


def _mmd2_many(kernel: np.ndarray, current: np.ndarray, weights: np.ndarray,
               m: int, total: int) -> np.ndarray:
    """Squared MMD between patient-weighted current and reference samples, one per row.

    ``current`` rows: the current sample's per-film weights (each chosen patient's films
    share 1/m); the reference's are (weights - m * current) / (total - m), where
    ``weights`` is 1 / (films of the film's patient) and ``total`` the number of patients.
    One matrix product per kernel: the cross and reference terms follow from K @ weights."""
    kw = kernel @ weights
    wkw = float(weights @ kw)
    ka = current @ kernel
    saa = np.einsum("pn,pn->p", ka, current)
    sag = current @ kw
    rest = total - m
    sab = (sag - m * saa) / rest
    sbb = (wkw - 2.0 * m * sag + m * m * saa) / rest**2
    return saa + sbb - 2.0 * sab


def permutation_masks(inverse: np.ndarray, m: int, permutations: int,
                      rng: np.random.Generator) -> np.ndarray:
    """``(permutations, n)`` relabellings: ``m`` whole clusters drawn at random as the
    current sample (``inverse``: each row's cluster index), vectorised."""
    clusters = int(inverse.max()) + 1
    order = np.argsort(rng.random((permutations, clusters)), axis=1)[:, :m]
    chosen = np.zeros((permutations, clusters), bool)
    np.put_along_axis(chosen, order, True, axis=1)
    return chosen[:, inverse]


def _standardised(stats: np.ndarray) -> np.ndarray:
    """Each column centred and scaled by its mean and sd over all rows (the observed split and
    its permutations: a function of the whole set of rows, so the test stays exact)."""
    return (stats - stats.mean(axis=0)) / (stats.std(axis=0) + 1e-12)


@dataclass(frozen=True)
class AggregateResult:
    """Outcome of :func:`aggregate_test`."""

    p_value: float  # permutation p-value of the largest standardised statistic
    mmd2: float  # squared MMD at the median width (the classic statistic, for reports)
    statistic: str  # the statistic with the largest z-score: "mmd@w" or "feature j"
    n_reference: int
    n_current: int


WIDTHS = (0.5, 1.0, 2.0)  # kernel widths, in units of the median pairwise distance


def aggregate_test(
    reference: np.ndarray, current: np.ndarray, permutations: int = 500,
    rng: np.random.Generator | None = None, clusters: np.ndarray | None = None,
) -> AggregateResult:
    """Two-sample permutation test aggregating several statistics by their largest z-score.

    The statistics: the squared MMD with a Gaussian kernel at :data:`WIDTHS` times the
    median pairwise distance (any change of the joint distribution, at three scales: Schrab
    et al., "MMD Aggregated Two-Sample Test", JMLR 2023) and each feature's absolute
    difference of means (a shift of one feature, such as the black corners of a rotated
    film, that one width of a kernel on all features dilutes). Each statistic is
    standardised by its mean and sd over the permutations, and the largest of them is
    calibrated against the largest ones of the same permutations (max-T, Westfall and
    Young): the level is exact for the exchangeable units whatever the number of
    statistics, so looking at several adds power without adding false alarms. (The
    smallest rank p-value instead would tie at 1/(permutations + 1) in one row per
    statistic, a floor of about 18/501 for 18 statistics.)

    ``clusters`` (one id per pooled row, reference rows first; None: each row its own):
    the units permuted are patients, not films. Films of one patient are not independent
    (permuting them one by one called a handful of new patients "drift"), and patients
    with many films are not exchangeable with patients with one; so each patient is one
    unit - its films share one weight in both samples' means - and each permutation
    draws as many whole patients as the current sample has: exact at the patient level
    whatever the number of films per patient.
    """
    rng = rng or np.random.default_rng(0)
    x = np.asarray(reference, np.float64)
    y = np.asarray(current, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("each sample needs at least 2 points")
    z = np.concatenate([x, y])
    n = len(z)
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-9)
    d2 = _sq_dists(z)
    upper = d2[np.triu_indices(n, k=1)]
    width2 = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    ids = np.arange(n) if clusters is None else np.asarray(clusters)
    _, inverse = np.unique(ids, return_inverse=True)
    sizes = np.bincount(inverse)
    total, m = len(sizes), len(np.unique(inverse[len(x):]))
    if np.intersect1d(inverse[: len(x)], inverse[len(x):]).size:
        raise ValueError("a cluster is on both sides: patient ids must tell the samples apart")
    if m >= total:
        raise ValueError("the reference needs at least one cluster")
    observed = np.zeros((1, n), bool)
    observed[0, len(x):] = True
    masks = np.concatenate([observed, permutation_masks(inverse, m, permutations, rng)])
    weights = 1.0 / sizes[inverse]  # each patient counts once, however many films
    current = masks * (weights / m)
    reference_w = (weights - m * current) / (total - m)
    mean_gap = np.abs(current @ z - reference_w @ z)  # (P + 1, d)
    mmds = np.column_stack([_mmd2_many(np.exp(-d2 / (width2 * w * w)), current, weights, m,
                                       total) for w in WIDTHS])
    stats = np.concatenate([mmds, mean_gap], axis=1)
    t = _standardised(stats)
    top = t.max(axis=1)
    p = float(np.mean(top >= top[0] - 1e-12))
    best = int(np.argmax(t[0]))
    name = f"mmd@{WIDTHS[best]:g}" if best < len(WIDTHS) else f"feature {best - len(WIDTHS)}"
    return AggregateResult(p, float(mmds[0, WIDTHS.index(1.0)]), name, len(x), len(y))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value (one feature).

    Used per feature to say WHICH features moved (the MMD says whether anything did).
    """
    x = np.sort(np.asarray(reference, np.float64))
    y = np.sort(np.asarray(current, np.float64))
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / len(x)
    cdf_y = np.searchsorted(y, grid, side="right") / len(y)
    d = float(np.max(np.abs(cdf_x - cdf_y)))
    en = math.sqrt(len(x) * len(y) / (len(x) + len(y)))
    lam = (en + 0.12 + 0.11 / en) * d  # Stephens' small-sample correction
    if lam < 1e-3:
        return d, 1.0
    p = 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101))
    return d, float(min(max(p, 0.0), 1.0))


def holm(p_values: list[float], alpha: float) -> list[bool]:
    """Holm-Bonferroni: which hypotheses are rejected at family-wise level ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    m = len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected


def binomial_tail(hits: int, n: int, p: float, lower: bool) -> float:
    """Exact one-sided binomial p-value: P(X <= hits) (``lower``) or P(X >= hits), X ~ B(n, p).

    The p-value of "this group's rate is worse than the card's ``p``"; exact, so that a
    Holm correction over many of them keeps its family-wise level.
    """
    if n == 0:
        return 1.0
    if p <= 0.0:
        return 1.0 if lower or hits == 0 else 0.0
    if p >= 1.0:
        return 1.0 if not lower or hits == n else 0.0
    ks = range(0, hits + 1) if lower else range(hits, n + 1)
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p) for k in ks]
    top = max(logs)
    return float(min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs)))


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); (nan, nan) when n == 0.

    Unlike the normal approximation it stays inside [0, 1] and keeps its coverage for the
    small counts validated cases come in.
    """
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
