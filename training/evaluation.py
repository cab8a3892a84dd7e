"""Evaluating a model the way a clinician meets it: through the served prediction path.

Every evaluation of a model (the training run's val report, ``make bench-model``, the
quality tests, the OOD benchmark) calls :func:`served_predictions`, i.e. the pyfunc's own
``predict_arrays``: softmax with the model's temperature, its COVID threshold, its review
flag and the "not a chest X-ray" gate. No caller rebuilds the decision by hand.

Two views per source and for the union:

* **answered**: the usual figures (:func:`training.metrics.report`) on the images the model
  answered;
* **seen** (what a clinician sees): a refusal is no diagnosis, so ``seen_accuracy`` counts
  it as not correct and ``seen_covid_recall`` as a COVID film not found; plus the count of
  refusals and of answers flagged for review.
"""

from __future__ import annotations

import numpy as np

from serving.decision import COVID
from training.metrics import report

BATCH = 64


def served_predictions(model, images: np.ndarray) -> list[dict]:
    """The pyfunc's answers for uint8 ``(N, H, W)`` images, without heatmaps, in batches."""
    out: list[dict] = []
    for i in range(0, len(images), BATCH):
        out += model.predict_arrays(images[i : i + BATCH], heatmap=False)
    return out


def _arrays(preds: list[dict], classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(probabilities (N, C), predicted index or -1 when refused, flagged for review)``."""
    probs = np.array([[p["probabilities"][c] for c in classes] for p in preds], np.float64)
    pred = np.array(
        [classes.index(p["label"]) if p["status"] == "ok" else -1 for p in preds], int
    )
    review = np.array([bool(p["needs_review"]) for p in preds])
    return probs, pred, review


def _one(
    probs: np.ndarray, pred: np.ndarray, review: np.ndarray, y: np.ndarray, classes: list[str]
) -> dict[str, float]:
    answered = pred >= 0
    n = len(y)
    out: dict[str, float] = {}
    if answered.any():
        out.update(report(probs[answered], y[answered], classes, pred[answered]))
    out.update(
        n=float(n),
        answered=float(answered.sum()),
        refused=float(n - answered.sum()),
        flagged_for_review=float((review & answered).sum()),
        seen_accuracy=float(np.mean(pred == y)) if n else 0.0,
    )
    if COVID in classes:
        c = classes.index(COVID)
        if np.any(y == c):
            out["seen_covid_recall"] = float(np.mean(pred[y == c] == c))
        if np.any(y != c):
            out["seen_non_covid_called_covid"] = float(np.mean(pred[y != c] == c))
    return out


def clinical_report(
    preds: list[dict], y: np.ndarray, sources: np.ndarray, classes: list[str]
) -> dict[str, dict[str, float]]:
    """Both views (see the module docstring) for the union (key ``union``) and each source."""
    probs, pred, review = _arrays(preds, classes)
    y, sources = np.asarray(y), np.asarray(sources)
    result = {"union": _one(probs, pred, review, y, classes)}
    for src in sorted(set(sources.tolist())):
        m = sources == src
        result[str(src)] = _one(probs[m], pred[m], review[m], y[m], classes)
    return result


def evaluate(model, dataset) -> dict[str, dict[str, float]]:
    """:func:`clinical_report` of ``model`` (a loaded pyfunc) on a ``training.data`` set."""
    preds = served_predictions(model, dataset.images)
    return clinical_report(preds, dataset.y, dataset.sources, model.classes)


def heat_in_lungs(model, dataset, segmenter) -> dict[str, dict[str, float]]:
    """Share of the served heatmap inside the lungs, per source and for the union.

    The heatmap is the answer's own (the chosen class, on the whole film); the lungs are
    what ``segmenter`` (a :class:`serving.lungs.LungSegmenter`) draws on the whole film.
    Answers without a heatmap are left out. ``mean`` is the average share; ``below_half``
    the share of films whose heatmap lies mostly outside the lungs; ``chance`` the mean lung
    area fraction, the share a heatmap spread evenly over the film would get.
    """
    from serving.lungs import in_lungs

    shares, srcs, areas = [], [], []
    for i in range(0, len(dataset.images), BATCH):
        images = dataset.images[i : i + BATCH]
        answers = model.predict_arrays(images, heatmap=True)
        masks = segmenter.masks(images)
        for answer, mask, src in zip(answers, masks, dataset.sources[i : i + BATCH],
                                     strict=True):
            if answer["heatmap"] is not None:
                shares.append(in_lungs(np.asarray(answer["heatmap"], np.float32), mask))
                srcs.append(src)
                areas.append(float(mask.mean()))
    shares_a, srcs_a, areas_a = np.array(shares), np.array(srcs), np.array(areas)

    def one(m: np.ndarray) -> dict[str, float]:
        return {"n": float(m.sum()), "mean": float(shares_a[m].mean()),
                "below_half": float(np.mean(shares_a[m] < 0.5)),
                "chance": float(areas_a[m].mean())}

    out = {"union": one(np.ones(len(shares_a), bool))}
    for src in sorted(set(srcs)):
        out[str(src)] = one(srcs_a == src)
    return out
