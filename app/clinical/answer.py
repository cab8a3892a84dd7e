"""One way to state Radio's answer, in words, wherever it is shown.

The Analyse page (through the ``explanation`` of ``POST /predict``), the case page and the
history all say the same thing, built here from the answer's fields: the decision, why it
was made (the COVID decision threshold of ``serving.decision.decide`` and what it means),
and why the answer needs a radiologist's look. A headline never names a class that the
probability bars beside it seem to contradict without saying why.

Pure Python: works for answers of any number of classes and for old rows whose model did
not report its thresholds (the threshold is then described, not quoted).
"""

from __future__ import annotations

from typing import Any

from serving.decision import COVID, DEFAULT_REVIEW_THRESHOLD


def percent(p: float) -> str:
    """A probability as the pages show it: one decimal."""
    return f"{p * 100:.1f}%"


def threshold_percent(t: float) -> str:
    """A threshold as a whole percent when it is one (24%), else one decimal (24.1%)."""
    value = t * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def _covid_rule(label: str, probs: dict[str, float], threshold: float | None) -> str:
    """Why the label is what it is, when the model has a COVID class."""
    p_covid = probs[COVID]
    top = max(probs, key=lambda c: probs[c])
    meaning = ("Radio names COVID as soon as its probability reaches this threshold, even "
               "when another class is more probable, so that fewer COVID cases are missed.")
    if label == COVID:
        if threshold is None:
            where = "reaches the COVID decision threshold of this model version"
        else:
            where = f"is above the COVID threshold of {threshold_percent(threshold)}"
        if top == COVID:
            return (f"COVID is the most probable class, and its probability, "
                    f"{percent(p_covid)}, {where}. {meaning}")
        return f"The COVID probability, {percent(p_covid)}, {where}. {meaning}"
    quoted = ("the COVID threshold" if threshold is None
              else f"the COVID threshold of {threshold_percent(threshold)}")
    if top == COVID:
        return (f"COVID is the most probable class ({percent(p_covid)}) but below {quoted}, "
                f"so the most probable other class is named: {label} "
                f"({percent(probs[label])}). {meaning}")
    return (f"{label} is the most probable class ({percent(probs[label])}); the COVID "
            f"probability, {percent(p_covid)}, is below {quoted}.")


def review_reason(confidence: float | None, review_threshold: float | None) -> str:
    """Why an answer was flagged for a radiologist."""
    limit = DEFAULT_REVIEW_THRESHOLD if review_threshold is None else review_threshold
    if confidence is None:
        return "Needs radiologist review."
    return (f"Needs radiologist review: the model's probability for its answer, "
            f"{percent(confidence)}, is below {threshold_percent(limit)}, the level below "
            "which an answer may not stand without a radiologist.")


def explain(status: str, label: str | None, probabilities: dict[str, float] | None,
            confidence: float | None, needs_review: bool, ood_reason: str | None = None,
            decision: dict[str, Any] | None = None,
            reasons: list[str] | None = None) -> dict[str, str | None]:
    """``{"headline", "why", "review"}``: the decision, why, and why it needs review (None
    when it does not). ``reasons``: the model's own (low confidence, unfamiliar film); an
    answer without them (models before the four classes) gets the low-confidence one."""
    decision = decision or {}
    review = None
    if needs_review:
        review = ("Needs radiologist review: " + " ".join(reasons) if reasons
                  else review_reason(confidence, decision.get("review_threshold")))
    if status == "not_xray":
        why = ood_reason or "The image does not look like a frontal chest X-ray."
        return {"headline": "Not a chest X-ray",
                "why": f"{why} No diagnosis is given for it.", "review": None}
    if status == "contributed":
        return {"headline": "Contributed for the dataset",
                "why": " ".join(["An image contributed for the dataset by a radiologist; "
                                 "not analysed by the model.", *(reasons or [])]),
                "review": None}
    if status != "ok" or not label or not probabilities:
        return {"headline": "No answer", "why": "The model did not answer.", "review": None}
    probs = {str(k): float(v) for k, v in probabilities.items()}
    if COVID in probs:
        why = _covid_rule(label, probs, decision.get("covid_threshold"))
    else:
        why = f"{label} is the most probable class ({percent(probs[label])})."
    return {"headline": f"{label} \u2014 {percent(probs[label])}", "why": why,
            "review": review}


def of_record(pred: Any) -> dict[str, str | None]:
    """:func:`explain` of a stored prediction (``app.store.db.models.Prediction``)."""
    return explain(pred.status, pred.label, pred.probabilities, pred.confidence,
                   pred.needs_review, pred.ood_reason, getattr(pred, "decision", None),
                   getattr(pred, "review_reasons", None))
