"""Give a registered model check 4 of the "not a chest X-ray" gate (fitted against real
negatives, :mod:`training.chest_gate`) and register it as a new version; same network.

    python -m training.refit_chest_gate --version N [--registry mlflow] [--data ../shared/data]
                                  [--negatives ../shared/not-chest-xray]

1. Fit check 4 on the train split's chest X-rays (every source) against
   ``not-chest-xray/train``, with the version's own network features.
2. Register the version's artefacts with the new gate parameters (tags: ``parent_version``,
   ``gate=real-negatives``, the real ``git_commit``); no alias yet.
3. Answer the val chest X-rays with both versions (each loaded as the model server
   loads it) and measure the new version on ``not-chest-xray/val``.
4. Move ``production`` only when the network's answers are unchanged on every val chest
   X-ray that neither version refuses, and at most 2% of val chest X-rays are refused in
   all. The figures are printed and logged; val chooses nothing, it only checks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

MAX_CHEST_REFUSED = 0.02


def _changed_answers(old: list[dict], new: list[dict]) -> list[int]:
    """Indices where both versions answer but differ (refusals aside)."""
    from training.repackage import differences

    changed = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        if a["status"] == "ok" and b["status"] == "ok" and differences([a], [b]):
            changed.append(i)
    return changed


def refit(registry: Path, data_root: Path, negatives_root: Path, version: str) -> dict:
    """Steps 1-4 of the module docstring; returns the figures and the decision."""
    import mlflow
    from mlflow import MlflowClient

    from serving.ood import OODDetector
    from serving.served_model import MODEL_NAME as NAME
    from training import data, gate
    from training.logging_model import log_and_register
    from training.ood_eval import real_negatives
    from training.packaging import artifact_files
    from training.pipeline import ARTIFACT_FILES, git_commit
    from training.registry_folder import ALIAS, load_model, open_registry
    from training.repackage import _artifact_dir, answers_of
    from training.sources import source_paths

    registry = Path(registry).resolve()
    model = load_model(registry, NAME, version=version)
    train = data.load(source_paths(data_root), "train", classes=model.classes)
    negs = gate.load_negatives(negatives_root, "train")
    check = gate.fit_negative_check(
        gate.inputs_of(model, train.images), train.groups,
        gate.inputs_of(model, negs.images), negs.groups,
    )
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        source = _artifact_dir(registry, NAME, version)
        for key, file in artifact_files(source).items():
            if key != "ood":
                shutil.copy2(source / file, model_dir / file)
        detector = OODDetector.load(source / ARTIFACT_FILES["ood"])
        gate.attach(detector, check).save(model_dir / ARTIFACT_FILES["ood"])
        old_tags = MlflowClient().get_model_version(NAME, version).tags
        with open_registry(registry), mlflow.start_run(run_name=f"gate refit {NAME} v{version}"):
            mlflow.set_tags({"git_commit": git_commit(), "gate": "real-negatives"})
            mlflow.log_params({"gate_c": check.c, "gate_threshold": check.threshold,
                               "n_chest_train": len(train.images), "n_negatives": len(negs.kinds)})
            mlflow.log_metrics({"gate_oof_chest_refused": check.oof_chest_refused,
                                "gate_oof_negatives_caught": check.oof_negatives_caught})
            info = log_and_register(model_dir, artifact_files(model_dir), NAME,
                                    old_tags.get("dataset_version", "unknown"), promote=False,
                                    lineage={"parent_version": version, "mode": "gate-refit"})
            new = info["version"]
            client = MlflowClient()
            client.set_model_version_tag(NAME, new, "parent_version", version)
            client.set_model_version_tag(NAME, new, "gate", "real-negatives")
    val = data.load(source_paths(data_root), "val", classes=model.classes)
    old_ans = answers_of(registry, NAME, version, val.images)
    new_ans = answers_of(registry, NAME, new, val.images)
    new_model = load_model(registry, NAME, version=new)
    refused = {src: [0, 0] for src in sorted(set(val.sources.tolist()))}
    for src, ans in zip(val.sources, new_ans, strict=True):
        refused[src][0] += 1
        refused[src][1] += ans["status"] == "not_xray"
    total_refused = sum(r for _, r in refused.values()) / len(new_ans)
    changed = _changed_answers(old_ans, new_ans)
    promote = not changed and total_refused <= MAX_CHEST_REFUSED
    with open_registry(registry):
        client = MlflowClient()
        client.set_model_version_tag(NAME, new, "gate_check", "passed" if promote else "failed")
        if promote:
            client.set_registered_model_alias(NAME, ALIAS, new)
    return {
        "version": new, "parent_version": version, "promoted": promote,
        "gate": {"C": check.c, "threshold": round(check.threshold, 4),
                 "oof_chest_refused": round(check.oof_chest_refused, 4),
                 "oof_negatives_caught": round(check.oof_negatives_caught, 4)},
        "val_chest_refused": {s: {"n": n, "refused": r} for s, (n, r) in refused.items()},
        "val_chest_refused_share": round(total_refused, 4),
        "answers_changed": changed,
        "negatives_val": real_negatives(new_model, negatives_root, "val")["counts"],
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit 1 when the new version is not promoted."""
    parser = argparse.ArgumentParser(prog="python -m training.refit_chest_gate")
    parser.add_argument("--registry", type=Path, default=Path("mlflow"))
    parser.add_argument("--version", required=True, help="the registered version to refit")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--negatives", type=Path, default=Path("../shared/not-chest-xray"))
    args = parser.parse_args(argv)
    result = refit(args.registry, args.data, args.negatives, args.version)
    print(json.dumps(result, indent=1))
    return 0 if result["promoted"] else 1


if __name__ == "__main__":
    sys.exit(main())
