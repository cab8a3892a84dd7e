"""training/loso.py: the held-out figures, test-time views, one held-out source end to end
(toy sources, 2 epochs: seconds) and the table of the model card."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training import data
from training.loso import RECIPES, figures, one_source, table, tta_views

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]


def test_figures_of_a_mixed_a_covid_only_and_a_covid_free_source():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 0, 1, 2, 2])
    mixed = figures(pred, y, CLASSES)
    assert mixed["covid_recall"] == 0.75 and mixed["called_covid"] == 0.25
    assert mixed["balanced"] == pytest.approx((0.75 + 0.75) / 2) and mixed["accuracy"] == 0.75
    covid_only = figures(pred[:4], y[:4], CLASSES)
    assert covid_only["called_covid"] is None and covid_only["balanced"] == 0.75
    normals = figures(pred[4:], y[4:], CLASSES)
    assert normals["covid_recall"] is None and normals["balanced"] == 0.75


def test_tta_views_keep_the_size_and_start_with_the_films_themselves():
    films = np.random.default_rng(0).integers(0, 255, (3, 64, 64)).astype(np.uint8)
    views = tta_views(films)
    assert views[0] is films and all(v.shape == films.shape for v in views)
    assert not any(np.array_equal(v, films) for v in views[1:])


def test_one_held_out_source_end_to_end(toy_sources):
    train = data.load(toy_sources[:1], "train", size=32)
    test = data.load(toy_sources[1:], "train", classes=train.classes, size=32)
    recipe = replace(RECIPES["strong"], hp=replace(RECIPES["strong"].hp, epochs=2,
                                                   batch_size=4))
    out = one_source(train, test, recipe, seed=0, size=32, seg=None)
    assert out["all"]["n"] == len(test.samples) and out["tta"]["n"] == len(test.samples)
    assert 0.0 <= out["all"]["balanced"] <= 1.0 and out["covid_threshold"] is not None
    assert "heat_in_lungs" not in out  # no segmenter: nothing to measure against


def test_several_members_answer_together(toy_sources):
    train = data.load(toy_sources[:1], "train", size=32)
    test = data.load(toy_sources[1:], "train", classes=train.classes, size=32)
    recipe = replace(RECIPES["v1"], hp=replace(RECIPES["v1"].hp, epochs=2, batch_size=4))
    out = one_source(train, test, recipe, seed=0, size=32, seg=None, members=2)
    assert len(out["epochs_run"]) == 2 and out["all"]["n"] == len(test.samples)


def test_table_rows_per_recipe_and_tta():
    res = {"all": {"balanced": 0.5}, "tta": {"balanced": 0.7}}
    heat = {**res, "heat_in_lungs": {"mean": 0.61}}
    text = table([{"recipe": "v1", "held_out": {"nih-adult-normal": res,
                                                "hannover-covid": heat}}])
    lines = text.splitlines()
    assert lines[0] == "| recipe | nih-adult-normal | hannover-covid | mean |"
    assert lines[2] == "| v1 | 0.500 | 0.500 (0.61) | 0.500 |"
    assert lines[3] == "| v1 + TTA | 0.700 | 0.700 | 0.700 |"


def test_a_train_only_source_trains_everywhere_or_is_held_out(toy_sources, monkeypatch, tmp_path):
    """``--extra-source``: in every training set (the recipe's label says so); ``--only``
    with its name: the held-out source itself, every one of its films the test set."""
    import csv

    from PIL import Image

    import training.loso as loso
    from training.sources import CatalogueSource

    folder = tmp_path / "set"
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(1)
    with (folder / "metadata.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "patient_id", "nodule"])
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (48, 48), np.uint8)).save(
                folder / "img" / f"n{i}.png")
            w.writerow([f"img/n{i}.png", f"q{i}", "no"])
    extra = CatalogueSource("set-normal", folder, "Normal", "nodule", "no")
    monkeypatch.setattr(loso, "SOURCES", ("alpha", "beta"))
    monkeypatch.setattr(loso, "EXTRA", {"set-normal": lambda root: extra})
    monkeypatch.setattr(loso, "training_sources",
                        lambda root, names=(): [*toy_sources, *([extra] if names else [])])
    monkeypatch.setattr(loso, "RECIPES", {"v1": replace(RECIPES["v1"], hp=replace(
        RECIPES["v1"].hp, epochs=1, batch_size=4))})

    trained = loso.run(tmp_path, "v1", None, seed=0, size=32, only=["alpha"],
                       extra=("set-normal",))
    assert trained["recipe"] == "v1 + set-normal"
    assert trained["sources"] == ["alpha", "beta", "set-normal"]
    assert list(trained["held_out"]) == ["alpha"]

    held = loso.run(tmp_path, "v1", None, seed=0, size=32, only=["set-normal"])
    assert held["recipe"] == "v1" and list(held["held_out"]) == ["set-normal"]
    assert held["held_out"]["set-normal"]["all"]["n"] == 4  # every film, none in val
    assert held["held_out"]["set-normal"]["all"]["covid_recall"] is None


def test_a_result_is_logged_as_one_run_of_radio_loso(tmp_path):
    """``--registry``: the held-out figures as metrics, what trained as a tag, the JSON."""
    import json

    import mlflow

    from tests import helpers
    from training.loso import log_to_mlflow

    res = {"all": {"n": 9, "balanced": 0.5, "covid_recall": None}, "tta": {"balanced": 0.7},
           "heat_in_lungs": {"mean": 0.4}}
    result = {"recipe": "v1 + jsrt-adult-normal", "lungs": False, "seed": 1,
              "hparams": {"epochs": 2}, "sources": ["nih-adult-normal", "jsrt-adult-normal"],
              "held_out": {"nih-adult-normal": res}}
    registry = tmp_path / "reg"
    with helpers.mlflow_target():
        run_id = log_to_mlflow(result, registry)
        with helpers.mlflow_target(f"sqlite:///{registry / 'mlflow.db'}"):
            run = mlflow.get_run(run_id)
    (found,) = registry.rglob(f"{run_id}/**/loso.json")  # inside the registry folder
    logged = json.loads(found.read_text())
    assert run.data.tags["sources"] == "nih-adult-normal,jsrt-adult-normal"
    assert run.data.tags["recipe"] == "v1 + jsrt-adult-normal"
    assert run.data.metrics["nih-adult-normal.all.balanced"] == 0.5
    assert run.data.metrics["nih-adult-normal.tta.balanced"] == 0.7
    assert run.data.metrics["nih-adult-normal.heat_in_lungs"] == 0.4
    assert "nih-adult-normal.all.covid_recall" not in run.data.metrics  # None: not a metric
    assert logged == result


def test_the_command_names_its_file_after_the_recipe_and_what_trained(monkeypatch, tmp_path):
    import json

    import training.loso as loso

    calls = []

    def fake_run(data_root, recipe, lungs, seed, only=None, epochs=None, members=1, extra=()):
        calls.append((only, members, extra))
        label = f"{recipe} x{members}" + "".join(f" + {e}" for e in extra)
        return {"recipe": label, "held_out": {}}

    monkeypatch.setattr(loso, "run", fake_run)
    argv = ["--recipe", "v1", "--members", "3", "--extra-source", "jsrt-adult-normal",
            "--only", "nih-adult-normal", "--out", str(tmp_path)]
    assert loso.main(argv) == 0
    assert calls == [(["nih-adult-normal"], 3, ("jsrt-adult-normal",))]
    written = tmp_path / "v1-x3+jsrt-adult-normal.json"
    assert json.loads(written.read_text())["recipe"] == "v1 x3 + jsrt-adult-normal"
    with pytest.raises(SystemExit):  # not a train-only source
        loso.main(["--recipe", "v1", "--extra-source", "nih-adult-normal"])
