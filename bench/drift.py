"""``make bench-drift``: the data-drift check's false alarms and power on the real sources,
with the production model's features (the figures of the README's drift section).

* false alarms per known source, windows of its own patients (``monitoring.calibration``),
  and on mixed windows of validation patients against the whole reference;
* leave-one-source-out: windows of a source held out of the reference (a new hospital);
* acquisition changes (``bench/drift_shifts.py``) on windows of validation patients;
* for each kind of change, the smallest window detected in 80% of windows.

``RADIO_BENCH_REPEATS`` (default 500) windows per null rate, a fifth of that per power
rate; the last line is one JSON object. The network's features of the production version
are kept in ``build/drift/`` (delete it after a correction of the data).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from bench.drift_shifts import apply
from monitoring.calibration import false_alarms, flag_rate, smallest_window
from monitoring.drift import Window
from monitoring.features import DriftSpace, NetworkFeatures, image_statistics

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RADIO_BENCH_DATA", ROOT.parent / "shared" / "data"))
NULL_SIZES = (10, 20, 40)
POWER_SIZES = (5, 10, 20, 30, 40, 60, 80, 120)
SHIFTS = ("rotation", "exposure", "resolution", "bit-depth")


def features(model_dir: Path, cache: Path | None = None) -> dict[str, tuple]:
    """{split or val shift: (network, stats, sources, patients)} of the real sources; kept
    in ``cache`` (an ``.npz``) when given, and read from it when it is there."""
    from monitoring.reference import images_of

    if cache is not None and cache.is_file():
        z = np.load(cache)
        return {k: tuple(z[f"{k}/{i}"] for i in range(4))
                for k in {name.split("/")[0] for name in z.files}}
    net = NetworkFeatures(model_dir)
    out = {}
    for split in ("train", "val"):
        images, samples = images_of(DATA, split)
        meta = (np.array([s.source for s in samples]),
                np.array([f"{s.source}/{s.patient}" for s in samples]))
        out[split] = (net(images), image_statistics(images), *meta)
        if split == "val":
            for shift in SHIFTS:
                moved = apply(shift, images)
                out[shift] = (net(moved), image_statistics(moved), *meta)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **{f"{k}/{i}": v for k, part in out.items() for i, v in enumerate(part)})
    return out


def pooled(feats: dict[str, tuple], space: DriftSpace, second: str = "val") -> Window:
    """Train rows then ``second``'s rows, in ``space``."""
    parts = [feats["train"], feats[second]]
    return Window(np.concatenate([space.transform(p[0], p[1]) for p in parts]),
                  np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))


def measure(feats: dict[str, tuple], repeats: int) -> dict:
    """Every figure of the drift section."""
    train = feats["train"]
    is_train = np.arange(len(train[2]) + len(feats["val"][2])) < len(train[2])
    space = DriftSpace.fit(train[0], train[1])
    data = pooled(feats, space)
    power_repeats = max(repeats // 5, 20)
    out: dict = {"null": {}, "new_source": {}, "shift": {}}
    for size in NULL_SIZES:
        rates = false_alarms(data, size, repeats)
        rates["mixed validation patients"] = flag_rate(data, is_train, ~is_train, size, repeats)
        out["null"][size] = {k: str(r) for k, r in rates.items()}
        print(size, out["null"][size], flush=True)
    sources = np.concatenate([feats["train"][2], feats["val"][2]])
    net = np.concatenate([feats["train"][0], feats["val"][0]])
    stats = np.concatenate([feats["train"][1], feats["val"][1]])
    for source in sorted(set(sources)):
        keep = is_train & (sources != source)
        held = Window(DriftSpace.fit(net[keep], stats[keep]).transform(net, stats), sources,
                      data.clusters)
        films = int((sources == source).sum())
        rates = {n: flag_rate(held, keep, sources == source, n, power_repeats)
                 for n in POWER_SIZES if n < films}
        out["new_source"][source] = {"rates": {n: str(r) for n, r in rates.items()},
                                     "smallest_80": smallest_window(rates)}
        print(source, out["new_source"][source], flush=True)
    for shift in SHIFTS:
        moved = pooled(feats, space, shift)
        rates = {n: flag_rate(moved, is_train, ~is_train, n, power_repeats)
                 for n in POWER_SIZES}
        out["shift"][shift] = {"rates": {n: str(r) for n, r in rates.items()},
                               "smallest_80": smallest_window(rates)}
        print(shift, out["shift"][shift], flush=True)
    return out


def main() -> int:
    """Measure and print; the last line is one JSON object."""
    from serving.served_model import ALIAS, MODEL_NAME, model_path, resolve
    from training.registry_folder import tracking_uri
    from training.sources import missing, source_paths

    if missing(source_paths(DATA)):
        sys.exit(f"bench-drift needs every source of training/sources.py under {DATA}")
    os.chdir(ROOT)  # registry paths are relative to the project root
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri(ROOT / "mlflow"))
    version = resolve(MODEL_NAME, ALIAS)
    repeats = int(os.environ.get("RADIO_BENCH_REPEATS", "500"))
    # Features of this version, computed once (the measurement is re-run, the network not):
    # keyed by the version, so a new production version computes its own.
    cache = ROOT / "build" / "drift" / f"bench-features-v{version}.npz"
    result = measure(features(model_path(MODEL_NAME, version), cache), repeats)
    print(json.dumps({"model_version": version, "repeats": repeats, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
