"""serving/familiarity.py: the "unfamiliar film" measure, its file, and the review flag."""

from __future__ import annotations

import numpy as np

from serving.decision import review_reasons
from serving.familiarity import REASON, Familiarity, knn_distance, normalise, rms_scale


def test_distance_is_the_mean_euclidean_distance_to_the_k_nearest():
    reference = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    q = np.array([[0.0, 0.0], [6.0, 8.0]], np.float32)
    assert np.allclose(knn_distance(q, reference, 1), [0.0, 5.0])
    assert np.allclose(knn_distance(q, reference, 2), [2.5, 7.5])
    # k larger than the reference: every reference row counts
    assert np.allclose(knn_distance(q, reference, 5), [2.5, 7.5])
    # excluded pairs never count (a patient's own films)
    exclude = np.array([[True, False], [False, False]])
    assert np.allclose(knn_distance(q, reference, 1, exclude), [5.0, 5.0])


def test_normalise_centres_and_scales_by_the_rms_norm():
    x = np.array([[4.0, 1.0], [-2.0, 1.0]])
    mean = x.mean(axis=0)
    assert rms_scale(x, mean) == 3.0
    assert np.allclose(normalise(x, mean, 3.0), [[1.0, 0.0], [-1.0, 0.0]])


def test_far_along_a_familiar_direction_is_still_unfamiliar():
    """Cosine distance would call this film familiar: it points where training films do."""
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], np.float32)
    fam = Familiarity(np.zeros(2, np.float32), 1.0, ref, k=1, threshold=0.5)
    assert fam.unfamiliar(np.array([[1.2, 0.0], [8.0, 0.0]])).tolist() == [False, True]


def test_unfamiliar_beyond_the_threshold_and_the_file_round_trip(tmp_path):
    ref = np.array([[1.0, 0.0], [0.9, 0.1]], np.float32)
    fam = Familiarity(np.zeros(2, np.float32), 2.0, ref, k=1, threshold=0.2)
    films = np.array([[2.0, 0.1], [0.0, 3.0], [-1.0, 0.0]])  # /2: near, far, far
    assert fam.unfamiliar(films).tolist() == [False, True, True]
    fam.save(tmp_path / "f.npz")
    back = Familiarity.load(tmp_path / "f.npz")
    assert back.k == 1 and back.threshold == 0.2 and back.scale == 2.0
    assert back.unfamiliar(films).tolist() == [False, True, True]
    assert np.allclose(back.scores(films), fam.scores(films), atol=1e-3)


def test_reasons_name_low_confidence_and_unfamiliar_films():
    assert review_reasons(0.95, 0.6) == []
    low = review_reasons(0.5, 0.6)
    assert len(low) == 1 and "50%" in low[0] and "60%" in low[0]
    assert review_reasons(0.95, 0.6, unfamiliar=True) == [REASON]
    assert len(review_reasons(0.5, None, unfamiliar=True)) == 2  # default threshold 0.6


def test_an_unfamiliar_film_is_never_answered_without_review(shipped_model, val_set):
    """Whatever the answer (COVID with high confidence included), an unfamiliar film is
    flagged with the reason; the refusals stay refusals without a flag."""
    original = shipped_model.familiarity
    dims = shipped_model.run(shipped_model.view(val_set.images[:1])[0])
    width = dims.get("embedding", dims["features"]).shape[1]
    # Every film is farther than -1 from anything: all unfamiliar.
    shipped_model.familiarity = Familiarity(np.zeros(width, np.float32), 1.0,
                                            np.eye(1, width, dtype=np.float32), 1, -1.0)
    try:
        preds = shipped_model.predict_arrays(val_set.images[:12])
    finally:
        shipped_model.familiarity = original
    answered = [p for p in preds if p["status"] == "ok"]
    assert answered, "no val film answered"
    assert all(p["needs_review"] and REASON in p["review_reasons"] for p in answered)
    assert all(not p["needs_review"] and p["review_reasons"] == []
               for p in preds if p["status"] != "ok")
