"""app/clinical/answer.py: the answer in words, the same on every page, never contradicting a
bar."""

from __future__ import annotations

from app.clinical import answer

FOUR = {"COVID": 0.449, "Viral Pneumonia": 0.1, "Other Abnormal": 0.154, "Normal": 0.297}


def test_covid_above_its_threshold_though_not_the_most_probable_is_explained():
    said = answer.explain("ok", "COVID", FOUR, 0.449, True, None,
                          {"covid_threshold": 0.24, "review_threshold": 0.6})
    assert said["headline"] == "COVID \u2014 44.9%"
    assert said["why"] == (
        "COVID is the most probable class, and its probability, 44.9%, is above the COVID "
        "threshold of 24%. Radio names COVID as soon as its probability reaches this "
        "threshold, even when another class is more probable, so that fewer COVID cases "
        "are missed.")
    assert said["review"] == (
        "Needs radiologist review: the model's probability for its answer, 44.9%, is below "
        "60%, the level below which an answer may not stand without a radiologist.")


def test_covid_named_while_normal_is_more_probable():
    probs = {"COVID": 0.298, "Viral Pneumonia": 0.1, "Normal": 0.602}
    said = answer.explain("ok", "COVID", probs, 0.298, True, None,
                          {"covid_threshold": 0.2412})
    assert said["headline"] == "COVID \u2014 29.8%"
    assert said["why"].startswith(
        "The COVID probability, 29.8%, is above the COVID threshold of 24.1%. Radio names")


def test_other_class_below_the_covid_threshold_and_an_old_row_without_thresholds():
    probs = {"COVID": 0.4, "Viral Pneumonia": 0.35, "Normal": 0.25}
    said = answer.explain("ok", "Viral Pneumonia", probs, 0.35, False, None,
                          {"covid_threshold": 0.5})
    assert said["headline"] == "Viral Pneumonia \u2014 35.0%"
    assert said["why"].startswith(
        "COVID is the most probable class (40.0%) but below the COVID threshold of 50%, so "
        "the most probable other class is named: Viral Pneumonia (35.0%).")
    assert said["review"] is None
    # A three-class row of a model that did not report its threshold: described, not quoted.
    said = answer.explain("ok", "COVID", {"COVID": 0.3, "Viral Pneumonia": 0.1,
                                          "Normal": 0.6}, 0.3, True)
    assert said["why"].startswith(
        "The COVID probability, 30.0%, reaches the COVID decision threshold of this model "
        "version.")
    assert "below 60%" in said["review"]
    said = answer.explain("ok", "Normal", {"COVID": 0.1, "Normal": 0.9}, 0.9, False)
    assert said["why"] == ("Normal is the most probable class (90.0%); the COVID probability, "
                           "10.0%, is below the COVID threshold.")


def test_refusal_and_a_model_without_covid():
    said = answer.explain("not_xray", None, None, None, False, "Looks like a document.")
    assert said == {"headline": "Not a chest X-ray",
                    "why": "Looks like a document. No diagnosis is given for it.",
                    "review": None}
    said = answer.explain("ok", "Normal", {"Normal": 0.7, "Other Abnormal": 0.3}, 0.7, False)
    assert said["why"] == "Normal is the most probable class (70.0%)."


def test_the_models_own_reasons_are_the_review_text():
    from serving.familiarity import REASON

    probs = {"COVID": 0.9, "Normal": 0.05, "Viral Pneumonia": 0.03, "Other Abnormal": 0.02}
    out = answer.explain("ok", "COVID", probs, 0.9, True, None,
                         {"covid_threshold": 0.3, "review_threshold": 0.6}, [REASON])
    assert out["review"] == "Needs radiologist review: " + REASON
    assert out["headline"] == "COVID \u2014 90.0%"
    # no reasons (a model before them): the low-confidence reason, as before
    old = answer.explain("ok", "COVID", probs, 0.55, True, None, {"review_threshold": 0.6})
    assert "55.0%" in old["review"] and "60%" in old["review"]
