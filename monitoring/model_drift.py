"""Model drift: how the served model does on radiologist-validated cases, against its card.

On the cases whose reviewers agree (``app.clinical.reviews.final_label``), per site / source and
overall: accuracy, COVID recall (agreed COVID called COVID) and normals called COVID
(agreed Normal called COVID), each with a 95% Wilson interval for the reader.

**One false-alarm budget.** Each metric of each group is tested against the model card's
figure on the worse side (below for accuracy and recall, above for normals called COVID)
by the exact one-sided binomial test, and all these p-values - every group, overall
included, times every metric - are corrected together by Holm at family-wise ``alpha``
(0.05): with performance exactly at the card, the chance that the report flags anything
at all is at most ``alpha``, however many sites it covers. (One 95% interval per metric
and group, uncorrected, flagged something in 7% to 36% of such weeks.) A better-than-card
interval is reported, not alarmed. A refusal ("not a chest X-ray") of a validated film
counts as not correct.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from monitoring.stats import binomial_tail, holm, wilson

OVERALL = "overall"
ALPHA = 0.05  # family-wise, over groups x metrics
MIN_CASES = 10
CARD_TAG = "model_card"  # model-version tag: the version's figures at its promotion
# metric -> True when a higher value is better
METRICS = {"accuracy": True, "covid_recall": True, "normals_called_covid": False}


@dataclass(frozen=True)
class Case:
    """One validated case: where it came from, what the model said, what was agreed."""

    group: str
    predicted: str | None  # None: refused (not a chest X-ray)
    agreed: str


@dataclass
class MetricResult:
    """One metric of one group with its interval and the card's figure."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    card: float | None
    judged: bool
    worse: bool = False  # flagged: worse than the card after Holm over the report
    better: bool = False
    p_value: float | None = None  # one-sided exact binomial, "worse than the card"


@dataclass
class ModelGroupResult:
    """Every metric of one group."""

    group: str
    n: int
    metrics: dict[str, MetricResult] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        """True when any metric is flagged worse than the card."""
        return any(m.worse for m in self.metrics.values())

    @property
    def judged(self) -> bool:
        """True when at least one metric had enough cases."""
        return any(m.judged for m in self.metrics.values())


def _metric(hits: int, n: int, card: float | None, higher_better: bool,
            min_cases: int) -> MetricResult:
    low, high = wilson(hits, n)
    res = MetricResult(hits / n if n else None, None if n == 0 else low,
                       None if n == 0 else high, n, card, judged=n >= min_cases)
    if res.judged and card is not None:
        below, above = high < card, low > card
        res.better = above if higher_better else below
        res.p_value = binomial_tail(hits, n, card, lower=higher_better)
    return res


def evaluate(cases: list[Case], card: dict[str, float], min_cases: int = MIN_CASES,
             alpha: float = ALPHA) -> list[ModelGroupResult]:
    """Per group (and overall) metrics of ``cases`` against ``card`` (metric -> figure),
    flagged by Holm at family-wise ``alpha`` over every tested group x metric."""
    groups = [OVERALL] + sorted({c.group for c in cases})
    out = []
    for group in groups:
        part = cases if group == OVERALL else [c for c in cases if c.group == group]
        if group != OVERALL and len(groups) == 2:
            continue  # one group: it IS the overall
        covid = [c for c in part if c.agreed == "COVID"]
        normal = [c for c in part if c.agreed == "Normal"]
        counts = {
            "accuracy": (sum(c.predicted == c.agreed for c in part), len(part)),
            "covid_recall": (sum(c.predicted == "COVID" for c in covid), len(covid)),
            "normals_called_covid": (sum(c.predicted == "COVID" for c in normal), len(normal)),
        }
        res = ModelGroupResult(group, len(part))
        for name, higher in METRICS.items():
            hits, n = counts[name]
            res.metrics[name] = _metric(hits, n, card.get(name), higher, min_cases)
        out.append(res)
    tested = [m for r in out for m in r.metrics.values() if m.p_value is not None]
    for m, rejected in zip(tested, holm([m.p_value or 1.0 for m in tested], alpha),
                           strict=True):
        m.worse = rejected
    return out


def card_from_summary(summary: dict[str, Any]) -> dict[str, float]:
    """The card's figures from a training run's ``summary.json`` (its ``val`` section).

    Accuracy and COVID recall of the union; normals called COVID is the adult normals'
    figure (``nih-adult-normal``) when the summary has it, else the union's non-COVID one.
    """
    val = summary.get("val", summary)
    union = val.get("union", {})
    card: dict[str, float] = {}
    if "accuracy" in union:
        card["accuracy"] = float(union["accuracy"])
    if "covid_recall" in union:
        card["covid_recall"] = float(union["covid_recall"])
    adults = val.get("nih-adult-normal", {}).get("non_covid_called_covid")
    fallback = union.get("non_covid_called_covid")
    if adults is not None or fallback is not None:
        card["normals_called_covid"] = float(adults if adults is not None else fallback)
    return card


def card_from_decision(decision: dict[str, Any]) -> dict[str, float]:
    """The candidate's own card figures from the promotion gate's decision
    (``lifecycle.promotion_gate.Decision.as_dict()``): accuracy on the union of the held-out images,
    COVID recall on their COVID films, the share of adult normals it called COVID."""
    card: dict[str, float] = {}
    union = [s for s in decision.get("sources", []) if s["source"] == "union"]
    if union and union[0]["n"]:
        card["accuracy"] = union[0]["candidate_correct"] / union[0]["n"]
    films = decision.get("covid_films", [])
    if sum(f["n"] for f in films):
        card["covid_recall"] = (sum(f["candidate_correct"] for f in films)
                                / sum(f["n"] for f in films))
    normals = decision.get("adult_normals", {})
    if normals.get("n"):
        card["normals_called_covid"] = normals["candidate_called_covid"] / normals["n"]
    return card


def summary(results: list[ModelGroupResult]) -> str:
    """One line: which metrics of which groups are worse than the card."""
    worse = [f"{r.group} {name} {m.value:.2f} [{m.low:.2f}, {m.high:.2f}] vs card {m.card:.2f}"
             for r in results for name, m in r.metrics.items() if m.worse]
    if worse:
        return "model drift: " + "; ".join(worse)
    judged = [r for r in results if r.judged]
    if not judged:
        return "too few validated cases to judge model drift"
    return "no model drift: every interval includes or beats the card's figure"


def as_dicts(results: list[ModelGroupResult]) -> list[dict[str, Any]]:
    """JSON-ready results."""
    return [{"group": r.group, "n": r.n, "drift": r.drift, "judged": r.judged,
             "metrics": {k: asdict(m) for k, m in r.metrics.items()}} for r in results]
