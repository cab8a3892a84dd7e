"""Model drift on validated cases: the flag rises at the size the intervals predict, and
the job reads real reviews from the database and the card through the registry lineage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from monitoring.model_drift import Case, card_from_summary, evaluate

CARD = {"accuracy": 0.83, "covid_recall": 0.84, "normals_called_covid": 0.05}
LABELS = ("COVID", "Normal", "Viral Pneumonia")


def _cases(n: int, disagree: float, rng: np.random.Generator, group: str = "site-a"):
    """n validated cases whose agreed label differs from the model's at rate ``disagree``."""
    out = []
    for _ in range(n):
        agreed = LABELS[rng.integers(3)]
        wrong = rng.random() < disagree
        predicted = LABELS[(LABELS.index(agreed) + 1 + rng.integers(2)) % 3] if wrong else agreed
        out.append(Case(group, predicted, agreed))
    return out


def _flag_rate(disagree: float, n: int = 150, repeats: int = 200) -> float:
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(repeats):
        (overall,) = evaluate(_cases(n, disagree, rng), CARD)
        flagged += overall.metrics["accuracy"].worse
    return flagged / repeats


def test_flag_rises_at_the_expected_size():
    # Wilson 95% with 150 cases: the upper bound falls below 0.83 once accuracy is under
    # ~0.77, i.e. at a disagreement rate above ~0.23.
    at_card = _flag_rate(1 - CARD["accuracy"])
    doubled = _flag_rate(0.34)
    print(f"accuracy flag rate: {at_card:.3f} at the card's rate, {doubled:.3f} at 0.34")
    assert at_card <= 0.05  # one-sided 2.5% nominal
    assert doubled >= 0.9
    (overall,) = evaluate(_cases(150, 0.20, np.random.default_rng(1)), CARD)
    m = overall.metrics["accuracy"]
    assert m.low <= 0.80 <= m.high and not m.worse


def test_normals_called_covid_flags_upwards_and_groups_are_separate():
    rng = np.random.default_rng(2)
    good = _cases(60, 0.1, rng, "site-a")
    bad = [Case("site-b", "COVID", "Normal")] * 14 + [Case("site-b", "Normal", "Normal")] * 6
    results = {r.group: r for r in evaluate(good + bad, CARD)}
    assert results["site-b"].metrics["normals_called_covid"].worse
    assert results["site-b"].drift and not results["site-a"].drift
    assert set(results) == {"overall", "site-a", "site-b"}
    few = evaluate([Case("x", "COVID", "COVID")] * 3, CARD)[0]
    assert not few.judged and not few.drift  # 3 cases: too few, never "no drift"


def test_card_from_a_training_summary():
    summary = {"val": {"union": {"accuracy": 0.9, "covid_recall": 0.8,
                                 "non_covid_called_covid": 0.1},
                       "nih-adult-normal": {"non_covid_called_covid": 0.05}}}
    assert card_from_summary(summary) == {"accuracy": 0.9, "covid_recall": 0.8,
                                          "normals_called_covid": 0.05}


@pytest.fixture()
def registry_copy(tmp_path, monkeypatch):
    """The shipped registry's database, copied (never written); artefacts read in place."""
    from tests_paths import ROOT

    db = tmp_path / "mlflow.db"
    shutil.copy(ROOT / "mlflow" / "mlflow.db", db)
    monkeypatch.chdir(ROOT)  # artefact paths are relative to the project root
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{db}")
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_registry_uri(f"sqlite:///{db}")
    # The runs' artefacts go to the test's folder, not under the project root.
    mlflow.create_experiment("radio-monitoring", artifact_location=(tmp_path / "runs").as_uri())
    return db


def _validated_db(tmp_path, monkeypatch, n_wrong: int, n_right: int) -> None:
    from app import db
    from app.db.models import Prediction, Review, User

    data = tmp_path / "data"
    url = db.default_url(data)
    db.migrate(url)
    monkeypatch.setenv("RADIO_DATA_DIR", str(data))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("RADIO_MONITORING_DIR", str(tmp_path / "reports"))
    with db.session_scope(url) as s:
        rad = User(username="rad", role="radiologist", session_nonce="n")
        s.add(rad)
        s.flush()
        for i in range(n_wrong + n_right):
            wrong = i < n_wrong
            pid = f"{i:032x}"
            s.add(Prediction(id=pid, site="Hospital B", image_sha256="0" * 64,
                             image_format="PNG", image_bytes=1, status="ok", label="COVID",
                             probabilities={"COVID": 0.9, "Normal": 0.1}, confidence=0.9))
            s.add(Review(prediction_id=pid, reviewer_id=rad.id,
                         verdict="corrected" if wrong else "validated",
                         label="Normal" if wrong else "COVID"))


def test_model_drift_job_reads_reviews_and_the_lineage_card(tmp_path, monkeypatch,
                                                            registry_copy, shipped_production):
    from monitoring import jobs

    monkeypatch.delenv("RADIO_MODEL_CARD", raising=False)
    # 30 films the model called COVID: 20 agreed Normal by the radiologist.
    _validated_db(tmp_path, monkeypatch, n_wrong=20, n_right=10)
    out = jobs.model_drift_job()
    assert out["model_version"] == shipped_production[0]
    # Production repackages earlier weights: its card is found through its parents (6 -> 3
    # -> 2 -> 1's training run).
    assert "summary.json" in out["notes"][0]
    groups = {g["group"]: g for g in out["groups"]}
    assert set(groups) == {"overall"}  # one site: it is the overall
    acc = groups["overall"]["metrics"]["accuracy"]
    assert acc["value"] == pytest.approx(10 / 30) and acc["worse"]
    assert out["drift"] and out["retraining"] == "off"
    saved = json.loads((tmp_path / "reports" / "latest-model-drift.json").read_text())
    assert saved["summary"] == out["summary"]
    assert "<svg" in (tmp_path / "reports" / "latest-model-drift.html").read_text()
    assert out["mlflow_run_id"]  # logged to the (copied) tracking store
    logged = {p.name for p in (tmp_path / "runs").rglob("*") if p.is_file()}
    assert {"latest-model-drift.json", "latest-model-drift.html"} <= logged
