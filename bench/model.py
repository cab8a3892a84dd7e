"""``make bench-model``: the shipped model against the pixel baseline, per source and for
the union of the val splits; the share of each answer's heatmap inside the lungs; training
speed, model size and in-process inference time.

``RADIO_BENCH_VERSION=N`` measures version N instead of the ``production`` alias. The lungs
are drawn by the model's own segmenter, else by ``build/lungs/lungs.onnx``
(``python -m training.lungs``) when present.

All figures are measured here, now: the model is loaded from the shipped registry, the
baseline refitted on the train splits, two epochs timed on the train splits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from serving.served_model import ALIAS, MODEL_NAME, model_path, resolve
from training import baseline, data, sampling
from training.evaluation import evaluate, heat_in_lungs
from training.metrics import report_by_source
from training.registry_folder import load_model, tracking_uri
from training.sources import source_paths
from training.summary import format_table

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RADIO_BENCH_DATA", ROOT.parent / "shared" / "data"))



def main() -> int:
    """Measure and print; the last line is one JSON object."""
    sources = source_paths(DATA)
    if not all(s.is_dir() for s in sources):
        sys.exit(f"bench-model needs every source of training/sources.py under {DATA}")
    os.chdir(ROOT)  # registry paths are relative to the project root
    registry = ROOT / "mlflow"
    version = os.environ.get("RADIO_BENCH_VERSION")
    model = load_model(registry, version=version)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri(registry)
    version = version or resolve(MODEL_NAME, ALIAS)
    folder = model_path(MODEL_NAME, version)
    classes = model.classes
    train = data.load(sources, "train", classes=classes)
    val = data.load(sources, "val", classes=classes)

    cnn = evaluate(model, val)  # the served path: temperature, threshold, OOD gate
    segmenter = getattr(model, "lungs", None)  # versions before the lung crop have none
    if segmenter is None and (ROOT / "build" / "lungs" / "lungs.onnx").is_file():
        from serving.lungs import LungSegmenter

        segmenter = LungSegmenter(str(ROOT / "build" / "lungs" / "lungs.onnx"))
    lungs = heat_in_lungs(model, val, segmenter) if segmenter is not None else None
    weights = sampling.balanced_weights(train)
    folds = sampling.patient_folds(train, 5, 42)
    c = baseline.choose_c(train.images, train.y, weights, folds, len(classes))
    base_probs = baseline.predict_proba(
        baseline.fit(train.images, train.y, weights, c), val.images, len(classes)
    )
    base = report_by_source(base_probs, val.y, val.sources, classes, None)

    one = val.images[:1]
    model.predict_arrays(one)
    t0 = time.perf_counter()
    for _ in range(50):
        model.predict_arrays(one)
    infer_ms = (time.perf_counter() - t0) / 50 * 1000

    from training.fit import HParams, train_member

    hp = HParams(epochs=2)
    t0 = time.perf_counter()
    train_member(
        (train.images, train.y, weights),
        None,
        len(classes),
        train.images.shape[1],
        hp,
        seed=0,
        verbose=0,
    )
    epoch_s = (time.perf_counter() - t0) / hp.epochs

    size_mb = {
        name: (folder / "artifacts" / name).stat().st_size / 2**20
        for name in ("model.onnx", "ensemble.keras")
    }
    print(
        f"model {MODEL_NAME} version {version}, {model.meta.get('members')} members, "
        f"T={model.meta['temperature']:.3f}, COVID threshold {model.meta.get('covid_threshold')}"
    )
    print(format_table({"cnn": cnn, "baseline": base}))
    print(
        f"seconds per epoch (one member, all {len(train.samples)} train images, "
        f"{os.cpu_count()} cores): {epoch_s:.1f}"
    )
    print(f"in-process inference (ONNX ensemble, heatmap, OOD): {infer_ms:.2f} ms per image")
    print("model size: " + ", ".join(f"{k} {v:.2f} MB" for k, v in size_mb.items()))
    if lungs is not None:
        print("heatmap inside the lungs (mean share, chance level, films mostly outside): "
              + "; ".join(f"{k} {v['mean']:.2f} ({v['chance']:.2f}), {v['below_half']:.0%}"
                          for k, v in lungs.items()))
    summary = {
        "version": version,
        "val": {k: {m: round(v, 4) for m, v in r.items()} for k, r in cnn.items()},
        "baseline": {k: {m: round(v, 4) for m, v in r.items()} for k, r in base.items()},
        "seconds_per_epoch": round(epoch_s, 2),
        "inference_ms_per_image": round(infer_ms, 2),
        "model_size_mb": {k: round(v, 2) for k, v in size_mb.items()},
        "heat_in_lungs": lungs,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
