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

**Films that are not COVID called COVID: the same test.** On every film whose reference is
not COVID (Normal, Viral Pneumonia, Other Abnormal...), "not called COVID" is the right
answer whichever classes a version knows; the exact McNemar test refuses a candidate that
calls significantly more of them COVID, per source and pooled.

**All sources pooled.** Each test above is also run on every held-out image together
(``union``): four sources each slightly worse can pass one by one while together they are
significantly worse, and the gate refuses that too.

**Versions with different classes** (a three-class production, a candidate that adds
``Other Abnormal``): each version's classes are read from its answers' probabilities (or
given). Accuracy is compared on the films whose reference class both versions know; films
of a class only one knows count for "called COVID or not" only, where both can answer. A
candidate that drops a class production answers is refused: a clinician would lose that
answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    # "correct" = not called COVID, on the films whose reference is not COVID
    not_covid_films: list[SourceResult] = field(default_factory=list)
    # each version's classes and those accuracy is compared on (empty: every label)
    classes: dict[str, list[str]] = field(default_factory=dict)

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


def _mcnemar(source: str, p_ok: list[bool], c_ok: list[bool], alpha: float) -> SourceResult:
    b = sum(p and not c for p, c in zip(p_ok, c_ok, strict=True))
    c = sum(c and not p for p, c in zip(p_ok, c_ok, strict=True))
    p_worse = mcnemar_worse_p(b, c)
    return SourceResult(source, len(p_ok), sum(p_ok), sum(c_ok), b, c, p_worse,
                        b > c and p_worse < alpha)


def compare_source(source: str, prod: list[dict], cand: list[dict], labels: list[str],
                   alpha: float) -> SourceResult:
    """The McNemar comparison of one source (see the module docstring)."""
    return _mcnemar(source, [correct(a, y) for a, y in zip(prod, labels, strict=True)],
                    [correct(a, y) for a, y in zip(cand, labels, strict=True)], alpha)


def classes_of(answers: Sequence[dict]) -> list[str] | None:
    """The classes a version answers with (its answers' probability keys), None if unknown."""
    known = {c for a in answers for c in (a.get("probabilities") or {})}
    return sorted(known) or None


def _groups(sources: list[str]) -> list[tuple[str, list[int]]]:
    """(source, its image indexes) for each source, then every image pooled."""
    out = [(src, [i for i, s in enumerate(sources) if s == src]) for src in sorted(set(sources))]
    return [*out, (UNION, list(range(len(sources))))]


def _where(name: str) -> str:
    return "all sources pooled" if name == UNION else name


def _refuse_accuracy(r: SourceResult, alpha: float) -> str:
    return (f"{_where(r.source)}: worse than production ({r.candidate_correct}/{r.n} correct "
            f"against {r.production_correct}/{r.n}; {r.only_production} images right only by "
            f"production, {r.only_candidate} only by the candidate; exact McNemar "
            f"p={r.p_worse:.4g} < {alpha})")


def _refuse_covid(r: SourceResult, alpha: float) -> str:
    return (f"{_where(r.source)}: misses more COVID films than production "
            f"({r.candidate_correct}/{r.n} found against {r.production_correct}/{r.n}; "
            f"{r.only_production} found only by production, {r.only_candidate} only by the "
            f"candidate; exact McNemar p={r.p_worse:.4g} < {alpha})")


def _refuse_not_covid(r: SourceResult, alpha: float) -> str:
    return (f"{_where(r.source)}: calls more films that are not COVID COVID than production "
            f"({r.n - r.candidate_correct}/{r.n} against {r.n - r.production_correct}/{r.n}; "
            f"{r.only_production} called COVID only by the candidate, {r.only_candidate} only "
            f"by production; exact McNemar p={r.p_worse:.4g} < {alpha})")


def _compare(groups: list[tuple[str, list[int]]], sources: list[str],
             keep: Callable[[int], bool], ok: Callable[[dict, int], bool], prod: list[dict],
             cand: list[dict], alpha: float, refuse: Callable[[SourceResult, float], str],
             reasons: list[str], keep_all: bool = False) -> list[SourceResult]:
    """One McNemar test per group on the images ``keep`` selects (``ok``: right answer).
    A group without such images is skipped, and so is the pool when they all come from one
    source (it would repeat that source's row), unless ``keep_all``; a repeated pool never
    repeats a reason."""
    out = []
    for name, idx in groups:
        chosen = [i for i in idx if keep(i)]
        repeat = name == UNION and len({sources[i] for i in chosen}) < 2
        if not keep_all and (not chosen or repeat):
            continue
        r = _mcnemar(name, [ok(prod[i], i) for i in chosen], [ok(cand[i], i) for i in chosen],
                     alpha)
        out.append(r)
        if r.worse and not repeat:
            reasons.append(refuse(r, alpha))
    return out


def decide(production: str, candidate: str, prod: list[dict], cand: list[dict],
           labels: list[str], sources: list[str], alpha: float = 0.05,
           production_classes: Sequence[str] | None = None,
           candidate_classes: Sequence[str] | None = None) -> Decision:
    """Compare two versions' answers to the same labelled images; refuse with reasons.

    Each version's classes default to those its answers name (:func:`classes_of`); when
    either is unknown, accuracy counts every image.
    """
    if not (len(prod) == len(cand) == len(labels) == len(sources)):
        raise ValueError("both versions must answer the same labelled images")
    if not labels:
        raise ValueError("the gate has no held-out images to compare on")
    p_cls = list(production_classes) if production_classes else classes_of(prod)
    c_cls = list(candidate_classes) if candidate_classes else classes_of(cand)
    shared = sorted(set(p_cls) & set(c_cls)) if p_cls and c_cls else None
    reasons: list[str] = []
    if shared is not None and set(p_cls) - set(c_cls):
        reasons.append(f"the candidate cannot answer {', '.join(sorted(set(p_cls) - set(c_cls)))}"
                       f", which production answers")
    groups = _groups(sources)
    both_know = (lambda i: True) if shared is None else (lambda i: labels[i] in shared)
    results = _compare(groups, sources, both_know, lambda a, i: correct(a, labels[i]), prod, cand,
                       alpha, _refuse_accuracy, reasons, keep_all=True)
    covid = _compare(groups, sources, lambda i: labels[i] == COVID, lambda a, i: called_covid(a),
                     prod, cand, alpha, _refuse_covid, reasons)
    not_covid = _compare(groups, sources, lambda i: labels[i] != COVID,
                         lambda a, i: not called_covid(a), prod, cand, alpha,
                         _refuse_not_covid, reasons)
    adult = [i for i, (s, y) in enumerate(zip(sources, labels, strict=True))
             if y == NORMAL and is_adult_source(s)]
    p_covid = sum(called_covid(prod[i]) for i in adult)
    c_covid = sum(called_covid(cand[i]) for i in adult)
    normals = {"n": len(adult), "production_called_covid": p_covid,
               "candidate_called_covid": c_covid}
    if c_covid > p_covid:
        reasons.append(f"adult normals called COVID: {c_covid}/{len(adult)} by the candidate "
                       f"against {p_covid}/{len(adult)} by production (no increase allowed)")
    classes = ({"production": sorted(p_cls), "candidate": sorted(c_cls), "compared": shared}
               if shared is not None else {})
    return Decision(production, candidate, not reasons, reasons, results, covid, normals, alpha,
                    not_covid, classes)
