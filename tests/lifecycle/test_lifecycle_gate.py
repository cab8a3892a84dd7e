"""lifecycle/gate.py: the exact McNemar test per source and the adult-normals rule."""

from __future__ import annotations

import pytest

from lifecycle.gate import decide, mcnemar_worse_p


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
    accuracy, covid = d.reasons
    assert accuracy.startswith("hannover-covid: worse") and "12/20 correct against 20/20" in \
        accuracy
    assert covid.startswith("hannover-covid: misses more COVID films") and "12/20 found" in covid
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
