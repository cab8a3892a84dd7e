"""Measures the "not a chest X-ray" gate of the shipped model: false rejections on the
val X-rays (per source), rejections of real radiographs and scans that are not frontal
chest X-rays (``../shared/not-chest-xray/val``, per kind and per group of kinds), and of a
generated non-X-ray set (pictures, documents, noise).

    python -m training.ood_eval [--registry mlflow] [--data ../shared/data]
                                [--negatives ../shared/not-chest-xray]

Prints a table and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from serving.preprocessing import ImageError, preprocess, preprocess_path
from training.nonxray import non_xray_set
from training.registry_folder import load_model

# Kinds of ../shared/not-chest-xray, grouped as the acceptance criteria count them.
KIND_GROUPS = {
    "body-part radiograph": (
        "ankle_foot_xray", "elbow_xray", "forearm_xray", "hand_xray", "pelvis_hip_xray",
        "shoulder_xray", "wrist_xray", "dental_panoramic", "dental_periapical",
    ),
    "lateral chest": ("lateral_chest_xray",),
    "other modality": ("ct_slice", "mri_slice", "mammogram", "ultrasound"),
}


def group_of(kind: str) -> str:
    """The group of a not-chest-xray kind ("other" for a kind added later)."""
    return next((g for g, kinds in KIND_GROUPS.items() if kind in kinds), "other")


def real_negatives(model, root: Path, split: str = "val") -> dict:
    """Rejections of ``root/<split>/<kind>/*`` per kind, per group and overall.

    A file the preprocessing refuses counts as rejected: it is never diagnosed either.
    """
    files = sorted(p for p in (root / split).glob("*/*") if p.is_file())
    counts: dict[str, dict[str, int]] = {}
    missed = []
    for path in files:
        kind = path.parent.name
        try:
            pred = model.predict_arrays(preprocess_path(path)[None], heatmap=False)[0]
            caught = pred["status"] == "not_xray"
        except ImageError:
            caught = True
        for key in (f"kind/{kind}", f"group/{group_of(kind)}", "union"):
            c = counts.setdefault(key, {"n": 0, "rejected": 0})
            c["n"] += 1
            c["rejected"] += caught
        if not caught:
            missed.append(f"{kind}/{path.name}")
    return {"counts": dict(sorted(counts.items())), "missed": missed}


def evaluate(model, data_root: Path) -> dict:
    """Rates and counts for val X-rays (per source) and the non-X-ray set (per kind)."""
    val = sorted(
        p for p in data_root.glob("*/val/*/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    result: dict = {"val": {}, "non_xray": {}}
    if val:
        images = np.stack([preprocess_path(p) for p in val])
        preds = model.predict_arrays(images, heatmap=False)
        sources = [p.parts[-4] for p in val]
        for src in sorted(set(sources)) + ["union"]:
            idx = [i for i, s in enumerate(sources) if src in (s, "union")]
            rejected = sum(preds[i]["status"] == "not_xray" for i in idx)
            result["val"][src] = {"n": len(idx), "rejected": rejected}
    kinds: Counter = Counter()
    caught: Counter = Counter()
    missed = []
    for name, data in non_xray_set():
        kind = name.split(":")[0] if not name.startswith("generated") else name.rstrip("0123456789")
        kinds[kind] += 1
        try:
            pred = model.predict_arrays(preprocess(data)[None], heatmap=False)[0]
            is_caught = pred["status"] == "not_xray"
        except ImageError:
            is_caught = True  # refused at the door: also never diagnosed
        caught[kind] += is_caught
        if not is_caught:
            missed.append(name)
    result["non_xray"] = {k: {"n": kinds[k], "rejected": caught[k]} for k in sorted(kinds)}
    result["non_xray"]["union"] = {"n": sum(kinds.values()), "rejected": sum(caught.values())}
    result["missed"] = missed
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m training.ood_eval")
    parser.add_argument("--registry", type=Path, default=Path("mlflow"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--negatives", type=Path, default=Path("../shared/not-chest-xray"))
    parser.add_argument("--version", default=None, help="a version (default: @production)")
    args = parser.parse_args(argv)
    model = load_model(args.registry, version=args.version)
    res = evaluate(model, args.data)
    if args.negatives.is_dir():
        res["real_negatives"] = real_negatives(model, args.negatives, "val")
        for key, r in res["real_negatives"]["counts"].items():
            res.setdefault("real_non_xray", {})[key] = r
    print(f"{'set':28} {'n':>5} {'rejected':>9} {'rate':>7}")
    for part in ("val", "real_non_xray", "non_xray"):
        for key, r in res.get(part, {}).items():
            rate = r["rejected"] / r["n"]
            print(f"{part + '/' + key:28} {r['n']:5d} {r['rejected']:9d} {rate:7.3f}")
    if res["missed"]:
        print("non-X-rays let through:", ", ".join(res["missed"]))
    if res.get("real_negatives", {}).get("missed"):
        print("real non-chest-X-rays let through:", ", ".join(res["real_negatives"]["missed"]))
    val_u, non_u = res["val"].get("union"), res["non_xray"]["union"]
    real_u = res.get("real_non_xray", {}).get("union")
    print(
        json.dumps(
            {
                "val_false_rejection_rate": val_u["rejected"] / val_u["n"] if val_u else None,
                "non_xray_rejection_rate": non_u["rejected"] / non_u["n"],
                "real_non_xray_rejection_rate": (
                    real_u["rejected"] / real_u["n"] if real_u else None
                ),
                "n_val": val_u["n"] if val_u else 0,
                "n_non_xray": non_u["n"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
