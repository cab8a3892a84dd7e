"""Statistics of the drift checks: MMD two-sample permutation test, KS, Holm, Wilson.

Pure NumPy (no SciPy on the hosts). Each function documents the test it implements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MMDResult:
    """Outcome of :func:`mmd_test`."""

    mmd2: float  # squared MMD (biased V-statistic) of the observed split
    p_value: float  # permutation p-value, (1 + #{perm >= observed}) / (1 + permutations)
    bandwidth: float  # RBF kernel width (median heuristic on the pooled sample)
    n_reference: int
    n_current: int


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)


def _mmd2_many(kernel: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Squared MMD for each row of ``masks`` (True = current sample, False = reference)."""
    a = masks.astype(np.float64)  # (P, n)
    b = 1.0 - a
    na, nb = a.sum(axis=1), b.sum(axis=1)
    ka = a @ kernel  # (P, n)
    kb = b @ kernel
    saa = np.einsum("pn,pn->p", ka, a)
    sbb = np.einsum("pn,pn->p", kb, b)
    sab = np.einsum("pn,pn->p", ka, b)
    return saa / na**2 + sbb / nb**2 - 2.0 * sab / (na * nb)


def mmd_test(
    reference: np.ndarray, current: np.ndarray, permutations: int = 500,
    rng: np.random.Generator | None = None, clusters: np.ndarray | None = None,
) -> MMDResult:
    """Maximum mean discrepancy with a Gaussian kernel, and its permutation p-value.

    Gretton et al. (JMLR 2012): MMD is zero only when the two distributions are equal (for
    a characteristic kernel), so it sees any change of the joint feature distribution, not
    only of means. The null distribution comes from relabelling the pooled sample at random
    (exact level for any sample size, no asymptotics); the kernel width is the median
    pairwise distance of the pooled sample. Features should be standardised first.

    ``clusters`` (one id per pooled row, reference rows first): rows of one cluster (one
    patient's films) move together in the permutations. Films of one patient are not
    independent; permuting them one by one would call a handful of new patients "drift".
    """
    rng = rng or np.random.default_rng(0)
    x = np.asarray(reference, np.float64)
    y = np.asarray(current, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("each sample needs at least 2 points")
    z = np.concatenate([x, y])
    d2 = _sq_dists(z)
    upper = d2[np.triu_indices(len(z), k=1)]
    width2 = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-d2 / width2)
    n = len(z)
    observed = np.zeros((1, n), bool)
    observed[0, len(x):] = True
    stat = float(_mmd2_many(kernel, observed)[0])
    if clusters is None:
        clusters = np.arange(n)
    ids, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    current_share = len(y) / n
    null = np.empty(permutations)
    done = 0
    while done < permutations:  # chunks bound the memory of the masks
        k = min(256, permutations - done)
        masks = np.zeros((k, n), bool)
        for i in range(k):
            if len(ids) == n:
                masks[i, rng.permutation(n)[: len(y)]] = True
                continue
            # Whole clusters in random order until the current sample's size is reached.
            chosen = np.zeros(len(ids), bool)
            sizes = np.bincount(inverse)
            total = 0
            for c in rng.permutation(len(ids)):
                if total >= current_share * n:
                    break
                chosen[c] = True
                total += sizes[c]
            masks[i] = chosen[inverse]
            if masks[i].all() or not masks[i].any():
                masks[i, rng.permutation(n)[: len(y)]] = True
        null[done:done + k] = _mmd2_many(kernel, masks)
        done += k
    p = (1.0 + float(np.sum(null >= stat - 1e-12))) / (1.0 + permutations)
    return MMDResult(stat, p, math.sqrt(width2), len(x), len(y))


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
