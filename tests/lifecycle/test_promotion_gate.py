"""lifecycle/promotion_gate.py: the exact McNemar test per source and pooled, the adult-normals
rule, films that are not COVID called COVID, and versions with different classes."""

from __future__ import annotations

import pytest

from lifecycle.promotion_gate import decide, mcnemar_worse_p


def ok(label):
    return {"status": "ok", "label": label}


REFUSED = {"status": "not_xray", "label": None}


def test_mcnemar_exact_values():
    assert mcnemar_worse_p(0, 0) == 1.0
    assert mcnemar_worse_p(6, 0) == pytest.approx(1 / 64)
    assert mcnemar_worse_p(5, 1) == pytest.approx(7 / 64)
    assert mcnemar_worse_p(1, 5) == pytest.approx(63 / 64)
    # symmetric split: no evidence either way
    assert mcnemar_worse_p(10, 10) == pytest.approx(0.588099, abs=1e-6)


def test_identical_answers_pass():
    answers = [ok("COVID"), ok("Normal"), REFUSED]
    d = decide("1", "2", answers, answers, ["COVID", "Normal", "Normal"], ["a", "b", "b"])
    assert d.passed and d.reasons == []
    assert {r.source for r in d.sources} == {"a", "b", "union"}


def test_a_worse_source_is_refused_with_its_figures():
    n = 20
    labels = ["COVID"] * n + ["Normal"] * n
    sources = ["hannover-covid"] * n + ["nih-adult-normal"] * n
    prod = [ok(y) for y in labels]
    # the candidate misses 8 of 20 COVID films (calls them Viral Pneumonia), same on normals
    cand = [ok("Viral Pneumonia") if i < 8 else ok(y) for i, y in enumerate(labels)]
    d = decide("3", "4", prod, cand, labels, sources)
    assert not d.passed
    assert d.reasons == [
        "hannover-covid: worse than production (12/20 correct against 20/20; 8 images right "
        "only by production, 0 only by the candidate; exact McNemar p=0.003906 < 0.05)",
        "all sources pooled: worse than production (32/40 correct against 40/40; 8 images "
        "right only by production, 0 only by the candidate; exact McNemar p=0.003906 < 0.05)",
        # the COVID films all come from one source: no pooled repeat of its reason
        "hannover-covid: misses more COVID films than production (12/20 found against 20/20; "
        "8 found only by production, 0 only by the candidate; exact McNemar p=0.003906 < 0.05)",
    ]
    worse = {r.source: r.worse for r in d.sources}
    assert worse == {"hannover-covid": True, "nih-adult-normal": False, "union": True}


def test_covid_films_lost_are_refused_even_when_the_source_accuracy_is_not_worse():
    # version 5 against 3 on covid19-3class: 5 COVID films lost, none gained, while the
    # viral pneumonias are named right more often (source accuracy within noise)
    labels = ["COVID"] * 25 + ["Viral Pneumonia"] * 20
    sources = ["covid19-3class"] * 45
    prod = [ok("Normal") if i < 4 else ok(y) for i, y in enumerate(labels)]
    prod[25:30] = [ok("Normal")] * 5  # production misses 5 viral pneumonias
    cand = [ok("Viral Pneumonia") if i < 9 else ok(y) for i, y in enumerate(labels)]
    d = decide("3", "5", prod, cand, labels, sources)
    (src,) = [r for r in d.sources if r.source == "covid19-3class"]
    assert not src.worse and src.production_correct == src.candidate_correct
    (films,) = d.covid_films
    assert (films.n, films.production_correct, films.candidate_correct) == (25, 21, 16)
    assert films.worse and films.p_worse == pytest.approx(1 / 32)
    assert not d.passed and d.reasons == [
        "covid19-3class: misses more COVID films than production (16/25 found against 21/25; "
        "5 found only by production, 0 only by the candidate; exact McNemar p=0.03125 < 0.05)"]


def test_covid_films_lost_within_noise_pass():
    labels, sources = ["COVID"] * 18, ["hannover-covid"] * 18
    prod = [ok("COVID")] * 18
    cand = [ok("Normal")] * 2 + [ok("COVID")] * 16  # 2 lost: p = 1/4
    d = decide("3", "4", prod, cand, labels, sources)
    assert d.passed and d.covid_films[0].p_worse == pytest.approx(0.25)


def test_a_small_difference_on_a_small_source_is_noise():
    labels, sources = ["Normal"] * 6, ["ieee8023-adult"] * 6
    prod = [ok("Normal")] * 6
    cand = [ok("Viral Pneumonia")] * 2 + [ok("Normal")] * 4  # 2 discordant: p = 1/4
    d = decide("3", "4", prod, cand, labels, sources)
    assert d.passed, d.reasons


def test_a_refusal_counts_as_no_diagnosis():
    labels, sources = ["COVID"] * 8, ["hannover-covid"] * 8
    d = decide("3", "4", [ok("COVID")] * 8, [REFUSED] * 8, labels, sources)
    assert not d.passed and d.sources[0].candidate_correct == 0


def test_one_more_adult_normal_called_covid_is_refused_but_children_do_not_count():
    labels = ["Normal"] * 3
    prod = [ok("Normal")] * 3
    cand = [ok("COVID"), ok("Normal"), ok("Normal")]
    adult = decide("3", "4", prod, cand, labels, ["nih-adult-normal"] * 3)
    assert not adult.passed
    assert "adult normals called COVID: 1/3 by the candidate against 0/3" in adult.reasons[0]
    hospital = decide("3", "4", prod, cand, labels, ["production-st-elsewhere"] * 3)
    assert not hospital.passed
    children = decide("3", "4", prod, cand, labels, ["covid19-3class"] * 3)
    assert children.passed and children.adult_normals["n"] == 0


def test_mismatched_or_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="same labelled images"):
        decide("1", "2", [ok("COVID")], [], ["COVID"], ["a"])
    with pytest.raises(ValueError, match="no held-out images"):
        decide("1", "2", [], [], [], [])


def test_four_sources_each_slightly_worse_are_refused_pooled():
    """3 of 10 films lost on each of four sources: p = 1/8 each (passes), 12 of 40 pooled:
    p = 1/4096 (refused)."""
    four = ("covid19-3class", "hannover-covid", "ieee8023-adult", "nih-adult-normal")
    labels = ["Viral Pneumonia"] * 40
    sources = [src for src in four for _ in range(10)]
    prod = [ok("Viral Pneumonia")] * 40
    cand = [ok("Normal") if i % 10 < 3 else ok("Viral Pneumonia") for i in range(40)]
    d = decide("3", "4", prod, cand, labels, sources)
    per_source = {r.source: (r.only_production, r.only_candidate, r.worse) for r in d.sources}
    assert per_source == {"covid19-3class": (3, 0, False), "hannover-covid": (3, 0, False),
                          "ieee8023-adult": (3, 0, False), "nih-adult-normal": (3, 0, False),
                          "union": (12, 0, True)}
    assert not d.passed and d.reasons == [
        "all sources pooled: worse than production (28/40 correct against 40/40; 12 images "
        "right only by production, 0 only by the candidate; exact McNemar p=0.0002441 < 0.05)"]


def test_covid_films_lost_a_few_per_source_are_refused_pooled():
    labels = ["COVID"] * 24
    sources = ["covid19-3class"] * 12 + ["hannover-covid"] * 12
    prod = [ok("COVID")] * 24
    cand = [ok("Viral Pneumonia") if i % 12 < 4 else ok("COVID") for i in range(24)]
    d = decide("3", "4", prod, cand, labels, sources)  # 4 lost per source: p = 1/16 each
    assert [(r.source, r.worse) for r in d.covid_films] == [
        ("covid19-3class", False), ("hannover-covid", False), ("union", True)]
    assert d.reasons[-1] == (
        "all sources pooled: misses more COVID films than production (16/24 found against "
        "24/24; 8 found only by production, 0 only by the candidate; exact McNemar "
        "p=0.003906 < 0.05)")


THREE = ["COVID", "Normal", "Viral Pneumonia"]
FOUR = [*THREE, "Other Abnormal"]


def answer(label, classes):
    """An answer as the model server gives it: the label and a probability per class."""
    return {"status": "ok", "label": label,
            "probabilities": {c: float(c == label) for c in classes}}


def four_class_heldout():
    """10 COVID (hannover), 10 Normal (nih-adult-normal), 10 Other Abnormal
    (nih-adult-abnormal) films."""
    labels = ["COVID"] * 10 + ["Normal"] * 10 + ["Other Abnormal"] * 10
    sources = ["hannover-covid"] * 10 + ["nih-adult-normal"] * 10 + ["nih-adult-abnormal"] * 10
    return labels, sources


def test_a_four_class_candidate_that_names_other_abnormal_films_passes():
    """Production (3 classes) calls 6 of the 10 Other Abnormal films COVID, 4 viral
    pneumonia; the candidate names 9 of them Other Abnormal and calls 1 COVID."""
    labels, sources = four_class_heldout()
    prod = [answer(y, THREE) for y in labels[:20]] + (
        [answer("COVID", THREE)] * 6 + [answer("Viral Pneumonia", THREE)] * 4)
    cand = [answer(y, FOUR) for y in labels[:20]] + (
        [answer("Other Abnormal", FOUR)] * 9 + [answer("COVID", FOUR)])
    d = decide("7", "8", prod, cand, labels, sources)  # classes read from the answers
    assert d.passed, d.reasons
    assert d.classes == {"production": ["COVID", "Normal", "Viral Pneumonia"],
                         "candidate": ["COVID", "Normal", "Other Abnormal", "Viral Pneumonia"],
                         "compared": ["COVID", "Normal", "Viral Pneumonia"]}
    # accuracy: only the films whose class both know (the Other Abnormal films: none)
    accuracy = {r.source: (r.n, r.production_correct, r.candidate_correct) for r in d.sources}
    assert accuracy == {"hannover-covid": (10, 10, 10), "nih-adult-abnormal": (0, 0, 0),
                        "nih-adult-normal": (10, 10, 10), "union": (20, 20, 20)}
    # "not called COVID" counts them: 4 right by production, 9 by the candidate
    not_covid = {r.source: (r.n, r.production_correct, r.candidate_correct)
                 for r in d.not_covid_films}
    assert not_covid == {"nih-adult-abnormal": (10, 4, 9), "nih-adult-normal": (10, 10, 10),
                         "union": (20, 14, 19)}


def test_a_four_class_candidate_calling_more_abnormal_films_covid_is_refused():
    labels, sources = four_class_heldout()
    prod = [answer(y, THREE) for y in labels[:20]] + (
        [answer("COVID", THREE)] + [answer("Viral Pneumonia", THREE)] * 9)
    cand = [answer(y, FOUR) for y in labels[:20]] + (
        [answer("COVID", FOUR)] * 7 + [answer("Other Abnormal", FOUR)] * 3)
    d = decide("7", "8", prod, cand, labels, sources, production_classes=THREE,
               candidate_classes=FOUR)
    assert not d.passed and d.reasons == [
        "nih-adult-abnormal: calls more films that are not COVID COVID than production "
        "(7/10 against 1/10; 6 called COVID only by the candidate, 0 only by production; "
        "exact McNemar p=0.01562 < 0.05)",
        "all sources pooled: calls more films that are not COVID COVID than production "
        "(7/20 against 1/20; 6 called COVID only by the candidate, 0 only by production; "
        "exact McNemar p=0.01562 < 0.05)"]


def test_a_four_class_candidate_calling_normals_other_abnormal_is_refused_on_accuracy():
    """8 of 10 adult normals called Other Abnormal (not COVID): worse accuracy on a class
    both know; the pool counts the 20 films of shared classes, not the 10 Other Abnormal."""
    labels, sources = four_class_heldout()
    prod = [answer(y, THREE) for y in labels[:20]] + [answer("Viral Pneumonia", THREE)] * 10
    cand = ([answer("COVID", FOUR)] * 10 + [answer("Other Abnormal", FOUR)] * 8
            + [answer("Normal", FOUR)] * 2 + [answer("Other Abnormal", FOUR)] * 10)
    d = decide("7", "8", prod, cand, labels, sources)
    assert not d.passed and d.reasons == [
        "nih-adult-normal: worse than production (2/10 correct against 10/10; 8 images right "
        "only by production, 0 only by the candidate; exact McNemar p=0.003906 < 0.05)",
        "all sources pooled: worse than production (12/20 correct against 20/20; 8 images "
        "right only by production, 0 only by the candidate; exact McNemar p=0.003906 < 0.05)"]
    assert d.adult_normals == {"n": 10, "production_called_covid": 0,
                               "candidate_called_covid": 0}


def test_a_candidate_that_drops_a_class_production_answers_is_refused():
    labels, sources = four_class_heldout()
    prod = [answer(y, FOUR) for y in labels]
    cand = [answer(y, THREE) for y in labels[:20]] + [answer("Viral Pneumonia", THREE)] * 10
    d = decide("8", "9", prod, cand, labels, sources)
    assert not d.passed
    assert d.reasons == ["the candidate cannot answer Other Abnormal, which production answers"]


def test_the_cli_shows_films_that_are_not_covid_called_covid():
    from lifecycle.cli import _text

    labels, sources = four_class_heldout()
    prod = [answer(y, THREE) for y in labels[:20]] + (
        [answer("COVID", THREE)] + [answer("Viral Pneumonia", THREE)] * 9)
    cand = [answer(y, FOUR) for y in labels[:20]] + (
        [answer("COVID", FOUR)] * 7 + [answer("Other Abnormal", FOUR)] * 3)
    d = decide("7", "8", prod, cand, labels, sources)
    text = _text("deploy", {"deployed": False, "version": "8", "previous": "7",
                            "decision": d.as_dict()})
    row = next(line for line in text.splitlines() if "not COVID, nih-adult-abnormal" in line)
    assert "called COVID: production 1    candidate 7" in row and row.endswith("WORSE")
