"""The promotion gate's decision: is a candidate worse than production, per source?

Both versions answer the same held-out images (:mod:`lifecycle.heldout`): every source's
val split and the radiologist-validated production cases. Answers are scored as the
clinician sees them: an answer is correct when it is not refused and its label is the
reference label (a refusal is no diagnosis, as in :mod:`training.evaluation`).

**Per source, the exact one-sided McNemar test.** The two versions answer the *same*
images, so what carries the evidence are the discordant images: ``b`` answered correctly
by production only, ``c`` by the candidate only. If the versions were equally good, each
discordant image would go either way with probability 1/2, so ``P(X >= b)`` with
``X ~ Binomial(b + c, 1/2)`` is the p-value of "the candidate is worse". The candidate
is refused on a source when ``b > c`` and that p-value is below ``alpha`` (0.05 by
default). Exact (no normal approximation), so it stays valid on a 6-image source, where it
simply cannot refuse on noise (6 discordant images all against the candidate give
p = 1/64). It is not corrected for the number of sources on purpose: a gate errs towards
keeping the model that is known, and a refused candidate can still be forced, audited.
The paired bootstrap was not chosen: on sources of 6 to 65 images its intervals are
coarse and random, while the exact test is deterministic and says what it assumes.

**COVID films missed: the same test on each source's COVID films.** A source's accuracy
can hide a trade: a candidate that finds fewer COVID films but names more viral pneumonias
right scores the same. A missed COVID film is the error a clinician relies on Radio not to
make, so the exact McNemar test is also run on the COVID films of each source alone
(``b``: found by production only, ``c``: by the candidate only), refusing at the same
``alpha``. Measured: version 5 (version 1's recipe on the corrected data) passed the
accuracy test on covid19-3class (47/65 against 53/65, p = 0.09) while finding 16 of its 25
COVID films against production's 21, all 5 lost and none gained (p = 1/32): refused.

**Adult normals called COVID: no tolerance.** Radio's measured worst failure is calling
adults with no finding COVID. On the Normal images of adult sources (:data:`ADULT_SOURCES`
and every production source), the candidate is refused if it calls more of them COVID
than production does, by any number: that error is not traded against noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import comb
from typing import Any

COVID, NORMAL = "COVID", "Normal"
# Sources whose Normal images are adults (covid19-3class's normals are children).
ADULT_SOURCES = ("nih-adult-normal", "ieee8023-adult")
PRODUCTION_PREFIX = "production-"
UNION = "union"


def mcnemar_worse_p(b: int, c: int) -> float:
    """One-sided exact McNemar p-value that the candidate is worse: ``P(X >= b)``,
    ``X ~ Binomial(b + c, 1/2)`` (``b``: right by production only, ``c``: candidate only)."""
    n = b + c
    if n == 0:
        return 1.0
    return sum(comb(n, k) for k in range(b, n + 1)) / 2**n


@dataclass
class SourceResult:
    """Both versions on one source's images."""

    source: str
    n: int
    production_correct: int
    candidate_correct: int
    only_production: int  # b
    only_candidate: int  # c
    p_worse: float
    worse: bool


@dataclass
class Decision:
    """The gate's verdict with its reasons and every figure behind it."""

    production: str
    candidate: str
    passed: bool
    reasons: list[str]
    sources: list[SourceResult] = field(default_factory=list)
    covid_films: list[SourceResult] = field(default_factory=list)
    adult_normals: dict[str, int] = field(default_factory=dict)
    alpha: float = 0.05

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (CLI ``--json``, admin page, e-mail, event log)."""
        return asdict(self)


def correct(answer: dict, label: str) -> bool:
    """Seen-correct: answered (not refused) with the reference label."""
    return answer.get("status") == "ok" and answer.get("label") == label


def called_covid(answer: dict) -> bool:
    """The answer is a COVID diagnosis."""
    return answer.get("status") == "ok" and answer.get("label") == COVID


def is_adult_source(source: str) -> bool:
    """Whether a source's Normal images are adults."""
    return source in ADULT_SOURCES or source.startswith(PRODUCTION_PREFIX)


def compare_source(source: str, prod: list[dict], cand: list[dict], labels: list[str],
                   alpha: float) -> SourceResult:
    """The McNemar comparison of one source (see the module docstring)."""
    p_ok = [correct(a, y) for a, y in zip(prod, labels, strict=True)]
    c_ok = [correct(a, y) for a, y in zip(cand, labels, strict=True)]
    b = sum(p and not c for p, c in zip(p_ok, c_ok, strict=True))
    c = sum(c and not p for p, c in zip(p_ok, c_ok, strict=True))
    p_worse = mcnemar_worse_p(b, c)
    return SourceResult(source, len(labels), sum(p_ok), sum(c_ok), b, c, p_worse,
                        b > c and p_worse < alpha)


def decide(production: str, candidate: str, prod: list[dict], cand: list[dict],
           labels: list[str], sources: list[str], alpha: float = 0.05) -> Decision:
    """Compare two versions' answers to the same labelled images; refuse with reasons."""
    if not (len(prod) == len(cand) == len(labels) == len(sources)):
        raise ValueError("both versions must answer the same labelled images")
    if not labels:
        raise ValueError("the gate has no held-out images to compare on")
    results, reasons, covid = [], [], []
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        r = compare_source(src, [prod[i] for i in idx], [cand[i] for i in idx],
                           [labels[i] for i in idx], alpha)
        results.append(r)
        if r.worse:
            reasons.append(
                f"{src}: worse than production ({r.candidate_correct}/{r.n} correct against "
                f"{r.production_correct}/{r.n}; {r.only_production} images right only by "
                f"production, {r.only_candidate} only by the candidate; exact McNemar "
                f"p={r.p_worse:.4g} < {alpha})"
            )
        films = [i for i in idx if labels[i] == COVID]
        if not films:
            continue
        f = compare_source(src, [prod[i] for i in films], [cand[i] for i in films],
                           [COVID] * len(films), alpha)
        covid.append(f)
        if f.worse:
            reasons.append(
                f"{src}: misses more COVID films than production ({f.candidate_correct}/{f.n} "
                f"found against {f.production_correct}/{f.n}; {f.only_production} found only "
                f"by production, {f.only_candidate} only by the candidate; exact McNemar "
                f"p={f.p_worse:.4g} < {alpha})"
            )
    results.append(compare_source(UNION, prod, cand, labels, alpha))
    adult = [i for i, (s, y) in enumerate(zip(sources, labels, strict=True))
             if y == NORMAL and is_adult_source(s)]
    p_covid = sum(called_covid(prod[i]) for i in adult)
    c_covid = sum(called_covid(cand[i]) for i in adult)
    normals = {"n": len(adult), "production_called_covid": p_covid,
               "candidate_called_covid": c_covid}
    if c_covid > p_covid:
        reasons.append(f"adult normals called COVID: {c_covid}/{len(adult)} by the candidate "
                       f"against {p_covid}/{len(adult)} by production (no increase allowed)")
    return Decision(production, candidate, not reasons, reasons, results, covid, normals, alpha)
