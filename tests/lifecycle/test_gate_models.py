"""The promotion gate on real models: a candidate trained on one source only (the shortcut
source, covid19-3class, whose normals are children) against the shipped production model,
on every source's val split. It must be refused, per source, by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT, register_again, server_env

from lifecycle import events
from lifecycle import model_versions as reg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worse_candidate(real_sources, tmp_path_factory):
    """A copy of the shipped registry plus a tiny model trained on covid19-3class only."""
    import shutil

    from training.fit import HParams
    from training.pipeline import TrainConfig, run

    work = tmp_path_factory.mktemp("gate")
    shutil.copytree(ROOT / "mlflow", work / "mlflow", ignore=shutil.ignore_patterns("*.sh"))
    one = [p for p in real_sources if p.name == "covid19-3class"]
    summary = run(TrainConfig(sources=one, registry=work / "mlflow",
                              grid=[HParams(epochs=2, batch_size=16, patience=2)], folds=2,
                              seed=3, limit=30, promote=False))
    return work, summary["model"]["version"]


def _cli(work, *args, mail: dict | None = None):
    env = server_env(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
                     RADIO_REGISTRY_ROOT=str(work), RADIO_LIFECYCLE_LOG=str(work / "ev.jsonl"),
                     PYTHONPATH=str(ROOT), **(mail or {}))
    return subprocess.run([sys.executable, "-m", "lifecycle", "--by", "tester", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_a_one_source_candidate_is_refused_per_source(worse_candidate, real_sources, smtp):
    work, version = worse_candidate
    cl = reg.client(f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
    before = reg.alias_version(cl, "radio-cxr", "production")
    assert _cli(work, "prepare", version).returncode == 0
    out = _cli(work, "--json", "deploy", "--data", *map(str, real_sources), mail=smtp.env)
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    d = result["decision"]
    assert not result["deployed"] and d["production"] == before and d["candidate"] == version
    worse = {r["source"] for r in d["sources"] if r["worse"]}
    # children's normals are not adults: the shortcut shows on the adult sources
    assert "nih-adult-normal" in worse, d
    assert any(r.startswith("nih-adult-normal: worse") for r in d["reasons"])
    an = d["adult_normals"]
    assert an["candidate_called_covid"] > an["production_called_covid"]
    assert reg.alias_version(cl, "radio-cxr", "production") == before
    tags = cl.get_model_version("radio-cxr", version).tags
    assert tags["deploy_tag"] == "refused" and "nih-adult-normal" in tags["gate_reasons"]
    assert events.read(work / "ev.jsonl")[-1]["action"] == "refused"
    (mail,) = smtp.messages  # the refusal, with its reasons, to the people who must know
    assert mail["subject"] == f"[Radio] promotion of radio-cxr version {version} refused"
    assert "nih-adult-normal: worse than production" in mail["body"]
    # the same refusal in words for a person at a terminal
    from lifecycle.cli import _text

    text = _text("deploy", result)
    assert f"version {version} REFUSED by the gate" in text and "WORSE" in text
    assert "adult normals called COVID" in text
    print(text)


def test_the_production_model_passes_against_itself_and_can_be_forced(worse_candidate,
                                                                     real_sources, smtp):
    work, version = worse_candidate
    cl = reg.client(f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
    prod = reg.alias_version(cl, "radio-cxr", "production")
    # A second version on production's own files: the same answers, must pass.
    older = register_again(work / "mlflow", prod)
    out = _cli(work, "--json", "deploy", older, "--data", *map(str, real_sources),
               mail=smtp.env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["deployed"]
    assert reg.alias_version(cl, "radio-cxr", "production") == older
    # The gate tagged the version it promoted with its own figures on the held-out images:
    # model drift's yardstick from now on (monitoring.drift_jobs.model_card reads it first).
    card = json.loads(cl.get_model_version("radio-cxr", older).tags["model_card"])
    assert set(card) == {"accuracy", "covid_recall", "normals_called_covid"}
    assert 0.5 < card["accuracy"] < 1.0 and 0.5 < card["covid_recall"] <= 1.0
    forced = _cli(work, "force", version, "--reason", "test of the forced path", mail=smtp.env)
    assert forced.returncode == 0, forced.stderr
    assert reg.alias_version(cl, "radio-cxr", "production") == version
    assert reg.alias_version(cl, "radio-cxr", "previous") == older
    # forced past the gate: no figures of its own, the card falls back to its training run
    assert "model_card" not in cl.get_model_version("radio-cxr", version).tags
    assert smtp.subjects() == [
        f"[Radio] radio-cxr version {older} promoted to production",
        f"[Radio] radio-cxr version {version} FORCED to production"]
