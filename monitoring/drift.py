"""Data drift: is each site's recent window like one of the sources the model knows?

The reference (the training images) is split by source: one reference per known source,
and one for the whole mixture. Each group of the current window (a site, and the whole
window) is compared with every reference by :func:`monitoring.stats.aggregate_test` on
the vectors of :class:`monitoring.features.DriftSpace`, permuting whole patients wherever
patients are known (the reference's always; the window's when the uploads carry a patient
key, else film by film, said in the result). A group is **known** when at least one
reference cannot be told from it, and **new** (drift) when every one of them can: its
p-value is the largest of its p-values over the references (an intersection-union test,
exact at level alpha without a correction over the references: Berger, Technometrics
1982), and the reference with that largest p-value is the one it resembles most. The
groups' p-values are corrected together (Holm, family-wise ``alpha``): a report with six
sites raises no more false alarms than one test. For a new group, per-feature
Kolmogorov-Smirnov tests (Holm over the features) against the source it resembles most
name what moved, for the reader; the decision is the aggregate test's.

Groups smaller than ``min_images`` are reported as too small to judge, never as "no drift".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from monitoring.stats import aggregate_test, holm, ks_test

ALPHA = 0.05
PERMUTATIONS = 500
MIN_IMAGES = 10
# A source with fewer training patients is judged only inside the mixture: a reference of a
# dozen patients cannot tell a window apart, so it would call every new hospital "known"
# (ieee8023-adult, 17 training patients, accepted windows of nih-adult-abnormal).
MIN_REFERENCE = 25
OVERALL = "overall"
MIXTURE = "mixture"


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
    mmd2: float | None = None  # against the reference it resembles most
    p_value: float | None = None  # the largest over the references (intersection-union)
    drift: bool = False  # "new": no known source nor the mixture is like it
    judged: bool = True  # False: fewer than min_images
    resembles: str | None = None  # the reference with the largest p-value
    p_by_reference: dict[str, float] = field(default_factory=dict)
    permuted: str = "patients"  # the window's permutation unit: "patients" or "films"
    moved: list[dict[str, float | str]] = field(default_factory=list)


def _patients(window: Window) -> int:
    return len(window.vectors) if window.clusters is None else len(np.unique(window.clusters))


def references(reference: Window, min_size: int = MIN_REFERENCE) -> dict[str, Window]:
    """One reference per source of ``reference.groups`` with at least ``min_size`` patients
    (rows, where patients are unknown), and the whole mixture (when there are several)."""
    names = sorted({str(g) for g in reference.groups})
    parts = {s: reference.subset(reference.groups == s) for s in names}
    out = {s: part for s, part in parts.items() if _patients(part) >= min_size}
    if len(names) > 1 or not out:
        out[MIXTURE] = reference
    return out


def _clusters(reference: Window, current: Window) -> np.ndarray:
    ref = reference.clusters if reference.clusters is not None else np.array(
        [f"ref-{i}" for i in range(len(reference.vectors))])
    cur = current.clusters if current.clusters is not None else np.array(
        [f"cur-{i}" for i in range(len(current.vectors))])
    return np.concatenate([np.char.add("r/", ref.astype(str)),
                           np.char.add("c/", cur.astype(str))])


def against(refs: dict[str, Window], part: Window, permutations: int,
            rng: np.random.Generator, stop_at: float | None = None,
            ) -> dict[str, tuple[float, float]]:
    """``{reference: (p-value, mmd2)}`` of ``part`` against each of ``refs``, in their order.

    ``stop_at``: stop at the first reference whose p-value reaches it (the window is then
    known whatever the others say: used where only the verdict matters)."""
    out = {}
    for name, ref in refs.items():
        res = aggregate_test(ref.vectors, part.vectors, permutations, rng,
                             clusters=_clusters(ref, part))
        out[name] = (res.p_value, res.mmd2)
        if stop_at is not None and res.p_value >= stop_at:
            break
    return out


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
    """One :class:`GroupResult` for ``overall`` and for each group of ``current``;
    ``reference.groups`` are the known sources."""
    rng = np.random.default_rng(seed)
    refs = references(reference)
    groups = [OVERALL] + sorted({str(g) for g in current.groups})
    results = []
    for group in groups:
        part = current if group == OVERALL else current.subset(current.groups == group)
        if group != OVERALL and len(groups) == 2:
            continue  # one group: it IS the overall window
        res = GroupResult(group, len(part.vectors),
                          permuted="films" if part.clusters is None else "patients")
        if res.n < min_images:
            res.judged = False
        else:
            tests = against(refs, part, permutations, rng)
            res.p_by_reference = {k: p for k, (p, _) in tests.items()}
            res.resembles = max(tests, key=lambda k: (tests[k][0], -tests[k][1]))
            res.p_value, res.mmd2 = tests[res.resembles]
        results.append(res)
    judged = [r for r in results if r.judged]
    for res, rejected in zip(judged, holm([r.p_value or 1.0 for r in judged], alpha),
                             strict=True):
        res.drift = rejected
        if rejected:
            part = current if res.group == OVERALL else current.subset(
                current.groups == res.group)
            res.moved = _moved(refs[res.resembles or MIXTURE].vectors, part.vectors, names,
                               alpha)
    return results


def summary(results: list[GroupResult]) -> str:
    """One line for e-mails and logs: which groups are new, and what the known ones resemble."""
    drifted = [r.group for r in results if r.drift]
    unjudged = [r.group for r in results if not r.judged]
    known = [f"{r.group} ~ {r.resembles}" for r in results
             if r.judged and not r.drift and r.group != OVERALL]
    text = (f"data drift (like no known source) in {', '.join(drifted)}" if drifted
            else "no data drift detected")
    if known:
        text += f"; known: {', '.join(known)}"
    if unjudged:
        text += f" (too few images to judge: {', '.join(unjudged)})"
    return text


def as_dicts(results: list[GroupResult]) -> list[dict[str, Any]]:
    """JSON-ready results."""
    return [asdict(r) for r in results]
