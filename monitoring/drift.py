"""Data drift: are recent images, per site / source and overall, like the reference?

Each group of the current window is compared with the whole reference window (the
training data) by :func:`monitoring.stats.mmd_test` on the vectors of
:class:`monitoring.features.DriftSpace` (network features' first principal components and
image statistics), permuting whole patients when patient ids are known. The groups'
p-values are corrected together (Holm, family-wise ``alpha``): a report with five groups
raises no more false alarms than one test. Per feature, a Kolmogorov-Smirnov test (Holm
over the features) names what moved, for the reader; the decision is the MMD's.

Groups smaller than ``min_images`` are reported as too small to judge, never as "no drift".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from monitoring.stats import holm, ks_test, mmd_test

ALPHA = 0.05
PERMUTATIONS = 500
MIN_IMAGES = 10
OVERALL = "overall"


@dataclass
class Window:
    """Vectors of one window (rows) with their group and patient (cluster) ids."""

    vectors: np.ndarray
    groups: np.ndarray  # site / source of each row
    clusters: np.ndarray | None = None  # patient of each row, when known

    def subset(self, mask: np.ndarray) -> Window:
        """The rows where ``mask`` is true."""
        clusters = None if self.clusters is None else self.clusters[mask]
        return Window(self.vectors[mask], self.groups[mask], clusters)


@dataclass
class GroupResult:
    """The verdict on one group of the current window."""

    group: str
    n: int
    mmd2: float | None = None
    p_value: float | None = None
    drift: bool = False
    judged: bool = True  # False: fewer than min_images
    moved: list[dict[str, float | str]] = field(default_factory=list)


def _clusters(reference: Window, current: Window) -> np.ndarray | None:
    if reference.clusters is None and current.clusters is None:
        return None
    ref = reference.clusters if reference.clusters is not None else np.array(
        [f"ref-{i}" for i in range(len(reference.vectors))])
    cur = current.clusters if current.clusters is not None else np.array(
        [f"cur-{i}" for i in range(len(current.vectors))])
    return np.concatenate([np.array([f"r/{c}" for c in ref]), np.array([f"c/{c}" for c in cur])])


def _moved(reference: np.ndarray, current: np.ndarray, names: list[str],
           alpha: float) -> list[dict[str, float | str]]:
    tests = [ks_test(reference[:, j], current[:, j]) for j in range(reference.shape[1])]
    rejected = holm([p for _, p in tests], alpha)
    out = [{"feature": names[j], "ks": round(d, 3), "p_value": p,
            "shift_sd": round(float(current[:, j].mean() - reference[:, j].mean()), 3)}
           for j, ((d, p), r) in enumerate(zip(tests, rejected, strict=True)) if r]
    return sorted(out, key=lambda m: m["p_value"])  # type: ignore[arg-type,return-value]


def compare(
    reference: Window, current: Window, names: list[str], alpha: float = ALPHA,
    permutations: int = PERMUTATIONS, min_images: int = MIN_IMAGES, seed: int = 0,
) -> list[GroupResult]:
    """One :class:`GroupResult` for ``overall`` and for each group of ``current``."""
    rng = np.random.default_rng(seed)
    groups = [OVERALL] + sorted({str(g) for g in current.groups})
    results = []
    for group in groups:
        part = current if group == OVERALL else current.subset(current.groups == group)
        if group != OVERALL and len(groups) == 2:
            continue  # one group: it IS the overall window
        res = GroupResult(group, len(part.vectors))
        if res.n < min_images:
            res.judged = False
        else:
            mmd = mmd_test(reference.vectors, part.vectors, permutations, rng,
                           clusters=_clusters(reference, part))
            res.mmd2, res.p_value = mmd.mmd2, mmd.p_value
        results.append(res)
    judged = [r for r in results if r.judged]
    for res, rejected in zip(judged, holm([r.p_value or 1.0 for r in judged], alpha),
                             strict=True):
        res.drift = rejected
        if rejected:
            part = current if res.group == OVERALL else current.subset(
                current.groups == res.group)
            res.moved = _moved(reference.vectors, part.vectors, names, alpha)
    return results


def false_alarm_rate(
    reference: Window, n_current: int, repeats: int = 40, alpha: float = ALPHA,
    permutations: int = 200, seed: int = 1,
) -> float:
    """Share of ``repeats`` same-distribution comparisons that the test calls drift.

    Each repeat draws ``n_current`` rows of the reference (whole patients when known) as a
    pseudo current window and tests them against the remaining rows: both halves come
    from one distribution, so every detection is a false alarm. Expect about ``alpha``.
    """
    rng = np.random.default_rng(seed)
    n = len(reference.vectors)
    n_current = min(n_current, n // 2)  # the other half must remain as the reference
    clusters = reference.clusters if reference.clusters is not None else np.arange(n)
    ids = np.unique(clusters)
    alarms = 0
    for _ in range(repeats):
        chosen: set = set()
        size = 0
        for c in rng.permutation(ids):
            if size >= n_current:
                break
            chosen.add(c)
            size += int(np.sum(clusters == c))
        mask = np.isin(clusters, list(chosen))
        result = mmd_test(reference.subset(~mask).vectors, reference.subset(mask).vectors,
                          permutations, rng,
                          clusters=np.concatenate([clusters[~mask], clusters[mask]]))
        alarms += result.p_value < alpha
    return alarms / repeats


def summary(results: list[GroupResult]) -> str:
    """One line for e-mails and logs: which groups drifted."""
    drifted = [r.group for r in results if r.drift]
    unjudged = [r.group for r in results if not r.judged]
    text = f"data drift in {', '.join(drifted)}" if drifted else "no data drift detected"
    if unjudged:
        text += f" (too few images to judge: {', '.join(unjudged)})"
    return text


def as_dicts(results: list[GroupResult]) -> list[dict[str, Any]]:
    """JSON-ready results."""
    return [asdict(r) for r in results]
