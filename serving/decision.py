"""The served decision: softmax with temperature, the COVID threshold, the review flag.

Every caller that turns network logits into an answer (the pyfunc, training's val report,
``make bench-model``, the quality tests) goes through :func:`decide` here, so the figures
Radio reports are those of the rule a clinician gets. NumPy only.
"""

from __future__ import annotations

import numpy as np

from serving.familiarity import REASON as UNFAMILIAR

COVID = "COVID"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def decide(probs: np.ndarray, classes: list[str], covid_threshold: float | None) -> np.ndarray:
    """Predicted class index: COVID when its probability reaches the threshold, else argmax.

    The threshold is chosen by cross-validation on the train split (never on val); without
    one (or without a COVID class) the rule is plain argmax.
    """
    pred = np.argmax(probs, axis=-1)
    if covid_threshold is None or COVID not in classes:
        return pred
    c = classes.index(COVID)
    others = probs.copy()
    others[..., c] = -1.0
    return np.where(probs[..., c] >= covid_threshold, c, np.argmax(others, axis=-1))


# Below this confidence an answer is flagged for radiologist review (overridable per model
# in its meta.json as ``review_threshold``).
DEFAULT_REVIEW_THRESHOLD = 0.6


def needs_review(confidence: float, review_threshold: float | None) -> bool:
    """True when a diagnosis is too uncertain to stand without a radiologist's look."""
    limit = DEFAULT_REVIEW_THRESHOLD if review_threshold is None else review_threshold
    return bool(confidence < limit)


def review_reasons(confidence: float, review_threshold: float | None,
                   unfamiliar: bool = False) -> list[str]:
    """Why a diagnosis needs a radiologist's look, in words (empty: it may stand alone).

    The clinician reads these: a flag without its reason is not actionable."""
    why = []
    if needs_review(confidence, review_threshold):
        limit = DEFAULT_REVIEW_THRESHOLD if review_threshold is None else review_threshold
        why.append(f"Low confidence: {confidence:.0%} for this answer, below the "
                   f"{limit:.0%} below which Radio asks a radiologist.")
    if unfamiliar:
        why.append(UNFAMILIAR)
    return why
